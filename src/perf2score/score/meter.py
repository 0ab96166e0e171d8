"""Metrical structure implied by a time signature."""

from __future__ import annotations

from fractions import Fraction


def is_compound(numerator: int) -> bool:
    """6/8, 9/8, 12/8, 6/4, ...: beats are dotted (three sub-beats each)."""
    return numerator % 3 == 0 and numerator > 3


def meter_levels(numerator: int, denominator: int) -> tuple[int, int, Fraction]:
    """(beats per bar, sub-beats per beat, sub-beat length in quarters).

    Simple meters: one beat per denominator unit, split in two. Compound meters: a beat is
    three denominator units. ASAP's beat annotations count beats the same way.
    """
    unit = Fraction(4, denominator)
    if is_compound(numerator):
        return numerator // 3, 3, unit
    return numerator, 2, unit / 2


def beat_quarters(numerator: int, denominator: int) -> Fraction:
    """The beat of a time signature in quarters (3/4: 1, 6/8: 3/2, 2/2: 2)."""
    _, sub_beats, sub_beat = meter_levels(numerator, denominator)
    return sub_beats * sub_beat
