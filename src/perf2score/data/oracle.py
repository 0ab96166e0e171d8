"""The oracle: a prepared performance's ground-truth attributes as assembly input.

Feeding these through ``perf2score.score.assembly`` and the MusicXML writer and scoring the
result against the ground-truth score measures what assembly and writing lose: the floor
under every model's error.
"""

from __future__ import annotations

import numpy as np

from perf2score.data.cache import PreparedPerformance
from perf2score.score.assembly import AssembledScore, assemble


def oracle_attributes(prepared: PreparedPerformance) -> tuple[np.ndarray, np.ndarray]:
    """(attributes, drop) per performed note, straight from the alignment targets."""
    return prepared.targets(), prepared.drop.copy()


def performance_tempo(prepared: PreparedPerformance) -> float:
    """Average tempo (quarters per minute) of the performance over its aligned notes."""
    targets = prepared.targets()
    keep = ~prepared.drop & ~targets["is_grace"]
    if keep.sum() < 2:
        return 100.0
    onsets_q = targets["onset_ticks"][keep] / prepared.ticks_per_quarter
    onsets_s = prepared.notes["onset_sec"][keep]
    span_q = float(onsets_q.max() - onsets_q.min())
    span_s = float(onsets_s.max() - onsets_s.min())
    if span_q <= 0 or span_s <= 0:
        return 100.0
    return float(np.clip(60.0 * span_q / span_s, 20.0, 300.0))


def oracle_score(prepared: PreparedPerformance) -> AssembledScore:
    """The ground-truth attributes of one performance, assembled into a score."""
    attributes, drop = oracle_attributes(prepared)
    return assemble(
        attributes,
        prepared.ticks_per_quarter,
        drop=drop,
        velocities=prepared.notes["velocity"],
        tempo_qpm=performance_tempo(prepared),
        title=f"{prepared.perf_id} (oracle)",
    )
