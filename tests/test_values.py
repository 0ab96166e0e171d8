"""Closing the gaps the value head leaves inside a voice (perf2score.neural.values)."""

import numpy as np
import pytest

from perf2score.errors import Perf2ScoreError
from perf2score.neural.settings import DecodeConfig
from perf2score.neural.values import Articulation, close_gaps, close_split_gaps
from perf2score.score.attributes import ATTRIBUTE_DTYPE


def _attributes(rows):
    """rows: (onset, duration, staff, voice, is_grace)"""
    out = np.zeros(len(rows), dtype=ATTRIBUTE_DTYPE)
    for k, (_, duration, staff, voice, grace) in enumerate(rows):
        out[k]["duration_ticks"], out[k]["staff"], out[k]["voice"] = duration, staff, voice
        out[k]["is_grace"] = grace
    return out, np.array([r[0] for r in rows], dtype=np.int64)


def test_short_values_reach_the_next_onset_of_their_voice_only():
    rows = [
        (0, 12, 1, 1, False),  # gap 12 to the next onset of staff 1 voice 1 -> closed
        (0, 12, 1, 1, False),  # the other chord note too
        (24, 24, 1, 1, False),  # already ends at 48
        (48, 6, 1, 1, False),  # gap 42 to 96: longer than the limit, kept
        (96, 6, 1, 1, False),  # the last note of its voice: nothing to reach
        (0, 6, 1, 2, False),  # another voice: its next onset is 72
        (72, 24, 1, 2, False),
        (30, 6, 2, 1, False),  # another staff, alone
        (20, 1, 1, 1, True),  # a grace note: neither extended nor an onset
    ]
    attributes, onsets = _attributes(rows)
    drop = np.zeros(len(rows), dtype=bool)
    drop_row = np.zeros(1, dtype=ATTRIBUTE_DTYPE)
    attributes = np.concatenate([attributes, drop_row])  # a dropped note at onset 6
    onsets, drop = np.append(onsets, 6), np.append(drop, True)
    changed = close_gaps(attributes, drop, onsets, max_gap=24)
    assert attributes["duration_ticks"].tolist() == [24, 24, 24, 6, 6, 6, 24, 6, 1, 0]
    assert changed == 2
    assert close_gaps(attributes, drop, onsets, max_gap=10**9) == 2  # 48 -> 96, 0 -> 72
    assert attributes["duration_ticks"][[3, 5]].tolist() == [48, 72]


def test_split_gaps_close_in_the_first_voice_only_where_another_voice_began():
    rows = [
        (0, 24, 1, 1, False),  # melody: ends at 24, where the accompaniment's note begins
        (24, 12, 1, 2, False),  # accompaniment (second voice)
        (36, 12, 1, 2, False),
        (48, 12, 1, 1, False),  # melody: ends at 60, where no other voice begins: a rest
        (72, 6, 1, 1, False),  # melody: ends at 78 (an accompaniment onset), next at 120
        (78, 6, 1, 2, False),
        (120, 6, 1, 1, False),  # the last melody note: nothing to reach
        (0, 6, 2, 1, False),  # a staff of one voice: untouched
        (30, 6, 2, 1, False),
    ]
    attributes, onsets = _attributes(rows)
    drop = np.zeros(len(rows), dtype=bool)
    before = attributes["duration_ticks"].copy()
    assert close_split_gaps(attributes, drop, onsets, max_gap=0) == 0
    assert close_split_gaps(attributes, drop, onsets, max_gap=24) == 1
    # 0 -> 48 (its next onset); 72 stays: its gap to 120 is 42, above the limit
    assert attributes["duration_ticks"].tolist() == [48, 12, 12, 12, 6, 6, 6, 6, 6]
    attributes["duration_ticks"] = before
    assert close_split_gaps(attributes, drop, onsets, max_gap=48) == 2
    assert attributes["duration_ticks"][[0, 3, 4]].tolist() == [48, 12, 48]
    # every voice: the accompaniment's note at 36 ends at 48 (a melody onset) and reaches
    # 78; its note at 78 ends at 84, where nothing begins
    attributes["duration_ticks"] = before
    assert close_split_gaps(attributes, drop, onsets, max_gap=48, first_only=False) == 3
    assert attributes["duration_ticks"][[2, 5]].tolist() == [42, 6]
    with pytest.raises(Perf2ScoreError, match="voice_gap_quarters"):
        DecodeConfig.from_dict({"voice_gap_quarters": -1})


def test_off_when_zero_and_validated():
    assert DecodeConfig().legato_gap_quarters == 4.0  # tuned on validation
    attributes, onsets = _attributes([(0, 6, 1, 1, False), (24, 6, 1, 1, False)])
    assert close_gaps(attributes, np.zeros(2, bool), onsets, 0) == 0
    assert attributes["duration_ticks"].tolist() == [6, 6]
    with pytest.raises(Perf2ScoreError, match="legato_gap_quarters"):
        DecodeConfig.from_dict({"legato_gap_quarters": -1})


def test_a_rest_the_performer_played_stays_open():
    # four notes of one voice, a quarter (24 ticks) apart, each written as an eighth
    attributes, onsets = _attributes([(24 * k, 12, 1, 1, False) for k in range(4)])
    drop = np.zeros(4, bool)
    onset_sec = np.array([0.0, 0.5, 1.0, 1.5])
    # sound ends: held to the next onset; released at half the interval (silence share
    # 0.5); a short lift (0.1); the last note (no next onset)
    sound_end = np.array([0.5, 0.75, 1.45, 1.6])
    played = Articulation(onset_sec, sound_end, silence_share=0.3)
    assert close_gaps(attributes, drop, onsets, 24, played) == 2
    assert attributes["duration_ticks"].tolist() == [24, 12, 24, 12]
    # a share of 1 closes every gap, as without the articulation
    attributes, onsets = _attributes([(24 * k, 12, 1, 1, False) for k in range(4)])
    assert close_gaps(attributes, drop, onsets, 24, Articulation(onset_sec, sound_end, 1.0)) == 3
    # the next onset counts from its earliest played note (a chord rolled late)
    attributes, onsets = _attributes([(0, 12, 1, 1, False), (24, 12, 1, 1, False)] * 1)
    attributes = np.concatenate([attributes, attributes[1:]])
    onsets = np.array([0, 24, 24])
    played = Articulation(np.array([0.0, 0.5, 0.3]), np.array([0.3, 1.0, 1.0]), 0.3)
    assert close_gaps(attributes, np.zeros(3, bool), onsets, 24, played) == 1  # silence 0
    with pytest.raises(Perf2ScoreError, match="legato_silence_share"):
        DecodeConfig.from_dict({"legato_silence_share": -0.5})


def test_a_long_gap_closes_only_where_the_note_was_held():
    # a bass note every two bars (4/4, 24 ticks a quarter) written as a quarter: gaps of
    # 7 quarters, beyond max_gap (4 quarters); the first held by the pedal to the next
    # onset, the second released after a beat
    attributes, onsets = _attributes([(b, 24, 2, 1, False) for b in (0, 192, 384)])
    drop = np.zeros(3, bool)
    onset_sec = np.array([0.0, 4.0, 8.0])
    sound_end = np.array([3.9, 4.6, 9.0])
    held = Articulation(onset_sec, sound_end, silence_share=0.1)
    assert close_gaps(attributes, drop, onsets, 96, held=held) == 1
    assert attributes["duration_ticks"].tolist() == [192, 24, 24]
    # without it, long gaps stay open; with a share of 1 every long gap closes
    attributes, onsets = _attributes([(0, 24, 2, 1, False), (192, 24, 2, 1, False)])
    assert close_gaps(attributes, np.zeros(2, bool), onsets, 96) == 0
    everything = Articulation(onset_sec[:2], sound_end[:2], 1.0)
    assert close_gaps(attributes, np.zeros(2, bool), onsets, 0, held=everything) == 1
    assert attributes["duration_ticks"].tolist() == [192, 24]
    assert DecodeConfig().long_gap_silence_share == 0.3  # chosen on validation
    with pytest.raises(Perf2ScoreError, match="long_gap_silence_share"):
        DecodeConfig.from_dict({"long_gap_silence_share": 1.5})


def test_the_gaps_after_heard_rests_stay_open():
    # one voice, a quarter (24 ticks) apart, each decoded as an eighth; the head hears a
    # rest after the second note only
    attributes, onsets = _attributes([(24 * k, 12, 1, 1, False) for k in range(4)])
    drop = np.zeros(4, bool)
    rests = np.array([False, True, False, False])
    assert close_gaps(attributes, drop, onsets, 24, rests=rests) == 2
    assert attributes["duration_ticks"].tolist() == [24, 12, 24, 12]
    # a long gap the performance held stays open too
    attributes, onsets = _attributes([(0, 24, 2, 1, False), (192, 24, 2, 1, False)])
    held = Articulation(np.array([0.0, 4.0]), np.array([4.0, 5.0]), 1.0)
    assert close_gaps(attributes, np.zeros(2, bool), onsets, 96, held=held) == 1
    attributes, onsets = _attributes([(0, 24, 2, 1, False), (192, 24, 2, 1, False)])
    kept = np.array([True, False])
    assert close_gaps(attributes, np.zeros(2, bool), onsets, 96, held=held, rests=kept) == 0
    # after the split: the melody's gap to its next onset stays open where a rest is heard
    rows = [(0, 24, 1, 1, False), (24, 12, 1, 2, False), (48, 12, 1, 1, False)]
    attributes, onsets = _attributes(rows)
    kept = np.array([True, False, False])
    assert close_split_gaps(attributes, np.zeros(3, bool), onsets, 48, rests=kept) == 0
    assert close_split_gaps(attributes, np.zeros(3, bool), onsets, 48) == 1
    assert DecodeConfig().rest_head is True  # chosen on validation (odds 0)
    with pytest.raises(Perf2ScoreError, match="rest_odds"):
        DecodeConfig.from_dict({"rest_odds": float("nan")})
