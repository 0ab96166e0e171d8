"""The contracts: one home for the attribute record and constants, conversion importing no
training/data/evaluation code, typed decoding settings, self-describing weights, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import numpy as np
import pytest

from perf2score.errors import Perf2ScoreError
from perf2score.neural.settings import DecodeConfig

CONVERT_BOTH = """
import sys
import numpy as np
import perf2score
from perf2score.midi.reading import NOTE_DTYPE, Performance

notes = np.zeros(12, dtype=NOTE_DTYPE)
notes["pitch"] = [60, 64, 67, 72, 62, 65, 69, 74, 64, 67, 71, 76]
notes["onset_sec"] = np.arange(12) * 0.4
notes["offset_sec"] = notes["onset_sec"] + 0.35
notes["velocity"] = 70
before = {m for m in sys.modules if m.startswith("perf2score")}
performance = Performance(notes, np.zeros((0, 2)))
for backend in ("neural", "classical"):
    perf2score.convert(performance, backend=backend).to_musicxml()
print(sorted(before))
print(sorted(m for m in sys.modules if m.startswith(("perf2score", "partitura", "torch"))))
"""


def test_converting_loads_no_training_data_evaluation_code_partitura_or_torch():
    out = subprocess.run(
        [sys.executable, "-c", CONVERT_BOTH], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    imported_first, loaded = (eval(line) for line in out[-2:])
    assert "perf2score.neural.decode" in loaded and "perf2score.classical.rhythm" in loaded
    # the shipped model converts in numpy (perf2score.neural.runtime): no torch either
    for package in (
        "perf2score.data",
        "perf2score.train",
        "perf2score.evaluate",
        "partitura",
        "torch",
    ):
        assert not [m for m in loaded if m == package or m.startswith(package + ".")]
    # (partitura: about 1.5 s to import; key and spelling are perf2score.score.spelling's)
    # `import perf2score` itself stays light: no torch, no partitura
    assert "perf2score.models.lm" not in imported_first


ONE_FILE_CLI = """
import sys
from perf2score.cli import main
code = main(["-q", "convert", sys.argv[1], "-o", sys.argv[2], "--backend", "neural"])
heavy = ("pySmartDL", "tqdm", "urllib.request", "ssl", "http", "multiprocessing", "socket")
print(code, sorted(m for m in sys.modules if m in heavy or m.split(".")[0] in heavy))
"""


def test_converting_one_file_imports_no_downloader_or_progress_bar(tmp_path):
    # symusic's sound-font downloader (pySmartDL, with urllib, ssl, http), tqdm and, for a
    # file decoded in one process, multiprocessing (with socket) are not needed to convert
    # one short file: 0.04-0.05 s of start-up, 0.02 s more (issue 13)
    from builders import write_midi

    notes = [(60 + k % 12, 0.3 * k, 0.3 * k + 0.25, 70) for k in range(24)]
    midi = write_midi(tmp_path / "in.mid", [notes])
    out = (
        subprocess.run(
            [sys.executable, "-c", ONE_FILE_CLI, str(midi), str(tmp_path / "out.musicxml")],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.splitlines()[-1]
        .split(" ", 1)
    )  # (the CLI prints the file it wrote first)
    assert out[0] == "0" and (tmp_path / "out.musicxml").is_file()
    assert eval(out[1]) == []


def test_symusic_keeps_its_real_sound_font_downloader():
    # the stand-in answers symusic's import only; pySmartDL imported later is the package
    code = (
        "import sys; from perf2score.midi.symusic_import import symusic, _smart_dl;"
        "import symusic.soundfont as sf; import pySmartDL;"
        "print(sf.SmartDL is _smart_dl, hasattr(pySmartDL, '__file__'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "True"]


def test_importing_the_package_imports_neither_torch_nor_partitura():
    code = "import sys, perf2score; print('torch' in sys.modules, 'partitura' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_convert_module_is_not_shadowed_by_the_function():
    import perf2score
    import perf2score.conversion

    assert isinstance(perf2score.conversion, types.ModuleType)
    assert perf2score.convert is perf2score.conversion.convert
    assert callable(perf2score.convert)


def test_one_definition_of_the_record_and_the_constants():
    from perf2score import constants
    from perf2score.classical import rhythm
    from perf2score.data import prepare
    from perf2score.score import assembly, attributes
    from perf2score.tokens import score, spec

    for module in (rhythm, prepare, spec, score):
        assert module.GRID_PER_QUARTER is constants.GRID_PER_QUARTER
    assert assembly.ATTRIBUTE_FIELDS is attributes.ATTRIBUTE_FIELDS
    assert set(attributes.ATTRIBUTE_FIELDS) <= set(attributes.ATTRIBUTE_DTYPE.names)
    assert attributes.key_mode_code("minor") == 1 and attributes.key_mode_code(None) == -1
    assert [attributes.key_mode_name(c) for c in (0, 1, -1)] == ["major", "minor", "none"]


def test_pitch_ids_clamp_to_the_piano_and_match_the_performance_tokens():
    from perf2score.tokens.performance import LOWEST_KEY, pitch_ids
    from perf2score.tokens.spec import FIRST_VALUE, STREAMS

    ids = pitch_ids(np.array([0, LOWEST_KEY, 60, 108, 127]))
    assert ids.tolist() == [
        FIRST_VALUE,
        FIRST_VALUE,
        FIRST_VALUE + 60 - LOWEST_KEY,
        FIRST_VALUE + 87,
        FIRST_VALUE + STREAMS["pitch"].values - 1,
    ]


def test_score_inputs_shift_numpy_and_torch_alike():
    import torch

    from perf2score.models.lm import score_inputs
    from perf2score.tokens.spec import BOS

    ids = np.array([5, 6, 7])
    pitch = np.array([10, 11, 12])
    a = score_inputs({"bar": ids}, pitch)
    b = score_inputs({"bar": torch.from_numpy(ids)[None]}, torch.from_numpy(pitch)[None])
    assert a["bar"].tolist() == [BOS, 5, 6] == b["bar"][0].tolist()
    assert a["pitch"].tolist() == pitch.tolist() == b["pitch"][0].tolist()


def test_decoding_settings_validate_and_round_trip(tmp_path):
    with pytest.raises(ValueError, match="overlap"):
        DecodeConfig(window=64, overlap=64)
    with pytest.raises(ValueError, match="chord_seconds"):
        DecodeConfig(chord_seconds=0.1, apart_seconds=0.05)
    with pytest.raises(Perf2ScoreError, match="unknown decoding settings"):
        DecodeConfig.from_dict({"windw": 128})
    settings = DecodeConfig(window=128, overlap=32, tempo_weight=1.0)
    settings.save(tmp_path)
    assert DecodeConfig.read(tmp_path) == settings
    assert DecodeConfig.read(tmp_path / "decoding.json") == settings
    (tmp_path / "older").mkdir()  # a model folder from before decoding.json: the defaults
    assert DecodeConfig.read(tmp_path / "older") == DecodeConfig()
    with pytest.raises(Perf2ScoreError, match="no such file"):
        DecodeConfig.read(tmp_path / "elsewhere.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(Perf2ScoreError, match="not valid JSON"):
        DecodeConfig.read(tmp_path / "bad.json")


def test_the_shipped_model_describes_itself():
    from perf2score.models.io import ADAPTER_FORMAT, read_adapter_json
    from perf2score.shipped import SHIPPED_ADAPTER, SHIPPED_LMS
    from perf2score.tokens.spec import spec_fingerprint

    config = read_adapter_json(SHIPPED_ADAPTER)
    assert config["format"] == ADAPTER_FORMAT and config["token_spec"] == spec_fingerprint()
    assert (SHIPPED_ADAPTER / "decoding.json").is_file()
    for folder in SHIPPED_LMS.values():
        assert json.loads((folder / "config.json").read_text())["token_spec"] == spec_fingerprint()


def test_the_spec_fingerprint_changes_with_the_spec(monkeypatch):
    from perf2score.tokens import spec

    before = spec.spec_fingerprint()
    changed = (*spec.SCORE_STREAMS[:-1], spec.Stream("drop", 3, 1.0, "changed"))
    monkeypatch.setattr(spec, "SCORE_STREAMS", changed)
    assert spec.spec_fingerprint() != before


def test_adapter_config_owns_its_json():
    from perf2score.models import adapter

    config = adapter.AdapterConfig(mapping="last", rank=32, lora_rank=4)
    assert adapter.AdapterConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown adapter settings"):
        adapter.AdapterConfig.from_dict({"rnak": 3})
    assert not hasattr(adapter, "save_adapter_config")


def test_calibrate_is_a_top_level_command(capsys):
    from perf2score.cli import main

    with pytest.raises(SystemExit) as done:
        main(["calibrate", "--help"])
    assert done.value.code == 0 and "--calibration" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["evaluate", "calibrate", "--calibration", "x", "--asap", "y", "--out", "z"])
    assert done.value.code == 2


def test_model_paths_in_a_training_config_are_relative_to_the_file(tmp_path):
    from perf2score.shipped import SHIPPED_LMS
    from perf2score.train.config import load_run_config

    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "a.toml").write_text('[base]\nperformance = "../lms/perf"\n[decode]\nwindow = 128\n')
    config = load_run_config(folder / "a.toml", "align")
    assert config.base.performance == str((tmp_path / "lms" / "perf").resolve())
    assert config.base.score == str(SHIPPED_LMS["score"])  # the default: the shipped LM
    assert config.decode == DecodeConfig(window=128)
    (folder / "b.toml").write_text("[decode]\noverlap = 999\n")
    with pytest.raises(Perf2ScoreError, match=r"\[decode\]"):
        load_run_config(folder / "b.toml", "align")
