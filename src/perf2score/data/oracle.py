"""The oracle: a prepared performance's ground-truth attributes as assembly input.

Feeding these through ``perf2score.score.assembly`` and the MusicXML writer and scoring the
result against the ground-truth score measures what assembly and writing lose: the floor
under every model's error.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from perf2score.data.cache import PreparedPerformance, load_index, load_prepared
from perf2score.errors import Perf2ScoreError
from perf2score.score.assembly import AssembledScore, assemble
from perf2score.score.export import save


def oracle_attributes(prepared: PreparedPerformance) -> tuple[np.ndarray, np.ndarray]:
    """(attributes, drop) per performed note, straight from the alignment targets."""
    return prepared.targets(), prepared.drop.copy()


def performance_tempo(prepared: PreparedPerformance) -> float:
    """Average tempo (quarters per minute) of the performance over its aligned notes."""
    targets = prepared.targets()
    keep = ~prepared.drop & ~targets["is_grace"]
    if keep.sum() < 2:
        return 100.0
    onsets_q = targets["onset_ticks"][keep] / prepared.ticks_per_quarter
    onsets_s = prepared.notes["onset_sec"][keep]
    span_q = float(onsets_q.max() - onsets_q.min())
    span_s = float(onsets_s.max() - onsets_s.min())
    if span_q <= 0 or span_s <= 0:
        return 100.0
    return float(np.clip(60.0 * span_q / span_s, 20.0, 300.0))


def oracle_score(prepared: PreparedPerformance) -> AssembledScore:
    """The ground-truth attributes of one performance, assembled into a score."""
    attributes, drop = oracle_attributes(prepared)
    return assemble(
        attributes,
        prepared.ticks_per_quarter,
        drop=drop,
        velocities=prepared.notes["velocity"],
        tempo_qpm=performance_tempo(prepared),
        title=f"{prepared.perf_id} (oracle)",
    )


def _write_one(job: tuple[str, str, str]) -> tuple[str, str | None]:
    cache, perf_id, out = job
    try:
        score = oracle_score(load_prepared(cache, perf_id))
        save(score, Path(out) / f"{perf_id}.musicxml")
    except Perf2ScoreError as exc:
        return perf_id, str(exc)
    return perf_id, None


def write_oracle_scores(
    cache: str | os.PathLike,
    split: str,
    out: str | os.PathLike,
    workers: int = 2,
    progress: bool = True,
) -> dict[str, str]:
    """Write ``OUT/<perf_id>.musicxml`` for every performance of ``split``; return failures."""
    rows = load_index(cache, split)
    if not rows:
        raise Perf2ScoreError(f"{cache}: no performances in split '{split}'")
    jobs = [(str(cache), r["perf_id"], str(out)) for r in rows]
    failures: dict[str, str] = {}
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for perf_id, error in tqdm(
            pool.map(_write_one, jobs), total=len(jobs), desc="oracle", disable=not progress
        ):
            if error:
                failures[perf_id] = error
    return failures
