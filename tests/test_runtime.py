"""The numpy runtime decodes what the torch model decodes, from the same folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from train_helpers import rendered, tiny_aligned

from perf2score import convert, load_neural_model
from perf2score.errors import Perf2ScoreError
from perf2score.models.adapter import AdapterConfig, merge_lora
from perf2score.models.io import load_aligned, save_aligned
from perf2score.neural.decode import decode_windows
from perf2score.neural.runtime import (
    gelu,
    load_numpy_aligned,
    pair_swap,
    rotary_tables,
    rotate,
    rotation_rows,
)
from perf2score.neural.settings import DecodeConfig
from perf2score.tokens.spec import BOS, FIRST_VALUE, STREAMS

STEP_QUESTIONS = ("same_step", "longer_step")


@pytest.fixture(scope="module")
def lora_folder(tmp_path_factory):
    """A tiny aligned model with LoRA, open gates and moved heads and LoRA weights, saved
    like a shipped one (the base LMs beside the adapter)."""
    return _moved_folder(
        tmp_path_factory.mktemp("lora"), AdapterConfig(rank=8, n_heads=2, lora_rank=4)
    )


@pytest.fixture(scope="module")
def ratio_folder(tmp_path_factory):
    """A tiny aligned model with LoRA that reads played step ratios, every trained weight
    (the ratio embedding too) moved from its start."""
    config = AdapterConfig(rank=8, n_heads=2, lora_rank=4, played_ratio=True)
    return _moved_folder(tmp_path_factory.mktemp("ratio"), config)


@pytest.fixture(scope="module")
def score_ft_folder(tmp_path_factory):
    """A tiny aligned model whose score LM was fine-tuned in full (``score-finetune``):
    every score weight moved, the performance LM as saved."""
    config = AdapterConfig(rank=8, n_heads=2, mode="score-finetune")
    return _moved_folder(tmp_path_factory.mktemp("score_ft"), config)


@pytest.fixture(scope="module")
def perf_ft_folder(tmp_path_factory):
    """A tiny aligned model with LoRA whose performance LM was fine-tuned in full
    (``performance-finetune``): every performance weight moved, the score LM's base frozen."""
    config = AdapterConfig(rank=8, n_heads=2, lora_rank=4, mode="performance-finetune")
    return _moved_folder(tmp_path_factory.mktemp("perf_ft"), config)


def _moved_folder(folder, config: AdapterConfig):
    """A tiny aligned model whose trained weights (adapters, gates, score heads, LoRA or the
    whole score LM, as ``config`` says) moved from their start, saved like a shipped one."""
    model, base = tiny_aligned(folder, config)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.3 * torch.randn_like(parameter))
    save_aligned(model, folder / "adapter", base)
    return folder / "adapter"


def _performance(n: int, seed: int = 3):
    return rendered(n, seed, seed)[0]


def _random_batch(streams, rng, B: int, T: int) -> tuple[dict, np.ndarray]:
    """Random performance ids (B, T) for ``streams`` and an all-false padding (B, T)."""
    perf = {n: rng.integers(FIRST_VALUE, STREAMS[n].size, (B, T)) for n in streams}
    return perf, np.zeros((B, T), bool)


def test_gelu_matches_the_exact_one():
    x = np.linspace(-8, 8, 4001, dtype=np.float32)
    exact = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
    # A&S 7.1.26 evaluated in float32: within 2e-6 (this machine's torch 2.13 differed by
    # 1.05e-6 at x = -3.49 and 1.2e-6 at 8.0, one float32 step there; the HEAD code too)
    np.testing.assert_allclose(gelu(x), exact, rtol=0, atol=2e-6)


def test_flat_rotation_rows_rotate_as_the_head_tables_do():
    rng = np.random.default_rng(0)
    B, H, D = 3, 4, 8
    cos, sin = rotary_tables(10, D, 10000.0)
    c, s = rotation_rows(cos, sin, 2 * H * D)  # q and k side by side: 2H heads
    swap = pair_swap(2 * H * D)
    x = rng.standard_normal((B, 2 * H * D)).astype(np.float32)
    for t in (0, 7):
        flat = x * c[t] + x[:, swap] * s[t]
        heads = rotate(x.reshape(B, 2 * H, 1, D), cos[t : t + 1], sin[t : t + 1])
        assert np.allclose(flat, heads.reshape(B, -1), atol=1e-6)


@pytest.mark.parametrize(
    "kind", ["lora_folder", "score_ft_folder", "ratio_folder", "perf_ft_folder"]
)
def test_each_step_gives_the_torch_logits(kind, request):
    """Encoder memory and every step's logits of all score streams, LoRA merged, padding;
    a model with LoRA, one whose score LM was fine-tuned in full, one that reads the
    played step ratios and one whose performance LM was fine-tuned in full."""
    folder = request.getfixturevalue(kind)
    torch_model = load_aligned(folder)
    merge_lora(torch_model)
    numpy_model = load_numpy_aligned(folder)
    rng = np.random.default_rng(0)
    B, T = 3, 24
    perf, padding = _random_batch(torch_model.performance.config.input_streams, rng, B, T)
    padding[2, 15:] = True
    session = numpy_model.session(perf, padding)
    with torch.no_grad():
        tensors = {k: torch.from_numpy(v) for k, v in perf.items()}
        memory = torch_model.encode(tensors, torch.from_numpy(padding))
        ratios = torch_model.ratio_inputs(tensors)
        cache = torch_model.score.new_cache()
        previous = {n: np.full(B, BOS) for n in torch_model.score.config.output_streams}
        for t in range(6):
            pitch = perf["pitch"][:, t]
            mine = session.step(previous, pitch, t)
            inputs = {k: torch.from_numpy(v[:, None]) for k, v in previous.items()}
            inputs["pitch"] = torch.from_numpy(pitch[:, None])
            theirs = torch_model(
                None,
                inputs,
                torch.from_numpy(padding),
                memory=memory,
                cache=cache,
                start=t,
                ratios=ratios,
            )
            assert mine.keys() == theirs.keys()
            for name, logits in mine.items():
                assert np.allclose(logits, theirs[name][:, -1].numpy(), atol=1e-4), (t, name)
            previous = {k: rng.integers(FIRST_VALUE, STREAMS[k].size, B) for k in previous}


def test_the_score_prior_is_the_score_lm_without_the_adapters(lora_folder):
    """With a prior weight, the listed streams are log p(y | performance) - α log p(y), the
    prior from the score LM stepped with no cross-attention; the other streams unchanged."""
    from perf2score.neural.runtime import log_softmax

    model = load_numpy_aligned(lora_folder)
    rng = np.random.default_rng(1)
    B, T = 2, 12
    perf, padding = _random_batch(model.performance.config.input_streams, rng, B, T)
    plain = model.session(perf, padding)
    weighted = model.session(perf, padding, prior=(0.4, ("position",)))
    score = model.score
    cache = score.new_cache(B, T)
    silent = [lambda h, t: np.zeros_like(h)] * len(model.adapters)
    previous = {n: np.full(B, BOS) for n in score.config.output_streams}
    for t in range(4):
        pitch = perf["pitch"][:, t]
        full, mixed = plain.step(previous, pitch, t), weighted.step(previous, pitch, t)
        tokens = {**previous, "pitch": pitch}
        x = score.embed({n: tokens[n] for n in score.config.input_streams})
        prior = score.step(x, t, cache, silent)
        expected = log_softmax(full["position"]) - 0.4 * log_softmax(prior["position"])
        assert np.allclose(mixed["position"], expected, atol=1e-4)
        assert np.allclose(mixed["value"], full["value"], atol=1e-5)
        previous = {k: rng.integers(FIRST_VALUE, STREAMS[k].size, B) for k in previous}
    with pytest.raises(Perf2ScoreError, match="numpy runtime"):
        config = DecodeConfig(window=16, overlap=4, prior_weight=0.3)
        decode_windows(load_aligned(lora_folder), _performance(20), config)
    with pytest.raises(ValueError, match="prior_streams"):
        DecodeConfig(prior_weight=0.3, prior_streams=("tempo",))
    chosen = DecodeConfig(prior_weight=0.2, prior_streams=("value",))  # JSON round trip
    assert DecodeConfig.from_dict(json.loads(json.dumps(chosen.to_dict()))) == chosen


@pytest.mark.parametrize("kind", ["lora_folder", "ratio_folder"])
def test_decoding_gives_the_same_attributes_as_the_torch_model(kind, request):
    folder = request.getfixturevalue(kind)
    torch_model = load_aligned(folder)
    merge_lora(torch_model)
    numpy_model = load_numpy_aligned(folder)
    performance = _performance(150)
    config = DecodeConfig(window=48, overlap=16)
    a, drop_a = decode_windows(torch_model, performance, config)
    b, drop_b = decode_windows(numpy_model, performance, config)
    assert np.array_equal(drop_a, drop_b)
    assert np.array_equal(a, b)


def test_the_default_settings_are_the_shipped_decoding():
    """A bare network of the shipped model (``convert(..., model=network)``) decodes with the
    defaults: they must be the settings the shipped model is decoded with."""
    from perf2score.neural.converter import model_folder

    assert DecodeConfig() == DecodeConfig.read(model_folder())


def test_the_shipped_model_converts_alike_in_both_runtimes():
    """The shipped model (meter head and piece bar lines included): the same MusicXML."""
    performance = _performance(300, seed=7)
    by_numpy = load_neural_model()
    by_torch = load_neural_model(runtime="torch")
    assert by_numpy.describe()["runtime"] == "numpy" and by_numpy.meter is not None
    assert by_torch.describe()["runtime"] == "torch"
    expected = convert(performance, model=by_torch).to_musicxml()
    assert convert(performance, model=by_numpy).to_musicxml() == expected
    assert convert(performance, model=by_numpy.network).to_musicxml() == expected


def test_unknown_runtime_is_refused(lora_folder):
    with pytest.raises(Perf2ScoreError, match="runtime must be"):
        load_neural_model(runtime="onnx")


def test_a_meter_head_on_another_lm_reads_its_own_copy_of_it(lora_folder):
    """The shipped meter head was trained on the shipped model's fine-tuned performance LM,
    not the tiny model's: the numpy runtime gives it that LM (read from the shipped aligned
    model) for a pass of its own, and its odds are the torch head's."""
    from perf2score.models.meter_head import load_meter
    from perf2score.neural.decode import decode_many
    from perf2score.neural.meter import meter_logits
    from perf2score.shipped import SHIPPED_METER

    decoding = DecodeConfig(window=48, overlap=16)
    model = load_neural_model(lora_folder, decoding, meter=SHIPPED_METER)
    assert model.meter.performance is not None and model.meter.shared == 0
    assert model.meter.performance is not model.network.performance
    performance = _performance(150)
    odds: list[np.ndarray] = []
    decode_many(model.network, [performance], decoding, model.meter, odds)
    expected = meter_logits(load_meter(SHIPPED_METER), performance, 48, 16)  # (N, 3)
    asked = len(model.meter.questions)  # downbeat, beat, rest_after
    assert expected.shape == (150, asked)
    assert np.allclose(odds[0][:, :asked], expected, atol=1e-4)


def _in_child(job: int) -> tuple[int, int]:
    import os

    if job < 0:
        raise ValueError(f"bad job {job}")
    return job * 10, os.getpid()


def test_side_by_side_runs_the_other_jobs_in_children_in_order():
    import os

    from perf2score.parallel import side_by_side

    results = side_by_side(_in_child, [1, 2, 3])
    assert [r for r, _ in results] == [10, 20, 30]
    pids = [pid for _, pid in results]
    assert pids[0] == os.getpid() and os.getpid() not in pids[1:]  # the first job here
    with pytest.raises(ValueError, match="bad job -1"):  # a child's error comes back
        side_by_side(_in_child, [1, -1])
    assert side_by_side(_in_child, [4])[0][1] == os.getpid()


def test_windows_decoded_side_by_side_are_the_windows_decoded_in_one_process():
    """The shipped model with its heads: the same ids and heads' odds from 2 processes (up to
    the rounding of products over smaller batches)."""
    from perf2score.neural.decode import MIN_SPLIT_WINDOWS, decode_many

    model = load_neural_model()
    performance = _performance(900)
    config = model.decoding
    assert len(performance.notes) // (config.window - config.overlap) >= 2 * MIN_SPLIT_WINDOWS
    one_odds: list[np.ndarray] = []
    two_odds: list[np.ndarray] = []
    one = decode_many(model.network, [performance], config, model.meter, one_odds)[0]
    two = decode_many(model.network, [performance], config, model.meter, two_odds, 2)[0]
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
    # downbeat, beat (and staff, when the hand head reads the decoder's pass)
    assert (
        one_odds[0].shape == (900, len(model.network.head_questions()))
        and one_odds[0].shape[1] >= 2
    )
    assert np.allclose(one_odds[0], two_odds[0], atol=1e-4)  # smaller batches: rounding
    model.processes = 2  # the whole conversion, as the command line does for one file
    assert (
        convert(performance, model=model).to_musicxml()
        == convert(performance, model=load_neural_model()).to_musicxml()
    )


def test_the_heads_pass_beside_the_steps_gives_the_same_odds_and_ids(monkeypatch):
    """A short file decoded in one process though two were asked: half the encoder pass and
    then the heads' pass run in threads; the same logits and odds bit for bit, the same ids."""
    from perf2score.neural import runtime
    from perf2score.neural.decode import MIN_SPLIT_WINDOWS, decode_many, windows

    model = load_neural_model()
    config = model.decoding
    performance = _performance(300)
    assert len(windows(300, config.window, config.overlap)) < 2 * MIN_SPLIT_WINDOWS
    rng = np.random.default_rng(0)
    perf, padding = _random_batch(model.network.performance.config.input_streams, rng, 3, 40)
    plain = model.network.session(perf, padding, True)
    beside = model.network.session(perf, padding, True, background=True)
    step = {n: np.full(3, FIRST_VALUE) for n in model.network.score.config.input_streams}
    del step["pitch"]
    for t in range(3):
        logits = plain.step(step, perf["pitch"][:, t], t)
        assert all(
            np.array_equal(v, beside.step(step, perf["pitch"][:, t], t)[k])
            for k, v in logits.items()
        )
    assert plain.odds.shape == (3, 40, len(model.network.head_questions()))
    assert np.array_equal(plain.odds, beside.odds)
    one_odds: list[np.ndarray] = []
    two_odds: list[np.ndarray] = []
    started = []
    start = runtime.BackgroundCall.start
    monkeypatch.setattr(runtime.BackgroundCall, "start", lambda job: started.append(start(job)))
    one = decode_many(model.network, [performance], config, model.meter, one_odds)[0]
    assert not started  # one process asked: no thread
    two = decode_many(model.network, [performance], config, model.meter, two_odds, 2)[0]
    # two asked, too few windows to split: half the encoder pass, then the heads, in threads
    assert len(started) == 2
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
    assert np.array_equal(one_odds[0], two_odds[0])


def test_an_encoder_pass_in_groups_of_windows_gives_each_windows_own_states():
    """More windows than ``ENCODED_TOGETHER`` go through the blocks a group at a time: the
    states are each window's own, bit for bit (padding included), whatever the grouping."""
    from perf2score.neural.runtime import ENCODED_TOGETHER

    lm = load_neural_model().network.performance
    count = 2 * ENCODED_TOGETHER + 1  # two full groups and one window alone
    perf, padding = _random_batch(lm.config.input_streams, np.random.default_rng(1), count, 24)
    padding[-1, 10:] = True
    together = lm.encode(perf, padding)
    alone = [
        lm.encode({k: v[b : b + 1] for k, v in perf.items()}, padding[b : b + 1])
        for b in range(count)
    ]
    assert len(together) == lm.config.n_layers + 1
    for layer, states in enumerate(together):
        assert states.shape == (count, 24, lm.config.d_model)
        assert np.array_equal(states, np.concatenate([one[layer] for one in alone]))


def test_a_session_is_freed_when_dropped_without_the_cyclic_collector():
    """A batch's session (its KV cache, the adapters' memory, the encoder states its heads'
    pass read) goes when the decoder drops it: no reference cycle holds it until Python's
    cyclic collector runs (100,000 notes grew to 1.9 GB that way)."""
    import gc
    import weakref

    model = load_neural_model()
    rng = np.random.default_rng(0)
    perf, padding = _random_batch(model.network.performance.config.input_streams, rng, 2, 24)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for background in (False, True):
            session = model.network.session(perf, padding, True, background=background)
            session.expand(2)  # the hooks are built again for the beam's rows
            assert session.odds.shape[:2] == (2, 24)
            gone = weakref.ref(session)
            del session
            assert gone() is None
    finally:
        if was_enabled:
            gc.enable()


def test_a_finished_background_call_lets_its_arguments_go():
    import weakref

    from perf2score.neural.runtime import BackgroundCall

    states = np.ones(4)
    job = BackgroundCall(lambda x: float(x.sum()), states)
    held = weakref.ref(states)
    del states
    job.start()
    assert job.result() == 4.0
    assert held() is None


def test_an_error_in_the_background_pass_reaches_the_caller():
    from perf2score.neural.runtime import BackgroundCall

    def fails(x):
        raise ValueError(f"bad {x}")

    job = BackgroundCall(fails, 3)
    job.start()
    with pytest.raises(ValueError, match="bad 3"):
        job.result()
    assert BackgroundCall(lambda x: x + 1, 2).result() == 3  # never started: computed on asking


def test_a_score_finetuned_model_loads_the_score_weights_it_trained(score_ft_folder):
    """The folder holds the whole score LM (its base is read first, then overwritten) and no
    performance weight; the loaded model is the one saved."""
    from safetensors.numpy import load_file

    saved = load_file(str(score_ft_folder / "adapter.safetensors"))
    assert any(k.startswith("score.blocks.") for k in saved)
    assert not any(k.startswith("performance.") for k in saved)
    model = load_aligned(score_ft_folder)
    for name, value in model.score.state_dict().items():
        assert np.array_equal(value.numpy(), saved[f"score.{name}"]), name


def test_a_performance_finetuned_model_keeps_only_what_it_trained(perf_ft_folder):
    """The folder holds the whole performance LM, the LoRA and the score heads, but none of
    the score LM's frozen base weights (read from its base folder); the loaded model is the
    one saved, and has no performance folder for heads to share."""
    from safetensors.numpy import load_file

    saved = load_file(str(perf_ft_folder / "adapter.safetensors"))
    assert any(k.startswith("performance.blocks.") for k in saved)
    assert not any(k.startswith("score.") and k.endswith(".base.weight") for k in saved)
    assert "score.embeddings.pitch.weight" not in saved
    model = load_aligned(perf_ft_folder)
    for name, value in model.performance.state_dict().items():
        assert np.array_equal(value.numpy(), saved[f"performance.{name}"]), name
    assert load_numpy_aligned(perf_ft_folder).performance_folder is None


def test_a_step_head_is_read_by_the_decoder_and_refused_where_it_cannot_be(lora_folder):
    """A step head on the model's performance LM (``load_neural_model(steps=)``) changes the
    decoded positions once ``step_weight`` > 0; a weight without a head, a folder without
    one, a meter head given as a step head and the torch runtime are refused."""
    from perf2score.models.config import MeterConfig
    from perf2score.models.io import load_model
    from perf2score.models.meter_head import MeterModel, save_meter
    from perf2score.neural.decode import decode_many

    performance_folder = lora_folder.parent / "performance"
    torch.manual_seed(1)
    head = MeterModel(load_model(performance_folder), MeterConfig(questions=STEP_QUESTIONS))
    with torch.no_grad():  # sure of "same" on some notes, of "shorter" on others
        head.head[-1].weight.mul_(40.0)
    steps = lora_folder.parent / "steps"
    save_meter(head, steps, performance_folder)
    performance = _performance(150)
    plain = DecodeConfig(window=48, overlap=16, meter="window")  # no meter head
    weighted = DecodeConfig(window=48, overlap=16, meter="window", step_weight=5.0)
    model = load_neural_model(lora_folder, weighted, steps=steps)
    assert model.network.steps is not None and model.network.steps.questions == STEP_QUESTIONS
    a, _ = decode_many(model.network, [performance], plain)[0]
    b, _ = decode_many(model.network, [performance], weighted)[0]
    assert not np.array_equal(a["position_ticks"], b["position_ticks"])
    with pytest.raises(Perf2ScoreError, match="needs a numpy model with a step head"):
        decode_many(load_numpy_aligned(lora_folder), [performance], weighted)
    with pytest.raises(Perf2ScoreError, match="needs a step head"):
        load_neural_model(lora_folder, weighted, steps=lora_folder)  # no meter.json
    beats = lora_folder.parent / "beats"
    save_meter(MeterModel(load_model(performance_folder)), beats, performance_folder)
    with pytest.raises(Perf2ScoreError, match="not a step head"):
        load_neural_model(lora_folder, weighted, steps=beats)
    with pytest.raises(Perf2ScoreError, match="needs the numpy runtime"):
        load_neural_model(lora_folder, weighted, runtime="torch", steps=steps)


def test_a_meter_head_trained_with_its_own_lm_reads_it_in_numpy(lora_folder):
    """A head trained with its performance LM (``tune_performance``) keeps that LM beside
    it, reloads into torch as saved, gives the torch odds in numpy (its own encoder pass,
    run with the decoder's windows), and the numpy converter bars with it without falling
    back to torch."""
    from perf2score.models.config import MeterConfig
    from perf2score.models.io import load_model
    from perf2score.models.meter_head import MeterModel, load_meter, save_meter
    from perf2score.neural.decode import decode_many
    from perf2score.neural.meter import head_odds, meter_logits

    performance_folder = lora_folder.parent / "performance"
    torch.manual_seed(2)
    head = MeterModel(load_model(performance_folder), MeterConfig(tune_performance=True))
    assert all(p.requires_grad for p in head.performance.parameters())
    with torch.no_grad():  # a tuned LM differs from the decoder's
        for parameter in head.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
    folder = lora_folder.parent / "tuned-meter"
    save_meter(head, folder, performance_folder)
    assert (folder / "performance" / "model.safetensors").is_file()
    assert json.loads((folder / "meter.json").read_text())["base"] == "performance"
    reloaded = load_meter(folder)
    for name, value in head.state_dict().items():
        assert torch.equal(value, reloaded.state_dict()[name]), name
    performance = _performance(150)
    # greedy: with the shipped beam the two runtimes decode the same ids here too, but the
    # heads' odds agree to 1e-4 only, and a near-tie of this random head in the decisions
    # made from them after decoding flipped on that, changing a note value (the beam has
    # its own runtime test in tests/test_beam.py); the beat evidence at half weight (the
    # default before 2026-12-06): at a quarter this random head's bar phases meet such a
    # near-tie too
    config = DecodeConfig(window=48, overlap=16, beam=1, meter_beat_weight=0.5)
    model = load_neural_model(lora_folder, config, meter=folder)
    assert model.describe()["runtime"] == "numpy"
    assert model.meter.performance is not None and model.network.heads()[0] is model.meter
    odds: list[np.ndarray] = []  # read with the decoder's windows, by its own whole LM
    decode_many(model.network, [performance], config, model.meter, odds)
    expected = meter_logits(reloaded, performance, 48, 16)
    found = head_odds(model.meter, performance, 48, 16)
    assert np.allclose(found, expected, atol=1e-4) and np.allclose(
        odds[0][:, :2], expected, atol=1e-4
    )
    on_decoders = load_meter(folder)  # the same head on the decoder's LM reads otherwise
    on_decoders.performance.load_state_dict(load_model(performance_folder).state_dict())
    assert not np.allclose(found, meter_logits(on_decoders, performance, 48, 16), atol=1e-2)
    by_torch = load_neural_model(lora_folder, config, meter=folder, runtime="torch")
    assert convert(performance, model=model).to_musicxml() == (
        convert(performance, model=by_torch).to_musicxml()
    )


def test_a_hand_head_trained_with_its_own_lm_reads_it_in_numpy(lora_folder):
    """The hand head too: trained with its own performance LM, it staffs the notes alike in
    numpy (its own encoder pass) and in torch."""
    from perf2score.models.config import MeterConfig
    from perf2score.models.io import load_model
    from perf2score.models.meter_head import MeterModel, load_meter, save_meter
    from perf2score.neural.hands import hand_logits
    from perf2score.neural.meter import meter_logits

    performance_folder = lora_folder.parent / "performance"
    torch.manual_seed(3)
    config = MeterConfig(questions=("staff",), tune_performance=True)
    head = MeterModel(load_model(performance_folder), config)
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
    folder = lora_folder.parent / "tuned-hands"
    save_meter(head, folder, performance_folder)
    performance = _performance(150)
    decoding = DecodeConfig(window=48, overlap=16, meter="window", staff="hands")
    model = load_neural_model(lora_folder, decoding, hands=folder)
    assert model.describe()["runtime"] == "numpy" and model.hands.performance is not None
    assert model.network.heads() == [model.hands]  # read with the decoder's encoder pass
    expected = meter_logits(load_meter(folder), performance, 48, 16)[:, 0]
    found = hand_logits(model.network, model.hands, performance, 48, 16)
    assert np.allclose(found, expected, atol=1e-4)
    by_torch = load_neural_model(lora_folder, decoding, hands=folder, runtime="torch")
    assert convert(performance, model=model).to_musicxml() == (
        convert(performance, model=by_torch).to_musicxml()
    )


def test_a_head_that_trained_only_its_top_block_reads_the_decoders_pass(lora_folder):
    """``tuned_layers`` 1: only the LM's last block trains; converting reads the blocks
    below from the decoder's encoder pass (the head is among ``heads()``), runs its own top
    block, and gives the torch odds. A head whose lower blocks differ from the model's is
    refused."""
    from perf2score.models.config import MeterConfig
    from perf2score.models.io import load_model
    from perf2score.models.meter_head import MeterModel, load_meter, save_meter
    from perf2score.neural.decode import decode_many
    from perf2score.neural.meter import meter_logits
    from perf2score.neural.runtime import with_meter_head

    performance_folder = lora_folder.parent / "performance"
    torch.manual_seed(4)
    config = MeterConfig(tune_performance=True, tuned_layers=1)
    head = MeterModel(load_model(performance_folder), config)
    last = head.performance.config.n_layers - 1
    trained = {n for n, p in head.performance.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith(f"blocks.{last}.") for n in trained)
    with torch.no_grad():
        for parameter in head.parameters():
            if parameter.requires_grad:
                parameter.add_(0.2 * torch.randn_like(parameter))
    folder = lora_folder.parent / "top-meter"
    save_meter(head, folder, performance_folder)
    performance = _performance(150)
    decoding = DecodeConfig(window=48, overlap=16)
    model = load_neural_model(lora_folder, decoding, meter=folder)
    assert model.meter.shared == last and model.network.heads()[0] is model.meter
    odds: list[np.ndarray] = []
    decode_many(model.network, [performance], decoding, model.meter, odds)
    expected = meter_logits(load_meter(folder), performance, 48, 16)
    assert np.allclose(odds[0][:, :2], expected, atol=1e-4)
    with torch.no_grad():  # a lower block moved too: not the decoder's pass any more
        head.performance.blocks[0].norm1.weight.add_(0.5)
    save_meter(head, folder, performance_folder)
    with pytest.raises(Perf2ScoreError, match="untrained blocks are not the model's"):
        with_meter_head(load_numpy_aligned(lora_folder), folder)


def test_half_precision_weights_read_as_astype_reads_them():
    from perf2score.neural.runtime import as_float32

    every = np.arange(2**16, dtype=np.uint16).view(np.float16)  # infinities and NaNs too
    np.testing.assert_array_equal(as_float32(every), every.astype(np.float32))
    shaped = every[:60].reshape(3, 4, 5)
    assert as_float32(shaped).shape == (3, 4, 5) and as_float32(shaped).dtype == np.float32
    single = np.linspace(-1, 1, 7, dtype=np.float64)
    np.testing.assert_array_equal(as_float32(single), single.astype(np.float32))


def test_the_lm_digest_ignores_float16_rounding_and_name_order_only():
    from perf2score.models.digest import lm_digest

    rng = np.random.default_rng(0)
    weights = {"b": rng.normal(size=(3, 4)).astype(np.float32), "a": np.float32([1.0, 2.0])}
    rounded = {k: v.astype(np.float16) for k, v in reversed(weights.items())}
    assert lm_digest(weights) == lm_digest(rounded)
    moved = {**weights, "a": np.float32([1.0, 2.5])}
    renamed = {"c": weights["b"], "a": weights["a"]}
    reshaped = {**weights, "b": weights["b"].reshape(4, 3)}
    assert len({lm_digest(w) for w in (weights, moved, renamed, reshaped)}) == 4


def test_a_meter_head_on_a_finetuned_lm_shares_the_decoders_pass(perf_ft_folder, tmp_path):
    """A head trained on the performance LM a model fine-tuned (its base: the aligned
    folder) records that LM's digest, which ``adapter.json`` records too: both runtimes
    then hand it the decoder's encoder states, with the odds of the head read alone; it
    ships beside the model that holds its LM only. Once the folder holds another LM, the
    head is refused with one sentence instead of reading the wrong states."""
    import shutil

    from perf2score.models.io import folder_digest, load_performance, performance_digest
    from perf2score.models.meter_head import MeterModel, load_meter, save_meter, ship_meter
    from perf2score.neural.decode import decode_many
    from perf2score.neural.meter import meter_logits

    aligned = tmp_path / "model" / "adapter"
    shutil.copytree(perf_ft_folder.parent, aligned.parent)
    lm = load_performance(aligned)
    recorded = json.loads((aligned / "adapter.json").read_text())["performance_digest"]
    assert recorded == performance_digest(lm) == folder_digest(aligned)
    assert recorded != folder_digest(aligned.parent / "performance")  # the pre-trained LM
    torch.manual_seed(4)
    head = MeterModel(lm)
    with torch.no_grad():
        for parameter in head.head.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    folder = tmp_path / "meter"
    save_meter(head, folder, aligned)
    assert json.loads((folder / "meter.json").read_text())["performance_digest"] == recorded
    config = DecodeConfig(window=48, overlap=16, beam=1)
    model = load_neural_model(aligned, config, meter=folder)
    assert model.meter.performance is None  # no pass of its own
    performance = _performance(150)
    odds: list[np.ndarray] = []
    decode_many(model.network, [performance], config, model.meter, odds)
    expected = meter_logits(load_meter(folder), performance, 48, 16)
    assert np.allclose(odds[0][:, :2], expected, atol=1e-4)
    by_torch = load_neural_model(aligned, config, meter=folder, runtime="torch")
    assert by_torch.meter.performance is by_torch.network.performance
    shipped = tmp_path / "shipped"
    ship_meter(folder, shipped / "meter", [aligned.parent / "performance", aligned])
    assert (
        json.loads((shipped / "meter" / "meter.json").read_text())["base"] == "../../model/adapter"
    )
    with pytest.raises(Perf2ScoreError, match="holds the performance LM the head was trained"):
        ship_meter(folder, shipped / "meter", [aligned.parent / "performance"])
    moved = load_aligned(aligned)  # the folder's performance LM trained on: the head is stale
    with torch.no_grad():
        moved.performance.blocks[0].attention.qkv.weight.add_(0.1)
    save_aligned(moved, aligned, {k: aligned.parent / k for k in ("performance", "score")})
    with pytest.raises(Perf2ScoreError, match="no longer holds the performance LM"):
        load_neural_model(aligned, config, meter=folder)


def test_the_shipped_meter_head_reads_the_shipped_models_encoder_states():
    """The shipped meter head was trained on the shipped model's performance LM (the digests
    agree), so it reads the decoder's encoder states instead of a pass of its own; a new
    model shipped without retraining the head fails here."""
    from perf2score.models.config import read_meter_json
    from perf2score.shipped import SHIPPED_METER

    model = load_neural_model()
    assert model.meter is not None and model.meter.performance is None
    assert model.network.meter is model.meter
    recorded = read_meter_json(SHIPPED_METER)[0]["performance_digest"]
    assert recorded == model.network.performance_digest
