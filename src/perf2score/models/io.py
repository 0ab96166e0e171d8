"""Save and load a model as ``model.safetensors`` + ``config.json`` (never pickle)."""

from __future__ import annotations

import os
from pathlib import Path

from safetensors.torch import load_file, save

from perf2score.errors import Perf2ScoreError
from perf2score.files import atomic_write
from perf2score.models.config import LMConfig
from perf2score.models.lm import NoteLM


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
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model.eval()
