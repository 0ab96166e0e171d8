"""The oracle: a prepared performance's ground-truth attributes as assembly input.

Feeding these through ``perf2score.score.assembly`` and the MusicXML writer and scoring the
result against the ground-truth score measures what assembly and writing lose: the floor
under every model's error.
"""

from __future__ import annotations

import numpy as np

from perf2score.data.cache import PreparedPerformance
from perf2score.score.assembly import AssembledScore, assemble, average_tempo


def oracle_attributes(prepared: PreparedPerformance) -> tuple[np.ndarray, np.ndarray]:
    """(attributes, drop) per performed note, straight from the alignment targets."""
    return prepared.targets(), prepared.drop.copy()


def performance_tempo(prepared: PreparedPerformance) -> float:
    """Average tempo (quarters per minute) of the performance over its aligned notes."""
    targets = prepared.targets()
    keep = ~prepared.drop & ~targets["is_grace"]
    onsets_q = targets["onset_ticks"][keep] / prepared.ticks_per_quarter
    return average_tempo(onsets_q, prepared.notes["onset_sec"][keep])


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
