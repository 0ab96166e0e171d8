"""Played step ratios: each note's inter-onset interval against the previous played step.

The score decoder repeats its previous onset step far more often than scores do, and with
30 % random noise on every played interval it writes nearly the same rhythm
(``benchmarks/step_repetition.py --timing-noise``): it hardly reads the timing. A note's
ratio id gives it the one number that says whether the rhythm changes here: log2 of its
inter-onset interval over the last interval longer than ``CHORD_SECONDS`` before it (the
previous step), both read back from the performance tokens' IOI buckets, in ``RATIO_BINS``
bins of ``RATIO_STEP`` octaves. Special ids: unknown (padding, masked timing), a chord note
(an interval under ``CHORD_SECONDS``), no previous step (the window's first step).

Numpy only (converting never imports torch); the torch model converts its tensors.
"""

from __future__ import annotations

import numpy as np

from perf2score.constants import CHORD_SECONDS
from perf2score.tokens.performance import ioi_centres
from perf2score.tokens.spec import FIRST_VALUE

UNKNOWN, CHORD, FIRST_STEP = 0, 1, 2
RATIO_STEP = 0.25  # octaves per bin
RATIO_BINS = 25  # -3 .. +3 octaves
RATIO_IDS = 3 + RATIO_BINS  # the embedding's rows
_SECONDS = ioi_centres()  # (V_ioi,) seconds per IOI value


def _ratio_bins(log_ratio: np.ndarray) -> np.ndarray:
    half = RATIO_BINS // 2
    return 3 + np.clip(np.rint(log_ratio / RATIO_STEP), -half, half).astype(np.int64) + half


def played_ratio_ids(ioi: np.ndarray) -> np.ndarray:
    """Ratio ids (..., T) int64 of performance IOI token ids (..., T) (``STREAMS["ioi"]``
    ids; anything below ``FIRST_VALUE``, padding or a mask, is unknown)."""
    ioi = np.asarray(ioi)
    known = ioi >= FIRST_VALUE
    seconds = np.where(known, _SECONDS[np.clip(ioi - FIRST_VALUE, 0, len(_SECONDS) - 1)], 0.0)
    step = known & (seconds >= CHORD_SECONDS)
    T = ioi.shape[-1]
    index = np.where(step, np.arange(T), -1)
    last = np.maximum.accumulate(index, axis=-1)  # (..., T): the latest step up to t
    before = np.concatenate([np.full_like(last[..., :1], -1), last[..., :-1]], -1)
    previous = np.take_along_axis(seconds, np.maximum(before, 0), -1)
    has_previous = before >= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log2(np.where(has_previous, seconds / np.maximum(previous, 1e-6), 1.0))
    ids = np.where(has_previous, _ratio_bins(log_ratio), FIRST_STEP)
    ids = np.where(step, ids, CHORD)
    return np.where(known, ids, UNKNOWN).astype(np.int64)
