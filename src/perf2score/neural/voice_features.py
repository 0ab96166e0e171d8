"""Per-note features for the voice pass (numpy only; the same code for training and decoding).

The voice pass reads a piece as score notes already placed in time (onsets in quarters and a
staff each: the decoder's at conversion time, the ground truth's in training) together with
how they were played (key-down time, velocity, sustain pedal). Notes are taken in **voice
order**: by onset, then staff, then highest pitch first.

Features (``N_FEATURES`` columns, all roughly in -3..3):

0-3. distance (quarters, ``log2(1 + q)``) to the previous / next distinct onset of the same
     staff, then of either staff (0 where there is none);
4-5. size of the note's chord in its staff (``/ 6``, capped) and its rank from the top
     (``/ size``);
6-7. the note's pitch above the lowest and below the highest note of its chord (octaves);
8.   played length in score quarters (``log2``, from the local tempo);
9.   played length against the distance to the next onset of its staff (``log2`` of the
     ratio; 0 where there is none): a key held past that onset is the sign of a voice;
10.  sustain pedal down when the key is released;
11.  velocity / 127;
12-15. the onset's place in the beat and in the half note (cosine and sine);
16.  the note's pitch against the mean pitch of its staff around it (octaves, ±16 notes);
17.  pitch / 64 - 1.
"""

from __future__ import annotations

import numpy as np

from perf2score.midi.reading import Performance
from perf2score.tokens.performance import pedal_extended_offsets

N_FEATURES = 18
TEMPO_SPAN = 8  # onsets either side for the local tempo


def voice_order(onset_quarters: np.ndarray, staff: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """(N,) indices that put notes in voice order (onset, staff, highest pitch first)."""
    return np.lexsort((-pitch.astype(np.int64), staff.astype(np.int64), onset_quarters))


def _log_gap(gap: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(gap), np.log2(1.0 + np.clip(gap, 0.0, 64.0)), 0.0)


def _neighbour_gaps(onsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(previous, next) distance to the nearest different onset (inf where none)."""
    distinct = np.unique(onsets)
    k = np.searchsorted(distinct, onsets)
    previous = np.where(k > 0, onsets - distinct[np.maximum(k - 1, 0)], np.inf)
    after = k + 1
    following = np.where(
        after < len(distinct), distinct[np.minimum(after, len(distinct) - 1)] - onsets, np.inf
    )
    return previous, following


def local_tempo(onset_quarters: np.ndarray, onset_seconds: np.ndarray) -> np.ndarray:
    """(N,) score quarters per second around each note: the slope over ``TEMPO_SPAN``
    distinct onsets either side (onset seconds: the median of each onset's notes)."""
    distinct, group, counts = np.unique(onset_quarters, return_inverse=True, return_counts=True)
    ordered = onset_seconds[np.lexsort((onset_seconds, group))]  # by onset, then time
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    seconds = (ordered[starts + (counts - 1) // 2] + ordered[starts + counts // 2]) / 2  # medians
    seconds = np.maximum.accumulate(seconds)
    low = np.maximum(np.arange(len(distinct)) - TEMPO_SPAN, 0)
    high = np.minimum(np.arange(len(distinct)) + TEMPO_SPAN, len(distinct) - 1)
    span_q = distinct[high] - distinct[low]
    span_s = seconds[high] - seconds[low]
    overall = (distinct[-1] - distinct[0]) / max(seconds[-1] - seconds[0], 1e-3)
    overall = overall if overall > 0 else 2.0
    tempo = np.where((span_s > 0.05) & (span_q > 0), span_q / np.maximum(span_s, 1e-3), overall)
    return np.clip(tempo, 0.1, 40.0)[group]


def voice_features(
    notes: np.ndarray, onset_quarters: np.ndarray, staff: np.ndarray, pedal: np.ndarray
) -> np.ndarray:
    """(N, ``N_FEATURES``) float32 features of notes already in voice order.

    Args:
        notes: (N,) the played notes (``perf2score.midi.reading.NOTE_DTYPE``).
        onset_quarters: (N,) their score onsets in quarters (non-decreasing).
        staff: (N,) 1 (upper) or 2 (lower).
        pedal: (P, 2) sustain-pedal intervals in seconds.
    """
    n = len(notes)
    out = np.zeros((n, N_FEATURES), dtype=np.float64)
    if n == 0:
        return out.astype(np.float32)
    pitch = notes["pitch"].astype(np.float64)
    onset_seconds, offset_seconds = notes["onset_sec"], notes["offset_sec"]
    onset_quarters = onset_quarters.astype(np.float64)
    tempo = local_tempo(onset_quarters, onset_seconds)
    played = np.maximum(offset_seconds - onset_seconds, 0.01) * tempo  # quarters
    next_staff = np.full(n, np.inf)
    for s in np.unique(staff):
        members = np.flatnonzero(staff == s)
        previous, following = _neighbour_gaps(onset_quarters[members])
        out[members, 0] = _log_gap(previous)
        out[members, 1] = _log_gap(following)
        next_staff[members] = following
        key = onset_quarters[members]
        _, group, size = np.unique(key, return_inverse=True, return_counts=True)
        chord_size = size[group]
        out[members, 4] = np.minimum(chord_size, 6) / 6.0
        tops = np.full(len(size), -np.inf)
        bottoms = np.full(len(size), np.inf)
        np.maximum.at(tops, group, pitch[members])
        np.minimum.at(bottoms, group, pitch[members])
        first = np.concatenate([[0], np.cumsum(size)[:-1]])  # a chord's notes are consecutive
        out[members, 5] = (np.arange(len(members)) - first[group]) / chord_size
        out[members, 6] = (pitch[members] - bottoms[group]) / 12.0
        out[members, 7] = (tops[group] - pitch[members]) / 12.0
        window = np.ones(33) / 33.0
        padded = np.pad(pitch[members], 16, mode="edge")
        out[members, 16] = (pitch[members] - np.convolve(padded, window, mode="valid")) / 12.0
    previous, following = _neighbour_gaps(onset_quarters)
    out[:, 2] = _log_gap(previous)
    out[:, 3] = _log_gap(following)
    out[:, 8] = np.clip(np.log2(played), -5.0, 5.0)
    ratio = np.where(np.isfinite(next_staff), played / np.maximum(next_staff, 1e-3), 1.0)
    out[:, 9] = np.clip(np.log2(np.maximum(ratio, 1e-3)), -4.0, 4.0)
    out[:, 10] = pedal_extended_offsets(Performance(notes, pedal)) > offset_seconds
    out[:, 11] = notes["velocity"] / 127.0
    for column, period in ((12, 1.0), (14, 2.0)):
        angle = 2 * np.pi * onset_quarters / period
        out[:, column] = np.cos(angle)
        out[:, column + 1] = np.sin(angle)
    out[:, 17] = pitch / 64.0 - 1.0
    return out.astype(np.float32)
