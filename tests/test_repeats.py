"""Repeats the performer played, written once between repeat bar lines (score.repeats)."""

import numpy as np
from partitura.io.importmusicxml import validate_musicxml

from perf2score.conversion import convert, write_repeats_once
from perf2score.midi import Performance, read_performance
from perf2score.midi.reading import NOTE_DTYPE
from perf2score.score import read_score
from perf2score.score.assembly import assemble
from perf2score.score.attributes import ATTRIBUTE_DTYPE
from perf2score.score.export import save
from perf2score.score.repeats import find_repeats

TPQ = 24
BEAT = 0.4  # seconds a quarter


def _section(rng: np.random.Generator, beats: int) -> list[list[int]]:
    """A chord of one to three random pitches on each of ``beats`` quarters."""
    return [sorted(set(rng.integers(40, 90, rng.integers(1, 4)).tolist())) for _ in range(beats)]


def _play(beats: list[list[int]], rng: np.random.Generator, leave_out: float = 0.0):
    """A performance of one chord a quarter, onsets jittered, a share of notes left out;
    and the (pitch, beat) of every note played."""
    rows, written = [], []
    for b, chord in enumerate(beats):
        for pitch in chord:
            if rng.random() < leave_out:
                continue
            onset = 0.1 + b * BEAT + rng.normal(0, 0.01)
            rows.append((pitch, onset, onset + 0.9 * BEAT, 64, 0, 0))
            written.append((pitch, b))
    notes = np.array(rows, dtype=NOTE_DTYPE)
    return Performance(notes, np.zeros((0, 2))), written


def _attributes(written: list[tuple[int, int]]) -> np.ndarray:
    """The notes written out in 4/4, one quarter each, at the beat they were played on."""
    rows = np.zeros(len(written), dtype=ATTRIBUTE_DTYPE)
    for k, (pitch, b) in enumerate(written):
        rows[k]["pitch"], rows[k]["step"], rows[k]["octave"] = pitch, "C", pitch // 12 - 1
        rows[k]["measure"], rows[k]["position_ticks"] = b // 4, (b % 4) * TPQ
        rows[k]["measure_length_ticks"], rows[k]["ts_num"], rows[k]["ts_den"] = 4 * TPQ, 4, 4
        rows[k]["duration_ticks"], rows[k]["staff"], rows[k]["voice"] = TPQ, 1, 1
    return rows


def test_a_section_played_twice_is_found_with_its_bounds():
    rng = np.random.default_rng(1)
    intro, section, coda = _section(rng, 8), _section(rng, 64), _section(rng, 24)
    performance, _ = _play(intro + section + section + coda, rng, leave_out=0.01)
    (repeat,) = find_repeats(performance.notes["onset_sec"], performance.notes["pitch"])
    assert abs(repeat.start - 0.1 - 8 * BEAT) < BEAT / 2
    assert abs(repeat.second - 0.1 - 72 * BEAT) < BEAT / 2
    assert abs(repeat.second_end - 0.1 - 136 * BEAT) < BEAT / 2
    assert not repeat.has_ending and repeat.matched > 0.8


def test_a_first_ending_and_no_repeat_where_there_is_none():
    rng = np.random.default_rng(2)
    section, first, second = _section(rng, 60), _section(rng, 4), _section(rng, 4)
    coda = _section(rng, 20)
    performance, _ = _play(section + first + section + second + coda, rng)
    (repeat,) = find_repeats(performance.notes["onset_sec"], performance.notes["pitch"])
    assert repeat.has_ending
    assert abs(repeat.first_end - 0.1 - 60 * BEAT) < BEAT / 2
    assert abs(repeat.second - 0.1 - 64 * BEAT) < BEAT / 2
    assert abs(repeat.second_end - 0.1 - 124 * BEAT) < BEAT / 2
    # all new music, or a section that comes back only after other music: nothing folds
    performance, _ = _play(_section(rng, 200), rng)
    assert find_repeats(performance.notes["onset_sec"], performance.notes["pitch"]) == []
    middle = _section(rng, 40)
    performance, _ = _play(section + middle + section, rng)
    assert find_repeats(performance.notes["onset_sec"], performance.notes["pitch"]) == []
    # too short to be a notated repeat (a figure of two bars played twice)
    figure = _section(rng, 8)
    performance, _ = _play(figure + figure + _section(rng, 40), rng)
    assert find_repeats(performance.notes["onset_sec"], performance.notes["pitch"]) == []


def test_the_score_writes_the_section_once_with_endings(tmp_path):
    rng = np.random.default_rng(3)
    intro, section = _section(rng, 8), _section(rng, 56)
    first, second, coda = _section(rng, 4), _section(rng, 4), _section(rng, 16)
    beats = intro + section + first + section + second + coda
    performance, written = _play(beats, rng)
    attributes = _attributes(written)
    score = assemble(attributes, TPQ)
    assert len(score.measures) == len(beats) // 4 == 36
    notes_before = sum(len(c.pitches) for c in score.chords)
    assert write_repeats_once(score, performance, attributes, None) == 1
    # bars: intro 2 | section 14 (bar 3 opens the repeat) | first ending 1 :|| second 1 | coda 4
    assert len(score.measures) == 36 - 14
    assert [m for m, bar in enumerate(score.measures) if bar.repeat_start] == [2]
    assert [m for m, bar in enumerate(score.measures) if bar.repeat_end] == [16]
    assert [bar.ending for bar in score.measures[15:19]] == [0, 1, 2, 0]
    assert score.repeated_sections() == [(3, 17)]  # printed numbers: bars 3 to 17
    assert sum(len(c.pitches) for c in score.chords) == notes_before - sum(
        len(chord) for chord in section
    )
    assert [m.start for m in score.measures] == [4 * TPQ * m for m in range(22)]
    assert max(c.onset + c.duration for c in score.chords) == score.end
    out = tmp_path / "folded.musicxml"
    save(score, out)
    assert validate_musicxml(str(out))
    text = out.read_text()
    assert text.count('<repeat direction="forward"/>') == 1
    assert text.count('<repeat direction="backward"/>') == 1
    assert '<ending number="1" type="start">1.</ending>' in text
    assert '<ending number="2" type="discontinue"/>' in text
    coda_pitches = sorted(p for chord in coda for p in chord)
    back = read_score(out)
    coda_start = 18 * 4 * back.ticks_per_quarter  # the coda follows the second ending
    assert sorted(back.notes["pitch"][back.notes["onset_ticks"] >= coda_start].tolist()) == (
        coda_pitches
    )


def test_convert_folds_by_default_and_writes_every_note_when_asked():
    rng = np.random.default_rng(4)
    section = _section(rng, 64)
    performance, written = _play(_section(rng, 4) + section + section + _section(rng, 12), rng)
    folded = convert(performance, backend="classical")
    full = convert(performance, backend="classical", repeats=False)
    assert "<repeat" in folded.to_musicxml() and "<repeat" not in full.to_musicxml()
    count = lambda score: sum(len(c.pitches) for c in score.assembled.chords)  # noqa: E731
    assert count(full) == len(written)
    assert len(written) - count(folded) >= 0.9 * sum(len(chord) for chord in section)


def test_score_midi_plays_the_repeats(tmp_path):
    from perf2score.score.export import playing_order

    rng = np.random.default_rng(5)
    intro, section = _section(rng, 8), _section(rng, 56)
    first, second, coda = _section(rng, 4), _section(rng, 4), _section(rng, 16)
    performance, written = _play(intro + section + first + section + second + coda, rng)
    attributes = _attributes(written)
    score = assemble(attributes, TPQ)
    write_repeats_once(score, performance, attributes, None)
    # intro, section, first ending, back to bar 3, section, second ending, coda
    order = [0, 1, *range(2, 17), *range(2, 16), *range(17, 22)]
    assert playing_order(score) == order
    save(score, tmp_path / "folded.mid")
    back = read_performance(tmp_path / "folded.mid")
    assert len(back.notes) == len(written)
    assert sorted(back.notes["pitch"].tolist()) == sorted(p for p, _ in written)


def test_a_repeat_from_the_first_bar_to_the_last():
    rng = np.random.default_rng(6)
    section = _section(rng, 64)
    performance, written = _play(section + section, rng)
    attributes = _attributes(written)
    score = assemble(attributes, TPQ)
    assert write_repeats_once(score, performance, attributes, None) == 1
    assert len(score.measures) == 16
    assert not any(m.repeat_start for m in score.measures)  # implied at the beginning
    assert score.measures[-1].repeat_end and not any(m.ending for m in score.measures)
    assert sorted(p[0] for c in score.chords for p in c.pitches) == sorted(
        p for chord in section for p in chord
    )


def test_the_command_line_writes_repeats_unless_told_otherwise(tmp_path, capsys):
    from builders import write_midi

    from perf2score.cli import main

    rng = np.random.default_rng(7)
    section = _section(rng, 64)
    performance, _ = _play(_section(rng, 4) + section + section + _section(rng, 12), rng)
    notes = [
        (int(n["pitch"]), float(n["onset_sec"]), float(n["offset_sec"]), 64)
        for n in performance.notes
    ]
    midi = write_midi(tmp_path / "played.mid", [notes])
    folded, full = tmp_path / "folded.musicxml", tmp_path / "full.musicxml"
    assert main(["-q", "convert", str(midi), "-o", str(folded), "--backend", "classical"]) == 0
    assert "played twice, written once between repeat signs: bars " in capsys.readouterr().err
    command = ["-q", "convert", str(midi), "-o", str(full), "--backend", "classical"]
    assert main([*command, "--written-out"]) == 0
    assert "repeat" not in capsys.readouterr().err
    assert "<repeat" in folded.read_text() and "<repeat" not in full.read_text()
    assert len(read_score(folded).notes) < len(read_score(full).notes)


def test_two_halves_each_repeated():
    from perf2score.score.export import playing_order

    rng = np.random.default_rng(8)
    first, second = _section(rng, 64), _section(rng, 64)
    performance, written = _play(first + first + second + second, rng)
    found = find_repeats(performance.notes["onset_sec"], performance.notes["pitch"])
    assert len(found) == 2
    attributes = _attributes(written)
    score = assemble(attributes, TPQ)
    assert write_repeats_once(score, performance, attributes, None) == 2
    assert len(score.measures) == 32
    assert [m for m, bar in enumerate(score.measures) if bar.repeat_start] == [16]
    assert [m for m, bar in enumerate(score.measures) if bar.repeat_end] == [15, 31]
    assert playing_order(score) == [*range(16), *range(16), *range(16, 32), *range(16, 32)]


def test_the_folded_score_reads_back_as_played_when_unfolded(tmp_path):
    rng = np.random.default_rng(9)
    section, first, second = _section(rng, 56), _section(rng, 4), _section(rng, 4)
    beats = _section(rng, 8) + section + first + section + second + _section(rng, 16)
    performance, written = _play(beats, rng)
    attributes = _attributes(written)
    score = assemble(attributes, TPQ)
    write_repeats_once(score, performance, attributes, None)
    save(score, tmp_path / "folded.musicxml")
    notated = read_score(tmp_path / "folded.musicxml")
    played = read_score(tmp_path / "folded.musicxml", unfold=True)
    assert len(notated.notes) == len(written) - sum(len(chord) for chord in section)
    assert len(played.notes) == len(written)
    assert sorted(played.notes["pitch"].tolist()) == sorted(p for p, _ in written)
