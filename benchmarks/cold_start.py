"""Is a window's cold start what makes piece openings decode worse?

    .venv/bin/python benchmarks/cold_start.py [--data .cache/prepared] [--every 4]

For every ``every``-th validation performance of at least 400 notes, notes 100–228 are decoded
twice with the shipped model: in their piece, and as the first notes of the performance cut
at note 100 (a cold start: no earlier notes, no running tempo). For each, the share of
consecutive onset intervals (notes not dropped, distinct ground-truth onsets) whose ratio to
the ground truth's differs from the passage's median ratio by 0.05 (log2) or more: intervals
out of proportion, whatever the value scale.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from perf2score.data.cache import load_index, load_prepared
from perf2score.midi import Performance
from perf2score.neural.converter import load_neural_model
from perf2score.neural.decode import decode_windows, measure_grid

LOW, HIGH = 100, 228  # the passage compared (note indices)


def out_of_proportion(attributes, drop, prepared, shift: int = 0) -> float:
    """Share of the passage's onset intervals out of proportion (see the module text)."""
    targets = prepared.targets()
    decoded = measure_grid(attributes, drop)[0].astype(float)[LOW - shift : HIGH - shift]
    truth = targets["onset_ticks"][LOW:HIGH] / prepared.ticks_per_quarter
    kept = ~drop[LOW - shift : HIGH - shift] & ~prepared.drop[LOW:HIGH]
    kept &= ~targets["is_grace"][LOW:HIGH]
    rows = np.flatnonzero(kept)
    d_truth, d_decoded = np.diff(truth[rows]), np.diff(decoded[rows])
    use = d_truth > 0
    ratio = np.log2(np.maximum(d_decoded[use], 1e-9) / d_truth[use])
    forward = d_decoded[use] > 0
    median = np.median(ratio[forward]) if forward.any() else 0.0
    return float(np.mean(~(np.abs(ratio - median) < 0.05)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=".cache/prepared")
    parser.add_argument("--every", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_neural_model()
    in_piece, cold = [], []
    for row in load_index(args.data, "validation", required=True)[:: args.every]:
        prepared = load_prepared(args.data, row["perf_id"])
        if len(prepared.notes) < 400:
            continue
        whole = Performance(prepared.notes, prepared.pedal, source=row["perf_id"])
        cut = Performance(prepared.notes[LOW:].copy(), prepared.pedal, source="cut")
        in_piece.append(
            out_of_proportion(*decode_windows(model.network, whole, model.decoding), prepared)
        )
        cold.append(
            out_of_proportion(*decode_windows(model.network, cut, model.decoding), prepared, LOW)
        )
        print(f"{row['perf_id']}: in the piece {in_piece[-1]:.2f}, cold start {cold[-1]:.2f}")
    print(
        f"{len(cold)} performances: in the piece {np.mean(in_piece):.3f},"
        f" cold start {np.mean(cold):.3f}"
    )


if __name__ == "__main__":
    main()
