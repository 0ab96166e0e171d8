"""How far the performed speed predicts the notated tempo (the value scale of issue 12).

    .venv/bin/python benchmarks/notated_tempo.py --data .cache/prepared [--out tempo.json]

For every performance of the prepared splits: the notated tempo (score quarters per minute:
the median over consecutive score onsets of score interval / performed interval) and the
performed speed (the median performed interval between onsets, seconds). A least-squares line
log2 tempo = a + b log2 interval is fitted on the training split; for validation and test it
prints the spread of the residuals and the share of performances whose notated tempo the line
predicts within a factor √2 (the evaluator's ``scale_ok`` tolerance): an upper bound of what a
scale decision from the tempo alone, with a perfect decoder otherwise, could reach. The same
share for a constant (the training median) is printed beside it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from perf2score.data.cache import load_index, load_prepared

SPLITS = ("train", "validation", "test")
MIN_GAP_SECONDS = 0.02  # performed intervals shorter than this are chord spreads


def tempo_and_speed(cache: str, perf_id: str) -> tuple[float, float]:
    """(notated quarters per minute, median performed inter-onset interval in seconds)."""
    prepared = load_prepared(cache, perf_id)
    targets = prepared.targets()
    kept = ~prepared.drop & ~targets["is_grace"]
    seconds = prepared.notes["onset_sec"][kept]
    quarters = targets["onset_ticks"][kept] / prepared.ticks_per_quarter
    onsets, first = np.unique(quarters, return_inverse=True)  # score onsets (C,)
    played = np.full(len(onsets), np.inf)
    np.minimum.at(played, first, seconds)  # each score onset's earliest performed time
    d_score, d_played = np.diff(onsets), np.diff(played)
    usable = (d_score > 0) & (d_played > MIN_GAP_SECONDS)
    tempo = 60.0 * float(np.median(d_score[usable] / d_played[usable]))
    speed = float(np.median(d_played[d_played > MIN_GAP_SECONDS]))
    return tempo, speed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=".cache/prepared", help="prepared cache")
    parser.add_argument("--out", help="JSON file for the per-performance figures")
    args = parser.parse_args()
    rows: dict[str, list[dict]] = {}
    for split in SPLITS:
        rows[split] = []
        for row in load_index(args.data, split, required=True):
            tempo, speed = tempo_and_speed(args.data, row["perf_id"])
            rows[split].append(
                {"perf_id": row["perf_id"], "piece": row["piece"], "qpm": tempo, "ioi_s": speed}
            )

    def xy(split: str) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.log2([r["ioi_s"] for r in rows[split]]),
            np.log2([r["qpm"] for r in rows[split]]),
        )

    x, y = xy("train")
    (a, b), *_ = np.linalg.lstsq(np.c_[np.ones_like(x), x], y, rcond=None)
    median = float(np.median(y))
    print(f"train ({len(x)}): notated tempo median {2**median:.0f} qpm, spread {y.std():.2f} log2")
    print(f"fit: log2 qpm = {a:.2f} + {b:.2f} log2 interval_s")
    print("| split | performances | residual spread (log2) | within √2: fit | within √2: median |")
    print("|---|---|---|---|---|")
    for split in SPLITS:
        x, y = xy(split)
        residual = y - (a + b * x)
        print(
            f"| {split} | {len(x)} | {residual.std():.2f} | {np.mean(np.abs(residual) < 0.5):.2f}"
            f" | {np.mean(np.abs(y - median) < 0.5):.2f} |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps({"fit": [a, b], "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
