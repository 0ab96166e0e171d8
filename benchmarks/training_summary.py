"""Condense a training run folder into a small JSON for docs/training/.

    python benchmarks/training_summary.py runs/abl-last docs/training/abl-last.json

Keeps the run's summary.json (minus per-stream teacher-forced numbers of every validation)
and the validation curve: step, loss and the decoded-validation metrics (%) when present.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def condense(run: Path) -> dict:
    summary = json.loads((run / "summary.json").read_text())
    curve = []
    for line in (run / "log.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "validation" not in row:
            continue
        validation = row["validation"]
        point = {"step": row["step"], "loss": round(validation["loss"], 4)}
        if "decoded" in validation:
            point["decoded"] = {k: round(v, 2) for k, v in validation["decoded"].items()}
        curve.append(point)
    return {"summary": summary, "validation_curve": curve}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    run, out = Path(argv[0]), Path(argv[1])
    if not (run / "summary.json").is_file():
        print(f"{run}: no summary.json (is the run finished?)", file=sys.stderr)
        return 2
    out.write_text(json.dumps(condense(run), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
