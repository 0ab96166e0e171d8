"""Score-to-score note matching for the MUSTER-style error rates.

The reference tool (Nakamura's MUSTER) matches the notes of a ground-truth and an estimated
score with an HMM score-to-score aligner plus an error-detection and re-alignment pass. We
use a deterministic three-step matcher instead:

1. **Coarse time map.** Both scores are cut into onset clusters (notes sharing an onset).
   Dynamic time warping over the two cluster sequences, with the Dice distance between
   their pitch sets as local cost, gives a monotone path; the path cells whose clusters
   share at least half their pitches (one per cluster on each side) become anchors of a
   piecewise-linear map from estimated score time to ground-truth score time. This absorbs
   global tempo scale (e.g. all values halved), drift and whole inserted sections (a
   performed repeat transcribed twice).
2. **Same-pitch matching.** For each pitch, ground-truth and mapped estimated onsets are
   matched monotonically by dynamic programming: a pair costs its time distance, leaving a
   note unmatched costs half the tolerance, so notes pair up when they are closer than
   ``time_tolerance`` quarters.
3. **Pitch errors.** Notes left over on both sides are paired when they lie within
   ``pitch_error_time_tolerance`` quarters and ``pitch_error_semitones`` semitones: such a
   pair is a matched note with a wrong pitch.

Identical scores always match completely (each cluster is its own anchor at distance 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perf2score.errors import Perf2ScoreError
from perf2score.score.reading import ScoreNotes

# Calibrated on the MuseScore 3 calibration set (`perf2score calibrate`): the values that
# bring our mean rates closest to the reference tool's (see README, "Agreement").
DEFAULT_TIME_TOLERANCE = 0.32  # quarters of ground-truth time
DEFAULT_PITCH_ERROR_TIME_TOLERANCE = 0.3  # quarters
DEFAULT_PITCH_ERROR_SEMITONES = 5
ANCHOR_MIN_DICE = 0.5
# DTW keeps an (N, M) matrix of onset clusters: cap it (~1 GB) instead of exhausting memory
MAX_DTW_CELLS = 120_000_000


def check_dtw_size(n: int, m: int) -> None:
    """Raise ``Perf2ScoreError`` when an (n, m) cluster alignment would not fit in memory."""
    if n * m > MAX_DTW_CELLS:
        raise Perf2ScoreError(
            f"too large to align: {n} x {m} onset clusters (at most {MAX_DTW_CELLS:,} pairs);"
            " split the piece into movements"
        )


@dataclass
class NoteMatching:
    """Result of matching two scores' notes.

    Attributes:
        gt_index: (K,) indices of matched notes in the ground truth's ``notes``.
        est_index: (K,) indices of their partners in the estimate's ``notes``.
        missing: indices of unmatched ground-truth notes.
        extra: indices of unmatched estimated notes.
    """

    gt_index: np.ndarray
    est_index: np.ndarray
    missing: np.ndarray
    extra: np.ndarray


def _clusters(onsets: np.ndarray, pitches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique onsets (C,) and a (C, 128) 0/1 pitch-set matrix."""
    times, inverse = np.unique(onsets, return_inverse=True)
    sets = np.zeros((len(times), 128), dtype=np.float32)
    sets[inverse, np.clip(pitches, 0, 127)] = 1.0
    return times, sets


def dtw_path(cost: np.ndarray) -> list[tuple[int, int]]:
    """Classic DTW (steps (1,1), (1,0), (0,1)) over a (N, M) cost matrix.

    Each row is computed in vectorised form: with m_j = min(D[i-1, j-1], D[i-1, j]) the row
    recurrence x_j = c_j + min(m_j, x_{j-1}) unrolls to x_j = C_j + min_{k<=j}(m_k - C_{k-1})
    where C is the running sum of the row's costs.
    """
    n, m = cost.shape
    D = np.empty((n, m), dtype=np.float64)
    D[0] = np.cumsum(cost[0])
    for i in range(1, n):
        prev = D[i - 1]
        best_above = np.empty(m)
        best_above[0] = prev[0]
        best_above[1:] = np.minimum(prev[1:], prev[:-1])
        running = np.cumsum(cost[i])
        shifted = np.concatenate(([0.0], running[:-1]))
        D[i] = running + np.minimum.accumulate(best_above - shifted)
    path = [(n - 1, m - 1)]
    i, j = n - 1, m - 1
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            options = (D[i - 1, j - 1], D[i - 1, j], D[i, j - 1])
            step = int(np.argmin(options))
            if step == 0:
                i, j = i - 1, j - 1
            elif step == 1:
                i -= 1
            else:
                j -= 1
        path.append((i, j))
    path.reverse()
    return path


def time_map_anchors(gt: ScoreNotes, est: ScoreNotes) -> tuple[np.ndarray, np.ndarray]:
    """Anchor pairs (est quarters, gt quarters), strictly increasing in both."""
    gt_times, gt_sets = _clusters(gt.notes["onset_ticks"] / gt.ticks_per_quarter, gt.notes["pitch"])
    est_times, est_sets = _clusters(
        est.notes["onset_ticks"] / est.ticks_per_quarter, est.notes["pitch"]
    )
    check_dtw_size(len(gt_times), len(est_times))
    common = gt_sets @ est_sets.T  # (Cg, Ce) shared pitch counts
    sizes = gt_sets.sum(1)[:, None] + est_sets.sum(1)[None, :]
    dice = 2.0 * common / np.maximum(sizes, 1.0)
    path = dtw_path(1.0 - dice)
    # keep good cells, the best one per gt cluster, then per est cluster
    best_for_gt: dict[int, tuple[float, int]] = {}
    for i, j in path:
        if dice[i, j] >= ANCHOR_MIN_DICE and dice[i, j] > best_for_gt.get(i, (-1.0, -1))[0]:
            best_for_gt[i] = (float(dice[i, j]), j)
    best_for_est: dict[int, tuple[float, int]] = {}
    for i, (score, j) in best_for_gt.items():
        if score > best_for_est.get(j, (-1.0, -1))[0]:
            best_for_est[j] = (score, i)
    pairs = sorted((i, j) for j, (_, i) in best_for_est.items())
    if not pairs:
        return np.array([est_times[0]]), np.array([gt_times[0]])
    gi = np.array([p[0] for p in pairs])
    ej = np.array([p[1] for p in pairs])
    return est_times[ej], gt_times[gi]


def map_times(times: np.ndarray, anchors_est: np.ndarray, anchors_gt: np.ndarray) -> np.ndarray:
    """Map estimated times (quarters) into ground-truth time through the anchors."""
    if len(anchors_est) == 1:
        return times - anchors_est[0] + anchors_gt[0]
    span_est = anchors_est[-1] - anchors_est[0]
    slope = (anchors_gt[-1] - anchors_gt[0]) / span_est if span_est > 0 else 1.0
    mapped = np.interp(times, anchors_est, anchors_gt)
    before = times < anchors_est[0]
    after = times > anchors_est[-1]
    mapped[before] = anchors_gt[0] + (times[before] - anchors_est[0]) * slope
    mapped[after] = anchors_gt[-1] + (times[after] - anchors_est[-1]) * slope
    return mapped


def _segments(a: np.ndarray, b: np.ndarray, tolerance: float):
    """Split two sorted time lists into independent chunks (no pair can cross a chunk)."""
    events = sorted([(t, 0, k) for k, t in enumerate(a)] + [(t, 1, k) for k, t in enumerate(b)])
    chunk_a: list[int] = []
    chunk_b: list[int] = []
    last = None
    for t, side, k in events:
        if last is not None and t - last > tolerance:
            if chunk_a and chunk_b:
                yield chunk_a, chunk_b
            chunk_a, chunk_b = [], []
        (chunk_a if side == 0 else chunk_b).append(k)
        last = t
    if chunk_a and chunk_b:
        yield chunk_a, chunk_b


def _monotone_match(cost: np.ndarray, gap: float) -> list[tuple[int, int]]:
    """Needleman-Wunsch over an (n, m) pair-cost matrix (inf = forbidden), gap per note."""
    n, m = cost.shape
    D = np.full((n + 1, m + 1), np.inf)
    D[0, :] = gap * np.arange(m + 1)
    D[:, 0] = gap * np.arange(n + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            D[i, j] = min(
                D[i - 1, j - 1] + cost[i - 1, j - 1], D[i - 1, j] + gap, D[i, j - 1] + gap
            )
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        if D[i, j] == D[i - 1, j - 1] + cost[i - 1, j - 1]:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif D[i, j] == D[i - 1, j] + gap:
            i -= 1
        else:
            j -= 1
    pairs.reverse()
    return pairs


def _match_by_time(
    gt_times: np.ndarray,
    est_times: np.ndarray,
    tolerance: float,
    extra_cost: np.ndarray | None = None,
) -> list[tuple[int, int]]:
    """Monotone matching of two sorted time lists (pairs beyond ``tolerance`` never match)."""
    pairs: list[tuple[int, int]] = []
    for chunk_a, chunk_b in _segments(gt_times, est_times, tolerance):
        ia = np.array(chunk_a)
        ib = np.array(chunk_b)
        cost = np.abs(gt_times[ia][:, None] - est_times[ib][None, :])
        if extra_cost is not None:
            cost = cost + extra_cost[np.ix_(ia, ib)]
        cost[cost > tolerance] = np.inf
        if len(ia) == 1 and len(ib) == 1:
            local = [(0, 0)] if np.isfinite(cost[0, 0]) else []
        else:
            local = _monotone_match(cost, tolerance / 2.0)
        pairs.extend((int(ia[x]), int(ib[y])) for x, y in local if np.isfinite(cost[x, y]))
    return pairs


def _match_same_pitch(
    gt_t: np.ndarray,
    est_t: np.ndarray,
    gt_pitch: np.ndarray,
    est_pitch: np.ndarray,
    tolerance: float,
) -> tuple[list[int], list[int]]:
    """Step 2: per pitch, monotone matching of gt and mapped est onsets."""
    gt_parts: list[int] = []
    est_parts: list[int] = []
    for pitch in np.intersect1d(gt_pitch, est_pitch):
        gi = np.flatnonzero(gt_pitch == pitch)
        ei = np.flatnonzero(est_pitch == pitch)
        gi = gi[np.argsort(gt_t[gi], kind="stable")]
        ei = ei[np.argsort(est_t[ei], kind="stable")]
        for a, b in _match_by_time(gt_t[gi], est_t[ei], tolerance):
            gt_parts.append(int(gi[a]))
            est_parts.append(int(ei[b]))
    return gt_parts, est_parts


def match_notes(
    gt: ScoreNotes,
    est: ScoreNotes,
    time_tolerance: float = DEFAULT_TIME_TOLERANCE,
    pitch_error_time_tolerance: float = DEFAULT_PITCH_ERROR_TIME_TOLERANCE,
    pitch_error_semitones: int = DEFAULT_PITCH_ERROR_SEMITONES,
) -> NoteMatching:
    """Match the notes of a ground-truth and an estimated score (see the module docstring)."""
    if len(gt) == 0 or len(est) == 0:
        return NoteMatching(
            np.zeros(0, int), np.zeros(0, int), np.arange(len(gt)), np.arange(len(est))
        )
    anchors_est, anchors_gt = time_map_anchors(gt, est)
    gt_t = gt.notes["onset_ticks"] / gt.ticks_per_quarter
    est_t = map_times(est.notes["onset_ticks"] / est.ticks_per_quarter, anchors_est, anchors_gt)
    gt_pitch = gt.notes["pitch"].astype(int)
    est_pitch = est.notes["pitch"].astype(int)

    gt_parts, est_parts = _match_same_pitch(gt_t, est_t, gt_pitch, est_pitch, time_tolerance)

    gt_left = np.setdiff1d(np.arange(len(gt)), gt_parts)
    est_left = np.setdiff1d(np.arange(len(est)), est_parts)
    if len(gt_left) and len(est_left) and pitch_error_semitones > 0:
        gt_left = gt_left[np.argsort(gt_t[gt_left], kind="stable")]
        est_left = est_left[np.argsort(est_t[est_left], kind="stable")]
        pitch_gap = np.abs(gt_pitch[gt_left][:, None] - est_pitch[est_left][None, :])
        extra = np.where(pitch_gap <= pitch_error_semitones, 1e-3 * pitch_gap, np.inf)
        for a, b in _match_by_time(
            gt_t[gt_left], est_t[est_left], pitch_error_time_tolerance, extra_cost=extra
        ):
            gt_parts.append(gt_left[a])
            est_parts.append(est_left[b])

    gt_index = np.asarray(gt_parts, dtype=int)
    est_index = np.asarray(est_parts, dtype=int)
    order = np.lexsort((gt.notes["pitch"][gt_index], gt.notes["onset_ticks"][gt_index]))
    gt_index, est_index = gt_index[order], est_index[order]
    missing = np.setdiff1d(np.arange(len(gt)), gt_index)
    extra_notes = np.setdiff1d(np.arange(len(est)), est_index)
    return NoteMatching(gt_index, est_index, missing, extra_notes)
