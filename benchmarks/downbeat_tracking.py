"""Downbeats tracked in performance time (``perf2score.neural.downbeats``) against the ASAP
annotations, without any score: the meter head's evidence on the performance LM (the
shipped weights), tracked in bars of the ground-truth beats per bar (or of the decoded
time signature, read from a folder of predictions), scored with mir_eval (±70 ms).

    .venv/bin/python benchmarks/downbeat_tracking.py --data .cache/prepared [--every 8] \\
        [--decoded PREDICTIONS]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import mir_eval
import numpy as np

from perf2score.data.cache import load_index, load_prepared, load_sources
from perf2score.evaluate.beats import read_annotations
from perf2score.midi import Performance
from perf2score.neural.decode import kept_from, windows
from perf2score.neural.downbeats import track_downbeats
from perf2score.neural.runtime import NumpyAligned, load_numpy_aligned
from perf2score.score.meter import meter_levels
from perf2score.shipped import SHIPPED_ADAPTER, SHIPPED_METER
from perf2score.tokens.performance import encode_performance
from perf2score.tokens.spec import PAD

WINDOW, OVERLAP = 128, 32


def head_odds(model: NumpyAligned, performance: Performance) -> np.ndarray:
    """(N, 2) the meter head's log-odds, each note from the window that keeps it."""
    n, tokens = len(performance.notes), encode_performance(performance)
    spans = windows(n, WINDOW, OVERLAP)
    batch = {k: np.full((len(spans), WINDOW), PAD, np.int64) for k in tokens}
    padding = np.ones((len(spans), WINDOW), bool)
    for b, (s, e) in enumerate(spans):
        for k, ids in tokens.items():
            batch[k][b, : e - s] = ids[s:e]
        padding[b, : e - s] = False
    odds = model.session(batch, padding, want_odds=True).odds
    out = np.zeros((n, 2), np.float32)
    for b, (s, e) in enumerate(spans):
        keep = kept_from(s, OVERLAP)
        out[keep:e] = odds[b, keep - s : e - s]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="validation")
    parser.add_argument("--every", type=int, default=1, help="every n-th performance")
    parser.add_argument("--decoded", help="predictions folder: use their time signature")
    args = parser.parse_args()
    model = load_numpy_aligned(SHIPPED_ADAPTER, SHIPPED_METER)
    asap = Path(load_sources(args.data)["asap"])
    scores = []
    for row in load_index(args.data, args.split, required=True)[:: args.every]:
        prepared = load_prepared(args.data, row["perf_id"])
        performance = Performance(prepared.notes, prepared.pedal)
        _, downbeats = read_annotations(asap / f"{row['perf_id']}_annotations.txt")
        num, den = int(prepared.score["ts_num"][0]), int(prepared.score["ts_den"][0])
        if args.decoded:
            text = (Path(args.decoded) / f"{row['perf_id']}.musicxml").read_text()
            num = int(re.search(r"<beats>(\d+)</beats>", text).group(1))
            den = int(re.search(r"<beat-type>(\d+)</beat-type>", text).group(1))
        odds = head_odds(model, performance)
        found, _ = track_downbeats(prepared.notes["onset_sec"], odds, meter_levels(num, den)[0])
        scores.append(mir_eval.beat.f_measure(downbeats, found))
    print(f"{len(scores)} performances: downbeat F {np.mean(scores):.3f}")


if __name__ == "__main__":
    main()
