"""Decoded validation: the model transcribes excerpts of validation performances (greedy,
with the constraints), scored with the evaluator's note-aligned attribute metrics. Unlike the
teacher-forced validation loss, this sees the model's own mistakes propagate; fine-tuning can
keep the checkpoint that transcribes best."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from perf2score.constants import GRID_PER_QUARTER
from perf2score.data.cache import PreparedPerformance, load_index, load_prepared
from perf2score.evaluate.attributes import ATTRIBUTES, attribute_metrics
from perf2score.midi.reading import Performance
from perf2score.neural.decode import decode_many, measure_grid
from perf2score.neural.settings import DecodeConfig

TICK_FIELDS = ("onset_ticks", "position_ticks", "duration_ticks", "measure_length_ticks")


def validation_excerpts(
    cache: str | os.PathLike, count: int = 8, notes: int = 512
) -> list[PreparedPerformance]:
    """The first ``notes`` notes of ``count`` validation performances spread over the split."""
    rows = load_index(cache, "validation", required=True)
    chosen = rows[:: max(len(rows) // count, 1)][:count]
    excerpts = []
    for row in chosen:
        p = load_prepared(cache, row["perf_id"])
        cut = slice(0, min(notes, len(p.notes)))
        excerpts.append(replace(p, notes=p.notes[cut], score_index=p.score_index[cut]))
    return excerpts


def decoded_metrics(
    model, excerpts: list[PreparedPerformance], decoding: DecodeConfig | None = None
) -> dict[str, float]:
    """Mean attribute accuracies (%) and drop F1 over the excerpts, plus their mean (``mean``),
    decoded with ``decoding`` (default settings when None)."""
    totals: dict[str, float] = {}
    performances = [Performance(p.notes, p.pedal) for p in excerpts]
    decoded = decode_many(model, performances, decoding or DecodeConfig()) if excerpts else []
    for prepared, (attributes, drop) in zip(excerpts, decoded, strict=True):
        predicted = np.zeros(len(attributes), dtype=prepared.score.dtype)
        for name in attributes.dtype.names:
            if name in predicted.dtype.names:
                predicted[name] = attributes[name]
        predicted["onset_ticks"] = measure_grid(attributes, drop)[0]
        scale = prepared.ticks_per_quarter / GRID_PER_QUARTER
        for name in TICK_FIELDS:
            predicted[name] = np.rint(predicted[name] * scale).astype(np.int64)
        for name, value in attribute_metrics(prepared, predicted, drop).items():
            totals[name] = totals.get(name, 0.0) + value
    means = {k: v / max(len(excerpts), 1) for k, v in totals.items() if k != "n_notes"}
    means["mean"] = float(np.mean([means[k] for k in (*ATTRIBUTES, "drop_f1")]))
    return means
