"""Training: configuration files, augmentation, the loop (learning, checkpoints, exact resume,
DDP with two CPU processes). Uses generated scores only; the data tests are in test_data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import generated_table, tiny_task

from perf2score.errors import Perf2ScoreError
from perf2score.models import LMConfig
from perf2score.tokens import encode_performance
from perf2score.train.augment import augment_performance, render_performance, transpose_score
from perf2score.train.config import AugmentConfig, load_run_config
from perf2score.train.datasets import mask_notes
from perf2score.train.loop import train, validate_best

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return generated_table(tmp_path_factory.mktemp("score"))


def _task(kind, table, steps, seed=0):
    return tiny_task(kind, table, steps, seed)


@pytest.mark.parametrize("kind", ["performance", "score"])
def test_a_tiny_model_learns_and_writes_its_run(kind, table, tmp_path):
    summary = train(_task(kind, table, 60), tmp_path / "run", progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [e["validation"]["loss"] for e in log if "validation" in e]
    assert len(losses) == 6 and losses[-1] < 0.7 * losses[0]
    assert summary["steps"] == 60 and summary["parameters"] == summary["trainable_parameters"]
    streams = summary["final_validation"]["streams"]
    assert set(streams) <= set(LMConfig(kind=kind).output_streams) and streams
    for name in ("model.safetensors", "config.json"):
        assert (tmp_path / "run" / "best" / name).is_file()
    assert (tmp_path / "run" / "checkpoint" / "optimizer.safetensors").is_file()
    again = validate_best(_task(kind, table, 60, seed=5), tmp_path / "run")
    # the saved best model gives the loss it was chosen by (fp32; the last digits of float
    # sums may differ between runs of the same kernels, never more than this)
    assert again["loss"] == pytest.approx(summary["best_validation_score"], rel=1e-4)
    assert all(0 <= s["accuracy"] <= s["within_one"] <= 1 for s in again["streams"].values())


def test_resume_continues_the_same_run(table, tmp_path):
    straight = _task("performance", table, 20)
    train(straight, tmp_path / "a", progress=False)
    first = _task("performance", table, 20)
    train(first, tmp_path / "b", progress=False, until=10)  # an interrupted run
    with pytest.raises(Perf2ScoreError, match="--resume"):
        train(_task("performance", table, 20), tmp_path / "b", progress=False)
    resumed = _task("performance", table, 20, seed=99)  # other initial weights: all restored
    train(resumed, tmp_path / "b", resume=True, progress=False)
    for (name, a), (_, b) in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-6), name


def test_ddp_with_two_cpu_processes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(HERE), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29533",
        str(HERE / "ddp_worker.py"),
        str(tmp_path),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 6
    sums = [float((tmp_path / f"rank{r}.txt").read_text()) for r in (0, 1)]
    assert sums[0] == pytest.approx(sums[1], abs=1e-6)  # the replicas stayed identical


def test_config_files(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[model]\nd_model = 64\nn_heads = 2\n[train]\nsteps = 5\nprecision = "fp32"\n')
    config = load_run_config(good, "score")
    assert config.model.kind == "score" and config.model.d_model == 64 and config.train.steps == 5
    for text, message in [
        ("[model]\nwidth = 3\n", "unknown keys"),
        ("[trainer]\n", "unknown tables"),
        ('[model]\nkind = "performance"\n', "this task trains"),
        ("[model]\nd_model = 30\nn_heads = 4\n", "even integer"),
        ("[train\n", "not valid TOML"),
    ]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(Perf2ScoreError, match=message):
            load_run_config(bad, "score")
    shipped = sorted((HERE.parent / "configs").glob("*.toml"))
    assert shipped
    for path in shipped:
        kind = (
            "align"
            if "align" in path.name
            else "meter"
            # the hand, second-voice, step and signature heads: meter-head runs
            if any(
                name in path.name
                for name in ("meter", "hands", "second-voice", "steps", "signature")
            )
            else "voices"
            if "voices" in path.name
            else "performance"
            if "perf" in path.name
            else "score"
        )
        load_run_config(path, kind)


def test_a_run_starts_from_an_aligned_model_and_adds_the_ratio_embedding(tmp_path):
    from train_helpers import tiny_aligned

    from perf2score.models.adapter import AdapterConfig
    from perf2score.models.io import save_aligned
    from perf2score.train.tasks import start_from

    trained, base = tiny_aligned(tmp_path / "lms", AdapterConfig(rank=8, n_heads=2, lora_rank=4))
    with torch.no_grad():
        for parameter in trained.parameters():
            if parameter.requires_grad:
                parameter.add_(0.3 * torch.randn_like(parameter))
    save_aligned(trained, tmp_path / "shipped", base)
    config = AdapterConfig(rank=8, n_heads=2, lora_rank=4, played_ratio=True)
    fresh, _ = tiny_aligned(tmp_path / "lms2", config)
    start_from(fresh, tmp_path / "shipped")
    mine = dict(fresh.named_parameters())
    for name, parameter in trained.named_parameters():
        if parameter.requires_grad:
            assert torch.allclose(mine[name], parameter, rtol=1e-3, atol=1e-3), name
    assert not fresh.ratio.weight.any()  # not in the folder: still zero, as initialised
    other, _ = tiny_aligned(tmp_path / "lms3", AdapterConfig(rank=16, n_heads=2, lora_rank=4))
    with pytest.raises(Perf2ScoreError, match="do not fit"):
        start_from(other, tmp_path / "shipped")
    with pytest.raises(Perf2ScoreError, match="no aligned model"):
        start_from(fresh, tmp_path)


def test_cli_reports_a_bad_config_in_one_line(tmp_path, capsys):
    from perf2score.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nwidth = 3\n")
    assert main(["train", "perf-lm", "--config", str(bad), "--out", str(tmp_path / "r")]) == 2
    error = capsys.readouterr().err
    assert "unknown keys" in error and "Traceback" not in error and error.count("\n") == 1


def test_transposition_respells_notes_and_keys(table):
    rows, _ = table
    up = transpose_score(rows, 2)  # F major (1 flat) -> G major (1 sharp)
    assert np.array_equal(up["pitch"], rows["pitch"] + 2)
    assert np.all(up["key_fifths"] == rows["key_fifths"] + 2)
    natural = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
    spelled = np.array([natural[s] for s in up["step"]]) + up["alter"] + 12 * (up["octave"] + 1)
    assert np.array_equal(spelled, up["pitch"])
    down = transpose_score(rows, -1)  # F -> E major (4 sharps), not Fb major (8 flats)
    assert np.all(down["key_fifths"] == 4)
    spelled = np.array([natural[s] for s in down["step"]]) + down["alter"]
    assert np.array_equal(spelled % 12, down["pitch"] % 12)


def test_performance_augmentation_and_rendering(table):
    rows, tpq = table
    rng = np.random.default_rng(3)
    performance = render_performance(rng, rows, tpq)
    notes = performance.notes
    assert len(notes) == len(rows) and np.all(np.diff(notes["onset_sec"]) >= 0)
    assert np.all(notes["offset_sec"] > notes["onset_sec"])
    config = AugmentConfig(drop_notes=0.2, insert_notes=0.2)
    augmented, source, semitones = augment_performance(rng, performance, config)
    out = augmented.notes
    assert np.all(np.diff(out["onset_sec"]) >= 0) and len(out) == len(source)
    assert out["pitch"].min() >= 21 and out["pitch"].max() <= 108
    shift = {
        int(o) - int(notes["pitch"][s]) for o, s in zip(out["pitch"], source, strict=True) if s >= 0
    }
    assert shift == {semitones} and abs(semitones) <= config.transpose
    tokens = encode_performance(augmented)
    inputs, targets = mask_notes(rng, tokens, 0.5)
    masked = targets["pitch"] != -100
    assert masked.any() and np.all(inputs["pitch"][masked] == 1)  # MASK


def test_the_adapter_fine_tunes_saves_and_loads(table, tmp_path):
    from train_helpers import FixedAlignedData

    from perf2score.models.io import load_aligned, load_aligned_weights, save_aligned
    from perf2score.train.config import RunConfig, TrainConfig
    from perf2score.train.loop import Task
    from perf2score.train.tasks import aligned_forward, build_aligned

    for kind in ("performance", "score"):
        train(tiny_task(kind, table, 10), tmp_path / kind, progress=False)
    config = RunConfig(train=TrainConfig(steps=60, batch_size=4, lr=3e-3, warmup=5, eval_every=20))
    config.base.performance, config.base.score = (
        str(tmp_path / "performance" / "best"),
        str(tmp_path / "score" / "best"),
    )
    config.adapter.rank, config.adapter.n_heads, config.adapter.lora_rank = 16, 2, 4
    base = {"performance": config.base.performance, "score": config.base.score}
    data = FixedAlignedData(*table)
    task = Task(
        "align",
        build_aligned(config),
        data,
        data,
        config,
        aligned_forward,
        lambda model, folder: save_aligned(model, folder, base),
        load_aligned_weights,
    )
    summary = train(task, tmp_path / "align", progress=False)
    assert summary["trainable_parameters"] < summary["parameters"]
    log = (tmp_path / "align" / "log.jsonl").read_text().splitlines()
    losses = [json.loads(e)["validation"]["loss"] for e in log if "validation" in e]
    assert losses[-1] < 0.7 * losses[0]
    loaded = load_aligned(tmp_path / "align" / "best")
    task.model.eval()
    batch = data.sample(np.random.default_rng(0), 2)
    expected = task.model(batch["performance"], batch["inputs"])
    got = loaded(batch["performance"], batch["inputs"])
    assert all(torch.allclose(expected[k], got[k], atol=1e-5) for k in expected)


def _trained_head(table, tmp_path, name: str, questions: tuple[str, ...], tune: bool = False):
    """(model, data, summary, validation results) of a per-note head asking ``questions``,
    trained 60 steps on the tiny table over a freshly pre-trained tiny performance LM (run
    folder ``tmp_path / name``; ``tune``: the LM trained with it)."""
    from train_helpers import FixedAlignedData

    from perf2score.models.config import MeterConfig
    from perf2score.models.io import load_model
    from perf2score.models.meter_head import (
        MeterModel,
        load_meter_weights,
        meter_forward,
        save_meter,
    )
    from perf2score.train.config import RunConfig, TrainConfig
    from perf2score.train.loop import Task

    train(tiny_task("performance", table, 10), tmp_path / "performance", progress=False)
    lm_folder = tmp_path / "performance" / "best"
    config = RunConfig(train=TrainConfig(steps=60, batch_size=4, lr=3e-3, warmup=5, eval_every=20))
    data = FixedAlignedData(*table)
    model = MeterModel(
        load_model(lm_folder), MeterConfig(questions=questions, tune_performance=tune)
    )
    task = Task(
        name,
        model,
        data,
        data,
        config,
        meter_forward,
        lambda m, folder: save_meter(m, folder, lm_folder),
        load_meter_weights,
    )
    summary = train(task, tmp_path / name, progress=False)
    log = (tmp_path / name / "log.jsonl").read_text().splitlines()
    results = [json.loads(e)["validation"] for e in log if "validation" in e]
    return model, data, summary, results


def test_the_meter_head_learns_saves_and_loads(table, tmp_path):
    from perf2score.models.meter_head import load_meter, meter_targets

    model, data, summary, results = _trained_head(table, tmp_path, "meter", ("downbeat", "beat"))
    assert summary["trainable_parameters"] < summary["parameters"]  # the LM stays frozen
    assert results[-1]["loss"] < 0.7 * results[0]["loss"]
    assert set(results[-1]["streams"]) == {"downbeat", "beat"}
    batch = data.sample(np.random.default_rng(0), 2)
    targets = meter_targets(batch["targets"])
    known = targets["downbeat"][0] != -100
    assert known.any()
    # the generated piece's notes on position 0 are the downbeats, beats include them
    assert targets["downbeat"][0][known].sum() > 0
    assert torch.all(targets["beat"][0][known] >= targets["downbeat"][0][known])
    assert targets["beat"][0][known].sum() > targets["downbeat"][0][known].sum()
    loaded = load_meter(tmp_path / "meter" / "best")
    model.eval()
    expected = model(batch["performance"], padding=batch["padding"])
    got = loaded(batch["performance"], padding=batch["padding"])
    assert all(torch.allclose(expected[k], got[k], atol=1e-5) for k in expected)


def test_a_meter_head_trains_with_its_own_performance_lm(table, tmp_path):
    """``tune_performance``: the LM's weights train with the head, are saved beside it (the
    LM it started from untouched), load back, and ship in fp16 with the head."""
    from perf2score.models.io import load_model
    from perf2score.models.meter_head import load_meter, ship_meter

    model, data, summary, results = _trained_head(
        table, tmp_path, "tuned", ("downbeat", "beat"), tune=True
    )
    assert summary["trainable_parameters"] == summary["parameters"]
    assert results[-1]["loss"] < 0.7 * results[0]["loss"]
    start = load_model(tmp_path / "performance" / "best")
    tuned = tmp_path / "tuned" / "best"
    saved = load_model(tuned / "performance")
    assert not torch.equal(
        start.state_dict()["blocks.0.attention.qkv.weight"],
        saved.state_dict()["blocks.0.attention.qkv.weight"],
    )
    batch = data.sample(np.random.default_rng(0), 2)
    model.eval()
    expected = model(batch["performance"], padding=batch["padding"])
    got = load_meter(tuned)(batch["performance"], padding=batch["padding"])
    assert all(torch.allclose(expected[k], got[k], atol=1e-5) for k in expected)
    ship_meter(tuned, tmp_path / "shipped", [tmp_path / "unused"])
    shipped = load_meter(tmp_path / "shipped")
    assert (tmp_path / "shipped" / "performance" / "model.safetensors").is_file()
    got = shipped(batch["performance"], padding=batch["padding"])
    assert all(torch.allclose(expected[k], got[k], atol=0.05) for k in expected)  # fp16


def test_a_head_starts_from_a_trained_one_with_other_questions(table, tmp_path):
    """``[base] head``: the trained head's LM (when both tune theirs), hidden layer and the
    rows of the questions both ask are taken; a new question's rows keep their initial
    values; a head of another width is refused."""
    from train_helpers import FixedAlignedData

    from perf2score.models.config import MeterConfig
    from perf2score.models.io import load_model
    from perf2score.models.meter_head import MeterModel, load_meter, start_head_from

    _trained_head(table, tmp_path, "tuned", ("downbeat", "beat"), tune=True)
    tuned = tmp_path / "tuned" / "best"
    source = load_meter(tuned)
    base = tmp_path / "performance" / "best"

    def fresh(tune: bool, hidden: int = 256) -> MeterModel:
        torch.manual_seed(0)
        config = MeterConfig(hidden=hidden, questions=("beat", "staff"), tune_performance=tune)
        return MeterModel(load_model(base), config)

    model, untouched = fresh(True), fresh(True)
    start_head_from(model, tuned)
    weights = model.head[4].weight
    assert torch.equal(weights[:2], source.head[4].weight[2:4])  # "beat": its 2nd question
    assert torch.equal(weights[2:], untouched.head[4].weight[2:])  # "staff": fresh
    assert torch.equal(model.head[1].weight, source.head[1].weight)
    assert all(p.requires_grad for p in model.performance.parameters())  # still all trained
    batch = FixedAlignedData(*table).sample(np.random.default_rng(0), 2)
    model.eval()
    got = model(batch["performance"], padding=batch["padding"])["beat"]
    expected = source(batch["performance"], padding=batch["padding"])["beat"]
    assert torch.allclose(got, expected, atol=1e-5)

    frozen = fresh(False)
    start_head_from(frozen, tuned)  # a frozen LM stays the base's
    assert torch.equal(
        frozen.performance.state_dict()["blocks.0.attention.qkv.weight"],
        load_model(base).state_dict()["blocks.0.attention.qkv.weight"],
    )
    with pytest.raises(Perf2ScoreError, match="does not fit"):
        start_head_from(fresh(True, hidden=64), tuned)


def test_corpus_leaves_out_validation_works(tmp_path):
    from perf2score.data.cache import INDEX_FIELDS, write_index
    from perf2score.data.corpus import validation_works

    row = dict.fromkeys(INDEX_FIELDS, 0)
    rows = [
        {**row, "perf_id": "a/x", "piece": "Beethoven/Piano_Sonatas/26-1", "split": "validation"},
        {**row, "perf_id": "b/y", "piece": "Beethoven/Piano_Sonatas/9-2", "split": "train"},
    ]
    write_index(tmp_path, rows)
    patterns = validation_works(tmp_path)
    hits = [
        name
        for name in (
            "dcmlab-beethoven_piano_sonatas/26-1",
            "craigsapp-beethoven-piano-sonatas/sonata26-1",
            "dcmlab-beethoven_piano_sonatas/26-2",
            "craigsapp-beethoven-piano-sonatas/sonata16-1",
            "dcmlab-beethoven_piano_sonatas/09-2",
        )
        if any(p.search(name) for p in patterns)
    ]
    assert hits == [
        "dcmlab-beethoven_piano_sonatas/26-1",
        "craigsapp-beethoven-piano-sonatas/sonata26-1",
    ]


def test_previous_note_masking_hides_score_inputs_but_not_the_pitch():
    from perf2score.tokens.spec import BOS, MASK
    from perf2score.train.config import run_config_from_dict
    from perf2score.train.datasets import mask_previous

    rng = np.random.default_rng(0)
    inputs = {"bar": np.full(2000, 7), "value": np.full(2000, 9), "pitch": np.full(2000, 50)}
    inputs["bar"][0] = inputs["value"][0] = BOS
    masked = mask_previous(rng, inputs, (0.5, 0.75))
    assert 0.45 < masked.mean() < 0.8 and not masked[0]
    assert (inputs["bar"][masked] == MASK).all() and (inputs["value"][~masked][1:] == 9).all()
    assert (inputs["pitch"] == 50).all() and inputs["bar"][0] == BOS
    inputs = {"bar": np.full(200, 7), "value": np.full(200, 9), "pitch": np.full(200, 50)}
    masked = mask_previous(rng, inputs, (0.5, 0.5), ("bar",))  # where it was, not what
    assert masked.any() and (inputs["bar"][masked] == MASK).all()
    assert (inputs["value"] == 9).all() and (inputs["pitch"] == 50).all()
    with pytest.raises(Perf2ScoreError, match="previous_mask"):
        run_config_from_dict({"augment": {"previous_mask": [0.8, 0.5]}}, "align")
    with pytest.raises(Perf2ScoreError, match="not score streams"):
        run_config_from_dict({"augment": {"previous_mask_streams": ["beat"]}}, "align")
    with pytest.raises(Perf2ScoreError, match="unpaired_share"):
        run_config_from_dict({"data": {"unpaired_share": 1.5}}, "align")
    with pytest.raises(Perf2ScoreError, match="pretrained_lr_scale"):
        run_config_from_dict({"train": {"pretrained_lr_scale": 0}}, "align")


def test_the_second_voice_target_is_any_voice_of_the_staff_but_its_first():
    from perf2score.models.meter_head import meter_targets
    from perf2score.tokens.spec import FIRST_VALUE, IGNORE_INDEX

    voice = torch.tensor([[0, 1, 2, 3, IGNORE_INDEX]])
    voice = torch.where(voice == IGNORE_INDEX, voice, voice + FIRST_VALUE)
    known = torch.tensor([[FIRST_VALUE] * 4 + [IGNORE_INDEX]])
    score = {
        "position": known,
        "time_signature": known,
        "grace": known,
        "staff": torch.where(known == IGNORE_INDEX, known, known + 1),
        "voice": voice,
    }
    targets = meter_targets(score, ("staff", "second_voice"))
    assert set(targets) == {"staff", "second_voice"}
    assert targets["second_voice"].tolist() == [[0, 1, 1, 1, IGNORE_INDEX]]
    assert targets["staff"].tolist() == [[1, 1, 1, 1, IGNORE_INDEX]]


def test_the_hand_head_learns_the_staff(table, tmp_path):
    from perf2score.models.meter_head import load_meter, meter_targets
    from perf2score.tokens.spec import FIRST_VALUE

    _, data, _, results = _trained_head(table, tmp_path, "hands", ("staff",))
    assert set(results[-1]["streams"]) == {"staff"}
    assert results[-1]["loss"] < 0.7 * results[0]["loss"]
    batch = data.sample(np.random.default_rng(0), 2)
    staff_tokens = batch["targets"]["staff"].clone()
    targets = meter_targets(batch["targets"])["staff"]
    known = staff_tokens != -100
    assert torch.equal(targets[known], staff_tokens[known] - FIRST_VALUE)
    assert set(targets[known].tolist()) == {0, 1}  # the generated pieces use both staves
    assert load_meter(tmp_path / "hands" / "best").config.questions == ("staff",)


def test_step_targets_compare_each_onset_step_with_the_one_before():
    from perf2score.models.meter_head import step_targets
    from perf2score.tokens.spec import FIRST_VALUE, IGNORE_INDEX

    # one window in 4/4 (96 grid units a measure): onsets 0, 24, 36, 48, 48 (a chord),
    # 72, a dropped note, then 96 + 0 (a new measure: a step of 24), 96 + 24
    bar = [0, 0, 0, 0, 0, 0, 0, 1, 0]
    position = [0, 24, 36, 48, 48, 72, IGNORE_INDEX, 0, 24]
    targets = {
        "bar": torch.tensor([bar]) + FIRST_VALUE,
        "measure_length": torch.full((1, 9), 96 + FIRST_VALUE),
        "position": torch.tensor([[p + FIRST_VALUE if p >= 0 else p for p in position]]),
    }
    out = step_targets(targets)
    x = IGNORE_INDEX
    assert out["same_step"][0].tolist() == [x, x, 0, 1, x, 0, x, 1, 1]
    assert out["longer_step"][0].tolist() == [x, x, 0, x, x, 1, x, x, x]


def test_tuplet_loss_weights_weigh_the_non_dyadic_classes():
    import torch

    from perf2score.models.losses import stream_losses, tuplet_class_weights
    from perf2score.tokens.spec import FIRST_VALUE, STREAMS

    assert tuplet_class_weights(1.0) == {}
    weights = tuplet_class_weights(2.0)
    value = weights["value"]
    grid = {g: float(value[g + FIRST_VALUE]) for g in (0, 3, 6, 8, 12, 16, 24, 4)}
    # dyadic (32nd, 16th, eighth, quarter) and graces 1; triplet 8th/quarter/16th 2
    assert grid == {0: 1.0, 3: 1.0, 6: 1.0, 8: 2.0, 12: 1.0, 16: 2.0, 24: 1.0, 4: 2.0}
    assert float(value[:FIRST_VALUE].max()) == 1.0
    size = STREAMS["value"].size
    logits = {"value": torch.zeros(1, 2, size)}
    logits["value"][0, :, FIRST_VALUE + 8] = 3.0  # sure of the triplet eighth for both
    targets = {"value": torch.tensor([[FIRST_VALUE + 8, FIRST_VALUE + 12]])}
    plain, _ = stream_losses(logits, targets)
    weighted, _ = stream_losses(logits, targets, weights)
    # the well-predicted triplet counts twice: the weighted mean loss is lower
    assert float(weighted) < float(plain)
    token = -torch.log_softmax(logits["value"][0], -1)
    expected = (2 * token[0, FIRST_VALUE + 8] + token[1, FIRST_VALUE + 12]) / 3
    assert abs(float(weighted) - float(expected)) < 1e-5


def test_rhythm_changes_mark_the_notes_whose_onset_step_changes():
    from perf2score.models.losses import rhythm_changes

    # steps 12, 12, (chord), 24, 12, 12, (played out of order), 12 from the latest onset
    onsets = np.array([0, 12, 24, 24, 48, 60, 72, 60, 84])
    assert rhythm_changes(onsets, np.zeros(9, bool)).tolist() == [0, 0, 0, 0, 1, 1, 0, 0, 0]
    # a dropped note is skipped: 0 -> 12 -> 24 is one step of 12 twice, then 48 (24) changes
    dropped = np.array([0, 12, 99, 24, 48])
    drop = np.array([False, False, True, False, False])
    assert rhythm_changes(dropped, drop).tolist() == [0, 0, 0, 0, 1]


def test_the_change_weight_weighs_the_onset_streams_at_rhythm_changes():
    import torch

    from perf2score.models.losses import CHANGE_TARGET, stream_losses
    from perf2score.tokens.spec import FIRST_VALUE, STREAMS

    size = STREAMS["position"].size
    logits = {
        "position": torch.zeros(1, 3, size),
        "value": torch.zeros(1, 3, STREAMS["value"].size),
    }
    logits["position"][0, :, FIRST_VALUE + 6] = 4.0  # sure of position 6 everywhere
    targets = {
        "position": torch.tensor([[FIRST_VALUE + 6, FIRST_VALUE + 12, -100]]),
        "value": torch.tensor([[FIRST_VALUE + 6, FIRST_VALUE + 6, FIRST_VALUE + 6]]),
        CHANGE_TARGET: torch.tensor([[0, 1, 1]]),
    }
    plain, parts = stream_losses(logits, targets)
    assert stream_losses(logits, targets, change_weight=1.0)[1] == parts
    weighted, weighted_parts = stream_losses(logits, targets, change_weight=3.0)
    token = -torch.log_softmax(logits["position"][0], -1)
    # the ignored third note counts for nothing; the changed (missed) second note thrice
    expected = (token[0, FIRST_VALUE + 6] + 3 * token[1, FIRST_VALUE + 12]) / 4
    assert abs(weighted_parts["position"] - float(expected)) < 1e-5
    assert weighted_parts["value"] == parts["value"]  # not an onset stream
    assert float(weighted) > float(plain)


def test_pre_training_starts_from_a_saved_lm(tmp_path):
    from perf2score.models import NoteLM, save_model
    from perf2score.train.tasks import start_lm_from

    torch.manual_seed(0)
    saved = NoteLM(LMConfig(kind="performance", d_model=32, n_layers=2, n_heads=2, d_ff=64))
    save_model(saved, tmp_path / "lm")
    config = tmp_path / "more.toml"
    config.write_text(
        "[model]\nd_model = 32\nn_layers = 2\nn_heads = 2\nd_ff = 64\ndropout = 0.0\n"
        '[base]\nlm = "lm"\n'
    )
    run = load_run_config(config, "performance")
    assert run.base.lm == str((tmp_path / "lm").resolve())  # relative to the TOML file
    torch.manual_seed(1)
    fresh = NoteLM(run.model)
    pairs = list(zip(fresh.state_dict().values(), saved.state_dict().values(), strict=True))
    assert not all(torch.equal(a, b) for a, b in pairs)  # other random weights before
    start_lm_from(fresh, run.base.lm)
    for (name, a), (_, b) in zip(
        fresh.state_dict().items(), saved.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    # another architecture is refused in one sentence naming the difference
    wide = NoteLM(LMConfig(kind="performance", d_model=64, n_layers=2, n_heads=2, d_ff=64))
    with pytest.raises(Perf2ScoreError, match="d_model 32 there, 64 here"):
        start_lm_from(wide, run.base.lm)
    # [base] lm belongs to pre-training; an LM run takes no adapter or head
    for kind, text, message in [
        ("align", '[base]\nlm = "lm"\n', "only for pre-training"),
        ("performance", '[base]\nhead = "lm"\n', "LM folder"),
    ]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(Perf2ScoreError, match=message):
            load_run_config(bad, kind)
