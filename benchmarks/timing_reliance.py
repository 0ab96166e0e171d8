"""How much an aligned model's teacher-forced onset predictions depend on the played timing.

On the fixed validation windows of an align config (``AlignData(...).validation``, the
windows every training run validates on), the model predicts each note's ``position``
token from the true previous notes (teacher forcing), once with the performance's IOI
tokens as they are and once with every IOI token longer than ``--from-bucket`` shifted by
round(N(0, S)) buckets (a bucket is a factor of about 1.14: S = 2.3 is about ±35 % per
interval). Reported: position accuracy over all notes and over the notes whose position
differs from the previous note's (where the rhythm moves on). A model that reads the
timing loses accuracy as S grows.

Run: ``.venv/bin/python benchmarks/timing_reliance.py MODEL_FOLDER [...] [--config
configs/align-mix-lora-equal.toml] [--noise 0 2.3 7]``
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from perf2score.models.io import load_aligned
from perf2score.tokens.spec import FIRST_VALUE, STREAMS
from perf2score.train.config import load_run_config
from perf2score.train.datasets import AlignData


def shifted(ioi: torch.Tensor, noise: float, lowest: int, rng: np.random.Generator):
    """IOI ids (B, T) with each id from ``lowest`` on moved by round(N(0, noise)) buckets,
    kept within [lowest, the last bucket]."""
    ids = ioi.numpy().copy()
    moved = ids >= lowest
    if noise > 0:
        step = np.rint(rng.normal(0.0, noise, ids.shape)).astype(np.int64)
        ids = np.where(moved, np.clip(ids + step, lowest, STREAMS["ioi"].size - 1), ids)
    return torch.from_numpy(ids)


def position_accuracy(model, batches: list[dict], noise: float, lowest: int) -> tuple:
    """(accuracy over all scored notes, over the notes whose position changes, their count)."""
    rng = np.random.default_rng(0)
    right = total = right_moved = total_moved = 0
    for batch in batches:
        perf = dict(batch["performance"])
        perf["ioi"] = shifted(perf["ioi"], noise, lowest, rng)
        with torch.no_grad():
            logits = model(perf, batch["inputs"], padding=batch["padding"])
        target = batch["targets"]["position"]
        scored = target >= FIRST_VALUE
        hit = logits["position"].argmax(-1) == target
        before = torch.cat([torch.full_like(target[:, :1], -1), target[:, :-1]], 1)
        moved = scored & (target != before)
        right += int((hit & scored).sum())
        total += int(scored.sum())
        right_moved += int((hit & moved).sum())
        total_moved += int(moved.sum())
    return right / max(total, 1), right_moved / max(total_moved, 1), total_moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="aligned-model folders")
    parser.add_argument("--config", default="configs/align-mix-lora-equal.toml")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 2.3, 7.0])
    parser.add_argument(
        "--from-bucket", type=int, default=40, help="IOI buckets below it (chords) stay"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = load_run_config(args.config, "align")
    batches = AlignData(config, "validation").validation(16)
    lowest = FIRST_VALUE + args.from_bucket
    for folder in args.models:
        model = load_aligned(folder).eval()
        for noise in args.noise:
            every, moved, count = position_accuracy(model, batches, noise, lowest)
            print(
                f"{folder}  noise {noise:g} buckets: position right {every:.4f},"
                f" where it moves {moved:.4f} ({count} notes)"
            )


if __name__ == "__main__":
    main()
