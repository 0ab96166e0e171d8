"""Batch conversion on a Ray cluster (the optional ``ray`` extra): actors that keep the model
loaded, a results manifest, re-runs that skip finished files, failures that are reported.

``run_on_ray(jobs, ...)`` converts the jobs of ``batch_convert.plan`` with one actor per
worker, each holding the neural model and converting with one math thread; the outcomes are
the plain batch's (``batch_convert.run_job`` does the work in both), so a folder converted on
Ray gives the same files as ``perf2score convert --workers N``. Inputs and outputs are paths:
on a cluster of several machines they must lie on a file system that every node sees.

The manifest (JSON Lines, one record per finished file: input, its size and modification
time, outputs, status, error, seconds) is appended as files finish. A re-run with the same
manifest skips every file recorded as converted whose input is unchanged and whose outputs
all exist; failed files are tried again.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from perf2score.batch_convert import Job, Outcome, hold_model, run_job
from perf2score.errors import Perf2ScoreError
from perf2score.parallel import one_math_thread

if TYPE_CHECKING:
    from perf2score.neural.settings import DecodeConfig

RAY_HINT = "Ray batches need the optional extra: pip install 'perf2score[ray]'"


def _fingerprint(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def finished(manifest: Path) -> dict[str, dict]:
    """The manifest's last record per input (an absent or empty manifest: none); a line that
    is not JSON (a run killed mid-write) is ignored."""
    records: dict[str, dict] = {}
    if not manifest.is_file():
        return records
    for line in manifest.read_text().splitlines():
        try:
            record = json.loads(line)
            records[record["input"]] = record
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    return records


def still_to_do(jobs: list[Job], manifest: Path) -> tuple[list[Job], list[Job]]:
    """(jobs to run, jobs skipped): a job is skipped when the manifest records it converted,
    its input is unchanged and every output it wrote exists."""
    done = finished(manifest)
    todo, skipped = [], []
    for job in jobs:
        record = done.get(str(job.source.resolve()))
        if (
            record
            and record.get("status") == "ok"
            and record.get("fingerprint") == _fingerprint(job.source)
            and record.get("outputs")
            and all(Path(p).is_file() for p in record["outputs"])
        ):
            skipped.append(job)
        else:
            todo.append(job)
    return todo, skipped


class _Converter:
    """One Ray actor: the model held once, files converted one at a time."""

    def __init__(self, backend: str, model: str | None, decoding: DecodeConfig | None = None):
        one_math_thread()
        hold_model(backend, model, decoding)

    def convert(self, job: Job) -> tuple[Outcome, float]:
        start = time.perf_counter()
        outcome = run_job(job)
        return outcome, time.perf_counter() - start


def run_on_ray(
    jobs: list[Job],
    manifest: str | os.PathLike,
    actors: int = 2,
    address: str | None = None,
    on_skipped: Callable[[list[Job]], None] | None = None,
) -> Iterator[Outcome]:
    """Convert ``jobs`` on Ray; yield each ``Outcome`` as it finishes (skipped ones not).

    Args:
        jobs: from ``batch_convert.plan`` (one backend and model for all).
        manifest: the JSON Lines results file (appended; read first to skip finished files).
        actors: how many converters (each one CPU, one process, one model).
        address: a running cluster (``"auto"``, ``"ray://host:10001"``, ...); None starts a
            local Ray instance for this batch (and stops it afterwards).
        on_skipped: called once with the jobs the manifest shows finished (when any).
    """
    try:
        import ray
    except ImportError:
        raise Perf2ScoreError(RAY_HINT) from None
    manifest = Path(manifest)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    todo, skipped = still_to_do(jobs, manifest)
    if skipped and on_skipped is not None:
        on_skipped(skipped)
    if not todo:
        return
    started_here = not ray.is_initialized()
    if started_here:
        options = {"address": address} if address else {"num_cpus": actors}
        ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False, **options)
    try:
        converter = ray.remote(num_cpus=1, max_restarts=1, max_task_retries=0)(_Converter)
        pool = [converter.remote(*todo[0].held) for _ in range(min(actors, len(todo)))]
        pending: dict = {}
        queue = list(reversed(todo))

        def submit(actor) -> None:
            job = queue.pop()
            pending[actor.convert.remote(job)] = (actor, job)

        for actor in pool:
            if queue:
                submit(actor)
        with open(manifest, "a") as log:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                actor, job = pending.pop(ready[0])
                try:
                    outcome, seconds = ray.get(ready[0])
                except ray.exceptions.RayError as exc:  # the actor died (killed, out of memory)
                    error = f"the converter process died ({type(exc).__name__})"
                    outcome, seconds = Outcome(str(job.source), [], error, job.backend, True), 0.0
                record = {
                    "input": str(job.source.resolve()),
                    "fingerprint": _fingerprint(job.source),
                    "outputs": [str(Path(p).resolve()) for p in outcome.written],
                    "status": "failed" if outcome.error else "ok",
                    "error": outcome.error,
                    "backend": outcome.backend,
                    "seconds": round(seconds, 3),
                }
                log.write(json.dumps(record) + "\n")
                log.flush()
                if queue:
                    submit(actor)
                yield outcome
    finally:
        if started_here:
            ray.shutdown()
