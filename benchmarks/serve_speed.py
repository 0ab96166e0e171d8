"""A conversion through the web page's HTTP API, timed, with the server's math threads as
they ship (one BLAS thread) and with ``OMP_NUM_THREADS=2`` (BLAS's default on 2 cores),
alternating; run it idle, or beside a load of your own (e.g. two ``python3 -c "while True:
pass"``).

    .venv/bin/python benchmarks/serve_speed.py FILE.mid [--rounds 3] [--repeats 2]

Each server is started fresh, converts the file once (the model loads), then ``--rounds``
times: ``POST /api/jobs?backend=neural``, polling ``GET /api/jobs/ID`` until it is done;
seconds per conversion are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

SERVER = [str(Path(sys.executable).with_name("perf2score")), "serve"]


def _wait(base: str) -> None:
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/")
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def timed_conversions(data: bytes, env_extra: dict[str, str], port: int, rounds: int) -> list:
    """Seconds per conversion of ``data`` through a fresh server (the first, which loads
    the model, left out)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | env_extra
    server = subprocess.Popen(
        [*SERVER, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base)
        times = []
        for k in range(rounds + 1):
            start = time.perf_counter()
            request = urllib.request.Request(
                base + "/api/jobs?backend=neural&name=take.mid", data=data, method="POST"
            )
            job = json.load(urllib.request.urlopen(request))["id"]
            while json.load(urllib.request.urlopen(f"{base}/api/jobs/{job}"))["state"] not in (
                "done",
                "failed",
            ):
                time.sleep(0.05)
            if k:
                times.append(time.perf_counter() - start)
        return times
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--port", type=int, default=8701)
    args = parser.parse_args()
    data = args.file.read_bytes()
    port = args.port
    for _ in range(args.repeats):
        for label, extra in (
            ("one BLAS thread (shipped)", {}),
            ("OMP_NUM_THREADS=2", {"OMP_NUM_THREADS": "2"}),
        ):
            times = timed_conversions(data, extra, port, args.rounds)
            port += 1
            print(f"{label}: " + ", ".join(f"{t:.2f} s" for t in times), flush=True)


if __name__ == "__main__":
    main()
