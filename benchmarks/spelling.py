"""How well the key finder and speller write the notes of the notated scores themselves.

    .venv/bin/python benchmarks/spelling.py --data .cache/prepared [--splits train validation]
        [--rounds 0 10] [--no-frame]

For every piece of a split (its prepared score table, tied continuations left out), the
notes are spelled as the converters spell decoded notes (``key_and_spelling`` on onsets and
values at ``GRID_PER_QUARTER`` ticks a quarter; the enharmonic key chosen by
``enharmonic_choice``, the score's own median key signature standing in for the decoder's
vote) and compared with the score's spelling. Prints, per split and setting, the notes
spelled wrong (pooled, and the mean over pieces) and the pieces worst spelled. Tune here on
the training split; no test piece is read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from perf2score.constants import GRID_PER_QUARTER
from perf2score.data.cache import load_index, score_path
from perf2score.score.spelling import key_and_spelling, line_of_fifths


def written_wrong(table: np.ndarray, ticks: int, rounds: int, frame: bool) -> np.ndarray:
    """(N,) True where a note of the score ``table`` (``ticks`` a quarter) is spelled
    otherwise than the score spells it."""
    onsets = table["onset_ticks"] * GRID_PER_QUARTER // ticks
    values = np.maximum(table["duration_ticks"] * GRID_PER_QUARTER // ticks, 1)
    voted = float(np.median(table["key_fifths"]))
    _, _, spelling = key_and_spelling(table["pitch"], onsets, values, rounds, frame, voted)
    return line_of_fifths(spelling) != line_of_fifths(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=".cache/prepared")
    parser.add_argument("--splits", nargs="+", default=["train", "validation"])
    parser.add_argument("--rounds", type=int, nargs="+", default=[0, 10])
    parser.add_argument("--no-frame", action="store_true", help="ps13's frame, as before")
    parser.add_argument("--worst", type=int, default=5)
    args = parser.parse_args()
    if "test" in args.splits:
        parser.error("no test piece is read here")
    for split in args.splits:
        pieces = sorted({row["piece"] for row in load_index(args.data, split, required=True)})
        tables = []
        for piece in pieces:
            with np.load(score_path(Path(args.data), piece)) as stored:
                table = stored["table"]
                tables.append((table[~table["tie_stop"]], int(stored["ticks_per_quarter"])))
        for rounds in args.rounds:
            wrong = [written_wrong(t, ticks, rounds, not args.no_frame) for t, ticks in tables]
            pooled = 100 * sum(w.sum() for w in wrong) / sum(len(w) for w in wrong)
            per_piece = [100 * w.mean() for w in wrong]
            print(
                f"{split} ({len(pieces)} pieces), frame {'off' if args.no_frame else 'on'},"
                f" rounds {rounds}: {pooled:.2f} % of notes spelled wrong,"
                f" {np.mean(per_piece):.2f} % a piece"
            )
            worst = sorted(zip(per_piece, pieces, strict=True), reverse=True)[: args.worst]
            for share, piece in worst:
                print(f"    {share:5.1f} %  {piece}")


if __name__ == "__main__":
    main()
