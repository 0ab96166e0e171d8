"""Convert many performance files: discovery, output naming, parallel work, failures.

One failing file never stops the batch: its error is collected and reported at the end.
Each worker loads the neural model once (``hold_model``) and converts all its files with it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from perf2score.errors import Perf2ScoreError
from perf2score.parallel import parallel_map
from perf2score.score.export import EXTENSIONS

if TYPE_CHECKING:
    from perf2score.neural.settings import DecodeConfig

MIDI_SUFFIXES = (".mid", ".midi")


@dataclass
class Job:
    source: Path
    outputs: list[tuple[Path, str]]  # (path, format)
    backend: str
    model: str | None = None  # aligned-model folder (neural backend), None = shipped


def discover(inputs: list[str]) -> list[tuple[Path, Path]]:
    """(file, path relative to its root) for every MIDI file named or inside a named folder."""
    found = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.suffix.lower() in MIDI_SUFFIXES and child.is_file():
                    found.append((child, child.relative_to(path)))
        elif path.exists():
            found.append((path, Path(path.name)))
        else:
            raise Perf2ScoreError(f"{path}: no such file or folder")
    if not found:
        raise Perf2ScoreError("no MIDI files found in the inputs")
    return found


def plan(
    inputs: list[str],
    output: str | None,
    out_dir: str | None,
    formats: list[str],
    backend: str,
    model: str | None = None,
) -> list[Job]:
    """The conversions to run: which file goes where, in which formats."""
    files = discover(inputs)
    if output and (len(files) > 1 or len(formats) > 1):
        raise Perf2ScoreError("-o names one output file: use --out-dir for several")
    jobs = []
    for source, relative in files:
        if output:
            outputs = [(Path(output), formats[0])]
        else:
            base = Path(out_dir) / relative if out_dir else source
            outputs = [(base.with_suffix(EXTENSIONS[f]), f) for f in formats]
        jobs.append(Job(source, outputs, backend, model))
    return jobs


_HELD: dict[str, object] = {}  # this process's loaded neural model, set by ``hold_model``


def hold_model(backend: str, folder: str | None, decoding: DecodeConfig | None = None) -> None:
    """Load the model that this process's jobs convert with (once per worker; a worker
    initializer): the neural model of ``folder`` (None: the shipped one) with ``decoding``
    (None: its own settings), nothing for the classical backend. A model that fails to load
    is left to each job to report."""
    _HELD.clear()
    if backend == "neural":
        from perf2score.neural.converter import load_neural_model

        with contextlib.suppress(Perf2ScoreError):  # each job then reports it
            _HELD["neural"] = load_neural_model(folder, decoding)


def held_model(backend: str, folder: str | None):
    """The model ``hold_model`` loaded for ``backend``, else ``folder`` (loaded per call)."""
    return _HELD.get(backend, folder)


def run_job(job: Job) -> tuple[str, list[str], str | None, str]:
    """(source, written files, error or None, backend used)."""
    from perf2score.conversion import convert

    try:
        model = held_model(job.backend, job.model)
        score = convert(job.source, backend=job.backend, model=model)
        written = []
        for path, fmt in job.outputs:
            written.extend(str(p) for p in score.save(path, fmt))
        return str(job.source), written, None, score.backend
    except Perf2ScoreError as exc:
        return str(job.source), [], str(exc), job.backend
    except Exception as exc:  # a bug must not stop the batch; it is reported per file
        return str(job.source), [], f"internal error: {type(exc).__name__}: {exc}", job.backend


def run(jobs: list[Job], workers: int = 2, progress: bool = True):
    """Run the jobs (in parallel when several); yield ``run_job`` results in job order.
    All jobs share one backend and model (as ``plan`` makes them)."""
    if not jobs:
        return
    workers = min(workers, os.cpu_count() or 1)
    held = (jobs[0].backend, jobs[0].model)
    yield from parallel_map(run_job, jobs, workers, "convert", progress, hold_model, held)
