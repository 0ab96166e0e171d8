"""Piece-level bar lines (score/barring.py) and the meter metrics (evaluate/meter.py), on
generated notes and evidence."""

from __future__ import annotations

import numpy as np
import pytest

from perf2score.neural.converter import model_folder
from perf2score.neural.settings import DecodeConfig
from perf2score.score.attributes import ATTRIBUTE_DTYPE, SCORE_NOTE_DTYPE
from perf2score.score.barring import (
    BAR_TICKS_PER_QUARTER,
    Barring,
    Evidence,
    apply_barring,
    bar_lines,
    choose_barring,
    close_held_slips,
    close_slips,
    held_slips,
    tempo_prior,
    track_phase,
)
from perf2score.score.reading import ScoreNotes

Q = BAR_TICKS_PER_QUARTER


def _evidence(onsets: np.ndarray, bar: int, phase: int, beat: int = Q, sure: float = 4.0):
    """Evidence that says 'downbeat' exactly where (onset - phase) % bar == 0."""
    on_downbeat = (onsets - phase) % bar == 0
    on_beat = (onsets - phase) % beat == 0
    seconds = onsets / Q * 0.6  # 100 quarters per minute
    return Evidence.from_logits(
        onsets, seconds, np.where(on_downbeat, sure, -sure), np.where(on_beat, sure, -sure)
    )


def _eighths(bars: int, per_bar: int, start: int = 0) -> np.ndarray:
    return np.arange(start, start + bars * per_bar * Q // 2, Q // 2, dtype=np.int64)


def test_the_phase_is_found_and_a_pickup_opens_the_piece():
    onsets = _eighths(16, 6)  # 16 bars of 3/4 in eighths, the first downbeat at beat 3
    evidence = _evidence(onsets, 3 * Q, 2 * Q)
    barring, times, phases = choose_barring(evidence, scales=(1.0,))
    assert (barring.ts_num, barring.ts_den, barring.phase) == (3, 4, 2 * Q)
    assert np.all(phases == 2 * Q)
    lines = bar_lines(times, phases, barring.measure_ticks, int(onsets[0]), int(onsets[-1]))
    assert lines[0] == 0 and lines[1] == 2 * Q  # a two-beat pickup
    assert np.all(np.diff(lines[1:]) == 3 * Q)


def test_a_pickup_costs_what_it_is_told():
    onsets = _eighths(16, 6)
    weak = _evidence(onsets, 3 * Q, 2 * Q, sure=0.05)  # barely favours a two-beat pickup
    options = {"scales": (1.0,), "meters": ((3, 4),), "change_cost": 50.0}
    assert choose_barring(weak, **options)[0].phase == 2 * Q
    assert choose_barring(weak, pickup_cost=4.0, **options)[0].phase == 0
    strong = _evidence(onsets, 3 * Q, 2 * Q)  # the music has the pickup: it stays
    assert choose_barring(strong, pickup_cost=4.0, **options)[0].phase == 2 * Q


def test_the_meter_follows_the_evidence_not_a_default():
    onsets = _eighths(12, 6)
    three = choose_barring(_evidence(onsets, 3 * Q, 0), scales=(1.0,))[0]
    four = choose_barring(_evidence(onsets, 4 * Q, 0), scales=(1.0,))[0]
    assert (three.ts_num, three.ts_den) == (3, 4)
    assert (four.ts_num, four.ts_den) in ((4, 4), (2, 2))  # the same bar; beats break the tie
    assert (four.ts_num, four.ts_den) == (4, 4)


def test_a_downbeat_without_an_onset_costs_what_it_is_told():
    # quarters in 3/4 whose evidence is skewed against beats (a head out of its style): a
    # phase a 16th off every note avoids the poor evidence; bars need onsets on downbeats
    onsets = np.arange(0, 16 * 3 * Q, Q, dtype=np.int64)
    seconds = onsets / Q * 0.6
    downbeat = np.where(onsets % (3 * Q) == 0, 0.5, -1.5)
    evidence = Evidence.from_logits(onsets, seconds, downbeat, np.full(len(onsets), -0.5))
    times, sums = (
        np.unique(onsets),
        [
            evidence.downbeat,
            evidence.not_downbeat,
            evidence.beat,
            evidence.not_beat,
        ],
    )
    option = Barring(1.0, 3, 4, 0)
    free, _ = track_phase(times, sums, option, change_cost=16.0)
    assert np.all(free % Q != 0)  # between the notes
    costed, _ = track_phase(times, sums, option, change_cost=16.0, empty_cost=2.0)
    assert np.all(costed == 0)  # every bar line on a note, on the notes the head prefers


def test_a_slip_is_tracked_and_closed():
    onsets = _eighths(16, 8)  # 4/4
    slipped = np.where(onsets >= 32 * Q, onsets + Q // 4, onsets)  # a 16th too late from bar 9
    evidence = Evidence.from_logits(
        slipped,
        onsets / Q * 0.5,
        np.where(onsets % (4 * Q) == 0, 4.0, -4.0),
        np.where(onsets % Q == 0, 4.0, -4.0),
    )
    option = Barring(1.0, 4, 4, 0)
    times = np.unique(slipped)
    sums = [
        np.bincount(np.searchsorted(times, slipped), weights=v, minlength=len(times))
        for v in (evidence.downbeat, evidence.not_downbeat, evidence.beat, evidence.not_beat)
    ]
    phases, _ = track_phase(times, sums, option, change_cost=4.0)
    assert phases[0] == 0 and phases[-1] == Q // 4  # the phase moved with the slip
    fixed, moved, kept = close_slips(slipped, times, phases, option.measure_ticks)
    assert np.array_equal(fixed, onsets) and np.all(kept == 0)  # the slip is gone
    assert np.array_equal(moved, np.unique(onsets))
    never = track_phase(times, sums, option, change_cost=1e9)[0]
    assert np.all(never == never[0])  # an unaffordable change keeps one phase
    attributes = np.zeros(len(onsets), dtype=ATTRIBUTE_DTYPE)
    attributes["duration_ticks"] = Q // 2
    drop = np.zeros(len(onsets), bool)
    for close, expected in ((True, {4 * Q}), (False, {4 * Q, 4 * Q + Q // 4})):
        out, new, _ = apply_barring(
            attributes, drop, slipped, evidence, close=close, scales=(1.0,), meters=((4, 4),)
        )
        first = np.unique(out["measure"], return_index=True)[1]
        lengths = out["measure_length_ticks"][first]
        assert set(lengths.tolist()) == expected and len(lengths) == 16  # one longer measure
        assert np.array_equal(new, onsets if close else slipped)


def _held_phrases(short: int) -> tuple[np.ndarray, np.ndarray]:
    """(written onsets, true onsets) of 8 bars of 3/4: quarters, with a dotted half in bar 4
    that the written onsets hold ``short`` ticks less (a beat lost at a phrase end)."""
    true = np.array(
        [b * 3 * Q + k * Q for b in range(8) for k in range(3) if b != 3 or k == 0], np.int64
    )
    written = np.where(true > 9 * Q, true - short, true)
    return written, true


def test_a_beat_lost_at_a_held_note_is_given_back():
    written, true = _held_phrases(Q)
    evidence = Evidence.from_logits(
        written,
        true / Q * 0.6,
        np.where(true % (3 * Q) == 0, 1.0, -1.0),  # the head hears the true downbeats
        np.full(len(true), 1.0),
    )
    options = {"scales": (1.0,), "meters": ((3, 4),), "change_cost": 16.0, "jump_cost": 48.0}
    attributes = np.zeros(len(true), dtype=ATTRIBUTE_DTYPE)
    attributes["duration_ticks"] = Q
    drop = np.zeros(len(true), bool)
    _, kept, _ = apply_barring(attributes, drop, written, evidence, close=False, **options)
    assert np.array_equal(kept, written)  # without the option: one irregular bar, or none
    out, mended, barring = apply_barring(
        attributes, drop, written, evidence, close=False, held_cost=4.0, **options
    )
    assert np.array_equal(mended, true) and barring.phase == 0
    assert set(out["measure_length_ticks"].tolist()) == {3 * Q}
    assert set(out["position_ticks"][true % (3 * Q) == 0].tolist()) == {0}


def test_only_a_whole_beat_at_a_held_step_is_closed():
    times = np.array([0, Q, 2 * Q, 3 * Q, 5 * Q, 6 * Q, 7 * Q, 8 * Q], np.int64)
    assert held_slips(times, Q).tolist() == [False] * 4 + [True] + [False] * 3
    option = Barring(1.0, 3, 4, 0)
    moved = np.array([0, 0, 0, 0, 2 * Q, 2 * Q, 2 * Q, 2 * Q], np.int64)  # notes a beat early
    onsets, new_times, phases = close_held_slips(times, times, moved, option)
    assert np.array_equal(new_times, times + np.array([0] * 4 + [Q] * 4))  # held one more
    assert np.array_equal(onsets, new_times) and np.all(phases == 0)
    late = np.array([0, 0, 0, 0, Q, Q, Q, Q], np.int64)  # notes a beat late: held one less
    assert np.array_equal(close_held_slips(times, times, late, option)[1][4:], times[4:] - Q)
    sixteenth = np.array([0] * 4 + [Q // 4] * 4, np.int64)  # not a whole beat: kept
    assert np.array_equal(close_held_slips(times, times, sixteenth, option)[2], sixteenth)


def test_rebar_writes_regular_measures_in_the_chosen_meter():
    n = 48
    onsets = _eighths(8, 6)[:n]
    attributes = np.zeros(n, dtype=ATTRIBUTE_DTYPE)
    attributes["pitch"] = 60 + np.arange(n) % 12
    attributes["duration_ticks"] = Q // 2
    attributes["ts_num"], attributes["ts_den"] = 4, 4  # what a decoder wrote
    drop = np.zeros(n, bool)
    drop[5] = True
    out, new_onsets, barring = apply_barring(
        attributes, drop, onsets, _evidence(onsets, 3 * Q, Q), scales=(1.0,)
    )
    kept = out[~drop]
    assert (barring.ts_num, barring.ts_den) == (3, 4)
    assert np.all(out["ts_num"] == 3) and np.all(out["ts_den"] == 4)
    assert np.all((kept["position_ticks"] >= 0) & (kept["position_ticks"] < 3 * Q))
    lengths = {
        int(m): int(length)
        for m, length in zip(kept["measure"], kept["measure_length_ticks"], strict=True)
    }
    assert lengths[0] == Q and all(v == 3 * Q for m, v in lengths.items() if m > 0)
    assert out["measure"][5] == out["measure"][4]  # a dropped note follows its neighbour
    assert np.array_equal(new_onsets[~drop], onsets[~drop])


def test_nothing_to_bar_is_not_an_error():
    attributes = np.zeros(3, dtype=ATTRIBUTE_DTYPE)
    onsets = np.array([0, 24, 48])
    empty = Evidence.from_logits(onsets[:0], onsets[:0] * 0.0, onsets[:0], onsets[:0])
    for drop in (np.ones(3, bool), np.zeros(3, bool)):
        out, _, barring = apply_barring(attributes, drop, onsets, empty, scales=(1.0,))
        assert len(out) == 3 and barring.measure_ticks > 0
        assert np.all(out["position_ticks"][~drop] < out["measure_length_ticks"][~drop])


def test_the_tempo_prior_prefers_plausible_notated_tempi():
    onsets = _eighths(8, 8)
    evidence = Evidence.from_logits(
        onsets, onsets / Q * 0.6, np.zeros(len(onsets)), np.zeros(len(onsets))
    )
    plain, halved, doubled = (tempo_prior(Barring(s, 4, 4, 0), evidence) for s in (1.0, 0.5, 2.0))
    assert plain > halved and plain > doubled and plain == pytest.approx(0.0, abs=0.01)


def _score(onsets_q, ts, measures_q, tpq=4, offsets_q=None):
    notes = np.zeros(len(onsets_q), dtype=SCORE_NOTE_DTYPE)
    notes["pitch"] = 60 + np.arange(len(onsets_q)) % 7
    notes["onset_ticks"] = np.round(np.asarray(onsets_q) * tpq)
    ends = np.asarray(offsets_q) if offsets_q is not None else np.asarray(onsets_q) + 1
    notes["offset_ticks"] = np.round(ends * tpq)
    notes["staff"] = 1
    notes["voice"] = 1
    starts = np.round(np.asarray(measures_q) * tpq).astype(np.int64)
    return ScoreNotes(notes, tpq, starts, [(0, *ts)])


def test_meter_metrics_on_controlled_damage():
    from perf2score.evaluate.meter import evaluate_meter, irregular_measures, main_time_signature

    onsets = np.arange(0, 24, 0.5)
    truth = _score(onsets, (3, 4), np.arange(0, 24, 3))
    same = evaluate_meter(truth, truth)
    assert same["ts_note_acc"] == 1 and same["ts_main_ok"] == 1
    assert same["value_scale"] == 1 and same["scale_ok"] == 1 and same["irregular_measures"] == 0
    doubled = evaluate_meter(truth, _score(onsets * 2, (3, 4), np.arange(0, 48, 3)))
    assert doubled["value_scale"] == 2 and doubled["scale_ok"] == 0
    four = evaluate_meter(truth, _score(onsets, (4, 4), np.arange(0, 24, 4)))
    assert four["ts_note_acc"] == 0 and four["ts_main_ok"] == 0 and four["scale_ok"] == 1
    ragged = _score(onsets, (3, 4), [0, 3, 5, 8, 11, 14, 17, 20, 23])  # one 2-beat measure
    assert irregular_measures(ragged) == 1 and main_time_signature(ragged) == (3, 4)
    assert same["pickup_ok"] == 1 and same["pickup_gt"] == 0
    early = evaluate_meter(truth, _score(onsets, (3, 4), [0, *range(2, 24, 3)]))  # a pickup
    assert early["pickup_ok"] == 0 and early["pickup_gt"] == 0
    assert evaluate_meter(truth, _score(onsets, (3, 4), [0, 3, 6]))["pickup_ok"] == 1


def test_long_played_notes_mark_their_onset_as_a_bar_start():
    from perf2score.neural.meter import LENGTH_ACCENT_CAP, length_accent

    onsets = np.array([0, 0, 10, 20, 30, 40])
    lengths = np.array([1.0, 3.0, 1.0, 1.0, 0.5, 64.0])  # seconds, key down to key up
    accent = length_accent(onsets, lengths)
    # longest per onset 3, 1, 1, 0.5, 64: median 1
    assert np.allclose(accent, [np.log2(3), np.log2(3), 0, 0, 0, LENGTH_ACCENT_CAP])
    assert length_accent(np.zeros(0), np.zeros(0)).shape == (0,)


def test_key_agreement_reads_the_opening_and_each_notes_key_signature():
    from dataclasses import replace

    from perf2score.evaluate import evaluate
    from perf2score.evaluate.whole import opening_key

    onsets = np.arange(0, 12, 0.5)
    truth = replace(_score(onsets, (3, 4), np.arange(0, 12, 3)), key_signatures=[(0, 1, 0)])
    assert opening_key(truth) == 1 and opening_key(replace(truth, key_signatures=[])) == 0
    later = replace(truth, key_signatures=[(480, -2, 0), (0, 1, 0)])  # the earliest counts
    assert evaluate(truth, later, with_mv2h=False)["key_ok"] == 1
    d_major = replace(truth, key_signatures=[(0, 2, 0)])
    assert evaluate(truth, d_major, with_mv2h=False)["key_ok"] == 0
    # key_note_acc: the notes under the truth's signature (24 notes, 12 after quarter 6)
    assert evaluate(truth, later, with_mv2h=False)["key_note_acc"] == 1
    assert evaluate(truth, d_major, with_mv2h=False)["key_note_acc"] == 0
    changed = replace(truth, key_signatures=[(0, 1, 0), (6 * 4, -2, 0)])
    halves = evaluate(truth, changed, with_mv2h=False)
    assert halves["key_ok"] == 1 and halves["key_note_acc"] == 0.5


def test_the_shipped_costs_follow_a_beat_lost_eight_bars_before_the_end():
    """A decoded 4/4 piece in eighths whose time loses a beat after bar 12 of 20: the head
    hears the true downbeats (2 nats a note), so the old phase misreads two notes a bar
    after the slip (32 nats over the last 8 bars). The shipped phase costs (18 / 18 nats
    since 2026-12-05) follow the slip there; the earlier ones (16 / 48) kept the old phase
    to the end."""
    shipped = DecodeConfig.read(model_folder())
    onsets = _eighths(20, 8)
    slip = 12 * 4 * Q
    true = np.where(onsets >= slip, onsets + Q, onsets)  # the decoder lost a beat
    evidence = Evidence.from_logits(
        onsets,
        true / Q * 0.6,
        np.where(true % (4 * Q) == 0, 2.0, -2.0),
        np.where(true % Q == 0, 2.0, -2.0),
    )
    options = {"scales": (1.0,), "meters": ((4, 4),), "beat_weight": shipped.meter_beat_weight}
    change, jump = shipped.meter_change_cost, shipped.meter_jump_cost
    now = choose_barring(evidence, change_cost=change, jump_cost=jump, **options)[2]
    assert np.all(now[onsets < slip] == 0) and np.all(now[onsets >= slip] == 3 * Q)
    before = choose_barring(evidence, change_cost=16.0, jump_cost=48.0, **options)[2]
    assert np.all(before == 0)


def test_the_beat_weight_sets_how_much_the_beats_count_against_the_downbeats():
    """Downbeat evidence for phase 0 (1 nat a note), beat evidence (3 nats a note) for beats
    an eighth later: with the beats weighed fully the phase follows them, with
    ``beat_weight`` 0 the downbeats alone set it; ``DecodeConfig`` checks the setting."""
    onsets = _eighths(8, 8)
    evidence = Evidence.from_logits(
        onsets,
        onsets / Q * 0.6,
        np.where(onsets % (4 * Q) == 0, 1.0, -1.0),
        np.where((onsets - Q // 2) % Q == 0, 3.0, -3.0),
    )
    options = {"scales": (1.0,), "meters": ((4, 4),), "change_cost": 24.0}
    assert choose_barring(evidence, beat_weight=1.0, **options)[0].phase % Q == Q // 2
    assert choose_barring(evidence, beat_weight=0.0, **options)[0].phase == 0
    with pytest.raises(ValueError, match="meter_beat_weight"):
        DecodeConfig(meter_beat_weight=-1.0)
