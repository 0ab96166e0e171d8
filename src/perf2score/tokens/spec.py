"""The one table that defines every token stream (vocabulary, loss weight, ignore index).

Every note is a compound token: one integer per stream. Ids 0–2 of every stream are special
(``PAD``, ``MASK`` for masked-note modelling, ``BOS``); a stream's values start at
``FIRST_VALUE``. Embedding tables, output heads and losses are derived from ``STREAMS`` by
name, never from hand-kept sizes. Loss targets use ``IGNORE_INDEX`` where a stream does not
apply (padding, or the score attributes of a dropped note).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from perf2score.constants import GRID_PER_QUARTER

PAD, MASK, BOS = 0, 1, 2
FIRST_VALUE = 3
IGNORE_INDEX = -100
MAX_GRID = 8 * GRID_PER_QUARTER  # longest measure / note value the grid streams hold


@dataclass(frozen=True)
class Stream:
    """One stream of a compound token: ``values`` real values plus the special ids."""

    name: str
    values: int
    loss_weight: float
    description: str

    @property
    def size(self) -> int:
        """Vocabulary size including the special ids."""
        return FIRST_VALUE + self.values


PERFORMANCE_STREAMS = (
    Stream("pitch", 88, 1.0, "piano key A0..C8 (MIDI 21..108)"),
    Stream("ioi", 64, 1.0, "onset minus previous onset: 0, then log buckets 1 ms..4 s"),
    Stream("duration", 48, 1.0, "key-down time: log buckets 10 ms..8 s"),
    Stream("pedal_duration", 48, 0.5, "sounding time with the sustain pedal: same buckets"),
    Stream("velocity", 32, 0.5, "MIDI velocity in 32 linear buckets"),
)

SCORE_STREAMS = (
    Stream("bar", 5, 1.0, "measures advanced since the previous note: 0..3, 4 = backwards"),
    Stream("time_signature", 12 * 5, 0.5, "numerator 1..12 x denominator 1, 2, 4, 8, 16"),
    Stream("measure_length", MAX_GRID + 1, 0.5, "actual measure length on the 1/24 grid"),
    Stream("position", MAX_GRID, 1.0, "onset within the measure on the 1/24 grid"),
    Stream("value", MAX_GRID + 1, 1.0, "note value on the 1/24 grid (0 = grace)"),
    Stream("staff", 2, 1.0, "1 = upper, 2 = lower"),
    Stream("voice", 4, 0.5, "voice 1..4 within the staff"),
    Stream("alter", 5, 0.5, "spelling: -2..+2 semitones from the natural step"),
    Stream("key", 15, 0.5, "key signature: -7..+7 fifths"),
    Stream("grace", 2, 0.5, "grace note or not"),
    Stream("drop", 2, 1.0, "performed note absent from the score"),
)

STREAMS = {s.name: s for s in PERFORMANCE_STREAMS + SCORE_STREAMS}
DENOMINATORS = (1, 2, 4, 8, 16)


def stream(name: str) -> Stream:
    """The stream called ``name`` (KeyError with the known names otherwise)."""
    if name not in STREAMS:
        raise KeyError(f"unknown stream '{name}' (known: {', '.join(STREAMS)})")
    return STREAMS[name]


def spec_fingerprint() -> str:
    """A short hash of everything that gives token ids their meaning (special ids, the
    score grid, every stream's name and size in order): weights trained on one spec record
    it, and loading them under another spec fails with a clear message."""
    spec = {
        "special": [PAD, MASK, BOS, FIRST_VALUE],
        "grid_per_quarter": GRID_PER_QUARTER,
        "denominators": list(DENOMINATORS),
        "performance": [[s.name, s.values] for s in PERFORMANCE_STREAMS],
        "score": [[s.name, s.values] for s in SCORE_STREAMS],
    }
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
