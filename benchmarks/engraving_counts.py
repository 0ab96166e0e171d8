"""What a page of our MusicXML asks of a reader: clef changes and ledger lines.

    .venv/bin/python benchmarks/engraving_counts.py FOLDER [FOLDER ...]
    .venv/bin/python benchmarks/engraving_counts.py --scores validation --data .cache/prepared

For every ``*.musicxml`` under each folder (an ``evaluation`` subfolder skipped), or for the
notated scores of a split's pieces (``--scores``), prints the clef elements per 100
measures (the opening clefs included), those that stand within a measure (after one of its
notes), and the share of notes that need at least 3 and at least 5 ledger lines under the
clef in force (clef changes read in document order, which is time order for the first
voice of a staff). A score's notes count once however many performances it has.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from perf2score.data.cache import load_index, load_sources
from perf2score.score.musicxml import STAFF_LINES, ledger_lines


def counts(path: Path) -> tuple[int, int, int, list[int]]:
    """(measures, clef elements, clef elements within a measure, ledger lines per note)."""
    measures = clefs = within = 0
    ledger: list[int] = []
    for part in ET.parse(path).getroot().iter("part"):
        clef = {1: "G", 2: "F"}
        for measure in part.iter("measure"):
            measures += 1
            struck = False
            for element in measure:
                if element.tag == "attributes":
                    for change in element.iter("clef"):
                        clef[int(change.get("number", "1"))] = change.findtext("sign") or "G"
                        clefs += 1
                        within += struck
                elif element.tag == "note" and element.find("pitch") is not None:
                    struck = True
                    pitch = element.find("pitch")
                    sign = clef.get(int(element.findtext("staff") or 1), "G")
                    step, octave = pitch.findtext("step"), int(pitch.findtext("octave"))
                    ledger.append(ledger_lines(step, octave, sign if sign in STAFF_LINES else "G"))
    return measures, clefs, within, ledger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--scores", help="the notated scores of this split's pieces")
    parser.add_argument("--data", default=".cache/prepared")
    args = parser.parse_args()
    sets = {folder: sorted(Path(folder).rglob("*.musicxml")) for folder in args.folders}
    if args.scores:
        asap = Path(load_sources(args.data)["asap"])
        pieces = sorted({row["piece"] for row in load_index(args.data, args.scores, required=True)})
        sets[f"{args.scores} scores"] = [asap / piece / "xml_score.musicxml" for piece in pieces]
    for name, files in sets.items():
        files = [f for f in files if "evaluation" not in f.parts]
        totals = [counts(f) for f in files]
        measures = sum(t[0] for t in totals)
        ledger = np.concatenate([np.asarray(t[3]) for t in totals])
        print(
            f"{name}: {len(files)} files, {measures} measures, {len(ledger)} notes;"
            f" clefs per 100 measures {100 * sum(t[1] for t in totals) / measures:.1f}"
            f" ({100 * sum(t[2] for t in totals) / measures:.1f} within a measure);"
            f" notes with 3+ ledger lines {100 * np.mean(ledger >= 3):.2f} %,"
            f" 5+ {100 * np.mean(ledger >= 5):.2f} %"
        )


if __name__ == "__main__":
    main()
