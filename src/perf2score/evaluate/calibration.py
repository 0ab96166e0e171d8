"""Agreement of our evaluator with the reference MUSTER tool on MuseScore 3's transcriptions.

The calibration archive holds MuseScore 3.2.3's MIDI import of the 59 test performances and
the reference tool's per-performance rates (``reference_scores.csv``; 4 rows failed there).
We score the same files and report, per rate, our mean, the reference mean, their
difference, the mean absolute per-performance difference and the Pearson correlation.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from perf2score.data.archives import resolve_dataset
from perf2score.errors import Perf2ScoreError
from perf2score.evaluate.muster import evaluate_scores
from perf2score.files import atomic_write
from perf2score.parallel import parallel_map
from perf2score.score.reading import read_score

# our key -> the reference CSV's column
RATE_COLUMNS = {
    "pitch_er": "PitchER",
    "missing_rate": "MissRate",
    "extra_rate": "ExtraRate",
    "onset_er": "OnsetER",
    "offset_er": "OffsetER",
    "e_avg": "MeanER",
    "voice_er": "VoiceER",
    "hand_er": "HandER",
}


def read_reference(calibration_dir: Path) -> list[dict]:
    """Rows of ``reference_scores.csv`` that the reference tool scored."""
    path = calibration_dir / "reference_scores.csv"
    if not path.is_file():
        raise Perf2ScoreError(f"{calibration_dir}: no reference_scores.csv")
    with open(path, newline="") as handle:
        return [r for r in csv.DictReader(handle) if not r.get("muster_error")]


def _score_one(job: tuple[str, Path, Path]) -> dict:
    perf_id, gt_file, est_file = job
    result = evaluate_scores(read_score(gt_file), read_score(est_file)).as_dict()
    return {"perf_id": perf_id, **result}


def compare(ours: list[dict], reference: list[dict]) -> dict[str, dict[str, float]]:
    """Per rate: ours/reference means, difference, mean |difference|, correlation."""
    ref_by_id = {r["perf_id"]: r for r in reference}
    table = {}
    for key, column in RATE_COLUMNS.items():
        a = np.array([row[key] for row in ours])
        b = np.array([float(ref_by_id[row["perf_id"]][column]) for row in ours])
        table[key] = {
            "ours": float(a.mean()),
            "reference": float(b.mean()),
            "difference": float(a.mean() - b.mean()),
            "mean_abs_difference": float(np.abs(a - b).mean()),
            "correlation": float(np.corrcoef(a, b)[0, 1]) if len(a) > 1 else float("nan"),
        }
    return table


def calibrate(
    calibration: str | os.PathLike,
    asap: str | os.PathLike,
    out: str | os.PathLike,
    workers: int = 2,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Run the comparison; write ``calibration.json`` and ``per_performance.csv`` to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    calibration_dir = resolve_dataset(calibration, out / "_extracted")
    asap_dir = resolve_dataset(asap, out / "_extracted")
    reference = read_reference(calibration_dir)[:limit]
    jobs = [
        (
            r["perf_id"],
            asap_dir / r["piece"] / "xml_score.musicxml",
            calibration_dir / "estimates" / f"{r['perf_id']}.musicxml",
        )
        for r in reference
    ]
    ours = list(parallel_map(_score_one, jobs, workers, "calibrate", progress))
    pieces = sorted({r["piece"] for r in reference})
    self_jobs = [
        (p, asap_dir / p / "xml_score.musicxml", asap_dir / p / "xml_score.musicxml")
        for p in pieces
    ]
    gt_vs_gt = list(parallel_map(_score_one, self_jobs, workers, "ground truth", progress))
    report = {
        "n_performances": len(ours),
        "rates": compare(ours, reference),
        "gt_vs_gt_max_e_avg": max((r["e_avg"] for r in gt_vs_gt), default=0.0),
        "gt_vs_gt_pieces": len(gt_vs_gt),
    }
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(ours[0].keys()) if ours else ["perf_id"])
    writer.writeheader()
    writer.writerows(ours)
    atomic_write(out / "per_performance.csv", buffer.getvalue())
    atomic_write(out / "calibration.json", json.dumps(report, indent=2))
    return report


def format_report(report: dict) -> str:
    lines = [
        f"performances: {report['n_performances']}",
        f"{'rate':14s} {'ours':>7s} {'ref':>7s} {'diff':>7s} {'MAD':>6s} {'corr':>6s}",
    ]
    for key, s in report["rates"].items():
        lines.append(
            f"{key:14s} {s['ours']:7.2f} {s['reference']:7.2f} {s['difference']:+7.2f}"
            f" {s['mean_abs_difference']:6.2f} {s['correlation']:6.3f}"
        )
    lines.append(
        f"ground truth vs itself ({report['gt_vs_gt_pieces']} pieces):"
        f" max E_avg {report['gt_vs_gt_max_e_avg']:.4f}"
    )
    return "\n".join(lines)
