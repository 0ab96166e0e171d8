"""Performance notes ↔ performance tokens (see ``spec.PERFORMANCE_STREAMS``).

Times are bucketed on log scales (fine resolution where expressive timing lives), velocity
linearly. Decoding returns each bucket's geometric centre, so a round trip keeps every time
within one bucket (a ratio of about 1.14 for IOIs, 1.16 for durations).
"""

from __future__ import annotations

import numpy as np

from perf2score.midi.reading import NOTE_DTYPE, Performance
from perf2score.tokens.spec import FIRST_VALUE, STREAMS

LOWEST_KEY = 21
IOI_EDGES = np.geomspace(0.001, 4.0, STREAMS["ioi"].values)  # bucket 0: below 1 ms
DURATION_EDGES = np.geomspace(0.01, 8.0, STREAMS["duration"].values + 1)
VELOCITY_STEP = 128 // STREAMS["velocity"].values


def _bucket(values: np.ndarray, edges: np.ndarray, count: int) -> np.ndarray:
    """Bucket index in 0..count-1 (values below the first edge -> 0, beyond -> count-1)."""
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, count - 1)


def pitch_ids(pitches: np.ndarray) -> np.ndarray:
    """Pitch-stream ids (N,) int64 of MIDI pitches (N,): keys outside the piano's range are
    clamped to its ends. The score LM reads the same ids for the note it predicts."""
    keys = STREAMS["pitch"].values
    return np.clip(pitches.astype(np.int64) - LOWEST_KEY, 0, keys - 1) + FIRST_VALUE


def pedal_extended_offsets(performance: Performance) -> np.ndarray:
    """(N,) offsets in seconds, held on while the sustain pedal is down at the release."""
    offsets = performance.notes["offset_sec"].copy()
    for down, up in performance.pedal:
        held = (offsets >= down) & (offsets < up)
        offsets[held] = up
    return offsets


def encode_performance(performance: Performance) -> dict[str, np.ndarray]:
    """Token ids per stream, each (N,) int64, for the notes in their stored order."""
    notes = performance.notes
    onsets = notes["onset_sec"]
    ioi = np.diff(onsets, prepend=onsets[:1] if len(onsets) else onsets)
    ioi_ids = np.where(ioi < IOI_EDGES[0], 0, _bucket(ioi, IOI_EDGES, len(IOI_EDGES)) + 1)
    ioi_ids = np.minimum(ioi_ids, STREAMS["ioi"].values - 1)
    duration = notes["offset_sec"] - onsets
    pedal = pedal_extended_offsets(performance) - onsets
    return {
        "pitch": pitch_ids(notes["pitch"]),
        "ioi": ioi_ids.astype(np.int64) + FIRST_VALUE,
        "duration": _bucket(duration, DURATION_EDGES, STREAMS["duration"].values).astype(np.int64)
        + FIRST_VALUE,
        "pedal_duration": _bucket(pedal, DURATION_EDGES, STREAMS["pedal_duration"].values).astype(
            np.int64
        )
        + FIRST_VALUE,
        "velocity": np.clip(
            notes["velocity"].astype(np.int64) // VELOCITY_STEP, 0, STREAMS["velocity"].values - 1
        )
        + FIRST_VALUE,
    }


def _centres(edges: np.ndarray) -> np.ndarray:
    upper = np.append(edges[1:], edges[-1] * (edges[-1] / edges[-2]))
    return np.sqrt(edges * upper)


def ioi_centres() -> np.ndarray:
    """(V,) seconds each IOI value (id - ``FIRST_VALUE``) stands for: its bucket's
    geometric centre (0 for value 0, under 1 ms)."""
    return np.concatenate([[0.0], _centres(IOI_EDGES)])[: STREAMS["ioi"].values]


def decode_performance(tokens: dict[str, np.ndarray]) -> Performance:
    """Notes back from tokens (times at bucket centres; pedal not reconstructed)."""
    ioi = ioi_centres()[tokens["ioi"] - FIRST_VALUE]
    onsets = np.cumsum(ioi)
    duration = _centres(DURATION_EDGES)[tokens["duration"] - FIRST_VALUE]
    notes = np.zeros(len(onsets), dtype=NOTE_DTYPE)
    notes["pitch"] = tokens["pitch"] - FIRST_VALUE + LOWEST_KEY
    notes["onset_sec"] = onsets
    notes["offset_sec"] = onsets + duration
    notes["velocity"] = (tokens["velocity"] - FIRST_VALUE) * VELOCITY_STEP + VELOCITY_STEP // 2
    return Performance(notes, np.zeros((0, 2)))
