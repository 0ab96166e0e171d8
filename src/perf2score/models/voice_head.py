"""The voice pass: a small non-autoregressive encoder that assigns voices within each staff.

The score decoder writes one voice per staff (its voice head learned to copy the previous
note's voice). This pass reads the decoded piece as a whole, notes placed in time and how they
were played (``perf2score.neural.voice_features``), and gives every note its voice (1-4 within
its staff) at once, looking both ways. Trained on the ground-truth scores of the ASAP training
performances (``perf2score train voices``); at conversion time it reads the decoder's onsets
and staves, in overlapping windows.

Saved as ``voices.safetensors`` + ``voices.json`` (format, config). Shapes: B batch, T notes,
F features, D width.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import nn

from perf2score.errors import Perf2ScoreError
from perf2score.files import atomic_write
from perf2score.neural.voice_features import N_FEATURES
from perf2score.tokens.spec import IGNORE_INDEX

VOICES_FORMAT = 1
MAX_VOICES = 4


@dataclass(frozen=True)
class VoiceConfig:
    d_model: int = 96
    layers: int = 3
    heads: int = 4
    dropout: float = 0.1
    window: int = 128  # notes per window (training and decoding)

    @classmethod
    def from_dict(cls, data: dict) -> VoiceConfig:
        return cls(**data)


class VoiceModel(nn.Module):
    """Features, pitch and staff of notes in voice order → voice logits (4 per note)."""

    def __init__(self, config: VoiceConfig | None = None):
        super().__init__()
        self.config = config = config or VoiceConfig()
        d = config.d_model
        self.features = nn.Linear(N_FEATURES, d)
        self.pitch = nn.Embedding(128, d)
        self.staff = nn.Embedding(3, d)
        self.position = nn.Embedding(config.window, d)
        layer = nn.TransformerEncoderLayer(
            d, config.heads, 2 * d, config.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, MAX_VOICES)

    def forward(
        self,
        features: torch.Tensor,
        pitch: torch.Tensor,
        staff: torch.Tensor,
        padding: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Logits {"voice": (B, T, 4)} from features (B, T, F), pitch and staff (B, T)."""
        positions = torch.arange(features.shape[1], device=features.device)
        x = self.features(features) + self.pitch(pitch) + self.staff(staff)
        x = x + self.position(positions)[None]
        x = self.encoder(x, src_key_padding_mask=padding)
        return {"voice": self.head(self.norm(x))}


def voice_forward(model: VoiceModel, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss and logits of the voice pass on a batch (``perf2score.train.voice_data``)."""
    logits = model(batch["features"], batch["pitch"], batch["staff"], batch["padding"])
    target = batch["targets"]["voice"]
    loss = F.cross_entropy(
        logits["voice"].flatten(0, 1).float(), target.flatten(), ignore_index=IGNORE_INDEX
    )
    return loss, logits


def window_starts(n: int, window: int) -> list[int]:
    """Starts of windows of ``window`` notes overlapping by half that cover ``n`` notes."""
    if n <= window:
        return [0]
    step = window // 2
    starts = list(range(0, n - window + 1, step))
    if starts[-1] + window < n:
        starts.append(n - window)
    return starts


@torch.no_grad()
def predict_voices(
    model: VoiceModel,
    features: np.ndarray,
    pitch: np.ndarray,
    staff: np.ndarray,
    confidence: float = 0.0,
) -> np.ndarray:
    """(N,) voices 1-4 of notes in voice order, each from the window it is most central in.

    Args:
        features: (N, F) ``voice_features`` rows; pitch (N,); staff (N,) 1 or 2.
        confidence: a note leaves voice 1 only when the pass gives its voice at least this
            probability.
    """
    n = len(pitch)
    if n == 0:
        return np.zeros(0, dtype=np.int16)
    window = model.config.window
    starts = window_starts(n, window)
    size = min(window, n)
    feats = torch.from_numpy(np.stack([features[s : s + size] for s in starts]))
    pitches = torch.from_numpy(np.stack([pitch[s : s + size] for s in starts]).astype(np.int64))
    staves = torch.from_numpy(np.stack([staff[s : s + size] for s in starts]).astype(np.int64))
    logits = model(feats, pitches.clamp(0, 127), staves.clamp(0, 2))["voice"]
    probabilities = torch.softmax(logits, -1).numpy()
    best = np.full(n, -np.inf)
    voices = np.ones(n, dtype=np.int16)
    closeness = -np.abs(np.arange(size) - (size - 1) / 2)
    for row, start in enumerate(starts):
        index = np.arange(start, start + size)
        better = closeness > best[index]
        chosen = probabilities[row][better].argmax(-1)
        sure = probabilities[row][better].max(-1) >= confidence
        voices[index[better]] = np.where(sure, chosen + 1, 1)
        best[index[better]] = closeness[better]
    return voices


def save_voices(model: VoiceModel, folder: str | os.PathLike, dtype: torch.dtype | None = None):
    """Write ``voices.safetensors`` (cast to ``dtype`` when given) and ``voices.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.to(dtype) if dtype is not None else v).detach().contiguous()
        for k, v in model.state_dict().items()
    }
    config = {"format": VOICES_FORMAT, "voices": asdict(model.config)}
    atomic_write(folder / "voices.safetensors", save(state))
    atomic_write(folder / "voices.json", json.dumps(config, indent=2) + "\n")


def load_voice_weights(model: VoiceModel, folder: str | os.PathLike) -> None:
    """Load ``voices.safetensors`` into ``model`` (fp32)."""
    state = {k: v.float() for k, v in load_file(str(Path(folder) / "voices.safetensors")).items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise Perf2ScoreError(f"{folder}: voice weights do not fit this model") from exc


def load_voices(folder: str | os.PathLike) -> VoiceModel:
    """The voice pass saved in ``folder`` (eval mode)."""
    folder = Path(folder)
    path = folder / "voices.json"
    if not path.is_file() or not (folder / "voices.safetensors").is_file():
        raise Perf2ScoreError(f"{folder}: no voice pass (voices.json + voices.safetensors)")
    try:
        config = json.loads(path.read_text())
        voices = VoiceConfig.from_dict(config["voices"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise Perf2ScoreError(f"{path}: invalid ({exc})") from exc
    if config.get("format", 0) > VOICES_FORMAT:
        raise Perf2ScoreError(f"{path}: format {config['format']} is newer than this version")
    model = VoiceModel(voices)
    load_voice_weights(model, folder)
    return model.eval()


def ship_voices(folder: str | os.PathLike, dest: str | os.PathLike) -> int:
    """Copy a trained voice pass into ``dest`` with fp16 weights; returns bytes written."""
    save_voices(load_voices(folder), dest, dtype=torch.float16)
    return (Path(dest) / "voices.safetensors").stat().st_size
