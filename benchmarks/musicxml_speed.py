"""In-process time of writing MusicXML (``score.musicxml.to_musicxml``) for converted files.

    .venv/bin/python benchmarks/musicxml_speed.py FILE.mid [FILE.mid ...] [--rounds 7]

Each file is converted once with the shipped neural model; the writer then runs
``--rounds`` times on the same score and the best time is printed, so that two versions of
the writer can be compared side by side (``PYTHONPATH=other/src``).
"""

from __future__ import annotations

import argparse
import time

from perf2score.conversion import convert
from perf2score.score.musicxml import to_musicxml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    for path in args.files:
        score = convert(path, backend="neural")
        best = float("inf")
        for _ in range(args.rounds):
            start = time.perf_counter()
            text = to_musicxml(score.assembled)
            best = min(best, time.perf_counter() - start)
        size = f"{len(score.assembled.chords)} chords, {len(text)} characters"
        print(f"{path}: {best * 1e3:.1f} ms (best of {args.rounds}), {size}")


if __name__ == "__main__":
    main()
