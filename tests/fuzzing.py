"""Seeded MIDI fuzzing: valid seed files built in code, mutated at the byte and event level.

Used by ``tests/test_reliability.py`` (a few hundred cases, in the suite) and by
``benchmarks/fuzz.py`` (tens of thousands). A case passes when converting it either gives a
score that serialises to MusicXML, or raises ``Perf2ScoreError`` (a one-line user error);
anything else (another exception, a warning printed on the way, a hang) is a finding.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import signal
import struct
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from perf2score.errors import Perf2ScoreError


def varlen(value: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def midi_file(tracks: list[bytes], division: int = 480, fmt: int = 1) -> bytes:
    """A standard MIDI file from raw track bodies (an end-of-track event is appended)."""
    chunks = b"".join(
        b"MTrk" + struct.pack(">I", len(body) + 4) + body + b"\x00\xff\x2f\x00" for body in tracks
    )
    return b"MThd" + struct.pack(">IHHH", 6, fmt, len(tracks), division) + chunks


def _notes_track(rng: random.Random, count: int, channel: int = 0) -> bytes:
    """Notes as note-on/note-off pairs with running status now and then, plus pedal."""
    events: list[tuple[int, bytes]] = []
    time = 0
    for _ in range(count):
        time += rng.choice([0, 0, 60, 120, 240, 480, rng.randrange(1, 2000)])
        pitch = rng.randrange(21, 109)
        length = rng.choice([30, 120, 240, 480, 960, rng.randrange(1, 4000)])
        events.append((time, bytes([0x90 | channel, pitch, rng.randrange(1, 128)])))
        events.append((time + length, bytes([0x80 | channel, pitch, 64])))
        if rng.random() < 0.05:
            events.append((time, bytes([0xB0 | channel, 64, rng.choice([0, 127])])))
    events.sort(key=lambda e: e[0])
    body, previous = b"", 0
    for when, message in events:
        body += varlen(when - previous) + message
        previous = when
    return body


def seed_files(rng: random.Random) -> list[bytes]:
    """A handful of valid performances: one note, a chord, a short and a longer piece,
    two tracks, a tempo map, a drum track."""
    tempo = b"\x00\xff\x51\x03" + struct.pack(">I", 500000)[1:]
    slow = b"\x00\xff\x51\x03" + struct.pack(">I", 1500000)[1:]
    return [
        midi_file([b"\x00\x90\x3c\x40\x83\x60\x80\x3c\x40"]),
        midi_file([b"\x00\x90\x3c\x40\x00\x40\x40\x00\x43\x40\x83\x60\x3c\x00\x40\x00\x43\x00"]),
        midi_file([tempo + _notes_track(rng, 12)]),
        midi_file([tempo + _notes_track(rng, 60)]),
        midi_file([tempo, _notes_track(rng, 30), _notes_track(rng, 30, channel=1)]),
        midi_file([slow + _notes_track(rng, 40)], division=96),
        midi_file([_notes_track(rng, 20), _notes_track(rng, 20, channel=9)]),
    ]


def _flip(rng: random.Random, data: bytearray) -> bytearray:
    for _ in range(rng.randrange(1, 8)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return data


def _insert(rng: random.Random, data: bytearray) -> bytearray:
    at = rng.randrange(len(data) + 1)
    return data[:at] + bytearray(rng.randbytes(rng.randrange(1, 16))) + data[at:]


def _delete(rng: random.Random, data: bytearray) -> bytearray:
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.randrange(1, 16) :]


def _truncate(rng: random.Random, data: bytearray) -> bytearray:
    return data[: rng.randrange(len(data))]


def _header(rng: random.Random, data: bytearray) -> bytearray:
    field = rng.choice([(4, 4), (8, 2), (10, 2), (12, 2)])  # length, format, tracks, division
    value = rng.choice([0, 1, 2, 0x7FFF, 0x8000, 0xE728, 0xFFFF, rng.randrange(1 << 16)])
    start, size = field
    data[start : start + size] = value.to_bytes(4, "big")[-size:]
    return data


def _chunk_length(rng: random.Random, data: bytearray) -> bytearray:
    at = data.find(b"MTrk", 8)
    if at < 0:
        return _flip(rng, data)
    value = rng.choice([0, 1, 0xFFFFFFFF, rng.randrange(1 << 32), len(data)])
    data[at + 4 : at + 8] = struct.pack(">I", value)
    return data


def _events(rng: random.Random, _data: bytearray) -> bytearray:
    """A whole new file of extreme events: zero tempo, huge deltas, pitch 0/127, notes
    without offs, overlapping same-pitch notes, many notes at one time."""
    body = b""
    for _ in range(rng.randrange(1, 200)):
        kind = rng.randrange(7)
        delta = rng.choice([0, 0, 1, 100, 0x0FFFFFFF, rng.randrange(1 << 14)])
        pitch = rng.choice([0, 1, 11, 12, 60, 126, 127, rng.randrange(128)])
        if kind == 0:
            body += (
                varlen(delta) + b"\xff\x51\x03" + rng.choice([b"\x00\x00\x00", rng.randbytes(3)])
            )
        elif kind == 1:
            body += varlen(delta) + bytes([0x90, pitch, rng.randrange(128)])
        elif kind == 2:
            body += varlen(delta) + bytes([0x80, pitch, 0])
        elif kind == 3:
            body += varlen(0) + bytes([0x90, pitch, 100]) + varlen(0) + bytes([0x90, pitch, 90])
        elif kind == 4:
            body += varlen(delta) + bytes([0xB0, 64, rng.randrange(128)])
        elif kind == 5:
            body += varlen(delta) + b"\xff\x58\x04" + rng.randbytes(4)
        else:
            body += varlen(delta) + bytes([0x99, pitch, 100])
    return bytearray(midi_file([body], division=rng.choice([1, 24, 480, 0x7FFF])))


def _write_notes(notes: list[tuple[int, int, int, int]], division: int, tempo: int) -> bytes:
    """A valid one-track file of (pitch, onset tick, length ticks, velocity) notes."""
    events = []
    for pitch, onset, length, velocity in notes:
        events.append((onset, 1, bytes([0x90, pitch, velocity])))
        events.append((onset + length, 0, bytes([0x80, pitch, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    body, previous = b"\x00\xff\x51\x03" + struct.pack(">I", tempo)[1:], 0
    for when, _, message in events:
        body += varlen(when - previous) + message
        previous = when
    return midi_file([body], division=division)


def semantic(rng: random.Random) -> bytes:
    """A valid file with odd music: one note, one onset for all, tiny or huge spans,
    zero-length or hour-long notes, extreme pitches, repeated same-pitch notes, bursts."""
    count = rng.choice([1, 2, 3, 5, 8, 20, 50, 150])
    kind = rng.randrange(8)
    notes = []
    for k in range(count):
        pitch = rng.randrange(128) if kind == 0 else rng.randrange(21, 109)
        onset = {
            1: 0,  # every onset at one time
            2: k,  # one tick apart
            3: k * rng.randrange(1, 5),  # a few ticks apart
            4: k * 480 * rng.randrange(20, 200),  # minutes apart
        }.get(kind, rng.randrange(count * 480))
        length = {5: 0, 6: rng.randrange(1 << 20)}.get(kind, rng.randrange(1, 1000))
        if kind == 7:
            pitch = 60  # one key struck again and again
        notes.append((pitch, onset, length, rng.randrange(1, 128)))
    division = rng.choice([1, 24, 96, 480, 960, 0x7FFF])
    tempo = rng.choice([1, 1000, 500000, 0xFFFFFF])
    return _write_notes(notes, division, tempo)


MUTATIONS = (_flip, _insert, _delete, _truncate, _header, _chunk_length, _events)


def mutants(seed: int, count: int | None = None) -> Iterator[bytes]:
    """Mutated MIDI files (``count`` of them, or without end), the same for the same seed."""
    rng = random.Random(seed)
    seeds = seed_files(rng)
    made = 0
    while count is None or made < count:
        made += 1
        if rng.random() < 0.4:  # valid files with odd music reach the converters
            yield semantic(rng)
            continue
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            data = rng.choice(MUTATIONS)(rng, data) or bytearray(b"M")
        yield bytes(data)


@dataclass
class Finding:
    case: int
    kind: str  # exception | warning | hang
    detail: str


class _Hang(BaseException):
    pass


def _alarm(_signum, _frame) -> None:
    raise _Hang


def run_case(path: Path, backend: str, model=None, timeout_s: int = 30) -> str | None:
    """Convert ``path`` and write its MusicXML; None when it behaved (a score or a
    Perf2ScoreError), else what went wrong (an exception, a warning, a hang)."""
    from perf2score.conversion import convert

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout_s)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("ignore", DeprecationWarning)  # third-party imports
            with contextlib.suppress(Perf2ScoreError):
                convert(path, backend=backend, model=model).to_musicxml()
        if caught:
            first = caught[0]
            where = f"{first.filename}:{first.lineno}"
            return f"warning: {first.category.__name__}: {first.message} ({where})"
        return None
    except _Hang:
        return f"hang: over {timeout_s} s"
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return f"exception: {type(exc).__name__}: {exc} ({where.filename}:{where.lineno})"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def fuzz(
    folder: Path, seed: int, count: int, backend: str = "classical", model=None, start: int = 0
) -> list[Finding]:
    """Run ``count`` mutants of ``seed`` through ``backend``; the findings (none expected)."""
    folder.mkdir(parents=True, exist_ok=True)
    findings = []
    cases = itertools.islice(mutants(seed), start, start + count)
    for index, data in enumerate(cases, start=start):
        path = folder / f"case{index:06d}.mid"
        path.write_bytes(data)
        problem = run_case(path, backend, model)
        if problem:
            findings.append(Finding(index, problem.split(":")[0], problem))
        else:
            path.unlink()
    return findings
