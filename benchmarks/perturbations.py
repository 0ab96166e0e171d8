"""Evaluator sanity report: a score against itself and against controlled perturbations.

Run: ``.venv/bin/python benchmarks/perturbations.py PATH/TO/xml_score.musicxml``
Expected: zero for the identical score; one note's worth of missing (deleted note) or pitch
error (transposed note); rhythm-correction cost 1 for all values halved; cost 2 for one
measure shifted by a 16th (into the shifted measure and out of it).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from perf2score.evaluate.muster import evaluate_scores
from perf2score.score import ScoreNotes, read_score


def perturbations(gt: ScoreNotes, measure: int = 20) -> dict[str, ScoreNotes]:
    notes = gt.notes
    middle = len(notes) // 2
    transposed = notes.copy()
    transposed["pitch"][middle] += 1
    shifted = notes.copy()
    start, stop = gt.measure_starts[measure], gt.measure_starts[measure + 1]
    inside = (shifted["onset_ticks"] >= start) & (shifted["onset_ticks"] < stop)
    for field in ("onset_ticks", "offset_ticks"):
        shifted[field][inside] += gt.ticks_per_quarter // 4
    shifted = shifted[np.lexsort((shifted["pitch"], shifted["onset_ticks"]))]
    return {
        "identical": gt,
        "one deleted note": replace(gt, notes=np.delete(notes, middle)),
        "one transposed note (+1)": replace(gt, notes=transposed),
        # the same ticks read at twice the resolution: every value exactly halved
        "all values halved": replace(gt, ticks_per_quarter=2 * gt.ticks_per_quarter),
        f"measure {measure + 1} a 16th late ({int(inside.sum())} notes)": replace(
            gt, notes=shifted
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("score", help="a ground-truth MusicXML score")
    args = parser.parse_args()
    gt = read_score(args.score)
    print(f"{args.score}: {len(gt)} notes")
    for label, est in perturbations(gt).items():
        r = evaluate_scores(gt, est)
        print(
            f"{label:34s} pitch {r.pitch_er:.3f}  missing {r.missing_rate:.3f}"
            f"  extra {r.extra_rate:.3f}  onset {r.onset_er:.3f} (cost {r.rhythm_correction_cost})"
            f"  offset {r.offset_er:.3f}  E_avg {r.e_avg:.3f}"
        )


if __name__ == "__main__":
    main()
