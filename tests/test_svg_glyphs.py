"""Metronome marks in PNG pages: the music-font note drawn as an outline, not a missing glyph."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from perf2score.score.export import engrave, png_pages
from perf2score.score.svg_glyphs import outline_text_glyphs

PRIVATE_USE = re.compile(r"[\ue000-\uf8ff]")


def _one_bar(metronome: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1"><part-list><score-part id="P1"><part-name>P</part-name>
</score-part></part-list><part id="P1"><measure number="1"><attributes>
<divisions>2</divisions><time><beats>6</beats><beat-type>8</beat-type></time>
<clef><sign>G</sign><line>2</line></clef></attributes>
<direction placement="above"><direction-type><metronome>{metronome}</metronome>
</direction-type></direction><note><pitch><step>C</step><octave>5</octave></pitch>
<duration>6</duration><type>half</type><dot/></note></measure></part></score-partwise>"""


def _without_tempo(svg: str) -> str:
    start = svg.index('class="tempo"')
    return svg[:start] + svg[svg.index("</g>", start) :]


def _text_origin(svg: str) -> float:
    tempo = svg[svg.index('class="tempo"') :]
    return float(re.search(r'<text x="(-?[\d.]+)"', tempo).group(1))


@pytest.mark.parametrize(
    ("metronome", "glyphs"),
    [
        ("<beat-unit>quarter</beat-unit><per-minute>108</per-minute>", 1),
        ("<beat-unit>quarter</beat-unit><beat-unit-dot/><per-minute>60</per-minute>", 2),
    ],
)
def test_a_metronome_note_becomes_an_outline_before_its_text(metronome: str, glyphs: int):
    svg = engrave(_one_bar(metronome))[0]
    tempo = svg[svg.index('class="tempo"') : svg.index("</g>", svg.index('class="tempo"'))]
    assert PRIVATE_USE.search(tempo), "verovio no longer writes the note as font text"
    outlined = outline_text_glyphs(svg)
    tempo = outlined[outlined.index('class="tempo"') :]
    tempo = tempo[: tempo.index("</g>")]
    assert not PRIVATE_USE.search(tempo)
    assert len(re.findall(r"<path transform=\"translate", tempo)) == glyphs
    assert re.search(r">[^<]*=[^<]*<", tempo)  # the rest of the mark is still text
    # the text moved right by the glyphs' advance: a quarter note is 302 font units at 0.72
    assert _text_origin(outlined) - _text_origin(svg) >= 302 * 0.72 - 0.1
    # nothing outside the mark changed
    assert _without_tempo(outlined) == _without_tempo(svg)


def test_the_png_draws_the_note():
    svg = outline_text_glyphs(
        engrave(_one_bar("<beat-unit>quarter</beat-unit><per-minute>108</per-minute>"))[0]
    )
    without = re.sub(r'<path transform="translate\([^"]*\) scale\(0[^"]*" d="[^"]*" />', "", svg)
    assert without != svg
    page, bare = (
        np.asarray(Image.open(io.BytesIO(png)).convert("L")) < 128
        for png in png_pages([svg, without])
    )
    ink = page & ~bare  # what the outline adds: the note
    assert 40 < ink.sum() < 2000
    rows, cols = np.nonzero(ink)
    assert rows.max() - rows.min() > 2 * (cols.max() - cols.min())  # a stem: taller than wide
    assert ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].mean() > 0.15


def test_a_metronome_note_after_words_becomes_a_unicode_note():
    words = "<direction-type><words>Allegro</words></direction-type><direction-type>"
    music = _one_bar("<beat-unit>quarter</beat-unit><per-minute>160</per-minute>")
    svg = engrave(music.replace("<direction-type>", words, 1))[0]
    tempo = svg[svg.index('class="tempo"') : svg.index("</g>", svg.index('class="tempo"'))]
    assert tempo.index("Allegro") < tempo.index("\ueca5")  # the note comes after the words
    outlined = outline_text_glyphs(svg)
    tempo = outlined[outlined.index('class="tempo"') :]
    tempo = tempo[: tempo.index("</g>")]
    assert not PRIVATE_USE.search(tempo)
    assert '<tspan font-family="serif" font-size="504px">\u2669</tspan>' in tempo
    assert "<path" not in tempo  # no outline where the words' width is unknown
    assert _without_tempo(outlined) == _without_tempo(svg)


def test_glyphs_without_outline_or_symbol_are_left_as_they_were():
    # a glyph of an unknown font opening the text: its metronome note becomes the symbol
    svg = (
        '<svg><g class="tempo"><text x="10" y="20" font-size="0px">'
        '<tspan font-family="NoSuchFont" font-size="720px">\ueca5</tspan> = 60</text></g></svg>'
    )
    assert outline_text_glyphs(svg) == svg.replace(
        '"NoSuchFont" font-size="720px">\ueca5', '"serif" font-size="504px">\u2669'
    )
    # a glyph with neither (a G clef in a text): unchanged
    clef = svg.replace("\ueca5", "\ue050")
    assert outline_text_glyphs(clef) == clef
