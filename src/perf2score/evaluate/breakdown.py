"""Where MUSTER's offset and voice errors come from (issue 11, step 1).

For each matched note (after the same unison merge, matching and scale correction as
``perf2score.evaluate.muster.evaluate_scores``) the offset error is split by

- direction: the estimated value ends too early (``short``) or too late (``long``);
- what the ground-truth value ends at: the next onset of its own voice (``own``), an onset of
  another voice (``other``: a rest follows in its own voice, or it overlaps), or no onset at
  all (``rest``: a rest in every voice, or the end of the piece);

and the voice error by context: whether another voice of the same staff sounds at the
note's onset in the ground truth (``polyphonic``) or not (``monophonic``). The shares of
staff-measures written with more than one voice (ground truth and estimate) say whether the
estimate collapses the voices.
"""

from __future__ import annotations

import numpy as np

from perf2score.evaluate.alignment import NoteMatching
from perf2score.evaluate.muster import (
    comparable,
    offset_deviations,
    rhythm_correction,
    voice_errors,
)
from perf2score.score.reading import ScoreNotes

END_CLASSES = ("own", "other", "rest")


def gt_end_classes(score: ScoreNotes, index: np.ndarray) -> np.ndarray:
    """(K,) 0 own, 1 other, 2 rest: what each note ``index`` of ``score`` ends at."""
    notes = score.notes
    onsets_all = np.unique(notes["onset_ticks"])
    out = np.full(len(index), 2, dtype=np.int8)
    chosen = notes[index]
    for voice in np.unique(chosen["voice"]):
        own = np.unique(notes["onset_ticks"][notes["voice"] == voice])
        members = np.flatnonzero(chosen["voice"] == voice)
        onset = chosen["onset_ticks"][members]
        offset = chosen["offset_ticks"][members]
        k = np.searchsorted(own, onset, side="right")
        nxt = np.where(k < len(own), own[np.minimum(k, len(own) - 1)], -1)
        at_onset = np.isin(offset, onsets_all)
        out[members] = np.where(nxt == offset, 0, np.where(at_onset, 1, 2))
    return out


def polyphonic(score: ScoreNotes, index: np.ndarray) -> np.ndarray:
    """(K,) booleans: does another voice of the same staff (hand) sound at each note's onset?"""
    notes = score.notes
    chosen = notes[index]
    out = np.zeros(len(index), dtype=bool)
    for staff in np.unique(chosen["hand"]):
        in_staff = notes[notes["hand"] == staff]
        for voice in np.unique(in_staff["voice"]):
            theirs = in_staff[in_staff["voice"] == voice]
            order = np.argsort(theirs["onset_ticks"], kind="stable")
            starts = theirs["onset_ticks"][order]
            reach = np.maximum.accumulate(theirs["offset_ticks"][order])  # latest end so far
            mine = (chosen["hand"] == staff) & (chosen["voice"] != voice)
            t = chosen["onset_ticks"][mine]
            k = np.searchsorted(starts, t, side="right") - 1
            sounding = (k >= 0) & (reach[np.maximum(k, 0)] > t)
            out[mine] |= sounding
    return out


def multi_voice_share(score: ScoreNotes) -> float:
    """Share of (measure, staff) cells with notes that hold more than one voice."""
    notes = score.notes
    starts = score.measure_starts if len(score.measure_starts) else np.zeros(1, np.int64)
    measure = np.searchsorted(starts, notes["onset_ticks"], side="right") - 1
    cells: dict[tuple[int, int], set[int]] = {}
    rows = zip(measure.tolist(), notes["hand"].tolist(), notes["voice"].tolist(), strict=True)
    for m, staff, voice in rows:
        cells.setdefault((m, staff), set()).add(voice)
    return sum(len(v) > 1 for v in cells.values()) / len(cells) if cells else 0.0


def error_breakdown(
    gt: ScoreNotes, est: ScoreNotes, matching: NoteMatching | None = None
) -> dict[str, float]:
    """Counts of matched notes and of their offset and voice errors by class (see the module
    docstring), plus the multi-voice shares; counts add up across performances."""
    gt, est, matching = comparable(gt, est, matching)
    g, e = gt.notes[matching.gt_index], est.notes[matching.est_index]
    out: dict[str, float] = {"matched": len(g)}
    if not len(g):
        return out
    _, scale = rhythm_correction(g["onset_ticks"], e["onset_ticks"])
    sign = offset_deviations(
        g["onset_ticks"], g["offset_ticks"], e["onset_ticks"], e["offset_ticks"], scale
    )
    ends = gt_end_classes(gt, matching.gt_index)
    for code, name in enumerate(END_CLASSES):
        here = ends == code
        out[f"gt_{name}"] = int(here.sum())
        out[f"short_{name}"] = int((here & (sign < 0)).sum())
        out[f"long_{name}"] = int((here & (sign > 0)).sum())
    voice_wrong = voice_errors(gt, est, matching)
    poly = polyphonic(gt, matching.gt_index)
    out["polyphonic"] = int(poly.sum())
    out["voice_polyphonic"] = int((voice_wrong & poly).sum())
    out["voice_monophonic"] = int((voice_wrong & ~poly).sum())
    out["gt_multi_voice_share"] = multi_voice_share(gt)
    out["est_multi_voice_share"] = multi_voice_share(est)
    return out
