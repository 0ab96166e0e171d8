"""Two heads on one performance LM merged into one (perf2score.models.meter_merge)."""

import numpy as np
import pytest
import torch
from train_helpers import TINY

from perf2score.models import LMConfig, NoteLM
from perf2score.models.config import MeterConfig
from perf2score.models.meter_head import MeterModel, load_meter, save_meter
from perf2score.models.meter_merge import merged_heads
from perf2score.tokens.spec import PERFORMANCE_STREAMS


def _head(lm: NoteLM, questions: tuple[str, ...], hidden: int, seed: int) -> MeterModel:
    torch.manual_seed(seed)
    model = MeterModel(lm, MeterConfig(hidden=hidden, questions=questions)).eval()
    with torch.no_grad():  # a LayerNorm that is not the identity, to be folded
        model.head[0].weight.uniform_(0.5, 1.5)
        model.head[0].bias.uniform_(-0.5, 0.5)
    return model


def test_merged_heads_answer_as_the_heads_they_come_from(tmp_path):
    torch.manual_seed(0)
    lm = NoteLM(LMConfig(kind="performance", **TINY)).eval()
    meter = _head(lm, ("downbeat", "beat"), 16, 1)
    rests = _head(lm, ("downbeat", "beat", "rest_after"), 8, 2)
    merged = merged_heads(meter, rests, ("rest_after",))
    assert merged.config.questions == ("downbeat", "beat", "rest_after")
    assert merged.config.hidden == 24
    rng = np.random.default_rng(0)
    tokens = {
        s.name: torch.from_numpy(rng.integers(4, s.size, (2, 12))) for s in PERFORMANCE_STREAMS
    }
    padding = torch.zeros(2, 12, dtype=torch.bool)
    padding[1, 9:] = True
    with torch.no_grad():
        got, first, second = (m(tokens, padding=padding) for m in (merged, meter, rests))
    for question in ("downbeat", "beat"):
        assert torch.allclose(got[question], first[question], atol=1e-5)
    assert torch.allclose(got["rest_after"], second["rest_after"], atol=1e-5)
    assert not torch.allclose(got["downbeat"], second["downbeat"], atol=1e-3)
    save_meter(merged, tmp_path / "merged", tmp_path / "lm")  # fp32: no rounding added
    (tmp_path / "lm").mkdir()
    from perf2score.models.io import save_model

    save_model(lm, tmp_path / "lm")
    loaded = load_meter(tmp_path / "merged")
    with torch.no_grad():
        again = loaded(tokens, padding=padding)
    assert torch.allclose(again["rest_after"], second["rest_after"], atol=1e-5)
    with pytest.raises(ValueError, match="cannot take"):
        merged_heads(meter, rests, ("beat",))  # the first head answers it already
    with pytest.raises(ValueError, match="cannot take"):
        merged_heads(meter, rests, ("staff",))  # the second does not ask it
