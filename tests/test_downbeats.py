"""Downbeats tracked in performance time (perf2score.neural.downbeats)."""

from __future__ import annotations

import numpy as np

from perf2score.neural.downbeats import track_downbeats, tracked_odds


def _played(beats: int, beats_per_bar: int, seconds_per_beat, noise: float = 0.0, seed: int = 0):
    """Eighth notes over ``beats`` beats (a beat lasting ``seconds_per_beat(i)`` seconds),
    with the evidence of a fair head: log-odds +1 / -2 for downbeat, +1 / -1 for beat."""
    rng = np.random.default_rng(seed)
    starts = np.concatenate([[0.5], 0.5 + np.cumsum([seconds_per_beat(i) for i in range(beats)])])
    onsets, odds, downbeats = [], [], []
    for i in range(beats):
        for half in (0, 1):
            t = starts[i] + half * (starts[i + 1] - starts[i]) / 2 + rng.normal(0, noise)
            on_down, on_beat = half == 0 and i % beats_per_bar == 0, half == 0
            onsets.append(t)
            odds.append([1.0 if on_down else -2.0, 1.0 if on_beat else -1.0])
            if on_down:
                downbeats.append(t)
    return np.array(onsets), np.array(odds, dtype=np.float32), np.array(downbeats)


def _hits(found: np.ndarray, truth: np.ndarray, window: float = 0.07) -> float:
    """Share of ``truth`` with a found mark within ``window`` s, and none found elsewhere."""
    near = [np.min(np.abs(found - t)) <= window for t in truth] if len(found) else [False]
    spurious = sum(np.min(np.abs(truth - f)) > window for f in found)
    return float(np.mean(near)) - spurious / max(len(truth), 1)


def test_steady_three_four_is_tracked_bar_for_bar():
    onsets, odds, truth = _played(48, 3, lambda i: 0.5, noise=0.01)
    downbeats, beats = track_downbeats(onsets, odds, 3)
    assert _hits(downbeats, truth) > 0.95
    assert len(beats) >= 3 * len(downbeats) - 3


def test_a_slowing_performance_is_followed():
    onsets, odds, truth = _played(64, 4, lambda i: 0.4 * 1.02**i, noise=0.01)  # 0.4 -> 1.4 s
    downbeats, _ = track_downbeats(onsets, odds, 4)
    assert _hits(downbeats, truth) > 0.9


def test_wrong_notes_of_the_head_are_outvoted_by_the_bar():
    onsets, odds, truth = _played(48, 4, lambda i: 0.5)
    wrong = np.random.default_rng(1).random(len(odds)) < 0.15  # a sixth of the evidence flipped
    odds[wrong] = -odds[wrong]
    downbeats, _ = track_downbeats(onsets, odds, 4)
    assert _hits(downbeats, truth) > 0.8


def test_tracked_odds_push_towards_the_tracked_marks():
    onsets, odds, truth = _played(36, 3, lambda i: 0.5)
    moved = tracked_odds(onsets, odds, 3, strength=5.0)
    on_downbeat = np.isin(onsets, truth)
    assert np.all(moved[on_downbeat, 0] == odds[on_downbeat, 0] + 5.0)
    assert np.all(moved[~on_downbeat, 0] == odds[~on_downbeat, 0] - 5.0)
    assert np.array_equal(tracked_odds(onsets[:1], odds[:1], 3), odds[:1])  # too short
