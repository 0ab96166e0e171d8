"""Neural decoding: constraints, windows stitched back into one piece, the neural backend."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from builders import played_triple, random_score
from train_helpers import TINY, rendered, tiny_aligned

from perf2score.constants import GRID_PER_QUARTER
from perf2score.conversion import convert
from perf2score.errors import Perf2ScoreError
from perf2score.midi.reading import Performance
from perf2score.models import LMConfig, NoteLM
from perf2score.models.adapter import AdapterConfig, AlignedModel
from perf2score.models.io import load_model, save_aligned, save_model
from perf2score.neural.converter import respell
from perf2score.neural.decode import (
    FIRST_VALUE,
    Timeline,
    _bar_and_position,
    _stitch,
    decode_windows,
    measure_grid,
    step_terms,
    windows,
)
from perf2score.neural.settings import DecodeConfig
from perf2score.tokens.score import encode_score
from perf2score.tokens.spec import STREAMS

NATURAL = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    """An untrained tiny aligned model with visible adapters, saved like a shipped one."""
    folder = tmp_path_factory.mktemp("model")
    model, base = tiny_aligned(folder, AdapterConfig(rank=8, n_heads=2))
    with torch.no_grad():
        for adapter in model.adapters:
            adapter.gate.fill_(0.5)
    save_aligned(model, folder / "adapter", base)
    return model.eval(), folder / "adapter"


def _performance(n: int = 150) -> tuple[Performance, np.ndarray]:
    return rendered(n)


def test_windows_cover_every_note_once_in_the_middle():
    for n in (1, 40, 48, 49, 200):
        spans = windows(n, 48, 16)
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(e - s <= 48 for s, e in spans)
        assert all(b[0] < a[1] for a, b in itertools.pairwise(spans))  # overlaps


def test_decoding_respects_the_constraints(aligned):
    model, _ = aligned
    performance, _ = _performance()
    attributes, drop = decode_windows(model, performance, DecodeConfig(window=48, overlap=16))
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
    from perf2score.score.attributes import ATTRIBUTE_DTYPE

    targets = np.zeros(n, dtype=ATTRIBUTE_DTYPE)
    onset = rows.notes["onset_ticks"]
    targets["measure"] = onset // 96
    targets["measure_length_ticks"], targets["ts_num"], targets["ts_den"] = 96, 4, 4
    targets["position_ticks"] = onset % 96
    targets["duration_ticks"] = 24
    targets["staff"], targets["voice"] = 1, 1
    spans = windows(n, 48, 16)
    out = {}
    for b, (s, e) in enumerate(spans):
        tokens, _ = encode_score(targets[s:e], GRID_PER_QUARTER)
        for name, ids in tokens.items():
            out.setdefault(name, np.zeros((len(spans), 48), dtype=np.int64))
            out[name][b, : e - s] = ids
    attributes, drop = _stitch(out, spans, rows.notes["pitch"], DecodeConfig(overlap=16))
    assert not drop.any()
    measures = attributes["measure"] - attributes["measure"][0]
    assert np.array_equal(measures, targets["measure"] - targets["measure"][0])
    assert np.array_equal(attributes["position_ticks"], targets["position_ticks"])


def _window_tokens(targets: np.ndarray, spans: list[tuple[int, int]], width: int) -> dict:
    out: dict[str, np.ndarray] = {}
    for b, (s, e) in enumerate(spans):
        tokens, _ = encode_score(targets[s:e], GRID_PER_QUARTER)
        for name, ids in tokens.items():
            out.setdefault(name, np.zeros((len(spans), width), dtype=np.int64))
            out[name][b, : e - s] = ids
    return out


def test_a_window_decoded_at_twice_the_value_scale_is_written_at_the_others():
    """Even eighths played at 0.25 s; the second of three windows wrote them as quarters.
    With ``window_scales`` the piece comes back in even eighths; without, the second
    window's notes keep twice the values and onset steps."""
    n = 112
    from perf2score.score.attributes import ATTRIBUTE_DTYPE

    onset = np.arange(n) * 12  # eighths, 96 ticks (4 quarters) per measure
    targets = np.zeros(n, dtype=ATTRIBUTE_DTYPE)
    targets["measure_length_ticks"], targets["ts_num"], targets["ts_den"] = 96, 4, 4
    targets["duration_ticks"], targets["staff"], targets["voice"] = 12, 1, 1
    targets["pitch"] = 60 + np.arange(n) % 12
    targets["measure"], targets["position_ticks"] = onset // 96, onset % 96
    doubled = targets.copy()
    doubled["duration_ticks"] = 24
    doubled["measure"], doubled["position_ticks"] = (2 * onset) // 96, (2 * onset) % 96
    spans = windows(n, 48, 16)
    assert len(spans) == 3
    tokens = _window_tokens(targets, spans, 48)
    slow = _window_tokens(doubled, spans, 48)
    for name in tokens:
        tokens[name][1] = slow[name][1]
    seconds = np.arange(n) * 0.25
    config = DecodeConfig(overlap=16, window_scales=True)
    attributes, drop = _stitch(tokens, spans, targets["pitch"], config, seconds)
    onsets, _ = measure_grid(attributes, drop)
    assert np.array_equal(np.diff(onsets), np.full(n - 1, 12))
    assert np.all(attributes["duration_ticks"] == 12)
    own = replace(config, window_scales=False)
    attributes, _ = _stitch(tokens, spans, targets["pitch"], own, seconds)
    assert (attributes["duration_ticks"] == 24).sum() > 16  # the second window's share


def test_window_scale_steps_follow_the_median_and_halve_only_on_the_grid():
    from perf2score.neural.window_tempo import can_scale, scale_steps, scaled
    from perf2score.score.attributes import ATTRIBUTE_DTYPE

    log2 = np.log(2.0)
    assert scale_steps([3.0, 3.0 + log2, 3.1, 3.0 - log2, np.nan]) == [0, -1, 0, 1, 0]
    assert scale_steps([3.0, 3.0 + 0.3, 3.0 - 0.3]) == [0, 0, 0]  # within a factor √2
    assert scale_steps([3.0, 3.0 + log2]) == [0, 0]  # too few windows to tell
    assert scale_steps([3.0, 3.0, 3.0 + 2.2 * log2]) == [0, 0, -1]  # at most one octave
    attributes = np.zeros(3, dtype=ATTRIBUTE_DTYPE)
    attributes["duration_ticks"] = [6, 6, 3]
    onsets, bars = np.array([0, 6, 12]), np.array([0, 96])
    assert can_scale(1, attributes, onsets, bars) and not can_scale(-1, attributes, onsets, bars)
    attributes["duration_ticks"] = 6
    assert can_scale(-1, attributes, onsets, bars)
    halved, h_onsets, h_bars = scaled(-1, attributes, onsets, bars)
    assert list(halved["duration_ticks"]) == [3, 3, 3] and list(h_onsets) == [0, 3, 6]
    assert list(h_bars) == [0, 48] and list(attributes["duration_ticks"]) == [6, 6, 6]


def test_windows_that_disagree_on_the_bar_phase_join_without_a_jump_in_time():
    """The second window puts its bar lines a quarter later: time still runs on evenly and
    only the measure at the junction gets an irregular length."""
    n = 80
    from perf2score.score.attributes import ATTRIBUTE_DTYPE

    onset = np.arange(n) * 12  # eighths, 96 ticks (4 quarters) per measure
    targets = np.zeros(n, dtype=ATTRIBUTE_DTYPE)
    targets["measure_length_ticks"], targets["ts_num"], targets["ts_den"] = 96, 4, 4
    targets["duration_ticks"], targets["staff"], targets["voice"] = 12, 1, 1
    targets["pitch"] = 60
    spans = windows(n, 48, 16)
    assert len(spans) == 2
    shifted = [targets.copy(), targets.copy()]
    for k, phase in enumerate((0, 24)):
        shifted[k]["measure"] = (onset + phase) // 96
        shifted[k]["position_ticks"] = (onset + phase) % 96
    tokens = _window_tokens(shifted[0], spans, 48)
    second = _window_tokens(shifted[1], spans, 48)
    for name in tokens:
        tokens[name][1] = second[name][1]
    attributes, drop = _stitch(tokens, spans, targets["pitch"], DecodeConfig(overlap=16))
    onsets, bars = measure_grid(attributes, drop)
    assert np.array_equal(np.diff(onsets), np.full(n - 1, 12))  # no jump anywhere
    lengths = np.diff(bars)
    assert np.sum(lengths != 96) == 1  # one irregular measure, at the junction
    assert np.all(attributes["position_ticks"] < attributes["measure_length_ticks"])


def _timeline(
    onset: int, config: DecodeConfig | None = None, quarters_per_second: float | None = None
) -> Timeline:
    """One window's state after a note at ``onset`` (grid units) in a 4/4 measure from 0,
    the running tempo at ``quarters_per_second`` (None: not known yet)."""
    state = Timeline(1, config or DecodeConfig())
    state.last_position[:] = onset
    state.last_onset[:] = onset
    state.measure_length[:] = 4 * GRID_PER_QUARTER
    if quarters_per_second is not None:
        state.log_tempo[:] = float(np.log(quarters_per_second * GRID_PER_QUARTER))
    return state


def _choice(position_logits: list[float], bar_logits: list[float], state: Timeline, gap: float):
    position = np.full((1, STREAMS["position"].size), -30.0, dtype=np.float32)
    position[0, FIRST_VALUE : FIRST_VALUE + len(position_logits)] = position_logits
    bar = np.full((1, STREAMS["bar"].size), -30.0, dtype=np.float32)
    bar[0, FIRST_VALUE : FIRST_VALUE + len(bar_logits)] = bar_logits
    chosen = {
        "bar": bar.argmax(1),
        "measure_length": np.array([FIRST_VALUE + 4 * GRID_PER_QUARTER]),
    }
    b, p = _bar_and_position(bar, position, chosen, np.array([gap]), state)
    return int(b[0]) - FIRST_VALUE, int(p[0]) - FIRST_VALUE


def test_notes_played_apart_never_share_an_onset_and_open_a_measure_when_it_is_full():
    state = _timeline(3 * GRID_PER_QUARTER)
    logits = [0.0] * (4 * GRID_PER_QUARTER)
    logits[3 * GRID_PER_QUARTER] = 10.0  # the model wants the previous note's onset
    # played together: the same onset is fine
    assert _choice(logits, [5.0, 0.0], state, 0.01) == (0, 3 * GRID_PER_QUARTER)
    # played 0.2 s later: a later position in the measure
    bar, position = _choice(logits, [20.0, 0.0], state, 0.2)
    assert bar == 0 and position > 3 * GRID_PER_QUARTER
    # nothing left in the measure: the note opens the next one
    state.last_position[:] = 4 * GRID_PER_QUARTER - 1
    assert _choice(logits, [20.0, 0.0], state, 0.2)[0] == 1


def test_the_running_tempo_steers_positions():
    state = _timeline(0, quarters_per_second=2.0)
    logits = [0.0] * (4 * GRID_PER_QUARTER)
    logits[GRID_PER_QUARTER // 2] = 1.0  # an eighth, slightly preferred by the model
    # 0.5 s at two quarters per second is a quarter: the tempo outweighs the small preference
    assert _choice(logits, [5.0, 0.0], state, 0.5) == (0, GRID_PER_QUARTER)


def test_notes_played_at_the_same_instant_are_held_to_the_same_onset():
    """A gap of exactly 0 s (common in MIDI files) still meets the running tempo: the note
    stays on the previous onset against a slight preference of the model for an eighth
    later (regression: a gap of 0 once counted as no tempo evidence, which cost 0.07 E_avg
    on validation)."""
    state = _timeline(0, quarters_per_second=2.0)
    logits = [0.0] * (4 * GRID_PER_QUARTER)
    logits[GRID_PER_QUARTER // 2] = 1.0  # an eighth later, slightly preferred by the model
    assert _choice(logits, [5.0, 0.0], state, 0.0) == (0, 0)


def test_the_tempo_tolerance_lets_rubato_pass_and_still_steers_wide_misses():
    from perf2score.neural.settings import DecodeConfig

    def choose(tolerance: float, gap: float) -> tuple[int, int]:
        config = DecodeConfig(tempo_weight=10.0, tempo_slack_grid=1, tempo_tolerance=tolerance)
        state = _timeline(0, config, quarters_per_second=2.0)
        logits = [0.0] * (4 * GRID_PER_QUARTER)
        logits[GRID_PER_QUARTER] = 1.0  # the model prefers a quarter
        return _choice(logits, [5.0, 0.0], state, gap)

    # played 20 % long (0.6 s, 1.2 quarters at the tempo): without tolerance the tempo pulls
    # the note off the quarter; a tolerance of 0.25 takes it as rubato
    assert choose(0.0, 0.6)[1] != GRID_PER_QUARTER
    assert choose(0.25, 0.6) == (0, GRID_PER_QUARTER)
    # played twice as long (1 s, a half note): beyond the tolerance the tempo still wins
    assert choose(0.25, 1.0)[1] > GRID_PER_QUARTER


def test_the_step_head_moves_a_repeated_step_to_the_one_it_heard():
    """After a quarter step the model wants another quarter; a step head sure that this
    step is shorter moves the note to the likeliest shorter step, one sure of "same" keeps
    it, and weight 0 ignores the head."""

    def choose(weight: float, same: float, longer: float) -> tuple[int, int]:
        state = _timeline(GRID_PER_QUARTER, DecodeConfig(tempo_weight=0.0, step_weight=weight))
        state.last_step[:] = GRID_PER_QUARTER
        logits = [0.0] * (4 * GRID_PER_QUARTER)
        logits[2 * GRID_PER_QUARTER] = 3.0  # the same step again (a quarter)
        logits[GRID_PER_QUARTER + GRID_PER_QUARTER // 2] = 2.0  # an eighth
        position = np.full((1, STREAMS["position"].size), -30.0, dtype=np.float32)
        position[0, FIRST_VALUE : FIRST_VALUE + len(logits)] = logits
        bar = np.full((1, STREAMS["bar"].size), -30.0, dtype=np.float32)
        bar[0, FIRST_VALUE : FIRST_VALUE + 2] = [5.0, 0.0]
        chosen = {"bar": bar.argmax(1), "measure_length": np.array([FIRST_VALUE + 96])}
        steps = np.array([[same, longer]], dtype=np.float32)
        b, p = _bar_and_position(bar, position, chosen, np.array([0.3]), state, None, steps)
        return int(b[0]) - FIRST_VALUE, int(p[0]) - FIRST_VALUE

    quarter, eighth = 2 * GRID_PER_QUARTER, GRID_PER_QUARTER + GRID_PER_QUARTER // 2
    assert choose(0.0, -6.0, -6.0) == (0, quarter)
    assert choose(1.0, -6.0, -6.0) == (0, eighth)  # shorter: 1 nat behind, 6 ahead
    assert choose(1.0, 6.0, -6.0) == (0, quarter)
    # chord notes and notes without a step before are left alone
    ioi = np.array([[0, 12, 24, 48]])
    terms = step_terms(ioi, np.array([24]), np.array([True]), np.array([[-3.0, 3.0]]))
    assert terms[0, 0] == 0.0 and terms[0, 3] == 0.0  # chord; longer, the likeliest
    assert terms[0, 1] < terms[0, 2] < 0.0  # shorter is unlikelier than same here
    assert not step_terms(ioi, np.array([0]), np.array([True]), np.array([[-3.0, 3.0]])).any()


def test_the_timeline_keeps_the_last_positive_step():
    state = Timeline(1)
    bar = FIRST_VALUE + np.zeros(1, dtype=np.int64)
    length = np.array([FIRST_VALUE + 96])
    for position, step in ((0, 0), (24, 24), (24, 24), (36, 12)):
        chosen = {
            "bar": bar,
            "measure_length": length,
            "position": np.array([FIRST_VALUE + position]),
        }
        state.advance(chosen, np.array([True]), np.array([0.3]))
        assert state.last_step[0] == step


def test_the_beat_clock_takes_the_rubato_out_of_a_played_rhythm():
    from perf2score.classical.rhythm import beat_clock
    from perf2score.midi.reading import NOTE_DTYPE

    # quarter, eighth, eighth, half, repeated 24 times, played slowing down by a half
    values = [1.0, 0.5, 0.5, 2.0] * 24
    quarters = np.concatenate([[0.0], np.cumsum(values)[:-1]])
    seconds = 0.5 * quarters + 0.002 * quarters**2  # 120 -> about 80 beats a minute
    notes = np.zeros(len(values), dtype=NOTE_DTYPE)
    notes["pitch"], notes["velocity"] = 60, 80
    notes["onset_sec"], notes["offset_sec"] = seconds, seconds + 0.2
    clock = beat_clock(Performance(notes=notes, pedal=np.zeros((0, 2))))
    steps = np.diff(clock)
    # the steps keep the written ratios (2 : 1 : 1 : 4) although the played ones drift (the
    # tracker needs ten bars to settle on the beat here, then holds it to the last bar)
    right = np.isclose(steps[1:] / steps[:-1], np.diff(quarters)[1:] / np.diff(quarters)[:-1])
    assert right.mean() > 0.7 and right[40:88].all()


def test_the_tempo_on_the_beat_clock_reads_steps_in_tracked_beats():
    config = DecodeConfig(tempo_weight=10.0, tempo_slack_grid=1, tempo_clock="beats")
    state = _timeline(0, config, quarters_per_second=1.0)  # a quarter per tracked beat
    logits = np.full((1, STREAMS["position"].size), -30.0, dtype=np.float32)
    logits[0, FIRST_VALUE : FIRST_VALUE + 4 * GRID_PER_QUARTER] = 0.0
    logits[0, FIRST_VALUE + GRID_PER_QUARTER] = 2.0  # the model prefers a quarter
    bar = np.full((1, STREAMS["bar"].size), -30.0, dtype=np.float32)
    bar[0, FIRST_VALUE] = 5.0
    chosen = {
        "bar": bar.argmax(1),
        "measure_length": np.array([FIRST_VALUE + 4 * GRID_PER_QUARTER]),
    }
    # played 0.9 s later but half a tracked beat on: an eighth, whatever the seconds say
    _, position = _bar_and_position(bar, logits, chosen, np.array([0.9]), state, np.array([0.5]))
    assert int(position[0]) - FIRST_VALUE == GRID_PER_QUARTER // 2
    # no step on the clock (the tracker put both notes together): the tempo stays out of it
    _, position = _bar_and_position(bar, logits, chosen, np.array([0.9]), state, np.array([0.0]))
    assert int(position[0]) - FIRST_VALUE == GRID_PER_QUARTER


def test_respelling_picks_the_enharmonic_key_the_model_voted_for():
    """Between six sharps and six flats the model's vote decides; elsewhere the key found."""
    from perf2score.score.attributes import ATTRIBUTE_DTYPE

    scale = [66, 68, 70, 71, 73, 75, 77, 78] * 4  # F# / Gb major
    attributes = np.zeros(len(scale), dtype=ATTRIBUTE_DTYPE)
    attributes["pitch"] = scale
    attributes["position_ticks"] = np.arange(len(scale)) % 4 * GRID_PER_QUARTER
    attributes["measure"] = np.arange(len(scale)) // 4
    attributes["measure_length_ticks"] = 4 * GRID_PER_QUARTER
    attributes["duration_ticks"] = GRID_PER_QUARTER
    drop = np.zeros(len(scale), bool)
    for voted, fifths, first in ((-6, -6, ("G", -1)), (6, 6, ("F", 1))):
        table = attributes.copy()
        table["key_fifths"] = voted
        respell(table, drop, measure_grid(table, drop)[0])
        assert set(table["key_fifths"].tolist()) == {fifths}
        assert (table["step"][0], table["alter"][0]) == first
        spelled = np.array([NATURAL[s] for s in table["step"]]) + table["alter"]
        assert np.array_equal(spelled % 12, table["pitch"] % 12)
    # five sharps against seven flats: the five stay whatever the vote; a D-flat major
    # scale that opens on D-flat is written in flats (ps13 alone spells it in C-sharp)
    for scale, voted, fifths, first in (
        ([71, 73, 75, 76, 78, 80, 82, 83] * 4, -7, 5, ("B", 0)),
        ([61, 63, 65, 66, 68, 70, 72, 73] * 4, 7, -5, ("D", -1)),
    ):
        table = attributes.copy()
        table["pitch"] = scale
        table["key_fifths"] = voted
        respell(table, drop, measure_grid(table, drop)[0])
        assert set(table["key_fifths"].tolist()) == {fifths}
        assert (table["step"][0], table["alter"][0]) == first
        assert set(np.abs(table["alter"]).tolist()) <= {0, 1}


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


def test_shipping_keeps_the_pre_trained_score_lm_and_puts_tuned_heads_in_the_adapter(
    aligned, tmp_path
):
    import json

    from safetensors.torch import load_file

    from perf2score.models.io import load_aligned, load_model, ship_aligned

    _, folder = aligned
    tuned = load_aligned(folder)
    name, head = next((n, p) for n, p in tuned.score.named_parameters() if "head" in n)
    with torch.no_grad():
        head.add_(1.0)  # as fine-tuning moves the score heads
    base = json.loads((folder / "adapter.json").read_text())["base"]
    base = {k: str((folder / v).resolve()) for k, v in base.items()}
    save_aligned(tuned, tmp_path / "tuned", base)
    ship_aligned(tmp_path / "tuned", tmp_path / "weights")
    shipped_lm = load_file(str(tmp_path / "weights" / "score" / "model.safetensors"))
    original = load_model(base["score"]).state_dict()[name]
    assert torch.allclose(shipped_lm[name].float(), original, atol=1e-2)
    shipped = load_aligned(tmp_path / "weights" / "adapter")
    assert torch.allclose(dict(shipped.score.named_parameters())[name], head, atol=1e-2)


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


def test_convert_takes_a_loaded_model_and_gives_what_the_folder_gives(aligned):
    from perf2score import load_neural_model

    _, folder = aligned
    performance, _ = _performance(50)
    held = load_neural_model(folder)
    assert held.decoding == DecodeConfig() and held.describe()["folder"] == str(folder)
    by_folder = convert(performance, model=folder).to_musicxml()
    assert convert(performance, model=held).to_musicxml() == by_folder
    assert convert(performance, model=held.network).to_musicxml() == by_folder
    with pytest.raises(Perf2ScoreError, match="model must be"):
        convert(performance, model=42)


def test_decoding_settings_saved_beside_the_adapter_are_used(aligned, tmp_path):
    import shutil

    from perf2score import load_neural_model

    _, folder = aligned
    copy = tmp_path / "adapter"
    shutil.copytree(folder, copy)
    base = json.loads((copy / "adapter.json").read_text())["base"]
    for name, relative in base.items():  # keep the base LMs reachable from the copy
        base[name] = str((folder / relative).resolve())
    config = json.loads((copy / "adapter.json").read_text())
    (copy / "adapter.json").write_text(json.dumps({**config, "base": base}))
    DecodeConfig(window=32, overlap=8).save(copy)
    held = load_neural_model(copy)
    assert held.decoding.window == 32
    performance, _ = _performance(70)
    assert convert(performance, model=held).assembled.chords  # decodes in 32-note windows
    with pytest.raises(Perf2ScoreError, match="exceeds"):
        decode_windows(held.network, performance, DecodeConfig(window=2048, overlap=8))


def test_weights_of_another_token_spec_fail_with_one_sentence(aligned, tmp_path):
    import shutil

    from perf2score.models.io import load_aligned, load_model

    _, folder = aligned
    root = tmp_path / "model"
    shutil.copytree(folder.parent, root)
    adapter = root / folder.name
    config = json.loads((adapter / "adapter.json").read_text())
    (adapter / "adapter.json").write_text(json.dumps({**config, "token_spec": "0123456789abcdef"}))
    with pytest.raises(Perf2ScoreError, match="another token spec") as error:
        load_aligned(adapter)
    assert "\n" not in str(error.value)
    (adapter / "adapter.json").write_text(json.dumps({**config, "format": 99}))
    with pytest.raises(Perf2ScoreError, match="newer than this perf2score"):
        load_aligned(adapter)
    lm = root / "score" / "config.json"
    lm.write_text(json.dumps({**json.loads(lm.read_text()), "token_spec": "feed"}))
    with pytest.raises(Perf2ScoreError, match="another token spec"):
        load_model(root / "score")


def test_reshaped_weights_fail_with_a_clear_error(tmp_path):
    from perf2score.models.io import load_model

    save_model(NoteLM(LMConfig(kind="score", **TINY)), tmp_path / "lm")
    config = json.loads((tmp_path / "lm" / "config.json").read_text())
    config["d_model"] *= 2
    (tmp_path / "lm" / "config.json").write_text(json.dumps(config))
    with pytest.raises(Perf2ScoreError, match="do not fit"):
        load_model(tmp_path / "lm")


def test_training_mode_of_a_frozen_aligned_model():
    perf = NoteLM(LMConfig(kind="performance", **TINY))
    score = NoteLM(LMConfig(kind="score", **TINY))
    model = AlignedModel(perf, score, AdapterConfig(rank=8, n_heads=2)).train()
    assert model.adapters.training and not model.performance.training
    assert model.score.training  # its heads train through it: its dropout stays on
    assert not any(m.training for m in model.performance.modules())
    full = AlignedModel(perf, score, AdapterConfig(rank=8, n_heads=2, mode="full-finetune"))
    assert full.train().performance.training
    assert not model.eval().score.training


def test_windows_decoded_in_bounded_batches_give_the_same_score(aligned, monkeypatch):
    import perf2score.neural.decode as decode

    model, _ = aligned
    performance, _ = _performance(150)
    config = DecodeConfig(window=32, overlap=8)  # 6 windows
    whole = decode_windows(model, performance, config)
    monkeypatch.setattr(decode, "MAX_BATCH_WINDOWS", 2)  # three batches of two
    parts = decode_windows(model, performance, config)
    assert (whole[1] == parts[1]).all()
    assert all((whole[0][f] == parts[0][f]).all() for f in whole[0].dtype.names)


def test_the_meter_head_reads_the_decoders_states_and_gets_the_same_evidence(aligned):
    from perf2score.models.meter_head import MeterModel
    from perf2score.neural.converter import NeuralModel, share_states
    from perf2score.neural.decode import decode_many, shares_performance_lm
    from perf2score.neural.meter import meter_logits

    model, folder = aligned
    torch.manual_seed(1)
    copy = MeterModel(load_model(folder.parent / "performance")).eval()  # same weights
    head = share_states(model, copy)
    assert shares_performance_lm(model, head)  # it now reads the decoder's own LM
    performance, _ = _performance(300)  # two windows of 256 overlapping by 64
    config = DecodeConfig()
    odds: list[np.ndarray] = []
    shared = decode_many(model, [performance], config, head, odds)[0]
    assert odds[0].shape == (300, 2)
    alone = meter_logits(head, performance, config.window, config.overlap)
    assert np.allclose(odds[0], alone, atol=1e-4)
    plain = decode_many(model, [performance], config)[0]
    assert all(np.array_equal(a, b) for a, b in zip(shared, plain, strict=True))
    other = MeterModel(NoteLM(LMConfig(kind="performance", **TINY)))  # other weights
    assert not shares_performance_lm(model, share_states(model, other))
    with pytest.raises(ValueError, match="does not read"):
        decode_many(model, [performance], config, other, [])
    converted = convert(performance, model=NeuralModel(model, config, meter=head))
    measures = converted.assembled.measures
    assert len({(m.ts_num, m.ts_den) for m in measures}) == 1  # one meter for the piece


def test_chains_link_each_window_to_the_one_before_in_its_performance():
    from perf2score.neural.decode import chain_links, chain_rounds

    jobs = [(0, 0, 128), (0, 96, 224), (0, 192, 300), (1, 0, 128), (1, 96, 200)]
    assert chain_links(jobs, 1) == [-1] * 5  # every window on its own
    assert chain_links(jobs, 0) == [-1, 0, 1, -1, 3]  # whole performances
    assert chain_links(jobs, 2) == [-1, 0, -1, -1, 3]
    assert chain_rounds(chain_links(jobs, 0)) == [[0, 3], [1, 4], [2]]
    assert chain_rounds(chain_links(jobs, 1)) == [[0, 1, 2, 3, 4]]
    with pytest.raises(ValueError, match="chain_windows"):
        DecodeConfig(chain_windows=-1)


def test_chained_windows_continue_from_the_notes_they_share(aligned, monkeypatch):
    import perf2score.neural.decode as decode

    model, _ = aligned
    performance, _ = _performance(150)
    seen = []

    def spy(out, spans, pitches, config, *rest):
        seen.append(({k: v.copy() for k, v in out.items()}, spans))
        return _stitch(out, spans, pitches, config, *rest)

    monkeypatch.setattr(decode, "_stitch", spy)
    config = DecodeConfig(window=32, overlap=8, chain_windows=0)  # 6 windows, one chain
    chained = decode_windows(model, performance, config)
    ids, spans = seen[-1]
    assert len(spans) == 6
    for b in range(1, len(spans)):
        (s0, e0), (s1, _) = spans[b - 1], spans[b]
        for name, values in ids.items():  # the shared notes: the earlier window's tokens
            assert np.array_equal(values[b, : e0 - s1], values[b - 1, s1 - s0 : e0 - s0]), name
    monkeypatch.setattr(decode, "MAX_BATCH_WINDOWS", 1)
    again = decode_windows(model, performance, config)
    assert (chained[1] == again[1]).all()
    assert all((chained[0][f] == again[0][f]).all() for f in chained[0].dtype.names)
    kept = chained[0][~chained[1]]
    assert len(kept) and np.all(
        kept["position_ticks"] < np.maximum(kept["measure_length_ticks"], 1)
    )


def test_chains_from_the_steady_window_keep_what_comes_before(aligned, monkeypatch):
    import perf2score.neural.decode as decode

    model, _ = aligned
    performance, _ = _performance(150)
    alone = decode_windows(model, performance, DecodeConfig(window=32, overlap=8))
    heads = []
    steady = decode.chains_from_steady_windows

    def spy(*args):
        link = steady(*args)
        heads.append(next((b for b, before in enumerate(link) if before >= 0), len(link)) - 1)
        return link

    monkeypatch.setattr(decode, "chains_from_steady_windows", spy)
    config = DecodeConfig(window=32, overlap=8, chain_windows=0, chain_from="tempo")
    attributes, drop = decode_windows(model, performance, config)
    head = heads[-1]
    assert 0 <= head < 6
    up_to = decode.kept_from(windows(150, 32, 8)[head + 1][0], 8) if head < 5 else 150
    assert np.array_equal(drop[:up_to], alone[1][:up_to])  # the head and before: as alone
    for name in ("duration_ticks", "staff", "voice", "alter"):
        assert np.array_equal(attributes[name][:up_to], alone[0][name][:up_to]), name
    with pytest.raises(ValueError, match="chain_from"):
        DecodeConfig(chain_from="middle")


def test_a_given_time_signature_is_forced_on_each_window_s_first_note(aligned, monkeypatch):
    from perf2score.neural.decode import decode_many
    from perf2score.tokens.score import meter_ids

    model, _ = aligned
    performance, _ = _performance(100)
    given = DecodeConfig(
        window=32, overlap=8, meter="piece", time_signature="3/4", force_given_meter=True
    )
    seen = []

    def spy(out, spans, pitches, config, *rest):
        seen.append({k: v.copy() for k, v in out.items()})
        return _stitch(out, spans, pitches, config, *rest)

    monkeypatch.setattr("perf2score.neural.decode._stitch", spy)
    decode_many(model, [performance], given)
    decode_many(model, [performance], replace(given, force_given_meter=False))
    forced, free = seen
    signature, length = meter_ids(3, 4)
    kept = forced["drop"] == FIRST_VALUE  # (windows, notes); the tiny model drops many
    rows = np.flatnonzero(kept.any(1))  # windows with a kept note
    first = kept[rows].argmax(1)  # their first kept note
    assert len(rows) >= 2 and first.max() > 0  # a window whose first notes were dropped
    assert np.all(forced["time_signature"][rows, first] == signature)
    assert np.all(forced["measure_length"][rows, first] == length)
    free_rows = np.flatnonzero((free["drop"] == FIRST_VALUE).any(1))
    free_first = (free["drop"][free_rows] == FIRST_VALUE).argmax(1)
    assert not np.all(free["time_signature"][free_rows, free_first] == signature)  # its own


def test_each_window_can_start_from_the_tracked_tempo():
    from perf2score.midi.reading import NOTE_DTYPE
    from perf2score.neural.decode import start_tempi

    seconds = 0.5 * np.arange(64)  # quarters at 120 a minute
    notes = np.zeros(len(seconds), dtype=NOTE_DTYPE)
    notes["pitch"], notes["velocity"] = 60, 80
    notes["onset_sec"], notes["offset_sec"] = seconds, seconds + 0.4
    performance = Performance(notes=notes, pedal=np.zeros((0, 2)))
    jobs = [(0, 0, 32), (0, 24, 64)]
    assert np.isnan(start_tempi(jobs, [performance], DecodeConfig())).all()  # unknown
    tracked = start_tempi(jobs, [performance], DecodeConfig(tempo_start="tracked"))
    assert np.allclose(tracked, np.log(2 * GRID_PER_QUARTER))  # two beats a second
    beats = DecodeConfig(tempo_start="tracked", tempo_clock="beats")
    assert np.allclose(start_tempi(jobs, [performance], beats), np.log(GRID_PER_QUARTER))
    state = Timeline(2, DecodeConfig(), tracked)
    assert np.allclose(state.log_tempo, tracked)


def test_the_grid_residual_tells_metronomic_from_human_playing():
    from perf2score.classical.rhythm import grid_residual

    assert grid_residual(played_triple(120, 0.0)) < 0.002
    assert grid_residual(played_triple(120, 0.01)) < DecodeConfig().steady_residual
    # onsets on the beat pull the tracked beats along, so only the others count: 80 ms of
    # noise reads as about (n)ASAP's steadiest human performances (0.012)
    assert grid_residual(played_triple(120, 0.08)) > 0.012
    assert np.isnan(grid_residual(played_triple(1, 0.0)))


def test_steady_performances_decode_on_the_beat_clock(aligned):

    from perf2score.neural.decode import decode_many, steady_groups

    model, _ = aligned
    steady, human = played_triple(100, 0.0), played_triple(100, 0.08, seed=1)
    config = DecodeConfig(window=48, overlap=16)
    groups = steady_groups([human, steady, human], config)
    assert groups is not None and [members for _, members in groups] == [[1], [0, 2]]
    trusted, plain = groups[0][0], groups[1][0]
    assert (trusted.tempo_clock, trusted.tempo_weight, trusted.tempo_slack_grid) == (
        "beats",
        config.steady_tempo_weight,
        config.steady_slack_grid,
    )
    assert plain == replace(config, steady_residual=0.0)
    assert steady_groups([human], config) is None
    assert steady_groups([steady], replace(config, steady_residual=0.0)) is None
    together = decode_many(model, [human, steady], config)
    alone = [decode_many(model, [human], plain)[0], decode_many(model, [steady], trusted)[0]]
    for (a, drop_a), (b, drop_b) in zip(together, alone, strict=True):
        assert np.array_equal(a, b) and np.array_equal(drop_a, drop_b)


def test_the_drop_bias_moves_the_drop_choice(aligned):
    model, _ = aligned
    performance, _ = _performance(60)
    config = DecodeConfig(window=48, overlap=16)
    _, plain = decode_windows(model, performance, config)
    _, none = decode_windows(model, performance, replace(config, drop_bias=-1e4))
    _, every = decode_windows(model, performance, replace(config, drop_bias=1e4))
    assert not none.any() and every.all()
    assert none.sum() <= plain.sum() <= every.sum()
    with pytest.raises(ValueError, match="drop_bias"):
        DecodeConfig(drop_bias=float("nan"))
