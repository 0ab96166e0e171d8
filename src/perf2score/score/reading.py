"""Read a MusicXML score into an exact note table.

Times are integer ticks at ``ticks_per_quarter`` (the least common multiple of the parts'
MusicXML divisions), so every onset and duration is an exact fraction of a quarter note.
Tied notes are merged into one note (onset of the first, offset of the last), as partitura's
``note_array`` does. Grace notes are kept with zero duration and ``is_grace`` set.

Hands: the staves of all parts are numbered from the top (a part's staves after those of
the parts above it), and the main grand staff is the pair of adjacent staves holding the
most notes; its upper staff and every staff above it are the right hand (0), its lower staff
and every staff below it the left hand (1) (``staff_hands``). So an ossia pair above the
music (Liszt's sixth Hungarian Rhapsody), a third staff written as a second part above the
grand staff (Ravel's *Ondine*) or below it (Scriabin's fifth Sonata) take the hand of the
music they sit beside, not of their part's index.
Voices are made unique across parts and staves: ``voice = part * 100 + musicxml_voice``.
"""

from __future__ import annotations

import math
import os
import warnings
from bisect import bisect_right
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from perf2score.errors import Perf2ScoreError
from perf2score.score.attributes import SCORE_NOTE_DTYPE, key_mode_code

if TYPE_CHECKING:  # partitura takes about a second to import: only where a score is read
    import partitura as pt


@dataclass
class ScoreNotes:
    """A score as flat, exact tables.

    Attributes:
        notes: (N,) ``SCORE_NOTE_DTYPE`` rows sorted by (onset_ticks, pitch).
        ticks_per_quarter: ticks in one quarter note.
        measure_starts: (M,) tick where each measure starts (first part's measures).
        time_signatures: list of (tick, numerator, denominator).
        key_signatures: list of (tick, fifths, mode) with ``KEY_MODES`` integer modes.
        source: the file it came from.
    """

    notes: np.ndarray
    ticks_per_quarter: int
    measure_starts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    time_signatures: list[tuple[int, int, int]] = field(default_factory=list)
    key_signatures: list[tuple[int, int, int]] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.notes)

    def onsets_quarters(self) -> list[Fraction]:
        """Exact onsets in quarter notes."""
        tpq = self.ticks_per_quarter
        return [Fraction(int(t), tpq) for t in self.notes["onset_ticks"]]

    def rescaled(self, ticks_per_quarter: int) -> ScoreNotes:
        """The same score at a finer tick resolution (a multiple of the current one)."""
        if ticks_per_quarter % self.ticks_per_quarter:
            raise ValueError("the new resolution must be a multiple of the old one")
        factor = ticks_per_quarter // self.ticks_per_quarter
        notes = self.notes.copy()
        notes["onset_ticks"] *= factor
        notes["offset_ticks"] *= factor
        return ScoreNotes(
            notes=notes,
            ticks_per_quarter=ticks_per_quarter,
            measure_starts=self.measure_starts * factor,
            time_signatures=[(t * factor, n, d) for t, n, d in self.time_signatures],
            key_signatures=[(t * factor, f, m) for t, f, m in self.key_signatures],
            source=self.source,
        )


def load_musicxml(path: str | os.PathLike) -> pt.score.Score:
    """Load a MusicXML file with partitura, turning its failures into ``Perf2ScoreError``."""
    import partitura as pt

    path = Path(path)
    if not path.is_file():
        raise Perf2ScoreError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = pt.load_musicxml(str(path))
    except Exception as exc:  # partitura raises many kinds on malformed files
        raise Perf2ScoreError(
            f"{path}: cannot read MusicXML ({type(exc).__name__}: {exc})"
        ) from exc
    if not score.parts:
        raise Perf2ScoreError(f"{path}: the score has no parts")
    return score


class _TickMap:
    """Exact map from a part's division times to integer ticks at a common resolution.

    partitura stores a part's divisions as a step function (``_quarter_times``,
    ``_quarter_durations``); mixed divisions inside one part are handled here exactly
    (partitura's own ``note_array`` refuses them).
    """

    def __init__(self, part: pt.score.Part):
        self.times = [int(t) for t in part._quarter_times]  # noqa: SLF001
        self.divs = [max(int(d), 1) for d in part._quarter_durations]  # noqa: SLF001
        starts = [Fraction(0)]
        for k in range(1, len(self.times)):
            span = self.times[k] - self.times[k - 1]
            starts.append(starts[-1] + Fraction(span, self.divs[k - 1]))
        self.quarter_starts = starts

    def quarters(self, t: int) -> Fraction:
        k = max(bisect_right(self.times, t) - 1, 0)
        return self.quarter_starts[k] + Fraction(t - self.times[k], self.divs[k])


def global_staves(parts: list[pt.score.Part]) -> list[int]:
    """Per part, how many staves of the parts above it there are (partitura's
    ``number_of_staves``): a note's staff numbered from the top across all ``parts`` is its
    own (1 where unset) plus its part's entry."""
    above, out = 0, []
    for part in parts:
        out.append(above)
        above += part.number_of_staves
    return out


def staff_hands(staves: np.ndarray) -> np.ndarray:
    """(N,) hand (0 right, 1 left) of notes on ``staves`` (N,) (numbered from the top across
    all parts, ``global_staves``): 0 above the lower staff of the main grand staff (the pair
    of adjacent staves holding the most notes), 1 from it down; all 0 on a single staff."""
    staves = np.asarray(staves, dtype=np.int64)
    if len(staves) == 0:
        return np.zeros(0, np.int8)
    counts = np.bincount(staves, minlength=int(staves.max()) + 2)
    used = np.flatnonzero(counts)
    if len(used) == 1:
        return np.zeros(len(staves), np.int8)
    pairs = counts[1:-1] + counts[2:]  # the pair (s, s + 1) at index s - 1
    lower = int(np.argmax(pairs)) + 2  # the first of the fullest pairs: its lower staff
    return (staves >= lower).astype(np.int8)


def score_notes_from_part(parts: list[pt.score.Part], source: str = "") -> ScoreNotes:
    """Build a ``ScoreNotes`` from one or more partitura parts (one piano in all)."""
    import partitura as pt

    maps = [_TickMap(p) for p in parts]
    tpq = math.lcm(*[d for m in maps for d in m.divs])
    above = global_staves(parts)
    rows = []
    for index, (part, tick_map) in enumerate(zip(parts, maps, strict=True)):
        for note in part.notes_tied:
            onset = tick_map.quarters(note.start.t)
            offset = tick_map.quarters(note.end_tied.t)
            staff = max(int(note.staff or 1), 1) + above[index]
            rows.append(
                (
                    int(note.midi_pitch),
                    int(onset * tpq),
                    int(offset * tpq),
                    index * 100 + int(note.voice or 1),
                    0,  # the hand: staff_hands below, once every staff is known
                    staff,
                    isinstance(note, pt.score.GraceNote),
                    note.step,
                    int(note.alter or 0),
                    int(note.octave),
                    index,
                    str(note.id),
                )
            )
    notes = np.array(rows, dtype=SCORE_NOTE_DTYPE)
    notes["hand"] = staff_hands(notes["staff"])
    notes = notes[np.lexsort((notes["offset_ticks"], notes["pitch"], notes["onset_ticks"]))]

    first, first_map = parts[0], maps[0]

    def ticks(t: int) -> int:
        return int(first_map.quarters(t) * tpq)

    measure_starts = np.array([ticks(m.start.t) for m in first.measures], dtype=np.int64)
    time_signatures = [
        (ticks(ts.start.t), int(ts.beats), int(ts.beat_type))
        for ts in first.iter_all(pt.score.TimeSignature)
    ]
    key_signatures = [
        (ticks(ks.start.t), int(ks.fifths), key_mode_code(ks.mode))
        for ks in first.iter_all(pt.score.KeySignature)
    ]
    return ScoreNotes(notes, tpq, measure_starts, time_signatures, key_signatures, source)


def read_score(path: str | os.PathLike, unfold: bool = False) -> ScoreNotes:
    """Read a MusicXML file into ``ScoreNotes``: as notated (repeats not unfolded), or with
    ``unfold`` as played (partitura's ``unfold_part_maximal``: every repeat taken, a first
    ending skipped on the way back).

    Raises:
        Perf2ScoreError: unreadable file, or a score partitura cannot flatten exactly.
    """
    score = load_musicxml(path)
    parts = list(score.parts)
    if unfold:
        import partitura as pt

        with warnings.catch_warnings():  # it warns of tuplet references it re-links
            warnings.simplefilter("ignore")
            parts = [pt.score.unfold_part_maximal(part) for part in parts]
    try:
        result = score_notes_from_part(parts, source=str(path))
    except Perf2ScoreError as exc:
        raise Perf2ScoreError(f"{path}: {exc}") from exc
    if len(result) == 0:
        raise Perf2ScoreError(f"{path}: the score has no notes")
    return result
