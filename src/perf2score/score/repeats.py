"""Repeats the performer played: a section played twice in a row, written once with repeat signs.

A score notates an exposition or a dance's halves once, between repeat bar lines, and the
performer plays them twice; a transcription that writes out both passes is twice as long
to read and, against the notated score, every note of the second pass is an extra note.
Here the performed notes are cut into onset clusters (chords: notes within
``CHORD_SECONDS`` of the one before) and each cluster is named by its set of pitches; the
sequence of clusters is aligned with itself at the lags where long runs of clusters recur
(a local alignment in a band around each lag, so that notes added or left out on one pass
do not break it). A section counts as repeated when it is long enough, recurs nearly note for
note, and the second pass begins right after the first, or after a short first ending that
the second pass replaces with its own (``find_repeats``' thresholds). A section the composer
wrote out twice note for note is folded too: the performance cannot tell it from a repeat.

The repeats are then folded in the assembled score (``fold_repeats``): the measures of the
second pass are taken out, the section gets a forward repeat bar line at its first measure
(none at the very beginning) and a backward one at its last, and a first ending, if any,
is marked "1." and the measures that follow the second pass "2.".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perf2score.score.assembly import AssembledScore

CHORD_SECONDS = 0.035  # a note this close to the one before belongs to its cluster
NGRAM = 4  # clusters in a row that vote for a lag
MAX_OCCURRENCES = 24  # an n-gram recurring more often (a figure) does not vote
BAND = 24  # clusters the second pass may drift from the lag (added or missing notes)
CANDIDATE_LAGS = 6  # lags aligned per search
MIN_VOTES = 8  # recurring n-grams (smoothed over nearby lags) a lag needs to be a candidate
MAX_REPEATS = 4
MIN_JACCARD = 0.5  # shared pitches over all pitches of two clusters that count as the same
REGION_DENSITY = 0.5  # share of clusters recurring by name near a lag where it is aligned
MAX_REGIONS = 3  # stretches aligned per lag


@dataclass(frozen=True)
class PlayedRepeat:
    """One repeat in performed time (seconds): the section was played from ``start`` to
    ``first_end`` (where its first ending, if any, begins), then again from ``second``
    (the end of the first ending) to ``second_end`` (the first note after the second
    pass); ``matched``: share of the section's clusters found again."""

    start: float
    first_end: float
    second: float
    second_end: float
    matched: float

    @property
    def has_ending(self) -> bool:
        """A first ending lies between the two passes."""
        return self.second > self.first_end


def onset_clusters(onset_sec: np.ndarray, pitch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cluster per note (N,) in onset order of ``onset_sec``, pitch set per cluster (C, 2)
    as two 64-bit masks of MIDI pitches 0-63 and 64-127): clusters are runs of notes each
    within ``CHORD_SECONDS`` of the one before."""
    order = np.argsort(onset_sec, kind="stable")
    times = np.asarray(onset_sec, dtype=np.float64)[order]
    new = np.ones(len(times), dtype=bool)
    new[1:] = np.diff(times) > CHORD_SECONDS
    cluster_sorted = np.cumsum(new) - 1
    cluster = np.empty(len(times), dtype=np.int64)
    cluster[order] = cluster_sorted
    pitches = np.clip(np.asarray(pitch, dtype=np.int64)[order], 0, 127)
    masks = np.zeros((int(cluster_sorted[-1]) + 1 if len(times) else 0, 2), dtype=np.uint64)
    bits = np.left_shift(np.uint64(1), (pitches % 64).astype(np.uint64))
    np.bitwise_or.at(masks, (cluster_sorted, pitches // 64), bits)
    return cluster, masks


def candidate_lags(names: np.ndarray, min_lag: int, count: int = CANDIDATE_LAGS) -> list[int]:
    """The lags (in clusters, at least ``min_lag``) at which most runs of ``NGRAM`` cluster
    names recur, best first; votes within ``BAND`` // 4 of a lag count for it."""
    n = len(names) - NGRAM + 1
    if n <= min_lag:
        return []
    grams: dict[tuple[int, ...], list[int]] = {}
    for i in range(n):
        grams.setdefault(tuple(names[i : i + NGRAM].tolist()), []).append(i)
    votes = np.zeros(len(names) + 1)
    for positions in grams.values():
        if 1 < len(positions) <= MAX_OCCURRENCES:
            p = np.array(positions)
            lags = (p[None, :] - p[:, None])[np.triu_indices(len(p), 1)]
            np.add.at(votes, lags[lags >= min_lag], 1.0)
    width = max(BAND // 4, 1)
    smooth = np.convolve(votes, np.ones(2 * width + 1), mode="same")
    lags: list[int] = []
    for lag in np.argsort(-smooth, kind="stable").tolist():
        if smooth[lag] < MIN_VOTES or len(lags) == count:
            break
        if all(abs(lag - other) > 2 * width for other in lags):
            lags.append(int(lag))
    return lags


@dataclass(frozen=True)
class _Aligned:
    i0: int  # first pass: clusters i0..i1 (inclusive)
    i1: int
    j0: int  # second pass: clusters j0..j1
    j1: int
    matches: int  # clusters of the first pass matched by a similar one
    exact: int  # ... by one with the very same pitches


def lag_regions(
    names: np.ndarray, lag: int, span: int, band: int = BAND, most: int = MAX_REGIONS
) -> list[tuple[int, int]]:
    """The rows worth aligning at ``lag``, longest first (at most ``most``): stretches where
    at least ``REGION_DENSITY`` of the clusters, averaged over ``span`` clusters, recur with
    the same name within ``band`` of the lag, each at least ``span`` // 2 clusters long and
    widened by ``span`` on each side ((first, stop) cluster indices). None qualifies where no
    section can recur at that lag, and the alignment is not run."""
    n = len(names)
    rows = np.arange(n)
    hit = np.zeros(n, dtype=bool)
    for delta in range(-band, band + 1):
        later = rows + lag + delta
        valid = (later > rows) & (later < n)
        hit[valid] |= names[rows[valid]] == names[later[valid]]
    density = np.convolve(hit, np.ones(span) / span, mode="same")
    good = np.flatnonzero(density >= REGION_DENSITY)
    if not len(good):
        return []
    runs = np.split(good, np.flatnonzero(np.diff(good) > 1) + 1)
    runs = sorted((r for r in runs if len(r) >= span // 2), key=len, reverse=True)[:most]
    return [(max(int(r[0]) - span, 0), min(int(r[-1]) + span + 1, n)) for r in runs]


def align_at_lag(
    masks: np.ndarray,
    lag: int,
    used: np.ndarray | None = None,
    band: int = BAND,
    rows: tuple[int, int] | None = None,
) -> _Aligned | None:
    """The best local alignment of the clusters' pitch sets ``masks`` (C, 2) with
    themselves ``lag`` later, within ``band`` clusters of that lag: +1 for a similar
    cluster, -1 for another one or a skipped one (on either side); clusters ``used`` (C,)
    match nothing; only the first-pass clusters ``rows`` (first, stop) are aligned (default:
    all). None when nothing aligns."""
    n = len(masks)
    used = np.zeros(n, dtype=bool) if used is None else used
    lo, hi = rows if rows is not None else (0, n)
    deltas = np.arange(-band, band + 1)
    width = len(deltas)
    score = np.zeros(width)
    best, best_at = 0.0, None
    # per row and lag offset: the move that led there (0 start, 1 diagonal, 2 from the
    # offset below, 3 from the one above), where the alignment started, its matches so far
    back = np.zeros((hi - lo, width), dtype=np.int8)
    start_of = np.full((hi - lo, width), -1, dtype=np.int64)
    matches = np.zeros((hi - lo, width), dtype=np.int64)
    exacts = np.zeros((hi - lo, width), dtype=np.int64)
    previous_start = np.full(width, -1, dtype=np.int64)
    previous_matches = np.zeros(width, dtype=np.int64)
    previous_exact = np.zeros(width, dtype=np.int64)
    columns = np.arange(width)
    # every comparison of the region at once: row i against clusters i + lag + delta
    first = np.arange(lo, hi)[:, None]  # (R, 1)
    later = first + lag + deltas[None, :]  # (R, W)
    in_range = (later > first) & (later < n)
    safe = np.where(in_range, later, 0)
    a, b = masks[first[:, 0]][:, None, :], masks[safe]  # (R, 1, 2), (R, W, 2)
    both = np.bitwise_count(a & b).sum(axis=2)
    either = np.bitwise_count(a | b).sum(axis=2)
    similar_all = in_range & (both >= MIN_JACCARD * np.maximum(either, 1))
    similar_all &= ~used[safe] & ~used[first]
    identical_all = similar_all & (a == b).all(axis=2)
    for i in range(lo, hi):
        valid = in_range[i - lo]
        same, identical = similar_all[i - lo], identical_all[i - lo]
        step = np.where(same, 1.0, -1.0)
        diagonal = score + step
        # one cluster of the second pass skipped (delta grows) / one of the first (shrinks)
        grow = np.full(width, -np.inf)
        grow[1:] = score[:-1] + step[1:] - 1.0
        shrink = np.full(width, -np.inf)
        shrink[:-1] = score[1:] - 1.0
        options = np.stack([np.zeros(width), diagonal, grow, shrink])
        choice = np.argmax(options, axis=0)
        new = np.where(valid, options[choice, columns], 0.0)
        choice = np.where(valid & (new > 0), choice, 0)
        source = columns + np.where(choice == 2, -1, np.where(choice == 3, 1, 0))
        source = np.clip(source, 0, width - 1)
        carried = (choice != 0) & (score[source] > 0)  # continues an alignment
        start = np.where(carried, previous_start[source], i)
        count = np.where(carried, previous_matches[source], 0) + (same & (choice != 3))
        exact = np.where(carried, previous_exact[source], 0) + (identical & (choice != 3))
        row = i - lo
        back[row], start_of[row], matches[row], exacts[row] = choice, start, count, exact
        score, previous_start, previous_matches, previous_exact = new, start, count, exact
        top = int(np.argmax(score))
        if score[top] > best:
            best, best_at = float(score[top]), (i, top)
    if best_at is None:
        return None
    i1, d = best_at
    i0 = int(start_of[i1 - lo, d])
    j1 = i1 + lag + int(deltas[d])
    # where the second pass began: walk the path back to its first cell
    i, k = i1, d
    while i > i0:
        move = back[i - lo, k]
        k = k - 1 if move == 2 else k + 1 if move == 3 else k
        i -= 1
    j0 = i0 + lag + int(deltas[k])
    return _Aligned(i0, i1, j0, j1, int(matches[i1 - lo, d]), int(exacts[i1 - lo, d]))


def find_repeats(
    onset_sec: np.ndarray,
    pitch: np.ndarray,
    min_clusters: int = 48,
    min_seconds: float = 12.0,
    min_match: float = 0.94,
    min_exact: float = 0.8,
    max_ending: float = 0.1,
    max_overlap: int = BAND // 2,
) -> list[PlayedRepeat]:
    """The sections played twice in a row in the notes ``onset_sec`` (N,) seconds and
    ``pitch`` (N,) MIDI pitches (see the module docstring), in order of time, at most
    ``MAX_REPEATS``, none overlapping another. A section counts when it spans at least
    ``min_clusters`` clusters and ``min_seconds`` seconds, ``min_match`` of its clusters
    find a similar one in the second pass and ``min_exact`` the very same pitches, a first
    ending takes at most ``max_ending`` of its clusters and the passes overlap by at most
    ``max_overlap`` clusters (more: a figure repeated over and over, not a section).
    The defaults were chosen on the training performances (README, "Repeats")."""
    onset_sec = np.asarray(onset_sec, dtype=np.float64)
    if len(onset_sec) < 2 * min_clusters:
        return []
    cluster, masks = onset_clusters(onset_sec, pitch)
    names = np.unique(masks, axis=0, return_inverse=True)[1].reshape(-1)
    starts = np.full(len(names), np.inf)
    np.minimum.at(starts, cluster, onset_sec)
    found: list[PlayedRepeat] = []
    used = np.zeros(len(names), dtype=bool)
    attempts = (
        (lag, region)
        for lag in candidate_lags(names, min_clusters)
        for region in lag_regions(names, lag, min_clusters)
    )
    for lag, region in attempts:
        if len(found) == MAX_REPEATS:
            break
        aligned = align_at_lag(masks, lag, used, rows=region)
        if aligned is None:
            continue
        aligned_length = aligned.i1 - aligned.i0 + 1
        overlap = max(aligned.i1 - aligned.j0 + 1, 0)
        first_last = aligned.i1 - overlap  # the passes' ends met: the first ends before
        length = first_last - aligned.i0 + 1
        ending = aligned.j0 - first_last - 1
        if (
            length < min_clusters
            or overlap > max_overlap
            or aligned.matches < min_match * aligned_length
            or aligned.exact < min_exact * aligned_length
            or ending > max_ending * length
        ):
            continue
        end = starts[aligned.j1 + 1] if aligned.j1 + 1 < len(names) else onset_sec.max() + 1.0
        repeat = PlayedRepeat(
            start=float(starts[aligned.i0]),
            first_end=float(starts[first_last + 1]),
            second=float(starts[aligned.j0]),
            second_end=float(end),
            matched=aligned.matches / aligned_length,
        )
        if repeat.first_end - repeat.start < min_seconds:
            continue
        used[aligned.i0 : aligned.j1 + 1] = True
        found.append(repeat)
    return sorted(found, key=lambda r: r.start)


def fold_repeats(
    score: AssembledScore,
    repeats: list[PlayedRepeat],
    note_seconds: np.ndarray,
    note_ticks: np.ndarray,
) -> list[PlayedRepeat]:
    """Write each played repeat once, in place (see the module docstring): ``note_seconds``
    and ``note_ticks`` (K,) are the performed onsets and the score onsets (ticks) of the
    score's timed notes, which place each repeat's bounds at their nearest bar lines. A
    repeat whose second pass spans less than half or more than twice the section's measures
    (a bound far from its bar line; the decoder may also write one pass at another value
    scale, which alone is no reason to leave it) is left written out, as is one that would
    overlap a repeat folded already. Returns the repeats folded."""
    order = np.argsort(note_seconds, kind="stable")
    seconds, ticks = np.asarray(note_seconds)[order], np.asarray(note_ticks)[order]
    folded = []
    for repeat in sorted(repeats, key=lambda r: r.start, reverse=True):  # later ones first
        bars = _bar_lines(score)
        a, e, b, c = (
            _nearest_bar(bars, seconds, ticks, t)
            for t in (repeat.start, repeat.first_end, repeat.second, repeat.second_end)
        )
        section = e - a
        if not (0 <= a < e <= b < c) or not section / 2 <= c - b <= 2 * section:
            continue
        if any(m.repeat_start or m.repeat_end or m.ending for m in score.measures[a:c]):
            continue
        _cut_measures(score, b, c)
        if a > 0:
            score.measures[a].repeat_start = True
        score.measures[b - 1].repeat_end = True
        for m in range(e, b):
            score.measures[m].ending = 1
        for m in range(b, min(b + (b - e), len(score.measures))):
            if score.measures[m].repeat_start or score.measures[m].ending:
                break  # the next repeat begins: the second ending stops short of it
            score.measures[m].ending = 2
        folded.append(repeat)
    return folded[::-1]


def _bar_lines(score: AssembledScore) -> np.ndarray:
    """(M + 1,) the ticks of every bar line, the end of the last measure included."""
    starts = [m.start for m in score.measures]
    return np.array([*starts, score.end], dtype=np.int64)


def _nearest_bar(bars: np.ndarray, seconds: np.ndarray, ticks: np.ndarray, t: float) -> int:
    """The index of the bar line nearest the score onset of the first note played at or
    after ``t`` seconds (the last bar line when none is)."""
    k = int(np.searchsorted(seconds, t - 1e-6))
    if k >= len(seconds):
        return len(bars) - 1
    return int(np.argmin(np.abs(bars - ticks[k])))


def _cut_measures(score: AssembledScore, first: int, stop: int) -> None:
    """Take measures ``first`` .. ``stop`` - 1 and their notes out of ``score``, in place:
    later measures and notes move back, notes sounding into the cut end at its start."""
    begin = score.measures[first].start
    end = score.measures[stop].start if stop < len(score.measures) else score.end
    shift = end - begin
    kept = []
    for chord in score.chords:
        if chord.onset >= end:
            chord.onset -= shift
        elif chord.onset >= begin:
            continue
        elif chord.onset + chord.duration > begin:
            chord.duration = begin - chord.onset
        kept.append(chord)
    score.chords[:] = kept
    del score.measures[first:stop]
    for measure in score.measures[first:]:
        measure.start -= shift
