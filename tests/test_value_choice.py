"""Note values chosen among the later decoded onsets (perf2score.neural.value_choice)."""

import numpy as np
import pytest

from perf2score.neural.value_choice import (
    CANDIDATES,
    FEATURE_NAMES,
    FEATURES,
    OPTIONS,
    ValueChooser,
    choose_values,
    load_value_chooser,
    value_options,
)
from perf2score.score.attributes import ATTRIBUTE_DTYPE

TPQ = 24
COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _piece():
    """A melody (staff 1 voice 1) over a bass (staff 2): onsets every eighth note, the
    melody's first note held a quarter but written an eighth; played at 120 quarters a
    minute (an eighth = 0.25 s)."""
    rows = [  # onset, duration, staff, voice, pitch
        (0, 12, 1, 1, 72),  # melody: next onset of its voice at 24
        (24, 24, 1, 1, 74),
        (48, 12, 1, 1, 76),  # the last melody note: no next onset in its voice
        (0, 12, 2, 1, 48),
        (12, 12, 2, 1, 50),
        (24, 12, 2, 1, 52),
        (36, 12, 2, 1, 53),
        (48, 12, 2, 1, 55),
        (60, 12, 2, 1, 57),
    ]
    attributes = np.zeros(len(rows), dtype=ATTRIBUTE_DTYPE)
    for k, (_, duration, staff, voice, pitch) in enumerate(rows):
        attributes[k]["duration_ticks"] = duration
        attributes[k]["staff"], attributes[k]["voice"], attributes[k]["pitch"] = staff, voice, pitch
    onsets = np.array([r[0] for r in rows], dtype=np.int64)
    onset_sec = onsets / TPQ * 0.5
    release = onset_sec + np.array([0.48, 0.5, 0.25, 0.24, 0.24, 0.24, 0.24, 0.24, 0.24])
    return attributes, onsets, onset_sec, release


def _options(attributes, onsets, onset_sec, release, rest=None):
    drop = np.zeros(len(attributes), bool)
    decoded = attributes["duration_ticks"].copy()
    return value_options(attributes, drop, onsets, TPQ, onset_sec, release, release, decoded, rest)


def test_options_are_the_later_onsets_up_to_the_voice_s_next_one():
    attributes, onsets, onset_sec, release = _piece()
    options = _options(attributes, onsets, onset_sec, release)
    assert options.features.shape == (9, OPTIONS, FEATURES)
    first = 0  # the melody's first note: later onsets 12, 24, 36, ...; its voice's next is 24
    assert options.ends[first, :2].tolist() == [12, 24]
    assert options.valid[first, :2].all() and not options.valid[first, 2:CANDIDATES].any()
    # its current end (12) is the first candidate: not offered twice
    assert not options.valid[first, CANDIDATES]
    assert options.features[first, 0, COLUMN["is_current"]] == 1
    assert options.features[first, 1, COLUMN["is_voice_next"]] == 1
    # played a quarter (0.48 s) against 0.25 s to onset 12 and 0.5 s to onset 24
    ratios = options.features[first, :2, COLUMN["release_ratio"]]
    assert ratios[0] == pytest.approx(np.log(0.48 / 0.25), abs=1e-5)
    assert ratios[1] == pytest.approx(np.log(0.48 / 0.5), abs=1e-5)
    last = 2  # the last melody note: every later onset of the piece is an option
    assert options.ends[last, :1].tolist() == [60] and options.valid[last, 0]
    assert not options.valid[last, 1:CANDIDATES].any()  # no onset after 60
    # its current end, 48 + 12 = 60, is candidate 0: the extra option is not offered
    assert options.ends[last, CANDIDATES] == 60 and not options.valid[last, CANDIDATES]
    bass = 3  # the bass's first note, written to its voice's next onset: one option
    assert options.valid[bass].sum() == 1 and options.features[bass, 0, COLUMN["is_current"]] == 1


def _preferring(name: str, weight: float = 1.0) -> ValueChooser:
    """A chooser whose score is ``weight`` × the feature ``name`` (one hidden unit, GELU of
    a large positive input being the input itself)."""
    w1 = np.zeros((FEATURES, 1), np.float32)
    w1[COLUMN[name], 0] = 10.0 * weight
    return ValueChooser(
        w1,
        np.full(1, 5.0, np.float32),
        np.ones(1, np.float32),
        np.zeros(FEATURES, np.float32),
        np.ones(FEATURES, np.float32),
    )


def test_the_best_option_is_written_and_only_where_it_beats_the_current_value():
    attributes, onsets, onset_sec, release = _piece()
    options = _options(attributes, onsets, onset_sec, release)
    changed = choose_values(attributes, options, _preferring("is_voice_next"))
    assert attributes["duration_ticks"][0] == 24  # the held melody note reaches its voice
    assert changed == 1  # every other note already ends at its voice's next onset or has none
    attributes, onsets, onset_sec, release = _piece()
    before = attributes["duration_ticks"].copy()
    assert choose_values(attributes, options, _preferring("is_current")) == 0
    assert attributes["duration_ticks"].tolist() == before.tolist()
    # a margin the best option's lead does not reach keeps the current value
    assert choose_values(attributes, options, _preferring("is_voice_next"), margin=100.0) == 0


def test_rest_odds_and_played_lengths_reach_the_features():
    attributes, onsets, onset_sec, release = _piece()
    rest = np.full(len(attributes), 2.0)
    options = _options(attributes, onsets, onset_sec, release, rest)
    first = options.features[0]
    assert first[0, COLUMN["rest_odds"]] == 2.0
    assert first[0, COLUMN["rest_before_next"]] == 2.0  # onset 12 is short of 24
    assert first[1, COLUMN["rest_before_next"]] == 0.0  # onset 24 is the voice's next
    assert first[0, COLUMN["held_past"]] == 1 and first[1, COLUMN["held_past"]] == 0


def test_chooser_round_trip_and_refusal(tmp_path):
    chooser = _preferring("value_log2")
    chooser.save(tmp_path)
    loaded = load_value_chooser(tmp_path)
    features = np.random.default_rng(0).normal(size=(5, OPTIONS, FEATURES)).astype(np.float32)
    assert np.allclose(loaded.scores(features), chooser.scores(features))
    assert load_value_chooser(tmp_path / "none") is None
    config = (tmp_path / "value_choice.json").read_text().replace("rank", "place")
    (tmp_path / "value_choice.json").write_text(config)
    with pytest.raises(ValueError, match="other features"):
        load_value_chooser(tmp_path)


def test_shipped_chooser_runs_in_the_conversion_and_changes_values_only(tmp_path, monkeypatch):
    from dataclasses import replace

    import perf2score.neural.converter as converter
    from perf2score.conversion import convert
    from perf2score.midi.reading import NOTE_DTYPE, Performance
    from perf2score.score.reading import read_score

    rng = np.random.default_rng(3)
    n = 96  # a melody in eighths over a bass in quarters, some melody notes detached
    notes = np.zeros(n, dtype=NOTE_DTYPE)
    melody = np.arange(64)
    notes["pitch"][:64] = 72 + rng.integers(-5, 6, 64)
    notes["onset_sec"][:64] = 0.1 + melody * 0.25 + rng.normal(0, 0.01, 64)
    notes["offset_sec"][:64] = notes["onset_sec"][:64] + np.where(melody % 4 == 3, 0.1, 0.24)
    notes["pitch"][64:] = 48 + rng.integers(-5, 6, 32)
    notes["onset_sec"][64:] = 0.1 + np.arange(32) * 0.5 + rng.normal(0, 0.01, 32)
    notes["offset_sec"][64:] = notes["onset_sec"][64:] + 0.45
    notes["velocity"] = 64
    performance = Performance(
        notes[np.argsort(notes["onset_sec"], kind="stable")], np.zeros((0, 2))
    )
    model = converter.load_neural_model(None)
    assert (model.values is not None) == model.decoding.value_choice  # loaded only when asked
    asked = replace(model.decoding, value_choice=True)
    on = replace(model, decoding=asked, values=converter.value_chooser(asked))
    assert on.values is not None  # the package ships the chooser
    off = replace(model, decoding=replace(model.decoding, value_choice=False), values=None)
    calls = []
    chosen_values = converter.chosen_values
    monkeypatch.setattr(
        converter, "chosen_values", lambda *a: calls.append(chosen_values(*a)) or calls[-1]
    )
    scores = []
    for chosen in (off, on):
        path = convert(performance, backend="neural", model=chosen).save(tmp_path / "x.musicxml")
        scores.append(np.sort(read_score(path[0]).notes, order=["onset_ticks", "pitch"]))
    assert len(calls) == 1 and calls[0] >= 0  # called for the conversion that asked only
    a, b = scores
    assert a["pitch"].tolist() == b["pitch"].tolist()
    assert a["onset_ticks"].tolist() == b["onset_ticks"].tolist()
    assert (b["offset_ticks"] > b["onset_ticks"]).all()


def test_a_chord_is_one_choice_at_its_written_value():
    attributes, onsets, onset_sec, release = _piece()
    attributes["duration_ticks"][3] = 6  # the bass's first note a 16th; a second note...
    extra = attributes[3:4].copy()
    extra["pitch"], extra["duration_ticks"] = 43, 36  # ...in its chord runs past its voice
    attributes = np.concatenate([attributes, extra])
    onsets = np.append(onsets, 0)
    onset_sec, release = np.append(onset_sec, 0.0), np.append(release, 0.24)
    options = _options(attributes, onsets, onset_sec, release)
    chord = options.chords[np.isin(options.notes, [3, 9])]
    assert chord[0] == chord[1]  # one chord
    # written with its longest value cut at the voice's next onset (12): one option, 12
    rows = np.flatnonzero(np.isin(options.notes, [3, 9]))
    assert (options.ends[rows, 0] == 12).all() and (options.valid[rows].sum(1) == 1).all()
    assert options.features[rows, 0, COLUMN["is_current"]].tolist() == [1, 1]
    # its only option is the value it is written with: it stays (the writer unifies it);
    # the melody's first note, written an eighth, takes the longer of its two options
    assert choose_values(attributes, options, _preferring("value_log2")) == 1
    assert attributes["duration_ticks"][[0, 3, 9]].tolist() == [24, 6, 36]


def test_degenerate_pieces():
    attributes, onsets, onset_sec, release = _piece()
    everything = np.ones(len(attributes), bool)  # every note dropped
    decoded = attributes["duration_ticks"].copy()
    options = value_options(
        attributes, everything, onsets, TPQ, onset_sec, release, release, decoded
    )
    assert options.features.shape == (0, OPTIONS, FEATURES)
    assert choose_values(attributes, options, _preferring("rank")) == 0
    one = attributes[:1].copy()  # one note, released as it starts
    options = value_options(
        one,
        np.zeros(1, bool),
        onsets[:1],
        TPQ,
        onset_sec[:1],
        onset_sec[:1],
        onset_sec[:1],
        decoded[:1],
    )
    assert options.valid.tolist() == [[False] * CANDIDATES + [True]]
    assert np.isfinite(options.features).all()
    assert choose_values(one, options, _preferring("rank")) == 0
    assert one["duration_ticks"][0] == 12


def test_a_model_folder_s_own_chooser_comes_first(tmp_path):
    from perf2score.neural.converter import value_chooser
    from perf2score.neural.settings import DecodeConfig

    asked = DecodeConfig.from_dict({"value_choice": True})
    assert value_chooser(DecodeConfig.from_dict({"value_choice": False}), tmp_path) is None
    shipped = value_chooser(asked, tmp_path)  # nothing in the folder: the shipped one
    assert shipped is not None
    own = _preferring("rank")
    own.save(tmp_path)
    assert np.array_equal(value_chooser(asked, tmp_path).w1, own.w1)
    assert not np.array_equal(shipped.w1.shape, own.w1.shape)
