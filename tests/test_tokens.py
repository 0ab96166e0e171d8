import numpy as np
import pytest
from builders import build_part, write_midi, write_musicxml

from perf2score import read_performance
from perf2score.data.targets import score_targets
from perf2score.tokens import (
    PERFORMANCE_STREAMS,
    SCORE_STREAMS,
    STREAMS,
    decode_performance,
    decode_score,
    encode_performance,
    encode_score,
)
from perf2score.tokens.spec import FIRST_VALUE


def test_spec_is_the_single_source_of_sizes():
    assert set(STREAMS) == {s.name for s in PERFORMANCE_STREAMS + SCORE_STREAMS}
    for s in STREAMS.values():
        assert s.size == s.values + FIRST_VALUE and s.loss_weight > 0


def test_performance_round_trip_within_one_bucket(tmp_path):
    rng = np.random.default_rng(0)
    onsets = np.sort(rng.uniform(0, 30, 300))
    notes = [
        (int(p), float(t), float(t + d), int(v))
        for p, t, d, v in zip(
            rng.integers(21, 109, 300),
            onsets,
            rng.uniform(0.02, 3.0, 300),
            rng.integers(1, 128, 300),
            strict=True,
        )
    ]
    perf = read_performance(
        write_midi(tmp_path / "p.mid", tracks=[notes], pedal=[(5.0, 127), (9.0, 0)])
    )
    tokens = encode_performance(perf)
    for name, ids in tokens.items():
        assert ids.min() >= FIRST_VALUE and ids.max() < STREAMS[name].size, name
    back = decode_performance(tokens)
    assert np.array_equal(back.notes["pitch"], perf.notes["pitch"])
    ioi_true = np.diff(perf.notes["onset_sec"])
    ioi_back = np.diff(back.notes["onset_sec"])
    big = ioi_true > 0.002
    assert np.all(np.abs(np.log(ioi_back[big] / ioi_true[big])) < np.log(1.15))
    duration = perf.notes["offset_sec"] - perf.notes["onset_sec"]
    duration_back = back.notes["offset_sec"] - back.notes["onset_sec"]
    assert np.all(np.abs(np.log(duration_back / duration)) < np.log(1.17))
    assert np.all(np.abs(back.notes["velocity"] - perf.notes["velocity"]) <= 2)
    # the pedal extends a note released while it is down
    assert np.all(tokens["pedal_duration"] >= tokens["duration"])


def test_extreme_times_stay_in_the_vocabulary():
    from perf2score.midi.reading import NOTE_DTYPE, Performance

    notes = np.zeros(4, dtype=NOTE_DTYPE)
    notes["pitch"] = [10, 60, 61, 120]  # below and above the piano too
    notes["onset_sec"] = [0.0, 0.0, 30.0, 30.0005]  # a 30 s gap, a 0.5 ms gap
    notes["offset_sec"] = notes["onset_sec"] + [0.001, 25.0, 9.0, 0.01]
    notes["velocity"] = [0, 127, 64, 1]
    tokens = encode_performance(Performance(notes, np.array([[0.0, 60.0]])))
    for name, ids in tokens.items():
        assert ids.min() >= FIRST_VALUE and ids.max() < STREAMS[name].size, name
    assert tokens["duration"][1] == STREAMS["duration"].size - 1  # 25 s: the last bucket


def test_score_round_trip_is_exact(tmp_path):
    table, tpq, _ = score_targets(write_musicxml(build_part(), tmp_path / "s.musicxml"))
    table = table[~table["tie_stop"]]
    drop = np.zeros(len(table), bool)
    drop[3] = True
    tokens, off_grid = encode_score(table, tpq, drop)
    assert off_grid == 0
    for name, ids in tokens.items():
        assert ids.min() >= FIRST_VALUE and ids.max() < STREAMS[name].size, name
    back, back_drop = decode_score(tokens, table["pitch"], tpq)
    assert np.array_equal(back_drop, drop)
    keep = ~drop
    for field in (
        "position_ticks",
        "duration_ticks",
        "measure_length_ticks",
        "staff",
        "step",
        "alter",
        "octave",
        "key_fifths",
        "ts_num",
        "ts_den",
        "is_grace",
    ):
        assert np.array_equal(back[field][keep], table[field][keep]), field
    measures = table["measure"][keep]
    assert np.array_equal(back["measure"][keep], measures - measures[0])
    assert np.array_equal(back["voice"][keep], (table["voice"][keep] - 1) % 4 + 1)


def test_off_grid_values_are_counted():
    from perf2score.score.attributes import ATTRIBUTE_DTYPE

    rows = np.zeros(3, dtype=ATTRIBUTE_DTYPE)
    rows["ts_num"], rows["ts_den"], rows["staff"], rows["voice"] = 4, 4, 1, 1
    rows["position_ticks"] = [0, 35, 70]  # tpq 105: 1/3 and 2/3 quarter are on the grid...
    rows["duration_ticks"] = [21, 35, 35]  # ...but 1/5 quarter is not
    _, off_grid = encode_score(rows, 105)
    assert off_grid == 1


@pytest.mark.parametrize(
    ("pitch", "alter", "spelled"),
    [
        (61, 1, ("C", 1, 4)),
        (61, -1, ("D", -1, 4)),
        (60, 1, ("B", 1, 3)),
        (62, 1, ("D", 0, 4)),
        (70, 0, ("B", -1, 4)),
    ],
)
def test_spelling_from_pitch_and_alter(pitch, alter, spelled):
    from perf2score.tokens.score import _spell

    assert _spell(pitch, alter) == spelled


def test_played_ratio_ids_compare_each_step_with_the_previous_step():
    from perf2score.midi.reading import NOTE_DTYPE, Performance
    from perf2score.tokens import encode_performance
    from perf2score.tokens.spec import PAD
    from perf2score.tokens.timing import CHORD, FIRST_STEP, RATIO_STEP, UNKNOWN, played_ratio_ids

    # a chord, then steps of 0.6, 0.6 (a chord note at the same time), 0.3, 1.2 seconds
    seconds = np.array([0.0, 0.01, 0.6, 1.2, 1.205, 1.5, 2.7])
    notes = np.zeros(len(seconds), dtype=NOTE_DTYPE)
    notes["pitch"], notes["velocity"] = 60, 70
    notes["onset_sec"], notes["offset_sec"] = seconds, seconds + 0.2
    ioi = encode_performance(Performance(notes=notes, pedal=np.zeros((0, 2))))["ioi"]
    ids = played_ratio_ids(ioi)
    assert ids[0] == CHORD and ids[1] == CHORD and ids[4] == CHORD  # under 35 ms
    assert ids[2] == FIRST_STEP  # no step before it
    same = ids[3]  # 0.6 after 0.6: no change, the middle bin
    assert abs(ids[5] - (same - round(1 / RATIO_STEP))) <= 1  # half the step before
    assert abs(ids[6] - (same + round(2 / RATIO_STEP))) <= 1  # four times (after the 0.3)
    padded = np.concatenate([ioi, [PAD, PAD]])
    assert list(played_ratio_ids(padded)[-2:]) == [UNKNOWN, UNKNOWN]
    batch = played_ratio_ids(np.stack([ioi, ioi]))  # (B, T) as (T,)
    assert np.array_equal(batch, np.stack([ids, ids]))
