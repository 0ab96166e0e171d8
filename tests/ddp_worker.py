"""Run by test_train under torchrun (2 CPU processes, gloo): a tiny run, then each rank
writes the sum of its weights so the test can check that the replicas stayed identical."""

import os
import sys
from pathlib import Path

import torch.distributed as dist
from train_helpers import generated_table, tiny_task

from perf2score.train.loop import train

folder = Path(sys.argv[1])
rank = int(os.environ["RANK"])
(folder / f"score{rank}").mkdir()
table = generated_table(folder / f"score{rank}")
task = tiny_task("performance", table, steps=6)
task.config.train.eval_every = 3
train(task, folder / "run", progress=False)
total = sum(float(p.detach().double().sum()) for p in task.model.parameters())
(folder / f"rank{rank}.txt").write_text(repr(total))
dist.destroy_process_group()
