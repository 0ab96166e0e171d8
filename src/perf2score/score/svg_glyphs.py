"""Music-font glyphs in verovio's SVG text drawn as outlines, for rasterisers without the font.

Verovio writes the note of a metronome mark (♩ = 108) as text in its music font (Leipzig, a
SMuFL font: private-use code points such as U+ECA5 ``metNoteQuarterUp``), declared in the SVG
by ``@font-face``. A browser reads that; cairosvg (our PNG and PDF) does not, and draws an
empty box. ``outline_text_glyphs`` replaces such glyphs, where they open a ``<text>`` element,
by the glyph outlines verovio ships (``data/<font>/<code>.xml``, font units of 1/1000 em)
placed at the text's origin, and moves the text after them by their advance widths
(``data/<font>.xml``). A glyph further inside a text ("Allegro (♩ = 160)"), whose place
depends on the widths of the words before it, becomes its Unicode musical symbol in the
surrounding serif font instead (``UNICODE``). Anything else in the SVG is left as it is.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

UNITS_PER_EM = 1000.0
SPACE_ADVANCE = 120.0  # font units: the space verovio puts between a metronome note and its dot

# SMuFL metronome glyphs -> Unicode musical symbols (found in DejaVu and FreeSerif)
UNICODE = {
    "\ueca2": "\U0001d15d",  # metNoteWhole
    "\ueca3": "\U0001d15e",  # metNoteHalfUp
    "\ueca5": "\u2669",  # metNoteQuarterUp
    "\ueca7": "\u266a",  # metNote8thUp
    "\ueca9": "\U0001d161",  # metNote16thUp
    "\uecb7": ".",  # metAugmentationDot
    " ": " ",
}
UNICODE_SIZE = 0.7  # of the music font's size: the symbols fill more of their em

# a music-font tspan: its glyphs are private-use code points (and spaces)
_GLYPH_TSPAN = (
    r'<tspan font-family="(?P<font>[A-Za-z]+)" font-size="(?P<size>[\d.]+)px">'
    r"(?P<glyphs>[\ue000-\uf8ff ]+)</tspan>"
)
_INNER_GLYPHS = re.compile(_GLYPH_TSPAN)
# a <text> whose first characters are such a tspan (only opening tags and white space before)
_OPENING_GLYPHS = re.compile(
    r'<text x="(?P<x>-?[\d.]+)" y="(?P<y>-?[\d.]+)"(?P<attrs>[^>]*)>'
    r"(?P<before>(?:\s*<tspan[^>]*>)*\s*)" + _GLYPH_TSPAN
)
_GLYPH_PATH = re.compile(r'<path transform="scale\(1,-1\)" d="(?P<d>[^"]+)"')
_ADVANCE = re.compile(r'<g c="(?P<code>[0-9A-F]{4})"[^>]*?h-a-x="(?P<advance>-?[\d.]+)"')


def verovio_data() -> Path:
    """verovio's resource folder (fonts, glyph outlines), named explicitly: verovio's own
    default is found only in the main thread."""
    import verovio

    return Path(verovio.__file__).parent / "data"


@lru_cache(maxsize=8)
def _advances(font: str) -> dict[str, float]:
    """Advance widths (font units) of ``font``'s glyphs by code (``"ECA5"``)."""
    table = verovio_data() / f"{font}.xml"
    if not table.is_file():
        return {}
    return {m["code"]: float(m["advance"]) for m in _ADVANCE.finditer(table.read_text())}


@lru_cache(maxsize=256)
def _outline(font: str, code: str) -> str | None:
    """The path data of one glyph (font units, y up), or None when verovio lacks it."""
    source = verovio_data() / font / f"{code}.xml"
    if not source.is_file():
        return None
    found = _GLYPH_PATH.search(source.read_text())
    return found["d"] if found else None


def _replace(match: re.Match) -> str:
    font, size = match["font"], float(match["size"])
    x, y = float(match["x"]), float(match["y"])
    scale = size / UNITS_PER_EM
    advances = _advances(font)
    paths, cursor = [], 0.0
    for char in match["glyphs"]:
        if char == " ":
            cursor += SPACE_ADVANCE
            continue
        code = f"{ord(char):04X}"
        outline = _outline(font, code)
        if outline is None or code not in advances:
            return match.group(0)  # a glyph we cannot draw: leave the text as verovio wrote it
        paths.append(
            f'<path transform="translate({x + cursor * scale:.1f},{y:.1f}) '
            f'scale({scale:.4f},{-scale:.4f})" d="{outline}" />'
        )
        cursor += advances[code]
    shifted = x + cursor * scale
    return (
        "".join(paths)
        + f'<text x="{shifted:.1f}" y="{match["y"]}"{match["attrs"]}>{match["before"]}'
        + f'<tspan font-family="{font}" font-size="{match["size"]}px"></tspan>'
    )


def _as_unicode(match: re.Match) -> str:
    glyphs = match["glyphs"]
    if not all(char in UNICODE for char in glyphs):
        return match.group(0)
    size = float(match["size"]) * UNICODE_SIZE
    text = "".join(UNICODE[char] for char in glyphs)
    return f'<tspan font-family="serif" font-size="{size:.0f}px">{text}</tspan>'


def outline_text_glyphs(svg: str) -> str:
    """``svg`` with the music-font glyphs that open a text element drawn as outlines, and
    the metronome glyphs inside a text as Unicode musical symbols."""
    return _INNER_GLYPHS.sub(_as_unicode, _OPENING_GLYPHS.sub(_replace, svg))
