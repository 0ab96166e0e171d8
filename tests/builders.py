"""Small scores and performances built in code (the tests' fixtures; no dataset files)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import partitura as pt
import symusic

from perf2score.midi.reading import NOTE_DTYPE, Performance
from perf2score.score.attributes import SCORE_NOTE_DTYPE
from perf2score.score.reading import ScoreNotes

# (step, octave, alter, start, end, voice, staff) in divisions of DIVS per quarter
DIVS = 12
PIECE = [
    ("C", 5, 0, 0, 12, 1, 1),  # pickup quarter
    ("D", 5, 0, 12, 24, 1, 1),
    ("E", 5, -1, 24, 60, 1, 1),  # crosses the bar line at 48: tied
    ("C", 3, 0, 12, 48, 5, 2),
    ("G", 3, 0, 12, 16, 6, 2),  # a triplet eighth
    ("A", 3, 0, 16, 20, 6, 2),
    ("B", 3, -1, 20, 24, 6, 2),
    ("G", 4, 0, 60, 72, 1, 1),
    ("C", 4, 0, 48, 84, 5, 2),
    ("E", 4, 0, 48, 84, 5, 2),
]


def build_part(
    notes=PIECE, beats: int = 3, beat_type: int = 4, fifths: int = -1, grace: bool = True
) -> pt.score.Part:
    """A two-staff piano part with a pickup, ties across a bar line, triplets and a grace."""
    part = pt.score.Part("P1", "Piano", quarter_duration=DIVS)
    part.add(pt.score.TimeSignature(beats, beat_type), 12)  # measure 1 is a pickup
    part.add(pt.score.KeySignature(fifths, "major"), 0)
    part.add(pt.score.Clef(staff=1, sign="G", line=2, octave_change=0), 0)
    part.add(pt.score.Clef(staff=2, sign="F", line=4, octave_change=0), 0)
    for k, (step, octave, alter, start, end, voice, staff) in enumerate(notes):
        note = pt.score.Note(
            step=step, octave=octave, alter=alter, voice=voice, staff=staff, id=f"n{k}"
        )
        part.add(note, start, end)
    if grace:
        part.add(
            pt.score.GraceNote(
                grace_type="acciaccatura", step="F", octave=5, alter=0, voice=1, staff=1, id="g1"
            ),
            24,
            24,
        )
    part.add(pt.score.Measure(number=1), 0, 12)
    pt.score.add_measures(part)
    pt.score.tie_notes(part)
    return part


def write_musicxml(part: pt.score.Part, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pt.save_musicxml(part, str(path))
    return path


def random_score(n_notes: int, seed: int = 0, tpq: int = 24) -> ScoreNotes:
    """A random but plausible note table: chords and runs on a 16th/triplet grid, 4/4."""
    rng = np.random.default_rng(seed)
    notes = np.zeros(n_notes, dtype=SCORE_NOTE_DTYPE)
    onset = 0
    k = 0
    while k < n_notes:
        chord = min(int(rng.integers(1, 4)), n_notes - k)
        value = int(rng.choice([tpq // 4, tpq // 3, tpq // 2, tpq]))
        pitches = rng.choice(np.arange(36, 96), size=chord, replace=False)
        for p in pitches:
            notes[k] = (
                p,
                onset,
                onset + value * int(rng.integers(1, 3)),
                1 + int(p < 60),
                int(p < 60),
                1 + int(p < 60),
                False,
                "C",
                0,
                4,
                0,
                f"r{k}",
            )
            k += 1
        onset += value
    notes = notes[np.lexsort((notes["pitch"], notes["onset_ticks"]))]
    measures = np.arange(0, onset + 4 * tpq, 4 * tpq, dtype=np.int64)
    return ScoreNotes(notes, tpq, measures, [(0, 4, 4)], [(0, 0, "major")])


def write_midi(
    path: Path,
    tracks: list[list[tuple[int, float, float, int]]],
    drums: list[list[tuple[int, float, float, int]]] = (),
    pedal: list[tuple[float, int]] = (),
) -> Path:
    """Write a MIDI file; each note is (pitch, onset_sec, offset_sec, velocity)."""
    score = symusic.Score(ttype="second")
    for notes, is_drum in [(t, False) for t in tracks] + [(t, True) for t in drums]:
        track = symusic.Track(is_drum=is_drum, ttype="second")
        for pitch, on, off, vel in notes:
            track.notes.append(symusic.Note(on, off - on, pitch, vel, ttype="second"))
        for time, value in pedal if not is_drum else ():
            track.controls.append(symusic.ControlChange(time, 64, value, ttype="second"))
        score.tracks.append(track)
    score.dump_midi(str(path))
    return path


def played_triple(count: int, jitter: float, seed: int = 0) -> Performance:
    """Quarters and eighths (a bar of 3/4 repeated) at 100 a minute, onsets moved by
    Gaussian noise of ``jitter`` seconds (0: a sequencer's export)."""
    values = np.resize([1.0, 0.5, 0.5, 1.0], count)
    quarters = np.concatenate([[0.0], np.cumsum(values)[:-1]])
    rng = np.random.default_rng(seed)
    seconds = 0.5 + 0.6 * quarters + rng.normal(0.0, jitter, count) * (jitter > 0)
    notes = np.zeros(count, dtype=NOTE_DTYPE)
    notes["pitch"] = 60 + np.arange(count) % 12
    notes["velocity"] = 70
    notes["onset_sec"] = np.sort(seconds)
    notes["offset_sec"] = notes["onset_sec"] + 0.5 * values
    return Performance(notes=notes, pedal=np.zeros((0, 2)))


def modulating_performance(path: Path) -> Path:
    """A MIDI file of 48 bars played at 4 notes a second (slightly uneven): 16 bars in C
    major, 16 in A-flat major and 16 in C major again, each bar the scale up and its tonic
    (eight notes)."""
    import numpy as np

    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    pitches = np.concatenate([np.tile(60 + tonic + scale, 16) for tonic in (0, 8, 0)])
    onsets = np.arange(len(pitches)) * 0.25 + np.random.default_rng(3).normal(0, 0.01, len(pitches))
    notes = [(int(p), float(t), float(t) + 0.22, 70) for p, t in zip(pitches, onsets, strict=True)]
    return write_midi(path, [notes])


def written_notes(performance: Performance, model, folder: Path) -> np.ndarray:
    """The notes of ``performance`` converted by the neural ``model`` (a ``NeuralModel``),
    written as MusicXML in ``folder`` and read back, sorted by onset and pitch."""
    from perf2score.conversion import convert
    from perf2score.score.reading import read_score

    path = convert(performance, backend="neural", model=model).save(folder / "x.musicxml")
    return np.sort(read_score(path[0]).notes, order=["onset_ticks", "pitch"])


def layered_performance(seed: int, layers: list[tuple[int, int, int, float, float, float]]):
    """A performance of lines played at once, each ``(count, pitch, spread, step, held,
    jitter)``: ``count`` notes at ``pitch`` ± ``spread`` semitones (random), one every
    ``step`` seconds from 0.1 s, each held ``held`` seconds, onsets jittered by
    ``jitter`` seconds (normal; none at 0), velocity 64; random draws from ``seed``."""
    rng = np.random.default_rng(seed)
    notes = np.zeros(sum(layer[0] for layer in layers), dtype=NOTE_DTYPE)
    first = 0
    for count, pitch, spread, step, held, jitter in layers:
        line = slice(first, first + count)
        notes["pitch"][line] = pitch + rng.integers(-spread, spread + 1, count)
        notes["onset_sec"][line] = 0.1 + np.arange(count) * step
        if jitter:
            notes["onset_sec"][line] += rng.normal(0, jitter, count)
        notes["offset_sec"][line] = notes["onset_sec"][line] + held
        first += count
    notes["velocity"] = 64
    return Performance(notes[np.argsort(notes["onset_sec"], kind="stable")], np.zeros((0, 2)))
