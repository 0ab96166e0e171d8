"""Both backends on quantised input: each validation score played exactly as written.

A sequencer's or notation program's MIDI export has every onset on the grid. For every piece
of a prepared split, its ASAP score (``xml_score.musicxml``, as notated, grace notes left
out) is rendered to MIDI at a constant tempo (``--qpm`` quarters a minute; each note held
for 95 % of its written length), converted by the neural and the classical backend, and
scored against the same score with the project's evaluator. Printed per piece and on
average, with the rendering's ``grid_residual`` (the steadiness the neural backend checks).

With ``--jitter S`` each score is played instead with ``make demo``'s kind of rubato (a slow
tempo wave, a slowing into every fourth bar line) and N(0, S) seconds of onset noise: the
steady-but-human input the beat-clock path (``DecodeConfig.steady_residual``) is for.

Run: ``.venv/bin/python benchmarks/quantised_scores.py --data .cache/prepared
[--split validation] [--qpm 100] [--out DIR] [--decoding D.json] [--jitter 0.012]
[--model MODEL_DIR --meter HEAD_DIR] [--backends neural]``
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import symusic

from perf2score import convert, load_neural_model, read_performance
from perf2score.classical.rhythm import grid_residual
from perf2score.data.cache import load_index, load_sources
from perf2score.evaluate import evaluate
from perf2score.neural.settings import DecodeConfig
from perf2score.score import read_score

KEYS = ("e_avg", "onset_er", "offset_er", "voice_er", "missing_rate", "extra_rate")


def rubato_clock(quarters: np.ndarray, qpm: float, phrase: float) -> np.ndarray:
    """Seconds at score times ``quarters`` (sorted (K,)) under a slow tempo wave (±12 %)
    that also slows by 15 % into the end of every ``phrase`` quarters, as ``make demo``'s
    performance does (integrated on a 1/24-quarter grid)."""
    end = float(quarters.max()) if len(quarters) else 0.0
    grid = np.arange(0.0, end + 1.0, 1.0 / 24)
    bpm = qpm * (1 + 0.12 * np.sin(grid / 6.0) - 0.15 * np.exp(-(((grid % phrase) - phrase) ** 2)))
    elapsed = np.concatenate([[0.0], np.cumsum(60.0 / bpm[:-1] / 24)])
    return np.interp(quarters, grid, elapsed)


def render(
    score_path: Path, midi_path: Path, qpm: float, jitter: float = 0.0, seed: int = 0
) -> int:
    """Write the score's notes (grace notes left out) at ``qpm`` to ``midi_path``; the count.
    ``jitter`` > 0: played instead with the rubato of ``rubato_clock`` (phrases of four
    measures of the first time signature), onsets moved by N(0, ``jitter``) seconds and
    notes held 98 % of their written length."""
    score = read_score(score_path)
    notes = score.notes[~score.notes["is_grace"]]
    tpq = score.ticks_per_quarter
    starts = notes["onset_ticks"] / tpq
    ends = notes["offset_ticks"] / tpq
    if jitter > 0:
        _, num, den = sorted(score.time_signatures or [(0, 4, 4)])[0]
        clock = lambda q: rubato_clock(q, qpm, 4 * 4 * num / den)  # noqa: E731
        rng = np.random.default_rng(seed)
        on = clock(starts)
        off = on + 0.98 * (clock(ends) - on)
        on = np.maximum(on + rng.normal(0.0, jitter, len(on)), 0.0)
    else:
        on = starts * 60.0 / qpm
        off = on + (ends - starts) * 60.0 / qpm * 0.95
    track = symusic.Track(ttype="second")
    for note, onset, offset in zip(notes, on, off, strict=True):
        length = max(float(offset - onset), 0.02)
        track.notes.append(
            symusic.Note(0.5 + float(onset), length, int(note["pitch"]), 70, ttype="second")
        )
    rendered = symusic.Score(ttype="second")
    rendered.tracks.append(track)
    rendered.dump_midi(str(midi_path))
    return len(notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=".cache/prepared")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--qpm", type=float, default=100.0)
    parser.add_argument("--out", default=None, help="keep the MIDI and MusicXML here")
    parser.add_argument("--decoding", default=None, help="neural decoding settings JSON")
    parser.add_argument("--model", default=None, help="aligned-model folder (default: shipped)")
    parser.add_argument("--meter", default=None, help="meter-head folder (default: shipped)")
    parser.add_argument(
        "--backends", nargs="+", default=["neural", "classical"], choices=["neural", "classical"]
    )
    parser.add_argument(
        "--jitter",
        type=float,
        default=0.0,
        help="seconds of onset noise, with make demo's rubato (0: exactly as written)",
    )
    args = parser.parse_args()
    asap = Path(load_sources(args.data)["asap"])
    pieces = sorted({row["piece"] for row in load_index(args.data, args.split, required=True)})
    decoding = DecodeConfig.read(args.decoding) if args.decoding else None
    model = load_neural_model(args.model, decoding=decoding, meter=args.meter)
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    totals: dict[str, list[float]] = {backend: [] for backend in args.backends}
    for piece in pieces:
        truth = asap / piece / "xml_score.musicxml"
        name = piece.replace("/", "_")
        midi = folder / f"{name}.mid"
        count = render(truth, midi, args.qpm, args.jitter)
        residual = grid_residual(read_performance(midi))
        cells = []
        for backend in args.backends:
            out = folder / f"{name}-{backend}.musicxml"
            convert(midi, backend=backend, model=model if backend == "neural" else None).save(out)
            result = evaluate(truth, out)
            totals[backend].append([result[k] for k in KEYS])
            shape = read_score(out)
            signatures = sorted({f"{n}/{d}" for _, n, d in shape.time_signatures})
            cells.append(
                f"{backend} E_avg {result['e_avg']:5.2f} onset {result['onset_er']:5.1f}"
                f" ({', '.join(signatures)})"
            )
        print(f"{piece:44s} {count:5d} notes  residual {residual:.4f}  " + "  ".join(cells))
    for backend, rows in totals.items():
        mean = np.mean(rows, axis=0)
        print(
            f"mean over {len(rows)} pieces, {backend}: "
            + ", ".join(f"{k} {v:.2f}" for k, v in zip(KEYS, mean, strict=True))
        )


if __name__ == "__main__":
    main()
