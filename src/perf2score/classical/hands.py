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
    """Staff (1 = right hand, 2 = left hand) per note; notes grouped by ``of_event``.

    Linear in the number of notes (events are visited once, a chord's cuts in plain
    Python: chords are small)."""
    staff = np.ones(len(pitches), dtype=np.int8)
    if not len(pitches):
        return staff
    right, left = RIGHT_START, LEFT_START
    order = np.lexsort((pitches, of_event))  # by event, then by pitch
    events = of_event[order]
    bounds = np.flatnonzero(np.r_[True, events[1:] != events[:-1], True])
    sorted_pitches = pitches[order].astype(float).tolist()
    lower = []
    for first, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        p = sorted_pitches[first:end]
        best_cut = _best_cut(p, left, right)
        lower.append(order[first : first + best_cut])
        if best_cut:
            left = (1 - SMOOTHING) * left + SMOOTHING * (sum(p[:best_cut]) / best_cut)
        if best_cut < len(p):
            right = (1 - SMOOTHING) * right + SMOOTHING * (sum(p[best_cut:]) / (len(p) - best_cut))
        if right - left < 5:  # keep the hands apart
            centre = (right + left) / 2
            right, left = centre + 2.5, centre - 2.5
    staff[np.concatenate(lower)] = 2
    return staff


def _best_cut(p: list[float], left: float, right: float) -> int:
    """How many of a chord's pitches ``p`` (ascending) go to the left hand: the cut of
    least cost (squared distances to each hand's running pitch, a penalty for a span
    beyond ``SPAN_LIMIT``); the lowest such cut on ties."""
    best_cut, best_cost = 0, float("inf")
    for cut in range(len(p) + 1):
        low, high = p[:cut], p[cut:]
        cost = (sum((x - left) ** 2 for x in low) + sum((x - right) ** 2 for x in high)) / SPREAD**2
        for hand in (low, high):
            if hand and hand[-1] - hand[0] > SPAN_LIMIT:
                cost += 10.0 * (hand[-1] - hand[0] - SPAN_LIMIT)
        if cost < best_cost:
            best_cut, best_cost = cut, cost
    return best_cut


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
