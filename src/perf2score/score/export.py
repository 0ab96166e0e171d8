"""Save an ``AssembledScore`` as MusicXML, score MIDI, MEI, SVG, PNG or PDF (atomically).

MusicXML comes from our writer; MEI and SVG from verovio (engraving the MusicXML); PNG
from cairosvg; PDF from the PNG pages (raster, 150 dpi: cairosvg writes one page per PDF).
Several pages of SVG/PNG are written as ``name.svg``, ``name-2.svg``, ...; score MIDI
plays the score at the performance's tempo, one track per staff.
"""

from __future__ import annotations

import bisect
import io
import os
import tempfile
from pathlib import Path

from perf2score.errors import Perf2ScoreError
from perf2score.files import atomic_write
from perf2score.midi.symusic_import import symusic
from perf2score.score.assembly import AssembledScore
from perf2score.score.musicxml import to_musicxml
from perf2score.score.svg_glyphs import outline_text_glyphs, verovio_data

EXTENSIONS = {  # every output format and the suffix its files get
    "musicxml": ".musicxml",
    "mid": ".mid",
    "mei": ".mei",
    "svg": ".svg",
    "png": ".png",
    "pdf": ".pdf",
}
FORMATS = tuple(EXTENSIONS)
SUFFIXES = {suffix: fmt for fmt, suffix in EXTENSIONS.items()} | {
    ".xml": "musicxml",
    ".midi": "mid",
}
PAGE_OPTIONS = {
    "pageWidth": 2100,
    "pageHeight": 2970,
    "scale": 45,
    "footer": "none",
    "header": "auto",
}
PNG_WIDTH = 1240  # pixels: A4 at 150 dpi


def format_of(path: str | os.PathLike) -> str:
    """The export format implied by a file name's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise Perf2ScoreError(
            f"{path}: unknown output format '{suffix}' (use {', '.join(FORMATS)})"
        )
    return SUFFIXES[suffix]


def playing_order(score: AssembledScore) -> list[int]:
    """The measures in the order they are played: each backward repeat taken once, back to
    the last forward repeat (or the beginning), a first ending skipped the second time."""
    order: list[int] = []
    k, back_to, taken, second_pass_until = 0, 0, set(), -1
    while k < len(score.measures):
        measure = score.measures[k]
        if measure.repeat_start and k > second_pass_until:
            back_to = k
        if k <= second_pass_until and measure.ending == 1:
            k += 1  # the first ending, on the way back through
            continue
        order.append(k)
        if measure.repeat_end and k not in taken:
            taken.add(k)
            second_pass_until = k
            k = back_to
            continue
        k += 1
    return order


def score_midi(score: AssembledScore) -> bytes:
    """The score as a MIDI file (bytes): one track per staff, at the score's tempo, its
    repeats played (``playing_order``)."""
    midi = symusic.Score(score.ticks_per_quarter)
    midi.tempos.append(symusic.Tempo(0, score.tempo_qpm))
    chords = sorted(score.chords, key=lambda c: c.onset)
    onsets = [c.onset for c in chords]
    tracks = {staff: symusic.Track(name=f"staff {staff}", program=0) for staff in (1, 2)}
    cursor = 0
    for k in playing_order(score):
        measure = score.measures[k]
        for chord in chords[bisect.bisect_left(onsets, measure.start) :]:
            if chord.onset >= measure.start + measure.length:
                break
            if chord.staff in tracks:
                for pitch in chord.pitches:
                    onset = cursor + chord.onset - measure.start
                    tracks[chord.staff].notes.append(
                        symusic.Note(onset, chord.duration, pitch[0], chord.velocity)
                    )
        cursor += measure.length
    midi.tracks.extend(tracks.values())
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "score.mid"
        midi.dump_midi(str(target))
        return target.read_bytes()


def _toolkit(musicxml: str):
    import verovio

    # The resource folder is named explicitly: verovio's default is found only in the main
    # thread (in another one it points at its build folder and no font loads).
    toolkit = verovio.toolkit(False)
    toolkit.setResourcePath(str(verovio_data()))
    toolkit.setOptions(PAGE_OPTIONS)
    if not toolkit.loadData(musicxml):
        raise Perf2ScoreError("verovio could not read the generated MusicXML")
    return toolkit


def _page_paths(path: Path, pages: int) -> list[Path]:
    return [
        path if k == 1 else path.with_name(f"{path.stem}-{k}{path.suffix}")
        for k in range(1, pages + 1)
    ]


def png_pages(svgs: list[str]) -> list[bytes]:
    """PNG images (``PNG_WIDTH`` pixels wide, white background) of SVG pages; music-font
    glyphs in text (a metronome mark's note) are drawn as outlines, since cairosvg does not
    read the SVG's embedded font (``score.svg_glyphs``)."""
    import cairosvg

    return [
        cairosvg.svg2png(
            bytestring=outline_text_glyphs(svg).encode(),
            output_width=PNG_WIDTH,
            background_color="white",
        )
        for svg in svgs
    ]


def engrave(musicxml: str) -> list[str]:
    """Any MusicXML text engraved by verovio, one SVG document per page (A4)."""
    toolkit = _toolkit(musicxml)
    return [toolkit.renderToSVG(k) for k in range(1, toolkit.getPageCount() + 1)]


def svg_pages(score: AssembledScore) -> list[str]:
    """The engraved score, one SVG document per page (verovio, A4)."""
    return engrave(to_musicxml(score))


def pdf_document(svgs: list[str]) -> bytes:
    """A PDF of the engraved pages (each page rasterised at 150 dpi)."""
    from PIL import Image

    images = [Image.open(io.BytesIO(png)).convert("RGB") for png in png_pages(svgs)]
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:], resolution=150.0)
    return buffer.getvalue()


def save(score: AssembledScore, path: str | os.PathLike, fmt: str | None = None) -> list[Path]:
    """Write ``score`` to ``path`` in ``fmt`` (default: from the suffix); return the files."""
    path = Path(path)
    fmt = fmt or format_of(path)
    if fmt not in FORMATS:
        raise Perf2ScoreError(f"unknown output format '{fmt}'")
    if fmt == "musicxml":
        atomic_write(path, to_musicxml(score).encode())
        return [path]
    if fmt == "mid":
        atomic_write(path, score_midi(score))
        return [path]
    if fmt == "mei":
        atomic_write(path, _toolkit(to_musicxml(score)).getMEI().encode())
        return [path]
    svgs = svg_pages(score)
    if fmt == "pdf":
        atomic_write(path, pdf_document(svgs))
        return [path]
    pages = [svg.encode() for svg in svgs] if fmt == "svg" else png_pages(svgs)
    paths = _page_paths(path, len(pages))
    for target, page in zip(paths, pages, strict=True):
        atomic_write(target, page)
    return paths
