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
from typing import NamedTuple

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


class _Option(NamedTuple):
    """A value a cut may use at one resolution: its length and its grid in ticks (the grid
    as numerator / denominator: triplet grids need not be whole ticks)."""

    value: Value
    ticks: int
    grid_num: int
    grid_den: int
    plain_half: bool


def _allowed(option: _Option, position: int, tpq: int, half_on_beats: bool) -> bool:
    """Whether ``option`` may start at ``position`` (ticks from the measure start): on a
    multiple of its grid, or a plain half note on any quarter (``half_on_beats``: the
    syncopated half of 3/4's second beat or 4/4's, in simple meters)."""
    if position * option.grid_den % option.grid_num == 0:
        return True
    return half_on_beats and option.plain_half and position % tpq == 0


def _greedy(
    start: int, length: int, tpq: int, max_dots: int, tuplets: bool, half_on_beats: bool
) -> list[Piece] | None:
    """Longest-first cut into values allowed where they start; None if it cannot finish
    (quick; a cut of one piece cannot be bettered, longer ones go to ``_fewest``)."""
    pieces: list[Piece] = []
    position, end = start, start + length
    while position < end:
        for option in _usable(tpq, max_dots, tuplets):
            if option.ticks <= end - position and _allowed(option, position, tpq, half_on_beats):
                break
        else:
            return None
        pieces.append(Piece(position, option.ticks, option.value, True))
        position += option.ticks
    return pieces


def _fewest(
    start: int, length: int, tpq: int, max_dots: int, tuplets: bool, half_on_beats: bool
) -> list[Piece] | None:
    """The cut into the fewest pieces (then the fewest dots; between equals the longer first
    piece), each a value allowed where it starts; None if none tiles the span."""
    usable = _usable(tpq, max_dots, tuplets)
    best: dict[int, tuple[tuple[int, int], list[Piece]] | None] = {start + length: ((0, 0), [])}

    def cut(position: int) -> tuple[tuple[int, int], list[Piece]] | None:
        if position in best:
            return best[position]
        found = None
        remaining = start + length - position
        for option in usable:  # longest first
            if option.ticks > remaining or not _allowed(option, position, tpq, half_on_beats):
                continue
            rest = cut(position + option.ticks)
            if rest is None:
                continue
            cost = (rest[0][0] + 1, rest[0][1] + option.value.dots)
            if found is None or cost < found[0]:
                found = (cost, [Piece(position, option.ticks, option.value, True), *rest[1]])
        best[position] = found
        return found

    answer = cut(start)  # depth: one call per piece
    return None if answer is None else answer[1]


@lru_cache(maxsize=64)
def _usable(tpq: int, max_dots: int, tuplets: bool) -> tuple[_Option, ...]:
    """The values a cut may use at ``tpq`` ticks per quarter, longest first."""
    out = []
    for v in values():
        if (tuplets or not v.tuplet) and v.dots <= max_dots and (v.quarters * tpq).denominator == 1:
            grid = v.grid * tpq
            plain_half = v.type == "half" and not v.dots and not v.tuplet
            out.append(
                _Option(v, int(v.quarters * tpq), grid.numerator, grid.denominator, plain_half)
            )
    return tuple(out)


@lru_cache(maxsize=65536)
def split_duration(
    start: int,
    length: int,
    ticks_per_quarter: int,
    max_dots: int = 2,
    half_on_beats: bool = False,
) -> tuple[Piece, ...]:
    """Cut [start, start + length) (ticks from the measure start) into notatable pieces.

    The fewest pieces, then the fewest dots (a half note on 3/4's second beat, not a
    double-dotted quarter tied to a 16th). Plain and dotted values are preferred; triplet
    values are used only when the span cannot be written without them. ``max_dots`` limits
    dots (rests take fewer than notes); ``half_on_beats`` lets a plain half note start on any
    quarter (notes in simple meters; rests show the beats). Results are cached: scores
    repeat the same spans over and over.
    """
    for tuplets in (False, True):
        options = (start, length, ticks_per_quarter, max_dots, tuplets, half_on_beats)
        pieces = _greedy(*options)
        if pieces is not None and len(pieces) > 1:  # one piece cannot be bettered
            pieces = _fewest(*options)
        if pieces is not None:
            return tuple(pieces)
    # nothing expresses the span exactly: one piece with the exact duration, closest type
    rest_q = Fraction(length, ticks_per_quarter)
    return (Piece(start, length, closest_value(rest_q), False),)
