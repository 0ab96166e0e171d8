"""What a reader sees first: the time signature, the bar lines and the note-value scale.

MUSTER's onset rate compares onset *intervals* up to a change of scale, so it hardly sees a
wrong meter, a shifted bar line or values written twice too long. These metrics do, on the
note matching of ``alignment`` (the same as the MUSTER rates):

- ``ts_note_acc`` (0–1): share of matched notes whose measure has the ground truth's time
  signature (numerator and denominator both; 2/2 against 4/4 is wrong);
- ``ts_main_ok`` (0 or 1): the main time signature (the one spanning the most quarters) is
  the ground truth's;
- ``value_scale``: how many of the estimate's quarters stand for one of the ground truth's:
  2 to the weighted median of log2(estimate interval / ground-truth interval) over
  consecutive matched onsets (weights: the ground-truth interval); 1 when values are written
  as notated, 2 when every value is doubled;
- ``scale_ok`` (0 or 1): ``value_scale`` within a factor sqrt 2 of 1;
- ``pickup_ok`` (0 or 1): the estimate opens with a pickup (a first measure shorter than its
  time signature's) exactly when the ground truth does (``pickup_gt``: whether it does);
- ``irregular_measures``: measures of the estimate, the first and the last excepted, whose
  length is not their time signature's (``irregular_measures_gt`` the same for the ground
  truth, for reference: notated repeats and cadenzas have some).

Downbeat F-measure against the ASAP annotations is in ``beats``; MV2H meter in ``mv2h``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from perf2score.evaluate.alignment import NoteMatching
from perf2score.evaluate.muster import comparable
from perf2score.score.reading import ScoreNotes

METER_KEYS = (
    "ts_note_acc",
    "ts_main_ok",
    "value_scale",
    "scale_ok",
    "pickup_ok",
    "pickup_gt",
    "irregular_measures",
    "irregular_measures_gt",
)


def _signatures(score: ScoreNotes) -> list[tuple[int, int, int]]:
    return sorted(score.time_signatures) or [(0, 4, 4)]


def signatures_at(score: ScoreNotes, ticks: np.ndarray) -> np.ndarray:
    """(K, 2) the (numerator, denominator) in force at each of ``ticks`` (K,)."""
    signatures = _signatures(score)
    times = np.array([t for t, _, _ in signatures])
    table = np.array([(n, d) for _, n, d in signatures], dtype=np.int64)
    index = np.clip(np.searchsorted(times, ticks, side="right") - 1, 0, len(table) - 1)
    return table[index]


def _measure_spans(score: ScoreNotes) -> tuple[np.ndarray, np.ndarray]:
    """(starts (M,), lengths (M,)) in ticks; the last measure ends with the last offset."""
    starts = np.unique(np.asarray(score.measure_starts, dtype=np.int64))
    if not len(starts):
        starts = np.zeros(1, np.int64)
    end = int(score.notes["offset_ticks"].max()) if len(score.notes) else int(starts[-1])
    bounds = np.append(starts[1:], max(end, int(starts[-1])))
    return starts, bounds - starts


def main_time_signature(score: ScoreNotes) -> tuple[int, int]:
    """The time signature whose measures span the most ticks."""
    starts, lengths = _measure_spans(score)
    spans: dict[tuple[int, int], int] = {}
    for (num, den), length in zip(
        signatures_at(score, starts).tolist(), lengths.tolist(), strict=True
    ):
        spans[(num, den)] = spans.get((num, den), 0) + length
    return max(spans, key=lambda k: spans[k])


def irregular_measures(score: ScoreNotes) -> int:
    """Measures, the first and the last excepted, whose length differs from the nominal
    length of their time signature."""
    starts, lengths = _measure_spans(score)
    if len(starts) <= 2:
        return 0
    nominal = [
        Fraction(4 * num, den) * score.ticks_per_quarter
        for num, den in signatures_at(score, starts).tolist()
    ]
    return sum(
        int(length != size)
        for length, size in zip(lengths[1:-1].tolist(), nominal[1:-1], strict=True)
    )


def has_pickup(score: ScoreNotes) -> bool:
    """Whether the first of two or more measures is shorter than its time signature's
    nominal length (an anacrusis)."""
    starts, lengths = _measure_spans(score)
    if len(starts) < 2:
        return False
    num, den = signatures_at(score, starts[:1]).tolist()[0]
    return bool(lengths[0] < Fraction(4 * num, den) * score.ticks_per_quarter)


def value_scale(gt: ScoreNotes, est: ScoreNotes, matching: NoteMatching) -> float:
    """Estimate quarters per ground-truth quarter (see the module docstring); nan when
    fewer than two matched onsets."""
    g = gt.notes["onset_ticks"][matching.gt_index] / gt.ticks_per_quarter
    e = est.notes["onset_ticks"][matching.est_index] / est.ticks_per_quarter
    order = np.argsort(g, kind="stable")
    g, e = g[order], e[order]
    first = np.concatenate([[True], np.diff(g) > 0]) if len(g) else np.zeros(0, bool)
    g, e = g[first], e[first]  # one matched note per ground-truth onset
    dg, de = np.diff(g), np.diff(e)
    usable = (dg > 0) & (de > 0)
    if not usable.any():
        return float("nan")
    ratios, weights = np.log2(de[usable] / dg[usable]), dg[usable]
    order = np.argsort(ratios)
    cumulative = np.cumsum(weights[order])
    median = ratios[order][np.searchsorted(cumulative, cumulative[-1] / 2)]
    return float(2.0**median)


def evaluate_meter(
    gt: ScoreNotes, est: ScoreNotes, matching: NoteMatching | None = None
) -> dict[str, float]:
    """The metrics of the module docstring as one flat dict (``METER_KEYS``)."""
    gt, est, matching = comparable(gt, est, matching)
    g = gt.notes["onset_ticks"][matching.gt_index]
    e = est.notes["onset_ticks"][matching.est_index]
    same = np.all(signatures_at(gt, g) == signatures_at(est, e), axis=1)
    scale = value_scale(gt, est, matching)
    return {
        "ts_note_acc": float(same.mean()) if len(same) else float("nan"),
        "ts_main_ok": float(main_time_signature(gt) == main_time_signature(est)),
        "value_scale": scale,
        "scale_ok": float(abs(np.log2(scale)) < 0.5) if np.isfinite(scale) else float("nan"),
        "pickup_ok": float(has_pickup(est) == has_pickup(gt)),
        "pickup_gt": float(has_pickup(gt)),
        "irregular_measures": float(irregular_measures(est)),
        "irregular_measures_gt": float(irregular_measures(gt)),
    }
