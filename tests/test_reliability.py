"""Reliability: killed batches leave no process and no partial file, colliding outputs are
refused, bad inputs are one-line errors with exit status 2, every MIDI pitch gives valid
MusicXML, and a seeded fuzz run finds nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from builders import write_midi
from fuzzing import fuzz, midi_file, varlen

import perf2score
from perf2score.cli import main
from perf2score.errors import Perf2ScoreError
from perf2score.midi.reading import NOTE_DTYPE, Performance
from perf2score.score.assembly import AssembledScore, Chord, Measure
from perf2score.score.musicxml import to_musicxml

LINUX_PROC = Path("/proc/self/stat").exists()


def _performance(path: Path, notes: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    onsets = np.cumsum(rng.choice([0.0, 0.25, 0.5], size=notes))
    rows = [
        (int(p), float(t), float(t) + 0.3, 70)
        for p, t in zip(rng.integers(36, 90, size=notes), onsets, strict=True)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_midi(path, tracks=[rows])


def _perf(rows: list[tuple[int, float, float]]) -> Performance:
    notes = np.zeros(len(rows), NOTE_DTYPE)
    for k, (pitch, onset, offset) in enumerate(rows):
        notes[k]["pitch"], notes[k]["onset_sec"], notes[k]["offset_sec"] = pitch, onset, offset
        notes[k]["velocity"] = 64
    return Performance(notes, np.zeros((0, 2)))


# --- killed batches ---------------------------------------------------------------------


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def big_batch(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("batch")
    for k in range(16):
        _performance(folder / f"p{k:02d}.mid", 3000, seed=k)
    return folder


def _start_batch(folder: Path, out: Path) -> tuple[subprocess.Popen, set[int]]:
    """A 2-worker classical batch, once both workers run and the first file is written."""
    command = [sys.executable, "-m", "perf2score", "-q", "convert", str(folder)]
    command += ["--out-dir", str(out), "--backend", "classical", "--workers", "2"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 120
    workers: set[int] = set()
    while time.monotonic() < deadline and process.poll() is None:
        workers |= _children(process.pid)
        if len(workers) >= 2 and out.is_dir() and any(out.glob("*.musicxml")):
            return process, workers
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"the batch did not get going: {process.communicate()[1].decode()}")


def _check_nothing_left(out: Path, workers: set[int]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers), "a worker outlived its parent"
    written = sorted(out.iterdir())
    time.sleep(1.0)
    assert sorted(out.iterdir()) == written, "outputs were written after the parent ended"
    assert not [p for p in written if p.name.startswith(".")], "a temporary file was left"
    assert 0 < len(written) < 16, "the batch was not stopped midway"
    for path in written:
        ET.parse(path)  # every output that exists is whole


@pytest.mark.skipif(not LINUX_PROC, reason="reads worker processes from /proc (Linux)")
@pytest.mark.parametrize(
    ("how", "code"),
    [("SIGTERM", 143), ("SIGINT", 130), ("SIGKILL", -signal.SIGKILL)],
)
def test_a_stopped_batch_leaves_no_worker_and_no_partial_file(big_batch, tmp_path, how, code):
    out = tmp_path / "out"
    process, workers = _start_batch(big_batch, out)
    if how == "SIGINT":  # Ctrl-C: the terminal signals the whole process group
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(getattr(signal, how))
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err.decode()[-3000:]
    _check_nothing_left(out, workers)
    err = err.decode()
    assert "Traceback" not in err and "Exception ignored" not in err
    if how != "SIGKILL":
        assert err.strip().splitlines()[-1] in ("perf2score: interrupted", "perf2score: terminated")


@pytest.mark.skipif(not LINUX_PROC, reason="reads worker processes from /proc (Linux)")
def test_a_killed_worker_is_one_line_and_stops_the_batch(big_batch, tmp_path):
    out = tmp_path / "out"
    process, workers = _start_batch(big_batch, out)
    os.kill(min(workers), signal.SIGKILL)  # as the kernel's out-of-memory killer would
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "a worker process died" in lines[0], lines
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)


# --- outputs that would be lost ---------------------------------------------------------


def test_outputs_that_collide_are_refused_before_converting(tmp_path, capsys):
    for folder in ("d1", "d2"):
        _performance(tmp_path / folder / "x.mid", 20)
    out = tmp_path / "out"
    args = ["-q", "convert", str(tmp_path / "d1" / "x.mid"), str(tmp_path / "d2" / "x.mid")]
    assert main([*args, "--out-dir", str(out), "--backend", "classical"]) == 2
    err = capsys.readouterr().err
    assert "would both be written to" in err and err.count("\n") == 1
    assert not out.exists()

    _performance(tmp_path / "same" / "y.mid", 20)
    _performance(tmp_path / "same" / "y.midi", 20, seed=1)
    assert main(["-q", "convert", str(tmp_path / "same"), "--backend", "classical"]) == 2
    assert "y.musicxml" in capsys.readouterr().err
    assert not (tmp_path / "same" / "y.musicxml").exists()

    source = tmp_path / "same" / "y.mid"  # an output may not replace its input
    assert main(["convert", str(source), "-o", str(source), "--backend", "classical"]) == 2
    assert "replace the input" in capsys.readouterr().err


def test_a_file_named_twice_is_converted_once(tmp_path, capsys):
    source = _performance(tmp_path / "in" / "z.mid", 20)
    args = ["-q", "convert", str(source), str(tmp_path / "in"), "--backend", "classical"]
    assert main([*args, "--out-dir", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "named more than once: converted once" in captured.err
    assert captured.out.splitlines() == [str(tmp_path / "out" / "z.musicxml")]


# --- exit status and early checks -------------------------------------------------------


BAD_FILES = {
    "corrupt.mid": (
        b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\xff\xff",
        "cannot parse",
    ),
    "empty.mid": (b"", "empty"),
    "text.mid": (b"hello", "not a MIDI file"),
    "division0.mid": (
        midi_file([b"\x00\x90\x3c\x40\x83\x60\x80\x3c\x00"], division=0),
        "time division 0",
    ),
    "smpte.mid": (
        midi_file([b"\x00\x90\x3c\x40\x83\x60\x80\x3c\x00"], division=0xE728),
        "SMPTE",
    ),
    "no-offs.mid": (
        midi_file([b"".join(varlen(10) + bytes([0x90, 60 + k % 12, 80]) for k in range(1000))]),
        "1,000 note-ons but no note-offs",
    ),
    "drums.mid": (midi_file([b"\x00\x99\x24\x40\x83\x60\x89\x24\x00"]), "no (non-drum) notes"),
    "long.mid": (
        midi_file([b"\x00\x90\x3c\x40" + varlen(480 * 2 * (3 * 3600 + 60)) + b"\x80\x3c\x00"]),
        "lasts 3 h 01 min (at most 3 h)",
    ),
}


@pytest.mark.parametrize("backend", ["classical", "neural"])
@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_single_files_are_one_line_errors_with_status_2(tmp_path, capsys, name, backend):
    content, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / "out.musicxml"
    assert main(["-q", "convert", str(path), "-o", str(out), "--backend", backend]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not out.exists()


def test_a_device_or_folder_is_not_a_midi_file(tmp_path, capsys):
    for source, message in (("/dev/zero", "not a regular file"), (str(tmp_path), "is a folder")):
        with pytest.raises(Perf2ScoreError, match=message):
            perf2score.convert(source, backend="classical")
    assert main(["-q", "convert", "/dev/zero", "-o", str(tmp_path / "z.musicxml")]) == 2
    assert "not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("output", "extra", "message"),
    [
        ("/proc/perf2score-test/out.musicxml", [], "cannot write there"),
        ("{tmp}", ["--format", "musicxml"], "-o"),  # -o naming a folder
        ("{tmp}/x.pdf", ["--format", "musicxml"], "names a pdf file but --format asks for"),
    ],
)
def test_bad_destinations_are_refused_before_converting(tmp_path, capsys, output, extra, message):
    source = _performance(tmp_path / "a.mid", 20)
    output = output.format(tmp=tmp_path)
    start = time.monotonic()
    code = main(["convert", str(source), "-o", output, *extra, "--backend", "neural"])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "internal error" not in err, err
    assert time.monotonic() - start < 5  # refused up front, not after converting
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mid"]


@pytest.mark.parametrize("workers", ["0", "-3", "two"])
def test_workers_must_be_a_positive_number(tmp_path, capsys, workers):
    with pytest.raises(SystemExit) as stop:
        main(["convert", str(tmp_path / "a.mid"), "--workers", workers])
    assert stop.value.code == 2
    assert "--workers" in capsys.readouterr().err


# --- unchecked numbers ------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["classical", "neural"])
def test_short_and_degenerate_performances_convert(backend):
    cases = {
        "one note": [(60, 0.0, 0.5)],
        "one chord": [(60, 0.0, 1.0), (64, 0.0, 1.0), (67, 0.0, 1.0)],
        "half a second": [(60, 0.0, 0.1), (62, 0.2, 0.3), (64, 0.4, 0.6)],
        "zero lengths": [(60, 0.0, 0.0), (62, 0.0, 0.0)],
        "far apart": [(60, 0.0, 0.1), (62, 100.0, 100.1)],
    }
    for name, rows in cases.items():
        score = perf2score.convert(_perf(rows), backend=backend)
        played = sorted(p[0] for c in score.assembled.chords for p in c.pitches)
        assert played == sorted(r[0] for r in rows), name
        ET.fromstring(score.to_musicxml().split("\n", 2)[2])


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "no notes"),
        ([(60, -0.5, 0.5)], "starts before 0 s"),
        ([(60, 1.0, 0.5)], "end before they start"),
        ([(60, float("nan"), 0.5)], "not finite"),
        ([(200, 0.0, 0.5)], "0-127"),
    ],
)
def test_api_performances_are_checked(rows, message):
    with pytest.raises(Perf2ScoreError, match=message):
        perf2score.convert(_perf(rows), backend="classical")


def test_unsorted_api_notes_are_sorted():
    score = perf2score.convert(_perf([(64, 1.0, 1.5), (60, 0.0, 0.5)]), backend="classical")
    assert [c.pitches[0][0] for c in score.assembled.chords] == [60, 64]


# --- schema and byte form ---------------------------------------------------------------


def test_every_midi_pitch_gives_valid_musicxml(tmp_path):
    from partitura.io.importmusicxml import validate_musicxml

    rows = [(p, 0.25 * (p // 2), 0.25 * (p // 2) + 0.2) for p in range(128)]  # pairs: chords
    for backend in ("classical", "neural"):
        score = perf2score.convert(_perf(rows), backend=backend)
        path = score.save(tmp_path / f"{backend}.musicxml")[0]
        assert validate_musicxml(str(path)), backend
        text = path.read_text()
        assert "<octave>-1</octave>" not in text
        assert " />" not in text and "<chord/>" in text  # empty elements as MuseScore writes them
        assert any("octave higher" in r for r in score.repairs)


def test_a_triplet_whole_rest_is_not_a_measure_rest(capfd):
    """A rest of a triplet whole in a longer measure was written as a measure rest inside a
    tuplet, which verovio reports as an error while engraving."""
    from perf2score.score.export import _toolkit

    measures = [
        Measure(0, 96, 4, 4, 0, 0),
        Measure(96, 64, 4, 4, 0, 0),
        Measure(160, 96, 4, 4, 0, 0),
    ]
    chords = [
        Chord(0, 96, 1, 1, [(60, "C", 0, 4)]),
        Chord(96, 8, 1, 1, [(62, "D", 0, 4)]),
        Chord(104, 8, 1, 1, [(64, "E", 0, 4)]),
        Chord(112, 48, 1, 1, [(65, "F", 0, 4)]),
        Chord(160, 96, 1, 1, [(67, "G", 0, 4)]),
    ]
    text = to_musicxml(AssembledScore(measures, chords, 24, 100.0, "t", []))
    second = text[text.index('<measure number="2"') : text.index('<measure number="3"')]
    assert 'measure="yes"' not in second and "<rest/>" in second
    toolkit = _toolkit(text)
    for page in range(1, toolkit.getPageCount() + 1):
        toolkit.renderToSVG(page)
    assert "[Error]" not in capfd.readouterr().err


# --- fuzzing ----------------------------------------------------------------------------


def test_seeded_fuzz_finds_nothing(tmp_path):
    findings = fuzz(tmp_path, seed=2026, count=600, backend="classical")
    assert findings == [], findings[:5]


def test_seeded_fuzz_through_the_neural_backend(tmp_path):
    from perf2score.neural.converter import load_neural_model

    model = load_neural_model()
    findings = fuzz(tmp_path, seed=7, count=60, backend="neural", model=model)
    assert findings == [], findings[:5]
