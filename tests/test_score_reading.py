import warnings

import numpy as np
import partitura as pt
import pytest
from builders import build_part, write_musicxml

from perf2score import Perf2ScoreError
from perf2score.data.targets import score_targets
from perf2score.score import read_score
from perf2score.score.meter import meter_levels
from perf2score.score.reading import staff_hands


def test_exact_ticks_ties_merged_hands_and_grace(tmp_path):
    score = read_score(write_musicxml(build_part(), tmp_path / "s.musicxml"))
    tpq = score.ticks_per_quarter
    by_id = {str(n["id"]): n for n in score.notes}
    # E♭5 from quarter 2 to quarter 5 crosses the bar line at 4: one note after merging ties
    e_flat = by_id["n2"]
    assert (e_flat["onset_ticks"], e_flat["offset_ticks"]) == (2 * tpq, 5 * tpq)
    assert e_flat["alter"] == -1 and e_flat["pitch"] == 75
    # triplet eighths are exact
    assert by_id["n5"]["onset_ticks"] * 3 == 4 * tpq
    assert by_id["n3"]["hand"] == 1 and by_id["n0"]["hand"] == 0
    assert by_id["g1"]["is_grace"] and by_id["g1"]["offset_ticks"] == by_id["g1"]["onset_ticks"]
    assert len(score) == 11  # 10 notes + 1 grace, ties merged
    assert score.measure_starts.tolist()[:2] == [0, tpq]  # pickup of one quarter
    assert score.time_signatures[0][1:] == (3, 4)
    assert score.key_signatures[0][1] == -1
    onsets = score.notes["onset_ticks"]
    assert np.all(np.diff(onsets) >= 0)


def test_rescaled_keeps_times_exact(tmp_path):
    score = read_score(write_musicxml(build_part(), tmp_path / "s.musicxml"))
    finer = score.rescaled(score.ticks_per_quarter * 5)
    assert finer.onsets_quarters() == score.onsets_quarters()
    with pytest.raises(ValueError):
        score.rescaled(score.ticks_per_quarter + 1)


def test_unreadable_scores(tmp_path):
    bad = tmp_path / "bad.musicxml"
    bad.write_text("<score-partwise><part-list></part-list>")
    with pytest.raises(Perf2ScoreError, match="cannot read MusicXML"):
        read_score(bad)
    with pytest.raises(Perf2ScoreError, match="no such file"):
        read_score(tmp_path / "none.musicxml")


def test_meter_levels():
    assert meter_levels(4, 4)[:2] == (4, 2)
    assert meter_levels(6, 8)[:2] == (2, 3)
    assert meter_levels(6, 4)[:2] == (2, 3)
    assert meter_levels(3, 4)[:2] == (3, 2)


def test_staff_hands_follow_the_main_grand_staff():
    # a plain grand staff; one staff only
    assert staff_hands(np.array([1, 2, 1, 2])).tolist() == [0, 1, 0, 1]
    assert staff_hands(np.array([2, 2])).tolist() == [0, 0]
    # an ossia pair above the music (staves 3-4 hold it): the ossia goes with the right hand
    assert staff_hands(np.array([1, 2, 3, 3, 3, 4, 4])).tolist() == [0, 0, 0, 0, 0, 1, 1]
    # an extra bass staff below the grand staff: left hand
    assert staff_hands(np.array([1, 1, 1, 2, 2, 3])).tolist() == [0, 0, 0, 1, 1, 1]
    # a third staff above the grand staff: right hand
    assert staff_hands(np.array([1, 2, 2, 2, 3, 3])).tolist() == [0, 0, 0, 0, 1, 1]


def test_a_staff_written_as_its_own_part_above_the_grand_staff(tmp_path):
    top = pt.score.Part("P0", "Piano", quarter_duration=12)
    top.add(pt.score.TimeSignature(3, 4), 12)
    for k, start in enumerate((12, 24, 36)):
        top.add(pt.score.Note(step="A", octave=5, alter=0, voice=1, id=f"t{k}"), start, start + 12)
    top.add(pt.score.Measure(number=1), 0, 12)
    pt.score.add_measures(top)
    path = tmp_path / "three.musicxml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pt.save_musicxml([top, build_part(grace=False)], str(path))
    score = read_score(path)
    hand = {str(n["id"]): int(n["hand"]) for n in score.notes}
    staff = {str(n["id"]): int(n["staff"]) for n in score.notes}
    # the top part's staff is staff 1, the grand staff's 2 and 3: hands by the grand staff
    assert staff["t0"] == 1 and staff["n0"] == 2 and staff["n3"] == 3
    assert hand["t0"] == 0 and hand["n0"] == 0 and hand["n3"] == 1
    table, _, _ = score_targets(path)
    targets = {str(row["id"]): int(row["staff"]) for row in table}  # ids of the unfolded part
    assert targets["t0-1"] == 1 and targets["n0-1"] == 1 and targets["n3-1"] == 2
