"""Score a folder of estimated MusicXML against the ground truth of a prepared split.

Predictions are named like the performances: ``DIR/<perf_id>.musicxml`` (``.xml`` also
accepted), e.g. ``DIR/Bach/Fugue/bwv_846/Shi05M.musicxml``. The ground truth is ASAP's
``<piece>/xml_score.musicxml`` as notated (repeats not unfolded), as in the published
numbers. Beat and downbeat F place the estimate's beats in the performance, which plays
its repeats: an estimate written with repeat signs is unfolded for them (only for them).
Outputs (written atomically): ``per_performance.csv``, ``summary.json`` (means over
performances and over pieces) and ``summary.md``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from perf2score.data.cache import load_index, load_sources
from perf2score.errors import Perf2ScoreError
from perf2score.evaluate.beats import evaluate_beats, read_annotations
from perf2score.evaluate.whole import evaluate
from perf2score.files import atomic_write
from perf2score.midi import read_performance
from perf2score.parallel import parallel_map
from perf2score.score.reading import read_score

TABLE_KEYS = [
    "e_avg", "pitch_er", "missing_rate", "extra_rate", "onset_er", "offset_er",
    "voice_er", "hand_er", "spell_er", "mv2h", "mv2h_multi_pitch", "mv2h_voice", "mv2h_meter",
    "mv2h_value", "mv2h_harmony", "beat_f", "downbeat_f", "ts_note_acc", "ts_main_ok",
    "scale_ok", "value_scale", "pickup_ok", "pickup_gt", "irregular_measures",
    "irregular_measures_gt", "key_ok", "key_note_acc",
]  # fmt: skip


def find_prediction(folder: Path, perf_id: str) -> Path | None:
    for suffix in (".musicxml", ".xml"):
        candidate = folder / f"{perf_id}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def prediction_pairs(
    cache: str | os.PathLike, split: str, predictions: str | os.PathLike
) -> list[tuple[dict, Path | None, Path]]:
    """Every performance of ``split`` in the prepared ``cache``: (its index row, its
    prediction in the folder ``predictions`` or None, its piece's ground-truth score)."""
    asap = Path(load_sources(cache)["asap"])
    return [
        (
            row,
            find_prediction(Path(predictions), row["perf_id"]),
            asap / row["piece"] / "xml_score.musicxml",
        )
        for row in load_index(cache, split, required=True)
    ]


def _has_repeats(path: Path) -> bool:
    """Whether a MusicXML file has repeat bar lines (read as text: no second parse)."""
    return b"<repeat " in path.read_bytes()


def _evaluate_one(job: tuple[str, str, Path, Path, Path, bool]) -> dict:
    perf_id, piece, prediction, gt_file, asap, with_mv2h = job
    row: dict = {"perf_id": perf_id, "piece": piece, "status": "ok"}
    try:
        est = read_score(prediction)
        row.update(evaluate(read_score(gt_file), est, with_mv2h=with_mv2h))
        annotations = asap / f"{perf_id}_annotations.txt"
        midi = asap / f"{perf_id}.mid"
        if annotations.is_file() and midi.is_file():
            beats, downbeats = read_annotations(annotations)
            # beats are placed in the performance, which plays the repeats: unfold them
            played = read_score(prediction, unfold=True) if _has_repeats(prediction) else est
            row.update(evaluate_beats(played, read_performance(midi), beats, downbeats).as_dict())
    except Perf2ScoreError as exc:
        row["status"] = f"error: {exc}"
    return row


def _means(rows: list[dict]) -> dict[str, float]:
    out = {}
    for key in TABLE_KEYS:
        values = [r[key] for r in rows if isinstance(r.get(key), float) and not math.isnan(r[key])]
        if values:
            out[key] = float(np.mean(values))
    return out


def summarize(rows: list[dict]) -> dict:
    """Means over performances and over pieces (each piece's performances averaged first)."""
    scored = [r for r in rows if r["status"] == "ok"]
    by_piece: dict[str, list[dict]] = defaultdict(list)
    for r in scored:
        by_piece[r["piece"]].append(r)
    piece_means = [_means(v) for v in by_piece.values()]
    return {
        "n_performances": len(rows),
        "n_scored": len(scored),
        "n_pieces": len(by_piece),
        "failed": {r["perf_id"]: r["status"] for r in rows if r["status"] != "ok"},
        "mean_over_performances": _means(scored),
        "mean_over_pieces": {
            k: float(np.mean([m[k] for m in piece_means if k in m]))
            for k in TABLE_KEYS
            if any(k in m for m in piece_means)
        },
    }


def markdown_table(summary: dict) -> str:
    """The summary as a Markdown table (rates in %, MV2H and F-measures in 0–1)."""
    keys = [k for k in TABLE_KEYS if k in summary["mean_over_performances"]]
    lines = ["| mean over | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for label, name in (("performances", "mean_over_performances"), ("pieces", "mean_over_pieces")):
        values = summary[name]
        lines.append(
            f"| {label} | " + " | ".join(f"{values.get(k, float('nan')):.3g}" for k in keys) + " |"
        )
    return "\n".join(lines)


def evaluate_folder(
    cache: str | os.PathLike,
    split: str,
    predictions: str | os.PathLike,
    out: str | os.PathLike,
    workers: int = 2,
    with_mv2h: bool = True,
    progress: bool = True,
) -> dict:
    """Evaluate every performance of ``split`` that has a prediction; return the summary."""
    if not Path(predictions).is_dir():
        raise Perf2ScoreError(f"{predictions}: no such folder")
    asap = Path(load_sources(cache)["asap"])
    jobs, rows = [], []
    for rec, found, gt_file in prediction_pairs(cache, split, predictions):
        if found is None:
            rows.append(
                {"perf_id": rec["perf_id"], "piece": rec["piece"], "status": "no prediction"}
            )
            continue
        jobs.append((rec["perf_id"], rec["piece"], found, gt_file, asap, with_mv2h))
    rows.extend(parallel_map(_evaluate_one, jobs, workers, "evaluate", progress))
    rows.sort(key=lambda r: r["perf_id"])
    summary = summarize(rows)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fields = ["perf_id", "piece", "status", *TABLE_KEYS, "n_gt", "n_est", "n_matched"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out / "per_performance.csv", buffer.getvalue())
    atomic_write(out / "summary.json", json.dumps(summary, indent=2))
    atomic_write(out / "summary.md", markdown_table(summary) + "\n")
    return summary
