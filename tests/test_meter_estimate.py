"""The meter not given: estimated from the performance (perf2score.neural.meter_estimate)
and the head's evidence made relative to the piece (perf2score.neural.meter.relative_odds)."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
from builders import played_triple

from perf2score import convert
from perf2score.neural.converter import load_neural_model
from perf2score.neural.meter import relative_odds, triple_tempo
from perf2score.neural.settings import DecodeConfig

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def test_relative_odds_rank_notes_the_head_finds_all_unlikely():
    odds = np.array([[-6.0, -1.0], [-3.0, -2.0], [-5.0, -3.0], [-6.0, 0.5]], np.float32)
    moved = relative_odds(odds)
    assert moved.shape == odds.shape and moved.dtype == np.float32
    assert np.all(np.argsort(moved, 0) == np.argsort(odds, 0))  # the order is kept
    assert moved[1, 0] > 0 > moved[0, 0]  # the likeliest downbeat now says yes
    probability = 1 / (1 + np.exp(-odds.astype(np.float64)))
    shift = np.log(probability.mean(0) / (1 - probability.mean(0)))
    assert np.allclose(moved, odds - shift, atol=1e-5)
    assert relative_odds(np.zeros((0, 2))).shape == (0, 2)


def test_the_demo_minuet_comes_out_in_three_four(tmp_path):
    spec = importlib.util.spec_from_file_location("demo", DEMO)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    notes = demo.piece()
    demo.perform(notes, tmp_path / "minuet.mid")  # 16 bars of 3/4 at about 100 bpm
    model = load_neural_model()
    estimated = replace(model.decoding, meter_estimate="tracked", meter_relative=True)
    score = convert(tmp_path / "minuet.mid", model=replace(model, decoding=estimated)).assembled
    assert {(m.ts_num, m.ts_den) for m in score.measures} == {(3, 4)}
    assert 80 <= score.tempo_qpm <= 130 and 15 <= len(score.measures) <= 18
    # the held chord the decoder wrote a beat short gets its beat back (neural/steady.py), so
    # every bar line is the piece's: 16 full measures from the first note, no pickup
    bar = 3 * score.ticks_per_quarter
    assert [m.start for m in score.measures] == [k * bar for k in range(16)]
    assert {m.length for m in score.measures} == {bar}
    # and every note where the piece has it: the phrase ends' held chords, played slower,
    # keep their three beats (a beat lost or gained there is closed: score.barring)
    tpq = score.ticks_per_quarter
    written = sorted((c.onset, p[0]) for c in score.chords for p in c.pitches)
    assert written == sorted((round(onset * tpq), pitch) for pitch, onset, _, _ in notes)


def test_a_decoded_triple_meter_takes_the_tracked_tempo_only_when_played_steadily():
    # the training split: the beat tracked in a human performance set the value scale
    # wrong more often than the decoder's own (benchmarks/rebar.py --split train)
    steady, human = played_triple(120, 0.0), played_triple(120, 0.08, seed=1)
    config = DecodeConfig()
    assert config.triple_tempo and config.triple_tempo_steady_only
    assert triple_tempo((3, 4), steady, config)
    assert not triple_tempo((3, 4), human, config)
    assert not triple_tempo((4, 4), steady, config)  # a duple meter: the estimate decides
    everywhere = replace(config, triple_tempo_steady_only=False)
    assert triple_tempo((3, 4), human, everywhere) and not triple_tempo((2, 4), human, everywhere)
    assert not triple_tempo((3, 4), steady, replace(config, triple_tempo=False))
