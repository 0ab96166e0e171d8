"""How well the played repeats are found (``perf2score.score.repeats.find_repeats``).

    .venv/bin/python benchmarks/repeat_detection.py --data .cache/prepared --split train

The prepared targets name every performed note's score note with its pass through the
score's repeats (``n12-1``, ``n12-2``: ``data.targets``), so the notes played on a second
pass are known. Per split it counts the performances with a played repeat found (true
positives), a repeat found where none was played (false positives: music written out twice
note for note, which the performance cannot tell apart), and missed; and the notes that the
found second passes take out of the score: right (a second pass), wrong (music the score
writes out) and missed (second-pass notes left in). ``--list`` prints each performance with
a repeat played or found.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from perf2score.data.cache import load_index, load_prepared
from perf2score.score.repeats import find_repeats


def second_pass(prepared) -> np.ndarray:
    """(N,) whether each performed note was played on a second pass through a repeat."""
    index = prepared.score_index
    out = np.zeros(len(index), dtype=bool)
    aligned = index >= 0
    ids = prepared.score["id"][index[aligned]]
    out[aligned] = np.array([not str(i).endswith("-1") for i in ids], dtype=bool)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=".cache/prepared", help="prepared cache")
    parser.add_argument("--split", default="train", choices=["train", "validation", "test"])
    parser.add_argument("--list", action="store_true", help="one line per repeat played or found")
    args = parser.parse_args()
    counts = dict.fromkeys(("tp", "fp", "fn", "tn", "right", "wrong", "missed"), 0)
    start = time.perf_counter()
    for row in load_index(args.data, args.split, required=True):
        prepared = load_prepared(args.data, row["perf_id"])
        truth = second_pass(prepared)
        onsets = prepared.notes["onset_sec"]
        found = find_repeats(onsets, prepared.notes["pitch"])
        taken = np.zeros(len(onsets), dtype=bool)
        for repeat in found:
            taken |= (onsets >= repeat.second) & (onsets < repeat.second_end)
        played = bool(truth.any())
        key = ("tp" if played else "fp") if found else ("fn" if played else "tn")
        counts[key] += 1
        counts["right"] += int((taken & truth).sum())
        counts["wrong"] += int((taken & ~truth).sum())
        counts["missed"] += int((~taken & truth).sum())
        if args.list and (played or found):
            spans = ", ".join(f"{r.start:.0f}-{r.second:.0f}-{r.second_end:.0f} s" for r in found)
            print(
                f"{key} {row['perf_id']}: second pass {truth.sum()} notes, taken out "
                f"{taken.sum()} ({(taken & truth).sum()} right) [{spans}]"
            )
    print(
        f"{args.split}: performances with a repeat found / played: {counts['tp']} right, "
        f"{counts['fp']} where none was played, {counts['fn']} missed, {counts['tn']} neither; "
        f"notes taken out: {counts['right']} right, {counts['wrong']} wrong, "
        f"{counts['missed']} second-pass notes left in ({time.perf_counter() - start:.0f} s)"
    )


if __name__ == "__main__":
    main()
