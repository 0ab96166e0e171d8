"""How much of the voice error staves and voices each cost: MUSTER voice error of converted
scores under three substitutions, mean over the performances of a split.

- ``as written``: the converted scores (``perf2score evaluate``'s ``voice_er``);
- ``right staves, one voice each``: every matched note of a conversion takes, as its voice,
  the ground truth's staff (a diagnostic that reads the answers: what perfect staves would
  give with one voice per staff);
- ``ground truth, one voice per staff``: the ground truth against itself with its voices
  folded to one per staff (what one voice per staff costs with every onset and staff
  right: the floor of the one-voice writing);
- ``ground truth, re-voiced from its own values``: the ground truth against itself with its
  voices rewritten by ``perf2score.neural.voices.separate_voices`` (a note sounding a 16th or
  more past the next onset of its staff gets a voice of its own) from its exact values and
  staves: what that rule would give with every value right.

    python benchmarks/voice_floors.py --data .cache/prepared --split validation \\
        --predictions ../runs/shipped-val
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from perf2score.evaluate.alignment import NoteMatching
from perf2score.evaluate.batch import prediction_pairs
from perf2score.evaluate.muster import comparable, voice_errors
from perf2score.neural.voices import separate_voices
from perf2score.parallel import parallel_map
from perf2score.score.attributes import ATTRIBUTE_DTYPE
from perf2score.score.reading import ScoreNotes, read_score


def staff_voices(notes: np.ndarray) -> np.ndarray:
    """(N,) one voice per staff and part, numbered as the reader numbers voices."""
    return notes["part"].astype(np.int32) * 100 + notes["staff"]


def revoiced(gt: ScoreNotes) -> np.ndarray:
    """(N,) the ground truth's voices rewritten by ``separate_voices`` from its own onsets,
    values and staves (overhang: a 16th), numbered apart per part and staff."""
    notes = gt.notes
    attributes = np.zeros(len(notes), dtype=ATTRIBUTE_DTYPE)
    attributes["staff"] = notes["staff"] + 10 * notes["part"]
    attributes["pitch"], attributes["is_grace"] = notes["pitch"], notes["is_grace"]
    attributes["duration_ticks"] = notes["offset_ticks"] - notes["onset_ticks"]
    overhang = max(1, gt.ticks_per_quarter // 4)
    separate_voices(attributes, np.zeros(len(notes), bool), notes["onset_ticks"], overhang)
    return staff_voices(notes) * 10 + attributes["voice"]


def floors(gt: ScoreNotes, est: ScoreNotes) -> tuple[float, float, float, float]:
    """Voice error (percent of matched notes) as written, with the ground truth's staves as
    one voice each, of the ground truth folded to one voice per staff, and of the ground
    truth re-voiced from its own values (``revoiced``)."""
    gt, est, matching = comparable(gt, est)
    written = 100 * voice_errors(gt, est, matching).mean()
    notes = est.notes.copy()
    notes["voice"][matching.est_index] = staff_voices(gt.notes[matching.gt_index])
    right = 100 * voice_errors(gt, replace(est, notes=notes), matching).mean()
    folded = gt.notes.copy()
    folded["voice"] = staff_voices(folded)
    every = np.arange(len(folded))
    itself = NoteMatching(every, every, np.zeros(0, np.int64), np.zeros(0, np.int64))
    one_voice = 100 * voice_errors(gt, replace(gt, notes=folded), itself).mean()
    rule = gt.notes.copy()
    rule["voice"] = revoiced(gt)
    by_rule = 100 * voice_errors(gt, replace(gt, notes=rule), itself).mean()
    return float(written), float(right), float(one_voice), float(by_rule)


def _one(job: tuple[Path, Path]) -> tuple[float, float, float, float]:
    prediction, truth = job
    return floors(read_score(truth), read_score(prediction))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the prepared cache")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--predictions", required=True, help="perf2score predict's folder")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    jobs = [
        (found, truth)
        for _, found, truth in prediction_pairs(args.data, args.split, args.predictions)
        if found is not None
    ]
    rows = list(parallel_map(_one, jobs, args.workers, "voice floors"))
    if not rows:
        raise SystemExit(f"no predictions for the {args.split} split in {args.predictions}")
    means = np.mean(rows, axis=0)
    print(f"{args.split}, {len(rows)} performances, voice error (mean over performances):")
    print(f"  as written                          {means[0]:.2f}")
    print(f"  right staves, one voice each        {means[1]:.2f}")
    print(f"  ground truth, one voice per staff   {means[2]:.2f}")
    print(f"  ground truth, re-voiced from values {means[3]:.2f}")


if __name__ == "__main__":
    main()
