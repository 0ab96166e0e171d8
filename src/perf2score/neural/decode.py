"""Decoding: a performance → per-note score attributes with an ``AlignedModel``.

The performance is cut into windows of ``window`` notes overlapping by ``overlap``; all
windows are encoded at once and decoded together, note by note, with the score LM's KV
cache (greedy). Constraints at every step: no special ids; the position lies inside the
predicted measure; within a measure, onsets do not go backwards (unless the note is played
together with the previous one, as in a rolled chord); the spelling (``alter``) fits the
pitch. Windows are stitched in the middle of their overlaps; measure numbers continue
across windows by the most common offset on the shared notes.
"""

from __future__ import annotations

import numpy as np
import torch

from perf2score.midi.reading import Performance
from perf2score.models.adapter import AlignedModel
from perf2score.tokens.performance import encode_performance
from perf2score.tokens.score import NATURAL_STEPS, decode_score
from perf2score.tokens.spec import BOS, FIRST_VALUE, GRID_PER_QUARTER, PAD, SCORE_STREAMS, STREAMS

SCORE_NAMES = tuple(s.name for s in SCORE_STREAMS)
CHORD_SECONDS = 0.035  # notes closer than this may be one chord (any order)


def _windows(n: int, window: int, overlap: int) -> list[tuple[int, int]]:
    step = max(window - overlap, 1)
    starts = list(range(0, max(n - overlap, 1), step))
    return [(s, min(s + window, n)) for s in starts]


def _alter_table() -> torch.Tensor:
    """(12, 5) True where alter -2..+2 spells pitch class 0..11 with a natural step."""
    natural = (torch.arange(12)[:, None] - torch.arange(-2, 3)[None, :]) % 12  # (12, 5)
    return torch.isin(natural, torch.tensor(list(NATURAL_STEPS)))


ALTER_ALLOWED = _alter_table()


def decode_windows(
    model: AlignedModel, performance: Performance, window: int = 256, overlap: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """(score attributes (N,) ``SCORE_TARGET_DTYPE`` at ``GRID_PER_QUARTER`` ticks per
    quarter, drop (N,) bool) for the performance's notes in their stored order."""
    return decode_many(model, [performance], window, overlap)[0]


@torch.no_grad()
def decode_many(
    model: AlignedModel, performances: list[Performance], window: int = 256, overlap: int = 64
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``decode_windows`` for several performances at once (all their windows in one batch)."""
    jobs = []  # (performance index, start, end)
    for index, performance in enumerate(performances):
        jobs += [(index, s, e) for s, e in _windows(len(performance.notes), window, overlap)]
    tokens = [encode_performance(p) for p in performances]
    B, T = len(jobs), max(e - s for _, s, e in jobs)
    perf = {k: torch.full((B, T), PAD, dtype=torch.long) for k in tokens[0]}
    padding = torch.ones(B, T, dtype=torch.bool)
    pitch = torch.zeros(B, T, dtype=torch.long)
    onset = torch.zeros(B, T, dtype=torch.float64)
    for b, (index, s, e) in enumerate(jobs):
        notes = performances[index].notes
        for k, ids in tokens[index].items():
            perf[k][b, : e - s] = torch.from_numpy(ids[s:e])
        padding[b, : e - s] = False
        pitch[b, : e - s] = torch.from_numpy(notes["pitch"][s:e].astype(np.int64))
        onset[b, : e - s] = torch.from_numpy(notes["onset_sec"][s:e])
    memory = model.encode(perf, padding)
    cache = model.score.new_cache()
    previous = {k: torch.full((B, 1), BOS, dtype=torch.long) for k in SCORE_NAMES}
    out = {k: torch.zeros(B, T, dtype=torch.long) for k in SCORE_NAMES}
    last_position = torch.full((B,), -1, dtype=torch.long)
    values = torch.arange(STREAMS["position"].size) - FIRST_VALUE  # (V,) position values
    for t in range(T):
        inputs = dict(previous)
        inputs["pitch"] = perf["pitch"][:, t : t + 1]  # (B, 1)
        logits = model(None, inputs, padding=padding, memory=memory, cache=cache, start=t)
        chosen = {}
        for name in SCORE_NAMES:
            scores = logits[name][:, -1].float()  # (B, V)
            scores[:, :FIRST_VALUE] = -torch.inf
            if name == "position":
                length = chosen["measure_length"] - FIRST_VALUE  # (B,)
                inside = values[None, :] < torch.clamp(length, min=1)[:, None]  # (B, V)
                same_measure = chosen["bar"] == FIRST_VALUE  # advance 0
                close = (onset[:, t] - onset[:, max(t - 1, 0)]) < CHORD_SECONDS
                forward = values[None, :] >= last_position[:, None]
                need = (same_measure & ~close & (last_position >= 0))[:, None]
                allowed = inside & (forward | ~need)
                scores = torch.where(allowed | ~allowed.any(1, keepdim=True), scores, -torch.inf)
            if name == "alter":
                allowed = ALTER_ALLOWED[pitch[:, t] % 12]  # (B, 5)
                scores[:, FIRST_VALUE:] = torch.where(allowed, scores[:, FIRST_VALUE:], -torch.inf)
            chosen[name] = scores.argmax(-1)  # (B,)
        dropped = chosen["drop"] == FIRST_VALUE + 1
        for name in SCORE_NAMES:
            if name != "drop":
                chosen[name] = torch.where(dropped, FIRST_VALUE, chosen[name])
            out[name][:, t] = chosen[name]
            previous[name] = chosen[name][:, None]
        moved = (chosen["bar"] != FIRST_VALUE) & ~dropped
        last_position = torch.where(moved, -1, last_position)
        last_position = torch.where(dropped, last_position, chosen["position"] - FIRST_VALUE)
    results = []
    for index, performance in enumerate(performances):
        rows = [b for b, job in enumerate(jobs) if job[0] == index]
        spans = [jobs[b][1:] for b in rows]
        ids = {k: v[rows] for k, v in out.items()}
        results.append(_stitch(ids, spans, performance.notes["pitch"], overlap))
    return results


def _stitch(
    out: dict[str, torch.Tensor], spans: list[tuple[int, int]], pitches: np.ndarray, overlap: int
) -> tuple[np.ndarray, np.ndarray]:
    """Join the windows' token ids (B, T) into attributes and drops for all N notes."""
    n = len(pitches)
    attributes, drop = None, np.zeros(n, bool)
    previous = None  # (start, absolute measures, drops) of the previous window
    for b, (s, e) in enumerate(spans):
        ids = {k: v[b, : e - s].numpy() for k, v in out.items()}
        window_attrs, window_drop = decode_score(ids, pitches[s:e], GRID_PER_QUARTER)
        if attributes is None:
            attributes = np.zeros(n, dtype=window_attrs.dtype)
        relative = window_attrs["measure"].astype(np.int64)
        offset = 0
        if previous is not None:
            p_start, p_measure, p_drop = previous
            shared = np.arange(s, min(e, p_start + len(p_measure)))
            both = shared[~p_drop[shared - p_start] & ~window_drop[shared - s]]
            if len(both):
                offsets = p_measure[both - p_start] - relative[both - s]
                offset = int(np.bincount(offsets - offsets.min()).argmax() + offsets.min())
            else:
                offset = int(p_measure.max()) + 1
        absolute = relative + offset
        keep_from = s if b == 0 else s + overlap // 2
        rows = slice(keep_from - s, e - s)
        attributes[keep_from:e] = window_attrs[rows]
        attributes["measure"][keep_from:e] = absolute[rows]
        drop[keep_from:e] = window_drop[rows]
        previous = (s, absolute, window_drop)
    return attributes, drop
