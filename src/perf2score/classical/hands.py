"""Hand (staff) split and voices.

Hands: events are processed in time order; each event's notes, sorted by pitch, are cut
where the cost is lowest: squared distances of each hand's notes to that hand's running
mean pitch (exponentially smoothed), plus a penalty for a hand spanning more than a
tenth. Voices: within a staff, a note that keeps sounding (quantised) past the next onset
of its staff by at least a 16th goes to voice 2 when voice 2 is free; otherwise voice 1.
"""

from __future__ import annotations

import numpy as np

RIGHT_START, LEFT_START = 71.0, 50.0
SMOOTHING = 0.3
SPAN_LIMIT = 16  # semitones one hand can cover
SPREAD = 7.0  # semitones: scale of a hand's distance cost


def split_hands(pitches: np.ndarray, of_event: np.ndarray) -> np.ndarray:
    """Staff (1 = right hand, 2 = left hand) per note; notes grouped by ``of_event``."""
    staff = np.ones(len(pitches), dtype=np.int8)
    right, left = RIGHT_START, LEFT_START
    for event in np.unique(of_event):
        members = np.flatnonzero(of_event == event)
        members = members[np.argsort(pitches[members], kind="stable")]
        p = pitches[members].astype(float)
        best_cut, best_cost = 0, np.inf
        for cut in range(len(p) + 1):  # notes below the cut go to the left hand
            low, high = p[:cut], p[cut:]
            cost = (np.sum((low - left) ** 2) + np.sum((high - right) ** 2)) / SPREAD**2
            for hand in (low, high):
                if len(hand) and hand.max() - hand.min() > SPAN_LIMIT:
                    cost += 10.0 * (hand.max() - hand.min() - SPAN_LIMIT)
            if cost < best_cost:
                best_cut, best_cost = cut, cost
        staff[members[:best_cut]] = 2
        if best_cut:
            left = (1 - SMOOTHING) * left + SMOOTHING * float(p[:best_cut].mean())
        if best_cut < len(p):
            right = (1 - SMOOTHING) * right + SMOOTHING * float(p[best_cut:].mean())
        if right - left < 5:  # keep the hands apart
            centre = (right + left) / 2
            right, left = centre + 2.5, centre - 2.5
    return staff


def assign_voices(
    onsets: np.ndarray, durations: np.ndarray, staff: np.ndarray, min_overhang: int
) -> np.ndarray:
    """Voice (1 or 2) per note from quantised onsets/durations (ticks) within each staff."""
    voice = np.ones(len(onsets), dtype=np.int16)
    for s in (1, 2):
        members = np.flatnonzero(staff == s)
        if not len(members):
            continue
        times = np.unique(onsets[members])
        next_onset = dict(zip(times[:-1].tolist(), times[1:].tolist(), strict=True))
        voice2_free_at = -1
        for index in members[np.lexsort((-durations[members], onsets[members]))]:
            onset = int(onsets[index])
            following = next_onset.get(onset)
            if following is None:
                continue
            overhang = onset + int(durations[index]) - following
            if overhang >= min_overhang and onset >= voice2_free_at:
                voice[index] = 2
                voice2_free_at = onset + int(durations[index])
    return voice
