"""How well the key finder and speller write the notes of the notated scores themselves.

    .venv/bin/python benchmarks/spelling.py --data .cache/prepared [--splits train validation]
        [--rounds 0 10] [--no-frame] [--sections [--key-changes]]

For every piece of a split (its prepared score table, tied continuations left out), the
notes are spelled as the converters spell decoded notes (``key_and_spelling`` on onsets and
values at ``GRID_PER_QUARTER`` ticks a quarter; the enharmonic key chosen by
``enharmonic_choice``, the score's own median key signature standing in for the decoder's
vote) and compared with the score's spelling. Prints, per split and setting, the notes
spelled wrong (pooled, and the mean over pieces), the notes written under the score's key
signature (exactly, pooled), the pieces whose opening signature is the score's, and the
pieces worst spelled. ``--sections``: the spelling pulled toward each section's key
(``key_and_spelling_by_section`` over the score's own measures; the score's median
signature of each found signature's notes stands in for the vote), the home key's
signature written; with ``--key-changes`` each section's signature written.
Tune here on the training split; no test piece is read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from perf2score.constants import GRID_PER_QUARTER
from perf2score.data.cache import load_index, score_path
from perf2score.score.spelling import (
    key_and_spelling,
    key_and_spelling_by_section,
    line_of_fifths,
)


def written_wrong(
    table: np.ndarray,
    ticks: int,
    rounds: int,
    frame: bool,
    sections: bool = False,
    changes: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """((N,) True where a note of the score ``table`` (``ticks`` a quarter) is spelled
    otherwise than the score spells it, (N,) True where its key signature is the
    score's). ``sections``: ``key_and_spelling_by_section`` over the score's measures,
    each section's signature written with ``changes``."""
    onsets = table["onset_ticks"] * GRID_PER_QUARTER // ticks
    values = np.maximum(table["duration_ticks"] * GRID_PER_QUARTER // ticks, 1)
    if sections:
        fifths, _, spelling = key_and_spelling_by_section(
            table["pitch"],
            onsets,
            values,
            table["measure"],
            rounds,
            table["key_fifths"].astype(float),
            changes,
        )
    else:
        voted = float(np.median(table["key_fifths"]))
        found, _, spelling = key_and_spelling(table["pitch"], onsets, values, rounds, frame, voted)
        fifths = np.full(len(table), found)
    return line_of_fifths(spelling) != line_of_fifths(table), fifths == table["key_fifths"]


def _keys(sections: bool, changes: bool) -> str:
    if not sections:
        return "one key a piece"
    return "a signature a section" if changes else "spelled by section, one signature"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=".cache/prepared")
    parser.add_argument("--splits", nargs="+", default=["train", "validation"])
    parser.add_argument("--rounds", type=int, nargs="+", default=[0, 10])
    parser.add_argument("--no-frame", action="store_true", help="ps13's frame, as before")
    parser.add_argument("--sections", action="store_true", help="spell by section")
    parser.add_argument(
        "--key-changes", action="store_true", help="with --sections: a signature per section"
    )
    parser.add_argument("--worst", type=int, default=5)
    args = parser.parse_args()
    if args.key_changes and not args.sections:
        parser.error("--key-changes goes with --sections")
    if "test" in args.splits:
        parser.error("no test piece is read here")
    for split in args.splits:
        pieces = sorted({row["piece"] for row in load_index(args.data, split, required=True)})
        tables = []
        for piece in pieces:
            with np.load(score_path(Path(args.data), piece)) as stored:
                table = stored["table"]
                kept = table[~table["tie_stop"]]
                tables.append(
                    (
                        kept[np.argsort(kept["onset_ticks"], kind="stable")],
                        int(stored["ticks_per_quarter"]),
                    )
                )
        for rounds in args.rounds:
            found = [
                written_wrong(t, ticks, rounds, not args.no_frame, args.sections, args.key_changes)
                for t, ticks in tables
            ]
            wrong = [w for w, _ in found]
            pooled = 100 * sum(w.sum() for w in wrong) / sum(len(w) for w in wrong)
            per_piece = [100 * w.mean() for w in wrong]
            keyed = 100 * sum(k.sum() for _, k in found) / sum(len(k) for _, k in found)
            opening = sum(bool(k[0]) for _, k in found if len(k))
            print(
                f"{split} ({len(pieces)} pieces), frame {'off' if args.no_frame else 'on'},"
                f" {_keys(args.sections, args.key_changes)}, rounds {rounds}:"
                f" {pooled:.2f} % of notes spelled wrong, {np.mean(per_piece):.2f} % a piece;"
                f" {keyed:.1f} % of notes under the score's signature; opening signature"
                f" right for {opening} pieces"
            )
            worst = sorted(zip(per_piece, pieces, strict=True), reverse=True)[: args.worst]
            for share, piece in worst:
                print(f"    {share:5.1f} %  {piece}")


if __name__ == "__main__":
    main()
