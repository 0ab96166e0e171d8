import random

import pytest
from builders import build_part, random_score, write_musicxml
from pyMV2H.utils.matches import match_note_list
from pyMV2H.utils.pojos import NOTE

from perf2score.evaluate._pymv2h_patches import fast_match_note_list, key_harmony_score
from perf2score.evaluate.mv2h import _music, evaluate_mv2h, mv2h_lines
from perf2score.score import read_score


def test_writer_format(tmp_path):
    lines = mv2h_lines(read_score(write_musicxml(build_part(), tmp_path / "s.musicxml")))
    kinds = {line.split()[0] for line in lines}
    assert kinds == {"Note", "Tatum", "Hierarchy", "Key"}
    note = next(line for line in lines if line.startswith("Note")).split()
    assert note[2] == note[3]  # a score's onset equals its quantised onset
    # 3/4 with a one-quarter pickup: anacrusis of two eighth tatums
    assert any(line.startswith("Hierarchy 3,2 1 a=2 0") for line in lines)
    assert "Key 5 maj 0" in lines  # one flat: F major


def test_identical_scores_score_one():
    score = random_score(300, seed=5)
    result = evaluate_mv2h(score, score)
    assert result.mv2h == pytest.approx(1.0)
    assert result.multi_pitch == result.voice == result.value == pytest.approx(1.0)


def test_fast_matcher_equals_pymv2h():
    rng = random.Random(0)
    p = [NOTE(rng.randrange(60, 64), t, t, t + 100, 0) for t in range(0, 20000, 37)]
    t_notes = [
        NOTE(
            n.pitch if rng.random() > 0.1 else n.pitch + 1,
            n.on + rng.randrange(-80, 80),
            n.on,
            n.off_val,
            0,
        )
        for n in p
    ]
    t_notes.sort(key=lambda n: (n.on, n.pitch))
    assert fast_match_note_list(p, t_notes) == match_note_list(p, t_notes)


def test_fast_meter_equals_pymv2h():
    from pyMV2H.metrics.meter import meter_score

    from perf2score.evaluate._pymv2h_patches import fast_meter_score

    gt = random_score(200, seed=1)
    est = random_score(200, seed=2)
    a, b = _music(mv2h_lines(gt)), _music(mv2h_lines(est))
    assert fast_meter_score(a, b) == meter_score(a, b)


def test_key_harmony_with_key_changes():
    from pyMV2H.utils.music import Music
    from pyMV2H.utils.pojos import KEY

    notes = [NOTE(60, 0, 0, 4000, 0)]
    truth = Music([], [KEY(0, True, 0), KEY(7, True, 2000)], list(notes), [])
    assert (
        key_harmony_score(truth, Music([], [KEY(0, True, 0), KEY(7, True, 2000)], list(notes), []))
        == 1.0
    )
    # G major throughout: half the time a fifth away (0.5), half the time right (1.0)
    assert key_harmony_score(truth, Music([], [KEY(7, True, 0)], list(notes), [])) == 0.75
    # A minor is C major's relative key
    assert (
        key_harmony_score(
            Music([], [KEY(0, True, 0)], list(notes), []),
            Music([], [KEY(9, False, 0)], list(notes), []),
        )
        == 0.3
    )
