"""Whole beats from the beat clock, for steady performances.

On a steady performance (``DecodeConfig.steady_residual``: the onsets sit near the classical
beat tracker's grid) the decoder reads its running tempo on the tracked-beat clock, but it
can still write a held note a beat short where the player slows into a phrase end (``make
demo``'s minuet: a dotted half written as a half), and every later bar line is then a beat
out. The tracker, for its part, slips by a fraction of a beat where the slowing is
strongest, and may count at another metrical level in places. So a step between two decoded
onsets takes the clock's length only where the decoder counts two or more whole beats, the
clock exactly one more, and the two clocks agree on the level over the piece: a beat lost at
a held note, never a rhythm inside the beat.
"""

from __future__ import annotations

import numpy as np

from perf2score.constants import GRID_PER_QUARTER

SCALE_TOLERANCE = 0.1  # |log2| off a power of two beyond which the clock's level is unclear


def clock_scale(onsets: np.ndarray, clock: np.ndarray) -> float:
    """Decoded quarters per clock beat: the power of two that the ratio of the decoded span
    to the clock's (``onsets`` (K,) ticks at ``GRID_PER_QUARTER``, ``clock`` (K,) beats) is
    within ``SCALE_TOLERANCE`` (log2) of; 0.0 when it is near none (the decoder and the
    tracker count beats at different levels in places) or either span is empty."""
    decoded = float(np.ptp(onsets)) / GRID_PER_QUARTER if len(onsets) else 0.0
    counted = float(np.ptp(clock)) if len(clock) else 0.0
    if decoded <= 0 or counted <= 0:
        return 0.0
    level = np.log2(decoded / counted)
    if abs(level - np.round(level)) > SCALE_TOLERANCE:
        return 0.0
    return float(2.0 ** np.round(level))


def cluster_medians(values: np.ndarray, inverse: np.ndarray, count: int) -> np.ndarray:
    """(count,) the median of ``values`` (K,) within each group ``inverse`` (K,) (every
    group from 0 to count - 1 non-empty), in one sort."""
    order = np.lexsort((values, inverse))
    ranked = values[order]
    sizes = np.bincount(inverse, minlength=count)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return 0.5 * (ranked[starts + (sizes - 1) // 2] + ranked[starts + sizes // 2])


def whole_beat_steps(onsets: np.ndarray, kept: np.ndarray, clock: np.ndarray) -> np.ndarray:
    """Onsets (N,) (ticks at ``GRID_PER_QUARTER``) with each step between consecutive
    decoded onsets of the ``kept`` notes (N,) lengthened by a beat where the decoder counts
    two or more whole beats and the clock one more (the module docstring). ``clock`` (N,):
    each note's onset in tracked beats (``perf2score.classical.rhythm.beat_clock``). Other
    notes keep their onsets."""
    out = np.asarray(onsets, dtype=np.int64).copy()
    if kept.sum() < 2:
        return out
    times, inverse = np.unique(out[kept], return_inverse=True)  # (C,)
    beats = cluster_medians(np.asarray(clock, dtype=np.float64)[kept], inverse, len(times))
    beat = clock_scale(times, beats) * GRID_PER_QUARTER  # ticks per clock beat
    if beat != int(beat) or beat < 1:  # (0: no clear level)
        return out
    decoded_steps = np.diff(times)  # (C - 1,) ticks
    counted = np.diff(beats)  # (C - 1,) beats
    whole_count = np.abs(counted - np.round(counted)) < 1e-6
    held = (decoded_steps >= 2 * beat) & (decoded_steps % int(beat) == 0)
    swap = whole_count & held & (np.round(counted) * beat == decoded_steps + beat)
    if not swap.any():
        return out
    steps = np.where(swap, np.round(counted) * beat, decoded_steps).astype(np.int64)
    moved = np.concatenate([[times[0]], times[0] + np.cumsum(steps)])  # (C,)
    out[kept] = moved[inverse]
    return out
