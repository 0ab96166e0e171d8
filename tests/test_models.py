"""The note language models: shapes, causality, KV cache, padding, save/load, learning."""

import pytest
import torch

from perf2score.models import LMConfig, NoteLM, load_model, save_model, shift_right, stream_losses
from perf2score.tokens.spec import FIRST_VALUE, IGNORE_INDEX, STREAMS

torch.manual_seed(0)


def _tokens(config: LMConfig, batch: int = 2, notes: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    names = set(config.input_streams) | set(config.output_streams)
    return {
        n: torch.randint(FIRST_VALUE, STREAMS[n].size, (batch, notes), generator=g) for n in names
    }


def _tiny(kind: str) -> LMConfig:
    return LMConfig(kind=kind, d_model=32, n_layers=2, n_heads=2, d_ff=64, dropout=0.0)


@pytest.mark.parametrize("kind", ["performance", "score"])
def test_shapes_and_hidden_states(kind):
    config = _tiny(kind)
    model = NoteLM(config).eval()
    logits, hidden = model(_tokens(config))
    assert len(hidden) == config.n_layers + 1 and hidden[0].shape == (2, 12, 32)
    for name in config.output_streams:
        assert logits[name].shape == (2, 12, STREAMS[name].size)


def test_score_model_is_causal_and_the_cache_matches():
    config = _tiny("score")
    model = NoteLM(config).eval()
    tokens = _tokens(config)
    full, _ = model(tokens)
    changed = {k: v.clone() for k, v in tokens.items()}
    changed["position"][:, 8:] = FIRST_VALUE  # change the future
    partial, _ = model(changed)
    assert torch.allclose(full["position"][:, :8], partial["position"][:, :8], atol=1e-5)
    cache = model.new_cache()
    steps = [
        model({k: v[:, t : t + 1] for k, v in tokens.items()}, cache=cache, start=t)[0]
        for t in range(12)
    ]
    stepped = torch.cat([s["value"] for s in steps], dim=1)
    assert torch.allclose(stepped, full["value"], atol=1e-4)


def test_encoder_sees_both_ways_and_ignores_padding():
    config = _tiny("performance")
    model = NoteLM(config).eval()
    tokens = _tokens(config)
    padding = torch.zeros(2, 12, dtype=torch.bool)
    padding[:, 10:] = True
    base, _ = model(tokens, padding=padding)
    changed = {k: v.clone() for k, v in tokens.items()}
    changed["pitch"][:, 10:] = FIRST_VALUE  # padded notes change: nothing else may
    again, _ = model(changed, padding=padding)
    assert torch.allclose(base["pitch"][:, :10], again["pitch"][:, :10], atol=1e-5)
    changed["pitch"][:, 9] = FIRST_VALUE + 1  # a real later note changes earlier outputs
    third, _ = model(changed, padding=padding)
    assert not torch.allclose(base["pitch"][:, 0], third["pitch"][:, 0])


def test_save_load_identical_outputs(tmp_path):
    config = _tiny("score")
    model = NoteLM(config).eval()
    tokens = _tokens(config)
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.config == config
    assert torch.equal(model(tokens)[0]["bar"], loaded(tokens)[0]["bar"])


def test_a_tiny_model_overfits_and_bf16_autocast_runs():
    config = _tiny("score")
    model = NoteLM(config)
    tokens = _tokens(config, batch=4, notes=16)
    targets = {k: v.clone() for k, v in tokens.items()}
    targets["voice"][:, :4] = IGNORE_INDEX
    inputs = shift_right(tokens)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, _ = model(inputs)
        loss, parts = stream_losses(logits, targets)
        first = first if first is not None else float(loss.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.5 * first
    assert set(parts) == set(config.output_streams)


def test_config_validation_and_json(tmp_path):
    with pytest.raises(ValueError):
        LMConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError):
        LMConfig(kind="decoder")
    config = LMConfig(kind="score", d_model=64, n_heads=4)
    config.to_json(tmp_path / "c.json")
    assert LMConfig.from_json(tmp_path / "c.json") == config
