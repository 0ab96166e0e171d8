"""The function-alignment adapter: a function-preserving start, layer mappings, parameter
efficiency, cached decoding, LoRA, learning."""

import math

import pytest
import torch

from perf2score.models import LMConfig, NoteLM
from perf2score.models.adapter import AdapterConfig, AlignedModel, adapter_state
from perf2score.models.losses import stream_losses
from perf2score.tokens.spec import FIRST_VALUE, STREAMS

TINY = {"d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64, "dropout": 0.0}


def _models(perf_layers: int = 3, score_layers: int = 2):
    torch.manual_seed(0)
    perf = NoteLM(LMConfig(kind="performance", **{**TINY, "n_layers": perf_layers}))
    score = NoteLM(LMConfig(kind="score", **{**TINY, "n_layers": score_layers}))
    return perf, score


def _tokens(config: LMConfig, batch: int = 2, notes: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return {
        n: torch.randint(FIRST_VALUE, STREAMS[n].size, (batch, notes), generator=g)
        for n in config.input_streams
    }


def _adapter(**kw) -> AdapterConfig:
    return AdapterConfig(rank=8, n_heads=2, dropout=0.0, **kw)


def test_training_starts_from_the_unchanged_score_lm():
    perf, score = _models()
    perf_tokens, score_tokens = _tokens(perf.config), _tokens(score.config, seed=1)
    alone, _ = score.eval()(score_tokens)
    model = AlignedModel(perf, score, _adapter(lora_rank=4)).eval()
    joined = model(perf_tokens, score_tokens)
    for name in alone:
        assert torch.allclose(alone[name], joined[name], atol=1e-5), name


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [("mix", [[0, 1, 2, 3], [0, 1, 2, 3]]), ("one-to-one", [[2], [3]]), ("last", [[3], [3]])],
)
def test_layer_mappings(mapping, expected):
    model = AlignedModel(*_models(), _adapter(mapping=mapping))
    assert model.sources == expected
    weights = model.mixture_weights()
    assert len(weights) == 2 and all(len(row) == 4 for row in weights)
    assert all(abs(sum(row) - 1) < 1e-6 for row in weights)


def test_frozen_training_is_parameter_efficient_and_saves_only_what_it_trains():
    frozen = AlignedModel(*_models(), _adapter())
    counts = frozen.parameter_counts()
    assert 0 < counts["trainable"] < counts["total"]
    assert not any(p.requires_grad for p in frozen.performance.parameters())
    assert not any(p.requires_grad for p in frozen.score.blocks.parameters())
    state = adapter_state(frozen)
    assert any(k.startswith("adapters.") for k in state)
    assert not any(k.startswith("performance.") for k in state)
    lora = AlignedModel(*_models(), _adapter(lora_rank=4))
    assert lora.parameter_counts()["trainable"] > counts["trainable"]
    full = AlignedModel(*_models(), _adapter(mode="full-finetune"))
    assert full.parameter_counts()["trainable"] == full.parameter_counts()["total"]


def test_score_finetuning_trains_the_score_lm_and_keeps_the_performance_lm():
    model = AlignedModel(*_models(), _adapter(mode="score-finetune"))
    assert model.config.performance_frozen
    assert not any(p.requires_grad for p in model.performance.parameters())
    assert all(p.requires_grad for p in model.score.parameters())
    state = adapter_state(model)
    assert {f"score.{n}" for n, _ in model.score.named_parameters()} <= set(state)
    assert not any(k.startswith("performance.") for k in state)
    model.train()
    assert not model.performance.training and model.score.training


def test_performance_finetuning_trains_the_performance_lm_and_keeps_the_score_lm():
    model = AlignedModel(*_models(), _adapter(mode="performance-finetune", lora_rank=4))
    assert not model.config.performance_frozen
    assert all(p.requires_grad for p in model.performance.parameters())
    trained_score = {n for n, p in model.score.named_parameters() if p.requires_grad}
    assert trained_score and all(
        ".down." in n or ".up." in n or "heads." in n for n in trained_score
    )
    assert not any(p.requires_grad for p in model.score.embeddings.parameters())
    state = adapter_state(model)  # every weight: the performance LM is not the base's
    assert {f"performance.{n}" for n, _ in model.performance.named_parameters()} <= set(state)
    model.train()
    assert model.performance.training


def test_pretrained_weights_take_their_own_learning_rate_share():
    from perf2score.train.loop import parameter_groups

    model = AlignedModel(*_models(), _adapter(mode="score-finetune", lora_rank=0))
    pretrained = model.pretrained_names()
    assert all(n.startswith("score.") or n.startswith("performance.") for n in pretrained)
    assert not any(n.startswith(("adapters.", "score.heads.")) for n in pretrained)
    fresh, lm = parameter_groups(model, 0.1)
    assert (fresh["lr_scale"], lm["lr_scale"]) == (1.0, 0.1)
    trained = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in fresh["params"] + lm["params"]} == trained
    assert {id(p) for p in lm["params"]} == {
        id(p) for n, p in model.named_parameters() if n in pretrained and p.requires_grad
    }
    (single,) = parameter_groups(AlignedModel(*_models(), _adapter()), 0.1)  # frozen: no LM
    assert single["lr_scale"] == 1.0


def test_cached_decoding_matches_the_full_forward():
    perf, score = _models()
    model = AlignedModel(perf, score, _adapter())
    with torch.no_grad():
        for adapter in model.adapters:
            adapter.gate.fill_(0.5)  # the adapters must matter in this test
    model.eval()
    perf_tokens, score_tokens = _tokens(perf.config), _tokens(score.config, seed=1)
    full = model(perf_tokens, score_tokens)
    memory = model.encode(perf_tokens)
    cache = model.score.new_cache()
    steps = [
        model(
            None,
            {k: v[:, t : t + 1] for k, v in score_tokens.items()},
            memory=memory,
            cache=cache,
            start=t,
        )["position"]
        for t in range(10)
    ]
    assert torch.allclose(torch.cat(steps, dim=1), full["position"], atol=1e-4)


def test_the_adapter_learns_to_read_the_performance():
    """A task only the performance can solve: the score value equals the performance IOI."""
    perf, score = _models()
    model = AlignedModel(perf, score, _adapter(lora_rank=4)).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for step in range(200):
        perf_tokens = {k: torch.full_like(v, FIRST_VALUE) for k, v in _tokens(perf.config).items()}
        perf_tokens["ioi"] = _tokens(perf.config, seed=step)["ioi"] % 8 + FIRST_VALUE
        score_tokens = _tokens(score.config, seed=1000 + step)
        target = {"value": perf_tokens["ioi"]}
        logits = model(perf_tokens, score_tokens)
        loss, _ = stream_losses({"value": logits["value"]}, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    chance = math.log(8)  # the best loss without reading the performance
    assert sum(losses[-10:]) / 10 < 0.5 * chance
    assert all(abs(float(a.gate.detach())) > 0.1 for a in model.adapters)


def test_merged_lora_computes_what_the_lora_layers_did():
    from torch import nn

    from perf2score.models.adapter import LoRALinear, merge_lora

    torch.manual_seed(0)
    model = nn.Sequential(LoRALinear(nn.Linear(8, 6), 2, 16.0), nn.GELU(), nn.Linear(6, 3))
    nn.init.normal_(model[0].up.weight)  # a trained-looking adapter (B is zero at start)
    x = torch.randn(5, 8)
    before = model(x)
    assert merge_lora(model) == 1
    assert type(model[0]) is nn.Linear and not any(p.requires_grad for p in model[0].parameters())
    assert torch.allclose(model(x), before, atol=1e-5)
    assert merge_lora(model) == 0


def test_scheduled_sampling_swaps_in_the_models_own_predictions_of_the_note_before():
    from perf2score.tokens.spec import BOS, IGNORE_INDEX
    from perf2score.train.tasks import aligned_forward, own_predictions

    perf, score = _models()
    model = AlignedModel(perf, score, _adapter(lora_rank=4)).eval()
    score_tokens = _tokens(score.config, seed=1)
    score_tokens = {k: v.clone() for k, v in score_tokens.items()}
    for ids in score_tokens.values():
        ids[:, 0] = BOS
    targets = {k: v.roll(-1, dims=1) for k, v in score_tokens.items() if k != "pitch"}
    targets["position"][0, 3] = IGNORE_INDEX  # a dropped note: its successor keeps the truth
    batch = {
        "performance": _tokens(perf.config),
        "inputs": score_tokens,
        "targets": targets,
        "padding": torch.zeros(2, 10, dtype=torch.bool),
    }
    logits = model(batch["performance"], batch["inputs"], padding=batch["padding"])
    swapped = own_predictions(model, batch, share=1.0)
    for name, ids in swapped.items():
        if name == "pitch":
            assert torch.equal(ids, score_tokens["pitch"])
            continue
        assert torch.equal(ids[:, 0], score_tokens[name][:, 0])  # BOS stays
        expected = logits[name][:, :-1].argmax(-1)
        kept = targets[name][:, :-1] != IGNORE_INDEX
        assert torch.equal(ids[:, 1:][kept], expected[kept])
        assert torch.equal(ids[:, 1:][~kept], score_tokens[name][:, 1:][~kept])
    untouched = own_predictions(model, batch, share=0.0)
    assert all(torch.equal(untouched[k], score_tokens[k]) for k in score_tokens)
    # evaluation stays teacher-forced: the same loss with and without the share
    plain, _ = aligned_forward(model, batch)
    sampled, _ = aligned_forward(model, batch, sampled_share=1.0)
    assert torch.equal(plain, sampled)
