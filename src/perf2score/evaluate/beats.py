"""Beat and downbeat F-measure of an estimated score against the ASAP annotations.

The estimated score's beats (from its measures and time signatures) are placed in
performance time through the same cluster DTW as the note matcher (``alignment``), run
between the score and the performance (its onsets in seconds), and then scored with
``mir_eval.beat.f_measure`` (±70 ms window) against the annotated beats and downbeats.
Beats follow ``score.meter.meter_levels`` (compound meters count dotted beats), as the ASAP
annotations do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import mir_eval
import numpy as np

from perf2score.errors import Perf2ScoreError
from perf2score.evaluate.alignment import map_times, time_map_anchors
from perf2score.midi.reading import Performance
from perf2score.score.attributes import SCORE_NOTE_DTYPE
from perf2score.score.meter import beat_quarters
from perf2score.score.reading import ScoreNotes

PERF_TICKS_PER_SECOND = 1000


@dataclass
class BeatResult:
    beat_f: float
    downbeat_f: float

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def read_annotations(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(beats_sec, downbeats_sec) from an ASAP ``*_annotations.txt`` file."""
    beats, downbeats = [], []
    try:
        with open(path) as handle:
            for line in handle:
                fields = line.rstrip("\n").split("\t")
                if len(fields) < 3:
                    continue
                time = float(fields[0])
                label = fields[2].split(",")[0]
                if label in ("b", "db", "bR"):
                    beats.append(time)
                if label == "db":
                    downbeats.append(time)
    except (OSError, ValueError) as exc:
        raise Perf2ScoreError(f"{path}: cannot read beat annotations ({exc})") from exc
    return np.array(sorted(beats)), np.array(sorted(downbeats))


def score_beats(score: ScoreNotes) -> tuple[np.ndarray, np.ndarray]:
    """(beats, downbeats) in quarters from the score's measures and time signatures."""
    tpq = score.ticks_per_quarter
    starts = [int(s) for s in score.measure_starts]
    if not starts:
        return np.zeros(0), np.zeros(0)
    end = int(score.notes["offset_ticks"].max()) if len(score.notes) else starts[-1]
    bounds = [*starts[1:], max(end, starts[-1])]
    signatures = sorted(score.time_signatures) or [(0, 4, 4)]
    sig_times = [t for t, _, _ in signatures]
    beats, downbeats = [], []
    for start, stop in zip(starts, bounds, strict=True):
        _, num, den = signatures[max(np.searchsorted(sig_times, start, side="right") - 1, 0)]
        beat = beat_quarters(num, den) * tpq
        nominal = Fraction(4 * num, den) * tpq
        # a pickup measure is right-aligned: its beats fall where the full bar's would
        first = (stop - start) - nominal if start == starts[0] and stop - start < nominal else 0
        k = 0
        while True:
            t = start + first + k * beat
            if t >= stop:
                break
            if t >= start:
                beats.append(float(t / tpq))
                if k == 0 and first == 0:
                    downbeats.append(float(t / tpq))
            k += 1
    return np.array(beats), np.array(downbeats)


def _performance_as_score(performance: Performance) -> ScoreNotes:
    notes = np.zeros(len(performance.notes), dtype=SCORE_NOTE_DTYPE)
    notes["pitch"] = performance.notes["pitch"]
    notes["onset_ticks"] = np.rint(performance.notes["onset_sec"] * PERF_TICKS_PER_SECOND)
    notes["offset_ticks"] = np.rint(performance.notes["offset_sec"] * PERF_TICKS_PER_SECOND)
    return ScoreNotes(notes, PERF_TICKS_PER_SECOND)


def evaluate_beats(
    score: ScoreNotes,
    performance: Performance,
    ref_beats_sec: np.ndarray,
    ref_downbeats_sec: np.ndarray,
) -> BeatResult:
    """Beat and downbeat F-measure (0–1) of ``score``'s meter placed on ``performance``."""
    beats_q, downbeats_q = score_beats(score)
    anchors_score, anchors_perf = time_map_anchors(_performance_as_score(performance), score)
    beats_sec = map_times(beats_q, anchors_score, anchors_perf)
    downbeats_sec = map_times(downbeats_q, anchors_score, anchors_perf)
    return BeatResult(
        beat_f=float(mir_eval.beat.f_measure(np.asarray(ref_beats_sec), np.unique(beats_sec))),
        downbeat_f=float(
            mir_eval.beat.f_measure(np.asarray(ref_downbeats_sec), np.unique(downbeats_sec))
        ),
    )
