"""Tests on the real ASAP / (n)ASAP data (skipped when ../shared/data is absent)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from perf2score.data import load_index, load_prepared
from perf2score.data.prepare import prepare

pytestmark = pytest.mark.data

SUBSET = {
    "Bach/Fugue/bwv_846": "test",
    "Bach/Fugue/bwv_858": "validation",
    "Chopin/Etudes_op_25/2": "train",  # mixed MusicXML divisions: partitura's note_array fails
    "Liszt/Mephisto_Waltz": "train",  # no score in the data: a logged skip
}


@pytest.fixture(scope="module")
def subset_cache(tmp_path_factory, asap_dir, nasap_dir, splits_csv):
    folder = tmp_path_factory.mktemp("prepared")
    with open(splits_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    keep = [r for r in rows if r["folder"] in SUBSET]
    keep.append(
        {
            **keep[0],
            "midi_performance": "Bach/Fugue/bwv_846/Nobody.mid",
            "m2st_split": "excluded",
            "m2st_exclude_reason": "to_ignore_indices",
        }
    )
    small = folder / "splits.csv"
    with open(small, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(keep)
    report = prepare(asap_dir, nasap_dir, small, folder / "cache", workers=2, progress=False)
    return folder / "cache", report, len(keep)


def test_prepare_report(subset_cache):
    cache, report, n_rows = subset_cache
    assert report["processed"] + report["skipped"] == n_rows
    assert set(report["per_split"]) == {"train", "validation", "test"}
    reasons = " ".join(report["skip_reasons"])
    assert "no (n)ASAP MusicXML score" in reasons and "excluded" in reasons
    assert report["coverage_performed_aligned_pct"] > 90
    assert len(load_index(cache)) == report["processed"]
    assert all(r["split"] == "test" for r in load_index(cache, "test"))


def test_targets_are_consistent(subset_cache):
    cache, _, _ = subset_cache
    for row in load_index(cache):
        prepared = load_prepared(cache, row["perf_id"])
        targets = prepared.targets()
        aligned = ~prepared.drop
        # the aligned score note has the performed pitch
        assert np.mean(prepared.notes["pitch"][aligned] == targets["pitch"][aligned]) > 0.99
        played = targets[aligned]
        assert np.all(played["position_ticks"] >= 0)
        assert np.all(played["position_ticks"] < played["measure_length_ticks"])
        assert not played["tie_stop"].any()  # tied continuations are never performed
        assert int(row["n_aligned"]) + int(row["n_drop"]) == len(prepared.notes)


def test_rerun_uses_the_cache(subset_cache, asap_dir, nasap_dir):
    import time

    cache, report, _ = subset_cache
    start = time.perf_counter()
    again = prepare(asap_dir, nasap_dir, cache.parent / "splits.csv", cache, progress=False)
    assert time.perf_counter() - start < 10
    assert again["processed"] == report["processed"]
    assert again["aligned_notes"] == report["aligned_notes"]


def test_oracle_round_trip_and_batch_evaluation(subset_cache, tmp_path):
    from perf2score.evaluate.batch import evaluate_folder
    from perf2score.predict import predict_split

    cache, _, _ = subset_cache
    written = predict_split(cache, "test", tmp_path / "oracle", source="oracle", progress=False)
    assert not written["failures"] and written["notes"] > 0
    recorded = json.loads((tmp_path / "oracle" / "predict.json").read_text())
    assert recorded["source"] == "oracle" and recorded["notes"] == written["notes"]
    summary = evaluate_folder(
        cache, "test", tmp_path / "oracle", tmp_path / "eval", with_mv2h=False, progress=False
    )
    assert summary["n_scored"] == summary["n_performances"] > 0
    means = summary["mean_over_performances"]
    assert means["e_avg"] < 2.0 and means["pitch_er"] < 0.1 and means["onset_er"] < 1.0
    assert {p.name for p in (tmp_path / "eval").iterdir()} == {
        "per_performance.csv",
        "summary.json",
        "summary.md",
    }


def test_classical_predictions_on_a_validation_piece(subset_cache, tmp_path):
    from perf2score.evaluate.batch import evaluate_folder
    from perf2score.predict import predict_split

    cache, _, _ = subset_cache
    result = predict_split(cache, "validation", tmp_path / "classical", progress=False)
    assert not result["failures"]
    summary = evaluate_folder(
        cache,
        "validation",
        tmp_path / "classical",
        tmp_path / "eval",
        with_mv2h=False,
        progress=False,
    )
    means = summary["mean_over_performances"]
    # a Bach fugue: the classical converter gets most rhythms right (E_avg ~10 % here)
    assert 0 < means["e_avg"] < 25 and means["missing_rate"] < 10


def test_neural_predictions_record_their_decoding_settings(subset_cache, tmp_path):
    from perf2score.errors import Perf2ScoreError
    from perf2score.neural.settings import DecodeConfig
    from perf2score.predict import predict_split
    from perf2score.shipped import SHIPPED_HANDS, SHIPPED_METER

    cache, _, _ = subset_cache
    settings = tmp_path / "decoding.json"
    settings.write_text(json.dumps({"window": 128, "overlap": 32}))
    heads = {"meter": str(SHIPPED_METER), "hands": str(SHIPPED_HANDS)}
    result = predict_split(
        cache, "validation", tmp_path / "neural", source="neural", decoding=settings,
        progress=False, workers=1, heads=heads,
    )  # fmt: skip
    assert not result["failures"] and result["notes"] > 0
    recorded = json.loads((tmp_path / "neural" / "predict.json").read_text())
    assert recorded["decoding"] == DecodeConfig(window=128, overlap=32).to_dict()
    assert recorded["heads"] == heads
    with pytest.raises(Perf2ScoreError, match="not a meter head"):  # before any worker
        predict_split(cache, "validation", tmp_path / "x", source="neural",
                      heads={"meter": str(SHIPPED_HANDS)})  # fmt: skip
    with pytest.raises(Perf2ScoreError, match="neural source only"):
        predict_split(cache, "validation", tmp_path / "x", heads={"meter": str(SHIPPED_METER)})
    written = list((tmp_path / "neural").rglob("*.musicxml"))
    assert written and all("<score-partwise" in p.read_text() for p in written)


def test_calibration_command_on_two_files(asap_dir, calibration_dir, tmp_path):
    from perf2score.evaluate.calibration import calibrate

    report = calibrate(calibration_dir, asap_dir, tmp_path, limit=2, progress=False)
    assert report["n_performances"] == 2
    assert report["gt_vs_gt_max_e_avg"] == 0.0
    assert abs(report["rates"]["e_avg"]["difference"]) < 2.0


def test_tokens_round_trip_on_prepared_data(subset_cache):
    from perf2score.midi import Performance
    from perf2score.tokens import decode_score, encode_performance, encode_score

    cache, _, _ = subset_cache
    for row in load_index(cache):
        prepared = load_prepared(cache, row["perf_id"])
        targets = prepared.targets()
        tokens, off_grid = encode_score(targets, prepared.ticks_per_quarter, prepared.drop)
        back, drop = decode_score(tokens, prepared.notes["pitch"], prepared.ticks_per_quarter)
        keep = ~drop
        on_grid = (targets["position_ticks"] * 24) % prepared.ticks_per_quarter == 0
        tpq = prepared.ticks_per_quarter
        expected = sum(
            int(np.sum((targets[name][keep] * 24) % tpq != 0))
            for name in ("position_ticks", "duration_ticks", "measure_length_ticks")
        )
        assert off_grid == expected  # dropped rows are zero-filled, hence on the grid
        assert np.array_equal(
            back["position_ticks"][keep & on_grid], targets["position_ticks"][keep & on_grid]
        )
        assert np.array_equal(back["staff"][keep], targets["staff"][keep])
        perf_tokens = encode_performance(Performance(prepared.notes, prepared.pedal))
        assert all(len(ids) == len(prepared.notes) for ids in perf_tokens.values())


def _in_vocabulary(batch: dict) -> None:
    from perf2score.tokens.spec import IGNORE_INDEX, STREAMS

    for part in ("inputs", "targets", "performance"):
        for name, ids in batch.get(part, {}).items():
            real = ids[ids != IGNORE_INDEX]
            assert real.min() >= 0 and real.max() < STREAMS[name].size, (part, name)


def test_training_examples_from_prepared_data(subset_cache):
    from perf2score.tokens.spec import IGNORE_INDEX
    from perf2score.train.config import DataConfig, RunConfig
    from perf2score.train.datasets import AlignData, PerformanceLMData, ScoreLMData

    cache, _, _ = subset_cache
    config = RunConfig(data=DataConfig(prepared=str(cache), window=64, validation_windows=4))
    rng = np.random.default_rng(0)
    for data_class in (PerformanceLMData, ScoreLMData, AlignData):
        train = data_class(config, "train")
        batch = train.sample(rng, 4)
        assert batch["padding"].shape == (4, 64)
        _in_vocabulary(batch)
        validation = data_class(config, "validation").validation(2)
        assert len(validation) == 2
        again = data_class(config, "validation").validation(2)
        assert all(
            (a["targets"][k] == b["targets"][k]).all()
            for a, b in zip(validation, again, strict=True)
            for k in a["targets"]
        )  # fixed validation windows
    batch = AlignData(config, "train").sample(rng, 8)
    dropped = batch["targets"]["drop"] == 4  # FIRST_VALUE + 1
    assert (batch["targets"]["position"][dropped] == IGNORE_INDEX).all()


def test_corpus_preparation_skips_validation_works(tmp_path, subset_cache):
    from conftest import SHARED_DATA

    from perf2score.data.corpus import load_corpus_index, prepare_corpus

    cache, _, _ = subset_cache
    archive = SHARED_DATA / "scores-corpus.tar.xz"
    if not archive.is_file():
        pytest.skip("scores-corpus.tar.xz absent")
    report = prepare_corpus(archive, tmp_path, cache, workers=1, limit=3, progress=False)
    assert report["scores"] + report["skipped"] == 3
    assert len(load_corpus_index(tmp_path)) == report["scores"] > 0


def test_decoded_validation_scores_transcribed_excerpts(subset_cache):
    import torch

    from perf2score.models import LMConfig, NoteLM
    from perf2score.models.adapter import AdapterConfig, AlignedModel
    from perf2score.train.validation import decoded_metrics, validation_excerpts

    cache, _, _ = subset_cache
    excerpts = validation_excerpts(cache, count=1, notes=64)
    assert len(excerpts) == 1 and len(excerpts[0].notes) == 64
    torch.manual_seed(0)
    tiny = {"d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64}
    model = AlignedModel(
        NoteLM(LMConfig(kind="performance", **tiny)),
        NoteLM(LMConfig(kind="score", **tiny)),
        AdapterConfig(rank=8, n_heads=2),
    ).eval()
    metrics = decoded_metrics(model, excerpts)
    assert {"rhythm", "position", "value", "staff", "spelling", "drop_f1", "mean"} <= set(metrics)
    assert all(0.0 <= v <= 100.0 for v in metrics.values())


def test_aligned_examples_mark_rhythm_changes_when_weighted(subset_cache):
    from perf2score.models.losses import CHANGE_TARGET
    from perf2score.tokens.spec import IGNORE_INDEX
    from perf2score.train.config import DataConfig, RunConfig, TrainConfig
    from perf2score.train.datasets import AlignData

    cache, _, _ = subset_cache
    data = DataConfig(prepared=str(cache), window=64, validation_windows=4)
    plain = AlignData(RunConfig(data=data), "train").sample(np.random.default_rng(0), 4)
    assert CHANGE_TARGET not in plain["targets"]
    config = RunConfig(data=data, train=TrainConfig(change_weight=3.0))
    batch = AlignData(config, "train").sample(np.random.default_rng(0), 8)
    change = batch["targets"][CHANGE_TARGET]
    assert set(change.unique().tolist()) <= {0, 1, IGNORE_INDEX}
    assert 0.02 < float((change == 1).sum()) / float((change >= 0).sum()) < 0.6
    dropped = batch["targets"]["drop"] == 4  # FIRST_VALUE + 1
    assert not (change[dropped] == 1).any()  # a dropped note has no onset to change


def test_aligned_examples_carry_the_rest_target_when_a_head_asks(subset_cache):
    import torch

    from perf2score.models.config import REST_TARGET, MeterConfig
    from perf2score.models.meter_head import meter_targets
    from perf2score.tokens.spec import IGNORE_INDEX
    from perf2score.train.config import DataConfig, RunConfig
    from perf2score.train.datasets import AlignData

    cache, _, _ = subset_cache
    data = DataConfig(prepared=str(cache), window=64, validation_windows=4)
    plain = AlignData(RunConfig(data=data), "train").sample(np.random.default_rng(0), 4)
    assert REST_TARGET not in plain["targets"]
    asked = RunConfig(data=data, meter=MeterConfig(questions=("downbeat", REST_TARGET)))
    aligned = AlignData(asked, "train")
    pooled = np.concatenate(aligned.rests)  # per performed note of every performance
    assert 0 < float((pooled == 1).sum()) / float((pooled >= 0).sum()) < 0.5
    batch = aligned.sample(np.random.default_rng(0), 8)
    rest = batch["targets"][REST_TARGET]
    assert set(rest.unique().tolist()) <= {0, 1, IGNORE_INDEX}
    assert (rest >= 0).sum() > 0
    dropped = batch["targets"]["drop"] == 4  # FIRST_VALUE + 1: a dropped note has no value
    assert (rest[dropped] == IGNORE_INDEX).all()
    assert (rest[batch["padding"]] == IGNORE_INDEX).all()
    assert torch.equal(meter_targets(batch["targets"], (REST_TARGET,))[REST_TARGET], rest)


def test_unpaired_scores_train_from_pitches_alone(tmp_path, subset_cache):
    from conftest import SHARED_DATA

    from perf2score.data.corpus import prepare_corpus
    from perf2score.errors import Perf2ScoreError
    from perf2score.tokens.spec import MASK
    from perf2score.train.config import DataConfig, RunConfig
    from perf2score.train.datasets import AlignData, pitch_only

    tokens = {"pitch": np.array([40, 41]), "ioi": np.array([5, 6]), "velocity": np.array([7, 8])}
    masked = pitch_only(tokens)
    assert masked["pitch"].tolist() == [40, 41]
    assert masked["ioi"].tolist() == masked["velocity"].tolist() == [MASK, MASK]
    cache, _, _ = subset_cache
    with pytest.raises(Perf2ScoreError, match="corpus"):
        AlignData(RunConfig(data=DataConfig(prepared=str(cache), unpaired_share=0.5)), "train")
    archive = SHARED_DATA / "scores-corpus.tar.xz"
    if not archive.is_file():
        pytest.skip("scores-corpus.tar.xz absent")
    prepare_corpus(archive, tmp_path, cache, workers=1, limit=3, progress=False)
    data = DataConfig(prepared=str(cache), corpus=str(tmp_path), window=64, unpaired_share=1.0)
    batch = AlignData(RunConfig(data=data), "train").sample(np.random.default_rng(0), 4)
    _in_vocabulary(batch)
    real = ~batch["padding"]
    assert real.any()
    for name, ids in batch["performance"].items():
        assert (ids[real] == MASK).all() != (name == "pitch"), name
    assert (batch["inputs"]["pitch"][real] == batch["performance"]["pitch"][real]).all()
    assert not (batch["targets"]["drop"][real] == 4).any()  # every corpus note is written
    validation = AlignData(RunConfig(data=data), "validation").validation(2)
    assert not (validation[0]["performance"]["ioi"][~validation[0]["padding"]] == MASK).all()
