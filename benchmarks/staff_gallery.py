"""A gallery for judging the staves by eye: per validation performance, the top of the first
page of the ground truth, of the neural conversion with the decoder's own staves and with the
staves from the hand head (the shipped setting), side by side (verovio, the package's own
engraving; see benchmarks/meter_gallery.py).

    .venv/bin/python benchmarks/staff_gallery.py --data .cache/prepared --out docs/gallery \\
        Bach/Fugue/bwv_889/LiuY01M Schubert/Impromptu_op.90_D.899/3/Hou06M
"""

from __future__ import annotations

from dataclasses import replace

from meter_gallery import gallery_arguments, write_gallery

from perf2score.neural.converter import load_neural_model


def main() -> None:
    args = gallery_arguments(__doc__.splitlines()[0])
    hands = load_neural_model()
    decoder = replace(hands, decoding=replace(hands.decoding, staff="decoder"))
    write_gallery(
        args, [("decoder's staves (before)", decoder), ("hand head (now)", hands)], "staves_"
    )


if __name__ == "__main__":
    main()
