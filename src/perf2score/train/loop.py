"""The training loop shared by every task: AdamW with warm-up + cosine decay, gradient
clipping, periodic validation (loss and accuracy per stream), checkpoints that resume
exactly, the best model kept apart, a JSONL log and a final summary. Runs unchanged under
``torchrun`` (DDP; gloo on CPU, NCCL on GPU): every process draws its own batches, rank 0
validates, logs and writes.

Exact resume: the examples of step ``s`` on rank ``r`` come from a generator seeded with
``(seed, r, s)`` and dropout from a torch seed derived from the same, so a run resumed from
a checkpoint takes the same steps as one that never stopped.

Run folder: ``log.jsonl``, ``run.json`` (the configuration), ``checkpoint/`` (latest:
``model.safetensors``, ``config.json``, ``optimizer.safetensors``, ``state.json``),
``best/`` (best selection score, ``[train] select``: the lowest validation loss, or the best
decoded transcriptions; ``model.safetensors`` + ``config.json``), ``summary.json``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save
from torch import nn
from tqdm import tqdm

from perf2score.errors import Perf2ScoreError
from perf2score.files import atomic_write
from perf2score.models.losses import stream_losses
from perf2score.tokens.spec import IGNORE_INDEX
from perf2score.train.config import RunConfig

LossFn = Callable[[nn.Module, dict], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass
class Task:
    """What to train: the model, its data, how to compute the loss, how to save it."""

    name: str
    model: nn.Module
    data: object  # training examples: sample(rng, batch_size) -> batch
    validation_data: object  # validation(batch_size) -> [batch] (fixed batches)
    config: RunConfig
    forward: LossFn  # (model, batch) -> (loss, logits per stream (B, T, V))
    save: Callable[[nn.Module, Path], None]  # writes the model's files into a folder
    load: Callable[[nn.Module, Path], None] | None = None  # reads them (default: strict)
    decoded_validation: Callable[[nn.Module], dict] | None = None  # metrics of transcriptions


def lm_forward(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss and logits of a ``NoteLM`` on a batch of ``inputs`` / ``targets`` / ``padding``."""
    logits, _ = model(batch["inputs"], padding=batch["padding"])
    loss, _ = stream_losses(logits, batch["targets"])
    return loss, logits


def bf16_supported(device: torch.device) -> bool:
    """True where bf16 autocast is fast: a CUDA GPU with bf16, or a CPU with AVX512-BF16/AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def uses_bf16(config: RunConfig, device: torch.device) -> bool:
    """Whether a run computes in bf16 autocast (``[train] precision``; ``auto``: where the
    hardware has it). Training and ``validate_best`` decide alike, so their losses agree."""
    precision = config.train.precision
    return precision == "bf16" or (precision == "auto" and bf16_supported(device))


def autocast_for(device: torch.device, bf16: bool) -> Callable[[], torch.autocast]:
    """A factory of autocast contexts: bf16 when ``bf16``, else plain fp32."""
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def learning_rate(step: int, config: RunConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr / 10`` at the last step."""
    t = config.train
    if step < t.warmup:
        return t.lr * (step + 1) / t.warmup
    progress = min((step - t.warmup) / max(t.steps - t.warmup, 1), 1.0)
    return t.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _to(batch: dict, device: torch.device) -> dict:
    return {
        k: {n: t.to(device) for n, t in v.items()} if isinstance(v, dict) else v.to(device)
        for k, v in batch.items()
    }


@torch.no_grad()
def validate(task: Task, model: nn.Module, batches: list[dict], device, autocast) -> dict:
    """Mean loss and per-stream loss / accuracy over the validation batches."""
    model.eval()
    total, count = 0.0, 0
    stream_loss: dict[str, float] = {}
    correct: dict[str, int] = {}
    near: dict[str, int] = {}  # within one bucket (meaningful for ordered streams)
    seen: dict[str, int] = {}
    for batch in batches:
        batch = _to(batch, device)
        with autocast():
            loss, logits = task.forward(model, batch)
        total += float(loss) * len(batch["padding"])
        count += len(batch["padding"])
        for name, scores in logits.items():
            target = batch["targets"][name]  # (B, T)
            valid = target != IGNORE_INDEX
            n = int(valid.sum())
            if not n:
                continue
            ce = torch.nn.functional.cross_entropy(
                scores.float()[valid], target[valid], reduction="sum"
            )
            stream_loss[name] = stream_loss.get(name, 0.0) + float(ce)
            guess = scores.argmax(-1)[valid]  # (n,)
            correct[name] = correct.get(name, 0) + int((guess == target[valid]).sum())
            near[name] = near.get(name, 0) + int(((guess - target[valid]).abs() <= 1).sum())
            seen[name] = seen.get(name, 0) + n
    model.train()
    return {
        "loss": total / max(count, 1),
        "streams": {
            name: {
                "loss": stream_loss[name] / seen[name],
                "accuracy": correct[name] / seen[name],
                "within_one": near[name] / seen[name],
                "targets": seen[name],
            }
            for name in sorted(seen)
        },
    }


def _selection_score(result: dict, select: str) -> float:
    """Lower is better: the validation loss, or minus the decoded transcriptions' mean
    attribute accuracy (``select = "decoded"``, when the task decodes)."""
    if select == "decoded" and "decoded" in result:
        return -result["decoded"]["mean"]
    return result["loss"]


def _save_checkpoint(folder: Path, task: Task, model, optimizer, state: dict) -> None:
    task.save(model, folder)
    tensors, meta = {}, {"param_groups": optimizer.state_dict()["param_groups"], "state": {}}
    for index, values in optimizer.state_dict()["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().contiguous()
            else:
                meta["state"].setdefault(str(index), {})[key] = value
    atomic_write(folder / "optimizer.safetensors", save(tensors))
    atomic_write(folder / "state.json", json.dumps({**state, "optimizer": meta}, indent=2))


def _load_weights(task: Task, model: nn.Module, folder: Path) -> None:
    """Read what ``task.save`` wrote (strictly, unless the task has its own loader)."""
    if task.load is not None:
        task.load(model, folder)
    else:
        model.load_state_dict(load_file(str(folder / "model.safetensors")))


def _load_checkpoint(folder: Path, task: Task, model, optimizer) -> dict:
    state = json.loads((folder / "state.json").read_text())
    _load_weights(task, model, folder)
    tensors = load_file(str(folder / "optimizer.safetensors"))
    meta = state.pop("optimizer")
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    for index, values in meta["state"].items():
        per_param.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": per_param, "param_groups": meta["param_groups"]})
    return state


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def parameter_groups(model: nn.Module, pretrained_scale: float = 1.0) -> list[dict]:
    """The trainable parameters as optimiser groups, each with its ``lr_scale``: the
    pre-trained LM weights (``model.pretrained_names()``, where the model has it) take
    ``pretrained_scale``, everything else 1. One group when the scale is 1."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    pretrained = model.pretrained_names() if hasattr(model, "pretrained_names") else set()
    if pretrained_scale == 1.0 or not pretrained & {n for n, _ in named}:
        return [{"params": [p for _, p in named], "lr_scale": 1.0}]
    return [
        {"params": [p for n, p in named if n not in pretrained], "lr_scale": 1.0},
        {"params": [p for n, p in named if n in pretrained], "lr_scale": pretrained_scale},
    ]


def train(
    task: Task,
    out: str | os.PathLike,
    resume: bool = False,
    progress: bool = True,
    until: int | None = None,
) -> dict:
    """Train ``task`` into the run folder ``out``; return the summary (also summary.json).

    ``until``: stop at that step (validated and checkpointed) although the schedule runs to
    ``[train] steps``; ``resume`` continues later exactly as if never stopped.
    """
    out = Path(out)
    config = task.config
    checkpoint = out / "checkpoint"
    if checkpoint.exists() and not resume:
        raise Perf2ScoreError(f"{out}: a run is already there (pass --resume to continue it)")
    if resume and not (checkpoint / "state.json").is_file():
        raise Perf2ScoreError(f"{out}: no checkpoint to resume")
    rank, world = _distributed()
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    device = torch.device(
        f"cuda:{rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"
    )
    use_bf16 = uses_bf16(config, device)
    autocast = autocast_for(device, use_bf16)

    model = task.model.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        parameter_groups(model, config.train.pretrained_lr_scale),
        lr=config.train.lr,
        weight_decay=config.train.weight_decay,
    )
    state = {"step": 0, "best_score": None, "wall_s": 0.0, "notes": 0}
    if resume:
        state = _load_checkpoint(checkpoint, task, model, optimizer)
        if "best_loss" in state:  # checkpoints before the rename: the same selection score
            state["best_score"] = state.pop("best_loss")
    ddp = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    validation = task.validation_data.validation(config.train.batch_size) if rank == 0 else []
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(
            out / "run.json", json.dumps({"task": task.name, **config.to_dict()}, indent=2)
        )
    log = open(out / "log.jsonl", "a") if rank == 0 else None  # noqa: SIM115 (closed below)
    steps = config.train.steps
    stop = min(steps, until) if until else steps
    bar = tqdm(
        total=steps, initial=state["step"], desc=task.name, disable=not progress or rank != 0
    )
    started, last = time.perf_counter(), None
    window_notes, window_start = 0, time.perf_counter()
    model.train()
    try:
        while state["step"] < stop:
            step = state["step"]
            rng = np.random.default_rng([config.train.seed, rank, step])
            torch.manual_seed(config.train.seed * 1_000_003 + step * 101 + rank)
            batch = _to(task.data.sample(rng, config.train.batch_size), device)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, config) * group.get("lr_scale", 1.0)
            with autocast():
                loss, _ = task.forward(ddp, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(trainable, config.train.grad_clip)
            optimizer.step()
            loss_value = float(loss.detach())
            notes = int((~batch["padding"]).sum()) * world
            state["step"], state["notes"] = step + 1, state["notes"] + notes
            window_notes += notes
            bar.update(1)
            if rank == 0 and (
                state["step"] % config.train.log_every == 0 or state["step"] == steps
            ):
                rate = window_notes / max(time.perf_counter() - window_start, 1e-9)
                window_notes, window_start = 0, time.perf_counter()
                bar.set_postfix(loss=f"{loss_value:.3f}", notes_s=f"{rate:.0f}")
                entry = {
                    "step": state["step"],
                    "loss": loss_value,
                    "lr": learning_rate(step, config),
                    "grad_norm": float(norm),
                    "notes_per_s": rate,
                }
                log.write(json.dumps(entry) + "\n")
                log.flush()
            if state["step"] % config.train.eval_every == 0 or state["step"] in (steps, stop):
                state["wall_s"] += time.perf_counter() - started
                started = time.perf_counter()
                if rank == 0:
                    last = validate(task, model, validation, device, autocast)
                    if task.decoded_validation is not None:
                        model.eval()
                        last["decoded"] = task.decoded_validation(model)
                        model.train()
                    log.write(json.dumps({"step": state["step"], "validation": last}) + "\n")
                    log.flush()
                    score = _selection_score(last, config.train.select)
                    if state["best_score"] is None or score < state["best_score"]:
                        state["best_score"] = score
                        state["best_step"] = state["step"]
                        task.save(model, out / "best")
                    _save_checkpoint(checkpoint, task, model, optimizer, state)
                    bar.write(f"step {state['step']}: validation loss {last['loss']:.4f}")
                if world > 1:
                    dist.barrier()
    finally:
        bar.close()
        if log:
            log.close()
    summary = {}
    if rank == 0:
        params = sum(p.numel() for p in model.parameters())
        summary = {
            "task": task.name,
            "steps": state["step"],
            "wall_s": round(state["wall_s"], 1),
            "notes_seen": state["notes"],
            "notes_per_s": round(state["notes"] / max(state["wall_s"], 1e-9), 1),
            "parameters": params,
            "trainable_parameters": sum(p.numel() for p in trainable),
            "precision": "bf16" if use_bf16 else "fp32",
            "processes": world,
            "best_step": state.get("best_step"),
            "selected_by": config.train.select,
            "best_validation_score": state["best_score"],
            "final_validation": last,
        }
        atomic_write(out / "summary.json", json.dumps(summary, indent=2))
    return summary


def validate_best(task: Task, out: str | os.PathLike) -> dict:
    """Validation metrics of the run's best model (``out/best``), also written as
    ``out/best_validation.json`` (for runs whose log predates a metric)."""
    out = Path(out)
    folder = out / "best"
    if not folder.is_dir():
        raise Perf2ScoreError(f"{out}: no best model to validate")
    _load_weights(task, task.model, folder)
    batches = task.validation_data.validation(task.config.train.batch_size)
    device = torch.device("cpu")
    autocast = autocast_for(device, uses_bf16(task.config, device))
    result = validate(task, task.model, batches, device, autocast)
    atomic_write(out / "best_validation.json", json.dumps(result, indent=2))
    return result
