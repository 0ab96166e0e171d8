"""Paired comparison of two evaluation runs of the same split (``perf2score compare``).

Two runs (``perf2score evaluate --data ... --predictions DIR`` each, which writes
``DIR/evaluation/per_performance.csv``) are paired by performance. For every metric both
runs scored, the comparison gives both means over the paired performances, the mean
difference (second run minus first), a 95 % interval of that difference from a bootstrap
over *pieces* (performances of one piece are not independent: a piece with 12 performances
would otherwise count as 12 pieces of evidence), and how many performances and pieces got
better or worse. "Better" follows the metric's direction: error rates and irregular
measures are better lower, F-measures, accuracies, MV2H and the right-or-wrong shares
better higher. Descriptions of the ground truth (``pickup_gt``, ``irregular_measures_gt``)
and the value-scale ratio, which has no direction, are not compared.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from perf2score.errors import Perf2ScoreError
from perf2score.evaluate.batch import TABLE_KEYS

# metrics that are better when higher; every other compared metric is better lower
HIGHER_IS_BETTER = frozenset(
    {
        "mv2h", "mv2h_multi_pitch", "mv2h_voice", "mv2h_meter", "mv2h_value", "mv2h_harmony",
        "beat_f", "downbeat_f", "ts_note_acc", "ts_main_ok", "scale_ok", "pickup_ok", "key_ok",
        "key_note_acc",
    }
)  # fmt: skip
NOT_COMPARED = frozenset({"value_scale", "pickup_gt", "irregular_measures_gt"})
COMPARED = [k for k in TABLE_KEYS if k not in NOT_COMPARED]


@dataclass(frozen=True)
class MetricComparison:
    """One metric of two runs over their paired performances (rates in %, as evaluated).

    ``difference`` is the second run's mean minus the first's; ``low``/``high`` bound its
    95 % piece-bootstrap interval; ``better``/``worse`` count performances (and
    ``pieces_better``/``pieces_worse`` pieces, by their mean difference) on which the second
    run is better or worse in the metric's direction."""

    metric: str
    higher_is_better: bool
    n: int
    first: float
    second: float
    difference: float
    low: float
    high: float
    better: int
    worse: int
    pieces_better: int
    pieces_worse: int


def evaluation_csv(run: str | os.PathLike) -> Path:
    """The ``per_performance.csv`` of ``run``: that file itself, an evaluation folder, or a
    predictions folder holding ``evaluation/``."""
    path = Path(run)
    for candidate in (
        path,
        path / "per_performance.csv",
        path / "evaluation" / "per_performance.csv",
    ):
        if candidate.is_file():
            return candidate
    raise Perf2ScoreError(
        f"{run}: no per_performance.csv (give a file, an evaluation folder, or a predictions "
        "folder evaluated with `perf2score evaluate --data ... --predictions`)"
    )


def read_rows(run: str | os.PathLike) -> dict[str, dict]:
    """The scored performances of one run: perf_id -> {"piece": str, metric: float}
    (metrics left empty in the file, such as MV2H after ``--no-mv2h``, are absent)."""
    path = evaluation_csv(run)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            records = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise Perf2ScoreError(f"{path}: cannot read ({exc})") from None
    if records and not {"perf_id", "piece", "status"} <= set(records[0]):
        raise Perf2ScoreError(f"{path}: not a per_performance.csv of `perf2score evaluate`")
    rows = {}
    for record in records:
        if record["status"] != "ok":
            continue
        row: dict = {"piece": record["piece"]}
        for key in COMPARED:
            try:
                value = float(record.get(key) or "nan")
            except ValueError:
                raise Perf2ScoreError(
                    f"{path}: {key} of {record['perf_id']} is not a number"
                ) from None
            if math.isfinite(value):
                row[key] = value
        rows[record["perf_id"]] = row
    return rows


def _piece_bootstrap(
    differences: np.ndarray, pieces: np.ndarray, resamples: int, rng: np.random.Generator
) -> tuple[float, float]:
    """95 % interval of the mean over performances of ``differences`` (N,), resampling the
    pieces (N,) (piece index per performance) with replacement."""
    count = int(pieces.max()) + 1
    sums = np.bincount(pieces, weights=differences, minlength=count)
    sizes = np.bincount(pieces, minlength=count).astype(float)
    if count < 2:
        mean = float(differences.mean())
        return mean, mean
    drawn = rng.integers(0, count, size=(resamples, count))
    means = sums[drawn].sum(axis=1) / sizes[drawn].sum(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(low), float(high)


def compare_runs(
    first: dict[str, dict],
    second: dict[str, dict],
    metrics: list[str] | None = None,
    resamples: int = 10_000,
    seed: int = 0,
) -> list[MetricComparison]:
    """Compare two runs' rows (``read_rows``) metric by metric over the performances both
    scored; ``metrics`` (default: every compared metric both runs have) in that order."""
    if resamples < 1:
        raise Perf2ScoreError("resamples must be at least 1")
    unknown = sorted(set(metrics or []) - set(COMPARED))
    if unknown:
        raise Perf2ScoreError(f"unknown metric {', '.join(unknown)} (known: {', '.join(COMPARED)})")
    common = sorted(set(first) & set(second))
    if not common:
        raise Perf2ScoreError("the two runs share no scored performance")
    results = []
    for key in metrics or COMPARED:
        paired = [p for p in common if key in first[p] and key in second[p]]
        if not paired:
            if metrics:
                raise Perf2ScoreError(f"{key}: not scored in both runs")
            continue
        a = np.array([first[p][key] for p in paired])
        b = np.array([second[p][key] for p in paired])
        names = [first[p]["piece"] for p in paired]
        index = {name: i for i, name in enumerate(dict.fromkeys(names))}
        pieces = np.array([index[n] for n in names])
        difference = b - a
        sign = 1.0 if key in HIGHER_IS_BETTER else -1.0
        gain = sign * difference  # > 0: the second run is better
        piece_gain = np.bincount(pieces, weights=gain) / np.bincount(pieces)  # mean per piece
        # each metric its own stream: its interval does not depend on the others asked
        rng = np.random.default_rng([seed, COMPARED.index(key)])
        low, high = _piece_bootstrap(difference, pieces, resamples, rng)
        results.append(
            MetricComparison(
                metric=key,
                higher_is_better=key in HIGHER_IS_BETTER,
                n=len(paired),
                first=float(a.mean()),
                second=float(b.mean()),
                difference=float(difference.mean()),
                low=low,
                high=high,
                better=int((gain > 0).sum()),
                worse=int((gain < 0).sum()),
                pieces_better=int((piece_gain > 0).sum()),
                pieces_worse=int((piece_gain < 0).sum()),
            )
        )
    return results


def comparison_summary(
    first: dict[str, dict], second: dict[str, dict], results: list[MetricComparison]
) -> dict:
    """JSON-ready: the pairing's counts and one entry per metric."""
    common = set(first) & set(second)
    return {
        "paired_performances": len(common),
        "paired_pieces": len({first[p]["piece"] for p in common}),
        "only_first": sorted(set(first) - common),
        "only_second": sorted(set(second) - common),
        "metrics": [asdict(r) for r in results],
    }


def markdown_comparison(results: list[MetricComparison], labels: tuple[str, str]) -> str:
    """The comparison as a Markdown table (differences are second minus first)."""
    first, second = labels
    lines = [
        f"| metric | {first} | {second} | difference | 95 % interval (pieces resampled) "
        "| performances better / worse | pieces better / worse |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        arrow = "↑" if r.higher_is_better else "↓"
        places = 4 if r.higher_is_better else 3  # shares and F-measures in 0-1; rates in %
        lines.append(
            f"| {r.metric} {arrow} | {r.first:.{places}f} | {r.second:.{places}f} "
            f"| {r.difference:+.{places}f} | [{r.low:+.{places}f}, {r.high:+.{places}f}] "
            f"| {r.better} / {r.worse} | {r.pieces_better} / {r.pieces_worse} |"
        )
    return "\n".join(lines)
