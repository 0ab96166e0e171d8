"""Where the decoded value scale and time signature go wrong (issue 12), window by window.

    .venv/bin/python benchmarks/decoded_scale.py --data .cache/prepared --split validation \
        --cache ../runs/decoded/validation [--out scale.json]

Reads the cached decodings that ``benchmarks/voice_pass.py`` writes (``CACHE/<perf_id>.npz``:
every performed note's decoded onset, before voices and values are settled) and the ground
truth of the prepared split, and prints:

- per performance: the decoded value scale against the score (2^ median log2 of decoded /
  notated intervals between consecutive matched onsets; "right" within a factor √2, the
  evaluator's ``scale_ok``) and whether the decoded main time signature is the score's, with
  the most common (score, decoded) time-signature pairs;
- per decoding window (the shipped decoding's windows, each note counted in the window that
  keeps it, as the stitching does): the same scale, binned (``BIN_NAMES``), the share of
  windows whose rounded scale is not their performance's most common one, and the share of
  consecutive windows whose scales differ by more than a factor √2.

A window at another scale than its neighbours writes the same music with every value halved
or doubled; the piece-level bar lines (``perf2score.score.barring``) cannot mend that.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from perf2score.data.cache import load_index, load_prepared
from perf2score.neural.decode import kept_from, windows
from perf2score.neural.meter import main_signature
from perf2score.neural.settings import DecodeConfig

MIN_INTERVALS = 8  # intervals a window needs for its scale to count
# decoded / notated values, log2
BINS = (-np.inf, -1.25, -0.75, -0.25, 0.25, 0.75, 1.25, np.inf)
BIN_NAMES = (
    "below x1/2",
    "about x1/2",
    "x1/2 to x1",
    "about x1",
    "x1 to x2",
    "about x2",
    "above x2",
)


def log_scale(decoded: np.ndarray, notated: np.ndarray) -> float | None:
    """Median log2 of decoded / notated intervals between consecutive onsets (notes sorted
    by notated onset; quarters (K,) each); None with fewer than ``MIN_INTERVALS``."""
    order = np.argsort(notated, kind="stable")
    d, n = np.diff(decoded[order]), np.diff(notated[order])
    ok = (d > 0) & (n > 0)
    if ok.sum() < MIN_INTERVALS:
        return None
    return float(np.median(np.log2(d[ok] / n[ok])))


def performance_report(data: str, perf_id: str, stored: Path, config: DecodeConfig) -> dict:
    """Scale and time signature of one cached decoding against its score."""
    prepared = load_prepared(data, perf_id)
    truth = prepared.targets()
    cached = np.load(stored)
    attributes, drop = cached["attributes"], cached["drop"]
    decoded = cached["onsets"] / int(cached["tpq"])
    notated = truth["onset_ticks"] / prepared.ticks_per_quarter
    both = ~drop & ~prepared.drop & ~truth["is_grace"] & ~attributes["is_grace"]
    window_scales = []
    for start, end in windows(len(drop), config.window, config.overlap):
        rows = np.arange(kept_from(start, config.overlap), end)
        rows = rows[both[rows]]
        value = log_scale(decoded[rows], notated[rows])
        if value is not None:
            window_scales.append(value)
    return {
        "perf_id": perf_id,
        "scale": log_scale(decoded[both], notated[both]),
        "score_ts": main_signature(truth, prepared.drop | truth["is_grace"]),
        "decoded_ts": main_signature(attributes, drop | attributes["is_grace"]),
        "windows": window_scales,
    }


def summary(reports: list[dict]) -> dict:
    """Shares over performances and windows (see the module docstring)."""
    scales = [r["scale"] for r in reports if r["scale"] is not None]
    pairs = Counter(
        f"{r['score_ts'][0]}/{r['score_ts'][1]} -> {r['decoded_ts'][0]}/{r['decoded_ts'][1]}"
        for r in reports
        if r["score_ts"] and r["decoded_ts"]
    )
    window_values = np.array([w for r in reports for w in r["windows"]])
    off, jumps, steps = 0, 0, 0
    for r in reports:
        rounded = np.rint(r["windows"])
        if len(rounded):
            values, counts = np.unique(rounded, return_counts=True)
            off += int((rounded != values[np.argmax(counts)]).sum())
        jump = np.abs(np.diff(r["windows"]))
        jumps += int((jump > 0.5).sum())
        steps += len(jump)
    histogram = np.histogram(window_values, bins=BINS)[0]
    return {
        "performances": len(reports),
        "scale_right": float(np.mean(np.abs(scales) < 0.5)) if scales else None,
        "scale_halved": float(np.mean(np.array(scales) < -0.5)) if scales else None,
        "scale_doubled": float(np.mean(np.array(scales) > 0.5)) if scales else None,
        "time_signature_right": float(np.mean([r["score_ts"] == r["decoded_ts"] for r in reports])),
        "time_signature_pairs": dict(pairs.most_common(8)),
        "windows": len(window_values),
        "window_scale_bins": dict(zip(BIN_NAMES, [int(x) for x in histogram], strict=True)),
        "windows_off_their_performance": off / max(len(window_values), 1),
        "window_jumps_over_sqrt2": jumps / max(steps, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="prepared cache")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--cache", required=True, help="cached decodings (voice_pass.py)")
    parser.add_argument("--decoding", help="DecodeConfig JSON the cache was decoded with")
    parser.add_argument("--out", help="write the summary and per-performance rows here")
    args = parser.parse_args()
    config = DecodeConfig.read(args.decoding) if args.decoding else DecodeConfig()
    reports = []
    for row in load_index(args.data, args.split, required=True):
        stored = Path(args.cache) / f"{row['perf_id']}.npz"
        if not stored.is_file():
            raise SystemExit(f"{stored}: not decoded yet (run benchmarks/voice_pass.py first)")
        reports.append(performance_report(args.data, row["perf_id"], stored, config))
    result = summary(reports)
    print(json.dumps(result, indent=1, ensure_ascii=False))
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": result, "performances": reports}))


if __name__ == "__main__":
    main()
