"""Beam search over the notes' onsets (``perf2score.neural.beam``)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from builders import played_triple, write_midi
from train_helpers import rendered

from perf2score import convert, load_neural_model
from perf2score.cli import main
from perf2score.errors import Perf2ScoreError
from perf2score.neural import beam, decode
from perf2score.neural.beam import _best_continuations, _onset_candidates, beam_steps
from perf2score.neural.converter import model_folder
from perf2score.neural.decode import OnsetScores, decode_many, on_steady_path
from perf2score.neural.settings import DecodeConfig
from perf2score.tokens.spec import FIRST_VALUE, SCORE_STREAMS, STREAMS

NEG = -np.inf


@pytest.fixture(scope="module")
def shipped():
    return load_neural_model()


def _beam_of_one(runtime, perf, padding, pitch, onset, out, config, odds=None, forced=None,
                 forced_notes=None, clock=None, start=None, background=False):  # fmt: skip
    """``decode._decode_batch``'s work done by ``beam_steps`` with one hypothesis."""
    session = runtime.session(perf, padding, odds is not None)
    steps = session.steps if config.step_weight > 0 else None
    beam_steps(session, perf["pitch"], pitch, onset, padding, out, config, {}, forced,
               forced_notes, clock, start, steps)  # fmt: skip
    if odds is not None:
        odds[:] = session.odds


def test_a_beam_of_one_is_greedy_decoding(shipped, monkeypatch):
    """Every window, every note, every stream: the same ids as the greedy loop (a rendered
    performance, with the steadiness check off, with the shipped settings, and with windows
    chained: each continues the tokens of the notes it shares with the one before)."""
    performance = rendered(300, 5, 2)[0]
    plain = replace(shipped.decoding, steady_residual=0.0)
    for config in (plain, shipped.decoding, replace(plain, chain_windows=0)):
        greedy = decode_many(shipped.network, [performance], config)[0]
        with monkeypatch.context() as patch:
            patch.setattr(decode, "_decode_batch", _beam_of_one)
            beam = decode_many(shipped.network, [performance], config)[0]
        assert all(np.array_equal(a, b) for a, b in zip(greedy, beam, strict=True))


def test_a_wider_beam_decodes_a_score(shipped):
    performance = rendered(200, 7, 1)[0]
    model = load_neural_model(decoding=replace(shipped.decoding, beam=3))
    attributes, drop = decode_many(model.network, [performance], model.decoding)[0]
    assert len(attributes) == 200 and drop.dtype == bool
    assert (attributes["onset_ticks"][~drop] >= 0).all()
    assert convert(performance, model=model).to_musicxml().count("<note") >= 150


def test_a_steady_performance_decodes_greedily_whatever_the_beam(shipped, monkeypatch):
    """On the beat clock the greedy choice is on the grid: ``steady_beam`` (1) decides."""
    performance = played_triple(200, 0.004)
    assert on_steady_path(performance, shipped.decoding)
    calls = []
    real = beam.beam_steps
    monkeypatch.setattr(beam, "beam_steps", lambda *args: calls.append(1) or real(*args))
    greedy = decode_many(shipped.network, [performance], shipped.decoding)[0]
    wide = decode_many(shipped.network, [performance], replace(shipped.decoding, beam=4))[0]
    assert not calls
    assert all(np.array_equal(a, b) for a, b in zip(greedy, wide, strict=True))
    config = replace(shipped.decoding, beam=4, steady_beam=4)
    decode_many(shipped.network, [performance], config)
    assert calls


def test_both_runtimes_decode_alike_with_a_beam_and_a_beam_needs_no_prior(shipped):
    performance = rendered(150, 3, 0)[0]
    by_torch = load_neural_model(runtime="torch")
    config = replace(shipped.decoding, beam=3, steady_residual=0.0)
    numpy_ids = decode_many(shipped.network, [performance], config)[0]
    torch_ids = decode_many(by_torch.network, [performance], config)[0]
    assert all(np.array_equal(a, b) for a, b in zip(numpy_ids, torch_ids, strict=True))
    with pytest.raises(Perf2ScoreError, match="beam"):
        decode_many(shipped.network, [performance], replace(config, prior_weight=0.5))
    with pytest.raises(ValueError, match="beam"):
        replace(shipped.decoding, beam=0)


def _found(stay, move, joint=True, free=0) -> OnsetScores:
    bar_lp = np.full((1, STREAMS["bar"].size), NEG)
    bar_lp[0, FIRST_VALUE : FIRST_VALUE + 2] = np.log([0.5, 0.5])
    return OnsetScores(
        stay=np.array([stay], np.float32),
        move=np.array([move], np.float32),
        bar_lp=bar_lp.astype(np.float32),
        joint=np.array([joint]),
        free=np.array([free]),
    )


def test_onset_candidates_rank_staying_first_on_ties_and_fix_other_bar_moves():
    found = _found([NEG, -1.0, -3.0], [-1.0, -2.0, NEG])
    bar, position, score = _onset_candidates(found, np.array([FIRST_VALUE]), 3)
    # staying at 1 ties opening the next measure at 0: staying first, as greedy decoding
    assert bar[0].tolist() == [FIRST_VALUE, FIRST_VALUE + 1, FIRST_VALUE + 1]
    assert position[0].tolist() == [1, 0, 1]
    assert np.allclose(score[0], np.array([-1.0, -1.0, -2.0]) + np.log(0.5))
    moved_two = FIRST_VALUE + 2  # two measures on: kept as chosen, at the free position
    bar, position, score = _onset_candidates(
        _found([NEG, -1.0, -3.0], [-1.0, -2.0, NEG], joint=False, free=2),
        np.array([moved_two]),
        3,
    )
    assert (bar[0, 0], position[0, 0]) == (moved_two, 2)
    assert np.isneginf(score[0, 1:]).all()


def test_the_best_continuations_are_chosen_per_window():
    # 2 windows x 2 hypotheses, 2 candidates each: rows 0-1 window 0, rows 2-3 window 1
    candidates = np.array([[-1.0, -5.0], [-2.0, -1.5], [NEG, NEG], [-3.0, -0.5]])
    parent, pick = _best_continuations(candidates, 2, 2)
    assert parent.tolist() == [0, 1, 3, 3]
    assert pick.tolist() == [0, 1, 1, 0]


def _played_midi(tmp_path):
    """A rendered 150-note performance written as a MIDI file."""
    notes = rendered(150, 4, 3)[0].notes
    return write_midi(
        tmp_path / "played.mid",
        [[(int(n["pitch"]), float(n["onset_sec"]), float(n["offset_sec"]), 70) for n in notes]],
    )


def test_the_command_line_takes_a_beam(tmp_path, capsys):
    source = _played_midi(tmp_path)
    out = tmp_path / "x.musicxml"
    assert main(["-q", "convert", str(source), "-o", str(out), "--beam", "2"]) == 0
    assert out.read_text().count("<note") >= 100
    out.unlink()
    assert main(["-q", "convert", str(source), "-o", str(out), "--beam", "2",
                 "--backend", "classical"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "--beam needs the neural backend" in err and "Traceback" not in err
    assert not out.exists()
    with pytest.raises(SystemExit):
        main(["-q", "convert", str(source), "-o", str(out), "--beam", "0"])


def test_the_command_line_takes_a_decoding_file(tmp_path, capsys):
    """``convert --decoding FILE``: the file's settings decode (here a beam of 1, as
    ``--beam 1`` asks); a bad file or a classical backend is refused with a message."""
    source = _played_midi(tmp_path)
    settings = json.loads((model_folder() / "decoding.json").read_text())
    greedy = tmp_path / "greedy.json"
    greedy.write_text(json.dumps({**settings, "beam": 1}))
    by_file, by_option = tmp_path / "file.musicxml", tmp_path / "option.musicxml"
    assert main(["-q", "convert", str(source), "-o", str(by_file), "--decoding", str(greedy)]) == 0
    assert main(["-q", "convert", str(source), "-o", str(by_option), "--beam", "1"]) == 0
    assert by_file.read_text() == by_option.read_text()
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**settings, "beam": 0}))
    out = tmp_path / "x.musicxml"
    for extra, message in (
        (["--decoding", str(bad)], "beam"),
        (["--decoding", str(tmp_path / "none.json")], "no such file"),
        (["--decoding", str(greedy), "--backend", "classical"], "--decoding needs the neural"),
    ):
        assert main(["-q", "convert", str(source), "-o", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        assert not out.exists()


class _ScriptedSession:
    """A runtime session whose logits are scripted: the first note prefers position 0 to
    position 1 by one nat; the second note's value stream is sure of itself only after a
    first note at position 1 (flat otherwise). Every other stream has one clear choice."""

    def __init__(self):
        self.rows = 1

    def expand(self, copies: int) -> None:
        self.rows *= copies

    def reorder(self, rows: np.ndarray, filled: int) -> None:
        pass

    def step(self, previous: dict, pitch: np.ndarray, t: int) -> dict:
        R = len(pitch)
        logits = {}
        for stream in SCORE_STREAMS:
            scores = np.full((R, stream.size), -30.0, np.float32)
            scores[:, FIRST_VALUE] = 0.0  # bar: stay; drop: keep; the others: their first
            logits[stream.name] = scores
        logits["measure_length"][:, FIRST_VALUE] = -30.0
        logits["measure_length"][:, FIRST_VALUE + 48] = 0.0  # a measure of 48 grid units
        position = logits["position"]
        if t == 0:
            position[:, FIRST_VALUE], position[:, FIRST_VALUE + 1] = 2.0, 1.0
        else:
            position[:, FIRST_VALUE + 12] = 0.0
            after_one = previous["position"] == FIRST_VALUE + 1
            logits["value"][~after_one] = 0.0  # flat: log(1/V) for any choice
        return logits


def test_the_beam_scores_only_the_streams_it_is_told():
    """The value stream's confidence counts in a hypothesis's score only when ``value`` is
    in ``beam_streams``: then it outweighs the first onset's one nat; without, the likelier
    first onset wins."""
    T = 2
    padding = np.zeros((1, T), bool)
    pitch = np.full((1, T), 60)
    onset = np.array([[0.0, 0.5]])
    chosen = {}
    for streams in (("value",), ()):
        config = replace(DecodeConfig(), beam=2, beam_streams=streams)
        out = {name: np.zeros((1, T), np.int64) for name in decode.SCORE_NAMES}
        beam_steps(_ScriptedSession(), pitch, pitch, onset, padding, out, config, {})
        chosen[streams] = out["position"][0].tolist()
    assert chosen[("value",)] == [FIRST_VALUE + 1, FIRST_VALUE + 12]
    assert chosen[()] == [FIRST_VALUE, FIRST_VALUE + 12]


def test_beam_streams_are_score_streams_other_than_the_onset(tmp_path):
    for refused in (("bar",), ("position", "value"), ("tempo",)):
        with pytest.raises(ValueError, match="beam_streams"):
            DecodeConfig(beam_streams=refused)
    chosen = DecodeConfig(beam_streams=["value", "drop"])  # a JSON list becomes a tuple
    assert chosen.beam_streams == ("value", "drop")
    path = tmp_path / "decoding.json"
    path.write_text(json.dumps(chosen.to_dict()))
    assert DecodeConfig.read(path) == chosen
