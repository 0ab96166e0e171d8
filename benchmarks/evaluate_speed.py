"""Time the evaluator (MUSTER-style rates, MV2H) on generated scores of 1k/5k/20k notes.

The estimate is the ground truth with realistic damage: 3% of notes deleted, 3% inserted,
2% transposed, 10% displaced by a 16th, every value halved in the second half. A real
ASAP pair is timed too when ``--gt`` and ``--est`` are given.

Run: ``.venv/bin/python benchmarks/evaluate_speed.py [--sizes 1000 5000] [--gt A --est B]``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from perf2score.evaluate.muster import evaluate_scores
from perf2score.evaluate.mv2h import evaluate_mv2h
from perf2score.score.attributes import SCORE_NOTE_DTYPE
from perf2score.score.reading import ScoreNotes, read_score

TPQ = 24


def generated(n: int, seed: int = 0) -> ScoreNotes:
    rng = np.random.default_rng(seed)
    notes = np.zeros(n, dtype=SCORE_NOTE_DTYPE)
    onset, k = 0, 0
    while k < n:
        size = min(int(rng.integers(1, 4)), n - k)
        value = int(rng.choice([6, 8, 12, 24]))
        for pitch in rng.choice(np.arange(36, 96), size=size, replace=False):
            low = int(pitch < 60)
            notes[k] = (
                pitch,
                onset,
                onset + value,
                1 + 4 * low,
                low,
                1 + low,
                False,
                "C",
                0,
                4,
                0,
                str(k),
            )
            k += 1
        onset += value
    notes = notes[np.lexsort((notes["pitch"], notes["onset_ticks"]))]
    measures = np.arange(0, onset + 4 * TPQ, 4 * TPQ, dtype=np.int64)
    return ScoreNotes(notes, TPQ, measures, [(0, 4, 4)], [(0, 1, "major")])


def damaged(score: ScoreNotes, seed: int = 1) -> ScoreNotes:
    rng = np.random.default_rng(seed)
    notes = score.notes.copy()
    n = len(notes)
    notes = notes[rng.random(n) > 0.03]
    extra = notes[rng.choice(len(notes), int(0.03 * n))].copy()
    extra["pitch"] += rng.integers(-3, 4, len(extra))
    notes = np.concatenate([notes, extra])
    moved = rng.random(len(notes)) < 0.1
    notes["onset_ticks"][moved] += 6
    notes["offset_ticks"][moved] += 6
    notes["pitch"][rng.random(len(notes)) < 0.02] += 1
    half = notes["onset_ticks"] > np.median(notes["onset_ticks"])
    pivot = int(np.median(notes["onset_ticks"]))
    for field in ("onset_ticks", "offset_ticks"):
        notes[field][half] = pivot + (notes[field][half] - pivot) // 2
    notes = notes[np.lexsort((notes["pitch"], notes["onset_ticks"]))]
    return replace(score, notes=notes)


def timed(gt: ScoreNotes, est: ScoreNotes, label: str) -> None:
    start = time.perf_counter()
    muster = evaluate_scores(gt, est)
    t_muster = time.perf_counter() - start
    start = time.perf_counter()
    mv2h = evaluate_mv2h(gt, est)
    t_mv2h = time.perf_counter() - start
    print(
        f"{label:>28s}: {len(gt):6d} notes  MUSTER {t_muster:6.2f} s  MV2H {t_mv2h:6.2f} s"
        f"  total {t_muster + t_mv2h:6.2f} s  (E_avg {muster.e_avg:.2f}, MV2H {mv2h.mv2h:.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--gt")
    parser.add_argument("--est")
    args = parser.parse_args()
    for size in args.sizes:
        gt = generated(size)
        timed(gt, damaged(gt), f"generated {size}")
    if args.gt and args.est:
        timed(read_score(args.gt), read_score(args.est), "given pair")


if __name__ == "__main__":
    main()
