"""Whole-process conversion time: perf2score (neural, classical) against MuseScore 3's import.

Each file is converted to MusicXML by ``perf2score -q convert F -o OUT --backend B`` and by
``mscore3 -o OUT F`` (MuseScore's MIDI import and MusicXML export, offscreen), alternating
the three commands in every round so that a change of machine load hits all of them; the
median of the rounds is reported with the ratios to MuseScore. Files: generated performances
(``convert_speed.generated``) of the given sizes, plus any ``--real`` MIDI files. MuseScore is
skipped, with a message, when ``mscore3`` is not installed.
Run: ``.venv/bin/python benchmarks/vs_musescore.py [--sizes 500 1000 5000 20000] [--real F ...]
[--rounds 3] [--beams 2 4]`` (``--beams``: the neural backend once per beam width, each
with its own ratio, instead of once with the shipped decoding)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import symusic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_speed import generated

PERF2SCORE = str(Path(sys.executable).with_name("perf2score"))


def write_performance(performance, path: Path) -> Path:
    score = symusic.Score(ttype="second")
    track = symusic.Track(ttype="second")
    for row in performance.notes:
        on, off = float(row["onset_sec"]), float(row["offset_sec"])
        track.notes.append(
            symusic.Note(on, off - on, int(row["pitch"]), int(row["velocity"]), ttype="second")
        )
    score.tracks.append(track)
    score.dump_midi(str(path))
    return path


def commands(
    source: Path, folder: Path, musescore: bool, beams: list[int] | None = None
) -> dict[str, list[str]]:
    """The commands timed, by tool name: perf2score neural (with the shipped decoding, or
    once per beam width of ``beams``: "perf2score beam K"), perf2score classical and, when
    ``musescore``, MuseScore 3."""
    out = str(folder / "out.musicxml")
    convert = [PERF2SCORE, "-q", "convert", str(source), "-o", out, "--backend"]
    tools = {}
    if beams:
        for beam in beams:
            tools[f"perf2score beam {beam}"] = [*convert, "neural", "--beam", str(beam)]
    else:
        tools["perf2score neural"] = [*convert, "neural"]
    tools["perf2score classical"] = [*convert, "classical"]
    if musescore:
        tools["MuseScore 3"] = ["mscore3", "-o", out, str(source)]
    return tools


def timed(command: list[str], home: str) -> float:
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": home}
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, env=environment, timeout=900)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr.decode()[-1000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[500, 1000, 5000, 20000])
    parser.add_argument("--real", nargs="*", default=[], help="performance MIDI files")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--beams",
        type=int,
        nargs="*",
        default=[],
        help="time the neural backend once per beam width (default: the shipped decoding)",
    )
    args = parser.parse_args()
    musescore = shutil.which("mscore3") is not None
    if not musescore:
        print("mscore3 is not installed (apt-get install musescore3): MuseScore is skipped")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        files = [
            (f"generated {n}", n, write_performance(generated(n), folder / f"g{n}.mid"))
            for n in args.sizes
        ]
        for name in args.real:
            from perf2score.midi import read_performance

            files.append((Path(name).name, len(read_performance(name).notes), Path(name)))
        names = list(commands(Path("x"), folder, musescore, args.beams))
        header = "file                         notes  " + "  ".join(
            f"{tool:>20s}" for tool in names
        )
        ratios = [tool for tool in names if tool.startswith("perf2score")]
        if musescore:
            header += "  " + "  ".join(
                f"{tool.removeprefix('perf2score ') + '/MS':>14s}" for tool in ratios
            )
        print(header)
        for label, notes, path in files:
            tools = commands(path, folder, musescore, args.beams)
            times: dict[str, list[float]] = {tool: [] for tool in tools}
            for _ in range(args.rounds):
                for tool, command in tools.items():
                    times[tool].append(timed(command, str(folder)))
            median = {tool: statistics.median(values) for tool, values in times.items()}
            line = f"{label:28s} {notes:6d}  " + "  ".join(
                f"{median[tool]:18.2f} s" for tool in tools
            )
            if musescore:
                ms = median["MuseScore 3"]
                line += "  " + "  ".join(f"{median[tool] / ms:14.2f}" for tool in ratios)
            print(line, flush=True)


if __name__ == "__main__":
    main()
