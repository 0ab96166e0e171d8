"""perf2score.convert and the convert command: results, bad inputs, batches."""

from __future__ import annotations

import shutil
import subprocess
import time

import numpy as np
import pytest
from builders import write_midi

from perf2score import Perf2ScoreError, convert
from perf2score.cli import main
from perf2score.evaluate.muster import evaluate_scores
from perf2score.midi.reading import NOTE_DTYPE, Performance
from perf2score.score import read_score


def _steady_performance(path, bars: int = 12, bpm: float = 96.0, seed: int = 0):
    """A 3/4 waltz-like performance with mild timing noise; returns its note list."""
    rng = np.random.default_rng(seed)
    beat = 60.0 / bpm
    notes = []
    for bar in range(bars):
        start = 3 * bar * beat
        notes.append((48 + (bar % 4) * 2, start, start + beat * 0.95, 80))  # downbeat bass
        for b in (1, 2):
            for p in (60, 64):
                t = start + b * beat + rng.normal(0, 0.008)
                notes.append((p + (bar % 3), t, t + beat * 0.5, 55))
        for k in range(6):  # eighth-note melody
            t = start + k * beat / 2 + rng.normal(0, 0.01)
            notes.append((72 + (k + bar) % 7, t, t + beat * 0.45, 70))
    write_midi(path, tracks=[notes])
    return notes


def test_convert_a_steady_waltz(tmp_path):
    _steady_performance(tmp_path / "waltz.mid")
    score = convert(tmp_path / "waltz.mid", backend="classical")
    assert score.backend == "classical"
    measures = score.assembled.measures
    assert {(m.ts_num, m.ts_den) for m in measures[1:-1]} == {(3, 4)}
    out = score.save(tmp_path / "waltz.musicxml")[0]
    result = evaluate_scores(read_score(out), read_score(out))
    assert result.e_avg == 0.0
    # the melody's eighths are quantised as eighths: onsets a multiple of half a beat
    notes = read_score(out).notes
    melody = notes[notes["pitch"] >= 72]
    assert np.all(melody["onset_ticks"] % (read_score(out).ticks_per_quarter // 2) == 0)
    assert {int(h) for h in notes["hand"][notes["pitch"] < 52]} == {1}


def test_api_accepts_notes_and_reports_the_backend(tmp_path, monkeypatch):
    import perf2score.shipped as shipped

    notes = np.zeros(8, dtype=NOTE_DTYPE)
    notes["pitch"] = [60, 62, 64, 65, 67, 69, 71, 72]
    played = np.arange(8) * 0.5 + np.array([0, 0.04, -0.03, 0.05, 0, -0.04, 0.03, 0.02])
    notes["onset_sec"] = played  # as a person plays: off the grid
    notes["offset_sec"] = notes["onset_sec"] + 0.45
    notes["velocity"] = 64
    performance = Performance(notes, np.zeros((0, 2)))
    assert shipped.shipped_available()  # the package ships a fine-tuned model
    score = convert(performance, backend="auto")
    assert score.backend == "neural"
    exact = notes.copy()
    exact["onset_sec"] = np.arange(8) * 0.5  # a sequencer's export: on the grid
    exact["offset_sec"] = exact["onset_sec"] + 0.45
    exact_performance = Performance(exact, np.zeros((0, 2)))
    assert convert(exact_performance, backend="auto").backend == "classical"
    assert convert(exact_performance, backend="neural").backend == "neural"
    assert convert(exact_performance, backend="auto", time_signature="3/4").backend == "neural"
    assert "<score-partwise" in score.to_musicxml()
    assert convert(performance, backend="classical").backend == "classical"
    monkeypatch.setattr(shipped, "SHIPPED_ADAPTER", tmp_path / "none")  # a package without weights
    assert convert(performance, backend="auto").backend == "classical"
    with pytest.raises(Perf2ScoreError, match="no trained neural model"):
        convert(performance, backend="neural")


def test_zero_length_and_very_late_notes_give_sane_scores(tmp_path):
    path = write_midi(
        tmp_path / "odd.mid",
        tracks=[
            [
                (60, 0.0, 0.0, 64),
                (64, 0.5, 0.5, 64),
                (67, 1.0, 1.4, 64),
                (72, 3700.0, 3700.5, 64),
            ]
        ],
    )
    start = time.perf_counter()
    score = convert(path, backend="classical")
    assert time.perf_counter() - start < 60
    written = score.save(tmp_path / "odd.musicxml")
    assert len(read_score(written[0])) == 4


def test_too_many_notes_is_refused(tmp_path):
    n = 100_001
    notes = np.zeros(n, dtype=NOTE_DTYPE)
    notes["pitch"] = 60
    notes["onset_sec"] = np.arange(n) * 0.01
    notes["offset_sec"] = notes["onset_sec"] + 0.005
    with pytest.raises(Perf2ScoreError, match="at most 100,000"):
        convert(Performance(notes, np.zeros((0, 2)), source="big.mid"))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("text.mid", b"hello, not music", "not a MIDI file"),
        ("empty.mid", b"", "empty"),
        (
            "truncated.mid",
            b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x10\x00\x00",
            "cannot parse",
        ),
    ],
)
def test_cli_bad_inputs_are_one_line_errors(tmp_path, capsys, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["-q", "convert", str(path), "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_cli_auto_converts_a_file_played_exactly_with_the_classical_backend(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _steady_performance(folder / "played.mid", bars=8)  # onsets off the grid by 8-10 ms
    exact = [(60 + k % 12, 0.5 + 0.5 * k, 0.9 + 0.5 * k, 70) for k in range(48)]
    write_midi(folder / "exact.mid", tracks=[exact])  # a sequencer's export
    assert main(["-q", "convert", str(folder), "--out-dir", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "exact.mid: played exactly as written: converted with the classical backend" in err
    assert "played.mid" not in err  # the neural model, as announced
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "exact.musicxml",
        "played.musicxml",
    ]


def test_cli_batch_survives_a_bad_file(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _steady_performance(folder / "good.mid", bars=4)
    write_midi(folder / "drums.mid", tracks=[], drums=[[(36, 0.0, 0.1, 90)]])
    code = main(
        [
            "-q",
            "convert",
            str(folder),
            "--out-dir",
            str(tmp_path / "out"),
            "--format",
            "musicxml",
            "mid",
            "--backend",
            "classical",
        ]
    )
    assert code == 2  # a bad input, not a bug
    captured = capsys.readouterr()
    assert "converted 1/2 files" in captured.err and "drums.mid" in captured.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.mid", "good.musicxml"]
    assert (
        main(
            [
                "convert",
                str(folder / "good.mid"),
                "-o",
                str(tmp_path / "x.png"),
                "--format",
                "musicxml",
                "mid",
            ]
        )
        == 2
    )


@pytest.mark.skipif(
    shutil.which("mscore3") is None, reason="MuseScore 3 (mscore3) is not installed"
)
def test_musescore3_opens_and_renders_our_musicxml(tmp_path):
    _steady_performance(tmp_path / "w.mid", bars=6)
    xml = convert(tmp_path / "w.mid").save(tmp_path / "w.musicxml")[0]
    pdf = tmp_path / "w.pdf"
    run = subprocess.run(
        ["mscore3", "-o", str(pdf), str(xml)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert pdf.read_bytes()[:4] == b"%PDF"


def test_outputs_get_ordinary_file_permissions(tmp_path):
    import os

    from perf2score.files import atomic_write

    mask = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "x.musicxml", "<x/>")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
