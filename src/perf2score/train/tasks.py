"""The training tasks by name: ``perf-lm`` (masked-note modelling), ``score-lm`` (next-note
modelling), ``align`` (fine-tuning the adapter between the two pre-trained LMs) and
``meter`` (the downbeat/beat head on the frozen performance LM) and ``voices`` (the voice
pass, on ground-truth scores)."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import torch

from perf2score.errors import Perf2ScoreError
from perf2score.models.adapter import AlignedModel
from perf2score.models.config import LMConfig
from perf2score.models.io import (
    load_aligned_weights,
    load_model,
    load_performance,
    save_aligned,
    save_model,
)
from perf2score.models.lm import NoteLM
from perf2score.models.losses import stream_losses, tuplet_class_weights
from perf2score.tokens.spec import IGNORE_INDEX
from perf2score.train.config import RunConfig
from perf2score.train.datasets import AlignData, PerformanceLMData, ScoreLMData
from perf2score.train.loop import Task, lm_forward

KINDS = {
    "perf-lm": "performance",
    "score-lm": "score",
    "align": "align",
    "meter": "meter",
    "voices": "voices",
}


def own_predictions(model, batch: dict, share: float) -> dict[str, torch.Tensor]:
    """Score-LM inputs (B, T) per stream with, for a random ``share`` of the notes whose
    previous note is kept, that previous note's tokens replaced by the model's own
    teacher-forced argmax predictions (scheduled sampling; one pass without gradients).
    The note's own pitch and the first note's BOS stay."""
    with torch.no_grad():
        logits = model(batch["performance"], batch["inputs"], padding=batch["padding"])
    inputs = {name: ids.clone() for name, ids in batch["inputs"].items()}
    pitch_ids = batch["inputs"]["pitch"]
    chosen = torch.rand(pitch_ids.shape, device=pitch_ids.device) < share  # (B, T)
    chosen[:, 0] = False
    for name, ids in inputs.items():
        if name == "pitch" or name not in logits or name not in batch["targets"]:
            continue
        kept = batch["targets"][name][:, :-1] != IGNORE_INDEX  # (B, T - 1): note t kept
        predicted = logits[name][:, :-1].argmax(-1)
        swap = chosen[:, 1:] & kept
        ids[:, 1:] = torch.where(swap, predicted, ids[:, 1:])
    return inputs


def aligned_forward(
    model,
    batch: dict,
    class_weights: dict[str, torch.Tensor] | None = None,
    change_weight: float = 1.0,
    sampled_share: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss and logits of an ``AlignedModel`` on a batch of aligned windows
    (``class_weights``, ``change_weight``: loss weights, see ``stream_losses``; while
    training, ``sampled_share`` of the notes read the model's own predictions of the note
    before, ``own_predictions``)."""
    inputs = batch["inputs"]
    if sampled_share > 0 and model.training:
        inputs = own_predictions(model, batch, sampled_share)
    logits = model(batch["performance"], inputs, padding=batch["padding"])
    loss, _ = stream_losses(logits, batch["targets"], class_weights, change_weight)
    return loss, logits


def build_aligned(config: RunConfig) -> AlignedModel:
    """Both LMs (pre-trained, or fresh in ``scratch`` mode) joined by new adapters."""
    folders = {"performance": Path(config.base.performance), "score": Path(config.base.score)}
    for name, folder in folders.items():
        if not (folder / "config.json").is_file():
            raise Perf2ScoreError(f"[base] {name} = {folder}: no pre-trained LM there")
    if config.adapter.mode == "scratch":
        lms = [NoteLM(LMConfig.from_json(f / "config.json")) for f in folders.values()]
    else:
        lms = [load_model(f).train() for f in folders.values()]
    model = AlignedModel(*lms, config.adapter)
    if config.base.adapter:
        start_from(model, config.base.adapter)
    return model


def start_from(model: AlignedModel, folder: str | os.PathLike) -> None:
    """Load the trained weights of the aligned-model ``folder`` into ``model`` (a run that
    continues it); ``model``'s parameters the folder lacks keep their initial values, and
    any tensor of the folder's that ``model`` has not (another architecture) is an error."""
    if not (Path(folder) / "adapter.safetensors").is_file():
        raise Perf2ScoreError(f"[base] adapter = {folder}: no aligned model there")
    load_aligned_weights(model, folder, missing_ok=True)


def build_task(name: str, config: RunConfig) -> Task:
    """The ``Task`` for ``name`` (one of ``KINDS``) with a freshly initialised model."""
    if name not in KINDS:
        raise Perf2ScoreError(f"unknown task {name!r} (known: {', '.join(KINDS)})")
    torch.manual_seed(config.train.seed)  # the same initial weights for the same seed
    if name == "voices":
        from perf2score.models.voice_head import (
            VoiceModel,
            load_voice_weights,
            save_voices,
            voice_forward,
        )
        from perf2score.train.voice_data import VoiceData

        return Task(
            name,
            VoiceModel(config.voices),
            VoiceData(config, "train"),
            VoiceData(config, "validation"),
            config,
            voice_forward,
            save_voices,
            load_voice_weights,
        )
    if name == "meter":
        from perf2score.models.meter_head import (
            MeterModel,
            load_meter_weights,
            meter_forward,
            save_meter,
        )

        performance = config.base.performance
        meter = MeterModel(load_performance(performance), config.meter)
        if config.base.head:
            from perf2score.models.meter_head import start_head_from

            start_head_from(meter, config.base.head)
        return Task(
            name,
            meter,
            AlignData(config, "train"),
            AlignData(config, "validation"),
            config,
            meter_forward,
            lambda model, folder: save_meter(model, folder, performance),
            load_meter_weights,
        )
    if name == "align":
        from perf2score.train.validation import decoded_metrics, validation_excerpts

        base = {"performance": config.base.performance, "score": config.base.score}
        count = config.train.decoded_excerpts
        excerpts = validation_excerpts(config.data.prepared, count) if count else []
        decoding = config.decode
        return Task(
            name,
            build_aligned(config),
            AlignData(config, "train"),
            AlignData(config, "validation"),
            config,
            partial(
                aligned_forward,
                class_weights=tuplet_class_weights(config.train.tuplet_weight),
                change_weight=config.train.change_weight,
                sampled_share=config.train.sampled_share,
            ),
            lambda model, folder: save_aligned(model, folder, base, decoding=decoding),
            load_aligned_weights,
            (lambda model: decoded_metrics(model, excerpts, decoding)) if excerpts else None,
        )
    data_class = PerformanceLMData if name == "perf-lm" else ScoreLMData
    train, validation = data_class(config, "train"), data_class(config, "validation")
    model = NoteLM(config.model)
    if config.base.lm:
        start_lm_from(model, config.base.lm)
    return Task(name, model, train, validation, config, lm_forward, save_model)


def start_lm_from(model: NoteLM, folder: str | os.PathLike) -> None:
    """Copy the weights of the LM saved in ``folder`` into ``model`` (pre-training
    continued with a new schedule); the two architectures must agree but for dropout."""
    start = load_model(folder)
    mine, theirs = model.config.to_dict(), start.config.to_dict()
    differ = sorted(k for k in mine if k != "dropout" and mine[k] != theirs.get(k))
    if differ:
        details = ", ".join(f"{k} {theirs.get(k)!r} there, {mine[k]!r} here" for k in differ)
        raise Perf2ScoreError(f"[base] lm = {folder}: another architecture ({details})")
    model.load_state_dict(start.state_dict())
