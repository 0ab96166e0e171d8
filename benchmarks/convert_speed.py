"""Time ``perf2score.convert`` (classical and neural backends) on generated performances.

Performances of 1k / 5k / 20k notes (two hands, chords, rubato) are converted and written
as MusicXML; reported: seconds, notes per second and the process's peak resident memory.
The neural backend runs with the shipped model, or ``--model FOLDER`` (an aligned model);
it is skipped when neither exists. The model is loaded once before timing.
Run: ``.venv/bin/python benchmarks/convert_speed.py [--sizes 1000 5000] [--model DIR]``
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from perf2score import convert, load_neural_model
from perf2score.conversion import neural_available
from perf2score.midi.reading import NOTE_DTYPE, Performance


def generated(n: int, seed: int = 0) -> Performance:
    rng = np.random.default_rng(seed)
    rows = []
    t, beat = 0.5, 0.55
    while len(rows) < n:
        beat = float(np.clip(beat * np.exp(rng.normal(0, 0.03)), 0.35, 0.9))
        bass = int(rng.integers(36, 55))
        rows.append((bass, t, t + beat * 0.9, 60))
        for k in range(int(rng.choice([2, 4]))):
            onset = t + k * beat / 2 + rng.normal(0, 0.01)
            for p in rng.choice(np.arange(60, 84), size=int(rng.integers(1, 3)), replace=False):
                rows.append((int(p), onset, onset + beat * 0.45, 70))
        t += beat
    notes = np.zeros(n, dtype=NOTE_DTYPE)
    rows = sorted(rows[:n], key=lambda r: (r[1], r[0]))
    notes["pitch"] = [r[0] for r in rows]
    notes["onset_sec"] = [r[1] for r in rows]
    notes["offset_sec"] = [r[2] for r in rows]
    notes["velocity"] = [r[3] for r in rows]
    return Performance(notes, np.zeros((0, 2)), source=f"generated-{n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--model", help="aligned-model folder (default: the shipped model)")
    args = parser.parse_args()
    backends, models = ["classical"], {"classical": None}
    if args.model or neural_available():
        backends.append("neural")
        models["neural"] = load_neural_model(args.model)  # loaded once, outside the timing
    with tempfile.TemporaryDirectory() as folder:
        for backend in backends:
            for size in args.sizes:
                performance = generated(size)
                start = time.perf_counter()
                score = convert(performance, backend=backend, model=models[backend])
                score.save(Path(folder) / "out.musicxml")
                seconds = time.perf_counter() - start
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
                print(
                    f"{size:6d} notes: {seconds:6.2f} s  {size / seconds:7.0f} notes/s"
                    f"  peak {peak:6.1f} MiB ({backend}, MusicXML written)"
                )


if __name__ == "__main__":
    main()
