"""A gallery for judging meter, bar lines and values by eye: per validation performance, the
top of the first page of the ground truth beside the shipped neural model's conversion
(``shipped_<performance>.png``), or, with ``--window-bars``, beside the conversion with each
window's own bar lines and the one with bar lines placed per piece (``<performance>.png``;
the fifth session's comparison), side by side (verovio, the package's own engraving).

    .venv/bin/python benchmarks/meter_gallery.py --data .cache/prepared --out docs/gallery \
        Chopin/Etudes_op_10/12/Gintov02 Schubert/Impromptu_op.90_D.899/3/Hou06M ...
"""

from __future__ import annotations

import argparse
import io
from dataclasses import replace
from pathlib import Path

from PIL import Image, ImageDraw

from perf2score.conversion import convert
from perf2score.data.cache import load_prepared, load_sources
from perf2score.files import atomic_write
from perf2score.midi import Performance
from perf2score.neural.converter import load_neural_model
from perf2score.score.export import engrave, png_pages
from perf2score.score.musicxml import to_musicxml

WIDTH = 760  # pixels per panel
TOP = 0.42  # share of the first page shown (its first systems)


def first_page(musicxml: str, label: str) -> Image.Image:
    """The top of the first engraved page of ``musicxml``, ``WIDTH`` wide, labelled."""
    page = Image.open(io.BytesIO(png_pages(engrave(musicxml)[:1])[0])).convert("RGB")
    page = page.crop((0, 0, page.width, int(page.height * TOP)))
    page = page.resize((WIDTH, round(page.height * WIDTH / page.width)), Image.LANCZOS)
    framed = Image.new("RGB", (WIDTH, page.height + 28), "white")
    framed.paste(page, (0, 28))
    ImageDraw.Draw(framed).text((8, 6), label, fill="black")
    return framed


def gallery_arguments(description: str, window_bars: bool = False) -> argparse.Namespace:
    """The galleries' command line: performance ids, ``--data``, ``--out`` (and, when
    ``window_bars``, the flag ``--window-bars``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("perf_ids", nargs="+")
    parser.add_argument("--data", default=".cache/prepared")
    parser.add_argument("--out", default="docs/gallery")
    if window_bars:
        parser.add_argument(
            "--window-bars",
            action="store_true",
            help="also the conversion with each window's own bar lines (three panels)",
        )
    return parser.parse_args()


def write_gallery(
    args: argparse.Namespace, conversions: list[tuple[str, object]], prefix: str = ""
) -> None:
    """Per performance of ``args.perf_ids``: the ground truth's first page beside the
    conversions by each (label, ``NeuralModel``) of ``conversions``, one PNG in ``args.out``
    named ``prefix`` + the performance id."""
    asap = Path(load_sources(args.data)["asap"])
    for perf_id in args.perf_ids:
        prepared = load_prepared(args.data, perf_id)
        performance = Performance(prepared.notes, prepared.pedal, source=perf_id)
        piece = "/".join(perf_id.split("/")[:-1])
        truth = (asap / piece / "xml_score.musicxml").read_text()
        panels = [first_page(truth, f"ground truth: {piece}")]
        for label, model in conversions:
            score = convert(performance, backend="neural", model=model).assembled
            panels.append(first_page(to_musicxml(score), f"{label}: {perf_id.split('/')[-1]}"))
        sheet = Image.new(
            "RGB", ((WIDTH + 10) * len(panels) - 10, max(p.height for p in panels)), "white"
        )
        for k, panel in enumerate(panels):
            sheet.paste(panel, (k * (WIDTH + 10), 0))
        buffer = io.BytesIO()
        sheet.save(buffer, format="PNG", optimize=True)
        name = prefix + perf_id.replace("/", "_").replace(".", "") + ".png"
        atomic_write(Path(args.out) / name, buffer.getvalue())
        print(Path(args.out) / name)


def main() -> None:
    args = gallery_arguments(__doc__.splitlines()[0], window_bars=True)
    piece_model = load_neural_model()
    if not args.window_bars:
        write_gallery(args, [("perf2score (shipped model)", piece_model)], prefix="shipped_")
        return
    window_model = replace(piece_model, decoding=replace(piece_model.decoding, meter="window"))
    write_gallery(
        args,
        [("window bar lines (before)", window_model), ("piece barring (now)", piece_model)],
    )


if __name__ == "__main__":
    main()
