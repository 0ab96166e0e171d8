"""The HTTP side of ``perf2score serve`` (FastAPI): upload, progress, pages, downloads.

Routes (all under the page's own origin; nothing is fetched from elsewhere):

- ``GET /``: the page; ``GET /static/...``: its script and style sheet.
- ``POST /api/jobs?backend=auto|neural|classical&name=FILE[&time_signature=3/4][&tempo=100]
  [&key_changes=true]``: the body is the file itself (a performance MIDI or an audio
  recording), at most ``max_upload_bytes``; answers the job. The time signature and tempo
  (quarters per minute) are what the user knows of the piece (neural model); key changes:
  a new key signature where the music settles in a remote key (see ``perf2score.convert``).
- ``GET /api/jobs/{id}``: state, stage, queue position, pages, the error when it failed.
- ``GET /api/jobs/{id}/pages/{k}.svg``: page ``k`` (from 1) of the engraved score.
- ``GET /api/jobs/{id}/score.{musicxml,mid,pdf}``: the downloads; ``.../notes.json``: the
  score MIDI's notes in seconds, which the page's player sounds.
"""

import contextlib
import json
import threading
import time
from dataclasses import replace
from importlib import resources
from pathlib import Path

from perf2score.audio import is_audio
from perf2score.conversion import BACKENDS, convert, read_input, resolve_backend
from perf2score.errors import Perf2ScoreError
from perf2score.files import atomic_write
from perf2score.neural.settings import DecodeConfig
from perf2score.score.assembly import AssembledScore
from perf2score.score.export import pdf_document, score_midi, svg_pages
from perf2score.web.jobs import Job, JobQueue, sniff_suffix

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
DOWNLOADS = {  # suffix → (media type, how the page names it)
    "musicxml": ("application/vnd.recordare.musicxml+xml", "MusicXML"),
    "mid": ("audio/midi", "score MIDI"),
    "pdf": ("application/pdf", "PDF"),
}
WEB_HINT = "the web page needs the optional extra: pip install 'perf2score[web]'"


def playback_notes(score: AssembledScore) -> list[list[float]]:
    """The score's notes as [onset s, duration s, MIDI pitch, velocity], at its tempo
    (grace notes get 1/16 of a quarter before their chord)."""
    seconds = 60.0 / (score.tempo_qpm * score.ticks_per_quarter)
    grace = score.ticks_per_quarter / 16
    notes = []
    for chord in score.chords:
        onset, length = chord.onset * seconds, max(chord.duration, 1) * seconds
        for pitch in chord.pitches:
            notes.append([round(onset, 4), round(length, 4), pitch[0], chord.velocity])
        for k, pitch in enumerate(chord.grace):
            start = (chord.onset - (len(chord.grace) - k) * grace) * seconds
            notes.append([round(max(start, 0.0), 4), round(grace * seconds, 4), pitch[0], 64])
    return sorted(notes)


class Converter:
    """What a worker does with a job: read, convert, engrave, write the outputs; holds the
    neural model once it is first needed (shared by the workers, read-only)."""

    def __init__(self, model: "str | None" = None):
        self._model_folder = model
        self._model = None
        self._lock = threading.Lock()

    def model(self):
        with self._lock:
            if self._model is None:
                from perf2score.neural.converter import load_neural_model

                self._model = load_neural_model(self._model_folder)
            return self._model

    def __call__(self, job: Job) -> None:
        from perf2score.conversion import resolve_backend

        backend = resolve_backend(job.backend, self._model_folder)
        job.stage = "transcribing the recording" if is_audio(job.input) else "reading the file"
        performance = replace(read_input(job.input), source=job.name)
        job.notes = len(performance.notes)
        job.stage = f"converting {job.notes:,} notes ({backend})"
        model = self.model() if backend == "neural" else None
        told = {"time_signature": job.time_signature or None, "tempo": job.tempo or None}
        asked = "auto" if job.backend == "auto" else backend  # auto: exact files classical
        score = convert(performance, asked, model, **told, key_changes=job.key_changes)
        job.chosen_backend = score.backend
        job.stage = "engraving"
        pages = svg_pages(score.assembled)
        for k, page in enumerate(pages, start=1):
            atomic_write(job.output(f"page-{k}.svg"), page)
        atomic_write(job.output("score.musicxml"), score.to_musicxml())
        atomic_write(job.output("score.mid"), score_midi(score.assembled))
        atomic_write(job.output("notes.json"), json.dumps(playback_notes(score.assembled)))
        job.pages = len(pages)
        job.stage = "done"


def given_meter(time_signature: str, tempo: str, backend: str) -> tuple[str, float]:
    """(time signature, tempo) an upload was told ("" / 0.0: not told), checked as the CLI
    checks them; ``Perf2ScoreError`` with the reason when malformed or not for ``backend``."""
    time_signature = time_signature.strip()
    if not time_signature and not tempo.strip():
        return "", 0.0
    if backend != "neural":
        raise Perf2ScoreError("a time signature or tempo needs the neural model")
    try:
        qpm = float(tempo) if tempo.strip() else 0.0
    except ValueError:
        raise Perf2ScoreError(f"tempo '{tempo}': give quarters per minute, 20 to 400") from None
    DecodeConfig().with_meter(time_signature or None, qpm or None)  # raises when malformed
    return time_signature, qpm


def create_app(
    workers: int = 1,
    model: str | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    ttl_s: float = 3600.0,
    temp_root: str | None = None,
):
    """The FastAPI application (its job queue starts with it and is cleaned when it stops)."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import FileResponse, JSONResponse, Response
        from fastapi.staticfiles import StaticFiles
    except ImportError:
        raise Perf2ScoreError(WEB_HINT) from None

    converter = Converter(model)
    jobs = JobQueue(converter, workers=workers, ttl_s=ttl_s, root=temp_root)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        jobs.close()

    app = FastAPI(title="perf2score", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.jobs = jobs
    static = resources.files("perf2score.web") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    def refuse(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def describe(job: Job) -> dict:
        return {
            "id": job.id,
            "name": job.name,
            "state": job.state,
            "stage": job.stage,
            "position": jobs.position(job) if job.state == "queued" else 0,
            "elapsed_s": round((job.finished or time.monotonic()) - job.started, 1)
            if job.started
            else 0.0,
            "error": job.error,
            "pages": job.pages,
            "notes": job.notes,
            "backend": job.chosen_backend or job.backend,
            "downloads": {
                fmt: {"url": f"/api/jobs/{job.id}/score.{fmt}", "label": label}
                for fmt, (_, label) in DOWNLOADS.items()
            }
            if job.state == "done"
            else {},
        }

    @app.get("/", include_in_schema=False)
    def page():
        return Response((static / "index.html").read_bytes(), media_type="text/html")

    @app.post("/api/jobs")
    async def upload(
        request: Request,
        backend: str = "auto",
        name: str = "",
        time_signature: str = "",
        tempo: str = "",
        key_changes: bool = False,
    ):
        if backend not in BACKENDS:
            return refuse(400, f"unknown backend '{backend}' (use {', '.join(BACKENDS)})")
        try:
            meter = given_meter(time_signature, tempo, resolve_backend(backend, model))
        except Perf2ScoreError as exc:
            return refuse(400, str(exc))
        limit_mb = max_upload_bytes / 2**20
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_upload_bytes:
            return refuse(413, f"the file is larger than {limit_mb:g} MB (the upload limit)")
        try:
            job = jobs.new_job(name, backend)
        except Perf2ScoreError as exc:
            return refuse(503, str(exc))
        job.time_signature, job.tempo = meter
        job.key_changes = key_changes
        part = job.output("upload.part")
        size = 0
        try:
            with open(part, "wb") as handle:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > max_upload_bytes:
                        raise OverflowError
                    handle.write(chunk)
        except OverflowError:
            jobs.discard(job)
            return refuse(413, f"the file is larger than {limit_mb:g} MB (the upload limit)")
        except Exception:  # the client went away mid-upload
            jobs.discard(job)
            raise
        with open(part, "rb") as handle:
            head = handle.read(16)
        job.input = job.output("upload" + sniff_suffix(head, job.name))
        Path(part).replace(job.input)
        jobs.submit(job)
        return JSONResponse(describe(job), status_code=202)

    def find(job_id: str) -> Job | None:
        return jobs.get(job_id)

    @app.get("/api/jobs/{job_id}")
    def status(job_id: str):
        job = find(job_id)
        return JSONResponse(describe(job)) if job else refuse(404, "no such conversion")

    @app.get("/api/jobs/{job_id}/pages/{number}.svg")
    def svg(job_id: str, number: int):
        job = find(job_id)
        if not job or job.state != "done" or not 1 <= number <= job.pages:
            return refuse(404, "no such page")
        return FileResponse(job.output(f"page-{number}.svg"), media_type="image/svg+xml")

    @app.get("/api/jobs/{job_id}/notes.json")
    def notes(job_id: str):
        job = find(job_id)
        if not job or job.state != "done":
            return refuse(404, "no such conversion")
        return FileResponse(job.output("notes.json"), media_type="application/json")

    @app.get("/api/jobs/{job_id}/score.{fmt}")
    def download(job_id: str, fmt: str):
        job = find(job_id)
        if not job or job.state != "done" or fmt not in DOWNLOADS:
            return refuse(404, "no such download")
        target = job.output(f"score.{fmt}")
        if fmt == "pdf":
            with job.lock:  # made on the first request: rasterising pages takes a while
                if not target.exists():
                    pages = [
                        job.output(f"page-{k}.svg").read_text() for k in range(1, job.pages + 1)
                    ]
                    atomic_write(target, pdf_document(pages))
        return FileResponse(target, media_type=DOWNLOADS[fmt][0], filename=f"{job.stem}.{fmt}")

    return app


def serve(host: str = "127.0.0.1", port: int = 8000, **options) -> None:
    """Run the page with uvicorn until Ctrl-C (``options``: those of ``create_app``); says
    where on stdout once the address is known to be free."""
    try:
        import uvicorn
    except ImportError:
        raise Perf2ScoreError(WEB_HINT) from None
    import socket

    try:  # a clear sentence instead of uvicorn's log line when the address is taken
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise Perf2ScoreError(
            f"cannot serve on {host}:{port} ({exc.strerror or exc}): choose another --port"
        ) from None
    app = create_app(**options)
    print(f"perf2score: serving on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


__all__ = ["create_app", "playback_notes", "serve"]
