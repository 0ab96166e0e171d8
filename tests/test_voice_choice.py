"""Second voices chosen by a learned pass (perf2score.neural.voice_choice)."""

import numpy as np
import pytest

from perf2score.neural.voice_choice import (
    FEATURE_NAMES,
    FEATURES,
    VoiceChooser,
    chosen_voices,
    held_beside,
    load_voice_chooser,
    voice_features,
)
from perf2score.score.attributes import ATTRIBUTE_DTYPE

TPQ = 24
COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _piece():
    """The upper staff: a half note (E5) held over four eighths below it (C5 D5 C5 B4), then
    a chord; the lower staff: two quarters. Played at 120 quarters a minute."""
    rows = [  # onset, duration, staff, pitch, release (s), velocity
        (0, 48, 1, 76, 0.98, 80),  # the held melody note
        (0, 12, 1, 72, 0.24, 50),
        (12, 12, 1, 74, 0.49, 50),
        (24, 12, 1, 72, 0.74, 50),
        (36, 12, 1, 71, 0.99, 50),
        (48, 24, 1, 79, 1.49, 70),
        (48, 24, 1, 67, 1.49, 60),
        (0, 24, 2, 48, 0.49, 60),
        (24, 24, 2, 43, 0.99, 60),
    ]
    attributes = np.zeros(len(rows), dtype=ATTRIBUTE_DTYPE)
    for k, (_, duration, staff, pitch, _, _) in enumerate(rows):
        attributes[k]["duration_ticks"], attributes[k]["staff"] = duration, staff
        attributes[k]["pitch"], attributes[k]["voice"] = pitch, 1
    onsets = np.array([r[0] for r in rows], dtype=np.int64)
    onset_sec = onsets / TPQ * 0.5
    release = np.array([r[4] for r in rows])
    velocity = np.array([r[5] for r in rows])
    return attributes, onsets, onset_sec, release, velocity


def _features(keep=None, odds=None, rule=None):
    attributes, onsets, onset_sec, release, velocity = _piece()
    n = len(attributes)
    keep = np.ones(n, bool) if keep is None else keep
    odds = np.zeros(n) if odds is None else odds
    rule = np.ones(n, np.int64) if rule is None else rule
    features = voice_features(
        attributes, keep, onsets, TPQ, onset_sec, release, velocity, odds, rule
    )
    return attributes, onsets, features


def _preferring(name: str, weight: float = 10.0) -> VoiceChooser:
    """A chooser whose log-odds grow with one feature (a GELU of it, times ``weight``)."""
    w1 = np.zeros((FEATURES, 1), np.float32)
    w1[COLUMN[name], 0] = 1.0
    return VoiceChooser(
        w1,
        np.zeros(1, np.float32),
        np.ones((1, 1), np.float32),
        np.zeros(1, np.float32),
        np.array([weight], np.float32),
        np.zeros(FEATURES, np.float32),
        np.ones(FEATURES, np.float32),
    )


def test_notes_struck_under_a_held_note_are_seen():
    attributes, _, onset_sec, release, _ = _piece()
    keep = np.ones(len(attributes), bool)
    staff = attributes["staff"].astype(np.int64)
    pitch = attributes["pitch"].astype(np.int64)
    above, below, sounding = held_beside(onset_sec, release, pitch, staff, keep)
    # the eighths after the first are struck under the held E5; the first one with it
    assert above.tolist()[:5] == [False, False, True, True, True]
    assert not above[5:].any()  # the chord comes after the E5 is released
    assert below[8] == False and below[7] == False  # noqa: E712 (the bass moves down)
    assert sounding[2] == 1 and sounding[0] == 0


def test_features_describe_the_chord_and_the_neighbours():
    attributes, _, features = _features()
    assert features.shape == (len(attributes), FEATURES)
    assert np.isfinite(features).all()
    top, bottom = COLUMN["chord_top"], COLUMN["chord_bottom"]
    assert features[[0, 1], top].tolist() == [1, 0]  # E5 over C5 at the first onset
    assert features[[0, 1], bottom].tolist() == [0, 1]
    assert features[2, top] == 1 and features[2, bottom] == 1  # D5 alone at its onset
    assert features[0, COLUMN["onsets_held"]] >= 2  # the E5 is held over later onsets
    assert features[7, COLUMN["lower_staff"]] == 1 and features[0, COLUMN["lower_staff"]] == 0
    # from D5 (onset 12) the nearest note of the staff's previous onset is C5: 2 semitones
    assert features[2, COLUMN["leap_from_previous"]] == pytest.approx(2 / 12)
    assert features[5, COLUMN["leap_to_next"]] == 2.0  # no onset after the chord
    assert features[0, COLUMN["louder_than_chord"]] > 0 > features[1, COLUMN["louder_than_chord"]]


def test_dropped_notes_get_no_features_and_the_rule_is_read():
    keep = np.ones(9, bool)
    keep[3] = False
    rule = np.ones(9, np.int64)
    rule[1] = 2
    _, _, features = _features(keep=keep, odds=np.full(9, 40.0), rule=rule)
    assert not features[3].any()
    assert features[1, COLUMN["rule_second"]] == 1 and features[0, COLUMN["rule_second"]] == 0
    assert features[0, COLUMN["head_odds"]] == pytest.approx(10 / 4)  # clipped at 10 nats


def test_chosen_voices_put_the_held_over_notes_second_and_never_above_the_first():
    attributes, onsets, features = _features()
    keep = np.ones(len(attributes), bool)
    voices = chosen_voices(attributes, keep, onsets, features, _preferring("held_above"), -1.0)
    # the eighths struck under the held E5 go to the second voice, the rest stay first
    assert voices.tolist() == [1, 1, 2, 2, 2, 1, 1, 1, 1]
    # a chooser that wants the top note of each chord second: at no onset of a staff is a
    # second-voice note above a first-voice one (the cut goes below the top note too)
    voices = chosen_voices(attributes, keep, onsets, features, _preferring("chord_top"), -1.0)
    assert voices[[0, 1]].tolist() == [2, 2] and voices[[5, 6]].tolist() == [2, 2]
    for onset in np.unique(onsets):
        for staff in (1, 2):
            here = (onsets == onset) & (attributes["staff"] == staff)
            first, second = here & (voices == 1), here & (voices == 2)
            if first.any() and second.any():
                assert attributes["pitch"][second].max() < attributes["pitch"][first].min()


def test_chooser_round_trip_and_refusal(tmp_path):
    chooser = _preferring("held_above")
    chooser.save(tmp_path)
    loaded = load_voice_chooser(tmp_path)
    features = np.random.default_rng(0).normal(size=(7, FEATURES)).astype(np.float32)
    assert np.allclose(loaded.log_odds(features), chooser.log_odds(features))
    assert load_voice_chooser(tmp_path / "none") is None
    config = (tmp_path / "voice_choice.json").read_text().replace("register", "octave")
    (tmp_path / "voice_choice.json").write_text(config)
    with pytest.raises(ValueError, match="other features"):
        load_voice_chooser(tmp_path)


def test_a_model_folder_s_own_chooser_comes_first(tmp_path):
    from perf2score.neural.converter import voice_chooser
    from perf2score.neural.settings import DecodeConfig

    asked = DecodeConfig.from_dict({"voice_choice": True})
    assert voice_chooser(DecodeConfig.from_dict({"voice_choice": False}), tmp_path) is None
    # only where the hand head gives the voices
    assert voice_chooser(DecodeConfig.from_dict({"voices": "head"}), tmp_path) is None
    shipped = voice_chooser(asked, tmp_path)  # nothing in the folder: the shipped one
    assert shipped is not None
    own = _preferring("register")
    own.save(tmp_path)
    assert np.array_equal(voice_chooser(asked, tmp_path).w1, own.w1)
    assert shipped.w1.shape != own.w1.shape


def test_shipped_chooser_runs_in_the_conversion_and_changes_voices_only(tmp_path, monkeypatch):
    from dataclasses import replace

    from builders import layered_performance, written_notes

    import perf2score.neural.converter as converter
    import perf2score.neural.voice_choice as voice_choice

    # a melody in held quarters over eighths below it, and a bass
    performance = layered_performance(
        5, [(16, 79, 2, 1.0, 0.95, 0), (48, 67, 4, 0.333, 0.3, 0.01), (32, 43, 5, 0.5, 0.45, 0)]
    )
    model = converter.load_neural_model(None)
    assert (model.voice_chooser is not None) == model.decoding.voice_choice
    asked = replace(model.decoding, voice_choice=True, voice_links=False)  # the chooser's cut
    on = replace(model, decoding=asked, voice_chooser=converter.voice_chooser(asked))
    assert on.voice_chooser is not None  # the package ships the chooser
    off = replace(model, decoding=replace(model.decoding, voice_choice=False))
    calls = []
    chosen = voice_choice.chosen_voices
    monkeypatch.setattr(
        voice_choice, "chosen_voices", lambda *a: calls.append(chosen(*a)) or calls[-1]
    )
    scores = [written_notes(performance, each, tmp_path) for each in (off, on)]
    assert len(calls) == 1 and set(np.unique(calls[0])) <= {1, 2}  # asked once, voices 1-2
    a, b = scores
    assert a["pitch"].tolist() == b["pitch"].tolist()
    assert a["onset_ticks"].tolist() == b["onset_ticks"].tolist()
    assert a["staff"].tolist() == b["staff"].tolist()


def test_voice_gap_all_closes_the_gaps_of_every_voice(monkeypatch):
    """``voice_gap_all`` asks ``close_split_gaps`` for every voice of a staff, not the first
    only (the values of the notes the voice chooser moves to a second voice)."""
    from dataclasses import replace

    import perf2score.neural.converter as converter
    from perf2score.midi.reading import NOTE_DTYPE, Performance

    notes = np.zeros(64, dtype=NOTE_DTYPE)  # a melody over a bass, a note of each a beat
    notes["pitch"] = np.tile([76, 43], 32) + np.repeat(np.arange(32) % 5, 2)
    notes["onset_sec"] = np.repeat(np.arange(32) * 0.5, 2) + np.tile([0.0, 0.002], 32)
    notes["offset_sec"] = notes["onset_sec"] + np.tile([0.45, 0.9], 32)
    notes["velocity"] = 64
    performance = Performance(notes, np.zeros((0, 2)))
    seen = []
    closing = converter.close_split_gaps

    def spy(*args, first_only=True, **kwargs):
        seen.append(first_only)
        return closing(*args, first_only=first_only, **kwargs)

    monkeypatch.setattr(converter, "close_split_gaps", spy)
    model = converter.load_neural_model()
    for every in (False, True):
        decoding = replace(model.decoding, voice_gap_all=every)
        converter.neural_attributes(performance, replace(model, decoding=decoding))
    assert seen == [True, False]
