"""Fuzz the converters with seeded MIDI mutations (the suite runs a few hundred; this, many).

    .venv/bin/python benchmarks/fuzz.py --count 10000 --backend classical
    .venv/bin/python benchmarks/fuzz.py --count 1000 --backend neural --seed 1

A case passes when it converts to a score that serialises to MusicXML or is refused with a
one-line ``Perf2ScoreError``; other exceptions, warnings and hangs (over 30 s) are findings,
kept under ``--out`` with one line each in ``findings.txt``. Exit status 1 if any.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzzing import fuzz


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="mutations to run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="classical", choices=["classical", "neural"])
    parser.add_argument("--out", default="/tmp/perf2score-fuzz", help="findings folder")
    parser.add_argument("--chunk", type=int, default=500, help="cases per progress line")
    args = parser.parse_args()

    model = None
    if args.backend == "neural":
        from perf2score.neural.converter import load_neural_model

        model = load_neural_model()
    out = Path(args.out)
    findings = []
    start = time.perf_counter()
    for first in range(0, args.count, args.chunk):
        count = min(args.chunk, args.count - first)
        findings += fuzz(out, args.seed, count, args.backend, model, start=first)
        print(
            f"{first + count:,}/{args.count:,} cases, {len(findings)} findings,"
            f" {time.perf_counter() - start:.0f} s",
            flush=True,
        )
    kinds = Counter(f.kind for f in findings)
    (out / "findings.txt").write_text("".join(f"case{f.case:06d}: {f.detail}\n" for f in findings))
    print(
        f"{args.backend}, seed {args.seed}: {args.count:,} mutations,"
        f" {kinds['exception']} unexpected exceptions, {kinds['warning']} warnings,"
        f" {kinds['hang']} hangs ({time.perf_counter() - start:.0f} s; findings in {out})"
    )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
