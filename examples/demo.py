"""The demo: a piece, an expressive performance of it, its conversion, and the scores.

Everything is generated here (no dataset file): a 16-bar minuet-like piece in 3/4 is
written as MusicXML (the ground truth) and played with a rubato tempo curve, timing noise
and velocity shaping into ``examples/out/performance.mid``. ``perf2score.convert`` turns the
performance into a score (MusicXML and PNG); it, the same conversion told the piece's time
signature and tempo (``time_signature="3/4", tempo=100``, what a musician who knows the piece
would give) and a naive fixed-tempo transcription (a 16th-note grid) are scored against the
ground truth with the project's evaluator.

Run: ``make demo`` (or ``.venv/bin/python examples/demo.py``). Outputs go to examples/out/.
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import numpy as np
import partitura as pt
import symusic

from perf2score import convert, read_performance
from perf2score.evaluate import evaluate
from perf2score.score import read_score

OUT = Path(__file__).resolve().parent / "out"
DIVS = 4  # divisions per quarter: a 16th-note grid
WRITABLE = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)  # note values in quarters
STEPS = {
    0: ("C", 0),
    2: ("D", 0),
    4: ("E", 0),
    5: ("F", 0),
    7: ("G", 0),
    9: ("A", 0),
    11: ("B", 0),
    6: ("F", 1),
    1: ("C", 1),
    3: ("E", -1),
    8: ("G", 1),
    10: ("B", -1),
}


def piece() -> list[tuple[int, float, float, int]]:
    """(pitch, onset in quarters, duration in quarters, staff) for 16 bars of 3/4 in G."""
    rng = np.random.default_rng(7)
    scale = [67, 69, 71, 72, 74, 76, 78, 79]
    bass = [43, 50, 47, 48, 45, 50, 43, 50]
    notes = []
    for bar in range(16):
        start = 3.0 * bar
        rhythm = [[1, 1, 1], [0.5, 0.5, 1, 1], [2, 1], [1, 0.5, 0.5, 1]][rng.integers(4)]
        if bar % 4 == 3:
            rhythm = [3]
        t, degree = start, int(rng.integers(0, 5))
        for value in rhythm:
            degree = int(np.clip(degree + rng.integers(-2, 3), 0, len(scale) - 1))
            notes.append((scale[degree], t, value, 1))
            t += value
        root = bass[bar % len(bass)]
        notes.append((root, start, 1.0, 2))
        notes.extend(
            [(root + 12, start + 1, 1.0, 2), (root + 16, start + 1, 1.0, 2)]
            if bar % 4 != 3
            else [(root + 7, start, 3.0, 2)]
        )
    return notes


def write_score(notes, path: Path, title: str) -> None:
    part = pt.score.Part("P1", title, quarter_duration=DIVS)
    part.add(pt.score.TimeSignature(3, 4), 0)
    part.add(pt.score.KeySignature(1, "major"), 0)
    part.add(pt.score.Clef(staff=1, sign="G", line=2, octave_change=0), 0)
    part.add(pt.score.Clef(staff=2, sign="F", line=4, octave_change=0), 0)
    for k, (pitch, onset, duration, staff) in enumerate(notes):
        step, alter = STEPS[pitch % 12]
        octave = (pitch - alter) // 12 - 1
        start = round(onset * DIVS)
        part.add(
            pt.score.Note(
                step=step,
                octave=octave,
                alter=alter,
                staff=staff,
                voice=1 if staff == 1 else 5,
                id=f"n{k}",
            ),
            start,
            start + max(1, round(duration * DIVS)),
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pt.score.add_measures(part)
        pt.score.tie_notes(part)
        pt.save_musicxml(part, str(path))


def perform(notes, path: Path) -> None:
    """Rubato (a slow tempo wave plus phrase-final slowing), jitter, and dynamics."""
    rng = np.random.default_rng(1)

    def seconds(q: float) -> float:  # integrate a tempo curve around 100 bpm
        steps = np.linspace(0, q, 200) if q > 0 else np.zeros(1)
        bpm = 100 + 12 * np.sin(steps / 6.0) - 15 * np.exp(-(((steps % 12) - 12) ** 2))
        return float(np.trapezoid(60.0 / bpm, steps)) if q > 0 else 0.0

    track = symusic.Track(ttype="second")
    for pitch, onset, duration, staff in notes:
        start, end = seconds(onset), seconds(onset + duration)
        on = start + rng.normal(0, 0.012) + 0.5
        off = start + 0.98 * (end - start) + 0.5  # released just before the written end
        velocity = int(np.clip(72 - 10 * (staff - 1) + 8 * math.sin(onset / 5), 20, 120))
        track.notes.append(
            symusic.Note(max(on, 0.0), max(off - on, 0.05), pitch, velocity, ttype="second")
        )
    score = symusic.Score(ttype="second")
    score.tracks.append(track)
    score.dump_midi(str(path))


def naive_transcription(performance) -> list[tuple[int, float, float, int]]:
    """Fixed tempo from the median inter-onset interval, 16th-note grid, split at middle C."""
    onsets = performance.notes["onset_sec"]
    gaps = np.diff(np.unique(np.round(onsets, 2)))
    beat = float(np.median(gaps[gaps > 0.15])) if np.any(gaps > 0.15) else 0.6
    origin = onsets.min()
    out = []
    for note in performance:
        onset = round((note.onset_sec - origin) / beat * DIVS) / DIVS
        raw = (note.offset_sec - note.onset_sec) / beat
        duration = min(WRITABLE, key=lambda v: abs(v - raw))  # plain or dotted values only
        out.append((note.pitch, onset, duration, 1 if note.pitch >= 60 else 2))
    return out


def _shape(path: Path) -> str:
    """'3/4, 16 bars': the time signatures and the number of measures of a score file."""
    score = read_score(path)
    meters = sorted({f"{num}/{den}" for _, num, den in score.time_signatures})
    return f"{', '.join(meters)}, {len(score.measure_starts)} bars"


def _report(label: str, truth: Path, estimate: Path) -> None:
    result = evaluate(truth, estimate)
    rates = "  ".join(
        f"{name} {result[key]:.1f}"
        for key, name in (
            ("e_avg", "E_avg"),
            ("onset_er", "onset"),
            ("offset_er", "offset"),
            ("missing_rate", "missing"),
            ("extra_rate", "extra"),
            ("hand_er", "hand"),
        )
    )
    print(f"  {label:<34s} {rates}  MV2H {result['mv2h']:.3f}  ({_shape(estimate)})")


def main() -> int:
    OUT.mkdir(exist_ok=True)
    notes = piece()
    truth, midi = OUT / "truth.musicxml", OUT / "performance.mid"
    write_score(notes, truth, "Demo minuet")
    perform(notes, midi)
    performance = read_performance(midi)
    print(f"performance: {len(performance)} notes, {performance.duration_sec:.1f} s -> {midi}")

    score = convert(midi)
    written = score.save(OUT / "performance.musicxml") + score.save(OUT / "performance.png")
    print(f"converted with the {score.backend} backend:")
    for path in written:
        print(f"  {path}")
    others = []
    if score.backend != "classical":  # the shipped model next to the classical converter
        classical = OUT / "classical.musicxml"
        convert(midi, backend="classical").save(classical)
        others.append(("classical backend", classical))
        # what a musician who knows the piece would add: its meter and tempo
        told = OUT / "performance-told.musicxml"
        convert(midi, time_signature="3/4", tempo=100).save(told)
        others.append(("neural, told 3/4 and ♩ = 100", told))
    naive = OUT / "naive.musicxml"
    write_score(naive_transcription(performance), naive, "Naive transcription")
    others.append(("naive fixed-tempo 16th grid", naive))
    print(f"scored against the ground truth {truth} ({_shape(truth)}; rates in %):")
    _report(f"perf2score convert ({score.backend})", truth, OUT / "performance.musicxml")
    for label, path in others:
        _report(label, truth, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
