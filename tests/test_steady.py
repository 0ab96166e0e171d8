"""Whole beats from the beat clock on steady performances (neural/steady.py)."""

from __future__ import annotations

import numpy as np

from perf2score.neural.steady import clock_scale, whole_beat_steps


def _lost_beat(beats: int, held_at: int, beat_ticks: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """(decoded onsets (ticks), clock (beats)) of a note a beat, one held for three beats at
    beat ``held_at``, decoded at half values with that held note one beat short."""
    clock = np.array([b for b in range(beats) if not held_at < b < held_at + 3], dtype=float)
    decoded = np.where(clock > held_at, clock - 1, clock) * beat_ticks
    return decoded.astype(np.int64), clock


def test_a_beat_lost_at_a_held_note_is_given_back():
    decoded, clock = _lost_beat(24, held_at=3)
    kept = np.ones(len(decoded), dtype=bool)
    assert clock_scale(decoded, clock) == 0.5
    fixed = whole_beat_steps(decoded, kept, clock)
    assert fixed.tolist() == (clock * 12).astype(int).tolist()


def test_rhythms_inside_the_beat_other_levels_and_fractional_steps_stay_the_decoders():
    onsets = np.array([0, 24, 36, 48, 72, 96, 120, 144, 168, 192])  # a beat = 24 ticks
    kept = np.ones(len(onsets), dtype=bool)
    inside = np.array([0.0, 1, 1.5, 2.5, 3, 4, 5, 6, 7, 8])  # other eighths: never held
    assert whole_beat_steps(onsets, kept, inside).tolist() == onsets.tolist()
    held = np.array([0, 48, 72, 96, 120, 144, 168, 192, 216, 240])  # a half note first
    slipped = np.array([0.0, 2.75, 3.75, 4.75, 5.75, 6.75, 7.75, 8.75, 9.75, 10.75])
    assert whole_beat_steps(held, kept, slipped).tolist() == held.tolist()  # 2.75: no
    halves = held / 48.0  # the tracker counts half notes: no common level with a lost beat
    halves[1:] += 1
    assert clock_scale(held, halves) == 0.0
    assert whole_beat_steps(held, kept, halves).tolist() == held.tolist()


def test_dropped_notes_keep_their_onsets():
    decoded, clock = _lost_beat(24, held_at=3)
    decoded, clock = np.insert(decoded, 2, 0), np.insert(clock, 2, 50.0)
    kept = np.ones(len(decoded), dtype=bool)
    kept[2] = False
    fixed = whole_beat_steps(decoded, kept, clock)
    assert fixed[2] == 0
    assert fixed[kept].tolist() == (clock[kept] * 12).astype(int).tolist()
