"""The staves chosen after decoding (perf2score.neural.hands) and the hand head."""

from __future__ import annotations

import numpy as np
import pytest

from perf2score.errors import Perf2ScoreError
from perf2score.midi import Performance
from perf2score.models.config import MeterConfig
from perf2score.neural.hands import (
    choose_staff,
    cut_per_onset,
    hand_logits,
    held_above,
    second_voices,
    split_staff,
    tracked_cut,
)
from perf2score.score.attributes import ATTRIBUTE_DTYPE


@pytest.fixture(scope="module")
def tiny_performance() -> Performance:
    """A melody two octaves above a bass line, one note of each every half second."""
    from perf2score.midi.reading import NOTE_DTYPE

    rng = np.random.default_rng(5)
    rows = []
    for k in range(80):
        rows.append((int(rng.integers(74, 86)), k * 0.5, k * 0.5 + 0.45))
        rows.append((int(rng.integers(36, 47)), k * 0.5 + 0.002, k * 0.5 + 0.9))
    notes = np.zeros(len(rows), dtype=NOTE_DTYPE)
    notes["pitch"], notes["onset_sec"], notes["offset_sec"] = zip(*rows, strict=True)
    notes["velocity"] = 64
    notes = notes[np.lexsort((notes["pitch"], notes["onset_sec"]))]
    return Performance(notes, np.zeros((0, 2)))


def test_cut_per_onset_splits_each_onset_once_by_pitch():
    onsets = np.array([0, 0, 0, 0, 10, 10, 20])
    pitches = np.array([40, 72, 55, 60, 45, 50, 80])
    # onset 0: the two lowest lean lower (40: +3, 55: +1), 60 leans upper, 72 strongly upper;
    # onset 10: 45 leans upper a little, 50 lower strongly: one cut below both (both lower)
    odds = np.array([3.0, -5.0, 1.0, -0.5, -0.2, 2.0, 4.0])
    keep = np.array([True] * 6 + [False])
    staff = cut_per_onset(odds, onsets, pitches, keep)
    assert staff.tolist() == [2, 1, 2, 1, 2, 2, 1]  # a dropped note keeps staff 1


def test_cut_per_onset_never_puts_a_lower_note_above_a_higher_one():
    rng = np.random.default_rng(0)
    onsets = np.repeat(np.arange(50), 4)
    pitches = rng.integers(30, 90, len(onsets))
    staff = cut_per_onset(rng.normal(size=len(onsets)), onsets, pitches, np.ones(len(onsets), bool))
    for t in range(50):
        members = onsets == t
        lower, upper = pitches[members & (staff == 2)], pitches[members & (staff == 1)]
        if len(lower) and len(upper):
            assert lower.max() <= upper.min()


def test_the_tracked_boundary_keeps_a_doubtful_lone_note_on_its_side():
    # a C3 (lower) and a C4 (upper) at every onset but one, where only E4 (64) sounds and
    # the head leans weakly lower: the boundary sits between 49 and 60, and E4 goes below
    # only if it moves up 4 semitones or more and back, 0.8 nats at 0.1 a semitone
    onsets = np.array([0, 0, 10, 10, 20, 30, 30, 40, 40])
    pitches = np.array([48, 60, 48, 60, 64, 48, 60, 48, 60])
    odds = np.array([4.0, -4.0, 4.0, -4.0, 0.3, 4.0, -4.0, 4.0, -4.0])
    keep = np.ones(len(onsets), bool)
    alone = cut_per_onset(odds, onsets, pitches, keep)
    assert alone[4] == 2  # on its own evidence: lower
    tracked = tracked_cut(odds, onsets, pitches, keep, 0.1)
    assert tracked[4] == 1 and tracked[[0, 2, 5, 7]].tolist() == [2] * 4
    assert tracked[[1, 3, 6, 8]].tolist() == [1] * 4
    strong = odds.copy()
    strong[4] = 5.0  # evidence that outweighs the move
    assert tracked_cut(strong, onsets, pitches, keep, 0.1)[4] == 2
    # a small price per semitone gives each onset's own best cut where it is unique
    rng = np.random.default_rng(1)
    onsets = np.repeat(np.arange(40), 3)
    pitches = rng.permutation(np.arange(30, 150))[: len(onsets)] % 90 + 20
    odds = rng.normal(size=len(onsets)) * 3
    keep = rng.random(len(onsets)) > 0.2
    assert np.array_equal(
        tracked_cut(odds, onsets, pitches, keep, 1e-6), cut_per_onset(odds, onsets, pitches, keep)
    )


def _attributes(n: int) -> np.ndarray:
    attributes = np.zeros(n, dtype=ATTRIBUTE_DTYPE)
    attributes["staff"] = 1
    return attributes


def test_second_voices_cut_each_onset_of_each_staff_by_pitch():
    attributes = _attributes(7)
    # onset 0: upper staff 72 / 64 / 60, lower staff 40 / 47; onset 10: 67 alone; 50 dropped
    attributes["pitch"] = [72, 64, 60, 40, 47, 67, 50]
    attributes["staff"] = [1, 1, 1, 2, 2, 1, 1]
    onsets = np.array([0, 0, 0, 0, 0, 10, 10])
    keep = np.array([True] * 6 + [False])
    # upper staff at 0: 60 and 64 lean to a second voice (together more than 72 leans
    # away): the cut goes above 64; lower staff at 0: 40 leans to it, 47 away: split; 67,
    # alone at its onset, goes by its sign; the dropped note stays in voice 1
    odds = np.array([-3.0, 0.5, 2.0, 1.0, -4.0, 0.7, 9.0])
    voices = second_voices(odds, onsets, attributes, keep)
    assert voices.tolist() == [1, 2, 2, 2, 1, 2, 1]
    # the other way round: 72 pulls the whole upper chord down, 47 the lower one
    assert second_voices(-odds, onsets, attributes, keep).tolist() == [2, 2, 2, 2, 2, 1, 1]


def test_tracked_second_voices_keep_a_doubtful_lone_note_in_its_register():
    # one staff: a lower line (55, 56, 53, 54) under a melody (72, 74, 76); at onset 15 the
    # lower line moves alone with weak evidence against a second voice: cut per onset it
    # joins the melody's voice, tracked it stays in its own (moving the boundary below it
    # and back would cost 2 x 4 semitones x 0.5 nats)
    attributes = _attributes(7)
    attributes["pitch"] = [72, 55, 74, 56, 53, 76, 54]
    attributes["staff"] = 1
    onsets = np.array([0, 0, 10, 10, 15, 20, 20])
    odds = np.array([-4.0, 3.0, -4.0, 3.0, -0.3, -4.0, 3.0])
    keep = np.ones(7, bool)
    assert second_voices(odds, onsets, attributes, keep).tolist() == [1, 2, 1, 2, 1, 1, 2]
    tracked = second_voices(odds, onsets, attributes, keep, continuity=0.5)
    assert tracked.tolist() == [1, 2, 1, 2, 2, 1, 2]
    # each staff is tracked on its own: alone on staff 2, the note goes by its own sign
    attributes["staff"][4] = 2
    assert second_voices(odds, onsets, attributes, keep, continuity=0.5)[4] == 1


def _staff_only_head(folder):
    """A copy of the shipped hand head in ``folder`` that asks only ``staff`` (its output
    rows for ``second_voice`` and its training loss weight cut off)."""
    import json
    import shutil

    from safetensors.numpy import load_file, save_file

    from perf2score.shipped import SHIPPED_HANDS

    shutil.copytree(SHIPPED_HANDS, folder)
    weights = load_file(str(folder / "meter.safetensors"))
    weights["head.4.weight"] = weights["head.4.weight"][:2].copy()
    weights["head.4.bias"] = weights["head.4.bias"][:2].copy()
    save_file(weights, str(folder / "meter.safetensors"))
    config = json.loads((folder / "meter.json").read_text())
    config["meter"]["questions"] = ["staff"]
    config["meter"]["loss_weights"] = []  # the training's weights were one per question
    (folder / "meter.json").write_text(json.dumps(config))
    return folder


def test_hand_voices_need_the_question_else_the_decoders_stay(tiny_performance, tmp_path):
    from perf2score.neural.converter import load_neural_model, neural_attributes
    from perf2score.neural.settings import DecodeConfig

    with pytest.raises(ValueError, match="second_voice_bias"):
        DecodeConfig(second_voice_bias=float("nan"))
    with pytest.raises(ValueError, match="second_voice_continuity"):
        DecodeConfig(second_voice_continuity=-1.0)
    shipped = load_neural_model()
    assert shipped.decoding.voices == "hands" and "second_voice" in shipped.hands.questions
    # a head that does not answer the question: the decoder's voices stay, as with "head"
    model = load_neural_model(hands=_staff_only_head(tmp_path / "staff-only"))
    assert model.decoding.voices == "hands" and model.hands.questions == ("staff",)
    decoder_voices = load_neural_model(
        hands=tmp_path / "staff-only",
        decoding=DecodeConfig(**{**shipped.decoding.to_dict(), "voices": "head"}),
    )
    got = neural_attributes(tiny_performance, model)[0]
    assert np.array_equal(got, neural_attributes(tiny_performance, decoder_voices)[0])
    # another staff choice loads no hand head: the decoder's voices, too
    split = load_neural_model(decoding=DecodeConfig(staff="split"))
    assert split.hands is None and split.decoding.voices == "hands"
    split_head = load_neural_model(decoding=DecodeConfig(staff="split", voices="head"))
    np.testing.assert_array_equal(
        neural_attributes(tiny_performance, split)[0],
        neural_attributes(tiny_performance, split_head)[0],
    )


def test_notes_struck_under_a_held_melody_note_go_to_the_second_voice():
    """The shipped decoding adds ``second_voice_held_weight`` to the second-voice evidence of
    notes struck under a held higher note of their staff: with a large weight every such
    note is in the staff's second voice (the voice chooser off); the value settings are
    checked too."""
    from dataclasses import replace

    from perf2score.midi.reading import NOTE_DTYPE
    from perf2score.neural.converter import load_neural_model, neural_attributes

    rows = []
    for bar in range(12):  # a held melody note a bar, eighths of a chord beneath it
        start = bar * 2.0
        rows.append((79 + bar % 3, start, start + 1.95))
        for k, pitch in enumerate((67, 71, 74, 71, 67, 71, 74, 71)):
            rows.append((pitch, start + 0.25 * k + 0.01, start + 0.25 * k + 0.24))
        rows.append((43, start + 0.005, start + 1.9))
    notes = np.zeros(len(rows), dtype=NOTE_DTYPE)
    notes["pitch"], notes["onset_sec"], notes["offset_sec"] = zip(*rows, strict=True)
    notes["velocity"] = 60
    notes = notes[np.lexsort((notes["pitch"], notes["onset_sec"]))]
    performance = Performance(notes, np.zeros((0, 2)))
    shipped = load_neural_model()
    assert shipped.decoding.second_voice_held_weight == 2.0
    assert shipped.decoding.voice_gap_quarters == 4.0
    # the rule's voices alone (the voice chooser, which reads them, is tested on its own)
    rule = replace(shipped.decoding, second_voice_held_weight=50.0, voice_choice=False)
    forced = replace(shipped, decoding=rule)
    attributes, _, _, drop = neural_attributes(performance, forced)
    under = held_above(performance, attributes["staff"].astype(np.int64), ~drop)
    assert under.sum() >= 40
    assert (attributes["voice"][under] == 2).all()
    with pytest.raises(ValueError, match="second_voice_held_weight"):
        replace(shipped.decoding, second_voice_held_weight=-1.0)


def test_held_above_finds_notes_struck_under_a_held_higher_note():
    from perf2score.midi.reading import NOTE_DTYPE

    rows = [  # (pitch, onset, release, staff, expected)
        (72, 0.0, 2.0, 1, False),  # the melody note, held two seconds
        (65, 0.02, 0.3, 1, False),  # struck with it (within the lead): a chord, not under it
        (60, 0.5, 0.7, 1, True),  # accompaniment beneath the held note
        (64, 1.0, 1.2, 1, True),
        (76, 1.2, 1.4, 1, False),  # above the held note
        (62, 1.95, 2.2, 1, False),  # the held note ends within the margin
        (60, 2.5, 2.7, 1, False),  # after its release
        (48, 0.6, 0.9, 2, False),  # the other staff
        (47, 0.7, 0.8, 1, False),  # left out of the score (not kept)
    ]
    notes = np.zeros(len(rows), dtype=NOTE_DTYPE)
    notes["pitch"], notes["onset_sec"], notes["offset_sec"] = zip(
        *[r[:3] for r in rows], strict=True
    )
    staff = np.array([r[3] for r in rows])
    keep = np.ones(len(rows), dtype=bool)
    keep[-1] = False
    under = held_above(Performance(notes, np.zeros((0, 2))), staff, keep, margin=0.1)
    assert under.tolist() == [r[4] for r in rows]
    # a longer margin asks the held note to last longer past the onset
    late = held_above(Performance(notes, np.zeros((0, 2))), staff, keep, margin=1.2)
    assert late.tolist() == [False, False, True, False, False, False, False, False, False]


def test_choose_staff_by_each_choice(tiny_performance):
    performance = tiny_performance
    n = len(performance.notes)
    onsets = np.round(performance.notes["onset_sec"] * 100).astype(np.int64)
    drop = np.zeros(n, bool)
    drop[0] = True
    split = split_staff(performance)
    assert set(split.tolist()) == {1, 2}  # the fixture has a bass line and a melody

    attributes = _attributes(n)
    choose_staff(attributes, drop, onsets, performance, "decoder")
    assert (attributes["staff"] == 1).all()
    choose_staff(attributes, drop, onsets, performance, "split")
    assert attributes["staff"][1:].tolist() == split[1:].tolist() and attributes["staff"][0] == 1

    lower = np.where(performance.notes["pitch"] < 60, 5.0, -5.0)
    attributes = _attributes(n)
    choose_staff(attributes, drop, onsets, performance, "hands", lower, split_weight=0.0)
    expected = np.where(performance.notes["pitch"] < 60, 2, 1)
    assert attributes["staff"][1:].tolist() == expected[1:].tolist()
    with pytest.raises(ValueError, match="staff must be"):
        choose_staff(attributes, drop, onsets, performance, "pitch")
    with pytest.raises(ValueError, match="log-odds"):
        choose_staff(attributes, drop, onsets, performance, "hands")


def test_head_questions_are_checked():
    assert MeterConfig().questions == ("downbeat", "beat")
    assert MeterConfig(questions=["staff"]).questions == ("staff",)
    for bad in ((), ("staff", "staff"), ("tempo",)):
        with pytest.raises(ValueError, match="questions"):
            MeterConfig(questions=bad)
    assert MeterConfig(questions=["staff", "second_voice"], loss_weights=[2, 1]).loss_weights == (
        2.0,
        1.0,
    )
    for weights in ((1.0,), (1.0, -1.0), (0.0, 0.0)):
        with pytest.raises(ValueError, match="loss_weights"):
            MeterConfig(questions=["staff", "second_voice"], loss_weights=weights)


def test_question_loss_weights_weigh_the_mean_of_the_losses():
    """``meter_forward``'s loss is the weighted mean of the questions' cross-entropies."""
    import torch

    from perf2score.models.config import LMConfig
    from perf2score.models.lm import NoteLM
    from perf2score.models.meter_head import MeterModel, meter_forward
    from perf2score.tokens.spec import FIRST_VALUE

    torch.manual_seed(0)
    lm = NoteLM(LMConfig(kind="performance", d_model=16, n_layers=1, n_heads=2, d_ff=32))
    B, T = 2, 6
    tokens = {
        name: torch.randint(FIRST_VALUE, FIRST_VALUE + 3, (B, T))
        for name in lm.config.input_streams
    }
    staff = torch.randint(FIRST_VALUE, FIRST_VALUE + 2, (B, T))
    voice = torch.randint(FIRST_VALUE, FIRST_VALUE + 2, (B, T))
    zeros = torch.full((B, T), FIRST_VALUE)

    def loss(weights):
        config = MeterConfig(questions=["staff", "second_voice"], loss_weights=weights, dropout=0)
        model = MeterModel(lm, config).eval()
        torch.manual_seed(1)
        model.head.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
        batch = {
            "performance": tokens,
            "padding": torch.zeros(B, T, dtype=torch.bool),
            "targets": {
                "staff": staff,
                "voice": voice,
                "position": zeros,
                "grace": zeros,
                "time_signature": zeros,
            },
        }
        return float(meter_forward(model, batch)[0].detach())

    staff_only, voice_only, equal = loss((1, 0)), loss((0, 1)), loss(())
    assert equal == pytest.approx((staff_only + voice_only) / 2, rel=1e-5)
    assert loss((2, 1)) == pytest.approx((2 * staff_only + voice_only) / 3, rel=1e-5)
    assert staff_only != pytest.approx(voice_only)


def test_the_shipped_hand_head_reads_alike_in_numpy_and_torch(tiny_performance):
    from perf2score.models.meter_head import load_meter
    from perf2score.neural.runtime import load_numpy_aligned, load_numpy_head
    from perf2score.shipped import SHIPPED_ADAPTER, SHIPPED_HANDS

    network = load_numpy_aligned(SHIPPED_ADAPTER)
    numpy_odds = hand_logits(network, load_numpy_head(SHIPPED_HANDS), tiny_performance, 128, 32)
    torch_odds = hand_logits(None, load_meter(SHIPPED_HANDS), tiny_performance, 128, 32)
    assert numpy_odds.shape == (len(tiny_performance.notes),)
    np.testing.assert_allclose(numpy_odds, torch_odds, atol=1e-3)
    # a bass two octaves below a melody: the head puts it on the lower staff
    pitches = tiny_performance.notes["pitch"]
    assert (numpy_odds[pitches < 48] > 0).mean() > 0.9
    assert (numpy_odds[pitches > 72] < 0).mean() > 0.9


def test_loading_picks_the_hand_head_only_when_asked(tmp_path):
    from perf2score.neural.converter import load_neural_model
    from perf2score.neural.settings import DecodeConfig
    from perf2score.shipped import SHIPPED_METER

    shipped = load_neural_model()
    assert shipped.decoding.staff == "hands" and shipped.hands is not None
    assert shipped.hands.questions == ("staff", "second_voice")
    assert load_neural_model(decoding=DecodeConfig(staff="split")).hands is None
    with pytest.raises(Perf2ScoreError, match="not a hand head"):
        load_neural_model(hands=SHIPPED_METER)


def test_shipping_a_hand_head_puts_it_in_weights_hands(tmp_path):
    from perf2score.cli import main
    from perf2score.models.config import read_meter_json
    from perf2score.shipped import SHIPPED_HANDS

    assert main(["ship", str(SHIPPED_HANDS), "--out", str(tmp_path)]) == 0
    assert not (tmp_path / "meter").exists()
    _, config = read_meter_json(tmp_path / "hands")
    assert config.questions == ("staff", "second_voice")


def test_the_decoders_encoder_pass_feeds_the_hand_head(tiny_performance):
    """The shipped hand head is read with the decoder's encoder pass (from its states, or
    with its own LM beside them): the odds from that pass are those it reads alone; so is
    the meter head's rest question, which the closing of values asks."""
    from perf2score.models.meter_head import load_meter
    from perf2score.neural.converter import decoded_attributes, load_neural_model
    from perf2score.neural.meter import meter_logits
    from perf2score.shipped import SHIPPED_METER

    model = load_neural_model()
    assert model.network.hands is model.hands and model.network.meter is model.meter
    odds: dict[str, np.ndarray] = {}
    decoded_attributes(tiny_performance, model, odds)
    config = model.decoding
    assert set(odds) == {"staff", "second_voice", "rest_after"}
    for question in ("staff", "second_voice"):
        alone = hand_logits(
            model.network, model.hands, tiny_performance, config.window, config.overlap, question
        )
        assert odds[question].shape == (len(tiny_performance.notes),)
        np.testing.assert_allclose(odds[question], alone, atol=1e-5)
    torch_head = load_meter(SHIPPED_METER)  # the same head in torch, read alone
    alone = meter_logits(torch_head, tiny_performance, config.window, config.overlap)
    rest = model.meter.questions.index("rest_after")
    np.testing.assert_allclose(odds["rest_after"], alone[:, rest], atol=1e-4)


def test_the_rests_the_meter_head_hears_keep_their_gaps(tiny_performance):
    """Decoding with the shipped model: a rest heard after every note (odds threshold far
    below any answer) leaves every value as decoded, as with both closings off; heard after
    none, the values close as without the rest question; the onsets never move."""
    from dataclasses import replace

    from perf2score.neural.converter import load_neural_model, neural_attributes

    model = load_neural_model()
    assert model.decoding.rest_head and "rest_after" in model.meter.questions

    def written(**settings):  # the closings alone: the value and voice choosers off
        decoding = replace(model.decoding, value_choice=False, voice_choice=False, **settings)
        return neural_attributes(tiny_performance, replace(model, decoding=decoding))[0]

    shipped = written()
    everywhere = written(rest_odds=-1e6)
    unclosed = written(
        rest_head=False, legato_gap_quarters=0, long_gap_silence_share=0, voice_gap_quarters=0
    )
    nowhere = written(rest_odds=1e6)
    plain = written(rest_head=False)
    assert np.array_equal(everywhere["duration_ticks"], unclosed["duration_ticks"])
    assert np.array_equal(nowhere["duration_ticks"], plain["duration_ticks"])
    assert (everywhere["duration_ticks"] <= plain["duration_ticks"]).all()
    assert (everywhere["duration_ticks"] < plain["duration_ticks"]).any()  # closings undone
    for other in (everywhere, nowhere, plain):
        assert np.array_equal(other["position_ticks"], shipped["position_ticks"])
