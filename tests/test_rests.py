"""Which notated notes a rest follows in their own voice (perf2score.data.rests)."""

import numpy as np

from perf2score.data.rests import NO, UNKNOWN, YES, rest_follows
from perf2score.score.attributes import ATTRIBUTE_DTYPE


def _score(rows):
    """rows: (onset, duration, staff, voice, is_grace, tie_stop) in ticks"""
    out = np.zeros(len(rows), dtype=ATTRIBUTE_DTYPE)
    for k, (onset, duration, staff, voice, grace, tie_stop) in enumerate(rows):
        out[k]["onset_ticks"], out[k]["duration_ticks"] = onset, duration
        out[k]["staff"], out[k]["voice"] = staff, voice
        out[k]["is_grace"], out[k]["tie_stop"] = grace, tie_stop
    return out


def test_a_rest_follows_where_a_value_ends_before_its_voice_moves_on():
    score = _score(
        [
            (0, 12, 1, 1, False, False),  # an eighth, next onset of its voice at 24: a rest
            (0, 24, 1, 1, False, False),  # the chord's other note reaches it: none
            (24, 48, 1, 1, False, False),  # a tied half: reaches 72
            (48, 24, 1, 1, False, True),  # its tied continuation: neither note nor onset
            (72, 24, 1, 1, False, False),  # the last onset of its voice: unknown
            (0, 6, 1, 2, False, False),  # another voice: a 16th, its next onset at 12
            (12, 72, 1, 2, False, False),  # longer than the way to its next onset: none
            (36, 6, 1, 2, False, False),
            (20, 0, 1, 1, True, False),  # a grace note: unknown, and no onset of its voice
            (0, 96, 2, 1, False, False),  # alone on its staff: unknown
        ]
    )
    expected = [YES, NO, NO, UNKNOWN, UNKNOWN, YES, NO, UNKNOWN, UNKNOWN, UNKNOWN]
    assert rest_follows(score).tolist() == expected
    assert rest_follows(score[:0]).tolist() == []
