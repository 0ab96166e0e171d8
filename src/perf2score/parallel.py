"""Map a function over jobs in worker processes, with a progress bar, results in order.

Workers end with their parent: each asks the kernel for SIGTERM when its parent dies
(Linux), watches its parent id as well (elsewhere, or if the signal was missed), ignores
Ctrl-C (the parent handles it for everyone), and on SIGTERM removes the temporary files
of its unfinished writes before it exits. When the parent stops early (an exception, Ctrl-C,
SIGTERM), it terminates the workers instead of letting them run the remaining jobs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

from perf2score.errors import Perf2ScoreError
from perf2score.files import remove_pending

if TYPE_CHECKING:  # multiprocessing and its pools are imported when workers start (0.02 s)
    from concurrent.futures import ProcessPoolExecutor

Job = TypeVar("Job")
Result = TypeVar("Result")

PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)
WATCH_SECONDS = 0.5  # how often a worker checks that its parent is alive


def _progress(items: Iterable[Job], bar: dict) -> Iterable[Job]:
    """``items`` with a tqdm progress bar (options ``bar``), or as they are when the bar is
    disabled (tqdm, with importlib.metadata, is then not imported: 0.02 s of a one-file
    conversion's start-up)."""
    if bar["disable"]:
        return items
    from tqdm import tqdm

    return tqdm(items, **bar)


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
        yield from _progress(map(function, jobs), bar)
        return
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(
        max_workers=workers,
        initializer=_start_worker,
        initargs=(os.getpid(), initializer, initargs),
    )
    # futures submitted by hand, not pool.map: map cancels its futures when stopped, and
    # Python 3.11's pool then fails on them when it notices the terminated workers
    futures = [pool.submit(function, job) for job in jobs]
    done = 0
    try:
        for future in _progress(futures, bar):
            yield future.result()
            done += 1
    except BrokenProcessPool as exc:  # a worker was killed (SIGKILL, out of memory)
        _terminate(pool)
        raise Perf2ScoreError(
            f"a worker process died (killed, or out of memory) after {done} of {len(jobs)}"
            " jobs; the others were not run"
        ) from exc
    except BaseException:  # stopped early (or closed): no worker may go on converting
        _terminate(pool)
        raise
    pool.shutdown(wait=True)


_FORKED: list = []  # side_by_side's function and jobs, inherited by its forked children


def side_by_side(function: Callable[[Job], Result], jobs: list[Job]) -> list[Result]:
    """``[function(job) for job in jobs]`` at the same time: the first job in this process,
    each other one in a forked child process (in-process, one after another, where the
    system cannot fork). The children inherit ``function`` and what it reads (a loaded
    model) instead of receiving them pickled; only their results come back pickled. They
    end with this process, as ``parallel_map``'s workers do."""
    if len(jobs) < 2:
        return [function(job) for job in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    if "fork" not in multiprocessing.get_all_start_methods():
        return [function(job) for job in jobs]
    _FORKED[:] = [function, jobs]
    pool = ProcessPoolExecutor(
        max_workers=len(jobs) - 1,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_worker,
        initargs=(os.getpid(), None, ()),
    )
    try:
        futures = [pool.submit(_run_forked, index) for index in range(1, len(jobs))]
        results = [function(jobs[0])] + [future.result() for future in futures]
    except BrokenProcessPool as exc:
        _terminate(pool)
        raise Perf2ScoreError("a worker process died (killed, or out of memory)") from exc
    except BaseException:
        _terminate(pool)
        raise
    finally:
        _FORKED.clear()
    pool.shutdown(wait=True)
    return results


def _run_forked(index: int):
    function, jobs = _FORKED
    return function(jobs[index])


def _terminate(pool: ProcessPoolExecutor) -> None:
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.terminate()  # SIGTERM: the worker removes its temporary files and exits
    deadline = time.monotonic() + 5.0
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    pool.shutdown(wait=True)  # the pool sees its workers gone and fails the pending jobs


def one_math_thread() -> None:
    """One math thread in this process (torch/numpy would otherwise oversubscribe the
    cores): for torch to come, for a torch already imported (a forked process), and for
    numpy's BLAS, whose thread count is read when numpy is imported."""
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    one_blas_thread()


def _start_worker(parent: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    one_math_thread()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    _die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def _exit_on_signal(signum: int, _frame) -> None:
    remove_pending()
    os._exit(128 + signum)


def _die_with_parent(parent: int) -> None:
    """SIGTERM this process when ``parent`` ends (prctl on Linux, plus a watching thread)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_SECONDS)
        remove_pending()
        os._exit(128 + signal.SIGTERM)

    if os.getppid() != parent:  # the parent ended before the signal was asked for
        os._exit(128 + signal.SIGTERM)
    threading.Thread(target=watch, name="perf2score-parent-watch", daemon=True).start()


def one_blas_thread() -> None:
    """One thread for numpy's BLAS (loaded already), which the numpy decoding runtime's
    small per-step products use; torch, if it comes later, keeps its own default (the
    transcriber's large products gain from every core)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
