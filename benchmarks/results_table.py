"""Print the README's results tables from `perf2score evaluate --out` folders.

    python benchmarks/results_table.py "classical=.cache/results/classical-eval" \\
        "mix=.cache/results/mix-eval" ...

Each folder holds summary.json (means over performances are used); a `predict.json` in the
matching predictions folder (the eval folder's name without `-eval`) gives notes/s.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from perf2score.evaluate.batch import TABLE_KEYS

MUSTER, MV2H = TABLE_KEYS[:8], TABLE_KEYS[8:]  # error rates; MV2H and beat F-measures


def _row(label: str, folder: Path) -> tuple[str, str]:
    summary = json.loads((folder / "summary.json").read_text())
    means = summary["mean_over_performances"]
    predicted = folder.with_name(folder.name.removesuffix("-eval")) / "predict.json"
    speed = ""
    if predicted.is_file():
        speed = f"{json.loads(predicted.read_text())['notes_per_second']:,.0f}"
    n = f"{summary['n_scored']}/{summary['n_performances']}"
    muster = " | ".join(f"{means[k]:.2f}" for k in MUSTER)
    mv2h = " | ".join(f"{means[k]:.3f}" for k in MV2H)
    return f"| {label} | {muster} | {n} | {speed} |", f"| {label} | {mv2h} |"


def main(argv: list[str]) -> int:
    if not argv or any("=" not in a for a in argv):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    rows = []
    for arg in argv:
        label, folder = arg.split("=", 1)
        rows.append(_row(label, Path(folder)))
    header = "E_avg | pitch | missing | extra | onset | offset | voice | hand | scored | notes/s"
    print(f"| row | {header} |")
    print("|---|" + "---|" * 10)
    print("\n".join(r[0] for r in rows))
    print()
    print("| row | MV2H | multi-pitch | voice | meter | value | harmony | beat F | downbeat F |")
    print("|---|" + "---|" * 8)
    print("\n".join(r[1] for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
