import numpy as np
import pytest
from builders import build_part, random_score, write_musicxml

from perf2score import Perf2ScoreError
from perf2score.data.cache import PreparedPerformance
from perf2score.evaluate.attributes import attribute_metrics
from perf2score.evaluate.beats import evaluate_beats, read_annotations, score_beats
from perf2score.midi.reading import NOTE_DTYPE, Performance
from perf2score.score import read_score
from perf2score.score.attributes import ATTRIBUTE_DTYPE


def test_score_beats_with_pickup(tmp_path):
    score = read_score(write_musicxml(build_part(), tmp_path / "s.musicxml"))
    beats, downbeats = score_beats(score)
    assert beats[:5].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert downbeats[:2].tolist() == [1.0, 4.0]  # the pickup has no downbeat


def test_beats_of_a_strict_performance_are_perfect():
    score = random_score(300, seed=2)
    tpq = score.ticks_per_quarter
    notes = np.zeros(len(score), dtype=NOTE_DTYPE)
    notes["pitch"] = score.notes["pitch"]
    notes["onset_sec"] = score.notes["onset_ticks"] / tpq * 0.5  # 120 bpm
    notes["offset_sec"] = score.notes["offset_ticks"] / tpq * 0.5
    perf = Performance(notes, np.zeros((0, 2)))
    beats_q, downbeats_q = score_beats(score)
    last = score.notes["onset_ticks"].max() / tpq
    ref_beats = beats_q[beats_q <= last] * 0.5
    ref_down = downbeats_q[downbeats_q <= last] * 0.5
    result = evaluate_beats(score, perf, ref_beats, ref_down)
    assert result.beat_f > 0.98 and result.downbeat_f > 0.98


def test_read_annotations(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("0.5\t0.5\tdb,3/4,-1\n1.0\t1.0\tb\n1.5\t1.5\tb\n2.0\t2.0\tdb\n")
    beats, downbeats = read_annotations(path)
    assert beats.tolist() == [0.5, 1.0, 1.5, 2.0] and downbeats.tolist() == [0.5, 2.0]


def _prepared(n: int = 50) -> PreparedPerformance:
    rng = np.random.default_rng(0)
    table = np.zeros(n, dtype=ATTRIBUTE_DTYPE)
    table["onset_ticks"] = np.sort(rng.integers(0, 400, n))
    table["position_ticks"] = table["onset_ticks"] % 96
    table["duration_ticks"] = rng.choice([12, 24, 48], n)
    table["staff"] = rng.integers(1, 3, n)
    table["step"] = "C"
    table["ts_num"], table["ts_den"] = 4, 4
    notes = np.zeros(n + 2, dtype=NOTE_DTYPE)
    index = np.concatenate([np.arange(n), [-1, -1]])  # two drops
    return PreparedPerformance(
        "x", "test", notes, np.zeros((0, 2)), index, table, np.zeros(0, int), 24, 0
    )


def test_attribute_metrics_perfect_and_perturbed():
    prepared = _prepared()
    truth = prepared.targets()
    perfect = attribute_metrics(prepared, truth, prepared.drop)
    assert all(perfect[k] == 100.0 for k in ("rhythm", "position", "value", "staff", "drop_f1"))
    wrong = truth.copy()
    wrong["staff"][:10] = 3
    scored = attribute_metrics(prepared, wrong, np.zeros(len(truth), bool))
    assert scored["staff"] == pytest.approx(80.0)
    assert scored["drop_f1"] == 0.0
    with pytest.raises(Perf2ScoreError):
        attribute_metrics(prepared, truth[:-1], prepared.drop)
