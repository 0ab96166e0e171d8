"""Bars laid on downbeats tracked in performance time (``neural.downbeats``); off by default.

The decoder's score time slips (a 16th too many in one bar) and changes scale from window
to window, so bar lines laid on the decoded onsets need a change of phase at every slip.
Here each tracked bar becomes one measure: the piece's value scale against the tracked
bars is the nice ratio (½, 1, 2) most of them need (``piece_ratio``); a tracked bar that
holds several bars of decoded time is cut at the decoded onsets nearest its equal division
(``even_marks``); within a bar the decoded intervals are kept, and what is left over or
missing (a slip of up to ``MAX_SLIP`` of a bar) is taken out of, or added to, the one
interval whose played length disagrees most with it (``BarMap``); a larger mismatch leaves
the measure irregular. Durations follow the same map. Measured on validation (settings.py,
README): more downbeats right, but about a hundred irregular measures per piece.
Shapes: N notes, D tracked downbeats.
"""

from __future__ import annotations

import numpy as np

from perf2score.score.barring import BAR_TICKS_PER_QUARTER, assign_measures

SHORTEST = BAR_TICKS_PER_QUARTER // 8  # a 32nd: the value of a note mapped to none
ON_NOTE_SECONDS = 0.07  # a tracked downbeat this near a played onset falls on that note


def downbeat_marks(
    onsets: np.ndarray, seconds: np.ndarray, downbeats: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(marks, their downbeats): the decoded onset (ticks, increasing) at each tracked
    downbeat ``downbeats`` (D,) (seconds): the onset of a note played within
    ``ON_NOTE_SECONDS``, else interpolated between the notes' (``seconds``, ``onsets``)
    (N,); downbeats where decoded time does not move on are left out."""
    order = np.argsort(seconds, kind="stable")
    times = seconds[order]
    ticks = np.maximum.accumulate(onsets[order].astype(float))
    marks = np.interp(downbeats, times, ticks)
    if len(times):  # a downbeat played on a note: that note's decoded onset exactly
        at = np.clip(np.searchsorted(times, downbeats), 1, max(len(times) - 1, 1))
        before = np.clip(at - 1, 0, len(times) - 1)
        at = np.clip(at, 0, len(times) - 1)
        nearest = np.where(
            np.abs(times[before] - downbeats) <= np.abs(times[at] - downbeats), before, at
        )
        on_note = np.abs(times[nearest] - downbeats) <= ON_NOTE_SECONDS
        marks = np.where(on_note, ticks[nearest], marks)
    keep = np.concatenate([[True], np.diff(marks) > 0]) if len(marks) else np.zeros(0, bool)
    return marks[keep], np.asarray(downbeats)[keep]


def piecewise(x: np.ndarray, marks: np.ndarray, bar: int) -> np.ndarray:
    """Map decoded ticks x (N,) to regular time: ``marks[i]`` -> ``i · bar``, linear between
    marks and with the nearest bar's slope beyond them."""
    targets = np.arange(len(marks)) * float(bar)
    out = np.interp(x, marks, targets)
    first = bar / (marks[1] - marks[0])
    last = bar / (marks[-1] - marks[-2])
    out = np.where(x < marks[0], (x - marks[0]) * first, out)
    return np.where(x > marks[-1], targets[-1] + (x - marks[-1]) * last, out)


NICE_RATIOS = (0.5, 1.0, 2.0)  # a bar's decoded span against the nominal: the value scale
MAX_SLIP = 0.125  # of a bar: a larger mismatch leaves the bar irregular instead


def piece_ratio(marks: np.ndarray, bar: int) -> float:
    """The nice ratio (``NICE_RATIOS``) most of the tracked bars' decoded spans need to
    become ``bar`` ticks: the piece's value scale against the tracked bars."""
    spans = np.diff(marks)
    nearest = [min(NICE_RATIOS, key=lambda r: abs(np.log(span * r / bar))) for span in spans]
    values, counts = np.unique(nearest, return_counts=True)
    return float(values[counts.argmax()])


def even_marks(
    marks: np.ndarray,
    mark_seconds: np.ndarray,
    ratio: float,
    bar: int,
    onsets: np.ndarray,
    seconds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Marks (and their seconds) made to span about one bar each at ``ratio``: a tracked
    bar that holds n bars of decoded time (the tracker missed n - 1 downbeats, or followed
    the tempo an octave down) is cut into n bars, at the decoded onsets (of the notes
    ``onsets``/``seconds`` (K,)) nearest its equal division; a mark less than half a bar
    after the last kept one is dropped (an extra downbeat)."""
    distinct, first = np.unique(onsets, return_index=True)
    kept, kept_seconds = [marks[0]], [mark_seconds[0]]
    for mark, second in zip(marks[1:], mark_seconds[1:], strict=True):
        n = int(np.rint((mark - kept[-1]) * ratio / bar))
        if n < 1:
            continue
        last, last_second = kept[-1], kept_seconds[-1]
        for j in range(1, n):
            split = last + (mark - last) * j / n
            near = int(np.argmin(np.abs(distinct - split)))
            on_note = abs(distinct[near] - split) <= bar / ratio / 4
            if on_note and kept[-1] < distinct[near] < mark:
                kept.append(float(distinct[near]))
                kept_seconds.append(float(seconds[first[near]]))
            elif kept[-1] < split:
                kept.append(split)
                kept_seconds.append(last_second + (second - last_second) * j / n)
        kept.append(mark)
        kept_seconds.append(second)
    return np.asarray(kept), np.asarray(kept_seconds)


class BarMap:
    """Decoded ticks -> regular ticks, bar by bar: bar i (decoded ``marks[i]`` to
    ``marks[i + 1]``) is scaled by the piece's ratio (``piece_ratio``) and starts at
    ``i · bar``; what is then left over or missing (a slip) is taken out of, or
    added to, the one interval between onsets of the bar whose played length disagrees most
    with it, so every other interval keeps its decoded value. A bar off by more than
    ``MAX_SLIP`` keeps its decoded length (an irregular measure). Before the first mark and
    after the last, the nearest bar's ratio."""

    def __init__(self, marks, bar, ratio, slip_at, slips, irregular):
        self.marks, self.bar, self.ratio = marks, bar, ratio
        self.slip_at, self.slips = slip_at, slips  # per bar: where a slip is mended, by how much
        spans = np.diff(marks) * ratio
        lengths = np.where(irregular, np.rint(spans), bar)
        # (n + 1,) regular ticks of the marks: one bar apart, or an irregular bar's span
        self.lines = np.concatenate([[0.0], np.cumsum(lengths)])

    @classmethod
    def fit(
        cls,
        onsets: np.ndarray,
        seconds: np.ndarray,
        marks: np.ndarray,
        mark_seconds: np.ndarray,
        bar: int,
        ratio: float,
    ) -> BarMap:
        """From the timed notes' decoded ``onsets`` and played ``seconds`` (K,), the marks
        and their downbeats in seconds (``downbeat_marks``), the bar (ticks) and the piece's
        ratio (``piece_ratio``)."""
        order = np.argsort(onsets, kind="stable")
        distinct, first = np.unique(onsets[order], return_index=True)
        played = seconds[order][first]  # (U,) played time of each distinct decoded onset
        n = len(marks) - 1
        slip_at, slips = np.full(n, np.inf), np.zeros(n)
        irregular = np.zeros(n, dtype=bool)
        for i in range(n):
            excess = (marks[i + 1] - marks[i]) * ratio - bar
            if abs(excess) > MAX_SLIP * bar:
                irregular[i] = True
                continue
            if abs(excess) < 1e-9:
                continue
            inside = (distinct > marks[i]) & (distinct < marks[i + 1])
            points = np.concatenate([[marks[i]], distinct[inside], [marks[i + 1]]])
            times = np.concatenate([[mark_seconds[i]], played[inside], [mark_seconds[i + 1]]])
            lengths = np.diff(points) * ratio  # (P - 1,) regular ticks
            tempo = bar / max(mark_seconds[i + 1] - mark_seconds[i], 1e-3)  # ticks a second
            expected = np.diff(times) * tempo
            gain = np.abs(lengths - excess - expected) - np.abs(lengths - expected)
            gain[lengths - excess < SHORTEST] = np.inf  # an interval keeps at least a 32nd
            k = int(np.argmin(gain))
            if not np.isfinite(gain[k]):
                irregular[i] = True
                continue
            slip_at[i], slips[i] = points[k + 1], excess
        return cls(marks, bar, ratio, slip_at, slips, irregular)

    def __call__(self, ticks: np.ndarray, before: np.ndarray | None = None) -> np.ndarray:
        """Regular ticks (N,) of decoded ``ticks`` (N,); ``before`` (N,): for note ends, the
        notes' onsets (an end is mapped in the bar of its onset, so a value keeps its
        decoded length there)."""
        x = np.asarray(ticks, dtype=float)
        where = x if before is None else np.asarray(before, dtype=float)
        i = np.clip(np.searchsorted(self.marks, where, side="right") - 1, 0, len(self.slips) - 1)
        out = self.lines[i] + (x - self.marks[i]) * self.ratio
        out = out - np.where(x >= self.slip_at[i], self.slips[i], 0.0)
        return np.rint(out).astype(np.int64)


def regular_bars(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    seconds: np.ndarray,
    downbeats: np.ndarray,
    signature: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray] | None:
    """(attributes, onsets (N,)) re-timed and re-barred on the tracked ``downbeats``
    (seconds), or None when fewer than two fall among the notes. ``attributes``/``drop``/
    ``onsets`` (N,) are the decoded notes at ``BAR_TICKS_PER_QUARTER`` (``position_ticks``,
    ``duration_ticks``, ``measure_length_ticks`` in those ticks), ``seconds`` (N,) their
    played onsets; ``signature`` the piece's time signature."""
    keep = ~drop
    timed = keep & ~attributes["is_grace"]
    if timed.sum() < 2:
        return None
    marks, mark_seconds = downbeat_marks(onsets[timed], seconds[timed], downbeats)
    if len(marks) < 2:
        return None
    numerator, denominator = signature
    bar = numerator * 4 * BAR_TICKS_PER_QUARTER // denominator
    ratio = piece_ratio(marks, bar)
    marks, mark_seconds = even_marks(marks, mark_seconds, ratio, bar, onsets[timed], seconds[timed])
    if len(marks) < 2:
        return None
    mapping = BarMap.fit(onsets[timed], seconds[timed], marks, mark_seconds, bar, ratio)
    new_onsets = mapping(onsets)
    ends = mapping(onsets + attributes["duration_ticks"], before=onsets)
    shift = -(int(new_onsets[keep].min()) // bar) * bar  # whole bars: onsets from 0 on
    new_onsets = new_onsets + shift
    durations = np.maximum(ends + shift - new_onsets, 0)
    durations[(durations == 0) & ~attributes["is_grace"]] = SHORTEST
    durations[attributes["is_grace"]] = 0
    out = attributes.copy()
    out["duration_ticks"] = durations
    out["ts_num"], out["ts_den"] = numerator, denominator
    low, high = int(new_onsets[keep].min()), int(new_onsets[keep].max())
    marked = np.rint(mapping.lines).astype(np.int64) + shift
    before = np.arange(marked[0] - bar, low - 1, -bar)[::-1]  # whole bars before the marks
    after = np.arange(marked[-1] + bar, high + bar + 1, bar)
    lines = np.concatenate([before, marked, after])
    if low < lines[0] or low > lines[0]:  # a pickup: the first note opens a short measure
        lines = np.concatenate([[low], lines[lines > low]])
    assign_measures(out, drop, new_onsets, lines.astype(np.int64))
    return out, new_onsets
