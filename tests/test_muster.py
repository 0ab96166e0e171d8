from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from builders import random_score

from perf2score.evaluate.alignment import dtw_path, map_times
from perf2score.evaluate.muster import (
    ERROR_RATES,
    evaluate_scores,
    merge_unisons,
    rhythm_correction,
    scale_factors,
)


@pytest.fixture
def score():
    return random_score(400, seed=3)


def _with(score, notes):
    return replace(score, notes=notes)


def test_identical_scores_give_zero(score):
    result = evaluate_scores(score, score)
    assert result.n_matched == len(score)
    for key in ERROR_RATES:
        assert getattr(result, key) == 0.0, key


def test_one_deleted_note(score):
    est = _with(score, np.delete(score.notes, 123))
    result = evaluate_scores(score, est)
    assert result.missing_rate == pytest.approx(100 / len(score))
    assert result.extra_rate == result.pitch_er == 0.0
    # the interval across the gap is still exact: no rhythm cost
    assert result.onset_er == 0.0


def test_one_transposed_note(score):
    notes = score.notes.copy()
    k = 200
    notes["pitch"][k] += 1
    result = evaluate_scores(score, _with(score, notes))
    assert result.pitch_er == pytest.approx(100 / len(score))
    assert result.missing_rate == result.extra_rate == 0.0
    assert result.onset_er == result.offset_er == 0.0


def test_all_values_halved_costs_one_scale_change(score):
    notes = score.notes.copy()
    notes["onset_ticks"] //= 2
    notes["offset_ticks"] //= 2
    halved = replace(score, notes=notes, measure_starts=score.measure_starts // 2)
    result = evaluate_scores(score, halved)
    assert result.rhythm_correction_cost == 1
    assert result.offset_er == 0.0
    assert result.missing_rate == result.extra_rate == 0.0


def test_shifted_measure_costs_local_errors_only(score):
    notes = score.notes.copy()
    tpq = score.ticks_per_quarter
    in_bar = (notes["onset_ticks"] >= 8 * tpq) & (notes["onset_ticks"] < 12 * tpq)
    notes["onset_ticks"][in_bar] += tpq // 2  # every note of bar 3 an eighth late
    notes["offset_ticks"][in_bar] += tpq // 2
    shifted = _with(score, notes[np.lexsort((notes["pitch"], notes["onset_ticks"]))])
    result = evaluate_scores(score, shifted)
    # the bar's last notes land on the next bar's first onset, where one of them can lose its
    # partner; everything else is matched
    assert result.n_matched >= len(score) - 1
    assert result.rhythm_correction_cost == 2  # into the shifted bar, and out of it
    assert 0 < result.offset_er < 5


def test_rhythm_correction_small_cases():
    gt = np.array([0, 4, 8, 12, 16])
    assert rhythm_correction(gt, gt) == (0, Fraction(1))
    assert rhythm_correction(gt, gt * 3) == (1, Fraction(3))
    assert rhythm_correction(gt, np.array([0, 4, 9, 12, 16]))[0] == 2  # one displaced onset
    ratios = {Fraction(p, q) for p, q in scale_factors()}
    assert {Fraction(1, 2), Fraction(3, 2), Fraction(2, 3), Fraction(7, 4)} <= ratios


def test_unisons_merge_to_the_longest(score):
    notes = score.notes.copy()
    doubled = notes[10].copy()
    doubled["offset_ticks"] += 5
    doubled["voice"] = 9
    with_double = _with(score, np.sort(np.append(notes, doubled), order=["onset_ticks", "pitch"]))
    merged = merge_unisons(with_double)
    assert len(merged) == len(score)
    assert doubled["offset_ticks"] in merged.notes["offset_ticks"]
    assert evaluate_scores(score, with_double).n_est == len(score)


def test_dtw_and_time_map():
    cost = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0.0]])
    assert dtw_path(cost) == [(0, 0), (1, 1), (2, 2)]
    mapped = map_times(
        np.array([-1.0, 0.5, 3.0]), np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0, 4.0])
    )
    np.testing.assert_allclose(mapped, [-2.0, 1.0, 6.0])


def test_five_thousand_notes_under_ten_seconds():
    import time

    big = random_score(5000, seed=1)
    notes = big.notes.copy()
    notes["pitch"][::97] += 2
    start = time.perf_counter()
    result = evaluate_scores(big, _with(big, notes))
    assert time.perf_counter() - start < 10.0
    assert result.pitch_er > 0


def test_oversized_alignment_is_a_clear_error(monkeypatch, score):
    from perf2score import Perf2ScoreError
    from perf2score.evaluate import alignment

    monkeypatch.setattr(alignment, "MAX_DTW_CELLS", 100)
    with pytest.raises(Perf2ScoreError, match="too large to align"):
        evaluate_scores(score, score)
