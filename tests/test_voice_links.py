"""Voices as lines: the voice linker and its tracker (perf2score.neural.voice_links)."""

import numpy as np
import pytest

from perf2score.neural.voice_links import (
    LINK_FEATURE_NAMES,
    LINK_FEATURES,
    VoiceLinker,
    link_features,
    link_pairs,
    linked_voices,
    load_voice_linker,
    numbered_by_register,
    staffed,
    tracked_voices,
)
from perf2score.score.attributes import ATTRIBUTE_DTYPE

TPQ = 24
COLUMN = {name: i for i, name in enumerate(LINK_FEATURE_NAMES)}


def _piece():
    """The upper staff: a half note (E5) held over four eighths below it (C5 D5 C5 B4), then
    a chord (G5 over G4); the lower staff: two quarters. Played at 120 quarters a minute."""
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
        attributes[k]["measure"] = 0
    onsets = np.array([r[0] for r in rows], dtype=np.int64)
    onset_sec = onsets / TPQ * 0.5
    release = np.array([r[4] for r in rows])
    velocity = np.array([r[5] for r in rows])
    return attributes, onsets, onset_sec, release, velocity


def _grouped(keep=None):
    attributes, onsets, *_ = _piece()
    keep = np.ones(len(attributes), bool) if keep is None else keep
    staff = attributes["staff"].astype(np.int64)
    return staffed(onsets, staff, attributes["pitch"].astype(np.int64), keep)


def _named(grouped, pairs):
    """Each pair as (piece position of n, of m, step)."""
    src, dst, step = pairs
    order = grouped.order
    return {(int(order[a]), int(order[b]), int(s)) for a, b, s in zip(src, dst, step, strict=True)}


def _preferring(name: str, weight: float = 10.0, reach: int = 8) -> VoiceLinker:
    """A linker whose log-odds grow with one feature (a GELU of it, times ``weight``)."""
    w1 = np.zeros((LINK_FEATURES, 1), np.float32)
    w1[COLUMN[name], 0] = 1.0
    return VoiceLinker(
        w1,
        np.zeros(1, np.float32),
        np.ones((1, 1), np.float32),
        np.zeros(1, np.float32),
        np.array([weight], np.float32),
        np.zeros(LINK_FEATURES, np.float32),
        np.ones(LINK_FEATURES, np.float32),
        reach,
    )


def test_groups_follow_staff_then_onset_then_pitch_from_the_top():
    grouped = _grouped()
    # staff 1: onsets 0 (E5 C5), 12, 24, 36, 48 (G5 G4); staff 2: onsets 0, 24
    assert grouped.order.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert grouped.group_staff.tolist() == [1, 1, 1, 1, 1, 2, 2]
    assert grouped.group_rank.tolist() == [0, 1, 2, 3, 4, 0, 1]
    assert np.diff(grouped.starts).tolist() == [2, 1, 1, 1, 2, 1, 1]


def test_pairs_reach_the_next_onsets_of_the_own_staff_only():
    grouped = _grouped()
    pairs = _named(grouped, link_pairs(grouped, reach=2))
    assert (0, 1, 0) in pairs and (1, 0, 0) not in pairs  # at one onset: the top to below
    assert (0, 2, 1) in pairs and (1, 2, 1) in pairs  # both notes of onset 0 to D5
    assert (0, 3, 2) in pairs and (0, 4, 3) not in pairs  # no further than the reach
    assert (7, 8, 1) in pairs  # the bass's next onset
    assert not any((a in (7, 8) and b < 7) or (a < 7 and b in (7, 8)) for a, b, _ in pairs)
    dropped = np.ones(9, bool)
    dropped[2] = False  # a note left out is in no pair, and its onset is no step
    grouped = _grouped(dropped)
    pairs = _named(grouped, link_pairs(grouped, reach=1))
    assert not any(2 in (a, b) for a, b, _ in pairs) and (0, 3, 1) in pairs


def test_features_see_the_held_note_and_the_nearest_line():
    attributes, onsets, onset_sec, release, velocity = _piece()
    grouped = _grouped()
    pairs = link_pairs(grouped, reach=4)
    odds = np.zeros(9)
    second = np.full(9, 40.0)
    features = link_features(
        grouped, pairs, attributes, onsets, TPQ, onset_sec, release, velocity, odds, second
    )
    assert features.shape == (len(pairs[0]), LINK_FEATURES) and np.isfinite(features).all()
    row = {key: k for k, key in enumerate(_named(grouped, pairs))}
    src, dst, _ = pairs
    index = {
        (int(grouped.order[a]), int(grouped.order[b])): k
        for k, (a, b) in enumerate(zip(src.tolist(), dst.tolist(), strict=True))
    }
    assert len(row) == len(index)
    e5_d5, c5_d5 = features[index[(0, 2)]], features[index[(1, 2)]]
    assert e5_d5[COLUMN["held_over_m"]] == 1 and c5_d5[COLUMN["held_over_m"]] == 0
    assert c5_d5[COLUMN["pitch_step"]] == pytest.approx(2 / 12)
    assert c5_d5[COLUMN["nearest_from_here"]] == 0  # C5 is the nearest of its onset to D5
    assert e5_d5[COLUMN["nearest_from_here"]] == 0  # E5 is as near (2 semitones)
    # to the C5 at onset 24, E5 is 4 semitones away where the C5 of its onset is 0
    assert features[index[(0, 3)], COLUMN["nearest_from_here"]] == pytest.approx(4 / 12)
    # E5 to G5 (step 4) passes over D5 C5 B4 nearer to it? no: G5 is 3 away, D5 2
    e5_g5 = features[index[(0, 5)]]
    assert e5_g5[COLUMN["step"]] == pytest.approx(4 / 8)
    assert e5_g5[COLUMN["nearer_between_from_n"]] == pytest.approx((2 - 3) / 12)
    assert e5_d5[COLUMN["second_n"]] == pytest.approx(10 / 4)  # clipped at 10 nats


def _odds(src, dst, wanted):
    """Log-odds +4 for the pairs (piece positions) in ``wanted``, -4 for the others."""
    pairs = zip(src.tolist(), dst.tolist(), strict=True)
    return np.array([4.0 if pair in wanted else -4.0 for pair in pairs])


def test_tracker_follows_two_lines():
    grouped = _grouped()
    pairs = link_pairs(grouped, reach=8)
    src, dst, _ = pairs
    a, b = grouped.order[src], grouped.order[dst]
    # links: E5 -> G5 (step 4), C5 D5 C5 B4 -> each next, B4 -> G4; the bass's two notes
    wanted = {(0, 5), (1, 2), (2, 3), (3, 4), (4, 6), (7, 8)}
    odds = _odds(a, b, wanted)
    voices = linked_voices(grouped, pairs, odds, 9, new_voice=-1.0, reach=8)
    assert voices[0] == voices[5] != voices[1]
    assert voices[1] == voices[2] == voices[3] == voices[4] == voices[6]
    assert voices[7] == voices[8]
    # numbered as a score numbers them: in each measure and staff the highest voice is 1
    attributes = _piece()[0]
    attributes["measure"][[5, 6]] = 1  # the chord in a measure of its own
    renumbered = numbered_by_register(voices + 1, attributes, np.ones(9, bool))
    assert renumbered[[0, 1, 7]].tolist() == [1, 2, 1]
    assert renumbered[5] == 1 and renumbered[6] == 2  # G5's line over G4's
    alone = numbered_by_register(np.full(9, 3), attributes, np.ones(9, bool))
    assert set(alone.tolist()) == {1}  # a measure's only voice is voice 1
    # a reach of 2 closes the held line before G5, which then goes on in the other voice or
    # opens a new one: never E5's voice through a step it cannot see
    short = link_pairs(grouped, reach=2)
    s_a, s_b = grouped.order[short[0]], grouped.order[short[1]]
    odds = _odds(s_a, s_b, wanted)
    voices = linked_voices(grouped, short, odds, 9, new_voice=-1.0, reach=2)
    assert voices[1] == voices[2] == voices[3] == voices[4]


def test_a_note_joins_a_chord_only_when_it_belongs_with_the_notes_in_it():
    grouped = _grouped()
    pairs = link_pairs(grouped, reach=8)
    a, b = grouped.order[pairs[0]], grouped.order[pairs[1]]
    # E5 -> G5 and the eighths' line C5 D5 C5 B4 as before; the held E5 also links to G4
    # (3 nats), B4 to G4 weakly (1), and G4 does not belong with G5 (-4 at their onset)
    given = {(0, 5): 4.0, (1, 2): 4.0, (2, 3): 4.0, (3, 4): 4.0, (7, 8): 4.0}
    given.update({(0, 6): 3.0, (4, 6): 1.0, (5, 6): -4.0})
    pairs_at = zip(a.tolist(), b.tolist(), strict=True)
    odds = np.array([given.get(pair, -4.0) for pair in pairs_at])
    # the stronger link: E5's line alone takes G4 into G5's voice, a chord
    voices = linked_voices(grouped, pairs, odds, 9, new_voice=-1.0, reach=8, chord="max")
    assert voices[6] == voices[5]
    # the mean of the line's link and G5's (-0.5) loses to B4's: G4 ends the eighths' line
    voices = linked_voices(grouped, pairs, odds, 9, new_voice=-1.0, reach=8, chord="mean")
    assert voices[6] == voices[4] != voices[5]
    with pytest.raises(ValueError, match="chord must be one of"):
        linked_voices(grouped, pairs, odds, 9, chord="min")


def test_at_most_four_voices_and_chords_join_one_voice():
    grouped = _grouped()
    pairs = link_pairs(grouped, reach=8)
    none = np.full(len(pairs[0]), -9.0)  # no link anywhere: each note opens a voice
    voices = linked_voices(grouped, pairs, none, 9, new_voice=0.0, reach=8)
    assert set(voices.tolist()) <= {1, 2, 3, 4}
    every = np.full(len(pairs[0]), 9.0)  # every link: one voice per staff, chords in it
    voices = linked_voices(grouped, pairs, every, 9, new_voice=0.0, reach=8)
    assert set(voices.tolist()) == {1}


def test_tracked_voices_leave_dropped_and_grace_notes_in_voice_one():
    attributes, onsets, onset_sec, release, velocity = _piece()
    attributes["is_grace"][3] = True
    keep = np.ones(9, bool)
    keep[2] = False
    voices = tracked_voices(
        attributes,
        keep,
        onsets,
        TPQ,
        onset_sec,
        release,
        velocity,
        np.zeros(9),
        np.zeros(9),
        _preferring("held_over_m", weight=-10.0),
        new_voice=-1.0,
    )
    assert voices[2] == 1 and voices[3] == 1
    assert voices[0] != voices[1]  # C5 under the held E5 is not its line


def test_linker_round_trip_and_refusal(tmp_path):
    linker = _preferring("pitch_distance", reach=12)
    linker.save(tmp_path)
    loaded = load_voice_linker(tmp_path)
    features = np.random.default_rng(0).normal(size=(7, LINK_FEATURES)).astype(np.float32)
    assert np.allclose(loaded.log_odds(features), linker.log_odds(features))
    assert loaded.reach == 12
    assert load_voice_linker(tmp_path / "none") is None
    config = (tmp_path / "voice_links.json").read_text().replace("louder", "softer")
    (tmp_path / "voice_links.json").write_text(config)
    with pytest.raises(ValueError, match="other features"):
        load_voice_linker(tmp_path)


def test_a_model_folder_s_own_linker_comes_first(tmp_path):
    from perf2score.neural.converter import voice_linker
    from perf2score.neural.settings import DecodeConfig

    asked = DecodeConfig.from_dict({"voice_links": True, "voice_choice": True})
    assert voice_linker(DecodeConfig.from_dict({"voice_links": False}), tmp_path) is None
    # only beside the voice chooser, whose log-odds it reads
    no_chooser = DecodeConfig.from_dict({"voice_links": True, "voice_choice": False})
    assert voice_linker(no_chooser, tmp_path) is None
    shipped = voice_linker(asked, tmp_path)  # nothing in the folder: the shipped one
    assert shipped is not None
    own = _preferring("louder")
    own.save(tmp_path)
    assert np.array_equal(voice_linker(asked, tmp_path).w1, own.w1)
    assert shipped.w1.shape != own.w1.shape
    from perf2score.errors import Perf2ScoreError

    with pytest.raises(Perf2ScoreError, match="voice_links_new"):
        DecodeConfig.from_dict({"voice_links_new": float("nan")})


def test_shipped_linker_runs_in_the_conversion_and_changes_voices_only(tmp_path, monkeypatch):
    from dataclasses import replace

    from builders import layered_performance, written_notes

    import perf2score.neural.converter as converter
    import perf2score.neural.voice_links as voice_links

    # a melody in held half notes over running eighths, and a bass in quarters
    performance = layered_performance(
        7, [(8, 79, 3, 1.0, 0.97, 0), (56, 67, 4, 0.143, 0.12, 0.005), (16, 43, 5, 0.5, 0.45, 0)]
    )
    model = converter.load_neural_model(None)
    assert (model.voice_linker is not None) == model.decoding.voice_links
    asked = replace(model.decoding, voice_choice=True, voice_links=True)
    on = replace(
        model,
        decoding=asked,
        voice_chooser=converter.voice_chooser(asked),
        voice_linker=converter.voice_linker(asked),
    )
    assert on.voice_linker is not None  # the package ships the linker
    off = replace(model, decoding=replace(asked, voice_links=False))
    calls = []
    tracked = voice_links.tracked_voices
    monkeypatch.setattr(
        voice_links, "tracked_voices", lambda *a: calls.append(tracked(*a)) or calls[-1]
    )
    scores = [written_notes(performance, each, tmp_path) for each in (off, on)]
    assert len(calls) == 1 and set(np.unique(calls[0])) <= {1, 2, 3, 4}  # asked once
    a, b = scores
    assert a["pitch"].tolist() == b["pitch"].tolist()
    assert a["onset_ticks"].tolist() == b["onset_ticks"].tolist()
    assert a["staff"].tolist() == b["staff"].tolist()
