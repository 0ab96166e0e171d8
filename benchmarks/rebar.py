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
  is not their time signature's;
- ``main TS right``: the share of performances whose main time signature after the barring
  (the one most kept notes are in) is the ground truth's (most of its timed notes'), and
  ``scale right``: the share whose value scale is the ground truth's within a factor √2
  (``evaluate.meter.value_scale`` over the known note correspondence instead of a DTW
  match); ``--by-meter`` adds both per ground-truth time signature, with the most common
  wrong signature and the share of performances at ×2 and ×½.

The validation split is a poor sample of meters (59 of its 86 performances are in 4/4, none
in 6/8); the training split (797 performances, 13 time signatures) shows the pipeline's
meter decisions on the music the models were trained on (``--split train``: decoding its 797
performances takes about 25 minutes in this one process, then about 2.3 minutes a setting).

Re-barring the 86 validation performances takes 17 s (whole process, one setting) where
decoding and evaluating them takes about 5 minutes, so bar-line settings compare on one
decoding. Its pickup and irregular-measure figures equal the evaluator's ``pickup_ok`` and
``irregular_measures`` on the same settings.

    python benchmarks/rebar.py --data .cache/prepared --split validation \
        --cache ../runs/decoded-bars/validation SHIPPED D1.json D2.json
    python benchmarks/rebar.py --split train --cache ../runs/decoded-bars/train --by-meter SHIPPED
    python benchmarks/rebar.py --cache DIR --model MODEL --meter HEAD --decoding D.json SHIPPED

``--model``, ``--meter`` and ``--decoding`` decode with another aligned model, meter head and
decoding settings than the shipped ones (a cache folder holds one decoding's notes: give
each its own); ``SHIPPED`` then stands for ``--decoding``'s settings.

``SHIPPED`` (the word) stands for the shipped ``decoding.json``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from perf2score.data.cache import PreparedPerformance, atomic_save_npz, load_index, load_prepared
from perf2score.evaluate.alignment import NoteMatching
from perf2score.evaluate.meter import value_scale
from perf2score.midi import Performance
from perf2score.neural.converter import load_neural_model, unbarred_attributes
from perf2score.neural.meter import main_signature, piece_barring
from perf2score.neural.settings import DecodeConfig
from perf2score.score.attributes import SCORE_NOTE_DTYPE
from perf2score.score.reading import ScoreNotes


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


def barred_decoding(
    model, cache: Path, perf_id: str, performance: Performance
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The cached decoding (``cached_decoding``) barred per piece and spelled with
    ``model.decoding``, as a conversion has it before voices, values and staves:
    (attributes (N,), drop (N,), onsets (N,) ticks, ticks per quarter)."""
    from perf2score.neural.converter import respell

    found = cached_decoding(model, cache, perf_id, performance)
    drop = found["drop"]
    config = model.decoding
    attributes, onsets, tpq, _ = piece_barring(
        found["attributes"],
        drop,
        found["onsets"],
        performance,
        model.meter,
        config,
        found.get("odds"),
    )
    respell(attributes, drop, onsets, config.key_changes)
    return attributes, drop, onsets, tpq


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


def truth_signature(prepared: PreparedPerformance) -> tuple[int, int]:
    """The ground truth's main time signature: the one most of its timed notes are in."""
    targets = prepared.targets()
    timed = ~prepared.drop & ~targets["is_grace"]
    pairs = zip(targets["ts_num"][timed].tolist(), targets["ts_den"][timed].tolist(), strict=True)
    return Counter(pairs).most_common(1)[0][0] if timed.any() else (4, 4)


def _onsets_only(onset_ticks: np.ndarray, ticks_per_quarter: int) -> ScoreNotes:
    notes = np.zeros(len(onset_ticks), dtype=SCORE_NOTE_DTYPE)
    notes["onset_ticks"] = onset_ticks
    return ScoreNotes(notes, ticks_per_quarter)


def known_scale(
    prepared: PreparedPerformance, onsets: np.ndarray, counted: np.ndarray, tpq: int
) -> float:
    """Decoded quarters per notated quarter (``evaluate.meter.value_scale``) of the performed
    notes ``counted`` (N,), their decoded onsets ``onsets`` (N,) at ``tpq`` ticks a quarter
    paired with their ground-truth partners (the prepared alignment, no DTW)."""
    index = np.flatnonzero(counted & ~prepared.drop)
    truth = _onsets_only(prepared.targets()["onset_ticks"], prepared.ticks_per_quarter)
    empty = np.zeros(0, np.int64)
    return value_scale(truth, _onsets_only(onsets, tpq), NoteMatching(index, index, empty, empty))


def print_by_meter(rows: list[tuple[tuple[int, int], tuple[int, int], float]]) -> None:
    """Per ground-truth time signature (most performances first): performances, the share
    whose main time signature is right, the commonest wrong one, and the value scale's
    shares right / ×2 / ×½ (``rows``: truth, ours, scale)."""
    groups: dict[tuple[int, int], list] = defaultdict(list)
    for truth, ours, scale in rows:
        groups[truth].append((ours, scale))
    for truth, found in sorted(groups.items(), key=lambda item: -len(item[1])):
        wrong = Counter(ours for ours, _ in found if ours != truth).most_common(1)
        octaves = np.log2([scale for _, scale in found])
        print(
            json.dumps(
                {
                    "truth": "{}/{}".format(*truth),
                    "performances": len(found),
                    "main_ts_right": round(float(np.mean([o == truth for o, _ in found])), 3),
                    "commonest_wrong": "{}/{}".format(*wrong[0][0]) if wrong else None,
                    "scale_right": round(float(np.mean(np.abs(octaves) < 0.5)), 3),
                    "scale_x2": round(float(np.mean(octaves >= 0.5)), 3),
                    "scale_half": round(float(np.mean(octaves <= -0.5)), 3),
                }
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=".cache/prepared")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--cache", required=True, help="folder of the cached decodings")
    parser.add_argument(
        "--by-meter", action="store_true", help="main TS and scale per ground-truth signature"
    )
    parser.add_argument("--model", default=None, help="aligned-model folder (default: shipped)")
    parser.add_argument("--meter", default=None, help="meter-head folder (default: shipped)")
    parser.add_argument(
        "--decoding", default=None, help="settings to decode with (default: the model's)"
    )
    parser.add_argument("settings", nargs="+", help="decoding.json files (SHIPPED: the shipped)")
    args = parser.parse_args()
    decoding = DecodeConfig.read(args.decoding) if args.decoding else None
    model = load_neural_model(args.model, decoding=decoding, meter=args.meter)
    rows = load_index(args.data, args.split, required=True)
    pieces = []
    for row in rows:
        prepared = load_prepared(args.data, row["perf_id"])
        performance = Performance(prepared.notes, prepared.pedal, source=row["perf_id"])
        found = cached_decoding(model, Path(args.cache), row["perf_id"], performance)
        pieces.append((prepared, performance, found, truth_signature(prepared)))
    for setting in args.settings:
        config = model.decoding if setting == "SHIPPED" else DecodeConfig.read(setting)
        scores, pickups, irregulars, meters = [], [], [], []
        for prepared, performance, found, signature in pieces:
            attributes, onsets, tpq, _ = piece_barring(
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
            scale = known_scale(prepared, onsets, counted, tpq)
            meters.append((signature, main_signature(attributes, found["drop"]), scale))
        print(
            json.dumps(
                {
                    "settings": setting,
                    "performances": len(scores),
                    "downbeat_f": round(float(np.mean(scores)), 4),
                    "pickup_right": round(float(np.mean(pickups)), 4),
                    "irregular_per_performance": round(float(np.mean(irregulars)), 2),
                    "main_ts_right": round(float(np.mean([t == o for t, o, _ in meters])), 4),
                    "scale_right": round(
                        float(np.mean([abs(np.log2(s)) < 0.5 for _, _, s in meters])), 4
                    ),
                }
            ),
            flush=True,
        )
        if args.by_meter:
            print_by_meter(meters)


if __name__ == "__main__":
    main()
