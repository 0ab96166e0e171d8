"""The training tasks by name: ``perf-lm`` (masked-note modelling) and ``score-lm``
(next-note modelling)."""

from __future__ import annotations

from perf2score.errors import Perf2ScoreError
from perf2score.models.io import save_model
from perf2score.models.lm import NoteLM
from perf2score.train.config import RunConfig
from perf2score.train.datasets import PerformanceLMData, ScoreLMData
from perf2score.train.loop import Task, lm_forward

KINDS = {"perf-lm": "performance", "score-lm": "score"}


def build_task(name: str, config: RunConfig) -> Task:
    """The ``Task`` for ``name`` (one of ``KINDS``) with a freshly initialised model."""
    if name not in KINDS:
        raise Perf2ScoreError(f"unknown task {name!r} (known: {', '.join(KINDS)})")
    data_class = PerformanceLMData if name == "perf-lm" else ScoreLMData
    train, validation = data_class(config, "train"), data_class(config, "validation")
    return Task(name, NoteLM(config.model), train, validation, config, lm_forward, save_model)
