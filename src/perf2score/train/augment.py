"""Data augmentation: performances (tempo, transposition, velocity, dropped/inserted notes,
chord asynchrony), score transposition with respelling, and synthetic performances
rendered from score tables (tempo curves, timing noise, articulation, dynamics, pedal).

Every function takes a ``numpy.random.Generator`` and returns new arrays (inputs are never
modified), so a step's examples depend only on its seed (exact resume).
"""

from __future__ import annotations

import numpy as np

from perf2score.midi.reading import NOTE_DTYPE, Performance
from perf2score.tokens.score import shift_spelling
from perf2score.train.config import AugmentConfig

LOWEST, HIGHEST = 21, 108


def transposition(rng: np.random.Generator, pitches: np.ndarray, limit: int) -> int:
    """A random shift in ``[-limit, limit]`` semitones that keeps every pitch on the piano."""
    if limit <= 0 or len(pitches) == 0:
        return 0
    low = max(-limit, LOWEST - int(pitches.min()))
    high = min(limit, HIGHEST - int(pitches.max()))
    return int(rng.integers(low, high + 1)) if low <= high else 0


def augment_performance(
    rng: np.random.Generator,
    performance: Performance,
    config: AugmentConfig,
) -> tuple[Performance, np.ndarray, int]:
    """(augmented performance sorted by onset, source row of each note (-1 = inserted),
    transposition in semitones).

    """
    notes = performance.notes.copy()
    n = len(notes)
    scale = float(np.exp(rng.uniform(*np.log(config.tempo))))  # > 1 = slower
    source = np.arange(n)
    drop_share = rng.uniform(0, config.drop_notes)
    kept = rng.random(n) >= drop_share
    notes, source = notes[kept], source[kept]
    shift = transposition(rng, notes["pitch"], config.transpose)
    notes["pitch"] += shift
    onsets = notes["onset_sec"] * scale
    durations = (notes["offset_sec"] - notes["onset_sec"]) * scale
    # Chord asynchrony: notes within 30 ms of the previous one get jittered.
    chord = np.diff(onsets, prepend=-1.0) < 0.03
    onsets = onsets + np.where(chord, rng.normal(0, config.asynchrony, len(onsets)), 0.0)
    onsets = np.maximum(onsets, 0.0)
    notes["onset_sec"], notes["offset_sec"] = onsets, onsets + np.maximum(durations, 0.005)
    velocity = notes["velocity"] + rng.normal(0, config.velocity_jitter, len(notes))
    notes["velocity"] = np.clip(np.rint(velocity), 1, 127)
    n_insert = (
        int(rng.binomial(len(notes), rng.uniform(0, config.insert_notes))) if len(notes) else 0
    )
    if n_insert:
        extra = np.zeros(n_insert, dtype=NOTE_DTYPE)
        near = rng.integers(0, len(notes), n_insert)
        extra["pitch"] = np.clip(
            notes["pitch"][near] + rng.integers(-2, 3, n_insert), LOWEST, HIGHEST
        )
        extra["onset_sec"] = notes["onset_sec"][near] + rng.uniform(-0.05, 0.05, n_insert).clip(
            -notes["onset_sec"][near]
        )
        extra["offset_sec"] = extra["onset_sec"] + rng.uniform(0.03, 0.15, n_insert)
        extra["velocity"] = np.clip(
            notes["velocity"][near] - rng.integers(10, 30, n_insert), 1, 127
        )
        notes = np.concatenate([notes, extra])
        source = np.concatenate([source, np.full(n_insert, -1)])
    order = np.lexsort((notes["pitch"], notes["onset_sec"]))
    pedal = np.asarray(performance.pedal, dtype=float).reshape(-1, 2) * scale
    return Performance(notes[order], pedal), source[order], shift


def transpose_score(table: np.ndarray, semitones: int) -> np.ndarray:
    """Shift a score table's pitches by ``semitones`` and respell notes and key signatures.

    The interval is the one whose key change stays within 7 flats/sharps (C -> F#/Gb picks
    the key with fewer accidentals); spellings move along the line of fifths by the same
    amount, so every note keeps its scale degree.
    """
    if semitones == 0 or len(table) == 0:
        return table.copy()
    fifths = (semitones * 7) % 12  # the key change on the line of fifths, modulo 12
    keys = table["key_fifths"].astype(int)
    options = [f for f in (fifths - 12, fifths) if np.all(np.abs(keys + f) <= 7)]
    delta = min(options or [fifths - 12 if fifths > 6 else fifths], key=abs)
    out = table.copy()
    out["pitch"] += semitones
    out["key_fifths"] = np.clip(keys + delta, -7, 7)
    return shift_spelling(out, delta)


def render_performance(
    rng: np.random.Generator, table: np.ndarray, ticks_per_quarter: int
) -> Performance:
    """A synthetic expressive performance of a score table (one note per non-tied row).

    Tempo: a base of 50–160 quarter notes per minute with a slow log-normal random walk
    (per quarter), ritardandi at random phrase ends; timing noise 5–25 ms; articulation
    (sounding share of the written value) 0.4–1.0 per piece with per-note noise; dynamics:
    a piece level with a slow drift, the top voice louder; grace notes 40–90 ms before their
    main note; a pedal changed at every measure in about half of the pieces.
    """
    rows = table[~table["tie_stop"]] if "tie_stop" in table.dtype.names else table
    quarters = rows["onset_ticks"] / ticks_per_quarter  # (N,)
    values = rows["duration_ticks"] / ticks_per_quarter
    span = int(np.ceil(quarters.max() + values.max() + 2)) if len(rows) else 1
    log_tempo = np.log(rng.uniform(50, 160)) + np.cumsum(rng.normal(0, 0.03, span + 1))
    log_tempo -= np.where(rng.random(span + 1) < 0.02, rng.uniform(0.1, 0.4), 0)
    seconds_per_quarter = 60.0 / np.exp(log_tempo)  # (span+1,)
    clock = np.concatenate([[0.0], np.cumsum(seconds_per_quarter)])  # time at each quarter

    def time_at(q: np.ndarray) -> np.ndarray:
        return np.interp(q, np.arange(len(clock)), clock)

    onset = time_at(quarters) + rng.normal(0, rng.uniform(0.005, 0.025), len(rows))
    articulation = np.clip(rng.uniform(0.4, 1.0) + rng.normal(0, 0.1, len(rows)), 0.15, 1.1)
    end = time_at(quarters + values)
    duration = np.maximum((end - time_at(quarters)) * articulation, 0.03)
    grace = rows["is_grace"].astype(bool)
    onset[grace] -= rng.uniform(0.04, 0.09, int(grace.sum()))
    duration[grace] = rng.uniform(0.04, 0.09, int(grace.sum()))
    onset = np.maximum(onset - onset.min(initial=0.0), 0.0)
    level = rng.uniform(45, 85) + np.cumsum(rng.normal(0, 0.5, len(rows)))
    top = np.zeros(len(rows), bool)
    if len(rows):
        order = np.lexsort((-rows["pitch"], rows["onset_ticks"]))
        first = np.r_[True, np.diff(rows["onset_ticks"][order]) != 0]
        top[order[first]] = True
    velocity = level + 10 * top + rng.normal(0, 6, len(rows))
    notes = np.zeros(len(rows), dtype=NOTE_DTYPE)
    notes["pitch"] = rows["pitch"]
    notes["onset_sec"], notes["offset_sec"] = onset, onset + duration
    notes["velocity"] = np.clip(np.rint(velocity), 1, 127)
    notes = notes[np.lexsort((notes["pitch"], notes["onset_sec"]))]
    pedal = np.zeros((0, 2))
    if rng.random() < 0.5 and len(rows):
        starts = np.unique(rows["measure_start_ticks"]) / ticks_per_quarter
        times = time_at(starts) + 0.08
        pedal = np.stack([times[:-1], times[1:] - 0.05], axis=1) if len(times) > 1 else pedal
    return Performance(notes, pedal)
