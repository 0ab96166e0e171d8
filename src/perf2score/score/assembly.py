"""Score assembly: per-note score attributes → measures, staves, voices, chords (exact ticks).

Input: one row per performed note with the score attributes of ``ATTRIBUTE_FIELDS`` (the
fields of the attribute record ``perf2score.score.attributes.ATTRIBUTE_DTYPE`` that describe
notation, at ``ticks_per_quarter``) plus a ``drop`` flag. A model's predictions, the classical
converter's estimates and the oracle's ground truth all come in this form.

Assembly is deterministic and never fails on implausible values: it repairs them and
records each repair in ``AssembledScore.repairs``:
- measures are numbered by ``measure`` (0, 1, ...); a measure's length, time and key
  signature are the most common among its notes (or carried over from the previous one);
- positions outside the measure are clamped into it; non-positive values get a 32nd;
- staves are renumbered so the topmost one in use is staff 1 and those below are staff 2;
  a staff still outside 1–2 is chosen by pitch; voices are clamped to 1–4 per staff;
- notes of one voice at the same onset form a chord sharing one duration; a chord that
  would overlap the next onset of its voice is shortened to it.
Rests, ties, tuplets, clefs and the written note values are the writer's job
(``perf2score.score.musicxml``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from perf2score.errors import Perf2ScoreError
from perf2score.score.attributes import ATTRIBUTE_FIELDS

MAX_VOICES = 4


@dataclass
class Measure:
    """One measure: start and length in ticks, time signature, key (fifths, mode)."""

    start: int
    length: int
    ts_num: int
    ts_den: int
    key_fifths: int
    key_mode: int  # KEY_MODES: 0 major, 1 minor, -1 unknown
    repeat_start: bool = False  # a forward repeat bar line at its start
    repeat_end: bool = False  # a backward repeat bar line at its end
    ending: int = 0  # the volta bracket (1: first ending, 2: second) it lies under (0: none)


@dataclass
class Chord:
    """Notes of one voice sounding together: onset and duration in absolute ticks."""

    onset: int
    duration: int
    staff: int
    voice: int  # 1..4 within the staff
    pitches: list[tuple[int, str, int, int]]  # (midi pitch, step, alter, octave)
    velocity: int = 64
    grace: list[tuple[int, str, int, int]] = field(default_factory=list)  # before the chord


@dataclass
class AssembledScore:
    """A score ready to write: measures, chords per (staff, voice), tempo, what was repaired."""

    measures: list[Measure]
    chords: list[Chord]
    ticks_per_quarter: int
    tempo_qpm: float = 100.0
    title: str = ""
    repairs: list[str] = field(default_factory=list)

    @property
    def end(self) -> int:
        last = self.measures[-1]
        return last.start + last.length

    @property
    def has_pickup(self) -> bool:
        """Whether the first measure is shorter than its time signature (an anacrusis)."""
        first = self.measures[0]
        return first.length < first.ts_num * 4 * self.ticks_per_quarter // first.ts_den

    def measure_number(self, index: int) -> int:
        """The number printed for the measure at ``index`` (a pickup is measure 0)."""
        return index if self.has_pickup else index + 1

    def repeated_sections(self) -> list[tuple[int, int]]:
        """The sections written between repeat signs: (first, last) measure numbers as
        printed, the last being the one with the backward repeat."""
        sections, opened = [], 0
        for k, measure in enumerate(self.measures):
            if measure.repeat_start:
                opened = k
            if measure.repeat_end:
                sections.append((self.measure_number(opened), self.measure_number(k)))
                opened = k + 1
        return sections


def _mode(values) -> int:
    return Counter(values).most_common(1)[0][0]


def nominal_length(ts_num: int, ts_den: int, tpq: int) -> int:
    """Ticks (``tpq`` a quarter) of a full measure of ``ts_num``/``ts_den``."""
    return max(1, ts_num * 4 * tpq // max(ts_den, 1))


SHARP_NAMES = [("C", 0), ("C", 1), ("D", 0), ("D", 1), ("E", 0), ("F", 0), ("F", 1), ("G", 0),
               ("G", 1), ("A", 0), ("A", 1), ("B", 0)]  # fmt: skip
STEP_SEMITONES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def writable_pitch(
    pitch: tuple[int, str, int, int], repairs: list[str]
) -> tuple[int, str, int, int]:
    """(midi, step, alter, octave) that MusicXML can write: octaves 0-9, a spelling that
    sounds the MIDI pitch. A spelling outside those is respelled from the MIDI number
    (sharps); MIDI 0-11, below MusicXML's C0, are written one octave up (a repair)."""
    midi, step, alter, octave = pitch
    exact = step in STEP_SEMITONES and (octave + 1) * 12 + STEP_SEMITONES[step] + alter == midi
    if exact and 0 <= octave <= 9:
        return pitch
    name, sharp = SHARP_NAMES[midi % 12]
    written = midi // 12 - 1
    if written < 0:
        repairs.append(f"note {midi}: written an octave higher (MusicXML starts at C0 = 12)")
        written = 0
    else:
        repairs.append(f"note {midi}: spelling {step} {alter:+d} octave {octave} respelled")
    return (midi, name, sharp, written)


def build_measures(attrs: np.ndarray, tpq: int, repairs: list[str]) -> list[Measure]:
    """The measure table from the notes' measure indices (empty measures carried over)."""
    count = int(attrs["measure"].max()) + 1 if len(attrs) else 1
    by_measure: dict[int, list[int]] = defaultdict(list)
    for row, m in enumerate(attrs["measure"].tolist()):
        by_measure[m].append(row)
    measures: list[Measure] = []
    previous = Measure(0, 4 * tpq, 4, 4, 0, -1)
    if by_measure:  # empty leading measures take the meter and key of the first full one
        first = attrs[by_measure[min(by_measure)]]
        previous = Measure(
            0,
            4 * tpq,
            int(first["ts_num"][0]),
            int(first["ts_den"][0]) or 4,
            int(first["key_fifths"][0]),
            int(first["key_mode"][0]),
        )
    start = 0
    for m in range(count):
        rows = by_measure.get(m)
        if rows:
            sel = attrs[rows]
            ts_num, ts_den = _mode(zip(sel["ts_num"].tolist(), sel["ts_den"].tolist(), strict=True))
            if ts_num <= 0 or ts_den not in (1, 2, 4, 8, 16, 32):
                repairs.append(f"measure {m}: time signature {ts_num}/{ts_den} -> 4/4")
                ts_num, ts_den = 4, 4
            length = _mode(sel["measure_length_ticks"].tolist())
            if length <= 0:
                length = nominal_length(ts_num, ts_den, tpq)
                repairs.append(f"measure {m}: non-positive length -> {length} ticks")
            fifths, mode = _mode(
                zip(sel["key_fifths"].tolist(), sel["key_mode"].tolist(), strict=True)
            )
            if not -7 <= fifths <= 7:
                repairs.append(f"measure {m}: key signature {fifths} fifths -> 0")
                fifths = 0
        else:
            ts_num, ts_den = previous.ts_num, previous.ts_den
            length = nominal_length(ts_num, ts_den, tpq)
            fifths, mode = previous.key_fifths, previous.key_mode
        previous = Measure(start, int(length), int(ts_num), int(ts_den), int(fifths), int(mode))
        measures.append(previous)
        start += int(length)
    return measures


def average_tempo(onset_quarters: np.ndarray, onset_seconds: np.ndarray) -> float:
    """Quarters per minute over the span of matching score (quarters) and played (seconds)
    onsets, (K,) each, clipped to 20–300; 100 when there is no span."""
    if len(onset_quarters) < 2:
        return 100.0
    span_q = float(np.ptp(onset_quarters))
    span_s = float(np.ptp(onset_seconds))
    if span_q <= 0 or span_s <= 0:
        return 100.0
    return float(np.clip(60.0 * span_q / span_s, 20.0, 300.0))


def assemble(
    attributes: np.ndarray,
    ticks_per_quarter: int,
    drop: np.ndarray | None = None,
    velocities: np.ndarray | None = None,
    tempo_qpm: float = 100.0,
    title: str = "",
) -> AssembledScore:
    """Turn per-note attributes (N,) into an ``AssembledScore`` (see the module docstring)."""
    missing = set(ATTRIBUTE_FIELDS) - set(attributes.dtype.names or ())
    if missing:
        raise Perf2ScoreError(f"assembly input lacks the fields {sorted(missing)}")
    if ticks_per_quarter <= 0:
        raise Perf2ScoreError(f"ticks_per_quarter must be positive, not {ticks_per_quarter}")
    tpq = ticks_per_quarter
    repairs: list[str] = []
    keep = np.ones(len(attributes), bool) if drop is None else ~np.asarray(drop, bool)
    attrs = attributes[keep]
    vel = (np.full(len(attributes), 64) if velocities is None else np.asarray(velocities))[keep]
    if len(attrs) and attrs["measure"].min() < 0:
        repairs.append("negative measure indices -> 0")
        attrs = attrs.copy()
        attrs["measure"] = np.maximum(attrs["measure"], 0)
    measures = build_measures(attrs, tpq, repairs)
    used = sorted({int(s) for s in attrs["staff"] if s > 0})
    if len(used) and used[0] != 1:  # music on staves 3-4 of a 4-staff score, say
        repairs.append(f"staves {used} renumbered from 1")
        attrs = attrs.copy()
        attrs["staff"] = np.where(
            attrs["staff"] == used[0], 1, np.where(attrs["staff"] > used[0], 2, attrs["staff"])
        )
    smallest = tpq // 8 if tpq % 8 == 0 else 1

    notes = defaultdict(list)  # (staff, voice, onset) -> [(duration, pitch tuple, velocity)]
    graces = defaultdict(list)  # (staff, onset) -> [(voice, pitch tuple)]
    for row, velocity in zip(attrs, vel.tolist(), strict=True):
        measure = measures[int(row["measure"])]
        position = int(row["position_ticks"])
        if not 0 <= position < measure.length:
            repairs.append(f"measure {row['measure']}: position {position} clamped")
            position = min(max(position, 0), measure.length - 1)
        onset = measure.start + position
        staff = int(row["staff"])
        if staff not in (1, 2):
            staff = 1 if row["pitch"] >= 60 else 2
            repairs.append(f"note {int(row['pitch'])} at {onset}: staff -> {staff}")
        voice = int(row["voice"]) % 100  # voices of a part-wise encoding (P2: 101...) fold back
        voice = (voice - 1) % MAX_VOICES + 1 if voice > 0 else 1
        pitch = writable_pitch(
            (int(row["pitch"]), str(row["step"]) or "C", int(row["alter"]), int(row["octave"])),
            repairs,
        )
        if row["is_grace"]:
            graces[(staff, onset)].append((voice, pitch))
            continue
        duration = int(row["duration_ticks"])
        if duration <= 0:
            repairs.append(f"note {pitch[0]} at {onset}: duration {duration} -> {smallest}")
            duration = smallest
        notes[(staff, voice, onset)].append((duration, pitch, int(velocity)))

    chords: list[Chord] = []
    streams = defaultdict(list)
    for staff, voice, onset in notes:
        streams[(staff, voice)].append(onset)
    end = measures[-1].start + measures[-1].length
    for (staff, voice), onsets in streams.items():
        onsets.sort()
        for k, onset in enumerate(onsets):
            members = notes[(staff, voice, onset)]
            duration = max(d for d, _, _ in members)
            limit = onsets[k + 1] if k + 1 < len(onsets) else max(end, onset + duration)
            if onset + duration > limit:
                repairs.append(f"staff {staff} voice {voice}: note at {onset} shortened")
                duration = limit - onset
            if len({d for d, _, _ in members}) > 1:
                repairs.append(f"staff {staff} voice {voice}: chord at {onset} unified")
            pitches = sorted({p for _, p, _ in members})
            velocity = int(np.mean([v for _, _, v in members]))
            chords.append(Chord(onset, duration, staff, voice, pitches, velocity))
    if chords:
        final = max(c.onset + c.duration for c in chords)
        while final > measures[-1].start + measures[-1].length:  # notes ringing past the end
            last = measures[-1]
            measures.append(
                Measure(
                    last.start + last.length,
                    nominal_length(last.ts_num, last.ts_den, tpq),
                    last.ts_num,
                    last.ts_den,
                    last.key_fifths,
                    last.key_mode,
                )
            )
    _attach_graces(chords, graces, repairs)
    chords.sort(key=lambda c: (c.onset, c.staff, c.voice))
    return AssembledScore(measures, chords, tpq, tempo_qpm, title, repairs)


def _attach_graces(chords: list[Chord], graces, repairs: list[str]) -> None:
    """Put each grace note before the chord it leads to (same staff, same onset)."""
    by_place: dict[tuple[int, int], list[Chord]] = defaultdict(list)
    for chord in chords:
        by_place[(chord.staff, chord.onset)].append(chord)
    for (staff, onset), items in graces.items():
        targets = by_place.get((staff, onset)) or by_place.get((3 - staff, onset))
        if not targets:
            repairs.append(f"grace notes at {onset} without a main note dropped")
            continue
        for voice, pitch in items:
            target = next((c for c in targets if c.voice == voice), targets[0])
            target.grace.append(pitch)
