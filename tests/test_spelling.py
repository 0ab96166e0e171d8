"""Our key finder and ps13 speller against partitura's (the reference they replace)."""

import warnings

import numpy as np
import partitura as pt
import pytest

from perf2score.score.attributes import key_mode_code
from perf2score.score.spelling import (
    estimate_key,
    in_key_frame,
    key_and_spelling,
    near_local_centre,
    spell,
)


def _reference(pitches, onsets, durations):
    notes = np.zeros(
        len(pitches),
        dtype=[("pitch", "i4"), ("onset_beat", "f8"), ("duration_beat", "f8"), ("id", "U8")],
    )
    notes["pitch"], notes["onset_beat"], notes["duration_beat"] = pitches, onsets, durations
    notes["id"] = [f"n{k}" for k in range(len(pitches))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        key = pt.musicanalysis.estimate_key(notes, key_profiles="kp")
        spelling = pt.musicanalysis.estimate_spelling(notes)
    fifths, mode = pt.utils.music.key_name_to_fifths_mode(key)
    return fifths, mode, spelling


def _tonal(seed: int, n: int = 400):
    """Notes of a seeded tonal walk: a scale of a random key with chromatic passing notes."""
    rng = np.random.default_rng(seed)
    tonic = int(rng.integers(0, 12))
    scale = np.array([0, 2, 4, 5, 7, 9, 11] if seed % 2 else [0, 2, 3, 5, 7, 8, 11])
    degrees = rng.integers(0, 7, size=n)
    pitches = 48 + tonic + scale[degrees] + 12 * rng.integers(0, 3, size=n)
    chromatic = rng.random(n) < 0.08
    pitches[chromatic] += rng.choice([-1, 1], size=int(chromatic.sum()))
    onsets = np.sort(rng.integers(0, n // 2, size=n)).astype(float) / 2
    durations = rng.choice([0.25, 0.5, 1.0, 2.0], size=n)
    return pitches, onsets, durations


@pytest.mark.parametrize("seed", range(12))
def test_key_and_spelling_match_partitura(seed):
    pitches, onsets, durations = _tonal(seed)
    fifths, mode, reference = _reference(pitches, onsets, durations)
    assert estimate_key(pitches, durations) == (fifths, 0 if mode == "major" else 1)
    ours = spell(pitches, onsets)
    # the one freedom: two notes of the same pitch at the same onset may trade spellings
    single = np.array(
        [((pitches == p) & (onsets == o)).sum() == 1 for p, o in zip(pitches, onsets, strict=True)]
    )
    for field in ("step", "alter", "octave"):
        assert (ours[field][single] == reference[field][single]).all(), field


def test_every_key_is_found_with_its_conventional_signature():
    major = np.array([0, 2, 4, 5, 7, 9, 11])
    for tonic, fifths in zip(range(12), (0, -5, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5), strict=True):
        pitches = 60 + tonic + np.concatenate([major, [0, 0, 7, 7, 4]])
        assert estimate_key(pitches, np.ones(len(pitches))) == (fifths, 0)


def test_ticks_interface_and_edge_cases():
    fifths, mode, spelling = key_and_spelling(
        np.array([62, 66, 69]), np.array([0, 24, 48]), np.array([24, 24, 24])
    )
    assert (fifths, mode) == (2, key_mode_code("major"))
    assert spelling["step"].tolist() == ["D", "F", "A"] and spelling["alter"].tolist() == [0, 1, 0]
    assert spelling["octave"].tolist() == [4, 4, 4]
    assert len(spell(np.array([], dtype=int), np.array([]))) == 0


def test_the_spelling_lies_on_the_side_of_the_key_found():
    # ps13 spells relative to the first note's letter: a D-flat major scale that opens on
    # D-flat comes out in C-sharp major, written under a five-flat signature before
    pitches = np.array([61, 63, 65, 66, 68, 70, 72, 73, 61, 65, 68, 73])
    assert set(spell(pitches, np.arange(12.0))["alter"].tolist()) == {1}
    fifths, _, spelling = key_and_spelling(pitches, 24 * np.arange(12), np.full(12, 24))
    assert fifths == -5
    assert "".join(spelling["step"][:8]) == "DEFGABCD"
    assert spelling["alter"][:8].tolist() == [-1, -1, 0, -1, -1, -1, 0, -1]
    assert spelling["octave"][:8].tolist() == [4, 4, 4, 4, 4, 4, 5, 5]


def test_a_spelling_moves_a_diminished_second_to_the_key():
    pitches = np.array([66, 68, 70, 71, 73, 75, 77])  # F-sharp major, as ps13 spells it
    sharps = spell(pitches, np.arange(7.0))
    assert in_key_frame(sharps, pitches, 6).tolist() == sharps.tolist()  # already there
    flats = in_key_frame(sharps, pitches, -6)
    assert "".join(flats["step"]) == "GABCDEF"
    assert flats["alter"].tolist() == [-1, -1, -1, -1, -1, -1, 0]
    assert flats["octave"].tolist() == [4, 4, 4, 5, 5, 5, 5]  # C-flat 5 sounds as B4


def test_a_note_far_from_its_neighbours_is_written_nearer():
    # C minor: the sixth degree written G-sharp (12 fifths from A-flat) among flats
    pitches = np.array([60, 63, 67, 68, 67, 65, 63, 62, 60, 59, 60])
    written = spell(pitches, np.arange(11.0))
    written[3] = ("G", 1, 4)
    near = near_local_centre(written, pitches, np.arange(11.0), -3)
    assert tuple(near[3].tolist()) == ("A", -1, 4)
    assert (
        near[[0, 1, 2, 4, 5, 6, 7, 8, 9, 10]].tolist()
        == written[[0, 1, 2, 4, 5, 6, 7, 8, 9, 10]].tolist()
    )  # the leading tone B stays natural
    assert tuple(near[9].tolist()) == ("B", 0, 3)
