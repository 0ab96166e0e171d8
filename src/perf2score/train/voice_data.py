"""Training examples for the voice pass: windows of ground-truth score notes in voice order.

Every aligned, timed note of a prepared performance (drops and grace notes left out) with its
score onset (quarters), staff and voice, and its played times; features from
``perf2score.neural.voice_features``, computed once per performance. Training windows are
cropped at random and transposed (±6 semitones); the validation windows are fixed.

A batch: ``features`` (B, T, F) float, ``pitch`` and ``staff`` (B, T) int64, ``padding``
(B, T) bool (True = padded), ``targets`` {"voice": (B, T) int64, 0-3, ``IGNORE_INDEX``
where unknown}.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from perf2score.data.cache import PreparedPerformance, load_index, load_prepared
from perf2score.neural.voice_features import N_FEATURES, voice_features, voice_order
from perf2score.tokens.spec import IGNORE_INDEX
from perf2score.train.config import RunConfig
from perf2score.train.datasets import VALIDATION_SEED

PITCH_COLUMN = N_FEATURES - 1  # pitch / 64 - 1


def piece_examples(prepared: PreparedPerformance) -> dict[str, np.ndarray]:
    """Voice-ordered arrays of one performance's aligned timed notes: features (n, F),
    pitch, staff, voice (n,) (the notated voice, as in the targets; see ``voice_class``)."""
    targets = prepared.targets()
    keep = ~prepared.drop & ~targets["is_grace"]
    notes, rows = prepared.notes[keep], targets[keep]
    onsets = rows["onset_ticks"] / prepared.ticks_per_quarter
    order = voice_order(onsets, rows["staff"], notes["pitch"])
    notes, rows, onsets = notes[order], rows[order], onsets[order]
    features = voice_features(
        notes["pitch"],
        onsets,
        rows["staff"],
        notes["onset_sec"],
        notes["offset_sec"],
        notes["velocity"],
        prepared.pedal,
    )
    return {
        "features": features,
        "pitch": notes["pitch"].astype(np.int64),
        "staff": rows["staff"].astype(np.int64),
        "voice": rows["voice"].astype(np.int64),
    }


def voice_class(voice: np.ndarray) -> np.ndarray:
    """(n,) classes 0-3 of notated voices (MusicXML numbers, part * 100 + voice in the
    targets): the voice within its staff, as the score tokens fold it (5-8 → 1-4)."""
    return (np.maximum(voice.astype(np.int64) % 100, 1) - 1) % 4


class VoiceData:
    """Voice-pass windows of one split of the prepared cache (``[data] prepared``)."""

    def __init__(self, config: RunConfig, split: str = "train"):
        self.config = config
        self.window = config.voices.window
        cache = Path(config.data.prepared)
        self.items = []
        for row in load_index(cache, split, required=True):
            item = piece_examples(load_prepared(cache, row["perf_id"]))
            if len(item["pitch"]):
                self.items.append(item)
        sizes = np.array([len(item["pitch"]) for item in self.items], dtype=np.float64)
        self.weights = sizes / sizes.sum()

    def example(self, rng: np.random.Generator, augment: bool = True) -> dict[str, np.ndarray]:
        item = self.items[rng.choice(len(self.items), p=self.weights)]
        n = len(item["pitch"])
        start = int(rng.integers(0, n - self.window + 1)) if n > self.window else 0
        part = {k: v[start : start + self.window].copy() for k, v in item.items()}
        if augment:
            shift = int(rng.integers(-6, 7))
            part["pitch"] = np.clip(part["pitch"] + shift, 0, 127)
            part["features"][:, PITCH_COLUMN] = part["pitch"] / 64.0 - 1.0
        return part

    def collate(self, examples: list[dict[str, np.ndarray]]) -> dict:
        size = len(examples), self.window
        features = np.zeros((*size, N_FEATURES), dtype=np.float32)
        pitch = np.zeros(size, dtype=np.int64)
        staff = np.zeros(size, dtype=np.int64)
        target = np.full(size, IGNORE_INDEX, dtype=np.int64)
        padding = np.ones(size, dtype=bool)
        for row, e in enumerate(examples):
            n = len(e["pitch"])
            features[row, :n] = e["features"]
            pitch[row, :n] = e["pitch"]
            staff[row, :n] = np.clip(e["staff"], 0, 2)
            target[row, :n] = voice_class(e["voice"])
            padding[row, :n] = False
        return {
            "features": torch.from_numpy(features),
            "pitch": torch.from_numpy(pitch),
            "staff": torch.from_numpy(staff),
            "padding": torch.from_numpy(padding),
            "targets": {"voice": torch.from_numpy(target)},
        }

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict:
        """A training batch of ``batch_size`` augmented windows."""
        return self.collate([self.example(rng) for _ in range(batch_size)])

    def validation(self, batch_size: int) -> list[dict]:
        """The fixed validation batches (the same windows in every run)."""
        rng = np.random.default_rng(VALIDATION_SEED)
        count = self.config.data.validation_windows
        examples = [self.example(rng, augment=False) for _ in range(count)]
        return [self.collate(examples[i : i + batch_size]) for i in range(0, count, batch_size)]
