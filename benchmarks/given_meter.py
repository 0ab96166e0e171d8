"""Validation conversions with each performance's ground-truth meter given (an oracle).

For every performance of a prepared split, the neural backend converts it with the
ground-truth main time signature (the one whose measures span the most ticks) given as if
the user had typed it (``DecodeConfig.with_meter``), optionally forced on the decoder too
(``force_given_meter``) and with the ground-truth notated tempo (score quarters per
minute over the performance's span); the MusicXML goes to OUT/<perf_id>.musicxml for
``perf2score evaluate``. It tells how much of the downbeat error a right meter and value
scale would remove.

    .venv/bin/python benchmarks/given_meter.py --data .cache/prepared --out DIR [--force] [--tempo]
    .venv/bin/perf2score evaluate --data .cache/prepared --split validation \
        --predictions DIR --no-mv2h
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from perf2score.data.cache import load_index, load_prepared
from perf2score.midi import Performance
from perf2score.score.assembly import average_tempo

MODEL = None


def main_signature(score: np.ndarray) -> tuple[int, int]:
    """The time signature whose measures span the most ticks (a measure's first note's)."""
    spans: dict[tuple[int, int], int] = {}
    _, first = np.unique(score["measure"], return_index=True)
    for i in first:
        key = (int(score["ts_num"][i]), int(score["ts_den"][i]))
        spans[key] = spans.get(key, 0) + int(score["measure_length_ticks"][i])
    return max(spans, key=lambda k: spans[k])


def convert_one(job: tuple) -> str:
    """Convert one performance with its ground-truth meter given; returns its id."""
    from perf2score import convert, load_neural_model
    from perf2score.parallel import one_math_thread
    from perf2score.score.export import save

    data, perf_id, out, force, with_tempo = job
    global MODEL
    if MODEL is None:
        one_math_thread()
        MODEL = load_neural_model()
    prepared = load_prepared(data, perf_id)
    num, den = main_signature(prepared.score)
    tempo = None
    if with_tempo:
        matched = prepared.score_index >= 0
        ticks = prepared.score["onset_ticks"][prepared.score_index[matched]]
        tempo = average_tempo(
            ticks / prepared.ticks_per_quarter, prepared.notes["onset_sec"][matched]
        )
    decoding = replace(MODEL.decoding.with_meter(f"{num}/{den}", tempo), force_given_meter=force)
    performance = Performance(prepared.notes, prepared.pedal, source=perf_id)
    score = convert(performance, backend="neural", model=replace(MODEL, decoding=decoding))
    save(score.assembled, Path(out) / f"{perf_id}.musicxml")
    return perf_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="prepared cache (perf2score data prepare)")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--out", required=True)
    parser.add_argument("--force", action="store_true", help="force the meter on the decoder")
    parser.add_argument("--tempo", action="store_true", help="give the notated tempo too")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows = load_index(args.data, args.split, required=True)
    jobs = [(args.data, r["perf_id"], args.out, args.force, args.tempo) for r in rows]
    with Pool(args.workers) as pool:
        done = pool.map(convert_one, jobs, chunksize=1)
    print(f"{len(done)} performances converted into {args.out}")


if __name__ == "__main__":
    main()
