"""Score-side training targets: one row of exact attributes per note of the unfolded score
(the attribute record ``perf2score.score.attributes.ATTRIBUTE_DTYPE``).

(n)ASAP aligns performed notes to the notes of partitura's *maximally unfolded* score (ids
``n12-1``, ``n12-2`` for the first and second pass through a repeat), so the targets are
built on that unfolded part. All times are integer ticks at the score's
``ticks_per_quarter`` (exact; quantisation to a model grid happens only at tokenisation).
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import partitura as pt

from perf2score.errors import Perf2ScoreError
from perf2score.score.attributes import ATTRIBUTE_DTYPE, key_mode_code
from perf2score.score.reading import _TickMap, global_staves, load_musicxml, staff_hands


def _unfold(part: pt.score.Part) -> pt.score.Part:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pt.score.unfold_part_maximal(part)


def score_targets(path: str | os.PathLike) -> tuple[np.ndarray, int, int]:
    """Read an (n)ASAP MusicXML score and return (table, ticks_per_quarter, anacrusis_ticks).

    ``table`` has one ``ATTRIBUTE_DTYPE`` row per note of the maximally unfolded score
    (tied continuations included, flagged ``tie_stop``), sorted by (onset, pitch).
    ``anacrusis_ticks`` is the length of an incomplete first measure (0 if it is complete).
    """
    score = load_musicxml(path)
    parts = [_unfold(p) for p in score.parts]
    maps = [_TickMap(p) for p in parts]
    tpq = math.lcm(*[d for m in maps for d in m.divs])

    def ticks(tick_map: _TickMap, t: int) -> int:
        return int(tick_map.quarters(t) * tpq)

    first, first_map = parts[0], maps[0]
    measures = list(first.measures)
    if not measures:
        raise Perf2ScoreError(f"{path}: the score has no measures")
    m_start = np.array([ticks(first_map, m.start.t) for m in measures], dtype=np.int64)
    m_end = np.array([ticks(first_map, m.end.t) for m in measures], dtype=np.int64)
    m_number = np.array(
        [int(m.number) if m.number is not None else k for k, m in enumerate(measures)]
    )
    ts = sorted(
        (ticks(first_map, x.start.t), int(x.beats), int(x.beat_type))
        for x in first.iter_all(pt.score.TimeSignature)
    ) or [(0, 4, 4)]
    ks = sorted(
        (ticks(first_map, x.start.t), int(x.fifths), key_mode_code(x.mode))
        for x in first.iter_all(pt.score.KeySignature)
    ) or [(0, 0, -1)]
    ts_at = np.array([t for t, _, _ in ts])
    ks_at = np.array([t for t, _, _ in ks])

    above = global_staves(parts)
    rows = []
    for index, (part, tick_map) in enumerate(zip(parts, maps, strict=True)):
        for note in part.notes:  # every written note, tied continuations included
            onset = ticks(tick_map, note.start.t)
            m = max(int(np.searchsorted(m_start, onset, side="right")) - 1, 0)
            t_ = ts[max(int(np.searchsorted(ts_at, onset, side="right")) - 1, 0)]
            k_ = ks[max(int(np.searchsorted(ks_at, onset, side="right")) - 1, 0)]
            grace = isinstance(note, pt.score.GraceNote)
            staff = max(int(note.staff or 1), 1) + above[index]  # from the top, all parts
            rows.append(
                (
                    str(note.id),
                    int(note.midi_pitch),
                    onset,
                    m,
                    int(m_number[m]),
                    int(m_start[m]),
                    int(m_end[m] - m_start[m]),
                    t_[1],
                    t_[2],
                    onset - int(m_start[m]),
                    0 if grace else ticks(tick_map, note.end_tied.t) - onset,
                    staff,
                    index * 100 + int(note.voice or 1),
                    note.step,
                    int(note.alter or 0),
                    int(note.octave),
                    k_[1],
                    k_[2],
                    grace,
                    note.tie_next is not None,
                    note.tie_prev is not None,
                )
            )
    table = np.array(rows, dtype=ATTRIBUTE_DTYPE)
    table["staff"] = staff_hands(table["staff"]) + 1  # the hand's staff: 1 upper, 2 lower
    table = table[np.lexsort((table["pitch"], table["onset_ticks"]))]
    nominal = ts[0][1] * tpq * 4 // ts[0][2]
    first_length = int(m_end[0] - m_start[0])
    anacrusis = first_length if 0 < first_length < nominal else 0
    return table, tpq, anacrusis
