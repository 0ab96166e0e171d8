"""Regular bars on tracked downbeats (perf2score.neural.tracked_bars)."""

from __future__ import annotations

import numpy as np

from perf2score.neural.tracked_bars import downbeat_marks, regular_bars
from perf2score.score.attributes import ATTRIBUTE_DTYPE
from perf2score.score.barring import BAR_TICKS_PER_QUARTER

Q = BAR_TICKS_PER_QUARTER


def test_marks_follow_played_time_and_never_go_back():
    onsets = np.array([0, 48, 96, 96, 144])
    seconds = np.array([0.0, 0.5, 1.0, 1.1, 1.5])
    marks, at = downbeat_marks(onsets, seconds, np.array([0.0, 0.25, 1.05, 1.5]))
    assert marks.tolist() == [0.0, 24.0, 96.0, 144.0]  # 1.05 s: on the note played at 1.0
    same, at = downbeat_marks(onsets, seconds, np.array([1.0, 1.02, 1.5]))
    assert same.tolist() == [96.0, 144.0] and at.tolist() == [1.0, 1.5]  # time stood still


def test_a_slip_is_taken_out_and_a_tracker_bar_of_two_decoded_bars_is_split():
    """Quarter notes at one a second in 4/4 after a quarter pickup. The decoder wrote bars
    3-4 at twice the scale (half notes) and slipped an eighth in bar 5; the tracked bars
    are the played ones. The piece's scale (most bars: x1) is kept, so bars 3-4 become four
    bars of half notes (each tracked bar split in two), and bar 5's extra eighth is taken
    out of the interval played as a quarter: every bar regular."""
    played = np.arange(1 + 24, dtype=float)  # seconds: the pickup, then 6 bars of quarters
    steps = [2 * Q if 10 <= i <= 17 else Q for i in range(1, len(played))]
    slipped = [step + (Q // 2 if i == 17 else 0) for i, step in enumerate(steps, start=1)]
    onsets = np.concatenate([[0], np.cumsum(slipped)]).astype(np.int64)
    attributes = np.zeros(len(onsets), dtype=ATTRIBUTE_DTYPE)
    attributes["duration_ticks"] = np.diff(np.append(onsets, onsets[-1] + Q))
    drop = np.zeros(len(onsets), bool)
    downbeats = played[1::4]  # the true downbeats
    out, new = regular_bars(attributes, drop, onsets, played, downbeats, (4, 4))
    expected = np.concatenate([[0], np.cumsum(steps)]) + 3 * Q  # the pickup: the 4th quarter
    assert np.array_equal(new, expected)
    assert np.array_equal(out["duration_ticks"], np.diff(np.append(expected, expected[-1] + Q)))
    lengths = out["measure_length_ticks"][np.unique(out["measure"], return_index=True)[1]]
    assert lengths[0] == Q and np.all(lengths[1:] == 4 * Q)  # a pickup, then full bars
    assert len(lengths) == 1 + 8
    assert np.all(out["position_ticks"] < out["measure_length_ticks"])
    assert out["ts_num"][0] == 4 and out["ts_den"][0] == 4


def test_too_few_downbeats_leave_the_notes_to_the_other_barring():
    attributes = np.zeros(3, dtype=ATTRIBUTE_DTYPE)
    onsets, seconds = np.array([0, Q, 2 * Q]), np.array([0.0, 1.0, 2.0])
    assert (
        regular_bars(attributes, np.zeros(3, bool), onsets, seconds, np.array([1.0]), (3, 4))
        is None
    )
