"""Voices from held values (perf2score.neural.voices)."""

import numpy as np

from perf2score.neural.voices import MAX_VOICES, separate_voices
from perf2score.score.attributes import ATTRIBUTE_DTYPE

Q = 24  # ticks per quarter


def _notes(rows, staff=1):
    """rows: (onset, duration, pitch) → attributes, drop, onsets."""
    out = np.zeros(len(rows), dtype=ATTRIBUTE_DTYPE)
    out["duration_ticks"] = [r[1] for r in rows]
    out["pitch"] = [r[2] for r in rows]
    out["staff"], out["voice"] = staff, 1
    return out, np.zeros(len(rows), dtype=bool), np.array([r[0] for r in rows], np.int64)


def test_a_note_held_while_its_staff_moves_gets_its_own_voice():
    # a half note G4 held under four eighths C5 D5 E5 F5, then a quarter chord
    rows = [(0, 2 * Q, 67), (0, Q // 2, 72), (12, 12, 74), (24, 12, 76), (36, 12, 77)]
    rows += [(48, Q, 72), (48, Q, 64)]
    attributes, drop, onsets = _notes(rows)
    assert separate_voices(attributes, drop, onsets, min_overhang=Q // 2) > 0
    voice = attributes["voice"].tolist()
    assert voice[0] != voice[1] and len(set(voice[1:5])) == 1, "the moving line is one voice"
    assert voice[5] == voice[6], "a chord is one voice"
    assert voice[5] in (voice[0], voice[1])


def test_plain_chords_and_lines_stay_in_one_voice():
    rows = [(k * Q, Q, 60 + k % 3) for k in range(8)] + [(k * Q, Q, 48) for k in range(8)]
    attributes, drop, onsets = _notes(rows)
    assert separate_voices(attributes, drop, onsets, min_overhang=Q // 2) == 0
    assert set(attributes["voice"].tolist()) == {1}


def test_held_notes_below_the_threshold_stay_in_the_line():
    rows = [(0, Q + 6, 60), (Q, Q, 62), (2 * Q, Q, 64)]  # legato overlap of a sixteenth
    attributes, drop, onsets = _notes(rows)
    assert separate_voices(attributes, drop, onsets, min_overhang=Q // 2) == 0


def test_at_most_four_voices_and_dropped_and_grace_notes_are_left_alone():
    rows = [(0, 8 * Q, 60), (Q, 7 * Q, 64), (2 * Q, 6 * Q, 67), (3 * Q, 5 * Q, 70)]
    rows += [(4 * Q, Q, 72), (5 * Q, Q, 74), (6 * Q, Q, 76)]
    attributes, drop, onsets = _notes(rows)
    attributes = np.concatenate([attributes, np.zeros(2, dtype=ATTRIBUTE_DTYPE)])
    attributes["voice"][-2:] = 3
    attributes["is_grace"][-1] = True
    drop = np.append(drop, [True, False])
    onsets = np.append(onsets, [0, 0])
    separate_voices(attributes, drop, onsets, min_overhang=Q // 2)
    assert attributes["voice"][:-2].max() <= MAX_VOICES
    assert len(set(attributes["voice"][:4].tolist())) == 4
    assert attributes["voice"][-2:].tolist() == [3, 3]


def test_staves_are_separated_independently():
    upper, _, _ = _notes([(0, 2 * Q, 72), (0, Q, 76), (Q, Q, 77)])
    lower, _, _ = _notes([(0, Q, 48), (Q, Q, 50)], staff=2)
    attributes = np.concatenate([upper, lower])
    separate_voices(attributes, np.zeros(5, bool), np.array([0, 0, Q, 0, Q]), Q // 2)
    assert attributes["voice"][3:].tolist() == [1, 1]
    assert attributes["voice"][0] != attributes["voice"][1]


def test_the_decoding_option_is_off_by_default_and_checked():
    import pytest

    from perf2score.errors import Perf2ScoreError
    from perf2score.neural.settings import DecodeConfig

    assert DecodeConfig().held_voice_quarters == 0.0  # measured worse on validation
    with pytest.raises(Perf2ScoreError, match="held_voice_quarters"):
        DecodeConfig.from_dict({"held_voice_quarters": -1})
