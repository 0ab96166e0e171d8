"""Stretches of a piece written at twice or half its value scale, found and rewritten.

Inside one decoded window the decoder may switch value scale for a few bars and back: a
run of 16ths written as eighths, because the score LM keeps writing the step it wrote
before while the played steps halve. Each such stretch shifts every later onset (the
bars after it are out of phase by the time it added) and doubles its values. The window
as a whole is at the right scale (``window_tempo`` does not see it).

Here each step between consecutive timed notes is one observation: its octave offset
``log2(score step / played step)`` from the piece's median. A three-state Viterbi pass
(written at ½, 1 or 2 times the piece's scale; ``switch_cost`` per change of state, an
offset costing its distance from the state, capped) labels every step, and the steps of a
stretch at 2 (or ½) are halved (or doubled), with the values of the notes that start
them. Onsets are in ticks of a grid fine enough that halving keeps them whole (the
barring's 48 a quarter halves the decoder's 24-a-quarter steps exactly; an odd step is
floored).
"""

from __future__ import annotations

import math

import numpy as np

from perf2score.neural.window_tempo import step_tempi

OCTAVES = (-1.0, 0.0, 1.0)  # the stretch written at ½, 1 or 2 times the piece's scale
# ... or also as duplets where the score has triplets (¾: triplet eighths written as 16ths)
# and as triplets' longer neighbours (3/2: triplet eighths written as eighths)
TUPLETS = (-1.0, math.log2(3 / 4), 0.0, math.log2(3 / 2), 1.0)
DOUBLED = (0.0, 1.0)  # only stretches written at twice the scale (a slower one may be played so)
STATE_SETS = {"octaves": OCTAVES, "tuplets": TUPLETS, "doubled": DOUBLED}  # by setting
OFFSET_CAP = 2.0  # octaves: an offset costs at most this (ornaments, fermatas, slips)
MIN_STEPS = 16  # observed steps a piece needs before anything is rewritten


def octave_offsets(
    onsets: np.ndarray, seconds: np.ndarray, gap: float, clock: np.ndarray | None = None
) -> np.ndarray:
    """(K - 1,) per step between consecutive notes (``onsets`` (K,) in ticks, ``seconds``
    (K,) performed, both in playing order): log2(score step / played step) minus the median
    over the observed steps, the played step measured on ``clock`` (K,) (default: the
    seconds; e.g. tracked beats, the rubato taken out); nan where the step is not observed
    (``window_tempo.step_tempi``) or fewer than ``MIN_STEPS`` are."""
    ratio = step_tempi(onsets, seconds, gap, clock) / math.log(2.0)
    seen = ~np.isnan(ratio)
    offsets = np.full(len(ratio), np.nan)
    if seen.sum() < MIN_STEPS:
        return offsets
    offsets[seen] = ratio[seen] - np.median(ratio[seen])
    return offsets


def segment_states(
    offsets: np.ndarray, switch_cost: float, states: tuple[float, ...] = OCTAVES
) -> np.ndarray:
    """(K,) state per step (one of ``states``, in octaves, which holds 0) of the cheapest
    labelling of ``offsets`` (K,) (nan: no observation, no cost): each step costs
    min(|offset - state|, ``OFFSET_CAP``), each change of state ``switch_cost``; the piece
    starts in state 0 (a start elsewhere costs a change)."""
    k = len(offsets)
    levels = np.asarray(states, dtype=np.float64)
    if k == 0:
        return np.zeros(0)
    emit = np.minimum(np.abs(offsets[:, None] - levels[None, :]), OFFSET_CAP)
    emit = np.nan_to_num(emit, nan=0.0)  # (K, S)
    change = switch_cost * (levels[:, None] != levels[None, :])  # (from, to)
    cost = np.where(levels == 0, 0.0, switch_cost) + emit[0]
    back = np.zeros((k, len(levels)), dtype=np.int64)
    columns = np.arange(len(levels))
    for i in range(1, k):
        total = cost[:, None] + change  # (from, to)
        back[i] = total.argmin(0)
        cost = total[back[i], columns] + emit[i]
    path = np.zeros(k, dtype=np.int64)
    path[-1] = int(cost.argmin())
    for i in range(k - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return levels[path]


def rescale_segments(
    onsets: np.ndarray,
    durations: np.ndarray,
    seconds: np.ndarray,
    timed: np.ndarray,
    kept: np.ndarray,
    gap: float,
    switch_cost: float,
    states: tuple[float, ...] = OCTAVES,
    clock: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """(onsets (N,), durations (N,), notes moved) with the stretches written at another
    scale than the piece's (``segment_states`` over ``states``) rewritten at its scale
    (copies). ``onsets``/``durations`` (N,) integer ticks, ``seconds`` (N,) the performed
    onsets (``clock`` (N,): the played steps measured on it instead, as
    ``octave_offsets``), ``timed`` (N,) the notes that carry the time (kept, not grace
    notes), in playing order; ``kept`` (N,) the notes not dropped (the dropped ones are
    left as they are). A timed note's step to the next timed note is multiplied by
    2^-state and so is its value (rounded: onsets from the running sum, so rounding does
    not add up); the other kept notes move with the timed note before them (the first
    timed note, before any) and take its factor. ``switch_cost`` 0: nothing changes."""
    onsets, durations = onsets.copy(), durations.copy()
    rows = np.flatnonzero(timed)
    if switch_cost <= 0 or len(rows) < 2:
        return onsets, durations, 0
    played = None if clock is None else clock[rows]
    offsets = octave_offsets(onsets[rows], seconds[rows], gap, played)
    if np.isnan(offsets).all():
        return onsets, durations, 0
    levels = segment_states(offsets, switch_cost, states)  # (K - 1,) per step
    if not levels.any():
        return onsets, durations, 0
    factors = np.exp2(-levels)
    steps = np.diff(onsets[rows]).astype(np.float64)
    new_rows = onsets[rows[0]] + np.rint(np.concatenate([[0.0], np.cumsum(steps * factors)]))
    owner = np.clip(np.searchsorted(rows, np.arange(len(onsets)), side="right") - 1, 0, None)
    shift = np.where(kept, (new_rows.astype(np.int64) - onsets[rows])[owner], 0)
    note_factor = np.where(kept, np.concatenate([factors, [factors[-1]]])[owner], 1.0)
    changed = note_factor != 1.0  # a note: the factor of its step
    durations[changed] = np.maximum(np.rint(durations[changed] * note_factor[changed]), 1)
    return onsets + shift, durations, int(changed[timed].sum())
