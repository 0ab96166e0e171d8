"""The classical converter: a performance → per-note score attributes (no learning).

Steps (see ``rhythm`` and ``hands``): onset events, beat tracking, meter and downbeat,
quantisation of onsets and offsets to the per-beat grid, hand split, voices, then key
estimation (Kostka–Payne profiles) and pitch spelling (ps13) on the quantised notes
(``perf2score.score.spelling``). Beats are quarter notes; meters are 2/4, 3/4 or 4/4;
notes are never dropped. The result has the fields of
``perf2score.score.attributes.ATTRIBUTE_DTYPE``.
"""

from __future__ import annotations

import numpy as np

from perf2score.classical.hands import assign_voices, split_hands
from perf2score.classical.rhythm import choose_meter, quantize, tracked_onsets
from perf2score.constants import GRID_PER_QUARTER
from perf2score.midi.reading import Performance
from perf2score.score.attributes import ATTRIBUTE_DTYPE
from perf2score.score.spelling import key_and_spelling_by_section

SMALLEST = GRID_PER_QUARTER // 4  # a 16th: the shortest quantised value


def legato_durations(onsets: np.ndarray, durations: np.ndarray, staff: np.ndarray) -> np.ndarray:
    """Notes released near the next onset of their staff end exactly there.

    Performed releases are noisy (articulation, pedalling): a note that sounds for at least
    half the time to the next onset of its hand and at most an eighth beyond it is written
    as lasting until that onset.
    """
    out = durations.copy()
    for s in (1, 2):
        members = np.flatnonzero(staff == s)
        times = np.unique(onsets[members])
        k = np.searchsorted(times, onsets[members], side="right")
        has_next = k < len(times)
        gap = np.where(has_next, times[np.minimum(k, len(times) - 1)] - onsets[members], 0)
        snap = (
            has_next
            & (durations[members] * 2 >= gap)
            & (durations[members] <= gap + GRID_PER_QUARTER // 2)
        )
        out[members[snap]] = gap[snap]
    return out


def classical_attributes(
    performance: Performance, key_changes: bool = False
) -> tuple[np.ndarray, int, float]:
    """(attributes (N,), ticks per quarter, tempo in quarters per minute) for a performance.

    Rows follow the performance's note order; nothing is dropped. The notes are spelled
    toward each section's key; ``key_changes``: each section's key signature written
    (``perf2score.score.key_sections``), else the home key's throughout.
    """
    notes = performance.notes
    offsets = notes["offset_sec"]
    pitches = notes["pitch"].astype(int)
    events, beats, onset_ticks = tracked_onsets(notes)
    meter, phase = choose_meter(events, beats)

    offset_ticks = quantize(offsets, beats)
    durations = np.maximum(offset_ticks - onset_ticks, SMALLEST)

    staff = split_hands(pitches, events.of_note)
    durations = legato_durations(onset_ticks, durations, staff)
    voice = assign_voices(onset_ticks, durations, staff, min_overhang=SMALLEST)

    # start at the first played beat (the tracker may have added an empty beat before it)
    first_beat = int(onset_ticks.min()) // GRID_PER_QUARTER
    onset_ticks = onset_ticks - first_beat * GRID_PER_QUARTER
    phase = (phase - first_beat) % meter
    bar = meter * GRID_PER_QUARTER
    pickup = phase * GRID_PER_QUARTER  # beats before the first downbeat
    shifted = onset_ticks - pickup
    measure = np.where(shifted < 0, 0, shifted // bar + (1 if pickup else 0))
    measure_start = np.where(shifted < 0, 0, (measure - (1 if pickup else 0)) * bar + pickup)
    fifths, mode, spelling = key_and_spelling_by_section(
        pitches, onset_ticks, durations, measure, signature_changes=key_changes
    )

    out = np.zeros(len(notes), dtype=ATTRIBUTE_DTYPE)
    out["id"] = [f"n{k}" for k in range(len(notes))]
    out["pitch"] = pitches
    out["onset_ticks"] = onset_ticks
    out["measure"] = measure
    out["measure_number"] = measure + (0 if pickup else 1)
    out["measure_start_ticks"] = measure_start
    out["measure_length_ticks"] = np.where((measure == 0) & (pickup > 0), pickup, bar)
    out["ts_num"], out["ts_den"] = meter, 4
    out["position_ticks"] = onset_ticks - measure_start
    out["duration_ticks"] = durations
    out["staff"] = staff
    out["voice"] = voice
    out["step"] = spelling["step"]
    out["alter"] = spelling["alter"]
    out["octave"] = spelling["octave"]
    out["key_fifths"], out["key_mode"] = fifths, mode
    periods = np.diff(beats)
    tempo = float(np.clip(60.0 / np.median(periods), 20.0, 300.0)) if len(periods) else 100.0
    return out, GRID_PER_QUARTER, tempo
