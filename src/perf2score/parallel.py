"""Map a function over jobs in worker processes, with a progress bar, results in order."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from tqdm import tqdm

Job = TypeVar("Job")
Result = TypeVar("Result")


def parallel_map(
    function: Callable[[Job], Result],
    jobs: Iterable[Job],
    workers: int = 2,
    desc: str = "",
    progress: bool = True,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
) -> Iterator[Result]:
    """``map(function, jobs)`` over ``workers`` processes (in-process when 1), in job order.

    ``initializer(*initargs)`` runs once in each worker (in this process when in-process)
    before its first job: where a worker loads what all its jobs share (a model)."""
    jobs = list(jobs)
    bar = {"total": len(jobs), "desc": desc, "disable": not progress or len(jobs) < 2}
    if workers <= 1 or len(jobs) < 2:
        if initializer is not None:
            initializer(*initargs)
        yield from tqdm(map(function, jobs), **bar)
        return
    # One math thread per worker process (torch/numpy would otherwise oversubscribe the cores).
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_start_worker, initargs=(initializer, initargs)
    ) as pool:
        yield from tqdm(pool.map(function, jobs), **bar)


def _start_worker(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:  # forked after torch started: set it directly
        sys.modules["torch"].set_num_threads(1)
    if initializer is not None:
        initializer(*initargs)
