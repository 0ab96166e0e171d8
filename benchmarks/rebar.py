"""Bar lines of one decoding, re-placed with several settings (issue 12).

Decodes every performance of a split once with the shipped model (the notes before the
piece barring, and the meter head's per-note log-odds; cached as ``CACHE/<perf_id>.npz``),
then re-bars each with the piece barring (``perf2score.neural.meter.piece_barring``) under
each given decoding-settings file and prints, against the prepared ground truth:

- ``downbeat F``: F-measure over the matched notes of "this note is on a downbeat" (a note
  of a pickup measure is not); a note-level stand-in for the evaluator's downbeat F, which
  places bar lines in performance time (``perf2score evaluate`` gives that one);
- ``pickup right``: the share of performances whose first measure is a pickup exactly when
  the ground truth's is (the evaluator's ``pickup_ok``, here on the decoded notes);
- ``irregular``: measures per performance, the first and the last excepted, whose length
  is not their time signature's.

Re-barring the 86 validation performances takes 17 s (whole process, one setting) where
decoding and evaluating them takes about 5 minutes, so bar-line settings compare on one
decoding. Its pickup and irregular-measure figures equal the evaluator's ``pickup_ok`` and
``irregular_measures`` on the same settings.

    python benchmarks/rebar.py --data .cache/prepared --split validation \
        --cache ../runs/decoded-bars/validation SHIPPED D1.json D2.json

``SHIPPED`` (the word) stands for the shipped ``decoding.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from perf2score.data.cache import atomic_save_npz, load_index, load_prepared
from perf2score.midi import Performance
from perf2score.neural.converter import load_neural_model, unbarred_attributes
from perf2score.neural.meter import piece_barring
from perf2score.neural.settings import DecodeConfig


def cached_decoding(model, cache: Path, perf_id: str, performance: Performance) -> dict:
    """The decoded notes before barring (``neural.converter.unbarred_attributes``):
    attributes, drop, onsets (N,) and the meter head's log-odds (N, 2), from ``cache`` or
    decoded now (and cached)."""
    path = cache / f"{perf_id.replace('/', '__')}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return {name: stored[name] for name in stored.files}
    attributes, drop, onsets, odds = unbarred_attributes(performance, model)
    found = {"attributes": attributes, "drop": drop, "onsets": onsets}
    if odds is not None:  # else piece_barring reads the head itself
        found["odds"] = odds
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save_npz(path, **found)
    return found


def truth_downbeats(prepared) -> tuple[np.ndarray, np.ndarray]:
    """(N,) notes with a timed score partner, (N,) those on a downbeat (pickup excluded)."""
    targets = prepared.targets()
    timed = ~prepared.drop & ~targets["is_grace"]
    first = targets["measure"] == (targets["measure"][timed].min() if timed.any() else 0)
    pickup = first & (prepared.anacrusis_ticks > 0)
    return timed, (targets["position_ticks"] == 0) & ~pickup


def bar_figures(attributes: np.ndarray, drop: np.ndarray, tpq: int) -> tuple[np.ndarray, bool, int]:
    """(N,) notes on a downbeat, whether the piece opens with a pickup, irregular measures."""
    kept = ~drop
    nominal = attributes["ts_num"] * 4 * tpq // np.maximum(attributes["ts_den"], 1)
    first = attributes["measure"] == (attributes["measure"][kept].min() if kept.any() else 0)
    short = first & kept & (attributes["measure_length_ticks"] < nominal)
    on_downbeat = (attributes["position_ticks"] == 0) & ~short
    measures = np.unique(attributes[["measure", "measure_length_ticks", "ts_num", "ts_den"]][kept])
    sizes = measures["ts_num"] * 4 * tpq // np.maximum(measures["ts_den"], 1)
    irregular = int((measures["measure_length_ticks"][1:-1] != sizes[1:-1]).sum())
    return on_downbeat, bool(short.any()), irregular


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=".cache/prepared")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--cache", required=True, help="folder of the cached decodings")
    parser.add_argument("settings", nargs="+", help="decoding.json files (SHIPPED: the shipped)")
    args = parser.parse_args()
    model = load_neural_model()
    rows = load_index(args.data, args.split, required=True)
    pieces = []
    for row in rows:
        prepared = load_prepared(args.data, row["perf_id"])
        performance = Performance(prepared.notes, prepared.pedal, source=row["perf_id"])
        found = cached_decoding(model, Path(args.cache), row["perf_id"], performance)
        pieces.append((prepared, performance, found))
    for setting in args.settings:
        config = model.decoding if setting == "SHIPPED" else DecodeConfig.read(setting)
        scores, pickups, irregulars = [], [], []
        for prepared, performance, found in pieces:
            attributes, _, tpq, _ = piece_barring(
                found["attributes"],
                found["drop"],
                found["onsets"],
                performance,
                model.meter,
                config,
                found.get("odds"),
            )
            timed, truth = truth_downbeats(prepared)
            ours, pickup, irregular = bar_figures(attributes, found["drop"], tpq)
            counted = timed & ~found["drop"] & ~attributes["is_grace"]
            hits = int((truth & ours & counted).sum())
            misses = int((truth ^ ours)[counted].sum())
            scores.append(2 * hits / max(2 * hits + misses, 1))
            pickups.append(pickup == (prepared.anacrusis_ticks > 0))
            irregulars.append(irregular)
        print(
            json.dumps(
                {
                    "settings": setting,
                    "performances": len(scores),
                    "downbeat_f": round(float(np.mean(scores)), 4),
                    "pickup_right": round(float(np.mean(pickups)), 4),
                    "irregular_per_performance": round(float(np.mean(irregulars)), 2),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
