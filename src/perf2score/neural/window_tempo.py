"""A decoded window's tempo in score time: grid units per performed second.

Windows are decoded each from its own start and may write the same music at another value
scale than their neighbours (``benchmarks/decoded_scale.py`` measures how often); a window
whose tempo in score time is twice or half the others' is one of them. ``scale_steps``
says which windows to halve or double so that the piece is written at one value scale
(``DecodeConfig.window_scales``), ``can_scale`` and ``scaled`` do it on the tick grid.
"""

from __future__ import annotations

import math

import numpy as np


def local_tempo(onsets: np.ndarray, seconds: np.ndarray, kept: np.ndarray, gap: float) -> float:
    """Median natural log of (score interval / performed interval) between consecutive
    kept notes played more than ``gap`` seconds apart (nan when there are none):
    ``onsets`` (T,) decoded onsets in grid units, ``seconds`` (T,) performed onsets,
    ``kept`` (T,) bool."""
    ratios = interval_tempi(onsets, seconds, kept, gap)
    return float(np.median(ratios)) if len(ratios) else math.nan


def interval_tempi(
    onsets: np.ndarray, seconds: np.ndarray, kept: np.ndarray, gap: float
) -> np.ndarray:
    """(K,) natural logs of (score interval / performed interval) between consecutive kept
    notes played more than ``gap`` seconds apart, in the arrays' order (as ``local_tempo``)."""
    rows = np.flatnonzero(kept)
    if len(rows) < 2:
        return np.zeros(0)
    tempi = step_tempi(onsets[rows], seconds[rows], gap)
    return tempi[~np.isnan(tempi)]


def step_tempi(
    onsets: np.ndarray, seconds: np.ndarray, gap: float, clock: np.ndarray | None = None
) -> np.ndarray:
    """(K - 1,) natural log of (score step / played step) for each step between
    consecutive notes (``onsets`` (K,) in ticks, ``seconds`` (K,) performed), the played
    step measured on ``clock`` (K,) when given (default: the seconds); nan where the notes
    were played ``gap`` seconds apart or less, or a score or clock step is not positive."""
    clock = seconds if clock is None else clock
    score = np.diff(onsets).astype(np.float64)
    played = np.diff(clock).astype(np.float64)
    seen = (np.diff(seconds) > gap) & (score > 0) & (played > 0)
    tempi = np.full(len(score), np.nan)
    tempi[seen] = np.log(score[seen] / played[seen])
    return tempi


MIN_SCALED_WINDOWS = 3  # windows with a tempo that a piece needs before any is rescaled
SCALED_FIELDS = (
    "onset_ticks",
    "measure_start_ticks",
    "measure_length_ticks",
    "position_ticks",
    "duration_ticks",
)  # the attributes in score time that a window's rescaling multiplies


def scale_steps(tempi: list[float], middle: float | None = None) -> list[int]:
    """Per window, the power of two (-1, 0 or +1) its score time is multiplied by so that
    it is written at the value scale of most of the piece: ``tempi`` the windows'
    ``local_tempo`` (natural log of ticks per performed second; nan: unknown, left alone),
    ``middle`` the piece's (default: the windows' median). A window more than a factor √2
    faster in score time than ``middle`` is halved, one more than √2 slower doubled;
    nothing moves with fewer than ``MIN_SCALED_WINDOWS`` known tempi."""
    known = [t for t in tempi if not math.isnan(t)]
    if len(known) < MIN_SCALED_WINDOWS:
        return [0] * len(tempi)
    middle = float(np.median(known)) if middle is None else middle
    steps = []
    for t in tempi:
        octaves = 0.0 if math.isnan(t) else (middle - t) / math.log(2.0)
        steps.append(int(math.copysign(1, octaves)) if abs(octaves) > 0.5 else 0)
    return steps


def can_scale(step: int, attributes: np.ndarray, onsets: np.ndarray, bars: np.ndarray) -> bool:
    """Whether a window's score time can be multiplied by 2^``step`` on the tick grid:
    doubling always can; halving needs every onset, bar line and value even (``attributes``
    (T,) of ``ATTRIBUTE_DTYPE``, ``onsets`` (T,) and ``bars`` (M + 1,) in ticks)."""
    if step >= 0:
        return True
    parts = [onsets, bars] + [attributes[name] for name in SCALED_FIELDS]
    return all(not (np.asarray(part) % 2).any() for part in parts)


def scaled(
    step: int, attributes: np.ndarray, onsets: np.ndarray, bars: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(attributes, onsets, bars) with score time multiplied by 2^``step`` (copies; the
    inputs when ``step`` is 0); halving assumes ``can_scale``."""
    if step == 0:
        return attributes, onsets, bars
    attributes = attributes.copy()
    for name in SCALED_FIELDS:
        attributes[name] = _times(attributes[name], step)
    return attributes, _times(onsets, step), _times(bars, step)


def _times(ticks: np.ndarray, step: int) -> np.ndarray:
    """Integer ticks multiplied by 2^step (step -1 or +1)."""
    return ticks * 2 if step > 0 else ticks // 2
