"""The MuseScore comparison benchmark's commands (``benchmarks/vs_musescore.py``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _benchmark():
    sys.path.insert(0, str(BENCHMARKS))  # it imports its sibling convert_speed
    try:
        path = BENCHMARKS / "vs_musescore.py"
        spec = importlib.util.spec_from_file_location("vs_musescore", path)
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
