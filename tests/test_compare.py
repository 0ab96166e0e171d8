"""`perf2score compare`: two evaluation runs paired by performance."""

import csv
import json

import numpy as np
import pytest

from perf2score.cli import main
from perf2score.errors import Perf2ScoreError
from perf2score.evaluate.batch import TABLE_KEYS
from perf2score.evaluate.compare import compare_runs, markdown_comparison, read_rows


def write_run(folder, rows):
    """An evaluation folder as `perf2score evaluate` writes it: rows of
    (perf_id, piece, status, {metric: value})."""
    out = folder / "evaluation"
    out.mkdir(parents=True)
    fields = ["perf_id", "piece", "status", *TABLE_KEYS, "n_gt", "n_est", "n_matched"]
    with open(out / "per_performance.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for perf_id, piece, status, values in rows:
            writer.writerow({"perf_id": perf_id, "piece": piece, "status": status, **values})
    return folder


def two_runs(tmp_path, shift=-1.0):
    """Six performances of three pieces; the second run's e_avg lower by -shift each,
    its downbeat F higher by 0.1, its MV2H left empty (as after --no-mv2h)."""
    first, second = [], []
    for i in range(6):
        piece = f"P{i // 2}"
        e = 10.0 + i
        first.append(
            (f"{piece}/perf{i}", piece, "ok", {"e_avg": e, "downbeat_f": 0.3, "mv2h": 0.6})
        )
        second.append((f"{piece}/perf{i}", piece, "ok", {"e_avg": e + shift, "downbeat_f": 0.4}))
    return write_run(tmp_path / "a", first), write_run(tmp_path / "b", second)


def test_a_uniform_gain_is_the_difference_with_an_interval_of_zero_width(tmp_path):
    a, b = two_runs(tmp_path)
    results = {r.metric: r for r in compare_runs(read_rows(a), read_rows(b))}
    e = results["e_avg"]
    assert (e.n, e.first, e.second) == (6, 12.5, 11.5)
    assert e.difference == pytest.approx(-1.0)
    assert (e.low, e.high) == pytest.approx((-1.0, -1.0))
    assert (e.better, e.worse, e.pieces_better, e.pieces_worse) == (6, 0, 3, 0)
    # higher is better for an F-measure: +0.1 counts as better
    d = results["downbeat_f"]
    assert d.higher_is_better and d.difference == pytest.approx(0.1) and d.better == 6
    # a metric scored in one run only is left out, not compared against nothing
    assert "mv2h" not in results


def test_a_worse_run_counts_as_worse(tmp_path):
    a, b = two_runs(tmp_path, shift=+0.5)
    (e,) = compare_runs(read_rows(a), read_rows(b), metrics=["e_avg"])
    assert e.difference == pytest.approx(0.5)
    assert (e.better, e.worse, e.pieces_better, e.pieces_worse) == (0, 6, 0, 3)


def test_the_interval_resamples_pieces_not_performances(tmp_path):
    # one piece of 10 performances gains 2 points each, 4 pieces of one performance gain 0:
    # resampling performances would give a narrow interval around -1.43; resampling the 5
    # pieces draws the big one k ~ Binomial(5, 1/5) times, so the interval runs from k = 3
    # (mean -60/32, the 2.5 % quantile: P(k >= 3) = 5.8 %, P(k >= 4) = 0.7 %) to k = 0 (0)
    first, second = [], []
    for i in range(10):
        first.append((f"big/p{i}", "big", "ok", {"e_avg": 10.0}))
        second.append((f"big/p{i}", "big", "ok", {"e_avg": 8.0}))
    for j in range(4):
        first.append((f"s{j}/p", f"s{j}", "ok", {"e_avg": 10.0}))
        second.append((f"s{j}/p", f"s{j}", "ok", {"e_avg": 10.0}))
    a, b = write_run(tmp_path / "a", first), write_run(tmp_path / "b", second)
    (e,) = compare_runs(read_rows(a), read_rows(b), metrics=["e_avg"], seed=1)
    assert e.difference == pytest.approx(-20 / 14)
    assert e.low == pytest.approx(-60 / 32) and e.high == pytest.approx(0.0)
    assert (e.better, e.worse, e.pieces_better, e.pieces_worse) == (10, 0, 1, 0)
    # the same seed gives the same interval
    (again,) = compare_runs(read_rows(a), read_rows(b), metrics=["e_avg"], seed=1)
    assert (again.low, again.high) == (e.low, e.high)


def test_only_performances_scored_in_both_runs_are_paired(tmp_path):
    first = [("A/1", "A", "ok", {"e_avg": 5.0}), ("A/2", "A", "ok", {"e_avg": 7.0})]
    second = [
        ("A/1", "A", "ok", {"e_avg": 4.0}),
        ("A/2", "A", "error: broken", {}),
        ("B/1", "B", "ok", {"e_avg": 1.0}),
    ]
    a, b = write_run(tmp_path / "a", first), write_run(tmp_path / "b", second)
    (e,) = compare_runs(read_rows(a), read_rows(b), metrics=["e_avg"])
    assert (e.n, e.first, e.second) == (1, 5.0, 4.0)


def test_user_errors(tmp_path):
    a, b = two_runs(tmp_path)
    with pytest.raises(Perf2ScoreError, match=r"no per_performance\.csv"):
        read_rows(tmp_path / "nowhere")
    with pytest.raises(Perf2ScoreError, match="unknown metric"):
        compare_runs(read_rows(a), read_rows(b), metrics=["e_avgg"])
    with pytest.raises(Perf2ScoreError, match="not scored in both"):
        compare_runs(read_rows(a), read_rows(b), metrics=["mv2h"])
    other = write_run(tmp_path / "c", [("Z/1", "Z", "ok", {"e_avg": 1.0})])
    with pytest.raises(Perf2ScoreError, match="share no scored performance"):
        compare_runs(read_rows(a), read_rows(other))
    bad = tmp_path / "bad.csv"
    bad.write_text("name,value\nx,1\n")
    with pytest.raises(Perf2ScoreError, match=r"not a per_performance\.csv"):
        read_rows(bad)


def test_the_command_prints_a_table_or_json_and_refuses_bad_input(tmp_path, capsys):
    a, b = two_runs(tmp_path)
    assert main(["compare", str(a), str(b / "evaluation"), "--labels", "old", "new"]) == 0
    out = capsys.readouterr().out
    assert "| metric | old | new |" in out
    assert "| e_avg ↓ | 12.500 | 11.500 | -1.000 | [-1.000, -1.000] | 6 / 0 | 3 / 0 |" in out
    assert "paired 6 performances of 3 pieces" in out
    csv_file = a / "evaluation" / "per_performance.csv"
    assert main(["compare", str(csv_file), str(b), "--json", "--metrics", "downbeat_f"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["paired_performances"] == 6
    assert [m["metric"] for m in summary["metrics"]] == ["downbeat_f"]
    assert summary["metrics"][0]["difference"] == pytest.approx(0.1)
    assert main(["compare", str(a), str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no per_performance.csv" in err


def test_the_table_has_one_row_per_metric(tmp_path):
    a, b = two_runs(tmp_path)
    results = compare_runs(read_rows(a), read_rows(b), resamples=200)
    table = markdown_comparison(results, ("a", "b")).splitlines()
    assert len(table) == 2 + len(results)
    assert np.all([row.count("|") == 8 for row in table])


def test_a_metrics_interval_does_not_depend_on_the_others_asked(tmp_path):
    # differences that vary between pieces, so that the intervals have width
    first, second = [], []
    for i in range(12):
        piece = f"P{i // 2}"
        first.append((f"{piece}/{i}", piece, "ok", {"e_avg": 10.0, "downbeat_f": 0.3}))
        second.append(
            (f"{piece}/{i}", piece, "ok", {"e_avg": 10.0 - i % 5, "downbeat_f": 0.3 + i / 100})
        )
    rows = read_rows(write_run(tmp_path / "a", first)), read_rows(write_run(tmp_path / "b", second))
    alone = compare_runs(*rows, metrics=["downbeat_f"], resamples=500, seed=3)
    together = compare_runs(*rows, metrics=["e_avg", "downbeat_f"], resamples=500, seed=3)
    assert alone[0].low < alone[0].difference < alone[0].high
    assert (alone[0].low, alone[0].high) == (together[1].low, together[1].high)
