import re

import numpy as np
from partitura.io.importmusicxml import validate_musicxml

from perf2score.score.assembly import AssembledScore, Chord, Measure
from perf2score.score.export import engrave
from perf2score.score.musicxml import CLEF_CHANGE_LINES, _clef_path, to_musicxml

TPQ = 4
NAMES = "CDEFGAB"


def _pitch(name: str, octave: int) -> tuple[int, str, int, int]:
    semitones = [0, 2, 4, 5, 7, 9, 11][NAMES.index(name)]
    return (12 * (octave + 1) + semitones, name, 0, octave)


def _run_score() -> AssembledScore:
    """4/4, two measures. The lower staff: a low C, then a run of 16ths around C6 and down
    to G2 (the clef should turn treble for the run and bass again); then a measure low."""
    bar = 4 * TPQ
    measures = [Measure(k * bar, bar, 4, 4, 0, 0) for k in range(2)]
    run = [("E", 5), ("G", 5), ("C", 6), ("E", 6), ("G", 6), ("E", 6), ("C", 6), ("G", 5)]
    run += [("E", 5), ("C", 5), ("G", 2), ("C", 3), ("E", 3), ("G", 2)]
    chords = [Chord(0, 2, 2, 1, [_pitch("C", 2)])]  # an eighth
    chords += [Chord(2 + i, 1, 2, 1, [_pitch(*n)]) for i, n in enumerate(run)]
    chords += [Chord(bar + i * TPQ, TPQ, 2, 1, [_pitch("C", 3)]) for i in range(4)]
    chords += [Chord(0, bar, 1, 1, [_pitch("C", 5)]), Chord(bar, bar, 1, 1, [_pitch("E", 5)])]
    return AssembledScore(measures, chords, TPQ)


def test_a_staff_changes_clef_within_a_measure_where_it_saves_ledger_lines(tmp_path):
    xml = to_musicxml(_run_score())
    first, second = re.findall(r"<measure .*?</measure>", xml, re.S)
    # measure 1: the lower staff opens in bass (the C2), turns treble for the run where
    # its first note begins, and bass again for the G2 at the end
    signs = re.findall(r'<clef number="2">\s*<sign>(\w)</sign>', first)
    assert signs == ["F", "G", "F"]
    lower = first[first.index("<backup>") :]  # the lower staff's notes
    treble = lower.index("<sign>G</sign>")
    assert lower.index("<octave>2</octave>") < treble < lower.index("<octave>5</octave>")
    assert '<clef number="2">' not in second  # it ends in bass: nothing to restate
    path = tmp_path / "clefs.musicxml"
    path.write_text(xml)
    assert validate_musicxml(str(path))
    assert len(re.findall(r'class="clef', engrave(xml)[0])) == 4  # two at the start, two


def test_a_change_must_save_its_ledger_lines():
    times = np.array([0, 4, 8])
    lines = {"F": np.array([0.0, 5, 0]), "G": np.array([4.0, 0, 4])}
    # one note five lines above the bass staff between two low notes: 5 < two changes
    assert _clef_path("F", times, lines, [4, 8]) == []
    lines = {"F": np.array([0.0, 2 * CLEF_CHANGE_LINES + 14, 0]), "G": np.array([9.0, 0, 9])}
    assert _clef_path("F", times, lines, [4, 8]) == [(4, "G"), (8, "F")]
    # where a change pays only once, the measure ends in the other clef
    lines = {"F": np.array([0.0, 20, 20]), "G": np.array([9.0, 0, 0])}
    assert _clef_path("F", times, lines, [4, 8]) == [(4, "G")]
