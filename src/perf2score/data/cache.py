"""The prepared-data cache: layout, writing and loading.

Layout of ``CACHE_DIR``::

    index.csv                      one row per prepared performance (split, counts)
    sources.json                   absolute paths of the ASAP and (n)ASAP folders used
    report.json                    the prepare report (also printed)
    scores/<piece>.npz             per piece: the unfolded score's target table
    performances/<perf_id>.npz     per performance: its notes and, per note, the index of
                                   its score note in the piece table (-1 = drop)

``perf_id`` is the ASAP MIDI path without ``.mid`` (e.g. ``Bach/Fugue/bwv_846/Shi05M``).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perf2score.errors import Perf2ScoreError
from perf2score.files import atomic_write

INDEX_FIELDS = [
    "perf_id",
    "piece",
    "split",
    "robust_alignment",
    "n_notes",
    "n_aligned",
    "n_drop",
    "n_missing",
    "n_unresolved",
]


@dataclass
class PreparedPerformance:
    """One performance with its note-aligned score targets.

    Attributes:
        perf_id: ASAP performance id.
        split: ``train`` / ``validation`` / ``test``.
        notes: (N,) performance notes (``perf2score.midi.reading.NOTE_DTYPE``).
        pedal: (P, 2) sustain-pedal intervals in seconds.
        score_index: (N,) index into ``score`` of each note's score partner, -1 = drop.
        score: (S,) the piece's unfolded score table (``ATTRIBUTE_DTYPE``).
        missing: indices into ``score`` of score notes this performance never played
            (tied continuations excluded: they are never played).
        ticks_per_quarter: resolution of every ``*_ticks`` field.
        anacrusis_ticks: length of an incomplete first measure (0 if none).
    """

    perf_id: str
    split: str
    notes: np.ndarray
    pedal: np.ndarray
    score_index: np.ndarray
    score: np.ndarray
    missing: np.ndarray
    ticks_per_quarter: int
    anacrusis_ticks: int

    @property
    def drop(self) -> np.ndarray:
        """(N,) True where the performed note has no score partner."""
        return self.score_index < 0

    def targets(self) -> np.ndarray:
        """(N,) score attributes per performed note (rows of drops are zero-filled)."""
        out = np.zeros(len(self.notes), dtype=self.score.dtype)
        keep = ~self.drop
        out[keep] = self.score[self.score_index[keep]]
        return out


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write a compressed ``.npz`` atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write(path, buffer.getvalue())


def score_path(cache: Path, piece: str) -> Path:
    return cache / "scores" / f"{piece}.npz"


def performance_path(cache: Path, perf_id: str) -> Path:
    return cache / "performances" / f"{perf_id}.npz"


def write_index(cache: Path, rows: list[dict]) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=INDEX_FIELDS)
    writer.writeheader()
    for row in sorted(rows, key=lambda r: r["perf_id"]):
        writer.writerow({k: row[k] for k in INDEX_FIELDS})
    atomic_write(cache / "index.csv", buffer.getvalue())


def load_index(
    cache: str | os.PathLike, split: str | None = None, required: bool = False
) -> list[dict]:
    """Rows of ``index.csv`` (optionally one split only; ``required``: raise if none)."""
    path = Path(cache) / "index.csv"
    if not path.is_file():
        raise Perf2ScoreError(f"{cache}: not a prepared cache (no index.csv); run `data prepare`")
    with open(path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if split is None or r["split"] == split]
    if required and not rows:
        raise Perf2ScoreError(f"{cache}: no performances in split '{split}'")
    return rows


def write_sources(cache: Path, sources: dict[str, str]) -> None:
    """Record where the datasets were read from (the evaluator needs ASAP's scores)."""
    resolved = {k: str(Path(v).resolve()) for k, v in sources.items()}
    atomic_write(cache / "sources.json", json.dumps(resolved, indent=2))


def load_sources(cache: str | os.PathLike) -> dict[str, str]:
    path = Path(cache) / "sources.json"
    if not path.is_file():
        raise Perf2ScoreError(f"{cache}: not a prepared cache (no sources.json)")
    return json.loads(path.read_text())


def load_prepared(cache: str | os.PathLike, perf_id: str) -> PreparedPerformance:
    """Load one prepared performance and its piece's score table."""
    cache = Path(cache)
    with np.load(performance_path(cache, perf_id)) as perf:
        piece = str(perf["piece"])
        split = str(perf["split"])
        notes, pedal = perf["notes"], perf["pedal"]
        score_index, missing = perf["score_index"], perf["missing"]
    with np.load(score_path(cache, piece)) as score:
        table = score["table"]
        tpq = int(score["ticks_per_quarter"])
        anacrusis = int(score["anacrusis_ticks"])
    return PreparedPerformance(
        perf_id, split, notes, pedal, score_index, table, missing, tpq, anacrusis
    )
