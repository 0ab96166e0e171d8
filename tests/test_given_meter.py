"""A time signature and tempo the user knows: kept by the neural converter, checked first."""

from __future__ import annotations

import numpy as np
import pytest
from test_convert import _steady_performance

from perf2score import Perf2ScoreError, convert
from perf2score.cli import main
from perf2score.neural.meter import hinted_scale
from perf2score.neural.settings import DecodeConfig


def test_the_scale_is_the_power_of_two_nearest_the_given_tempo():
    quarters = np.arange(0.0, 40.0, 0.5)  # decoded: a quarter every 1.2 s, i.e. 50 per minute
    seconds = quarters * 1.2
    assert hinted_scale(0.0, quarters, seconds) == 1.0  # no tempo given
    assert hinted_scale(100.0, quarters, seconds) == 2.0
    assert hinted_scale(60.0, quarters, seconds) == 1.0
    assert hinted_scale(24.0, quarters, seconds) == 0.5
    assert hinted_scale(400.0, quarters, seconds) == 2.0  # at most x2 either way
    assert hinted_scale(20.0, quarters, seconds) == 0.5


def test_settings_take_a_given_meter_and_refuse_a_malformed_one():
    given = DecodeConfig(meter="window").with_meter("6/8", 72.0)
    assert (given.meter, given.meter_given(), given.tempo) == ("piece", (6, 8), 72.0)
    assert DecodeConfig().with_meter(None, None).meter_given() is None
    for bad in ("3/5", "13/8", "3-4", "x/4"):
        with pytest.raises(Perf2ScoreError, match="time signature"):
            DecodeConfig().with_meter(bad, None)
    with pytest.raises(Perf2ScoreError, match="tempo"):
        DecodeConfig().with_meter(None, 1000.0)
    with pytest.raises(Perf2ScoreError, match="meter = 'piece'"):
        DecodeConfig.from_dict({"meter": "window", "time_signature": "3/4"})


def test_the_neural_converter_writes_the_given_meter_and_tempo(tmp_path):
    _steady_performance(tmp_path / "waltz.mid", bars=12, bpm=96.0)
    plain = convert(tmp_path / "waltz.mid", backend="neural").assembled
    halved = convert(tmp_path / "waltz.mid", backend="neural", tempo=48.0).assembled
    assert 40 <= halved.tempo_qpm <= 58 and 80 <= plain.tempo_qpm <= 115
    assert len(halved.measures) < 0.7 * len(plain.measures)  # the same music, values halved
    eighths = convert(tmp_path / "waltz.mid", backend="neural", time_signature="6/8").assembled
    assert {(m.ts_num, m.ts_den) for m in eighths.measures} == {(6, 8)}
    full = [m.length for m in eighths.measures[1:-1]]
    assert full and all(length == 3 * eighths.ticks_per_quarter for length in full)


def test_a_given_meter_needs_the_neural_backend_and_sane_values(tmp_path, capsys):
    _steady_performance(tmp_path / "waltz.mid", bars=2)
    source = str(tmp_path / "waltz.mid")
    out = tmp_path / "x.musicxml"
    cases = [
        (["--tempo", "90", "--backend", "classical"], "need the neural backend"),
        (["--time-signature", "3/5", "--backend", "neural"], "time signature '3/5'"),
        (["--tempo", "5", "--backend", "neural"], "tempo 5.0"),
    ]
    for extra, message in cases:
        assert main(["-q", "convert", source, "-o", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        assert not out.exists()
    with pytest.raises(Perf2ScoreError, match="neural backend"):
        convert(source, backend="classical", time_signature="3/4")
