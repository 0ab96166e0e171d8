"""Read a performance MIDI into a typed, sorted note list plus sustain-pedal intervals.

symusic parses the file (fast, and unlike partitura's MIDI reader it keeps every note of
overlapping same-pitch pairs). All non-drum tracks are merged; notes are sorted by
(onset, pitch, offset); times are in seconds, with tempo changes applied.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import symusic

from perf2score.errors import Perf2ScoreError

SUSTAIN_CC = 64
PEDAL_DOWN_THRESHOLD = 64  # MIDI CC 64 values >= 64 mean "pedal down"

# Structured array layout of a performance's notes (one row per note).
NOTE_DTYPE = np.dtype(
    [
        ("pitch", np.int16),
        ("onset_sec", np.float64),
        ("offset_sec", np.float64),
        ("velocity", np.int16),
        ("track", np.int16),
        ("channel", np.int16),
    ]
)


@dataclass(frozen=True)
class PerformanceNote:
    """One performed note. Times in seconds from the start of the file."""

    pitch: int
    onset_sec: float
    offset_sec: float
    velocity: int
    track: int
    channel: int


@dataclass
class Performance:
    """A performance: notes (structured array, ``NOTE_DTYPE``) and sustain-pedal intervals.

    ``notes`` has shape (N,) sorted by (onset_sec, pitch, offset_sec); ``pedal`` has shape
    (P, 2) with [down_sec, up_sec] rows, sorted and non-overlapping.
    """

    notes: np.ndarray
    pedal: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.notes)

    def __iter__(self):
        for row in self.notes:
            yield PerformanceNote(
                int(row["pitch"]),
                float(row["onset_sec"]),
                float(row["offset_sec"]),
                int(row["velocity"]),
                int(row["track"]),
                int(row["channel"]),
            )

    @property
    def duration_sec(self) -> float:
        """Time of the last note offset (0 for an empty performance)."""
        return float(self.notes["offset_sec"].max()) if len(self.notes) else 0.0


def _pedal_intervals(track: symusic.core.TrackSecond, end_sec: float) -> list[tuple[float, float]]:
    """Sustain-pedal [down, up] intervals of one track from its CC 64 events."""
    intervals: list[tuple[float, float]] = []
    down_at: float | None = None
    controls = sorted((c for c in track.controls if c.number == SUSTAIN_CC), key=lambda c: c.time)
    for control in controls:
        is_down = control.value >= PEDAL_DOWN_THRESHOLD
        if is_down and down_at is None:
            down_at = float(control.time)
        elif not is_down and down_at is not None:
            intervals.append((down_at, float(control.time)))
            down_at = None
    if down_at is not None:
        intervals.append((down_at, max(end_sec, down_at)))
    return intervals


def _merge_intervals(intervals: list[tuple[float, float]]) -> np.ndarray:
    """Union of possibly overlapping intervals as a sorted (K, 2) array."""
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return np.asarray(merged, dtype=np.float64).reshape(-1, 2)


def read_performance(path: str | os.PathLike) -> Performance:
    """Read a performance MIDI file.

    Raises:
        Perf2ScoreError: the file is missing, empty, not a MIDI file, or has no
            (non-drum) notes.
    """
    path = Path(path)
    if not path.is_file():
        raise Perf2ScoreError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise Perf2ScoreError(f"{path}: the file is empty")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != b"MThd":
        raise Perf2ScoreError(f"{path}: not a MIDI file (no 'MThd' header)")
    try:
        score = symusic.Score(str(path), ttype="second")
    except Exception as exc:  # symusic raises plain RuntimeError/ValueError on corrupt data
        raise Perf2ScoreError(f"{path}: cannot parse MIDI ({exc})") from exc

    rows = []
    intervals: list[tuple[float, float]] = []
    for track_index, track in enumerate(score.tracks):
        if track.is_drum:
            continue
        arrays = track.notes.numpy()
        count = len(arrays["pitch"])
        if count:
            block = np.empty(count, dtype=NOTE_DTYPE)
            block["pitch"] = arrays["pitch"]
            block["onset_sec"] = arrays["time"]
            block["offset_sec"] = arrays["time"] + np.maximum(arrays["duration"], 0.0)
            block["velocity"] = arrays["velocity"]
            block["track"] = track_index
            block["channel"] = getattr(track, "channel", 0)
            rows.append(block)
        intervals.extend(_pedal_intervals(track, float(score.end())))
    if not rows:
        raise Perf2ScoreError(f"{path}: the MIDI file has no (non-drum) notes")
    notes = np.concatenate(rows)
    notes = notes[np.lexsort((notes["offset_sec"], notes["pitch"], notes["onset_sec"]))]
    return Performance(notes=notes, pedal=_merge_intervals(intervals), source=str(path))
