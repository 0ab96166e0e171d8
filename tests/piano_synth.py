"""A piano-like additive synthesiser for the audio tests: known notes → samples.

Each note is eight slightly inharmonic partials (amplitudes 0.6^k) with a 5 ms attack, an
exponential decay, and a fast release at its offset, as a struck and damped string sounds.
"""

from __future__ import annotations

import numpy as np


def known_notes(count: int = 24, seed: int = 0) -> list[tuple[float, float, int]]:
    """(onset s, offset s, MIDI pitch) of a seeded melody over C3-B5 with some octaves."""
    rng = np.random.default_rng(seed)
    notes, time = [], 0.3
    for k in range(count):
        pitch = int(rng.integers(48, 84))
        length = float(rng.choice([0.25, 0.4, 0.6]))
        notes.append((time, time + length, pitch))
        if k % 4 == 0:
            notes.append((time, time + length, pitch - 12))
        time += length * 0.9
    return notes


def render(notes: list[tuple[float, float, int]], sample_rate: int = 44100) -> np.ndarray:
    """Samples, shape (frames, 1), float32, of ``notes`` followed by a second of silence."""
    end = max(off for _, off, _ in notes) + 1.0
    out = np.zeros(int(end * sample_rate), np.float32)
    for onset, offset, pitch in notes:
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        held = offset - onset
        t = np.arange(int((held + 0.3) * sample_rate)) / sample_rate
        envelope = np.exp(-3 * t) * np.minimum(1, t / 0.005)
        envelope *= np.where(t < held, 1.0, np.exp(-(t - held) * 20))
        tone = sum(
            0.6**k * np.sin(2 * np.pi * f0 * (k + 1) * t * (1 + 0.0004 * k * k))
            for k in range(8)
            if f0 * (k + 1) < sample_rate / 2
        )
        start = int(onset * sample_rate)
        piece = (0.2 * envelope * tone).astype(np.float32)[: len(out) - start]
        out[start : start + len(piece)] += piece
    return out[:, None]
