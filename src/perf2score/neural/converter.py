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


def respell(attributes: np.ndarray, drop: np.ndarray, onsets: np.ndarray) -> None:
    """Key signature and spelling of the decoded notes (``onsets`` (N,) in ticks), in place:
    partitura's key (KK) and ps13 spelling over the decoded onsets and values, which beat the
    model's own heads on validation; between enharmonic keys (F# / Gb major) the model's key
    decides."""
    from perf2score.classical.converter import key_and_spelling
    from perf2score.tokens.score import shift_spelling

    keep = ~drop
    if not keep.any():
        return
    durations = np.maximum(attributes["duration_ticks"][keep], 1)
    fifths, mode, spelling = key_and_spelling(attributes["pitch"][keep], onsets[keep], durations)
    kept = attributes[keep]
    for field in ("step", "alter", "octave"):
        kept[field] = spelling[field]
    twin = fifths - 12 if fifths > 0 else fifths + 12  # the enharmonic key
    voted = float(np.median(kept["key_fifths"]))
    if abs(twin) <= 7 and abs(twin - voted) < abs(fifths - voted):
        shift_spelling(kept, twin - fifths)
        fifths = twin
    kept["key_fifths"], kept["key_mode"] = fifths, mode
    attributes[keep] = kept


def neural_attributes(
    performance: Performance, model_folder: str | os.PathLike | None = None
) -> tuple[np.ndarray, int, float, np.ndarray]:
    """(attributes (N,), ticks per quarter, tempo in quarters/min, drop (N,)) of a performance."""
    from perf2score.neural.decode import decode_windows, measure_grid

    folder = Path(model_folder) if model_folder else SHIPPED
    if not (folder / "adapter.json").is_file():
        raise Perf2ScoreError(f"{folder}: no trained aligned model (adapter.json)")
    attributes, drop = decode_windows(_model(str(folder)), performance)
    onsets = measure_grid(attributes, drop)[0]  # (N,) ticks
    respell(attributes, drop, onsets)
    timed = ~drop & ~attributes["is_grace"]
    tempo = average_tempo(onsets[timed] / GRID_PER_QUARTER, performance.notes["onset_sec"][timed])
    return attributes, GRID_PER_QUARTER, tempo, drop
