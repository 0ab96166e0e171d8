"""Neural decoding: constraints, windows stitched back into one piece, the neural backend."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from builders import random_score
from train_helpers import TINY

from perf2score.convert import convert
from perf2score.midi.reading import Performance
from perf2score.models import LMConfig, NoteLM
from perf2score.models.adapter import AdapterConfig, AlignedModel
from perf2score.models.io import save_aligned, save_model
from perf2score.neural.decode import _stitch, _windows, decode_windows
from perf2score.tokens.score import encode_score
from perf2score.tokens.spec import GRID_PER_QUARTER
from perf2score.train.augment import render_performance

NATURAL = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    """An untrained tiny aligned model with visible adapters, saved like a shipped one."""
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    perf = NoteLM(LMConfig(kind="performance", **TINY))
    score = NoteLM(LMConfig(kind="score", **TINY))
    save_model(perf, folder / "performance")
    save_model(score, folder / "score")
    model = AlignedModel(perf, score, AdapterConfig(rank=8, n_heads=2))
    with torch.no_grad():
        for adapter in model.adapters:
            adapter.gate.fill_(0.5)
    base = {"performance": str(folder / "performance"), "score": str(folder / "score")}
    save_aligned(model, folder / "adapter", base)
    return model.eval(), folder / "adapter"


def _performance(n: int = 150) -> tuple[Performance, np.ndarray]:
    notes = random_score(n, seed=3).notes
    table = np.zeros(len(notes), dtype=[("pitch", "i2"), ("onset_ticks", "i8"),
                                        ("duration_ticks", "i8"), ("is_grace", "?"),
                                        ("measure_start_ticks", "i8")])  # fmt: skip
    table["pitch"], table["onset_ticks"] = notes["pitch"], notes["onset_ticks"]
    table["duration_ticks"] = notes["offset_ticks"] - notes["onset_ticks"]
    table["measure_start_ticks"] = notes["onset_ticks"] // 96 * 96
    return render_performance(np.random.default_rng(0), table, 24), table


def test_windows_cover_every_note_once_in_the_middle():
    for n in (1, 40, 48, 49, 200):
        spans = _windows(n, 48, 16)
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(e - s <= 48 for s, e in spans)
        assert all(b[0] < a[1] for a, b in itertools.pairwise(spans))  # overlaps


def test_decoding_respects_the_constraints(aligned):
    model, _ = aligned
    performance, _ = _performance()
    attributes, drop = decode_windows(model, performance, window=48, overlap=16)
    assert len(attributes) == len(performance.notes) == len(drop)
    kept = attributes[~drop]
    assert len(kept)
    spelled = np.array([NATURAL[s] for s in kept["step"]]) + kept["alter"]
    assert np.array_equal(spelled % 12, kept["pitch"] % 12)
    assert np.all(kept["position_ticks"] < np.maximum(kept["measure_length_ticks"], 1))
    assert kept["measure"].min() >= 0


def test_windows_are_stitched_into_one_measure_sequence():
    """Token ids of a known score, cut into windows, come back with the original measures."""
    rows = random_score(130, seed=5)
    n = len(rows.notes)
    from perf2score.data.targets import SCORE_TARGET_DTYPE

    targets = np.zeros(n, dtype=SCORE_TARGET_DTYPE)
    onset = rows.notes["onset_ticks"]
    targets["measure"] = onset // 96
    targets["measure_length_ticks"], targets["ts_num"], targets["ts_den"] = 96, 4, 4
    targets["position_ticks"] = onset % 96
    targets["duration_ticks"] = 24
    targets["staff"], targets["voice"] = 1, 1
    spans = _windows(n, 48, 16)
    out = {}
    for b, (s, e) in enumerate(spans):
        tokens, _ = encode_score(targets[s:e], GRID_PER_QUARTER)
        for name, ids in tokens.items():
            out.setdefault(name, torch.zeros(len(spans), 48, dtype=torch.long))
            out[name][b, : e - s] = torch.from_numpy(ids)
    attributes, drop = _stitch(out, spans, rows.notes["pitch"], 16)
    assert not drop.any()
    measures = attributes["measure"] - attributes["measure"][0]
    assert np.array_equal(measures, targets["measure"] - targets["measure"][0])
    assert np.array_equal(attributes["position_ticks"], targets["position_ticks"])


def test_the_neural_backend_converts_with_a_given_model(aligned, tmp_path):
    _, folder = aligned
    performance, _ = _performance(60)
    score = convert(performance, model=folder)
    assert score.backend == "neural"
    written = score.save(tmp_path / "out.musicxml")
    assert written[0].stat().st_size > 0 and "<score-partwise" in written[0].read_text()


def test_shipping_writes_fp16_weights_the_package_can_load(aligned, tmp_path):
    from perf2score.cli import main
    from perf2score.models.io import load_aligned

    model, folder = aligned
    assert main(["ship", str(folder), "--out", str(tmp_path / "weights")]) == 0
    for part in ("performance", "score", "adapter"):
        assert any((tmp_path / "weights" / part).glob("*.safetensors"))
    shipped = load_aligned(tmp_path / "weights" / "adapter")
    performance, _ = _performance(40)
    a, _ = decode_windows(model, performance)
    b, _ = decode_windows(shipped, performance)
    agree = np.mean(a["position_ticks"] == b["position_ticks"])
    assert agree > 0.9  # fp16 rounding may flip a near tie, not the decoding


def test_inspect_reports_counts_gates_and_the_mixture(aligned, tmp_path, capsys):
    import json

    from perf2score.cli import main

    _, folder = aligned
    assert main(["inspect", str(folder), "--svg", str(tmp_path / "mix.svg")]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["mapping"] == "mix" and len(facts["gates"]) == 2
    assert all(abs(sum(row) - 1) < 1e-3 for row in facts["mixture"])
    assert facts["parameters"]["trainable"] < facts["parameters"]["total"]
    assert (tmp_path / "mix.svg").read_text().startswith("<svg")
