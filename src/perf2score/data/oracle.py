"""The oracle: a prepared performance's ground-truth attributes as assembly input.

Feeding these through ``perf2score.score.assembly`` and the MusicXML writer and scoring the
result against the ground-truth score measures what assembly and writing lose: the floor
under every model's error.
"""

from __future__ import annotations

import numpy as np

from perf2score.data.cache import PreparedPerformance


def oracle_attributes(prepared: PreparedPerformance) -> tuple[np.ndarray, np.ndarray]:
    """(attributes, drop) per performed note, straight from the alignment targets."""
    return prepared.targets(), prepared.drop.copy()


def performance_tempo(prepared: PreparedPerformance) -> float:
    """Median tempo (quarters per minute) between consecutive aligned score onsets."""
    targets = prepared.targets()
    keep = ~prepared.drop & ~targets["is_grace"]
    onsets_q = targets["onset_ticks"][keep] / prepared.ticks_per_quarter
    onsets_s = prepared.notes["onset_sec"][keep]
    order = np.argsort(onsets_q, kind="stable")
    q, s = onsets_q[order], onsets_s[order]
    dq, ds = np.diff(q), np.diff(s)
    ok = (dq > 0) & (ds > 0)
    if not ok.any():
        return 100.0
    return float(np.clip(60.0 * np.median(dq[ok] / ds[ok]), 20.0, 300.0))
