"""How well the played inter-onset ratio alone answers the step head's questions (issue 11).

For each performance of a split, notes are walked in performed order as the step head's
targets walk them (``models.meter_head.step_targets``; aligned, non-grace notes; a note
less than ``--chord`` seconds after the one before counts as a chord note). Where a note
makes a new score onset step and the step before it is known, the truth says whether the
step is the same, longer or shorter; the played ratio of the two inter-onset intervals
answers "same" when |log ratio| is below a threshold and "longer" when the ratio is above
1. Prints the share of steps that are the same and both accuracies per threshold.

Run: ``.venv/bin/python benchmarks/played_step_ratio.py [--split validation]``
"""

from __future__ import annotations

import argparse

import numpy as np

from perf2score.data.cache import load_index, load_prepared


def step_pairs(prepared, chord: float) -> list[tuple[float, bool, bool]]:
    """(log played ratio, same step, longer step) for each comparable pair of steps."""
    index, seconds = prepared.score_index, prepared.notes["onset_sec"]
    rows = np.maximum(index, 0)
    onsets = prepared.score["onset_ticks"][rows]
    usable = (index >= 0) & ~prepared.score["is_grace"][rows]
    pairs = []
    last_onset = last_second = None
    last_step = last_gap = 0.0
    for i in np.flatnonzero(usable):
        if last_onset is not None:
            step, gap = onsets[i] - last_onset, seconds[i] - last_second
            if step > 0 and gap > chord:
                if last_step > 0 and last_gap > 0:
                    pairs.append(
                        (float(np.log(gap / last_gap)), step == last_step, step > last_step)
                    )
                last_step, last_gap = step, gap
        last_onset, last_second = onsets[i], seconds[i]
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=".cache/prepared")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--chord", type=float, default=0.035, help="seconds")
    args = parser.parse_args()
    pairs = []
    for row in load_index(args.data, args.split, required=True):
        pairs += step_pairs(load_prepared(args.data, row["perf_id"]), args.chord)
    table = np.array(pairs, dtype=np.float64)
    ratio, same, longer = table[:, 0], table[:, 1] > 0, table[:, 2] > 0
    print(f"{args.split}: {len(table)} steps, {same.mean():.1%} the same as the step before")
    differ = ~same
    direction = ((ratio[differ] > 0) == longer[differ]).mean()
    print(f"longer/shorter right from the played ratio where the step changes: {direction:.1%}")
    for threshold in (0.15, 0.25, 0.35, 0.45):
        right = ((np.abs(ratio) < threshold) == same).mean()
        print(f"  'same' when |log ratio| < {threshold}: right for {right:.1%}")


if __name__ == "__main__":
    main()
