"""Tiny training tasks on a generated score (shared by test_train and ddp_worker)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from builders import build_part, random_score, write_musicxml

from perf2score.data.targets import score_targets
from perf2score.midi.reading import Performance
from perf2score.models import LMConfig, NoteLM, save_model
from perf2score.models.adapter import AdapterConfig, AlignedModel
from perf2score.tokens import encode_performance
from perf2score.train.augment import render_performance
from perf2score.train.config import RunConfig, TrainConfig
from perf2score.train.datasets import (
    align_example,
    collate,
    collate_aligned,
    mask_notes,
    score_example,
)
from perf2score.train.loop import Task, lm_forward

TINY = {"d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64, "dropout": 0.1}


def rendered(n: int, score_seed: int = 3, render_seed: int = 0) -> tuple[Performance, np.ndarray]:
    """(a performance rendered from ``random_score(n, score_seed)``, its score table)."""
    notes = random_score(n, seed=score_seed).notes
    table = np.zeros(len(notes), dtype=[("pitch", "i2"), ("onset_ticks", "i8"),
                                        ("duration_ticks", "i8"), ("is_grace", "?"),
                                        ("measure_start_ticks", "i8")])  # fmt: skip
    table["pitch"], table["onset_ticks"] = notes["pitch"], notes["onset_ticks"]
    table["duration_ticks"] = notes["offset_ticks"] - notes["onset_ticks"]
    table["measure_start_ticks"] = notes["onset_ticks"] // 96 * 96
    return render_performance(np.random.default_rng(render_seed), table, 24), table


def tiny_aligned(folder: Path, config: AdapterConfig) -> tuple[AlignedModel, dict[str, str]]:
    """A tiny untrained aligned model (torch seed 0) whose base LMs are saved in
    ``folder``/performance and ``folder``/score; returns it and those folders (``base`` of
    ``save_aligned``)."""
    torch.manual_seed(0)
    perf = NoteLM(LMConfig(kind="performance", **TINY))
    score = NoteLM(LMConfig(kind="score", **TINY))
    save_model(perf, folder / "performance")
    save_model(score, folder / "score")
    base = {"performance": str(folder / "performance"), "score": str(folder / "score")}
    return AlignedModel(perf, score, config), base


def generated_table(folder: Path) -> tuple[np.ndarray, int]:
    """(score rows without tied continuations, ticks per quarter) of the builders' piece."""
    table, tpq, _ = score_targets(write_musicxml(build_part(), folder / "s.musicxml"))
    return table[~table["tie_stop"]], tpq


class FixedData:
    """A fixed window; performance masks drawn from the step's generator (exact resume)."""

    def __init__(self, kind: str, table: np.ndarray, tpq: int):
        self.kind = kind
        if kind == "performance":
            rng = np.random.default_rng(1)
            self.tokens = encode_performance(render_performance(rng, table, tpq))
        else:
            self.example = score_example(table, tpq)

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict:
        if self.kind == "performance":
            examples = [mask_notes(rng, self.tokens, 0.3) for _ in range(batch_size)]
        else:
            examples = [self.example] * batch_size
        return collate(examples, 40)

    def validation(self, batch_size: int) -> list[dict]:
        return [self.sample(np.random.default_rng(0), batch_size)]


def tiny_task(kind: str, table: tuple[np.ndarray, int], steps: int, seed: int = 0) -> Task:
    torch.manual_seed(seed)
    config = RunConfig(
        model=LMConfig(kind=kind, **TINY),
        train=TrainConfig(
            steps=steps,
            batch_size=4,
            lr=3e-3,
            warmup=5,
            eval_every=10,
            log_every=5,
            precision="fp32",  # bf16 (auto, on CPUs that have it) varies with load
        ),
    )
    data = FixedData(kind, *table)
    return Task(kind, NoteLM(config.model), data, data, config, lm_forward, save_model)


class FixedAlignedData:
    """One rendered performance of the generated score, note-aligned to its rows."""

    def __init__(self, table: np.ndarray, tpq: int):
        performance = render_performance(np.random.default_rng(1), table, tpq)
        rows = table[np.lexsort((table["pitch"], table["onset_ticks"]))]
        drop = np.zeros(len(rows), bool)
        self.example = align_example(performance, _pair(performance.notes, rows), drop, tpq)

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict:
        return collate_aligned([self.example] * batch_size, 40)

    def validation(self, batch_size: int) -> list[dict]:
        return [self.sample(np.random.default_rng(0), batch_size)]


def _pair(notes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Score rows in the notes' order: the k-th note of a pitch gets that pitch's k-th row."""
    out = np.zeros(len(notes), dtype=rows.dtype)
    for pitch in np.unique(notes["pitch"]):
        out[np.flatnonzero(notes["pitch"] == pitch)] = rows[rows["pitch"] == pitch]
    return out
