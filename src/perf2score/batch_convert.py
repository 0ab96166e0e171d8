"""Convert many performance files: discovery, output naming, parallel work, failures.

One failing file never stops the batch: its error is collected and reported at the end.
Each worker loads the neural model once (``hold_model``) and converts all its files with it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from perf2score.errors import Perf2ScoreError
from perf2score.files import check_writable
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
    decoding: DecodeConfig | None = None  # decoding settings (neural), None = the model's
    auto: bool = False  # the user asked for "auto": a file played exactly goes to classical
    repeats: bool = True  # a section played twice in a row is written once, with repeat signs
    key_changes: bool = False  # a new key signature where the music settles in a remote key

    @property
    def held(self) -> tuple[str, str | None, DecodeConfig | None]:
        """What ``hold_model`` loads for this job: backend, model folder, decoding."""
        return self.backend, self.model, self.decoding


def discover(inputs: list[str]) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(file, path relative to its root) for every MIDI file named or inside a named folder,
    each file once, and the files named more than once (converted once)."""
    found: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    repeated: list[Path] = []

    def add(path: Path, relative: Path) -> None:
        key = path.resolve()
        if key in seen:
            repeated.append(path)
        else:
            seen.add(key)
            found.append((path, relative))

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.suffix.lower() in MIDI_SUFFIXES and child.is_file():
                    add(child, child.relative_to(path))
        elif path.exists():
            add(path, Path(path.name))
        else:
            raise Perf2ScoreError(f"{path}: no such file or folder")
    if not found:
        raise Perf2ScoreError("no MIDI files found in the inputs")
    return found, repeated


def plan(
    inputs: list[str],
    output: str | None,
    out_dir: str | None,
    formats: list[str],
    backend: str,
    model: str | None = None,
    decoding: DecodeConfig | None = None,
    auto: bool = False,
    repeats: bool = True,
    key_changes: bool = False,
) -> tuple[list[Job], list[Path]]:
    """(the conversions to run: which file goes where, in which formats; the input files
    named more than once, which are converted once). ``auto``: the user asked for the
    "auto" backend (``backend`` is what it resolved to), so a file played exactly as written
    goes to the classical converter (``conversion.played_exactly``). ``repeats``: sections
    played twice in a row are written once between repeat signs (False: every note played).
    ``key_changes``: a new key signature where the music settles in a remote key.

    Raises ``Perf2ScoreError`` (before anything is converted) when two inputs would write
    the same output file, or an output would replace an input."""
    files, repeated = discover(inputs)
    if output and (len(files) > 1 or len(formats) > 1):
        raise Perf2ScoreError("-o names one output file: use --out-dir for several")
    jobs = []
    for source, relative in files:
        if output:
            outputs = [(Path(output), formats[0])]
        else:
            base = Path(out_dir) / relative if out_dir else source
            outputs = [(base.with_suffix(EXTENSIONS[f]), f) for f in formats]
        jobs.append(Job(source, outputs, backend, model, decoding, auto, repeats, key_changes))
    _refuse_collisions(jobs)
    return jobs, repeated


def _refuse_collisions(jobs: list[Job]) -> None:
    sources = {job.source.resolve(): job.source for job in jobs}
    writer: dict[Path, Path] = {}
    for job in jobs:
        for path, _ in job.outputs:
            key = path.resolve()
            if key in sources:
                raise Perf2ScoreError(f"{path}: the output would replace the input {sources[key]}")
            if key in writer:
                raise Perf2ScoreError(
                    f"{writer[key]} and {job.source} would both be written to {path}: "
                    "rename one, or convert them into different --out-dir folders"
                )
            writer[key] = job.source


def check_destinations(jobs: list[Job]) -> None:
    """Raise ``Perf2ScoreError`` unless every output file of ``jobs`` can be written
    (checked before converting; no folder or file is left behind)."""
    for job in jobs:
        for path, _ in job.outputs:
            try:
                check_writable(path)
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise Perf2ScoreError(f"{path}: cannot write there ({reason})") from exc


_HELD: dict[str, object] = {}  # this process's loaded neural model, set by ``hold_model``


def hold_model(
    backend: str,
    folder: str | None,
    decoding: DecodeConfig | None = None,
    processes: int = 1,
    heads: dict[str, str] | None = None,
) -> None:
    """Load the model that this process's jobs convert with (once per worker; a worker
    initializer): the neural model of ``folder`` (None: the shipped one) with ``decoding``
    (None: its own settings) and the head folders of ``heads`` (``load_neural_model``'s
    ``meter``/``hands`` keywords; the shipped heads otherwise), which decodes each
    performance's windows in ``processes`` processes side by side; nothing for the
    classical backend. A model that fails to load is left to each job to report."""
    _HELD.clear()
    if backend == "neural":
        from perf2score.neural.converter import load_neural_model

        with contextlib.suppress(Perf2ScoreError):  # each job then reports it
            _HELD["neural"] = load_neural_model(folder, decoding, **(heads or {}))
            _HELD["neural"].processes = processes


def held_model(backend: str, folder: str | None):
    """The model ``hold_model`` loaded for ``backend``, else ``folder`` (loaded per call)."""
    return _HELD.get(backend, folder)


@dataclass
class Outcome:
    """What converting one file gave: the files written, or the error (``internal``: a bug,
    not a bad input)."""

    source: str
    written: list[str]
    error: str | None
    backend: str
    internal: bool = False
    notices: list[str] = field(default_factory=list)  # what the user should know of it


def run_job(job: Job) -> Outcome:
    """Convert one file into its outputs; errors are returned, never raised."""
    from perf2score.conversion import convert

    try:
        model = held_model(job.backend, job.model)
        chosen = "auto" if job.auto and job.backend == "neural" else job.backend
        score = convert(
            job.source,
            backend=chosen,
            model=model,
            repeats=job.repeats,
            key_changes=job.key_changes,
        )
        written = []
        for path, fmt in job.outputs:
            written.extend(str(p) for p in score.save(path, fmt))
        notices = [
            f"played twice, written once between repeat signs: bars {first}-{last}"
            for first, last in score.assembled.repeated_sections()
        ]
        return Outcome(str(job.source), written, None, score.backend, notices=notices)
    except Perf2ScoreError as exc:
        return Outcome(str(job.source), [], str(exc), job.backend)
    except OSError as exc:  # the destination went away or filled up while converting
        where = exc.filename or job.source
        return Outcome(str(job.source), [], f"{where}: {exc.strerror or exc}", job.backend)
    except Exception as exc:  # a bug must not stop the batch; it is reported per file
        message = f"internal error: {type(exc).__name__}: {exc}"
        return Outcome(str(job.source), [], message, job.backend, internal=True)


def run(jobs: list[Job], workers: int = 2, progress: bool = True):
    """Run the jobs (in parallel when several); yield their ``Outcome`` in job order.
    All jobs share one backend, model and decoding (as ``plan`` makes them). One file is
    converted in this process, its windows decoded by ``workers`` processes side by side."""
    if not jobs:
        return
    workers = min(workers, os.cpu_count() or 1)
    held = (*jobs[0].held, workers) if len(jobs) == 1 else jobs[0].held  # one: in-process
    yield from parallel_map(run_job, jobs, workers, "convert", progress, hold_model, held)
