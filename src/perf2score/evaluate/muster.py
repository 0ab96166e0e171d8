"""MUSTER-style transcription error rates between a ground-truth and an estimated score.

Definitions (Nakamura, Benetos, Yoshii & Dixon, ICASSP 2018; Hiramatsu, Nakamura & Yoshii,
ISMIR 2021), all in percent:

- pitch error rate E_p = matched pairs with different pitch / ground-truth notes;
- missing rate E_m = unmatched ground-truth notes / ground-truth notes;
- extra rate E_e = unmatched estimated notes / estimated notes;
- onset error rate E_on = rhythm-correction cost / matched notes. Over the matched
  notes in ground-truth (onset, pitch) order, consecutive onset intervals of the two scores
  are compared exactly. A hidden state is the current scale factor s (estimate interval =
  s × ground-truth interval), drawn from all ratios of standard note values (whole to 64th,
  plain, dotted, double-dotted, triplet). The path starts at s = 1; changing s costs 1, an
  interval pair that does not satisfy the current s costs 1; the minimum total (Viterbi) is
  the rhythm-correction cost. Halving every value therefore costs 1.
- offset error rate E_off = offset errors / matched notes. Each estimated offset is
  mapped into ground-truth time piecewise-linearly through the matched onsets around it
  (past the last matched onset, with the final scale of the Viterbi path); a note whose
  mapped offset differs from its ground-truth offset is an offset error.
- E_avg = mean of the five rates.
- voice error rate: a matched note is a voice error when its voice successors (the notes of
  the same voice at the next onset of that voice) among matched notes differ between the two
  scores; divided by matched notes. (MUSTER's "voicePlus" variant is not published in
  enough detail to reproduce; ours is zero exactly when the voice streams agree.)
- hand error rate: matched notes whose hand (upper/lower staff) differs / matched notes.
- spelling error rate (ours; no MUSTER rate sees spelling, E_p compares sounding pitch):
  matched notes of the same sounding pitch written with another step or alteration
  (G♯ for A♭) / matched notes of the same sounding pitch.

Deviations from the reference tool, on purpose:
- The note matcher differs (see ``alignment``); on a score against itself ours gives exactly
  zero, the reference does not (it mishandles duplicate onsets, grace notes and some voices).
- A unison doubled in two voices (same pitch, same onset) counts as one note on both sides
  (the longest is kept): it is one key press. The reference merges such doubles in the
  ground truth only, which is why it reports extra notes on a score against itself.
- Tied notes are merged before evaluation. Grace notes (zero duration, at the onset of
  their main note) are evaluated like other notes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache
from itertools import pairwise
from math import lcm

import numpy as np

from perf2score.evaluate.alignment import NoteMatching, match_notes
from perf2score.score.reading import ScoreNotes

# every rate of ``MusterResult``, in percent
ERROR_RATES = (
    "pitch_er",
    "missing_rate",
    "extra_rate",
    "onset_er",
    "offset_er",
    "e_avg",
    "voice_er",
    "hand_er",
    "spell_er",
)


@dataclass
class MusterResult:
    """Named MUSTER-style rates (percent) plus the counts behind them."""

    pitch_er: float
    missing_rate: float
    extra_rate: float
    onset_er: float
    offset_er: float
    e_avg: float
    voice_er: float
    hand_er: float
    spell_er: float
    n_gt: int
    n_est: int
    n_matched: int
    rhythm_correction_cost: int
    n_offset_errors: int

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@lru_cache(maxsize=1)
def scale_factors() -> tuple[tuple[int, int], ...]:
    """All ratios a/b of standard note values, as reduced (numerator, denominator) pairs."""
    plain = [Fraction(4, 2**k) for k in range(7)]  # whole .. 64th, in quarters
    values = set()
    for v in plain:
        values.update({v, v * Fraction(3, 2), v * Fraction(7, 4), v * Fraction(2, 3)})
    ratios = sorted({a / b for a in values for b in values})
    return tuple((r.numerator, r.denominator) for r in ratios)


def rhythm_correction(gt_onsets: np.ndarray, est_onsets: np.ndarray) -> tuple[int, Fraction]:
    """Minimum scale-change + mismatch cost over consecutive onset intervals.

    Args:
        gt_onsets: (K,) integer ticks of matched notes, in ground-truth (onset, pitch) order.
        est_onsets: (K,) integer ticks (same tick resolution) of their estimated partners.

    Returns:
        (cost, final scale factor est/gt).
    """
    ratios = scale_factors()
    num = np.array([p for p, _ in ratios], dtype=np.int64)
    den = np.array([q for _, q in ratios], dtype=np.int64)
    unity = ratios.index((1, 1))
    cost = np.ones(len(ratios), dtype=np.int64)
    cost[unity] = 0
    d_gt = np.diff(gt_onsets.astype(np.int64))
    d_est = np.diff(est_onsets.astype(np.int64))
    for g, e in zip(d_gt, d_est, strict=True):
        mismatch = (den * e != num * g).astype(np.int64)  # (S,)
        switch = cost.min() + 1
        cost = np.minimum(cost, switch) + mismatch
    final = int(np.argmin(cost))
    return int(cost[final]), Fraction(int(num[final]), int(den[final]))


def offset_deviations(
    gt_on: np.ndarray,
    gt_off: np.ndarray,
    est_on: np.ndarray,
    est_off: np.ndarray,
    final_scale: Fraction,
) -> np.ndarray:
    """(K,) int8: each estimated offset, mapped to gt time, against the gt offset: -1 it
    ends too early, 0 right, +1 too late (exact integer comparisons)."""
    # one anchor per distinct estimated onset: the most common gt onset it is matched to
    anchors: dict[int, dict[int, int]] = {}
    for e, g in zip(est_on.tolist(), gt_on.tolist(), strict=True):
        votes = anchors.setdefault(e, {})
        votes[g] = votes.get(g, 0) + 1
    anchor_est = np.array(sorted(anchors), dtype=np.int64)
    anchor_gt = np.array(
        [min(anchors[e].items(), key=lambda kv: (-kv[1], kv[0]))[0] for e in anchor_est],
        dtype=np.int64,
    )
    k = np.searchsorted(anchor_est, est_off, side="right") - 1  # last anchor <= offset
    k = np.clip(k, 0, len(anchor_est) - 1)
    e_a, g_a = anchor_est[k], anchor_gt[k]
    inside = k + 1 < len(anchor_est)
    e_b = np.where(inside, anchor_est[np.minimum(k + 1, len(anchor_est) - 1)], e_a + 1)
    g_b = np.where(inside, anchor_gt[np.minimum(k + 1, len(anchor_est) - 1)], g_a)
    # inside: mapped = g_a + (t - e_a)(g_b - g_a)/(e_b - e_a), with e_b > e_a
    inside_sign = np.sign((est_off - e_a) * (g_b - g_a) - (gt_off - g_a) * (e_b - e_a))
    # past the last anchor: mapped = g_a + (t - e_a) / s, s = p/q > 0
    p, q = final_scale.numerator, final_scale.denominator
    outside_sign = np.sign((est_off - e_a) * q - (gt_off - g_a) * p)
    anchor_sign = np.sign(g_a - gt_off)
    exact_anchor = est_off == e_a
    signs = np.where(exact_anchor, anchor_sign, np.where(inside, inside_sign, outside_sign))
    return signs.astype(np.int8)


def _voice_successors(score: ScoreNotes, index: np.ndarray) -> list[frozenset]:
    """Per matched note k, the positions (in ``index``) of the notes of its voice at the
    voice's next onset; only matched notes are considered."""
    notes = score.notes[index]
    successors: list[frozenset] = [frozenset()] * len(index)
    for voice in np.unique(notes["voice"]):
        members = np.flatnonzero(notes["voice"] == voice)
        onsets = notes["onset_ticks"][members]
        for now, nxt in pairwise(np.unique(onsets)):
            following = frozenset(int(x) for x in members[onsets == nxt])
            for member in members[onsets == now]:
                successors[int(member)] = following
    return successors


def voice_errors(gt: ScoreNotes, est: ScoreNotes, matching: NoteMatching) -> np.ndarray:
    """(K,) booleans: does each matched note's voice successors (among matched notes)
    differ between the scores?"""
    if len(matching.gt_index) == 0:
        return np.zeros(0, dtype=bool)
    gt_succ = _voice_successors(gt, matching.gt_index)
    est_succ = _voice_successors(est, matching.est_index)
    return np.array([a != b for a, b in zip(gt_succ, est_succ, strict=True)], dtype=bool)


def voice_error_count(gt: ScoreNotes, est: ScoreNotes, matching: NoteMatching) -> int:
    """Matched notes whose voice successors (among matched notes) differ between the scores."""
    return int(voice_errors(gt, est, matching).sum())


def merge_unisons(score: ScoreNotes) -> ScoreNotes:
    """Keep one note per (pitch, onset): a unison doubled in two voices is one key press.

    The longest of the doubled notes is kept (a performance can only sound the longest).
    """
    notes = score.notes
    order = np.lexsort((-notes["offset_ticks"], notes["onset_ticks"], notes["pitch"]))
    ordered = notes[order]
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = (ordered["pitch"][1:] != ordered["pitch"][:-1]) | (
        ordered["onset_ticks"][1:] != ordered["onset_ticks"][:-1]
    )
    kept = np.sort(order[first])
    if len(kept) == len(notes):
        return score
    return replace(score, notes=notes[kept])


def _rate(count: int, total: int) -> float:
    return 100.0 * count / total if total else 0.0


def comparable(
    gt: ScoreNotes, est: ScoreNotes, matching: NoteMatching | None = None
) -> tuple[ScoreNotes, ScoreNotes, NoteMatching]:
    """Both scores on one tick grid with doubled unisons merged, and their note matching
    (computed unless given): what every comparison of the two starts from."""
    tpq = lcm(gt.ticks_per_quarter, est.ticks_per_quarter)
    gt = merge_unisons(gt.rescaled(tpq))
    est = merge_unisons(est.rescaled(tpq))
    return gt, est, matching if matching is not None else match_notes(gt, est)


def spelling_error_count(gt: np.ndarray, est: np.ndarray) -> int:
    """Matched pairs (K,) of notes (``SCORE_NOTE_DTYPE``) that sound the same pitch but are
    written with another step or alteration."""
    same = gt["pitch"] == est["pitch"]
    return int(np.sum(same & ((gt["step"] != est["step"]) | (gt["alter"] != est["alter"]))))


def evaluate_scores(
    gt: ScoreNotes, est: ScoreNotes, matching: NoteMatching | None = None
) -> MusterResult:
    """All MUSTER-style rates for an estimated score against its ground truth."""
    gt, est, matching = comparable(gt, est, matching)
    g, e = gt.notes[matching.gt_index], est.notes[matching.est_index]
    n_matched = len(matching.gt_index)
    pitch_errors = int(np.sum(g["pitch"] != e["pitch"]))

    cost, final_scale = rhythm_correction(g["onset_ticks"], e["onset_ticks"])
    offset_wrong = (
        offset_deviations(
            g["onset_ticks"], g["offset_ticks"], e["onset_ticks"], e["offset_ticks"], final_scale
        )
        != 0
        if n_matched
        else np.zeros(0, bool)
    )
    n_offset_errors = int(offset_wrong.sum())

    rates = {
        "pitch_er": _rate(pitch_errors, len(gt)),
        "missing_rate": _rate(len(matching.missing), len(gt)),
        "extra_rate": _rate(len(matching.extra), len(est)),
        "onset_er": _rate(cost, n_matched),
        "offset_er": _rate(n_offset_errors, n_matched),
    }
    return MusterResult(
        **rates,
        e_avg=float(np.mean(list(rates.values()))),
        voice_er=_rate(voice_error_count(gt, est, matching), n_matched),
        hand_er=_rate(int(np.sum(g["hand"] != e["hand"])), n_matched),
        spell_er=_rate(spelling_error_count(g, e), int(np.sum(g["pitch"] == e["pitch"]))),
        n_gt=len(gt),
        n_est=len(est),
        n_matched=n_matched,
        rhythm_correction_cost=cost,
        n_offset_errors=n_offset_errors,
    )
