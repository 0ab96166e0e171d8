"""The conversion queue behind the web page: one conversion at a time per worker thread.

Uploads are saved under one temporary folder (``JobQueue.root``), a sub-folder per job named
by a random id; nothing the client sends becomes part of a path. A job's input is deleted as
soon as it is read; finished jobs expire after ``ttl_s`` seconds, and ``close`` removes the
whole folder.
"""

from __future__ import annotations

import contextlib
import queue
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from perf2score.audio import AUDIO_SUFFIXES
from perf2score.errors import Perf2ScoreError

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
SAFE_NAME = re.compile(r"[^A-Za-z0-9._ ()-]+")
MAX_NAME = 80


def display_name(name: str | None) -> str:
    """The client's file name reduced to a harmless one for messages and downloads
    (letters, digits, ``._ ()-``; no folders), ``performance.mid`` when nothing is left."""
    base = re.split(r"[\\/]", name or "")[-1]
    cleaned = SAFE_NAME.sub("_", base).strip(" ._")[:MAX_NAME]
    return cleaned or "performance.mid"


def sniff_suffix(head: bytes, name: str) -> str:
    """The suffix an upload is stored under: ``.mid`` for MIDI (and for anything that is not
    recognisable audio, so that the MIDI reader gives its usual message), else the audio
    format its first bytes (or, for MP3 without a tag, its name) show."""
    if head.startswith(b"MThd"):
        return ".mid"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return ".wav"
    if head.startswith(b"fLaC"):
        return ".flac"
    if head.startswith(b"OggS"):
        return ".ogg"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return ".aiff"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return ".mp3"
    suffix = Path(name).suffix.lower()
    return suffix if suffix in AUDIO_SUFFIXES else ".mid"


@dataclass
class Job:
    """One upload and its conversion. ``state``: queued → running → done | failed."""

    id: str
    name: str  # display name (sanitised)
    backend: str
    folder: Path
    input: Path
    state: str = "queued"
    stage: str = "waiting in the queue"
    error: str = ""
    pages: int = 0
    notes: int = 0
    chosen_backend: str = ""
    time_signature: str = ""  # what the user told of the piece ("" / 0: nothing)
    tempo: float = 0.0
    key_changes: bool = False  # a new key signature where the music settles in a remote key
    created: float = field(default_factory=time.monotonic)
    started: float = 0.0
    finished: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def stem(self) -> str:
        return Path(self.name).stem or "score"

    def output(self, name: str) -> Path:
        """A file of this job's outputs (``name`` is one of the server's own names)."""
        return self.folder / name


class JobQueue:
    """Conversions behind a FIFO queue, run by ``workers`` threads (one job each at a time).

    ``convert_job(job)`` does the work and fills the job's outputs; it may raise
    ``Perf2ScoreError`` (shown to the user, with the server's path replaced by the client's
    file name) or anything else (shown as an internal error).
    """

    def __init__(
        self,
        convert_job,
        workers: int = 1,
        max_pending: int = 16,
        ttl_s: float = 3600.0,
        root: str | None = None,
    ):
        self.root = Path(tempfile.mkdtemp(prefix="perf2score-serve-", dir=root))
        self._convert = convert_job
        self._jobs: dict[str, Job] = {}
        self._order: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._max_pending = max_pending
        self._ttl = ttl_s
        self._closed = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"perf2score-worker-{k}", daemon=True)
            for k in range(workers)
        ]
        self._threads.append(threading.Thread(target=self._expire, daemon=True))
        for thread in self._threads:
            thread.start()

    def new_job(self, name: str | None, backend: str) -> Job:
        """A job folder for an upload about to be received (raises when the queue is full)."""
        with self._lock:
            pending = sum(job.state in ("queued", "running") for job in self._jobs.values())
            if pending >= self._max_pending:
                raise Perf2ScoreError(
                    f"the server is busy ({pending} conversions waiting): try again later"
                )
            job_id = uuid.uuid4().hex
            folder = self.root / job_id
            folder.mkdir()
            job = Job(job_id, display_name(name), backend, folder, folder / "upload")
            self._jobs[job_id] = job
        return job

    def submit(self, job: Job) -> None:
        """Queue a job whose upload is complete (``job.input`` exists)."""
        self._order.put(job)

    def discard(self, job: Job) -> None:
        """Forget a job (an upload refused before it was queued) and remove its files."""
        with self._lock:
            self._jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None (also for ids that are not well formed)."""
        if not JOB_ID.match(job_id):
            return None
        with self._lock:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int:
        """How many queued jobs are ahead of ``job`` (0 when it runs or is next)."""
        with self._lock:
            return sum(
                other.state == "queued" and other.created < job.created
                for other in self._jobs.values()
            )

    def _work(self) -> None:
        while not self._closed.is_set():
            job = self._order.get()
            if job is None:
                return
            job.state, job.started = "running", time.monotonic()
            try:
                self._convert(job)
                job.state = "done"
            except Perf2ScoreError as exc:
                job.error = str(exc).replace(str(job.input), job.name)
                job.state = "failed"
            except Exception as exc:  # a bug: the page shows it, the server keeps serving
                job.error = f"internal error: {type(exc).__name__}: {exc}"
                job.state = "failed"
            finally:
                job.finished = time.monotonic()
                with contextlib.suppress(OSError):
                    job.input.unlink()

    def _expire(self) -> None:
        while not self._closed.wait(min(60.0, self._ttl / 4)):
            now = time.monotonic()
            with self._lock:
                old = [
                    job
                    for job in self._jobs.values()
                    if job.state in ("done", "failed") and now - job.finished > self._ttl
                ]
                for job in old:
                    del self._jobs[job.id]
            for job in old:
                shutil.rmtree(job.folder, ignore_errors=True)

    def close(self) -> None:
        """Stop the workers (after their current job) and remove every temporary file."""
        self._closed.set()
        for _ in self._threads:
            self._order.put(None)
        for thread in self._threads[:-1]:
            thread.join(timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)
