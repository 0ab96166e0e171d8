"""Read a performance MIDI into a typed, sorted note list plus sustain-pedal intervals.

symusic parses the file (fast, and unlike partitura's MIDI reader it keeps every note of
overlapping same-pitch pairs). All non-drum tracks are merged; notes are sorted by
(onset, pitch, offset); times are in seconds, with tempo changes applied.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perf2score.errors import Perf2ScoreError
from perf2score.midi.symusic_import import symusic

SUSTAIN_CC = 64
PEDAL_DOWN_THRESHOLD = 64  # MIDI CC 64 values >= 64 mean "pedal down"

# Structured array layout of a performance's notes (one row per note).
NOTE_DTYPE = np.dtype(
    [
        ("pitch", np.int16),
        ("onset_sec", np.float64),
        ("offset_sec", np.float64),
        ("velocity", np.int16),
        ("track", np.int16),
        ("channel", np.int16),
    ]
)


@dataclass(frozen=True)
class PerformanceNote:
    """One performed note. Times in seconds from the start of the file."""

    pitch: int
    onset_sec: float
    offset_sec: float
    velocity: int
    track: int
    channel: int


@dataclass
class Performance:
    """A performance: notes (structured array, ``NOTE_DTYPE``) and sustain-pedal intervals.

    ``notes`` has shape (N,) sorted by (onset_sec, pitch, offset_sec); ``pedal`` has shape
    (P, 2) with [down_sec, up_sec] rows, sorted and non-overlapping.
    """

    notes: np.ndarray
    pedal: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.notes)

    def __iter__(self):
        for row in self.notes:
            yield PerformanceNote(
                int(row["pitch"]),
                float(row["onset_sec"]),
                float(row["offset_sec"]),
                int(row["velocity"]),
                int(row["track"]),
                int(row["channel"]),
            )

    @property
    def duration_sec(self) -> float:
        """Time of the last note offset (0 for an empty performance)."""
        return float(self.notes["offset_sec"].max()) if len(self.notes) else 0.0


def _pedal_intervals(track: symusic.core.TrackSecond, end_sec: float) -> list[tuple[float, float]]:
    """Sustain-pedal [down, up] intervals of one track from its CC 64 events."""
    intervals: list[tuple[float, float]] = []
    down_at: float | None = None
    controls = sorted((c for c in track.controls if c.number == SUSTAIN_CC), key=lambda c: c.time)
    for control in controls:
        is_down = control.value >= PEDAL_DOWN_THRESHOLD
        if is_down and down_at is None:
            down_at = float(control.time)
        elif not is_down and down_at is not None:
            intervals.append((down_at, float(control.time)))
            down_at = None
    if down_at is not None:
        intervals.append((down_at, max(end_sec, down_at)))
    return intervals


def merge_intervals(intervals: list[tuple[float, float]]) -> np.ndarray:
    """Union of possibly overlapping intervals as a sorted (K, 2) array."""
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return np.asarray(merged, dtype=np.float64).reshape(-1, 2)


def _header_problem(header: bytes) -> str | None:
    """What is wrong with a file's first 14 bytes as a MIDI header (None: nothing)."""
    if header[:4] != b"MThd":
        return "not a MIDI file (no 'MThd' header)"
    if len(header) < 14:
        return "not a MIDI file (the header is cut short)"
    length, _, _, division = struct.unpack(">IHHH", header[4:14])
    if length < 6:
        return f"not a valid MIDI file (header length {length}, at least 6)"
    if division == 0:
        return "not a valid MIDI file (time division 0 ticks per quarter)"
    if division & 0x8000:
        return "SMPTE time division is not supported (only ticks per quarter note)"
    return None


def note_event_counts(data: bytes) -> tuple[int, int]:
    """(note-ons, note-offs) outside the drum channel in a standard MIDI file's raw bytes
    (a note-on with velocity 0 counts as a note-off); a damaged track is read as far as it
    goes."""
    ons = offs = 0
    position = 14
    while position + 8 <= len(data):
        kind = data[position : position + 4]
        length = struct.unpack(">I", data[position + 4 : position + 8])[0]
        body = data[position + 8 : position + 8 + length]
        position += 8 + length
        if kind != b"MTrk":
            continue
        k, status = 0, 0
        while k < len(body):
            while k < len(body) and body[k] & 0x80:  # delta time (variable length)
                k += 1
            k += 1
            if k >= len(body):
                break
            if body[k] & 0x80:
                status = body[k]
                k += 1
            if status in (0xFF, 0xF0, 0xF7):  # meta (type byte first) or sysex
                k += 1 if status == 0xFF else 0
                size = 0
                while k < len(body):
                    size = (size << 7) | (body[k] & 0x7F)
                    k += 1
                    if not body[k - 1] & 0x80:
                        break
                k += size
                status = 0
                continue
            kind_nibble = status & 0xF0
            drum = status & 0x0F == 9  # channel 10: percussion, never read as notes
            if kind_nibble == 0x90 and k + 1 < len(body) and not drum:
                if body[k + 1]:
                    ons += 1
                else:
                    offs += 1
            elif kind_nibble == 0x80 and not drum:
                offs += 1
            k += 1 if kind_nibble in (0xC0, 0xD0) else 2
    return ons, offs


def _no_notes_message(path: Path) -> str:
    ons, offs = note_event_counts(path.read_bytes())
    if ons and not offs:
        return f"{path}: {ons:,} note-ons but no note-offs (no note ever ends)"
    if ons:
        return f"{path}: {ons:,} note-ons but none is matched by a note-off"
    return f"{path}: the MIDI file has no (non-drum) notes"


def read_performance(path: str | os.PathLike) -> Performance:
    """Read a performance MIDI file.

    Raises:
        Perf2ScoreError: the file is missing, not a regular file, empty, not a valid MIDI
            file, or has no (non-drum) notes.
    """
    path = Path(path)
    if path.is_dir():
        raise Perf2ScoreError(f"{path}: is a folder, not a MIDI file")
    if not path.exists():
        raise Perf2ScoreError(f"{path}: no such file")
    if not path.is_file():
        raise Perf2ScoreError(f"{path}: not a regular file (a device, pipe or socket)")
    if path.stat().st_size == 0:
        raise Perf2ScoreError(f"{path}: the file is empty")
    try:
        with open(path, "rb") as handle:
            header = handle.read(14)
    except OSError as exc:
        raise Perf2ScoreError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    problem = _header_problem(header)
    if problem:
        raise Perf2ScoreError(f"{path}: {problem}")
    try:
        score = symusic.Score(str(path), ttype="second")
    except Exception as exc:  # symusic raises plain RuntimeError/ValueError on corrupt data
        raise Perf2ScoreError(f"{path}: cannot parse MIDI ({exc})") from exc

    rows = []
    intervals: list[tuple[float, float]] = []
    for track_index, track in enumerate(score.tracks):
        if track.is_drum:
            continue
        arrays = track.notes.numpy()
        count = len(arrays["pitch"])
        if count:
            block = np.empty(count, dtype=NOTE_DTYPE)
            block["pitch"] = arrays["pitch"]
            block["onset_sec"] = arrays["time"]
            block["offset_sec"] = arrays["time"] + np.maximum(arrays["duration"], 0.0)
            block["velocity"] = arrays["velocity"]
            block["track"] = track_index
            block["channel"] = getattr(track, "channel", 0)
            rows.append(block)
        intervals.extend(_pedal_intervals(track, float(score.end())))
    if not rows:
        raise Perf2ScoreError(_no_notes_message(path))
    notes = np.concatenate(rows)
    if not np.isfinite(notes["onset_sec"]).all() or not np.isfinite(notes["offset_sec"]).all():
        raise Perf2ScoreError(f"{path}: note times are not finite (a damaged tempo or header)")
    notes = notes[np.lexsort((notes["offset_sec"], notes["pitch"], notes["onset_sec"]))]
    return Performance(notes=notes, pedal=merge_intervals(intervals), source=str(path))
