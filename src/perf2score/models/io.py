"""Save and load a model as ``model.safetensors`` + ``config.json`` (never pickle)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from perf2score.errors import Perf2ScoreError
from perf2score.files import atomic_write
from perf2score.models.adapter import AlignedModel, adapter_state
from perf2score.models.config import (
    ADAPTER_FORMAT,
    LMConfig,
    read_adapter_json,
    read_aligned_configs,
)
from perf2score.models.digest import lm_digest
from perf2score.models.lm import NoteLM
from perf2score.neural.settings import DecodeConfig
from perf2score.tokens.spec import spec_fingerprint


def save_model(model: NoteLM, folder: str | os.PathLike) -> None:
    folder = Path(folder)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write(folder / "model.safetensors", save(state))
    atomic_write(folder / "config.json", model.config.to_json_text())


def load_model(folder: str | os.PathLike) -> NoteLM:
    folder = Path(folder)
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise Perf2ScoreError(f"{folder}: no model (config.json + model.safetensors)")
    model = NoteLM(LMConfig.from_json(folder / "config.json"))
    try:
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
    except RuntimeError as exc:  # missing, unexpected or reshaped tensors
        raise Perf2ScoreError(f"{folder}: the weights do not fit its config.json") from exc
    return model.eval()


def save_aligned(
    model: AlignedModel,
    folder: str | os.PathLike,
    base: dict[str, str],
    dtype: torch.dtype | None = None,
    decoding: DecodeConfig | None = None,
) -> None:
    """Save an aligned model like a peft adapter: ``adapter.safetensors`` (only the trained
    weights when the LMs are frozen, else all; cast to ``dtype`` when given),
    ``adapter.json`` (format version, token-spec fingerprint, the adapter config, both LM
    configs, and ``base``: the folders of the pre-trained LMs, relative to ``folder``) and,
    when given, ``decoding.json`` (the settings it is decoded with)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "format": ADAPTER_FORMAT,
        "token_spec": spec_fingerprint(),
        "adapter": model.config.to_dict(),
        "performance": model.performance.config.to_dict(),
        "score": model.score.config.to_dict(),
        "base": {k: os.path.relpath(Path(v).resolve(), folder.resolve()) for k, v in base.items()},
    }
    if not model.config.performance_frozen:  # heads trained on this LM can share its pass
        config["performance_digest"] = performance_digest(model.performance)
    state = adapter_state(model)
    if dtype is not None:
        state = {k: v.to(dtype) for k, v in state.items()}
    atomic_write(folder / "adapter.safetensors", save(state))
    atomic_write(folder / "adapter.json", json.dumps(config, indent=2) + "\n")
    if decoding is not None:
        decoding.save(folder)


def load_aligned_weights(
    model: AlignedModel, folder: str | os.PathLike, missing_ok: bool = False
) -> None:
    """Load ``adapter.safetensors`` into an aligned model (frozen weights stay as they are);
    ``missing_ok``: trained weights the folder lacks (new in ``model``) keep their values."""
    state = load_file(str(Path(folder) / "adapter.safetensors"))
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of another shape
        raise Perf2ScoreError(f"{folder}: adapter weights do not fit this model") from exc
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    if unexpected or (trained & set(missing) and not missing_ok):
        raise Perf2ScoreError(f"{folder}: adapter weights do not fit this model")


def load_aligned(folder: str | os.PathLike) -> AlignedModel:
    """An aligned model from ``adapter.json``: the base LMs' weights (unless the adapter holds
    every weight), then the adapter's."""
    folder = Path(folder)
    config, adapter, lm_configs = read_aligned_configs(folder)
    if not adapter.holds_every_weight:
        performance = load_model(folder / config["base"]["performance"])
        score = load_model(folder / config["base"]["score"])
    else:
        performance, score = (NoteLM(c) for c in lm_configs)
    model = AlignedModel(performance, score, adapter)
    load_aligned_weights(model, folder)
    return model.eval()


def load_performance(folder: str | os.PathLike) -> NoteLM:
    """The performance LM of ``folder``: an LM folder (``config.json`` +
    ``model.safetensors``) or an aligned-model folder (``adapter.json``: the performance LM
    it decodes with, fine-tuned or not)."""
    folder = Path(folder)
    if (folder / "adapter.json").is_file():
        return load_aligned(folder).performance
    return load_model(folder)


def performance_digest(lm: NoteLM) -> str:
    """``perf2score.models.digest.lm_digest`` of an LM's weights (its state dict)."""
    return lm_digest({k: v.detach().float().numpy() for k, v in lm.state_dict().items()})


def folder_digest(folder: str | os.PathLike) -> str | None:
    """``performance_digest`` of the performance LM of an LM or aligned-model folder (an
    aligned folder's ``adapter.json`` records it when its performance LM was trained), None
    for a folder that holds neither."""
    folder = Path(folder)
    if (folder / "adapter.json").is_file():
        recorded = read_adapter_json(folder).get("performance_digest")
        if recorded:
            return recorded
    elif not (folder / "config.json").is_file():
        return None
    return performance_digest(load_performance(folder))


def ship_lm(lm: NoteLM, dest: str | os.PathLike) -> int:
    """Write an LM's own weights (LoRA folded away) as fp16 into ``dest``; return bytes."""
    dest = Path(dest)
    state = {k: v.detach().half().contiguous() for k, v in _base_state(lm).items()}
    atomic_write(dest / "model.safetensors", save(state))
    atomic_write(dest / "config.json", lm.config.to_json_text())
    return (dest / "model.safetensors").stat().st_size


def ship_aligned(folder: str | os.PathLike, dest: str | os.PathLike) -> dict[str, int]:
    """Copy an aligned model into ``dest`` (``adapter/``, and ``performance/`` + ``score/``
    for the base LMs) with fp16 weights, so the package can find and load it. Returns bytes
    per part written.

    The base LMs are shipped as they were pre-trained (read from the adapter's base folders,
    not from the aligned model, whose score heads were fine-tuned and live in the adapter);
    a model that trained every weight (``full-finetune``, ``scratch``) needs no base."""
    folder, dest = Path(folder), Path(dest)
    model = load_aligned(folder)
    sizes: dict[str, int] = {}
    config = read_adapter_json(folder)
    for name in ("performance", "score"):
        source = (folder / config["base"][name]).resolve()
        if not model.config.holds_every_weight and source != (dest / name).resolve():
            sizes[name] = ship_lm(load_model(source), dest / name)
    base = {name: str(dest / name) for name in ("performance", "score")}
    decoding = DecodeConfig.read(folder)  # the defaults where the folder has none
    save_aligned(model, dest / "adapter", base, dtype=torch.float16, decoding=decoding)
    sizes["adapter"] = (dest / "adapter" / "adapter.safetensors").stat().st_size
    return sizes


def _base_state(lm: NoteLM) -> dict[str, torch.Tensor]:
    """An LM's own weights without LoRA (``qkv.base.weight`` is saved as ``qkv.weight``)."""
    state = {}
    for key, value in lm.state_dict().items():
        if ".down." in key or ".up." in key:
            continue
        state[key.replace(".base.", ".")] = value
    return state
