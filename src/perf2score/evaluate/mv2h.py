"""MV2H (McLeod & Steedman, ISMIR 2018) through pyMV2H, fed by our own MV2H-format writer.

The writer turns a ``ScoreNotes`` into MV2H's text format at a constant 120 quarter notes
per minute (500 ms per quarter), so both scores live on the same clock:

- ``Note pitch on onVal offVal voice`` (ms; ``on == onVal`` for a score; voices renumbered
  0..V-1; grace notes get 1 ms so note-value scoring never divides by zero);
- ``Tatum t`` on every sub-beat (``score.meter.meter_levels``: half a beat in simple
  meters, a third of the dotted beat in compound ones);
- ``Hierarchy bpb,sbpb tpsb a=al t`` at every measure whose meter or length changes, ``al``
  being the tatums of an incomplete (pickup) measure;
- ``Key tonic maj|min t`` from the key signatures.

pyMV2H's MIDI converter is not used: it takes the last tempo and the instrument as voice.
The non-aligned (DTW) mode follows pyMV2H's ``align_files`` (cost 1 − F1 of the pitch
multisets of onset clusters, gap penalty 1, anchors interpolated linearly), but the DTW is
vectorised and only the first optimal alignment is scored (pyMV2H enumerates all optimal
alignments and keeps the best, which explodes on long pieces; the reference calibration
numbers cap that enumeration at 100). The metric functions are pyMV2H's own, except the
harmony score, whose key-change bug is fixed (see ``_pymv2h_patches``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from pyMV2H.metrics.mv2h import mv2h as _pymv2h
from pyMV2H.utils.music import Music
from pyMV2H.utils.pojos import HIERARCHY, KEY, NOTE, TATUM

from perf2score.evaluate._pymv2h_patches import patched
from perf2score.evaluate.alignment import check_dtw_size
from perf2score.score.attributes import KEY_MODES
from perf2score.score.meter import meter_levels
from perf2score.score.reading import ScoreNotes

MS_PER_QUARTER = 500
GAP_PENALTY = 1.0


@dataclass
class MV2HResult:
    """MV2H and its five parts, each in [0, 1]."""

    multi_pitch: float
    voice: float
    meter: float
    value: float
    harmony: float
    mv2h: float

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def _ms(ticks, tpq: int):
    return np.rint(np.asarray(ticks, dtype=np.float64) * MS_PER_QUARTER / tpq).astype(np.int64)


def mv2h_lines(score: ScoreNotes) -> list[str]:
    """The score in MV2H's text format, one line per object."""
    tpq = score.ticks_per_quarter
    notes = score.notes
    voices = {v: k for k, v in enumerate(np.unique(notes["voice"]))}
    on = _ms(notes["onset_ticks"], tpq)
    off = np.maximum(_ms(notes["offset_ticks"], tpq), on + 1)
    lines = [
        f"Note {int(p)} {int(a)} {int(a)} {int(b)} {voices[v]}"
        for p, a, b, v in zip(notes["pitch"], on, off, notes["voice"], strict=True)
    ]
    end = int(notes["offset_ticks"].max()) if len(notes) else 0
    starts = [int(s) for s in score.measure_starts] or [0]
    bounds = [*starts[1:], max(end, starts[-1] + 1)]
    signatures = sorted(score.time_signatures) or [(0, 4, 4)]
    sig_times = [t for t, _, _ in signatures]
    previous = None
    for start, stop in zip(starts, bounds, strict=True):
        _, num, den = signatures[max(np.searchsorted(sig_times, start, side="right") - 1, 0)]
        bpb, sbpb, sub_quarters = meter_levels(num, den)
        step = sub_quarters * tpq  # ticks per tatum (exact)
        length = stop - start
        full = bpb * sbpb * step
        tatums = int(np.ceil(Fraction(length) / step)) if length > 0 else 0
        al = tatums if 0 < length < full and start == starts[0] else 0
        header = (bpb, sbpb, al, length == full)
        if header != previous:
            t_ms = int(_ms([start], tpq)[0])
            lines.append(f"Hierarchy {bpb},{sbpb} 1 a={al} {t_ms}")
            previous = header
        for k in range(tatums):
            lines.append(f"Tatum {int(_ms([start + k * step], tpq)[0])}")
    for tick, fifths, mode in score.key_signatures or [(0, 0, KEY_MODES["major"])]:
        minor = mode == KEY_MODES["minor"]
        tonic = (fifths * 7 + (9 if minor else 0)) % 12
        lines.append(f"Key {tonic} {'min' if minor else 'maj'} {int(_ms([tick], tpq)[0])}")
    return lines


def write_mv2h(score: ScoreNotes, path) -> None:
    """Write ``mv2h_lines(score)`` to a text file."""
    with open(path, "w") as handle:
        handle.write("\n".join(mv2h_lines(score)) + "\n")


def _music(lines: list[str]) -> Music:
    notes, tatums, keys, hierarchy = [], [], [], []
    for line in lines:
        kind, *rest = line.split(" ")
        if kind == "Note":
            notes.append(NOTE(*(int(x) for x in rest)))
        elif kind == "Tatum":
            tatums.append(TATUM(int(rest[0])))
        elif kind == "Key":
            keys.append(KEY(int(rest[0]), rest[1] == "maj", int(rest[2])))
        elif kind == "Hierarchy":
            bpb, sbpb = (int(x) for x in rest[0].split(","))
            hierarchy.append(
                HIERARCHY(bpb, sbpb, int(rest[1]), int(rest[2].removeprefix("a=")), int(rest[3]))
            )
    return Music(tatums, keys, notes, hierarchy)


def _cluster_pitch_counts(notes: list) -> tuple[np.ndarray, np.ndarray]:
    """Distinct onsets (C,) and a (C, 128) pitch-count matrix."""
    on = np.array([n.on for n in notes])
    times, inverse = np.unique(on, return_inverse=True)
    counts = np.zeros((len(times), 128))
    np.add.at(counts, (inverse, [n.pitch for n in notes]), 1.0)
    return times, counts


def _alignment(gt_counts: np.ndarray, est_counts: np.ndarray) -> list[int]:
    """pyMV2H's DTW: for each gt cluster, the index of its est cluster or -1."""
    check_dtw_size(len(gt_counts), len(est_counts))
    # multiset intersection sizes: sum_p min(a_p, b_p) = sum_k [a_p >= k][b_p >= k]
    levels = int(max(gt_counts.max(initial=0), est_counts.max(initial=0)))
    tp = sum(
        (gt_counts >= k).astype(np.float32) @ (est_counts >= k).astype(np.float32).T
        for k in range(1, levels + 1)
    )  # (G, E)
    size = gt_counts.sum(1)[:, None] + est_counts.sum(1)[None, :]
    dist = np.where(tp > 0, 1.0 - 2.0 * tp / np.maximum(size, 1.0), 1.0)
    n, m = dist.shape
    D = np.full((n + 1, m + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(1, n + 1):
        row = np.full(m + 1, np.inf)
        diag = D[i - 1, :-1] + dist[i - 1]
        up = D[i - 1, 1:] + GAP_PENALTY
        row[1:] = np.minimum(diag, up)
        # left moves: row[j] = min(row[j], row[j-1] + gap), a running-min scan
        offsets = GAP_PENALTY * np.arange(m + 1)
        row = np.minimum.accumulate(row - offsets) + offsets
        D[i] = row
    alignment = [-1] * n
    i, j = n, m
    while i > 0 and j > 0:
        if D[i, j] == D[i - 1, j - 1] + dist[i - 1, j - 1]:
            alignment[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif D[i, j] == D[i - 1, j] + GAP_PENALTY:
            i -= 1
        else:
            j -= 1
    return alignment


def _aligned(est: Music, gt: Music) -> Music:
    """The estimate with its times mapped onto the ground truth's clock."""
    gt_times, gt_counts = _cluster_pitch_counts(gt.__notes__)
    est_times, est_counts = _cluster_pitch_counts(est.__notes__)
    alignment = _alignment(gt_counts, est_counts)
    pairs = [(est_times[j], gt_times[i]) for i, j in enumerate(alignment) if j >= 0]
    if not pairs:
        return est
    xs = np.array([p[0] for p in pairs], dtype=np.float64)
    ys = np.array([p[1] for p in pairs], dtype=np.float64)

    def convert(t: int) -> int:
        if len(xs) == 1:
            return int(np.rint(t - xs[0] + ys[0]))
        if t <= xs[0]:
            a, b = 0, 1
        elif t >= xs[-1]:
            a, b = len(xs) - 2, len(xs) - 1
        else:
            return int(np.rint(np.interp(t, xs, ys)))
        rate = (ys[b] - ys[a]) / (xs[b] - xs[a]) if xs[b] != xs[a] else 1.0
        return int(np.rint(ys[a] + rate * (t - xs[a])))

    cache: dict[int, int] = {}

    def c(t: int) -> int:
        if t not in cache:
            cache[t] = convert(t)
        return cache[t]

    return Music(
        [TATUM(c(x.time)) for x in est.__tatums__],
        [KEY(k.tonic, k.is_major, c(k.time)) for k in est.__keys__],
        [NOTE(n.pitch, c(n.on), c(n.on_val), c(n.off_val), n.voice) for n in est.__notes__],
        [HIERARCHY(h.bpb, h.sbpb, h.tpsb, h.al, c(h.time)) for h in est.__hierarchy__],
    )


def evaluate_mv2h(gt: ScoreNotes, est: ScoreNotes, align: bool = True) -> MV2HResult:
    """MV2H of ``est`` against ``gt`` (non-aligned DTW mode when ``align``)."""
    gt_music = _music(mv2h_lines(gt))
    est_music = _music(mv2h_lines(est))
    if align:
        est_music = _aligned(est_music, gt_music)
    with patched():
        result = _pymv2h(gt_music, est_music)
    return MV2HResult(
        multi_pitch=float(result.multi_pitch),
        voice=float(result.voice),
        meter=float(result.meter),
        value=float(result.note_value),
        harmony=float(result.harmony),
        mv2h=float(result.mv2h),
    )
