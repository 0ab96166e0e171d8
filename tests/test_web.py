"""The web page's server: uploads, the queue, pages, downloads, errors, clean-up."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

pytest.importorskip("fastapi", reason="the 'web' extra is not installed")
from builders import write_midi
from fastapi.testclient import TestClient

from perf2score.errors import Perf2ScoreError
from perf2score.midi import read_performance
from perf2score.score.reading import read_score
from perf2score.web.app import create_app
from perf2score.web.jobs import JobQueue, display_name, sniff_suffix


def _performance(path: Path, count: int = 24) -> Path:
    notes = [(60 + (k * 5) % 12, 0.5 * k, 0.5 * k + 0.45, 70) for k in range(count)]
    bass = [(48, 1.0 * k, 1.0 * k + 0.9, 60) for k in range(count // 2)]
    return write_midi(path, tracks=[notes, bass])


@pytest.fixture
def client(tmp_path):
    root = tmp_path / "serve"
    root.mkdir()
    app = create_app(temp_root=str(root))
    with TestClient(app) as test_client:
        yield test_client
    assert not any(root.iterdir()), "the temporary folder is removed when the app stops"


def _finish(client: TestClient, job: dict, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"conversion did not finish: {job}"
        time.sleep(0.2)
        job = client.get(f"/api/jobs/{job['id']}").json()
    return job


def _upload(client: TestClient, data: bytes, name: str, backend: str = "classical"):
    return client.post("/api/jobs", params={"backend": backend, "name": name}, content=data)


def test_the_page_and_its_script_are_served_by_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/player.js", "/static/style.css"):
        assert f'"{asset}"' in page.text
        assert client.get(asset).status_code == 200
    assert "http" not in page.text.replace("http-equiv", ""), "no resource from elsewhere"


@pytest.mark.parametrize("backend", ["classical", "neural"])
def test_a_performance_becomes_pages_and_downloads(client, tmp_path, backend):
    midi = _performance(tmp_path / "in.mid").read_bytes()
    answer = _upload(client, midi, "My Étude (take 2).mid", backend)
    assert answer.status_code == 202
    job = _finish(client, answer.json())
    assert job["state"] == "done", job["error"]
    assert job["backend"] == backend and job["notes"] == 36 and job["pages"] >= 1
    svg = client.get(f"/api/jobs/{job['id']}/pages/1.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.count('class="note"') >= 30
    xml = client.get(job["downloads"]["musicxml"]["url"])
    disposition = xml.headers["content-disposition"]
    assert unquote(disposition.split("''")[-1]) == "My _tude (take 2).musicxml"
    (tmp_path / "out.musicxml").write_bytes(xml.content)
    score = read_score(tmp_path / "out.musicxml")
    assert len(score.notes) == 36
    midi_out = client.get(job["downloads"]["mid"]["url"]).content
    assert midi_out.startswith(b"MThd")
    assert client.get(job["downloads"]["pdf"]["url"]).content.startswith(b"%PDF")
    notes = client.get(f"/api/jobs/{job['id']}/notes.json").json()
    assert len(notes) == 36 and all(len(n) == 4 and n[1] > 0 for n in notes)
    assert notes == sorted(notes)
    assert client.get(f"/api/jobs/{job['id']}/pages/{job['pages'] + 1}.svg").status_code == 404


def _cli_message(tmp_path: Path, data: bytes, name: str) -> str:
    path = tmp_path / "cli" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    with pytest.raises(Perf2ScoreError) as caught:
        read_performance(path)
    return str(caught.value).replace(str(path), name)


@pytest.mark.parametrize(
    "data", [b"", b"this is not a MIDI file at all", b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x00"]
)
def test_bad_input_fails_with_the_cli_sentence(client, tmp_path, data):
    job = _finish(client, _upload(client, data, "take.mid").json())
    assert job["state"] == "failed"
    assert job["error"] == _cli_message(tmp_path, data, "take.mid")
    assert str(tmp_path) not in job["error"], "no server path reaches the client"


def test_uploads_have_a_size_limit(tmp_path):
    app = create_app(temp_root=str(tmp_path), max_upload_bytes=1000)
    with TestClient(app) as client:
        declared = _upload(client, b"MThd" + b"\x00" * 2000, "big.mid")
        assert declared.status_code == 413 and "larger than" in declared.json()["error"]

        def chunks():  # no Content-Length: the limit is counted while receiving
            for _ in range(5):
                yield b"\x00" * 400

        streamed = client.post("/api/jobs", params={"name": "x.mid"}, content=chunks())
        assert streamed.status_code == 413
        root = app.state.jobs.root
        assert not any(root.iterdir()), "a refused upload leaves no file"


def test_nothing_the_client_sends_becomes_a_path(client, tmp_path):
    midi = _performance(tmp_path / "in.mid").read_bytes()
    job = _finish(client, _upload(client, midi, "../../../etc/passwd").json())
    assert job["state"] == "done" and job["name"] == "passwd"
    assert client.get("/api/jobs/..%2F..%2Fetc").status_code == 404
    assert client.get("/api/jobs/not-an-id/score.musicxml").status_code == 404
    url = f"/api/jobs/{job['id']}/score.py"
    assert client.get(url).status_code == 404
    assert _upload(client, midi, "x.mid", backend="rm -rf").status_code == 400


def test_names_and_kinds():
    assert display_name("C:\\Users\\me\\song.mid") == "song.mid"
    assert display_name("") == display_name("///") == "performance.mid"
    assert display_name("a<script>.mid") == "a_script_.mid"
    assert sniff_suffix(b"MThd\x00\x00\x00\x06", "x.wav") == ".mid"
    assert sniff_suffix(b"RIFF\x00\x00\x00\x00WAVEfmt ", "x.mid") == ".wav"
    assert sniff_suffix(b"fLaC\x00", "x") == ".flac"
    assert sniff_suffix(b"ID3\x04", "x") == ".mp3"
    assert sniff_suffix(b"garbage", "take.mp3") == ".mp3"
    assert sniff_suffix(b"garbage", "take.txt") == ".mid"


def test_the_queue_runs_one_job_at_a_time_in_order(tmp_path):
    gate, order = threading.Event(), []

    def convert(job):
        order.append(job.name)
        gate.wait(10)

    jobs = JobQueue(convert, workers=1, max_pending=3, root=str(tmp_path))
    try:
        made = []
        for name in ("a.mid", "b.mid", "c.mid"):
            job = jobs.new_job(name, "classical")
            job.input.write_bytes(b"x")
            jobs.submit(job)
            made.append(job)
        with pytest.raises(Perf2ScoreError, match="busy"):
            jobs.new_job("d.mid", "classical")
        deadline = time.monotonic() + 5
        while made[0].state != "running" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [job.state for job in made] == ["running", "queued", "queued"]
        assert [jobs.position(job) for job in made[1:]] == [0, 1]
        gate.set()
        deadline = time.monotonic() + 5
        while made[-1].state != "done" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert order == ["a.mid", "b.mid", "c.mid"]
        assert not made[0].input.exists(), "an input is deleted once converted"
    finally:
        jobs.close()
    assert not jobs.root.exists()


def test_finished_jobs_expire(tmp_path):
    jobs = JobQueue(lambda job: None, workers=1, ttl_s=0.2, root=str(tmp_path))
    try:
        job = jobs.new_job("a.mid", "classical")
        job.input.write_bytes(b"x")
        jobs.submit(job)
        deadline = time.monotonic() + 30  # generous: the suite may run on a busy machine
        # the expiry forgets the job, then removes its folder (outside the lock): wait for both
        while (jobs.get(job.id) is not None or job.folder.exists()) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert jobs.get(job.id) is None and not job.folder.exists()
    finally:
        jobs.close()


def test_an_uploaded_recording_goes_to_the_transcriber(client, tmp_path, monkeypatch):
    import perf2score.audio

    performance = read_performance(_performance(tmp_path / "in.mid"))
    heard = []

    def transcribe(path):
        heard.append(Path(path).suffix)
        return performance

    monkeypatch.setattr(perf2score.audio, "transcribe_file", transcribe)
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40)  # a WAV header: stored as .wav
    job = _finish(client, _upload(client, wav, "recording.bin").json())
    assert job["state"] == "done", job["error"]
    assert heard == [".wav"] and job["notes"] == 36


def test_serve_on_a_taken_port_is_one_line(capsys):
    import socket

    from perf2score.cli import main

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"perf2score: error: cannot serve on 127.0.0.1:{port}")
    assert "serving on" not in out
    assert err.count("\n") == 1


def test_key_changes_are_written_when_asked(client, tmp_path):
    from builders import modulating_performance

    midi = modulating_performance(tmp_path / "in.mid").read_bytes()
    found = {}
    for asked in (False, True):
        params = {"backend": "neural", "name": "x.mid", "key_changes": str(asked).lower()}
        job = _finish(client, client.post("/api/jobs", params=params, content=midi).json())
        assert job["state"] == "done", job["error"]
        xml = client.get(job["downloads"]["musicxml"]["url"]).text
        found[asked] = [int(f) for f in re.findall(r"<fifths>(-?\d+)</fifths>", xml)]
    assert found == {False: [0], True: [0, -4, 0]}


def test_a_told_time_signature_is_written_and_bad_ones_are_refused(client, tmp_path):
    midi = _performance(tmp_path / "in.mid").read_bytes()
    told = {"backend": "neural", "name": "x.mid", "time_signature": "6/8", "tempo": "90"}
    answer = client.post("/api/jobs", params=told, content=midi)
    assert answer.status_code == 202
    job = _finish(client, answer.json())
    assert job["state"] == "done", job["error"]
    (tmp_path / "told.musicxml").write_bytes(
        client.get(job["downloads"]["musicxml"]["url"]).content
    )
    assert {(n, d) for _, n, d in read_score(tmp_path / "told.musicxml").time_signatures} == {
        (6, 8)
    }
    for params, message in [
        ({"backend": "neural", "time_signature": "3/5"}, "time signature '3/5'"),
        ({"backend": "neural", "tempo": "fast"}, "tempo 'fast'"),
        ({"backend": "neural", "tempo": "1000"}, "tempo 1000.0"),
        ({"backend": "classical", "time_signature": "3/4"}, "needs the neural model"),
    ]:
        answer = client.post("/api/jobs", params={"name": "x.mid", **params}, content=midi)
        assert answer.status_code == 400 and message in answer.json()["error"], answer.text
