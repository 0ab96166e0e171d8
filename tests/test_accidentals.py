import re

from partitura.io.importmusicxml import validate_musicxml

from perf2score.score.accidentals import WrittenNote, key_alterations, shown_accidentals
from perf2score.score.assembly import AssembledScore, Chord, Measure
from perf2score.score.export import engrave
from perf2score.score.musicxml import to_musicxml

TPQ = 4


def test_key_signatures_alter_their_steps_in_order():
    assert key_alterations(0) == dict.fromkeys("FCGDAEB", 0)
    assert {s for s, a in key_alterations(2).items() if a} == {"F", "C"}
    assert {s: a for s, a in key_alterations(-3).items() if a} == {"B": -1, "E": -1, "A": -1}
    assert set(key_alterations(7).values()) == {1} and set(key_alterations(-7).values()) == {-1}


def test_an_accidental_holds_on_its_line_for_the_rest_of_the_measure():
    notes = [  # C minor (3 flats): the leading tone B natural, then back to B flat
        WrittenNote(0, "B", 4, 0),
        WrittenNote(4, "B", 4, 0),  # held: nothing shown again
        WrittenNote(6, "B", 3, 0),  # another octave: another line
        WrittenNote(8, "B", 4, -1),  # back to the key's flat: stated
        WrittenNote(10, "E", 4, -1),  # as the key says
        WrittenNote(12, "E", 4, 0),
    ]
    assert shown_accidentals(notes, -3) == ["natural", None, "natural", "flat", None, "natural"]


def test_notes_are_read_in_time_order_across_voices():
    notes = [WrittenNote(8, "F", 4, 1), WrittenNote(0, "F", 4, 1)]  # listed out of order
    assert shown_accidentals(notes, 0) == [None, "sharp"]


def test_a_tied_note_shows_nothing_and_changes_nothing():
    notes = [WrittenNote(0, "F", 4, 1, tied=True), WrittenNote(4, "F", 4, 1)]
    assert shown_accidentals(notes, 0) == [None, "sharp"]


def test_two_alterations_of_one_line_at_once_are_both_shown():
    notes = [WrittenNote(0, "F", 4, 0), WrittenNote(0, "F", 4, 1), WrittenNote(4, "F", 4, 1)]
    assert shown_accidentals(notes, 0) == ["natural", "sharp", None]
    doubled = [WrittenNote(0, "C", 5, 2), WrittenNote(2, "C", 5, 1), WrittenNote(3, "D", 5, -2)]
    assert shown_accidentals(doubled, 2) == ["double-sharp", "sharp", "flat-flat"]


def _score() -> AssembledScore:
    """C major, 4/4, two measures: F#4 F#4 F4 F#4 | (tied in) F#4; a grace D#5; G#2 below."""
    bar = 4 * TPQ
    measures = [Measure(k * bar, bar, 4, 4, 0, 0) for k in range(2)]
    f, f_sharp = (65, "F", 0, 4), (66, "F", 1, 4)
    chords = [
        Chord(0, TPQ, 1, 1, [f_sharp]),
        Chord(TPQ, TPQ, 1, 1, [f_sharp], grace=[(75, "D", 1, 5)]),
        Chord(2 * TPQ, TPQ, 1, 1, [f]),
        Chord(3 * TPQ, 2 * TPQ, 1, 1, [f_sharp]),  # tied across the bar line
        Chord(bar + 2 * TPQ, TPQ, 1, 1, [f_sharp]),
        Chord(0, bar, 2, 1, [(44, "G", 1, 2)]),
    ]
    return AssembledScore(measures, chords, TPQ)


def _note_marks(xml: str) -> list[tuple[str, str | None]]:
    """(step+alter+octave, accidental or None) of every note, in document order."""
    marks = []
    for note in re.findall(r"<note>(.*?)</note>", xml, re.S):
        if "<rest" in note:
            continue
        step = re.search(r"<step>(\w)</step>", note).group(1)
        alter = re.search(r"<alter>(-?\d)</alter>", note)
        octave = re.search(r"<octave>(\d)</octave>", note).group(1)
        accidental = re.search(r"<accidental>([\w-]+)</accidental>", note)
        name = step + ("#" if alter and alter.group(1) == "1" else "") + octave
        marks.append((name, accidental.group(1) if accidental else None))
    return marks


def test_the_musicxml_names_the_accidentals_a_reader_needs(tmp_path):
    xml = to_musicxml(_score())
    assert _note_marks(xml) == [
        ("F#4", "sharp"),
        ("D#5", "sharp"),  # the grace note
        ("F#4", None),
        ("F4", "natural"),
        ("F#4", "sharp"),  # ties into the next measure
        ("G#2", "sharp"),  # the other staff: its own lines
        ("F#4", None),  # measure 2: the tied continuation
        ("F#4", "sharp"),  # stated again after the bar line
    ]
    path = tmp_path / "accidentals.musicxml"
    path.write_text(xml)
    assert validate_musicxml(str(path))


def test_the_engraved_page_draws_them():
    svg = engrave(to_musicxml(_score()))[0]
    drawn = [g for g in re.findall(r'class="accid[^"]*"[^>]*>(.*?)</g>', svg, re.S) if "use" in g]
    assert len(drawn) == 6  # the sharps and the natural named above
