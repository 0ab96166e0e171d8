"""The voice pass (issue 11): features, training, saving, and voices of decoded notes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from perf2score.data.cache import PreparedPerformance
from perf2score.models.voice_head import (
    VoiceConfig,
    VoiceModel,
    load_voices,
    predict_voices,
    save_voices,
    voice_forward,
    window_starts,
)
from perf2score.neural.settings import DecodeConfig
from perf2score.neural.values import close_gaps
from perf2score.neural.voice_features import N_FEATURES, voice_features, voice_order
from perf2score.neural.voice_pass import assign_voices
from perf2score.score.attributes import ATTRIBUTE_DTYPE
from perf2score.train.augment import render_performance
from perf2score.train.config import RunConfig, TrainConfig
from perf2score.train.loop import Task, train
from perf2score.train.voice_data import collate_voices, piece_examples, voice_class

TPQ = 24


def two_voice_piece(bars: int = 12) -> np.ndarray:
    """Staff 1: half notes on top (voice 1) over running eighths (voice 2); staff 2: quarters
    (MusicXML voice 5, the lower staff's first)."""
    rows = []
    for bar in range(bars):
        start = bar * 4 * TPQ
        for half in range(2):
            rows.append((76 + (bar + half) % 4, start + half * 2 * TPQ, 2 * TPQ, 1, 1))
        for eighth in range(8):
            rows.append((60 + (bar + eighth) % 7, start + eighth * TPQ // 2, TPQ // 2, 1, 2))
        for quarter in range(4):
            rows.append((40 + (bar + quarter) % 5, start + quarter * TPQ, TPQ, 2, 5))
    table = np.zeros(len(rows), dtype=ATTRIBUTE_DTYPE)
    for k, (pitch, onset, value, staff, voice) in enumerate(rows):
        table[k]["pitch"], table[k]["onset_ticks"], table[k]["duration_ticks"] = (
            pitch,
            onset,
            value,
        )
        table[k]["staff"], table[k]["voice"] = staff, voice
        table[k]["measure"], table[k]["measure_length_ticks"] = onset // (4 * TPQ), 4 * TPQ
        table[k]["position_ticks"] = onset % (4 * TPQ)
        table[k]["ts_num"], table[k]["ts_den"] = 4, 4
    return table[np.lexsort((table["pitch"], table["onset_ticks"]))]


def prepared(seed: int) -> PreparedPerformance:
    """A rendered performance of ``two_voice_piece``, each note paired with its row."""
    table = two_voice_piece()
    performance = render_performance(np.random.default_rng(seed), table, TPQ)
    index = np.full(len(performance.notes), -1, dtype=np.int64)
    for pitch in np.unique(performance.notes["pitch"]):
        index[performance.notes["pitch"] == pitch] = np.flatnonzero(table["pitch"] == pitch)
    return PreparedPerformance(
        "synthetic", "train", performance.notes, performance.pedal, index, table,
        np.zeros(0, dtype=np.int64), TPQ, 0,
    )  # fmt: skip


class FixedVoiceData:
    def __init__(self, seeds: range):
        self.examples = [piece_examples(prepared(seed)) for seed in seeds]

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict:
        picks = rng.integers(0, len(self.examples), batch_size)
        return collate_voices([self.examples[k] for k in picks], 64)

    def validation(self, batch_size: int) -> list[dict]:
        return [collate_voices(self.examples[:batch_size], 64)]


def test_features_are_finite_and_see_a_key_held_past_the_next_onset():
    table = two_voice_piece(2)
    performance = render_performance(np.random.default_rng(0), table, TPQ)
    notes = performance.notes[
        np.lexsort((performance.notes["pitch"], performance.notes["onset_sec"]))
    ]
    # the rendering keeps the score's order of onsets: pair notes and rows by that order
    quarters = table["onset_ticks"] / TPQ
    order = voice_order(quarters, table["staff"], table["pitch"])
    rows = table[order]
    played = np.zeros(len(rows), dtype=notes.dtype)
    for pitch in np.unique(rows["pitch"]):
        played[rows["pitch"] == pitch] = notes[notes["pitch"] == pitch]
    features = voice_features(played, rows["onset_ticks"] / TPQ, rows["staff"], performance.pedal)
    assert features.shape == (len(rows), N_FEATURES) and np.isfinite(features).all()
    halves = rows["voice"] == 1
    # a half note over running eighths is held past the next onset of its staff
    assert np.median(features[halves, 9]) > np.median(features[rows["voice"] == 2, 9]) + 0.5
    assert voice_class(np.array([1, 2, 5, 6, 102, 0])).tolist() == [0, 1, 0, 1, 1, -100]


def test_windows_cover_every_note():
    for n, window in ((5, 8), (8, 8), (20, 8), (129, 64)):
        starts = window_starts(n, window)
        covered = np.zeros(n, bool)
        for start in starts:
            covered[start : start + window] = True
        assert covered.all() and starts[-1] + min(window, n) == n


def test_the_voice_pass_learns_saves_loads_and_sets_decoded_voices(tmp_path):
    torch.manual_seed(0)
    config = RunConfig(
        voices=VoiceConfig(d_model=32, layers=2, heads=2, dropout=0.0, window=64),
        train=TrainConfig(steps=120, batch_size=8, lr=3e-3, warmup=5, eval_every=40, log_every=20),
    )
    model = VoiceModel(config.voices)
    task = Task(
        "voices", model, FixedVoiceData(range(6)), FixedVoiceData(range(100, 102)), config,
        voice_forward, save_voices,
    )  # fmt: skip
    summary = train(task, tmp_path / "run", progress=False)
    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    losses = [json.loads(e)["validation"]["loss"] for e in log if "validation" in e]
    assert losses[-1] < 0.5 * losses[0]
    assert summary["final_validation"]["streams"]["voice"]["accuracy"] > 0.95

    loaded = load_voices(tmp_path / "run" / "best")
    example = piece_examples(prepared(200))
    args = (example["features"], example["pitch"], example["staff"])
    model.eval()
    assert (predict_voices(model, *args) == predict_voices(loaded, *args)).all()

    # decoded notes (here: placed as in the score, all in voice 1, values cut at the next
    # onset of the staff as the one-voice decoder writes them) get their voices back
    piece = prepared(300)
    attributes = piece.targets()
    onsets = attributes["onset_ticks"].copy()
    truth = attributes["voice"].copy()
    attributes["voice"] = 1
    upper = attributes["staff"] == 1
    attributes["duration_ticks"][upper] = TPQ // 2
    drop = np.zeros(len(attributes), bool)
    from perf2score.midi import Performance

    moved = assign_voices(
        attributes, drop, onsets, TPQ, Performance(piece.notes, piece.pedal), loaded
    )
    assert moved == int((voice_class(truth) != 0).sum())
    assert (attributes["voice"] - 1 == voice_class(truth)).mean() > 0.95
    # with its own voice, the top line's values reach its next onset again
    close_gaps(attributes, drop, onsets, 4 * TPQ)
    halves = upper & (truth == 1) & (onsets < onsets.max() - 2 * TPQ)
    assert (attributes["duration_ticks"][halves] == 2 * TPQ).mean() > 0.95
    # a pass that is never sure leaves every note in voice 1
    attributes["voice"] = 1
    assert (
        assign_voices(
            attributes, drop, onsets, TPQ, Performance(piece.notes, piece.pedal), loaded, 1.0
        )
        == 0
    )


def test_decoding_settings_check_the_voice_options():
    assert DecodeConfig(voices="pass", voice_confidence=0.5).voices == "pass"
    with pytest.raises(ValueError, match="voices"):
        DecodeConfig(voices="both")
    with pytest.raises(ValueError, match="voice_confidence"):
        DecodeConfig(voice_confidence=1.5)


def test_no_voice_pass_is_shipped_and_asking_for_one_says_so(tmp_path):
    from perf2score.errors import Perf2ScoreError
    from perf2score.neural.converter import voice_pass

    assert voice_pass(DecodeConfig()) is None
    with pytest.raises(Perf2ScoreError, match="needs a trained voice pass"):
        voice_pass(DecodeConfig(voices="pass"))
    save_voices(VoiceModel(VoiceConfig(d_model=16, layers=1, heads=2)), tmp_path)
    assert voice_pass(DecodeConfig(voices="pass"), tmp_path).config.d_model == 16


def test_the_voices_task_reads_its_own_tables():
    from perf2score.errors import Perf2ScoreError
    from perf2score.train.config import run_config_from_dict

    config = run_config_from_dict(
        {"voices": {"d_model": 64}, "data": {"decoded": "runs/decoded", "decoded_share": 0.7}},
        "voices",
    )
    assert config.voices.d_model == 64 and config.data.decoded_share == 0.7
    with pytest.raises(Perf2ScoreError, match="unknown tables"):
        run_config_from_dict({"voices": {}}, "align")
