"""Write an ``AssembledScore`` as MusicXML 4.0 (one piano part, two staves).

Per measure and per voice, chords are cut at bar lines (tied), gaps are filled with rests,
and every note or rest is spelled as notatable values (``notation.split_duration``), tied
within the measure where one value is not enough; triplet values get ``time-modification``
and tuplet brackets; grace notes precede their chord. Accidentals are written where a
reader needs them (``perf2score.score.accidentals``): engravers draw only those named.
Voices 1–4 are on staff 1, 5–8 on staff 2 (MusicXML convention). Clefs follow the register:
a staff switches between treble and bass when a measure's median pitch crosses a threshold
(with hysteresis), and within a measure where that saves ledger lines. The first
measure carries the tempo from the performance; a short first measure is a pickup
(``implicit="yes"``, number 0).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from perf2score.score.accidentals import WrittenNote, shown_accidentals
from perf2score.score.assembly import AssembledScore, Chord, Measure, nominal_length
from perf2score.score.meter import beat_quarters, is_compound
from perf2score.score.notation import Piece, Value, split_duration

DOCTYPE = (
    '<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 4.0 Partwise//EN" '
    '"http://www.musicxml.org/dtds/partwise.dtd">'
)
TREBLE_BELOW = 56  # a treble-clef staff turns bass when its measure median falls below
BASS_ABOVE = 67  # a bass-clef staff turns treble when its measure median rises above
LOWEST_IN_TREBLE = 52  # ... and no note of the measure lies below E3
CLEF_CHANGE_LINES = 8  # ledger lines a clef change within a measure must save
# each clef's lowest and highest staff line in diatonic steps from C0: treble E4–F5, bass
# G2–A3, alto F3–G4
STAFF_LINES = {"G": (30, 38), "F": (18, 26), "C": (24, 32)}


@dataclass
class _Event:
    start: int  # ticks from the measure start
    length: int
    chord: Chord | None  # None = rest
    tie_stop: bool = False
    tie_start: bool = False


def _segments(score: AssembledScore) -> dict[tuple[int, int, int], list[_Event]]:
    """(measure index, staff, voice) -> events of that voice in that measure."""
    starts = [m.start for m in score.measures]
    out: dict[tuple[int, int, int], list[_Event]] = defaultdict(list)
    for chord in score.chords:
        onset, end = chord.onset, chord.onset + chord.duration
        k = bisect.bisect_right(starts, onset) - 1
        first = True
        while onset < end and k < len(score.measures):
            m = score.measures[k]
            stop = min(end, m.start + m.length)
            out[(k, chord.staff, chord.voice)].append(
                _Event(
                    onset - m.start, stop - onset, chord, tie_stop=not first, tie_start=stop < end
                )
            )
            first = False
            onset = stop
            k += 1
    return out


def _fill_rests(events: list[_Event], length: int) -> list[_Event]:
    events = sorted(events, key=lambda e: e.start)
    filled, position = [], 0
    for event in events:
        if event.start > position:
            filled.append(_Event(position, event.start - position, None))
        filled.append(event)
        position = max(position, event.start + event.length)
    if position < length:
        filled.append(_Event(position, length - position, None))
    return filled


@dataclass
class _ClefPlan:
    """One measure's clefs: each staff's at the start and at the end, and changes within."""

    start: dict[int, str]
    end: dict[int, str]
    changes: dict[int, list[tuple[int, str]]]  # staff -> [(ticks from the start, clef)]


def _next_clef(current: str, pitches: list[int]) -> str:
    """The clef after notes ``pitches`` (MIDI) on a staff now in ``current`` ('G' or 'F'):
    treble turns bass when their median falls below ``TREBLE_BELOW``; bass turns treble
    when it rises above ``BASS_ABOVE`` and no note lies below ``LOWEST_IN_TREBLE``."""
    if not pitches:
        return current
    median = float(np.median(pitches))
    if current == "G" and median < TREBLE_BELOW:
        return "F"
    if current == "F" and median > BASS_ABOVE and min(pitches) >= LOWEST_IN_TREBLE:
        return "G"
    return current


def ledger_lines(step: str, octave: int, clef: str) -> int:
    """Ledger lines a note written ``step`` ``octave`` needs under ``clef`` ('G', 'F', 'C')."""
    place = octave * 7 + "CDEFGAB".index(step)  # diatonic steps from C0
    bottom, top = STAFF_LINES[clef]
    return (place - top) // 2 if place > top else ((bottom - place) // 2 if place < bottom else 0)


def _ledger_lines(pitch: tuple[int, str, int, int], clef: str) -> int:
    """``ledger_lines`` of a chord's pitch (MIDI pitch, step, alter, octave)."""
    return ledger_lines(pitch[1], pitch[3], clef)


def _clef_path(
    clef: str, times: np.ndarray, lines: dict[str, np.ndarray], points: list[int]
) -> list[tuple[int, str]]:
    """The clef changes (ticks, clef) within a measure that open in ``clef``: at some of
    ``points`` (where the staff's first voice begins a note or rest), each change paying
    ``CLEF_CHANGE_LINES``, fewest ledger lines in all (``lines[c]``: each note's under clef
    c, notes at ``times``). A dynamic programme over the stretches between the points."""
    bounds = [0, *points]
    stretch = np.searchsorted(np.asarray(points, dtype=np.int64), times, side="right")
    cost = {c: np.bincount(stretch, weights=lines[c], minlength=len(bounds)) for c in "GF"}
    best = {c: (cost[c][0] if c == clef else np.inf) for c in "GF"}
    came: list[dict[str, str]] = []
    for i in range(1, len(bounds)):
        step = {}
        for c in "GF":
            o = "F" if c == "G" else "G"
            stay, turn = best[c], best[o] + CLEF_CHANGE_LINES
            step[c] = (c, stay) if stay <= turn else (o, turn)
        came.append({c: step[c][0] for c in "GF"})
        best = {c: step[c][1] + cost[c][i] for c in "GF"}
    at = min("GF", key=lambda c: (best[c], c != clef))
    path = [at]
    for back in reversed(came):
        path.append(back[path[-1]])
    path.reverse()  # the clef of each stretch
    return [(bounds[i], path[i]) for i in range(1, len(path)) if path[i] != path[i - 1]]


def _clefs(score: AssembledScore) -> list[_ClefPlan]:
    """Per measure, the clef of each staff ('G' or 'F'), following the register: decided on
    the whole measure (``_next_clef``), then changed within the measure where the staff's
    first voice begins a note or rest when each change saves at least ``CLEF_CHANGE_LINES``
    ledger lines (``_clef_path``)."""
    starts = [m.start for m in score.measures]
    notes: dict[tuple[int, int], list[tuple[int, tuple]]] = defaultdict(list)
    first_voice: dict[tuple[int, int], set[int]] = defaultdict(set)
    for chord in score.chords:
        k = bisect.bisect_right(starts, chord.onset) - 1
        offset = chord.onset - starts[k]
        notes[(k, chord.staff)].extend((offset, pitch) for pitch in chord.pitches)
        if chord.voice == 1:  # where the first voice's notes and rests begin
            first_voice[(k, chord.staff)].update((offset, offset + chord.duration))
    current = {1: "G", 2: "F"}
    plans = []
    for k, measure in enumerate(score.measures):
        start, changes = {}, {}
        for staff in (1, 2):
            here = notes[(k, staff)]
            start[staff] = current[staff] = _next_clef(current[staff], [p[0] for _, p in here])
            points = sorted(t for t in first_voice[(k, staff)] if 0 < t < measure.length)
            kept = [_ledger_lines(p, start[staff]) for _, p in here]
            if not points or sum(kept) < CLEF_CHANGE_LINES:  # no change could pay
                continue
            other = "F" if start[staff] == "G" else "G"
            times = np.array([t for t, _ in here], dtype=np.int64)
            lines = {
                start[staff]: np.array(kept, float),
                other: np.array([_ledger_lines(p, other) for _, p in here], float),
            }
            path = _clef_path(start[staff], times, lines, points)
            if path:
                changes[staff] = path
                current[staff] = path[-1][1]
        plans.append(_ClefPlan(start, dict(current), changes))
    return plans


TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
ATTRIBUTE_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\r": "&#13;",
        "\n": "&#10;",
        "\t": "&#09;",
    }
)


class XmlWriter:
    """MusicXML text written in document order: each element on its own line, indented by
    two spaces per level, text elements as ``<tag>text</tag>``, empty ones as ``<tag/>`` (as
    MuseScore and partitura write them; the 2022 reference MUSTER tool recognises no other
    form): the text ``ET.indent`` + ``ET.tostring`` give for the same tree, without building
    one (building and serialising an ElementTree took 0.22 s for a 5,000-note score, this
    writer 0.07 s: ``benchmarks/musicxml_speed.py``)."""

    def __init__(self, space: str = "  "):
        self.parts: list[str] = []
        self.pads = ["\n" + space * level for level in range(64)]
        self.stack: list[tuple[str, int]] = []  # open elements: (tag, index of their head)

    def _head(self, tag: str, attrib: dict) -> str:
        if not attrib:
            return tag
        return tag + "".join(
            f' {key.replace("_", "-")}="{str(value).translate(ATTRIBUTE_ESCAPES)}"'
            for key, value in attrib.items()
        )

    def open(self, tag: str, **attrib) -> None:
        """Start an element whose children follow (``close`` ends it)."""
        head = self._head(tag, attrib)
        if self.stack:
            self.parts.append(self.pads[len(self.stack)])
        self.stack.append((tag, len(self.parts)))
        self.parts.append(f"<{head}>")

    def close(self) -> None:
        """End the innermost open element (written ``<tag/>`` when nothing was put in it)."""
        tag, index = self.stack.pop()
        if index == len(self.parts) - 1:
            self.parts[index] = self.parts[index][:-1] + "/>"
        else:
            self.parts.append(f"{self.pads[len(self.stack)]}</{tag}>")

    def leaf(self, tag: str, text: str | int | None = None, **attrib) -> None:
        """An element without children, with ``text`` (none: written ``<tag/>``)."""
        head = self._head(tag, attrib) if attrib else tag
        if self.stack:
            self.parts.append(self.pads[len(self.stack)])
        if text is None or text == "":
            self.parts.append(f"<{head}/>")
        elif isinstance(text, int):
            self.parts.append(f"<{head}>{text}</{tag}>")
        else:
            self.parts.append(f"<{head}>{str(text).translate(TEXT_ESCAPES)}</{tag}>")

    def text(self) -> str:
        """The document written so far (every element closed)."""
        if self.stack:
            raise ValueError(f"<{self.stack[-1][0]}> is still open")
        return "".join(self.parts)


def _pitch(w: XmlWriter, pitch: tuple[int, str, int, int]) -> None:
    w.open("pitch")
    w.leaf("step", pitch[1])
    if pitch[2]:
        w.leaf("alter", pitch[2])
    w.leaf("octave", pitch[3])
    w.close()


def _attributes(
    w: XmlWriter, measure: Measure, previous: Measure | None, clefs, prev_clefs, tpq: int
) -> None:
    parts = []
    if previous is None:
        parts.append("divisions")
    if previous is None or measure.key_fifths != previous.key_fifths:
        parts.append("key")
    if previous is None or (measure.ts_num, measure.ts_den) != (previous.ts_num, previous.ts_den):
        parts.append("time")
    changed = [s for s in (1, 2) if prev_clefs is None or clefs[s] != prev_clefs[s]]
    if not parts and not changed:
        return
    w.open("attributes")
    if "divisions" in parts:
        w.leaf("divisions", tpq)
    if "key" in parts:
        w.open("key")
        w.leaf("fifths", measure.key_fifths)
        if measure.key_mode in (0, 1):
            w.leaf("mode", "major" if measure.key_mode == 0 else "minor")
        w.close()
    if "time" in parts:
        w.open("time")
        w.leaf("beats", measure.ts_num)
        w.leaf("beat-type", measure.ts_den)
        w.close()
    if previous is None:
        w.leaf("staves", 2)
    for staff in changed:
        _clef(w, staff, clefs[staff])
    w.close()


def _clef(w: XmlWriter, staff: int, sign: str) -> None:
    w.open("clef", number=staff)
    w.leaf("sign", sign)
    w.leaf("line", 2 if sign == "G" else 4)
    w.close()


def _clef_change(w: XmlWriter, staff: int, sign: str) -> None:
    """A clef change within a measure, where the writer now stands in time."""
    w.open("attributes")
    _clef(w, staff, sign)
    w.close()


# note types by length in quarters, for a metronome mark's beat unit
_BEAT_UNIT_TYPES = {4.0: "whole", 2.0: "half", 1.0: "quarter", 0.5: "eighth", 0.25: "16th"}


def metronome_beat(ts_num: int, ts_den: int) -> tuple[str, bool, float]:
    """(note type, dotted, length in quarters) of the metronome mark's beat in a time
    signature: the dotted beat of a compound meter (6/8: a dotted quarter, 6/4: a dotted
    half, 12/16: a dotted eighth), a quarter otherwise (as before, 2/2 included)."""
    if is_compound(ts_num) and ts_den in (2, 4, 8, 16):
        quarters = float(beat_quarters(ts_num, ts_den))  # three of the signature's units
        return _BEAT_UNIT_TYPES[quarters / 1.5], True, quarters
    return "quarter", False, 1.0


def _tempo(w: XmlWriter, qpm: float, ts_num: int = 4, ts_den: int = 4) -> None:
    """The metronome mark over the first measure: ``qpm`` quarters a minute, written in the
    beat of the time signature ``ts_num``/``ts_den`` (``metronome_beat``); the sound's
    tempo is in quarters a minute whatever the mark."""
    unit, dotted, quarters = metronome_beat(ts_num, ts_den)
    w.open("direction", placement="above")
    w.open("direction-type")
    w.open("metronome")
    w.leaf("beat-unit", unit)
    if dotted:
        w.leaf("beat-unit-dot")
    w.leaf("per-minute", round(qpm / quarters))
    w.close()
    w.close()
    w.leaf("staff", 1)
    w.leaf("sound", tempo=round(qpm, 2))
    w.close()


def _tuplet_marks(pieces: list[Piece]) -> list[tuple[bool, bool]]:
    """(opens a 3:2 bracket, closes it) per piece.

    Consecutive triplet pieces are grouped until they fill three triplet notes of the first
    one's value; a group that a plain value interrupts is closed on its last triplet piece.
    """
    marks = [(False, False)] * len(pieces)
    group: list[int] = []
    filled = span = Fraction(0)

    def close() -> None:
        if len(group) > 1:  # a lone triplet value keeps its time-modification, no bracket
            marks[group[0]] = (True, False)
            marks[group[-1]] = (False, True)
        group.clear()

    for index, piece in enumerate(pieces):
        if not piece.value.tuplet:
            close()
            continue
        if not group:
            filled, span = Fraction(0), piece.value.quarters * 3
        group.append(index)
        filled += piece.value.quarters
        if filled >= span:
            close()
    close()
    return marks


BEAMABLE = {"eighth", "16th", "32nd", "64th", "128th"}


def _beams(items: list[tuple[_Event, Piece]], beat_ticks: int) -> list[str | None]:
    """'begin' / 'continue' / 'end' per piece: notes of an eighth or less within one beat."""
    marks: list[str | None] = [None] * len(items)
    group: list[int] = []

    def close() -> None:
        if len(group) >= 2:
            marks[group[0]] = "begin"
            for k in group[1:-1]:
                marks[k] = "continue"
            marks[group[-1]] = "end"
        group.clear()

    for index, (event, piece) in enumerate(items):
        beamable = event.chord is not None and piece.value.type in BEAMABLE
        beat = piece.start // beat_ticks
        if not beamable or (group and items[group[-1]][1].start // beat_ticks != beat):
            close()
        if beamable:
            group.append(index)
    close()
    return marks


# the value of a measure rest: drawn as a whole rest (a breve rest in 4/2) whatever the
# measure's length, as engravers do; MusicXML names its type only where it is a whole's
MEASURE_REST = Value("whole", 0, False, Fraction(4), Fraction(1))


def measure_rest(start: int, length: int) -> Piece:
    """The one piece of a rest that fills a whole measure of its time signature (3/4, 6/8,
    4/4 alike): ``MEASURE_REST``, written ``<rest measure="yes"/>``."""
    return Piece(start, length, MEASURE_REST, True)


def _write_piece(
    w: XmlWriter,
    event: _Event,
    piece: Piece,
    staff: int,
    voice: int,
    tie_in: bool,
    tie_out: bool,
    tuplet: tuple[bool, bool],
    whole_rest: bool,
    beam: str | None = None,
    accidentals: list[str | None] | None = None,
    named_whole: bool = True,
) -> None:
    """One piece of an event: a rest, or the chord's notes (``accidentals``: what each
    pitch shows, ``perf2score.score.accidentals``; None: none shown). ``whole_rest``: a
    measure rest, its type named only with ``named_whole`` (it lasts a whole)."""
    xml_voice = voice + (4 if staff == 2 else 0)
    members = event.chord.pitches if event.chord else [None]
    for index, pitch in enumerate(members):
        w.open("note")
        if index:
            w.leaf("chord")
        if pitch is None:
            w.leaf("rest", measure="yes") if whole_rest else w.leaf("rest")
        else:
            _pitch(w, pitch)
        w.leaf("duration", piece.length)
        if pitch is not None and tie_in:
            w.leaf("tie", type="stop")
        if pitch is not None and tie_out:
            w.leaf("tie", type="start")
        w.leaf("voice", xml_voice)
        if whole_rest:
            if named_whole:  # a whole's length (4/4, 2/2): named, as before
                w.leaf("type", "whole")
        else:
            w.leaf("type", piece.value.type)
            for _ in range(piece.value.dots):
                w.leaf("dot")
        if accidentals is not None and accidentals[index] is not None:
            w.leaf("accidental", accidentals[index])
        if piece.value.tuplet:
            w.open("time-modification")
            w.leaf("actual-notes", 3)
            w.leaf("normal-notes", 2)
            w.close()
        w.leaf("staff", staff)
        if beam is not None and pitch is not None and index == 0:
            w.leaf("beam", beam, number=1)
        marks = []
        if pitch is not None and tie_in:
            marks.append(("tied", {"type": "stop"}))
        if pitch is not None and tie_out:
            marks.append(("tied", {"type": "start"}))
        if index == 0 and tuplet[0]:
            marks.append(("tuplet", {"type": "start", "bracket": "yes"}))
        if index == 0 and tuplet[1]:
            marks.append(("tuplet", {"type": "stop"}))
        if marks:
            w.open("notations")
            for tag, attrib in marks:
                w.leaf(tag, **attrib)
            w.close()
        w.close()


def _write_graces(
    w: XmlWriter, chord: Chord, staff: int, voice: int, accidentals: list[str | None]
) -> None:
    for pitch, accidental in zip(chord.grace, accidentals, strict=True):
        w.open("note")
        w.leaf("grace", slash="yes")
        _pitch(w, pitch)
        w.leaf("voice", voice + (4 if staff == 2 else 0))
        w.leaf("type", "eighth")
        if accidental is not None:
            w.leaf("accidental", accidental)
        w.leaf("staff", staff)
        w.close()


def _measure_accidentals(
    streams: dict[tuple[int, int], list[_Event]], fifths: int
) -> dict[tuple[int, str], list[str | None]]:
    """What each note of one measure shows (``shown_accidentals``, per staff): keyed by
    (id of its event, "notes" or "graces"), one entry per pitch of the chord's list."""
    by_staff: dict[int, list[tuple[tuple[int, str], WrittenNote]]] = defaultdict(list)
    for (staff, _), events in streams.items():
        for event in events:
            if event.chord is None:
                continue
            graces = event.chord.grace if not event.tie_stop else []
            for index, (_, step, alter, octave) in enumerate(graces):
                time = event.start - 1 + (index + 1) / (len(graces) + 1)  # before the chord
                note = WrittenNote(time, step, octave, alter)
                by_staff[staff].append(((id(event), "graces"), note))
            for _, step, alter, octave in event.chord.pitches:
                note = WrittenNote(event.start, step, octave, alter, tied=event.tie_stop)
                by_staff[staff].append(((id(event), "notes"), note))
    shown: dict[tuple[int, str], list[str | None]] = {}
    for entries in by_staff.values():
        marks = shown_accidentals([note for _, note in entries], fifths)
        for (key, _), mark in zip(entries, marks, strict=True):
            shown.setdefault(key, []).append(mark)  # entries are in each chord's pitch order
    return shown


def _barline(w: XmlWriter, location: str, repeat: bool, ending: int, ending_type: str) -> None:
    """A repeat bar line (``location`` "left": forward, "right": backward) and/or a volta
    bracket's edge (``ending_type`` "start", "stop" or "discontinue"; "" for none)."""
    if not (repeat or ending_type):
        return
    left = location == "left"
    w.open("barline", location=location)
    w.leaf("bar-style", ("heavy-light" if left else "light-heavy") if repeat else "regular")
    if ending_type:
        text = f"{ending}." if ending_type == "start" else None
        w.leaf("ending", text, number=str(ending), type=ending_type)
    if repeat:
        w.leaf("repeat", direction="forward" if left else "backward")
    w.close()


def _beat_ticks(measure: Measure, tpq: int) -> int:
    return max(1, int(beat_quarters(measure.ts_num, measure.ts_den) * tpq))


def to_musicxml(score: AssembledScore) -> str:
    """The score as a MusicXML 4.0 partwise document (a string)."""
    tpq = score.ticks_per_quarter
    w = XmlWriter()
    w.open("score-partwise", version="4.0")
    w.open("work")
    w.leaf("work-title", score.title or "Transcription")
    w.close()
    w.open("identification")
    w.open("encoding")
    w.leaf("software", "perf2score")
    w.close()
    w.close()
    w.open("part-list")
    w.open("score-part", id="P1")
    w.leaf("part-name", "Piano")
    w.close()
    w.close()
    w.open("part", id="P1")

    segments = _segments(score)
    clefs = _clefs(score)
    voices_by_measure: dict[int, set[tuple[int, int]]] = defaultdict(set)
    for k, staff, voice in segments:
        voices_by_measure[k].add((staff, voice))
    has_pickup = score.has_pickup
    previous = None
    for k, measure in enumerate(score.measures):
        attrib = {"number": str(score.measure_number(k))}
        if has_pickup and k == 0:
            attrib["implicit"] = "yes"
        w.open("measure", **attrib)
        after = score.measures[k + 1] if k + 1 < len(score.measures) else None
        opens = measure.ending and (previous is None or previous.ending != measure.ending)
        closes = measure.ending and (after is None or after.ending != measure.ending)
        _barline(w, "left", measure.repeat_start, measure.ending, "start" if opens else "")
        plan = clefs[k]
        _attributes(w, measure, previous, plan.start, clefs[k - 1].end if k else None, tpq)
        if k == 0:
            _tempo(w, score.tempo_qpm, measure.ts_num, measure.ts_den)
        streams = voices_by_measure[k] | {(1, 1), (2, 1)}
        filled = {
            stream: _fill_rests(segments.get((k, *stream), []), measure.length)
            for stream in sorted(streams)
        }
        shown = _measure_accidentals(filled, measure.key_fifths)
        for index, ((staff, voice), events) in enumerate(filled.items()):
            if index:
                w.open("backup")
                w.leaf("duration", measure.length)
                w.close()
            compound = is_compound(measure.ts_num)
            rest_dots = 1 if compound else 0
            items = []  # (event, piece, index of the piece in its event, pieces in the event)
            full = measure.length == nominal_length(measure.ts_num, measure.ts_den, tpq)
            for event in events:
                if full and event.chord is None and event.length == measure.length:
                    pieces = [measure_rest(event.start, event.length)]  # a whole rest
                else:
                    pieces = split_duration(
                        event.start,
                        event.length,
                        tpq,
                        2 if event.chord else rest_dots,
                        half_on_beats=event.chord is not None and not compound,
                    )
                items.extend((event, piece, i, len(pieces)) for i, piece in enumerate(pieces))
            beams = _beams([(e, p) for e, p, _, _ in items], _beat_ticks(measure, tpq))
            tuplets = _tuplet_marks([p for _, p, _, _ in items])
            pending = list(plan.changes.get(staff, [])) if voice == 1 else []
            for (event, piece, p_index, count), beam, tuplet in zip(
                items, beams, tuplets, strict=True
            ):
                while pending and p_index == 0 and event.start >= pending[0][0]:
                    _clef_change(w, staff, pending.pop(0)[1])  # the staff's clef from here
                if p_index == 0 and event.chord is not None and not event.tie_stop:
                    graces = shown.get((id(event), "graces"), [])
                    _write_graces(w, event.chord, staff, voice, graces)
                # one rest filling a whole measure of its time signature: a measure rest
                whole_rest = piece.value is MEASURE_REST
                _write_piece(
                    w,
                    event,
                    piece,
                    staff,
                    voice,
                    tie_in=(event.tie_stop if p_index == 0 else True),
                    tie_out=(event.tie_start if p_index == count - 1 else True),
                    tuplet=tuplet,
                    whole_rest=whole_rest,
                    beam=beam,
                    accidentals=shown.get((id(event), "notes")) if p_index == 0 else None,
                    named_whole=piece.length == 4 * tpq,
                )
            for _, sign in pending:  # no event of the first voice starts there: at the end
                _clef_change(w, staff, sign)
        stop = ("stop" if measure.ending == 1 else "discontinue") if closes else ""
        _barline(w, "right", measure.repeat_end, measure.ending, stop)  # 2nd: open
        w.close()
        previous = measure
    w.close()
    w.close()
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{DOCTYPE}\n{w.text()}\n'
