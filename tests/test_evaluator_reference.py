"""The evaluator on real scores: zero on ground truth, agreement with the reference tool."""

from __future__ import annotations

import csv

import pytest

from perf2score.evaluate.muster import ERROR_RATES, evaluate_scores
from perf2score.evaluate.mv2h import evaluate_mv2h
from perf2score.score import read_score

pytestmark = pytest.mark.data

RATES = ERROR_RATES


def _test_pieces(splits_csv) -> list[str]:
    with open(splits_csv, newline="") as handle:
        return sorted({r["folder"] for r in csv.DictReader(handle) if r["m2st_split"] == "test"})


def test_every_test_score_against_itself_is_error_free(asap_dir, splits_csv):
    pieces = _test_pieces(splits_csv)
    assert len(pieces) == 14
    for piece in pieces:
        score = read_score(asap_dir / piece / "xml_score.musicxml")
        result = evaluate_scores(score, score)
        assert all(getattr(result, k) == 0.0 for k in RATES), (piece, result)
        assert result.n_matched == result.n_gt == result.n_est  # unisons merged once


@pytest.mark.parametrize("piece", ["Bach/Fugue/bwv_846", "Haydn/Keyboard_Sonatas/31-1"])
def test_mv2h_of_a_score_against_itself_is_one(asap_dir, piece):
    score = read_score(asap_dir / piece / "xml_score.musicxml")
    assert evaluate_mv2h(score, score).mv2h == pytest.approx(1.0)


# perf_id: our (pitch, missing, extra, onset, offset, E_avg) when these were pinned; the
# reference tool's values are read from the calibration archive.
PINNED = {
    "Bach/Fugue/bwv_846/Shi05M": (0.40, 0.54, 1.86, 13.94, 54.80, 14.31),
    "Mozart/Piano_Sonatas/12-1/TET01": (0.00, 2.44, 4.31, 21.64, 29.52, 11.58),
    "Haydn/Keyboard_Sonatas/31-1/Song05M": (0.33, 1.26, 7.21, 33.09, 32.48, 14.87),
    "Rachmaninoff/Preludes_op_23/4/MorozovS09": (0.90, 2.24, 2.60, 47.71, 58.78, 22.45),
    "Prokofiev/Toccata/Song04": (1.62, 1.97, 4.04, 37.40, 41.94, 17.39),
}
REFERENCE_COLUMNS = ("PitchER", "MissRate", "ExtraRate", "OnsetER", "OffsetER", "MeanER")


@pytest.mark.parametrize("perf_id", sorted(PINNED))
def test_agreement_with_the_reference_tool(perf_id, asap_dir, calibration_dir):
    with open(calibration_dir / "reference_scores.csv", newline="") as handle:
        reference = next(r for r in csv.DictReader(handle) if r["perf_id"] == perf_id)
    piece = perf_id.rsplit("/", 1)[0]
    result = evaluate_scores(
        read_score(asap_dir / piece / "xml_score.musicxml"),
        read_score(calibration_dir / "estimates" / f"{perf_id}.musicxml"),
    )
    ours = [getattr(result, k) for k in RATES[:6]]
    # our evaluator has not drifted since these numbers were checked against the reference
    assert ours == pytest.approx(list(PINNED[perf_id]), abs=0.01)
    # and it agrees with the reference tool on this transcription
    assert abs(result.e_avg - float(reference["MeanER"])) < 1.0
    for value, column in zip(ours[3:5], REFERENCE_COLUMNS[3:5], strict=True):
        assert abs(value - float(reference[column])) < 2.5, column
