"""Neural conversion time with decoding windows of 256/64 and 128/32 notes, alternating.

    .venv/bin/python benchmarks/window_speed.py [SIZES ...]   (default 500 1000 5000)

In-process, one math thread, the shipped model loaded once (and warmed up on 300 notes);
each size is a generated performance (``convert_speed.generated``), converted three times
with each window setting in alternation, MusicXML made; prints the medians.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_speed import generated

from perf2score import convert
from perf2score.neural.converter import load_neural_model

SETTINGS = ((256, 64), (128, 32))  # (window, overlap)


def main() -> None:
    torch.set_num_threads(1)
    sizes = [int(x) for x in sys.argv[1:]] or [500, 1000, 5000]
    model = load_neural_model()
    shipped = model.decoding
    convert(generated(300), model=model)  # warm-up: first-call costs out of the timing
    for size in sizes:
        performance = generated(size)
        times: dict[int, list[float]] = {window: [] for window, _ in SETTINGS}
        for _ in range(3):
            for window, overlap in SETTINGS:
                model.decoding = dataclasses.replace(shipped, window=window, overlap=overlap)
                start = time.perf_counter()
                convert(performance, model=model).to_musicxml()
                times[window].append(time.perf_counter() - start)
        cells = "  ".join(
            f"window {w}: {statistics.median(t):.2f} s ({size / statistics.median(t):.0f} notes/s)"
            for w, t in times.items()
        )
        print(f"{size:6d} notes  {cells}", flush=True)


if __name__ == "__main__":
    main()
