"""Stretches written at another value scale than the piece's, found and rewritten."""

from __future__ import annotations

import math

import numpy as np
import pytest
from builders import played_triple

from perf2score.classical.rhythm import played_beats
from perf2score.neural.segment_scale import (
    MIN_STEPS,
    OCTAVES,
    TUPLETS,
    octave_offsets,
    rescale_segments,
    segment_states,
)
from perf2score.neural.settings import DecodeConfig

EIGHTH, SIXTEENTH = 24, 12  # ticks at 48 a quarter


def played_run(steps_seconds: list[float]) -> np.ndarray:
    """Onsets (s) of notes played one after another with these steps."""
    return np.concatenate([[0.0], np.cumsum(steps_seconds)])


def test_offsets_are_octaves_from_the_median_and_skip_chords():
    onsets = np.arange(0, 40 * EIGHTH, EIGHTH)
    seconds = onsets / EIGHTH * 0.2
    seconds[5] = seconds[4] + 0.01  # a chord: not an observation
    onsets[5] = onsets[4]
    offsets = octave_offsets(onsets, seconds, gap=0.07)
    assert math.isnan(offsets[4])
    assert np.nanmax(np.abs(np.delete(offsets, [3, 4, 5]))) < 1e-9
    assert np.isnan(octave_offsets(onsets[:MIN_STEPS], seconds[:MIN_STEPS], 0.07)).all()


def test_states_follow_a_long_stretch_and_ignore_a_short_one():
    offsets = np.zeros(60)
    offsets[20:32] = 1.0  # twelve steps at twice the scale
    offsets[45] = -1.0  # one slow step (a fermata)
    states = segment_states(offsets, switch_cost=4.0)
    assert (states[20:32] == 1).all()
    assert (np.delete(states, np.arange(20, 32)) == 0).all()
    assert not segment_states(offsets, switch_cost=20.0).any()  # too dear to switch
    offsets[np.arange(0, 60, 3)] = np.nan  # unobserved steps follow their neighbours
    assert (segment_states(offsets, 3.0)[20:32] == 1).all()  # 8 observed: a gain of 8 > 6


def test_tuplet_states_find_triplets_written_as_sixteenths():
    offsets = np.zeros(60)
    offsets[20:40] = math.log2(3 / 4)
    assert segment_states(offsets, 2.0, TUPLETS)[20:40] == pytest.approx(math.log2(3 / 4))
    assert (segment_states(offsets, 2.0, OCTAVES) == 0).all()  # nearer 1 than ½


def test_sixteenths_written_as_eighths_come_back_as_sixteenths():
    """Eighths played at 0.2 s; in the middle, sixteen 16ths (0.1 s) that the decoder wrote
    as eighths. Rewritten, they are 16ths, the music after them is back in phase (every
    onset where the truth has it) and their values are halved; the others do not move."""
    played = [0.2] * 20 + [0.1] * 16 + [0.2] * 20
    seconds = played_run(played)
    truth = np.concatenate([[0], np.cumsum([EIGHTH] * 20 + [SIXTEENTH] * 16 + [EIGHTH] * 20)])
    decoded = np.arange(len(seconds)) * EIGHTH  # every step an eighth
    durations = np.full(len(seconds), EIGHTH)
    timed = np.ones(len(seconds), bool)
    onsets, values, moved = rescale_segments(
        decoded, durations, seconds, timed, timed, gap=0.07, switch_cost=4.0
    )
    np.testing.assert_array_equal(onsets, truth)
    assert moved == 16
    assert (values[20:36] == SIXTEENTH).all()
    assert (np.delete(values, np.arange(20, 36)) == EIGHTH).all()
    same, _, none = rescale_segments(decoded, durations, seconds, timed, timed, 0.07, 0.0)
    np.testing.assert_array_equal(same, decoded)  # a cost of 0: off
    assert none == 0


def test_grace_and_dropped_notes():
    """A grace note moves with the timed note before it; a dropped note stays."""
    played = [0.2] * 20 + [0.1] * 16 + [0.2] * 20
    seconds = played_run(played)
    decoded = np.arange(len(seconds)) * EIGHTH
    timed = np.ones(len(seconds), bool)
    kept = timed.copy()
    timed[40], timed[45] = False, False  # a grace note, a dropped one
    kept[45] = False
    decoded[45] = 0
    onsets, _, _ = rescale_segments(
        decoded, np.full(len(seconds), EIGHTH), seconds, timed, kept, 0.07, 4.0
    )
    shift = onsets[39] - decoded[39]
    assert shift == -16 * SIXTEENTH
    assert onsets[40] - decoded[40] == shift
    assert onsets[45] == 0


def test_triplets_written_as_sixteenths_become_triplets():
    """Triplet eighths (three a 0.5 s beat) written as 16ths come back a third of a
    quarter apart (16 ticks at 48 a quarter) with the tuplet states, on the beat after."""
    played = [0.25] * 24 + [0.5 / 3] * 30 + [0.25] * 24
    seconds = played_run(played)
    decoded = np.concatenate([[0], np.cumsum([EIGHTH] * 24 + [SIXTEENTH] * 30 + [EIGHTH] * 24)])
    truth = np.concatenate([[0], np.cumsum([EIGHTH] * 24 + [16] * 30 + [EIGHTH] * 24)])
    timed = np.ones(len(seconds), bool)
    durations = np.full(len(seconds), SIXTEENTH)
    onsets, _, _ = rescale_segments(decoded, durations, seconds, timed, timed, 0.07, 2.0, TUPLETS)
    np.testing.assert_array_equal(onsets, truth)


def test_the_beat_clock_counts_quarters_of_a_steady_performance():
    """Onsets of quarters and eighths at 100 a minute, on the tracked beats: steps of one
    and a half beat in the same proportion as the played ones, rising throughout."""
    performance = played_triple(48, jitter=0.0)
    beats = played_beats(performance)
    steps = np.diff(beats)
    played = np.diff(performance.notes["onset_sec"])
    assert (steps > 0).all()
    ratio = steps / played
    assert ratio.max() / ratio.min() < 1.2  # one tempo: the clock follows the seconds
    assert played_beats(played_triple(1, jitter=0.0)) is None


@pytest.mark.parametrize(
    "settings",
    [
        {"segment_scale_cost": -1.0},
        {"segment_scale_states": "thirds"},
        {"segment_scale_clock": "bars"},
    ],
)
def test_the_settings_are_checked(settings):
    with pytest.raises(ValueError):
        DecodeConfig(**settings)
