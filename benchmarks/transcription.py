"""Audio input: transcription accuracy and speed on recordings rendered from known notes.

Seeded melodies (``tests/rendering.py``: 24 notes over C3-B5, every fourth doubled an octave
lower) are rendered with FluidSynth and Debian's TimGM6mb piano, then transcribed by
``perf2score.audio`` (transkun 2.0). Reported per recording: note F-measure (mir_eval,
onset within 50 ms and pitch; and with offsets, 20 % or 50 ms), seconds of audio, seconds
of transcription (model already loaded), and the real-time factor.
Run: ``.venv/bin/python benchmarks/transcription.py [--seeds 0 1 2 3 4] [--threads 2]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from rendering import known_notes, note_f_measures, render, renderer_missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--notes", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    missing = renderer_missing()
    if missing:
        sys.exit(f"cannot render recordings: {missing}")
    import soundfile
    import torch

    from perf2score.audio.transcriber import load_transcriber, transcribe_file

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    load_transcriber()
    print(f"model loaded in {time.perf_counter() - start:.1f} s; {args.threads} thread(s)")
    print("seed  notes  F(onset)  F(onset+offset)  audio s  transcription s  x real time")
    totals = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:
            notes = known_notes(args.notes, seed)
            path = render(notes, Path(folder) / f"seed{seed}.wav")
            seconds = soundfile.info(str(path)).duration
            start = time.perf_counter()
            performance = transcribe_file(path)
            spent = time.perf_counter() - start
            onset_f, full_f = note_f_measures(notes, performance)
            totals.append((onset_f, full_f, seconds, spent))
            print(
                f"{seed:4d}  {len(notes):5d}  {onset_f:8.3f}  {full_f:15.3f}  {seconds:7.1f}"
                f"  {spent:15.1f}  {spent / seconds:11.2f}"
            )
    onset_f, full_f, audio, spent = (np.array(column) for column in zip(*totals, strict=True))
    print(
        f"mean  F(onset) {onset_f.mean():.3f}  F(onset+offset) {full_f.mean():.3f}"
        f"  {audio.sum():.0f} s of audio in {spent.sum():.0f} s ({spent.sum() / audio.sum():.2f}"
        " x real time)"
    )


if __name__ == "__main__":
    main()
