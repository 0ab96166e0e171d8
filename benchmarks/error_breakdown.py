"""Break a split's offset and voice errors down (``perf2score.evaluate.breakdown``).

    .venv/bin/python benchmarks/error_breakdown.py --data .cache/prepared --split validation \
        --predictions DIR [--out breakdown.json]

Counts are pooled over the performances that have a prediction (notes, not performances,
weigh equally here, unlike the mean rates of ``perf2score evaluate``); prints a markdown
table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from perf2score.errors import Perf2ScoreError
from perf2score.evaluate.batch import prediction_pairs
from perf2score.evaluate.breakdown import END_CLASSES, error_breakdown
from perf2score.parallel import parallel_map
from perf2score.score.reading import read_score


def _one(job: tuple[str, Path, Path]) -> dict:
    perf_id, prediction, gt_file = job
    try:
        return {"perf_id": perf_id, **error_breakdown(read_score(gt_file), read_score(prediction))}
    except Perf2ScoreError as exc:
        return {"perf_id": perf_id, "error": str(exc)}


def pooled(rows: list[dict]) -> dict[str, float]:
    ok = [r for r in rows if "error" not in r and r.get("matched")]
    total = {k: sum(r[k] for r in ok) for k in ok[0] if k != "perf_id"} if ok else {}
    for key in ("gt_multi_voice_share", "est_multi_voice_share"):
        total[key] = sum(r[key] for r in ok) / len(ok) if ok else 0.0
    total["performances"] = len(ok)
    return total


def table(t: dict[str, float]) -> str:
    matched = t["matched"]
    lines = [
        "| ground-truth value ends at | share of notes | too short | too long | offset error |",
        "|---|---|---|---|---|",
    ]
    for name in END_CLASSES:
        n, short, long = t[f"gt_{name}"], t[f"short_{name}"], t[f"long_{name}"]
        lines.append(
            f"| {name} | {100 * n / matched:.1f} % | {100 * short / max(n, 1):.1f} % |"
            f" {100 * long / max(n, 1):.1f} % | {100 * (short + long) / max(n, 1):.1f} % |"
        )
    short = sum(t[f"short_{n}"] for n in END_CLASSES)
    long = sum(t[f"long_{n}"] for n in END_CLASSES)
    lines.append(
        f"| all | 100 % | {100 * short / matched:.1f} % | {100 * long / matched:.1f} % |"
        f" {100 * (short + long) / matched:.1f} % |"
    )
    poly = t["polyphonic"]
    voice_errors = t["voice_polyphonic"] + t["voice_monophonic"]
    gt_multi, est_multi = t["gt_multi_voice_share"], t["est_multi_voice_share"]
    lines += [
        "",
        "| voice error | notes | voice error |",
        "|---|---|---|",
        f"| another voice of the staff sounds at the onset | {100 * poly / matched:.1f} % |"
        f" {100 * t['voice_polyphonic'] / max(poly, 1):.1f} % |",
        f"| no other voice sounds | {100 * (matched - poly) / matched:.1f} % |"
        f" {100 * t['voice_monophonic'] / max(matched - poly, 1):.1f} % |",
        f"| all | 100 % | {100 * voice_errors / matched:.1f} % |",
        "",
        f"staff-measures with more than one voice: ground truth {100 * gt_multi:.1f} %,"
        f" estimate {100 * est_multi:.1f} %"
        f" ({t['performances']} performances, {matched:,} matched notes)",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="prepared cache folder")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--predictions", required=True, help="folder of <perf_id>.musicxml")
    parser.add_argument("--out", help="write the pooled counts and per-performance rows here")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    jobs = [
        (rec["perf_id"], found, gt_file)
        for rec, found, gt_file in prediction_pairs(args.data, args.split, args.predictions)
        if found is not None
    ]
    rows = list(parallel_map(_one, jobs, args.workers, "breakdown"))
    total = pooled(rows)
    if not total.get("matched"):
        print("no prediction could be scored", file=sys.stderr)
        return 1
    if args.out:
        Path(args.out).write_text(json.dumps({"pooled": total, "rows": rows}, indent=1))
    print(table(total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
