"""Scores for every performance of a prepared split, from a chosen attribute source.

``oracle``: the ground-truth attributes (the round trip that measures assembly's floor);
``classical``: the classical converter; ``neural``: an aligned model (``--model``, default
the shipped one). The files are named like the performances
(``OUT/<perf_id>.musicxml``), ready for ``perf2score evaluate --data ... --predictions OUT``;
``OUT/predict.json`` records the source, the model and its decoding settings, failures and
the speed (notes per second of conversion time, per worker; each worker loads the model
once, outside that time).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from perf2score.batch_convert import held_model, hold_model
from perf2score.data.cache import load_index, load_prepared
from perf2score.errors import Perf2ScoreError
from perf2score.files import atomic_write
from perf2score.midi import Performance
from perf2score.parallel import parallel_map

SOURCES = ("oracle", "classical", "neural")


def _predict_one(job: tuple) -> tuple[str, str | None, float, int]:
    cache, perf_id, out, source, model, repeats = job
    start = time.perf_counter()
    try:
        prepared = load_prepared(cache, perf_id)
        if source == "oracle":
            from perf2score.data.oracle import oracle_score

            assembled = oracle_score(prepared)
        else:
            from perf2score.conversion import convert

            performance = Performance(prepared.notes, prepared.pedal, source=perf_id)
            held = held_model(source, model)
            assembled = convert(performance, backend=source, model=held, repeats=repeats).assembled
        from perf2score.score.export import save

        save(assembled, Path(out) / f"{perf_id}.musicxml")
    except Perf2ScoreError as exc:
        return perf_id, str(exc), 0.0, 0
    return perf_id, None, time.perf_counter() - start, len(prepared.notes)


def check_heads(heads: dict[str, str]) -> None:
    """Each head folder of ``heads`` holds a trained head that answers its kind's questions
    ("meter": downbeat and beat; "hands": staff); ``Perf2ScoreError`` otherwise, before any
    worker starts."""
    from perf2score.models.config import read_meter_json

    asks = {"meter": "downbeat", "hands": "staff"}
    for kind, folder in heads.items():
        if kind not in asks:
            raise Perf2ScoreError(f"unknown head {kind!r} (use {', '.join(asks)})")
        questions = read_meter_json(folder)[1].questions
        if asks[kind] not in questions:
            raise Perf2ScoreError(f"{folder}: not a {kind} head (it answers {list(questions)})")


def predict_split(
    cache: str | os.PathLike,
    split: str,
    out: str | os.PathLike,
    source: str = "classical",
    workers: int = 2,
    progress: bool = True,
    model: str | os.PathLike | None = None,
    decoding: str | os.PathLike | None = None,
    repeats: bool = True,
    heads: dict[str, str] | None = None,
) -> dict:
    """Write one MusicXML per performance; return failures and the conversion speed.

    ``model``: an aligned-model folder (neural; default: the shipped one); ``decoding``: a
    JSON file of ``DecodeConfig`` settings to decode with instead of the model's own;
    ``repeats``: sections played twice in a row written once (False: every note played);
    ``heads``: trained head folders to use instead of the shipped ones, by kind ("meter",
    "hands"; neural)."""
    if source not in SOURCES:
        raise Perf2ScoreError(f"unknown source '{source}' (use {', '.join(SOURCES)})")
    settings = None
    if source == "neural":
        from perf2score.neural.converter import model_folder
        from perf2score.neural.settings import DecodeConfig

        folder = model_folder(model)  # fails here, before any worker starts
        settings = DecodeConfig.read(decoding or folder)
        check_heads(heads or {})
    elif decoding or heads:
        raise Perf2ScoreError("decoding settings and heads apply to the neural source only")
    rows = load_index(cache, split, required=True)
    jobs = [(str(cache), r["perf_id"], str(out), source, model, repeats) for r in rows]
    failures: dict[str, str] = {}
    seconds, notes = 0.0, 0
    held = (source, str(model) if model else None, settings, 1, heads)
    results = parallel_map(_predict_one, jobs, workers, source, progress, hold_model, held)
    for perf_id, error, spent, count in results:
        if error:
            failures[perf_id] = error
        seconds += spent
        notes += count
    result = {
        "source": source,
        "model": str(model) if model else None,
        "decoding": settings.to_dict() if settings else None,
        "heads": heads or None,
        "split": split,
        "repeats": repeats,
        "workers": workers,
        "failures": failures,
        "notes": notes,
        "seconds": seconds,
        "notes_per_second": notes / seconds if seconds else 0.0,
    }
    Path(out).mkdir(parents=True, exist_ok=True)
    atomic_write(Path(out) / "predict.json", json.dumps(result, indent=2))
    return result
