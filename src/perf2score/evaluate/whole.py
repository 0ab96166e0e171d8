"""Whole-score evaluation of an estimated MusicXML against its ground truth (mir_eval shape)."""

from __future__ import annotations

import os

import numpy as np

from perf2score.errors import Perf2ScoreError
from perf2score.evaluate.meter import evaluate_meter
from perf2score.evaluate.muster import comparable, evaluate_scores
from perf2score.evaluate.mv2h import evaluate_mv2h
from perf2score.score.reading import ScoreNotes, read_score

MAX_NOTES = 100_000  # beyond this a score is almost surely not a piano piece


def validate(gt: ScoreNotes, est: ScoreNotes) -> None:
    """Raise ``Perf2ScoreError`` for inputs the metrics are not defined on."""
    for name, score in (("ground truth", gt), ("estimate", est)):
        if len(score) == 0:
            raise Perf2ScoreError(f"the {name} has no notes")
        if len(score) > MAX_NOTES:
            raise Perf2ScoreError(f"the {name} has {len(score)} notes (more than {MAX_NOTES})")


def opening_key(score: ScoreNotes) -> int:
    """The key signature (fifths) in force at the score's start: the earliest one (0, no
    accidentals, when the score has none, as a reader of the page sees it)."""
    if not score.key_signatures:
        return 0
    return int(min(score.key_signatures, key=lambda k: k[0])[1])


def keys_at(score: ScoreNotes, ticks: np.ndarray) -> np.ndarray:
    """(K,) the key signature (fifths) in force at each of ``ticks`` (K,): the latest one
    at or before it, the earliest before that (0 when the score has none)."""
    if not score.key_signatures:
        return np.zeros(len(ticks), dtype=np.int64)
    ordered = sorted(score.key_signatures, key=lambda k: k[0])
    times = np.array([t for t, _, _ in ordered], dtype=np.int64)
    fifths = np.array([f for _, f, _ in ordered], dtype=np.int64)
    index = np.clip(np.searchsorted(times, ticks, side="right") - 1, 0, len(times) - 1)
    return fifths[index]


def key_note_accuracy(gt: ScoreNotes, est: ScoreNotes, gt_index, est_index) -> float:
    """The share of matched notes (``gt_index``/``est_index`` (K,)) written under the ground
    truth's key signature (the same fifths: an enharmonic signature is another); nan
    without matches."""
    if not len(gt_index):
        return float("nan")
    g = keys_at(gt, gt.notes["onset_ticks"][gt_index])
    e = keys_at(est, est.notes["onset_ticks"][est_index])
    return float((g == e).mean())


def evaluate(
    gt: ScoreNotes | str | os.PathLike,
    est: ScoreNotes | str | os.PathLike,
    with_mv2h: bool = True,
) -> dict[str, float]:
    """All whole-score metrics as one flat dict.

    Keys: ``pitch_er``, ``missing_rate``, ``extra_rate``, ``onset_er``, ``offset_er``,
    ``e_avg``, ``voice_er``, ``hand_er``, ``spell_er`` (percent); ``mv2h`` and ``mv2h_multi_pitch``,
    ``mv2h_voice``, ``mv2h_meter``, ``mv2h_value``, ``mv2h_harmony`` (0–1); counts
    ``n_gt``, ``n_est``, ``n_matched``; the meter metrics of ``evaluate.meter``
    (``ts_note_acc``, ``ts_main_ok``, ``value_scale``, ``scale_ok``, ``pickup_ok``,
    ``pickup_gt``, ``irregular_measures``, ``irregular_measures_gt``); ``key_ok`` (1 when
    the opening key signatures agree, ``opening_key``) and ``key_note_acc`` (the matched
    notes under the ground truth's key signature, ``key_note_accuracy``).
    """
    gt_notes = gt if isinstance(gt, ScoreNotes) else read_score(gt)
    est_notes = est if isinstance(est, ScoreNotes) else read_score(est)
    validate(gt_notes, est_notes)
    gt_same, est_same, matching = comparable(gt_notes, est_notes)  # one matching for both
    result = evaluate_scores(gt_same, est_same, matching).as_dict()
    result.update(evaluate_meter(gt_same, est_same, matching))
    result["key_ok"] = float(opening_key(gt_notes) == opening_key(est_notes))
    result["key_note_acc"] = key_note_accuracy(
        gt_same, est_same, matching.gt_index, matching.est_index
    )
    if with_mv2h:
        mv2h = evaluate_mv2h(gt_notes, est_notes).as_dict()
        result["mv2h"] = mv2h.pop("mv2h")
        result.update({f"mv2h_{k}": v for k, v in mv2h.items()})
    return result
