"""A decoded window's tempo in score time: grid units per performed second.

Windows are decoded each from its own start and may write the same music at another value
scale than their neighbours (``benchmarks/decoded_scale.py`` measures how often); a window
whose tempo in score time is twice or half the others' is one of them.
"""

from __future__ import annotations

import math

import numpy as np


def local_tempo(onsets: np.ndarray, seconds: np.ndarray, kept: np.ndarray, gap: float) -> float:
    """Median natural log of (score interval / performed interval) between consecutive
    kept notes played more than ``gap`` seconds apart (nan when there are none):
    ``onsets`` (T,) decoded onsets in grid units, ``seconds`` (T,) performed onsets,
    ``kept`` (T,) bool."""
    rows = np.flatnonzero(kept)
    if len(rows) < 2:
        return math.nan
    score = np.diff(onsets[rows]).astype(np.float64)
    played = np.diff(seconds[rows])
    ok = (played > gap) & (score > 0)
    if not ok.any():
        return math.nan
    return float(np.median(np.log(score[ok] / played[ok])))
