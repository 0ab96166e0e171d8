"""Spelling durations as notatable note values (plain, dotted, double-dotted, triplet).

``split_duration`` cuts a span of a measure (start, length, in ticks) into pieces that each
have a written type, so that a note or rest of any length can be written as tied pieces.
A piece of value v may start only on a multiple of its grid: its smallest undotted
component for plain and dotted values (a dotted quarter on an eighth), itself for triplet
values. Spans no standard value can express (quintuplets, 1/7 quarters...) keep their
exact ``duration`` and get the closest ``type``: MusicXML stays exact, the picture is
approximate, and the caller is told (``exact=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

# written types and their length in quarters
TYPES = {
    "breve": Fraction(8),
    "whole": Fraction(4),
    "half": Fraction(2),
    "quarter": Fraction(1),
    "eighth": Fraction(1, 2),
    "16th": Fraction(1, 4),
    "32nd": Fraction(1, 8),
    "64th": Fraction(1, 16),
    "128th": Fraction(1, 32),
}


@dataclass(frozen=True)
class Value:
    """A notatable value: ``type`` with ``dots``, inside a ``tuplet`` (3:2) or not."""

    type: str
    dots: int
    tuplet: bool
    quarters: Fraction
    grid: Fraction  # it may start only on multiples of this (quarters)


@lru_cache(maxsize=1)
def values() -> tuple[Value, ...]:
    """All values from the breve to the 128th, longest first."""
    out = []
    for name, base in TYPES.items():
        if name == "breve":
            continue
        for dots in (0, 1, 2):
            length = base * (2 - Fraction(1, 2**dots))
            smallest = base / 2**dots
            if smallest >= Fraction(1, 32):
                out.append(Value(name, dots, False, length, smallest))
        triplet = base * Fraction(2, 3)
        out.append(Value(name, 0, True, triplet, triplet))
    return tuple(sorted(out, key=lambda v: (-v.quarters, v.dots, v.tuplet)))


def closest_value(quarters: Fraction) -> Value:
    """The value whose length is closest to ``quarters`` (for inexpressible spans)."""
    return min(values(), key=lambda v: (abs(v.quarters - quarters), v.dots, v.tuplet))


@dataclass(frozen=True)
class Piece:
    """One written piece of a note or rest: its start and length (ticks) and its value."""

    start: int
    length: int
    value: Value
    exact: bool


def _greedy(start: int, length: int, tpq: int, max_dots: int, tuplets: bool) -> list[Piece] | None:
    """Longest-first cut into values starting on their grid; None if it cannot finish."""
    pieces: list[Piece] = []
    position, remaining = start, length
    while remaining > 0:
        pos_q = Fraction(position, tpq)
        rem_q = Fraction(remaining, tpq)
        choice = None
        for value in values():
            if (
                (tuplets or not value.tuplet)
                and value.dots <= max_dots
                and value.quarters <= rem_q
                and (pos_q / value.grid).denominator == 1
                and (value.quarters * tpq).denominator == 1
            ):
                choice = value
                break
        if choice is None:
            return None
        ticks = int(choice.quarters * tpq)
        pieces.append(Piece(position, ticks, choice, True))
        position += ticks
        remaining -= ticks
    return pieces


@lru_cache(maxsize=65536)
def split_duration(
    start: int, length: int, ticks_per_quarter: int, max_dots: int = 2
) -> tuple[Piece, ...]:
    """Cut [start, start + length) (ticks from the measure start) into notatable pieces.

    Plain and dotted values are preferred; triplet values are used only when the span
    cannot be written without them. ``max_dots`` limits dots (rests take fewer than notes).
    Results are cached: scores repeat the same spans over and over.
    """
    for tuplets in (False, True):
        pieces = _greedy(start, length, ticks_per_quarter, max_dots, tuplets)
        if pieces is not None:
            return tuple(pieces)
    # nothing expresses the span exactly: one piece with the exact duration, closest type
    rest_q = Fraction(length, ticks_per_quarter)
    return (Piece(start, length, closest_value(rest_q), False),)
