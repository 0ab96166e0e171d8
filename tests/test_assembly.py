import re
from itertools import pairwise

import numpy as np
import pytest
from builders import build_part, write_musicxml
from partitura.io.importmusicxml import validate_musicxml

from perf2score import read_performance
from perf2score.data.targets import score_targets
from perf2score.evaluate.muster import ERROR_RATES, evaluate_scores
from perf2score.score import read_score
from perf2score.score.assembly import assemble
from perf2score.score.attributes import ATTRIBUTE_DTYPE
from perf2score.score.export import FORMATS, format_of, save
from perf2score.score.musicxml import to_musicxml
from perf2score.score.notation import split_duration


@pytest.fixture(scope="module")
def piece(tmp_path_factory):
    path = write_musicxml(build_part(), tmp_path_factory.mktemp("piece") / "piece.musicxml")
    table, tpq, _ = score_targets(path)
    return path, table[~table["tie_stop"]], tpq  # performed notes: no tied continuations


def test_round_trip_reproduces_the_score(piece, tmp_path):
    path, table, tpq = piece
    score = assemble(table, tpq, title="round trip")
    out = tmp_path / "out.musicxml"
    save(score, out)
    assert validate_musicxml(str(out))
    result = evaluate_scores(read_score(path), read_score(out))
    for key in ERROR_RATES:
        assert getattr(result, key) == 0.0, key
    text = out.read_text()
    assert '<tie type="start"' in text and "<time-modification>" in text and "<grace" in text
    assert 'implicit="yes"' in text  # the pickup measure


def test_implausible_attributes_are_repaired(tmp_path):
    rng = np.random.default_rng(0)
    rows = np.zeros(40, dtype=ATTRIBUTE_DTYPE)
    rows["pitch"] = rng.integers(30, 100, 40)
    rows["step"], rows["octave"] = "C", 4
    rows["measure"] = np.sort(rng.integers(-1, 6, 40))
    rows["measure_length_ticks"] = rng.choice([0, 96, 72], 40)
    rows["ts_num"], rows["ts_den"] = rng.choice([4, 0, 3], 40), rng.choice([4, 3, 8], 40)
    rows["position_ticks"] = rng.integers(-20, 150, 40)
    rows["duration_ticks"] = rng.integers(-5, 200, 40)
    rows["staff"] = rng.integers(0, 4, 40)
    rows["voice"] = rng.integers(0, 9, 40)
    rows["key_fifths"] = rng.integers(-9, 9, 40)
    score = assemble(rows, 24)
    assert score.repairs
    out = tmp_path / "repaired.musicxml"
    save(score, out)
    assert validate_musicxml(str(out))
    assert len(read_score(out)) > 0


def test_every_format(piece, tmp_path):
    _, table, tpq = piece
    score = assemble(table, tpq, tempo_qpm=90)
    for fmt in FORMATS:
        written = save(score, tmp_path / f"piece.{fmt}")
        assert written and all(p.stat().st_size > 100 for p in written), fmt
        assert format_of(written[0]) == fmt
    midi = read_performance(tmp_path / "piece.mid")
    assert len(midi) == int((~table["is_grace"]).sum())
    assert (tmp_path / "piece.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "piece.pdf").read_bytes()[:4] == b"%PDF"
    assert "<mei" in (tmp_path / "piece.mei").read_text()[:500]


def test_split_duration_tiles_the_span():
    for start, length in [(0, 72), (6, 30), (8, 16), (0, 5), (12, 84), (0, 1)]:
        pieces = split_duration(start, length, 24)
        assert pieces[0].start == start
        assert sum(p.length for p in pieces) == length
        assert all(a.start + a.length == b.start for a, b in pairwise(pieces))
    assert [p.value.type for p in split_duration(0, 72, 24, max_dots=0)] == ["half", "quarter"]
    assert split_duration(0, 8, 24)[0].value.tuplet  # a triplet eighth


def test_a_span_is_written_with_the_fewest_pieces_and_dots():
    def written(*args, **options):
        return [(p.value.type, p.value.dots) for p in split_duration(*args, **options)]

    # two beats from 3/4's second beat: a half note, not a double-dotted quarter and a 16th
    assert written(48, 96, 48, half_on_beats=True) == [("half", 0)]
    assert written(48, 96, 48) == [("quarter", 0), ("quarter", 0)]  # rests show the beats
    assert written(24, 72, 48, half_on_beats=True) == [("quarter", 1)]  # off the beat
    assert written(0, 96, 48, half_on_beats=True) == [("half", 0)]
    for start in range(0, 192, 6):  # every cut tiles its span, and no longer than before
        for length in range(6, 192 - start + 1, 6):
            pieces = split_duration(start, length, 48, half_on_beats=True)
            assert sum(p.length for p in pieces) == length and pieces[0].start == start
            assert len(pieces) <= len(split_duration(start, length, 48))


def test_musicxml_is_deterministic(piece):
    _, table, tpq = piece
    assert to_musicxml(assemble(table, tpq)) == to_musicxml(assemble(table, tpq))


def test_assembly_refuses_input_without_the_attribute_fields():
    from perf2score import Perf2ScoreError

    with pytest.raises(Perf2ScoreError, match="lacks the fields"):
        assemble(np.zeros(3, dtype=[("pitch", "i2")]), 24)


def test_the_writer_writes_what_elementtree_writes():
    import xml.etree.ElementTree as ET

    from perf2score.score.musicxml import XmlWriter

    root = ET.Element("score-partwise", version="4.0")
    work = ET.SubElement(root, "work")
    ET.SubElement(work, "work-title").text = 'a & b <"c"> \t tab'
    note = ET.SubElement(root, "note", {"default-x": '1"<&>\n\t\r'})
    ET.SubElement(note, "chord")
    ET.SubElement(note, "empty").text = ""
    ET.SubElement(note, "duration").text = "12"
    ET.SubElement(ET.SubElement(note, "notations"), "tied", type="start")
    ET.SubElement(root, "opened-empty")
    ET.indent(root, space="  ")
    expected = ET.tostring(root, encoding="unicode").replace(" />", "/>")

    w = XmlWriter()
    w.open("score-partwise", version="4.0")
    w.open("work")
    w.leaf("work-title", 'a & b <"c"> \t tab')
    w.close()
    w.open("note", default_x='1"<&>\n\t\r')
    w.leaf("chord")
    w.leaf("empty", "")
    w.leaf("duration", 12)
    w.open("notations")
    w.leaf("tied", type="start")
    w.close()
    w.close()
    w.open("opened-empty")
    w.close()
    with pytest.raises(ValueError, match="still open"):
        w.text()
    w.close()
    assert w.text() == expected


@pytest.mark.parametrize(
    ("signature", "mark"),
    [
        ((6, 8), "<beat-unit>quarter</beat-unit><beat-unit-dot/><per-minute>80</per-minute>"),
        ((6, 4), "<beat-unit>half</beat-unit><beat-unit-dot/><per-minute>40</per-minute>"),
        ((12, 16), "<beat-unit>eighth</beat-unit><beat-unit-dot/><per-minute>160</per-minute>"),
        ((3, 4), "<beat-unit>quarter</beat-unit><per-minute>120</per-minute>"),
        ((2, 2), "<beat-unit>quarter</beat-unit><per-minute>120</per-minute>"),
    ],
)
def test_the_metronome_mark_counts_the_dotted_beat_of_a_compound_meter(signature, mark):
    """120 quarters a minute: ♩. = 80 in 6/8, 𝅗𝅥. = 40 in 6/4, ♪. = 160 in 12/16, ♩ = 120
    in a simple meter; the sound's tempo stays in quarters."""
    from perf2score.score.assembly import AssembledScore, Chord, Measure

    tpq = 4
    length = signature[0] * 4 * tpq // signature[1]
    score = AssembledScore(
        [Measure(0, length, *signature, 0, 0)], [Chord(0, tpq, 1, 1, [(60, "C", 0, 4)])], tpq, 120.0
    )
    xml = re.sub(r">\s+<", "><", to_musicxml(score))
    assert mark in xml and '<sound tempo="120.0"' in xml


def test_a_rest_filling_a_measure_is_a_measure_rest_in_every_meter():
    """The empty lower staff: a whole (measure) rest in 3/4 and 6/8 as in 4/4, named a
    whole only in 4/4; a pickup's rest keeps its value."""
    from perf2score.score.assembly import AssembledScore, Chord, Measure

    tpq = 4
    for signature, named in (((3, 4), False), ((6, 8), False), ((4, 4), True)):
        length = signature[0] * 4 * tpq // signature[1]
        measures = [Measure(0, tpq, *signature, 0, 0), Measure(tpq, length, *signature, 0, 0)]
        chords = [
            Chord(0, tpq, 1, 1, [(60, "C", 0, 4)]),
            Chord(tpq, length, 1, 1, [(62, "D", 0, 4)]),
        ]
        xml = re.sub(r">\s+<", "><", to_musicxml(AssembledScore(measures, chords, tpq)))
        lower = [n for n in re.findall(r"<note>.*?</note>", xml) if "<staff>2</staff>" in n]
        pickup, full = lower
        assert 'measure="yes"' not in pickup and "<type>quarter</type>" in pickup
        assert f'<rest measure="yes"/><duration>{length}</duration>' in full
        assert ("<type>whole</type>" in full) == named
