"""The piece's main time signature from a time-signature head (issue 12), against the truth.

A head trained with ``configs/signature.toml`` answers, for each performed note and each of
``SIGNATURE_CLASSES``, whether the note's measure is in that time signature. Here its
log-odds are read in the decoder's windows (``neural.meter.windowed_odds``, the shipped
performance LM's states) over each performance of a split and pooled over the piece three
ways (mean log-odds, summed log probability, a vote of each note's likeliest class); each
pooled choice is compared with the score's main time signature (the one most of its notes
are in). The decoder's own choice scores 72.1 % on validation (README, issue 12).

Run: ``.venv/bin/python benchmarks/signature_head.py ../runs/signature/best [--split validation]``
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from perf2score.data.cache import load_index, load_prepared
from perf2score.midi.reading import Performance
from perf2score.neural.meter import windowed_odds
from perf2score.neural.runtime import load_numpy_aligned, load_numpy_head
from perf2score.shipped import SHIPPED_ADAPTER


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("head", help="a time-signature head's folder (meter.json)")
    parser.add_argument("--data", default=".cache/prepared")
    parser.add_argument("--split", default="validation")
    args = parser.parse_args()
    head = load_numpy_head(args.head)
    network = load_numpy_aligned(SHIPPED_ADAPTER)
    classes = [tuple(int(x) for x in q.split("_")[1:]) for q in head.questions]

    def read(batch: dict[str, np.ndarray], padding: np.ndarray) -> np.ndarray:
        hidden = network.performance.encode(batch, padding)
        return head.answer(np.concatenate(hidden, -1))

    rows = load_index(args.data, args.split, required=True)
    right, confusion = Counter(), Counter()
    for row in rows:
        prepared = load_prepared(args.data, row["perf_id"])
        performance = Performance(prepared.notes, prepared.pedal)
        odds = windowed_odds(read, len(classes), performance, 128, 32)  # (N, Q)
        score = prepared.score
        signatures = zip(score["ts_num"].tolist(), score["ts_den"].tolist(), strict=True)
        truth = Counter(signatures).most_common(1)[0][0]
        choices = {
            "mean log-odds": classes[int(odds.mean(0).argmax())],
            "summed log probability": classes[int((-np.logaddexp(0, -odds)).sum(0).argmax())],
            "vote": classes[Counter(odds.argmax(1).tolist()).most_common(1)[0][0]],
        }
        for name, choice in choices.items():
            right[name] += choice == truth
        confusion[(truth, choices["mean log-odds"])] += 1
    print(f"{args.split}: {len(rows)} performances; main time signature right:")
    for name in ("mean log-odds", "summed log probability", "vote"):
        print(f"  {name:24s} {right[name] / len(rows):.1%}")
    print("truth -> chosen (mean log-odds):")
    for (truth, chosen), count in confusion.most_common():
        print(f"  {truth[0]}/{truth[1]} -> {chosen[0]}/{chosen[1]}: {count}")


if __name__ == "__main__":
    main()
