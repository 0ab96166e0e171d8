"""Training examples for the voice pass: windows of ground-truth score notes in voice order.

Every aligned, timed note of a prepared performance (drops and grace notes left out) with its
score onset (quarters), staff and voice, and its played times; features from
``perf2score.neural.voice_features``, computed once per performance. With ``[data] decoded``
a share of the windows comes from the decoder's own output for the same performances (its
onsets and staves, the ground truth's voices), the input the pass reads at conversion time.
Training windows are cropped at random and transposed (±6 semitones); the validation windows
are fixed.

A batch: ``features`` (B, T, F) float, ``pitch`` and ``staff`` (B, T) int64, ``padding``
(B, T) bool (True = padded), ``targets`` {"voice": (B, T) int64, 0-3, ``IGNORE_INDEX``
where unknown}.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from perf2score.data.cache import PreparedPerformance, load_index, load_prepared
from perf2score.errors import Perf2ScoreError
from perf2score.neural.voice_features import N_FEATURES, voice_features, voice_order
from perf2score.tokens.spec import IGNORE_INDEX
from perf2score.train.config import RunConfig
from perf2score.train.datasets import VALIDATION_SEED

PITCH_COLUMN = N_FEATURES - 1  # pitch / 64 - 1


def piece_examples(
    prepared: PreparedPerformance, decoded: Path | None = None
) -> dict[str, np.ndarray]:
    """Voice-ordered arrays of one performance's timed notes: features (n, F), pitch, staff,
    voice (n,) (the notated voice, as in the targets, see ``voice_class``; 0 = none).

    Onsets and staves are the ground truth's (its aligned notes), or, with ``decoded`` (an
    ``.npz`` of ``benchmarks/voice_pass.py``: attributes, drop, onsets, tpq), the decoder's
    (the notes it kept; those the ground truth drops have no voice)."""
    targets = prepared.targets()
    if decoded is None:
        keep = ~prepared.drop & ~targets["is_grace"]
        onsets = targets["onset_ticks"] / prepared.ticks_per_quarter
        staff = targets["staff"]
        voice = targets["voice"].astype(np.int64)
    else:
        data = np.load(decoded)
        attributes = data["attributes"]
        keep = ~data["drop"] & ~attributes["is_grace"] & ~targets["is_grace"]
        onsets = data["onsets"] / int(data["tpq"])
        staff = attributes["staff"]
        voice = np.where(prepared.drop, 0, targets["voice"]).astype(np.int64)
    chosen = np.flatnonzero(keep)
    chosen = chosen[voice_order(onsets[chosen], staff[chosen], prepared.notes["pitch"][chosen])]
    notes = prepared.notes[chosen]
    features = voice_features(notes, onsets[chosen], staff[chosen], prepared.pedal)
    return {
        "features": features,
        "pitch": notes["pitch"].astype(np.int64),
        "staff": staff[chosen].astype(np.int64),
        "voice": voice[chosen],
    }


def voice_class(voice: np.ndarray) -> np.ndarray:
    """(n,) classes 0-3 of notated voices (MusicXML numbers, part * 100 + voice in the
    targets): the voice within its staff, as the score tokens fold it (5-8 → 1-4);
    ``IGNORE_INDEX`` for 0 (no voice)."""
    folded = (np.maximum(voice.astype(np.int64) % 100, 1) - 1) % 4
    return np.where(voice > 0, folded, IGNORE_INDEX)


def collate_voices(examples: list[dict[str, np.ndarray]], window: int) -> dict:
    """A batch (see the module docstring) of ``piece_examples``-like windows, padded to
    ``window`` notes."""
    size = len(examples), window
    features = np.zeros((*size, N_FEATURES), dtype=np.float32)
    pitch = np.zeros(size, dtype=np.int64)
    staff = np.zeros(size, dtype=np.int64)
    target = np.full(size, IGNORE_INDEX, dtype=np.int64)
    padding = np.ones(size, dtype=bool)
    for row, e in enumerate(examples):
        n = min(len(e["pitch"]), window)
        features[row, :n] = e["features"][:n]
        pitch[row, :n] = e["pitch"][:n]
        staff[row, :n] = np.clip(e["staff"][:n], 0, 2)
        target[row, :n] = voice_class(e["voice"][:n])
        padding[row, :n] = False
    return {
        "features": torch.from_numpy(features),
        "pitch": torch.from_numpy(pitch),
        "staff": torch.from_numpy(staff),
        "padding": torch.from_numpy(padding),
        "targets": {"voice": torch.from_numpy(target)},
    }


class VoiceData:
    """Voice-pass windows of one split of the prepared cache (``[data] prepared``)."""

    def __init__(self, config: RunConfig, split: str = "train"):
        self.config = config
        self.window = config.voices.window
        cache = Path(config.data.prepared)
        decoded = Path(config.data.decoded) / split if config.data.decoded else None
        self.share = (
            0.0 if decoded is None else 1.0 if split != "train" else config.data.decoded_share
        )
        self.sources: list[list[dict[str, np.ndarray]]] = [[], []]  # ground truth, decoded
        for row in load_index(cache, split, required=True):
            prepared = load_prepared(cache, row["perf_id"])
            if self.share < 1:
                self.sources[0].append(piece_examples(prepared))
            if decoded is not None:
                path = decoded / f"{row['perf_id']}.npz"
                if not path.is_file():
                    raise Perf2ScoreError(f"{path}: no cached decoding (benchmarks/voice_pass.py)")
                self.sources[1].append(piece_examples(prepared, path))
        self.weights = []
        for items in self.sources:
            sizes = np.array([len(item["pitch"]) for item in items], dtype=np.float64)
            self.weights.append(sizes / max(sizes.sum(), 1.0))

    def example(self, rng: np.random.Generator, augment: bool = True) -> dict[str, np.ndarray]:
        source = int(rng.random() < self.share)
        items = self.sources[source]
        item = items[rng.choice(len(items), p=self.weights[source])]
        n = len(item["pitch"])
        start = int(rng.integers(0, n - self.window + 1)) if n > self.window else 0
        part = {k: v[start : start + self.window].copy() for k, v in item.items()}
        if augment:
            shift = int(rng.integers(-6, 7))
            part["pitch"] = np.clip(part["pitch"] + shift, 0, 127)
            part["features"][:, PITCH_COLUMN] = part["pitch"] / 64.0 - 1.0
        return part

    def collate(self, examples: list[dict[str, np.ndarray]]) -> dict:
        return collate_voices(examples, self.window)

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict:
        """A training batch of ``batch_size`` augmented windows."""
        return self.collate([self.example(rng) for _ in range(batch_size)])

    def validation(self, batch_size: int) -> list[dict]:
        """The fixed validation batches (the same windows in every run)."""
        rng = np.random.default_rng(VALIDATION_SEED)
        count = self.config.data.validation_windows
        examples = [self.example(rng, augment=False) for _ in range(count)]
        return [self.collate(examples[i : i + batch_size]) for i in range(0, count, batch_size)]
