"""Which notes show an accidental: the engraver's rule for the written page.

A note's ``<alter>`` says what sounds; what a reader sees is its ``<accidental>``, and an
engraver that reads MusicXML (verovio, which draws our SVG, PNG, PDF and MEI) draws only
the accidentals the file names. The rule is common practice (and MuseScore's): within one
measure and one staff, an accidental holds for the rest of the measure on its line (step
and octave), in every voice of the staff; a line not yet touched in the measure has the key
signature's alteration. A note shows an accidental when its alteration differs from what
holds on its line, or when another note of the staff sounding at the same time puts another
alteration on the same line. A note tied from before (across the bar line, or a value split
within the measure) shows none and changes nothing: a later note of its line in the new
measure states its accidental again. Courtesy accidentals are not written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SHARPS_ORDER = "FCGDAEB"  # the key signature's sharps in order; its flats are the reverse
ACCIDENTAL_NAMES = {  # MusicXML <accidental> for an alteration in semitones
    -2: "flat-flat",
    -1: "flat",
    0: "natural",
    1: "sharp",
    2: "double-sharp",
}


@dataclass(frozen=True)
class WrittenNote:
    """One note head of a staff within one measure, as the accidental rule reads it."""

    time: float  # ticks from the measure start (a grace note: just before its chord's onset)
    step: str  # "C" … "B"
    octave: int
    alter: int  # semitones (-2 … 2)
    tied: bool = False  # continues a note tied from before: shows no accidental


def key_alterations(fifths: int) -> dict[str, int]:
    """The key signature's alteration of each step (``fifths`` > 0 sharps, < 0 flats)."""
    alters = dict.fromkeys(SHARPS_ORDER, 0)
    if fifths > 0:
        for step in SHARPS_ORDER[: min(fifths, 7)]:
            alters[step] = 1
    else:
        for step in SHARPS_ORDER[::-1][: min(-fifths, 7)]:
            alters[step] = -1
    return alters


def shown_accidentals(notes: Sequence[WrittenNote], fifths: int) -> list[str | None]:
    """The ``<accidental>`` (``ACCIDENTAL_NAMES``) each of ``notes`` shows, or None, for the
    notes of one staff in one measure (any order, any voices) under key ``fifths``."""
    key = key_alterations(fifths)
    held: dict[tuple[str, int], int] = {}  # line -> the alteration an accidental set
    shown: list[str | None] = [None] * len(notes)
    order = sorted(range(len(notes)), key=lambda i: notes[i].time)
    start = 0
    while start < len(order):  # the notes sounding at one time together
        end = start
        while end < len(order) and notes[order[end]].time == notes[order[start]].time:
            end += 1
        moment = [order[i] for i in range(start, end)]
        struck = [i for i in moment if not notes[i].tied]
        on_line: dict[tuple[str, int], set[int]] = {}
        for i in struck:
            on_line.setdefault((notes[i].step, notes[i].octave), set()).add(notes[i].alter)
        for i in struck:
            line = (notes[i].step, notes[i].octave)
            before = held.get(line, key[notes[i].step])
            if notes[i].alter != before or len(on_line[line]) > 1:
                shown[i] = ACCIDENTAL_NAMES.get(notes[i].alter)
        for i in struck:
            held[(notes[i].step, notes[i].octave)] = notes[i].alter
        start = end
    return shown
