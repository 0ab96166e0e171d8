"""The meter head: per performed note, is it on a downbeat, is it on a beat?

A small classifier over the frozen performance LM's hidden states (every layer, the
embedding output included, concatenated and layer-normed; one hidden layer). It reads only
the performance, so its evidence does not inherit the decoder's slips; the piece-level
barring (``perf2score.score.barring``) turns it into one time signature and a tracked bar
phase. Trained by ``perf2score train meter`` on the ASAP training performances (targets: the
note's notated position is 0 in its measure / a multiple of its time signature's beat).

Saved like the adapter: ``meter.safetensors`` (the head only) + ``meter.json`` (format,
token-spec fingerprint, head config, the performance LM's config and its folder, relative).
Shapes: B batch, T notes, C the LM width, L its layers + 1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import nn

from perf2score.errors import Perf2ScoreError
from perf2score.files import atomic_write
from perf2score.models.config import (
    HEAD_QUESTIONS,
    METER_FORMAT,
    REST_TARGET,
    SIGNATURE_CLASSES,
    SIGNATURE_QUESTIONS,
    MeterConfig,
    read_meter_json,
)
from perf2score.models.lm import NoteLM
from perf2score.tokens.score import BACKWARDS
from perf2score.tokens.spec import DENOMINATORS, FIRST_VALUE, IGNORE_INDEX, spec_fingerprint

TUNED_PERFORMANCE = "performance"  # where a head trained with its LM keeps that LM


def tuned_blocks(n_layers: int, config: MeterConfig) -> range | None:
    """The performance LM blocks a head trains: none (a frozen LM: empty), the top
    ``config.tuned_layers``, or every weight (``None``: embeddings included)."""
    if not config.tune_performance:
        return range(0)
    if config.tuned_layers == 0:
        return None
    if config.tuned_layers > n_layers:
        raise ValueError(f"tuned_layers {config.tuned_layers} > the LM's {n_layers} blocks")
    return range(n_layers - config.tuned_layers, n_layers)


def _block(name: str) -> int:
    """The block index of an LM parameter name ``blocks.<i>.…`` (-1 for the others)."""
    parts = name.split(".")
    return int(parts[1]) if parts[0] == "blocks" and parts[1].isdigit() else -1


class MeterModel(nn.Module):
    """The frozen performance LM and the meter head on its hidden states."""

    def __init__(self, performance: NoteLM, config: MeterConfig | None = None):
        super().__init__()
        self.config = config or MeterConfig()
        self.performance = performance
        trained = tuned_blocks(performance.config.n_layers, self.config)
        for name, parameter in performance.named_parameters():
            parameter.requires_grad = trained is None or _block(name) in trained
        width = performance.config.d_model * (performance.config.n_layers + 1)
        self.head = nn.Sequential(
            nn.LayerNorm(width),
            nn.Linear(width, self.config.hidden),
            nn.GELU(),
            nn.Dropout(self.config.dropout),
            nn.Linear(self.config.hidden, 2 * len(self.config.questions)),
        )

    def train(self, mode: bool = True) -> MeterModel:
        super().train(mode)
        if not self.config.tune_performance:
            self.performance.eval()  # frozen: no dropout in the features
        return self

    def pretrained_names(self) -> set[str]:
        """The pre-trained LM's parameter names (``[train] pretrained_lr_scale`` applies)."""
        return {f"performance.{name}" for name, _ in self.performance.named_parameters()}

    def forward(
        self, tokens: dict[str, torch.Tensor], padding: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Logits (B, T, 2) per question of ``config.questions`` for performance tokens
        (B, T)."""
        with torch.set_grad_enabled(self.config.tune_performance and torch.is_grad_enabled()):
            _, hidden = self.performance(tokens, padding=padding)
        out = self.head(torch.cat(hidden, -1))  # (B, T, 2 * questions) from (B, T, C * L)
        questions = self.config.questions
        return {name: out[..., 2 * k : 2 * k + 2] for k, name in enumerate(questions)}

    def odds(self, hidden: list[torch.Tensor]) -> torch.Tensor:
        """(B, T, questions) log-odds of yes from the performance LM's hidden states
        [(B, T, C)] * L (e.g. those of the decoder's encoder pass)."""
        out = self.head(torch.cat(list(hidden), -1))  # (B, T, 2 * questions)
        return out[..., 1::2] - out[..., 0::2]


def meter_targets(
    score_targets: dict[str, torch.Tensor], questions: tuple[str, ...] = HEAD_QUESTIONS
) -> dict[str, torch.Tensor]:
    """Targets (B, T) per question of ``questions`` (1 yes, 0 no, ``IGNORE_INDEX``
    unknown) from score-token targets (``AlignData``): on a downbeat = position 0; on a
    beat = position a multiple of the beat (a denominator unit; three of them in 6/8, 9/8,
    12/8); on the lower staff = staff 2; in a second voice = any voice of its staff but
    the first; the step questions (``step_targets``, computed only when asked); a rest
    after the note in its voice (``REST_TARGET``: the batch's own target, which
    ``AlignData`` adds when its config asks the question; absent otherwise); in each
    time signature of ``SIGNATURE_CLASSES``. Grace notes, dropped notes and padding are
    unknown (for the staff and the voice: dropped notes and padding)."""
    position = score_targets["position"]
    signature = score_targets["time_signature"]
    known = (position != IGNORE_INDEX) & (score_targets["grace"] == FIRST_VALUE)
    grid = (position - FIRST_VALUE).clamp(min=0)
    index = (signature - FIRST_VALUE).clamp(min=0)
    numerator = index // len(DENOMINATORS) + 1
    denominator = torch.tensor(DENOMINATORS, device=index.device)[index % len(DENOMINATORS)]
    unit = 96 // denominator  # grid units (24 per quarter) of one denominator unit
    compound = (numerator % 3 == 0) & (numerator > 3)
    beat = torch.where(compound, 3 * unit, unit).clamp(min=1)
    answers = {"downbeat": grid == 0, "beat": grid % beat == 0}
    out = {k: torch.where(known, v.long(), IGNORE_INDEX) for k, v in answers.items()}
    staff = score_targets["staff"]
    lower = (staff - FIRST_VALUE).long()  # 0 upper, 1 lower
    out["staff"] = torch.where(staff != IGNORE_INDEX, lower, IGNORE_INDEX)
    voice = score_targets["voice"]  # within the staff, folded to 4 (tokens.score)
    second = (voice - FIRST_VALUE >= 1).long()
    out["second_voice"] = torch.where(voice != IGNORE_INDEX, second, IGNORE_INDEX)
    if {"same_step", "longer_step"} & set(questions):
        out.update(step_targets(score_targets))
    if REST_TARGET in questions and REST_TARGET in score_targets:  # from the whole piece
        out[REST_TARGET] = score_targets[REST_TARGET]  # (``data.rests``)
    for (num, den), name in zip(SIGNATURE_CLASSES, SIGNATURE_QUESTIONS, strict=True):
        out[name] = torch.where(
            known, ((numerator == num) & (denominator == den)).long(), IGNORE_INDEX
        )
    return {k: v for k, v in out.items() if k in questions}


def step_targets(score_targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Targets (B, T) of the step questions, walking each window's notes in performed
    order as the decoder does (``perf2score.neural.decode.Timeline``): a kept note's
    score onset (measure starts from the ``bar`` advances and ``measure_length``, plus its
    ``position``; grid units) minus the last kept note's is its step; where that step and
    the step before it are both positive, ``same_step`` says whether they are equal and
    ``longer_step`` (only where they differ) whether the new one is longer. Everything
    else (chord notes, a window's first steps, dropped notes, after a backwards jump) is
    ``IGNORE_INDEX``. (``models.losses.rhythm_changes`` walks the score rows' onsets for
    the loss weights instead, from the latest onset so far rather than the last note's;
    here the walk reads the tokens, as the decoder sees them.)"""
    position = score_targets["position"]
    B, T = position.shape
    kept = position != IGNORE_INDEX
    advance = (score_targets["bar"] - FIRST_VALUE).clamp(min=0)
    length = (score_targets["measure_length"] - FIRST_VALUE).clamp(min=0)
    grid = (position - FIRST_VALUE).clamp(min=0)
    start = torch.zeros(B, dtype=torch.long, device=position.device)
    current = torch.zeros_like(start)  # the current measure's length
    last_onset = torch.full_like(start, -1)
    last_step = torch.zeros_like(start)  # 0: none yet
    same = torch.full((B, T), IGNORE_INDEX, dtype=torch.long, device=position.device)
    longer = same.clone()
    for t in range(T):
        keep, adv = kept[:, t], advance[:, t]
        backwards = keep & (adv == BACKWARDS)
        moved = keep & (adv >= 1) & (adv < BACKWARDS)
        start = torch.where(moved, start + current + (adv - 1).clamp(min=0) * length[:, t], start)
        start = torch.where(backwards, torch.zeros_like(start), start)
        current = torch.where(keep, length[:, t], current)
        onset = start + grid[:, t]
        step = onset - last_onset
        stepped = keep & ~backwards & (last_onset >= 0) & (step > 0)
        compared = stepped & (last_step > 0)
        same[:, t] = torch.where(compared, (step == last_step).long(), same[:, t])
        differs = compared & (step != last_step)
        longer[:, t] = torch.where(differs, (step > last_step).long(), longer[:, t])
        last_step = torch.where(stepped, step, last_step)
        last_step = torch.where(backwards, torch.zeros_like(last_step), last_step)
        last_onset = torch.where(keep, onset, last_onset)
        last_onset = torch.where(backwards, torch.full_like(last_onset, -1), last_onset)
    return {"same_step": same, "longer_step": longer}


def meter_forward(model: MeterModel, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss (the questions' cross-entropies, their mean weighted by ``config.loss_weights``)
    and logits of the meter head on a batch of aligned windows; the targets of
    ``meter_targets`` are added to ``batch["targets"]`` (so validation scores them)."""
    questions = model.config.questions
    targets = meter_targets(batch["targets"], questions)
    batch["targets"].update(targets)
    logits = model(batch["performance"], padding=batch["padding"])
    losses = [
        F.cross_entropy(
            logits[k].flatten(0, 1).float(), targets[k].flatten(), ignore_index=IGNORE_INDEX
        )
        for k in questions
    ]
    weights = model.config.loss_weights or (1.0,) * len(losses)
    return sum(w * loss for w, loss in zip(weights, losses, strict=True)) / sum(weights), logits


def save_meter(
    model: MeterModel,
    folder: str | os.PathLike,
    performance: str | os.PathLike,
    dtype: torch.dtype | None = None,
) -> None:
    """Write ``meter.safetensors`` (the head; cast to ``dtype`` when given) and
    ``meter.json`` into ``folder``; ``performance``: the folder of the performance LM it
    reads (stored relative to ``folder``): an LM folder or an aligned model's
    (``perf2score.models.io.load_performance``). ``meter.json`` also records that LM's
    digest (``perf2score.models.digest``)."""
    from perf2score.models.io import performance_digest, save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if model.config.tune_performance:  # its own performance LM, beside the head
        performance = folder / TUNED_PERFORMANCE
        performance.mkdir(exist_ok=True)
        save_model(_cast(model.performance, dtype), performance)
    state = {
        f"head.{k}": (v.to(dtype) if dtype is not None else v).detach().contiguous()
        for k, v in model.head.state_dict().items()
    }
    config = {
        "format": METER_FORMAT,
        "token_spec": spec_fingerprint(),
        "meter": asdict(model.config),
        "performance": model.performance.config.to_dict(),
        "base": os.path.relpath(Path(performance).resolve(), folder.resolve()),
        # the LM it reads, to know a model whose encoder states it can share
        "performance_digest": performance_digest(model.performance),
    }
    atomic_write(folder / "meter.safetensors", save(state))
    atomic_write(folder / "meter.json", json.dumps(config, indent=2) + "\n")


def _cast(performance: NoteLM, dtype: torch.dtype | None) -> NoteLM:
    """``performance`` itself, or a copy with its weights in ``dtype``."""
    if dtype is None:
        return performance
    import copy

    return copy.deepcopy(performance).to(dtype)


def load_meter_weights(model: MeterModel, folder: str | os.PathLike) -> None:
    """Load ``meter.safetensors`` into ``model``'s head (and, for a head trained with its
    performance LM, that LM's weights from ``performance/``)."""
    if model.config.tune_performance:
        _load_tuned_performance(model.performance, folder)
    _load_head(model, folder)


def _load_tuned_performance(performance: NoteLM, folder: str | os.PathLike) -> None:
    """Load the performance LM a head in ``folder`` was trained with into ``performance``."""
    tuned = load_file(str(Path(folder) / TUNED_PERFORMANCE / "model.safetensors"))
    try:
        performance.load_state_dict({k: v.float() for k, v in tuned.items()})
    except RuntimeError as exc:
        raise Perf2ScoreError(f"{folder}: its performance LM does not fit") from exc


def start_head_from(model: MeterModel, folder: str | os.PathLike) -> None:
    """Start ``model`` from the trained head in ``folder`` (``[base] head``): its tuned
    performance LM when both tune theirs (a frozen LM stays the base's), its layer norm and
    hidden layer, and the output rows (2 per question) of the questions both ask; the rows
    of questions it does not ask keep their initial values. ``Perf2ScoreError`` when the
    shapes differ (another LM width or hidden size)."""
    _, source = read_meter_json(folder)
    if model.config.tune_performance and source.tune_performance:
        _load_tuned_performance(model.performance, folder)
    head = _head_state(folder)
    out_weight, out_bias = head.pop("4.weight"), head.pop("4.bias")
    own = model.head.state_dict()
    for key, value in head.items():  # the hidden layer's shape fixes the output rows' width
        if key not in own or own[key].shape != value.shape:
            raise Perf2ScoreError(f"{folder}: its head ({key}) does not fit this one")
        own[key] = value
    for k, question in enumerate(model.config.questions):
        if question in source.questions:
            j = source.questions.index(question)
            own["4.weight"][2 * k : 2 * k + 2] = out_weight[2 * j : 2 * j + 2]
            own["4.bias"][2 * k : 2 * k + 2] = out_bias[2 * j : 2 * j + 2]
    model.head.load_state_dict(own)


def _head_state(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The head's float32 tensors of ``folder``'s ``meter.safetensors``, by their name in
    ``MeterModel.head``."""
    state = load_file(str(Path(folder) / "meter.safetensors"))
    return {k.removeprefix("head."): v.float() for k, v in state.items()}


def _load_head(model: MeterModel, folder: str | os.PathLike) -> None:
    """Load ``meter.safetensors`` into ``model``'s head."""
    try:
        model.head.load_state_dict(_head_state(folder))
    except RuntimeError as exc:
        raise Perf2ScoreError(f"{folder}: meter weights do not fit this head") from exc


def ship_meter(
    folder: str | os.PathLike, dest: str | os.PathLike, candidates: Sequence[Path]
) -> int:
    """Copy a trained meter head (``folder``) into ``dest`` with fp16 weights; returns bytes
    written. A head trained with its own performance LM takes it along; any other reads the
    first of ``candidates`` (the package's performance LM and aligned model, shipped beside
    it) that holds the LM it was trained on, by digest (``Perf2ScoreError`` when none does:
    a head trained on a fine-tuned LM ships only beside the model that holds that LM)."""
    from perf2score.models.io import folder_digest, performance_digest

    model = load_meter(folder)
    if model.config.tune_performance:
        base = Path(dest) / TUNED_PERFORMANCE  # its own LM travels with it
    else:
        mine = performance_digest(model.performance)
        base = next((c for c in candidates if folder_digest(c) == mine), None)
        if base is None:
            names = ", ".join(str(c) for c in candidates)
            raise Perf2ScoreError(
                f"{folder}: none of {names} holds the performance LM the head was trained on"
            )
    save_meter(model, dest, base, dtype=torch.float16)
    return (Path(dest) / "meter.safetensors").stat().st_size


def load_meter(folder: str | os.PathLike) -> MeterModel:
    """A meter model from ``meter.json`` (its performance LM from the folder named there: an
    LM folder, or an aligned model's, ``perf2score.models.io.load_performance``)."""
    from perf2score.models.io import load_performance

    folder = Path(folder)
    config, head = read_meter_json(folder)
    model = MeterModel(load_performance(folder / config["base"]), head)  # a tuned LM's own copy
    _load_head(model, folder)
    return model.eval()
