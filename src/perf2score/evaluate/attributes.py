"""Note-aligned attribute metrics: cheap, exact checks for the development loop.

Through the (n)ASAP note alignment every performed note has a ground-truth score note (or
is a ``drop``). A model predicts, per performed note, the same attributes
(``perf2score.score.attributes.ATTRIBUTE_DTYPE`` fields at the prepared
``ticks_per_quarter``) plus a drop flag. Accuracies are over notes that are *not* drops in
the ground truth (and that the model did not drop), in percent:

- ``rhythm``: the onset interval to the previous kept note, in quarters (local rhythm; a
  global shift or a different measure numbering does not count against it);
- ``position``: onset position within the measure; ``value``: note value (duration);
- ``staff``, ``voice`` (exact voice number), ``spelling`` (step and alter),
  ``key`` (fifths), ``time_signature`` (numerator and denominator);
- ``drop_f1``: F1 of the drop flag (positive class: drop).
"""

from __future__ import annotations

import numpy as np

from perf2score.data.cache import PreparedPerformance
from perf2score.errors import Perf2ScoreError

ATTRIBUTES = ("rhythm", "position", "value", "staff", "voice", "spelling", "key", "time_signature")


def validate(prepared: PreparedPerformance, predicted: np.ndarray, predicted_drop: np.ndarray):
    """Raise ``Perf2ScoreError`` unless predictions have one row per performed note."""
    n = len(prepared.notes)
    if len(predicted) != n or len(predicted_drop) != n:
        raise Perf2ScoreError(
            f"{prepared.perf_id}: {len(predicted)} predictions / {len(predicted_drop)} drop flags"
            f" for {n} performed notes"
        )
    missing = {
        "onset_ticks",
        "position_ticks",
        "duration_ticks",
        "staff",
        "voice",
        "step",
        "alter",
        "key_fifths",
        "ts_num",
        "ts_den",
    } - set(predicted.dtype.names or ())
    if missing:
        raise Perf2ScoreError(f"predictions lack the fields {sorted(missing)}")


def _f1(truth: np.ndarray, guess: np.ndarray) -> float:
    tp = int(np.sum(truth & guess))
    denominator = int(truth.sum() + guess.sum())
    return 100.0 * 2 * tp / denominator if denominator else 100.0


def attribute_metrics(
    prepared: PreparedPerformance, predicted: np.ndarray, predicted_drop: np.ndarray
) -> dict[str, float]:
    """Per-attribute accuracies (%) and drop F1 (%) for one performance."""
    validate(prepared, predicted, predicted_drop)
    truth = prepared.targets()
    true_drop = prepared.drop
    keep = ~true_drop & ~np.asarray(predicted_drop, dtype=bool)
    out: dict[str, float] = {"drop_f1": _f1(true_drop, np.asarray(predicted_drop, dtype=bool))}
    if not keep.any():
        return {**out, **{name: 0.0 for name in ATTRIBUTES}, "n_notes": 0}
    t, p = truth[keep], predicted[keep]
    checks = {
        "rhythm": np.diff(t["onset_ticks"], prepend=t["onset_ticks"][0])
        == np.diff(p["onset_ticks"], prepend=p["onset_ticks"][0]),
        "position": t["position_ticks"] == p["position_ticks"],
        "value": t["duration_ticks"] == p["duration_ticks"],
        "staff": t["staff"] == p["staff"],
        "voice": t["voice"] == p["voice"],
        "spelling": (t["step"] == p["step"]) & (t["alter"] == p["alter"]),
        "key": t["key_fifths"] == p["key_fifths"],
        "time_signature": (t["ts_num"] == p["ts_num"]) & (t["ts_den"] == p["ts_den"]),
    }
    out.update({name: 100.0 * float(ok.mean()) for name, ok in checks.items()})
    out["n_notes"] = int(keep.sum())
    return out
