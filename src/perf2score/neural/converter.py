"""The neural backend: the shipped (or a given) aligned model → per-note score attributes."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from perf2score.errors import Perf2ScoreError
from perf2score.midi.reading import Performance
from perf2score.score.assembly import average_tempo
from perf2score.tokens.spec import GRID_PER_QUARTER

SHIPPED = Path(__file__).resolve().parent.parent / "weights" / "adapter"


def shipped_available() -> bool:
    """Whether the package holds a trained aligned model."""
    return (SHIPPED / "adapter.json").is_file()


@lru_cache(maxsize=2)
def _model(folder: str):
    from perf2score.models.io import load_aligned

    return load_aligned(folder)


def onset_ticks(attributes: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """(N,) absolute onsets in ticks from measure indices, measure lengths and positions
    (a measure's length is that of its first kept note; dropped notes get 0)."""
    keep = ~drop
    out = np.zeros(len(attributes), dtype=np.int64)
    if not keep.any():
        return out
    measures = attributes["measure"][keep].astype(np.int64)
    lengths: dict[int, int] = {}
    for m, length in zip(
        measures.tolist(), attributes["measure_length_ticks"][keep].tolist(), strict=True
    ):
        lengths.setdefault(m, max(int(length), 1))
    first = min(lengths)
    starts, total = {}, 0
    for m in range(first, max(lengths) + 1):
        starts[m] = total
        total += lengths.get(m, lengths[first])
    out[keep] = (
        np.array([starts[m] for m in measures.tolist()]) + attributes["position_ticks"][keep]
    )
    return out


def estimate_tempo(attributes: np.ndarray, drop: np.ndarray, onsets_sec: np.ndarray) -> float:
    """Average tempo (quarters per minute) implied by the decoded score and the played onsets
    (attributes at ``GRID_PER_QUARTER`` ticks per quarter)."""
    keep = ~drop & ~attributes["is_grace"]
    onset_q = onset_ticks(attributes, drop)[keep] / GRID_PER_QUARTER
    return average_tempo(onset_q, onsets_sec[keep])


def neural_attributes(
    performance: Performance, model_folder: str | os.PathLike | None = None
) -> tuple[np.ndarray, int, float, np.ndarray]:
    """(attributes (N,), ticks per quarter, tempo in quarters/min, drop (N,)) of a performance."""
    from perf2score.neural.decode import decode_windows

    folder = Path(model_folder) if model_folder else SHIPPED
    if not (folder / "adapter.json").is_file():
        raise Perf2ScoreError(f"{folder}: no trained aligned model (adapter.json)")
    attributes, drop = decode_windows(_model(str(folder)), performance)
    tempo = estimate_tempo(attributes, drop, performance.notes["onset_sec"])
    return attributes, GRID_PER_QUARTER, tempo, drop
