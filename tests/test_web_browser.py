"""The page in a real headless Chromium (Playwright): upload, score, play, download, error.

Runs where Debian's Chromium (``/usr/bin/chromium``) and the Python ``playwright`` package
are installed; skips with the reason elsewhere, except in CI (``PERF2SCORE_REQUIRE_BROWSER=1``,
set by ``.ci/run``), where a missing browser fails the test. ``PERF2SCORE_SCREENSHOT=FILE``
also saves the screenshot there (the README's picture is made that way).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from builders import write_midi

CHROMIUM = os.environ.get("PERF2SCORE_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("PERF2SCORE_REQUIRE_BROWSER") == "1"
FLAGS = [  # no network beyond localhost on these machines: keep Chromium from trying
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def _missing() -> str | None:
    try:
        import fastapi  # noqa: F401
        import playwright.sync_api  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (the 'web' and 'test' extras)"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    reason = _missing()
    if reason:
        if REQUIRED:
            pytest.fail(f"browser test required in CI but {reason}")
        pytest.skip(reason)
    import uvicorn

    from perf2score.web.app import create_app

    root = tmp_path_factory.mktemp("serve")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(temp_root=str(root))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=30)
    assert not any(root.iterdir()), "the server's temporary folder is removed when it stops"


@pytest.fixture
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(
            accept_downloads=True, viewport={"width": 1100, "height": 900}
        )
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(server)
        yield tab
        assert not errors, f"JavaScript errors on the page: {errors}"
        browser.close()


def _performance(path: Path) -> Path:
    melody = [
        (67 + (2, 0, -1, 0, 2, 4, 5, 4)[k % 8], 0.4 * k, 0.4 * k + 0.38, 72) for k in range(32)
    ]
    bass = [(48 + (0, 7, 5, 7)[k % 4], 0.8 * k, 0.8 * k + 0.75, 60) for k in range(16)]
    return write_midi(path, tracks=[melody, bass])


@pytest.mark.slow
def test_upload_see_play_and_download_the_score(page, tmp_path):
    from perf2score.score.reading import read_score

    page.select_option("#backend", "classical")
    page.set_input_files("#file", str(_performance(tmp_path / "Little tune.mid")))
    page.wait_for_selector("body[data-state=done]", timeout=120_000)
    noteheads = page.locator("#score svg g.notehead").count()
    assert noteheads >= 48, f"{noteheads} noteheads drawn for 48 notes"
    assert "Little tune.mid: 48 notes" in page.inner_text("#summary")

    width = page.locator("#score .page").first.bounding_box()["width"]
    page.click("#zoom-in")
    assert page.locator("#score .page").first.bounding_box()["width"] > width * 1.2

    page.click("#play")
    assert page.get_attribute("body", "data-playing") == "true"
    page.wait_for_function("document.querySelector('#play').textContent.includes('Stop')")
    page.click("#play")
    assert page.get_attribute("body", "data-playing") == "false"
    page.click("#zoom-out")

    with page.expect_download() as download:
        page.click("#download-musicxml")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "Little tune.musicxml"
    assert len(read_score(saved).notes) == 48

    shot = page.screenshot(full_page=False)
    assert shot.startswith(b"\x89PNG")
    (tmp_path / "page.png").write_bytes(shot)
    if os.environ.get("PERF2SCORE_SCREENSHOT"):
        Path(os.environ["PERF2SCORE_SCREENSHOT"]).write_bytes(shot)


@pytest.mark.slow
def test_garbage_shows_the_one_sentence_error(page, tmp_path):
    garbage = tmp_path / "notes.mid"
    garbage.write_bytes(b"these bytes are no MIDI file")
    page.set_input_files("#file", str(garbage))
    page.wait_for_selector("body[data-state=failed]", timeout=60_000)
    message = page.inner_text("#error")
    assert message.startswith("notes.mid: ") and "MIDI" in message
    assert "\n" not in message.strip() and "Traceback" not in message
    assert page.locator("#result").is_hidden()
