"""Which notated notes a rest follows in their own voice: the target of the meter head's
``rest_after`` question (``perf2score.models.meter_head``), which decoding asks before it
closes a value up to the next onset of its voice (``perf2score.neural.values``)."""

from __future__ import annotations

import numpy as np

from perf2score.neural.values import next_onsets

UNKNOWN, NO, YES = -1, 0, 1


def rest_follows(score: np.ndarray) -> np.ndarray:
    """(S,) int8 per row of a score table (``ATTRIBUTE_DTYPE``, values with ties merged):
    ``YES`` when the note's value ends before the next onset of its voice (staff and
    voice), so that a rest follows it there; ``NO`` when it reaches that onset or beyond;
    ``UNKNOWN`` for the last onset of a voice, grace notes and tied continuations (which
    are no onsets either)."""
    out = np.full(len(score), UNKNOWN, dtype=np.int8)
    timed = ~score["is_grace"] & ~score["tie_stop"]
    streams = score["staff"].astype(np.int64) * 1000 + score["voice"].astype(np.int64)
    for stream in np.unique(streams[timed]):
        members = np.flatnonzero(timed & (streams == stream))
        starts = score["onset_ticks"][members].astype(np.int64)
        _, _, has_next, following = next_onsets(starts)  # as the closing of values finds it
        ends = starts + score["duration_ticks"][members].astype(np.int64)
        out[members[has_next]] = np.where(ends[has_next] < following[has_next], YES, NO)
    return out
