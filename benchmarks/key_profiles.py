"""Key signature right per piece: key-finding profiles compared on the prepared data.

For the first performance of each piece of a split, the Krumhansl–Schmuckler key finder
(``perf2score.score.spelling.estimate_key``) runs over the performed pitches weighted by
their played seconds, once per profile pair (Kostka–Payne, the shipped one; Krumhansl–
Kessler, the one before); a piece counts as right when the estimated signature (fifths)
equals the score's at its first note (a relative major/minor mix-up has the same
signature and counts as right).

    python benchmarks/key_profiles.py --data .cache/prepared --splits train validation
"""

from __future__ import annotations

import argparse

from perf2score.data.cache import load_index, load_prepared
from perf2score.score.spelling import KK_MAJOR, KK_MINOR, KP_MAJOR, KP_MINOR, estimate_key

PROFILES = {"kostka-payne": (KP_MAJOR, KP_MINOR), "krumhansl-kessler": (KK_MAJOR, KK_MINOR)}


def first_performances(data: str, split: str) -> list[str]:
    """The first performance id of each piece of ``split``, in the index's order."""
    seen: dict[str, str] = {}
    for row in load_index(data, split, required=True):
        seen.setdefault(row["piece"], row["perf_id"])
    return list(seen.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the prepared cache")
    parser.add_argument("--splits", nargs="+", default=["train", "validation"])
    args = parser.parse_args()
    for split in args.splits:
        right = {name: 0 for name in PROFILES}
        pieces = first_performances(args.data, split)
        for perf_id in pieces:
            prepared = load_prepared(args.data, perf_id)
            truth = int(prepared.score["key_fifths"][0])
            notes = prepared.notes
            played = notes["offset_sec"] - notes["onset_sec"]
            for name, profiles in PROFILES.items():
                right[name] += estimate_key(notes["pitch"], played, profiles)[0] == truth
        print(
            f"{split}: {len(pieces)} pieces, signature right: "
            + ", ".join(
                f"{name} {count} ({100 * count / max(len(pieces), 1):.1f} %)"
                for name, count in right.items()
            )
        )


if __name__ == "__main__":
    main()
