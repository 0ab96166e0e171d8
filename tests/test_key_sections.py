"""Key signatures per section: a remote key gets its own, a passing neighbour does not."""

import numpy as np

from perf2score.score.key_sections import (
    KEY_CHANGE_COST,
    MAJOR,
    MINOR,
    key_sections,
    signature_path,
)
from perf2score.score.spelling import key_and_spelling, key_and_spelling_by_section

MAJOR_SCALE = np.array([0, 2, 4, 5, 7, 9, 11])
MINOR_SCALE = np.array([0, 2, 3, 5, 7, 8, 11])  # harmonic


def _measures(tonic: int, count: int, scale=MAJOR_SCALE, first: int = 0):
    """(pitches, measures) of ``count`` measures, each the scale of ``tonic`` up and its
    tonic triad: eight notes a measure."""
    bar = np.concatenate([60 + tonic + scale, [60 + tonic]])
    pitches = np.tile(bar, count)
    measures = np.repeat(np.arange(first, first + count), len(bar))
    return pitches, measures


def _piece(*parts):
    """Sections joined in order: ``parts`` of (tonic, measures[, scale])."""
    pitches, measures, first = [], [], 0
    for part in parts:
        p, m = _measures(*part[:2], *(part[2:] or (MAJOR_SCALE,)), first=first)
        pitches.append(p), measures.append(m)
        first += part[1]
    return np.concatenate(pitches), np.concatenate(measures)


def test_a_long_passage_in_a_remote_key_gets_its_signature_and_a_short_neighbour_does_not():
    # 16 bars of C major, 16 of A-flat major (four fifths away), 16 of C major
    pitches, measures = _piece((0, 16), (8, 16), (0, 16))
    fifths, modes = key_sections(pitches, measures, home=0)
    assert (fifths[measures < 16] == 0).all() and (fifths[measures >= 32] == 0).all()
    assert (fifths[(measures >= 16) & (measures < 32)] == -4).all()
    assert (modes == MAJOR).all()
    # four bars in G major (the dominant, one fifth away) inside C keep C's signature
    pitches, measures = _piece((0, 12), (7, 4), (0, 12))
    assert (key_sections(pitches, measures, home=0)[0] == 0).all()


def test_a_short_excursion_to_a_remote_key_does_not_pay_for_a_change():
    # two bars of A-flat in C: the new signature must gain more than two changes cost
    pitches, measures = _piece((0, 12), (8, 2), (0, 12))
    assert (key_sections(pitches, measures, home=0)[0] == 0).all()
    evidence = np.zeros((6, 12))
    evidence[:, 0] = 100.0  # the home signature, far ahead of every other
    evidence[2:4, 8] = 100.0 + KEY_CHANGE_COST  # two bars that gain what two changes cost
    assert (signature_path(evidence) == 0).all()  # a tie: the signature stays
    evidence[2:4, 8] += 1.0
    assert signature_path(evidence).tolist() == [0, 0, 8, 8, 0, 0]


def test_minor_sections_and_the_home_key_at_the_start():
    # A minor (harmonic) throughout: the relative major's signature, minor mode
    pitches, measures = _piece((9, 16, MINOR_SCALE))
    fifths, modes = key_sections(pitches, measures, home=0)
    assert (fifths == 0).all() and (modes == MINOR).all()
    # a D-minor piece opening with two bars on F major's scale keeps its signature there
    pitches, measures = _piece((5, 2), (2, 20, MINOR_SCALE))
    assert (key_sections(pitches, measures, home=-1)[0] == -1).all()
    assert len(key_sections(np.zeros(0, int), np.zeros(0, int))[0]) == 0


def test_the_spelling_follows_each_section_and_the_signature_changes_on_request():
    pitches, measures = _piece((0, 16), (8, 16), (0, 16))
    onsets = np.arange(len(pitches)) * 12
    durations = np.full(len(pitches), 12)
    fifths, _, spelling = key_and_spelling_by_section(pitches, onsets, durations, measures)
    middle = (measures >= 16) & (measures < 32)
    assert (fifths == 0).all()  # the home key's signature throughout, by default
    changed, _, same_spelling = key_and_spelling_by_section(
        pitches, onsets, durations, measures, signature_changes=True
    )
    assert (changed[middle] == -4).all() and (changed[~middle] == 0).all()
    assert (same_spelling == spelling).all()
    steps = {
        (s, a) for s, a in zip(spelling["step"][middle], spelling["alter"][middle], strict=True)
    }
    assert steps == {("A", -1), ("B", -1), ("C", 0), ("D", -1), ("E", -1), ("F", 0), ("G", 0)}
    assert (spelling["alter"][~middle] == 0).all()
    # one section: the same key and spelling as the one key a piece
    single = _piece((2, 16))
    onsets1, durations1 = np.arange(len(single[0])) * 12, np.full(len(single[0]), 12)
    by_section = key_and_spelling_by_section(single[0], onsets1, durations1, single[1])
    whole = key_and_spelling(single[0], onsets1, durations1)
    assert (by_section[0] == whole[0]).all() and (by_section[1] == whole[1]).all()
    assert (by_section[2] == whole[2]).all()
    # F-sharp major (six sharps) written as G-flat where the section's notes voted flats
    sharp = _piece((6, 16))
    onsets6 = np.arange(len(sharp[0])) * 12
    voted = np.full(len(sharp[0]), -6.0)
    fifths6, _, spelled6 = key_and_spelling_by_section(
        sharp[0], onsets6, np.full(len(sharp[0]), 12), sharp[1], voted=voted
    )
    assert (fifths6 == -6).all() and spelled6["step"][0] == "G" and spelled6["alter"][0] == -1


def test_the_command_line_writes_key_changes_on_request(tmp_path, capsys):
    """``convert --key-changes``: a played piece of 16 bars in C major, 16 in A-flat major
    and 16 in C major gets a second signature (four flats) and the first back, with either
    backend; without the option, one signature and accidentals."""
    import re

    from builders import modulating_performance

    from perf2score.cli import main

    source = modulating_performance(tmp_path / "modulating.mid")
    keys = {}
    for backend in ("neural", "classical"):
        for name, extra in (("one", []), ("sections", ["--key-changes"])):
            out = tmp_path / f"{backend}-{name}.musicxml"
            args = ["-q", "convert", str(source), "-o", str(out), "--backend", backend, *extra]
            assert main(args) == 0
            found = re.findall(r"<fifths>(-?\d+)</fifths>", out.read_text())
            keys[backend, name] = [int(f) for f in found]
    for backend in ("neural", "classical"):
        assert keys[backend, "one"] == [0]
        assert keys[backend, "sections"] == [0, -4, 0]


def test_a_passage_on_the_far_side_of_a_flat_key_is_not_written_in_double_flats():
    """G-flat major (the key finder's F-sharp, the notes' votes for flats) with 8 bars of C
    major inside: the spelling is pulled toward the signature written, so the C major bars
    keep their naturals; moving an F-sharp spelling by 12 fifths after wrote them in double
    flats (D-double-flat major: 48 double accidentals)."""
    pitches, measures = _piece((6, 16), (0, 8), (6, 16))
    onsets, durations = np.arange(len(pitches)) * 12, np.full(len(pitches), 12)
    votes = np.full(len(pitches), -6.0)
    fifths, _, spelling = key_and_spelling_by_section(
        pitches, onsets, durations, measures, voted=votes
    )
    middle = (measures >= 16) & (measures < 24)
    assert (fifths == -6).all()
    assert (np.abs(spelling["alter"][middle]) < 2).all()
    assert (spelling["alter"][middle] == 0).mean() > 0.95  # C major's naturals (a C-flat
    # where the passage meets the G-flat bars)
    assert (np.abs(spelling["alter"][~middle]) < 2).all()
    _, _, shifted = key_and_spelling(pitches, onsets, durations, voted=-6.0)
    assert (np.abs(shifted["alter"][middle]) == 2).sum() == 48
