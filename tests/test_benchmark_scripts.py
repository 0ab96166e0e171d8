"""Benchmark scripts that are not run in the tests: what they build and time."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _benchmark(name: str = "vs_musescore"):
    sys.path.insert(0, str(BENCHMARKS))  # vs_musescore imports its sibling convert_speed
    try:
        path = BENCHMARKS / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_the_benchmark_times_each_beam_width_it_is_given(tmp_path):
    commands = _benchmark().commands
    shipped = commands(Path("in.mid"), tmp_path, musescore=False)
    assert list(shipped) == ["perf2score neural", "perf2score classical"]
    assert "--beam" not in shipped["perf2score neural"]
    widths = commands(Path("in.mid"), tmp_path, musescore=True, beams=[2, 4])
    assert list(widths) == [
        "perf2score beam 2",
        "perf2score beam 4",
        "perf2score classical",
        "MuseScore 3",
    ]
    assert widths["perf2score beam 4"][-4:] == ["--backend", "neural", "--beam", "4"]
    assert widths["MuseScore 3"][0] == "mscore3"


def test_the_step_parts_are_a_blocks_operations_on_the_rows_asked():
    """``benchmarks/step_parts.py``: each timed operation runs and gives the rows asked."""
    from perf2score import load_neural_model

    step_parts = _benchmark("step_parts")
    network = load_neural_model().network
    parts = step_parts.block_parts(network, rows=6, beam=3, note=5)
    assert "attention over the KV cache" in parts and "GELU" in parts
    for name, call in parts.items():
        out = call()
        assert out.shape[0] == 6, name
        assert np.isfinite(out).all(), name
    assert step_parts.timed(lambda: None, 3) >= 0.0
