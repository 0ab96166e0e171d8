"""A gallery for judging the staves by eye: per validation performance, the top of the first
page of the ground truth, of the neural conversion with the decoder's own staves and with the
staves from the hand head (the shipped setting), side by side (verovio, the package's own
engraving; see benchmarks/meter_gallery.py).

    .venv/bin/python benchmarks/staff_gallery.py --data .cache/prepared --out docs/gallery \\
        Bach/Fugue/bwv_889/LiuY01M Schubert/Impromptu_op.90_D.899/3/Hou06M
"""

from __future__ import annotations

import argparse
import io
from dataclasses import replace
from pathlib import Path

from meter_gallery import WIDTH, first_page
from PIL import Image

from perf2score.conversion import convert
from perf2score.data.cache import load_prepared, load_sources
from perf2score.files import atomic_write
from perf2score.midi import Performance
from perf2score.neural.converter import load_neural_model
from perf2score.score.musicxml import to_musicxml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("perf_ids", nargs="+")
    parser.add_argument("--data", default=".cache/prepared")
    parser.add_argument("--out", default="docs/gallery")
    args = parser.parse_args()
    hands = load_neural_model()
    decoder = replace(hands, decoding=replace(hands.decoding, staff="decoder"))
    asap = Path(load_sources(args.data)["asap"])
    for perf_id in args.perf_ids:
        prepared = load_prepared(args.data, perf_id)
        performance = Performance(prepared.notes, prepared.pedal, source=perf_id)
        piece = "/".join(perf_id.split("/")[:-1])
        panels = [
            first_page((asap / piece / "xml_score.musicxml").read_text(), f"ground truth: {piece}")
        ]
        for label, model in (("decoder's staves (before)", decoder), ("hand head (now)", hands)):
            score = convert(performance, backend="neural", model=model).assembled
            panels.append(first_page(to_musicxml(score), f"{label}: {perf_id.split('/')[-1]}"))
        sheet = Image.new("RGB", (WIDTH * 3 + 20, max(p.height for p in panels)), "white")
        for k, panel in enumerate(panels):
            sheet.paste(panel, (k * (WIDTH + 10), 0))
        buffer = io.BytesIO()
        sheet.save(buffer, format="PNG", optimize=True)
        name = "staves_" + perf_id.replace("/", "_").replace(".", "") + ".png"
        atomic_write(Path(args.out) / name, buffer.getvalue())
        print(Path(args.out) / name)


if __name__ == "__main__":
    main()
