"""Downbeats tracked in performance time (perf2score.neural.downbeats)."""

from __future__ import annotations

import numpy as np

from perf2score.neural.downbeats import track_bars, track_bars_each, track_downbeats, tracked_odds
from perf2score.neural.meter_estimate import estimate_meter, tracked_tempo


def _played(
    beats: int,
    beats_per_bar: int,
    seconds_per_beat,
    noise: float = 0.0,
    seed: int = 0,
    per_beat: int = 2,
):
    """``per_beat`` notes a beat (eighths by default) over ``beats`` beats (a beat lasting
    ``seconds_per_beat(i)`` seconds), with the evidence of a fair head: log-odds +1 / -2
    for downbeat, +1 / -1 for beat."""
    rng = np.random.default_rng(seed)
    starts = np.concatenate([[0.5], 0.5 + np.cumsum([seconds_per_beat(i) for i in range(beats)])])
    onsets, odds, downbeats = [], [], []
    for i in range(beats):
        for half in range(per_beat):
            t = starts[i] + half * (starts[i + 1] - starts[i]) / per_beat + rng.normal(0, noise)
            on_down, on_beat = half == 0 and i % beats_per_bar == 0, half == 0
            onsets.append(t)
            odds.append([1.0 if on_down else -2.0, 1.0 if on_beat else -1.0])
            if on_down:
                downbeats.append(t)
    return np.array(onsets), np.array(odds, dtype=np.float32), np.array(downbeats)


def _hits(found: np.ndarray, truth: np.ndarray, window: float = 0.07) -> float:
    """Share of ``truth`` with a found mark within ``window`` s, and none found elsewhere."""
    near = [np.min(np.abs(found - t)) <= window for t in truth] if len(found) else [False]
    spurious = sum(np.min(np.abs(truth - f)) > window for f in found)
    return float(np.mean(near)) - spurious / max(len(truth), 1)


def test_steady_three_four_is_tracked_bar_for_bar():
    onsets, odds, truth = _played(48, 3, lambda i: 0.5, noise=0.01)
    downbeats, beats = track_downbeats(onsets, odds, 3)
    assert _hits(downbeats, truth) > 0.95
    assert len(beats) >= 3 * len(downbeats) - 3


def test_a_slowing_performance_is_followed():
    onsets, odds, truth = _played(64, 4, lambda i: 0.4 * 1.02**i, noise=0.01)  # 0.4 -> 1.4 s
    downbeats, _ = track_downbeats(onsets, odds, 4)
    assert _hits(downbeats, truth) > 0.9


def test_wrong_notes_of_the_head_are_outvoted_by_the_bar():
    onsets, odds, truth = _played(48, 4, lambda i: 0.5)
    wrong = np.random.default_rng(1).random(len(odds)) < 0.15  # a sixth of the evidence flipped
    odds[wrong] = -odds[wrong]
    downbeats, _ = track_downbeats(onsets, odds, 4)
    assert _hits(downbeats, truth) > 0.8


def test_tracked_odds_push_towards_the_tracked_marks():
    onsets, odds, truth = _played(36, 3, lambda i: 0.5)
    moved = tracked_odds(onsets, odds, 3, strength=5.0)
    on_downbeat = np.isin(onsets, truth)
    assert np.all(moved[on_downbeat, 0] == odds[on_downbeat, 0] + 5.0)
    assert np.all(moved[~on_downbeat, 0] == odds[~on_downbeat, 0] - 5.0)
    assert np.array_equal(tracked_odds(onsets[:1], odds[:1], 3), odds[:1])  # too short


def test_the_meter_estimate_hears_three_beats_and_the_tempo():
    onsets, odds, _ = _played(48, 3, lambda i: 0.6, noise=0.01, per_beat=1)  # 100 a minute
    estimate = estimate_meter(onsets, odds, decoded=(4, 4), triple_margin=1.0)
    assert estimate.signature == (3, 4) and estimate.triple_lead > 1.0
    assert abs(estimate.tempo - 100.0) < 5.0
    # in 6/8 the beat is a dotted quarter: two beats a bar at 100 are 150 quarters a minute
    onsets, odds, _ = _played(48, 2, lambda i: 0.6, noise=0.01, per_beat=1)
    assert abs(tracked_tempo(onsets, odds, (6, 8)) - 150.0) < 7.5


def test_the_meter_estimate_keeps_the_decoders_meter_unless_three_lead():
    onsets, odds, _ = _played(48, 4, lambda i: 0.5, noise=0.01)
    for decoded in ((2, 4), (4, 4), (3, 4), (6, 8)):  # four beats a bar: no triple lead
        estimate = estimate_meter(onsets, odds, decoded, 1.0)
        assert estimate.signature == decoded and estimate.tempo == 0.0
    onsets, odds, _ = _played(48, 3, lambda i: 0.5, noise=0.01, per_beat=1)
    assert estimate_meter(onsets, odds, (6, 8), 1.0).signature == (3, 4)
    assert estimate_meter(onsets, odds, (9, 8), 1.0).signature == (9, 8)  # already triple
    assert estimate_meter(onsets, odds, (4, 4), 1e9).signature == (4, 4)  # margin not met
    short = estimate_meter(onsets[:1], odds[:1], (6, 8), 1.0)
    assert short.signature == (6, 8) and short.tempo == 0.0


def test_a_triple_meter_the_decoder_wrote_gives_way_to_duple_bars_that_lead():
    onsets, odds, _ = _played(48, 4, lambda i: 0.5, noise=0.01)  # four beats a bar
    kept = estimate_meter(onsets, odds, (3, 4), 1.0)  # no duple margin: the decoder's
    assert kept.signature == (3, 4) and kept.triple_lead == 0.0
    heard = estimate_meter(onsets, odds, (3, 4), 1.0, duple_margin=1.0, duple=(2, 4))
    assert heard.signature == (2, 4) and heard.tempo == 0.0 and heard.triple_lead < -1.0
    far = estimate_meter(onsets, odds, (3, 4), 1.0, duple_margin=-heard.triple_lead + 1.0)
    assert far.signature == (3, 4)  # the lead is under the margin
    onsets, odds, _ = _played(48, 3, lambda i: 0.5, noise=0.01, per_beat=1)  # three a bar
    assert estimate_meter(onsets, odds, (3, 4), 1.0, duple_margin=0.0).signature == (3, 4)


def test_the_main_duple_signature_is_the_commonest_with_two_or_four_beats():
    from perf2score.neural.meter import main_signature

    attributes = np.zeros(6, dtype=[("ts_num", "i4"), ("ts_den", "i4")])
    attributes["ts_num"] = [3, 3, 3, 6, 2, 2]
    attributes["ts_den"] = [4, 4, 4, 8, 4, 4]
    drop = np.array([False, False, False, False, False, True])
    assert main_signature(attributes, drop) == (3, 4)
    assert main_signature(attributes, drop, duple=True) in {(6, 8), (2, 4)}  # one each kept
    drop[3] = True
    assert main_signature(attributes, drop, duple=True) == (2, 4)
    assert main_signature(attributes[:3], drop[:3], duple=True) == (4, 4)  # none duple


def test_a_triple_meter_the_decoder_wrote_can_take_the_tracked_tempo():
    onsets, odds, _ = _played(48, 3, lambda i: 0.6, noise=0.01, per_beat=1)  # 100 a minute
    assert estimate_meter(onsets, odds, (3, 4), 1.0).tempo == 0.0  # the decoder's scale
    heard = estimate_meter(onsets, odds, (3, 4), 1.0, triple_tempo=True)
    assert heard.signature == (3, 4) and abs(heard.tempo - 100.0) < 5.0
    duple = estimate_meter(onsets, odds, (4, 4), 1e9, triple_tempo=True)  # not triple: as before
    assert duple.signature == (4, 4) and duple.tempo == 0.0


def test_bar_lengths_tracked_side_by_side_match_each_alone():
    onsets, odds, _ = _played(40, 3, lambda i: 0.45 * 1.01**i, noise=0.02, seed=3)
    together = track_bars_each(onsets, odds, (2, 3, 4), fps=25)
    for beats in (2, 3, 4):
        alone = track_bars_each(onsets, odds, (beats,), fps=25)[beats]
        assert together[beats].log_likelihood == alone.log_likelihood
        assert np.array_equal(together[beats].beats, alone.beats)
        assert np.array_equal(together[beats].downbeats, alone.downbeats)
    assert together[3].log_likelihood > max(together[2].log_likelihood, together[4].log_likelihood)
    assert track_bars(onsets, odds, 3).beats_per_minute > 0


def test_onsets_without_a_span_track_nothing():
    odds = np.zeros((3, 2), np.float32)
    for seconds in (np.zeros(3), np.array([1.0, 1.0, 1.01])):
        tracked = track_bars_each(seconds, odds, (2, 3))
        assert all(len(t.beats) == 0 and t.log_likelihood == 0.0 for t in tracked.values())


def test_a_given_time_signature_takes_the_tempo_the_tracker_hears_in_it():
    from perf2score.constants import GRID_PER_QUARTER
    from perf2score.midi.reading import NOTE_DTYPE, Performance
    from perf2score.neural.meter import piece_barring
    from perf2score.neural.settings import DecodeConfig
    from perf2score.score.attributes import ATTRIBUTE_DTYPE

    # three beats a bar at 100 a minute, decoded (as the demo's minuet was) in 4/4 with
    # each played beat an eighth: the notated values are twice the decoded ones
    seconds, odds, _ = _played(48, 3, lambda i: 0.6, noise=0.01, per_beat=1)
    n = len(seconds)
    eighth = GRID_PER_QUARTER // 2
    attributes = np.zeros(n, dtype=ATTRIBUTE_DTYPE)
    onsets = np.arange(n) * eighth
    attributes["measure"] = onsets // (4 * GRID_PER_QUARTER)
    attributes["measure_length_ticks"] = 4 * GRID_PER_QUARTER
    attributes["position_ticks"] = onsets % (4 * GRID_PER_QUARTER)
    attributes["duration_ticks"] = eighth
    attributes["ts_num"], attributes["ts_den"] = 4, 4
    notes = np.zeros(n, dtype=NOTE_DTYPE)
    notes["pitch"], notes["velocity"] = 60, 70
    notes["onset_sec"], notes["offset_sec"] = seconds, seconds + 0.5
    performance = Performance(notes=notes, pedal=np.zeros((0, 2)))
    drop = np.zeros(n, dtype=bool)
    scales = {}
    for given in ("", "3/4"):
        config = DecodeConfig(time_signature=given)
        *_, barring = piece_barring(attributes, drop, onsets, performance, None, config, odds)
        scales[given] = (barring.scale, barring.ts_num, barring.ts_den)
    assert scales[""] == (2.0, 3, 4)  # estimated: 3/4 at the tracked tempo
    assert scales["3/4"] == scales[""]  # given: the same tempo, so the same values
