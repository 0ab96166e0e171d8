"""Per-stream cross-entropy, weighted by the spec table, ignoring ``IGNORE_INDEX`` targets;
optionally with per-class weights (``tuplet_class_weights``) and per-note weights of the
onset streams at rhythm changes (``CHANGE_TARGET``, ``rhythm_changes``)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from perf2score.constants import GRID_PER_QUARTER
from perf2score.tokens.spec import FIRST_VALUE, IGNORE_INDEX, STREAMS

DYADIC_GRID = GRID_PER_QUARTER // 8  # a 32nd: grid values that are multiples of it are dyadic
TUPLET_STREAMS = ("position", "value")
CHANGE_TARGET = "change"  # targets' pseudo-stream: 1 where a note's onset step changes
CHANGE_STREAMS = ("bar", "position")  # the streams that place a note's onset


def tuplet_class_weights(weight: float) -> dict[str, torch.Tensor]:
    """Per-class loss weights (V,) of the position and value streams: ``weight`` on the
    grid values that are not dyadic (not a multiple of a 32nd: triplets and other tuplets),
    1 elsewhere (the other values, and the special ids below ``FIRST_VALUE``). Empty when
    ``weight`` is 1 (plain cross-entropy). MIDI2ScoreTransformer's re-implementation found
    about 2 best (5 worse)."""
    if weight == 1.0:
        return {}
    out = {}
    for name in TUPLET_STREAMS:
        grid = torch.arange(STREAMS[name].size) - FIRST_VALUE  # (V,) grid value of each id
        tuplet = (grid > 0) & (grid % DYADIC_GRID != 0)
        out[name] = torch.where(tuplet, float(weight), 1.0)
    return out


def stream_losses(
    logits: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    class_weights: dict[str, torch.Tensor] | None = None,
    change_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """(weighted total loss, per-stream mean loss) over logits (B, T, V) and targets (B, T);
    ``class_weights``: per-class weights (V,) of some streams (a stream's loss is then the
    weighted mean over its targets, as ``F.cross_entropy`` takes them); ``change_weight``:
    the weight of the onset streams' targets (``CHANGE_STREAMS``) at notes marked 1 in
    ``targets[CHANGE_TARGET]`` (B, T) (a weighted mean again; 1 = off)."""
    class_weights = class_weights or {}
    changes = targets.get(CHANGE_TARGET) if change_weight != 1.0 else None
    total = torch.zeros((), device=next(iter(logits.values())).device)
    weights = 0.0
    parts: dict[str, float] = {}
    for name, scores in logits.items():
        target = targets[name]  # (B, T)
        if not (target != IGNORE_INDEX).any():
            total = total + 0.0 * scores.sum()  # keeps the head in the graph (DDP)
            continue
        per_class = class_weights[name].to(scores.device) if name in class_weights else None
        if changes is not None and name in CHANGE_STREAMS:
            loss = _note_weighted(scores, target, per_class, changes, change_weight)
        else:
            loss = F.cross_entropy(
                scores.float().flatten(0, 1),
                target.flatten(),
                weight=per_class,
                ignore_index=IGNORE_INDEX,
            )
        weight = STREAMS[name].loss_weight
        total = total + weight * loss
        weights += weight
        parts[name] = float(loss.detach())
    return total / max(weights, 1e-9), parts


def _note_weighted(
    scores: torch.Tensor,
    target: torch.Tensor,
    per_class: torch.Tensor | None,
    changes: torch.Tensor,
    change_weight: float,
) -> torch.Tensor:
    """Cross-entropy of scores (B, T, V) against target (B, T), the weighted mean with
    weight ``change_weight`` at notes where ``changes`` (B, T) is 1, times the class weight
    of the target (``per_class`` (V,), or 1)."""
    valid = (target != IGNORE_INDEX).flatten()
    safe = torch.where(valid, target.flatten(), 0)
    losses = F.cross_entropy(scores.float().flatten(0, 1), safe, reduction="none")
    note = torch.where(changes.flatten() == 1, float(change_weight), 1.0)
    if per_class is not None:
        note = note * per_class[safe]
    note = note * valid
    return (losses * note).sum() / note.sum().clamp_min(1e-9)


def rhythm_changes(onsets: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """(N,) int64 1 at the notes (in performance order) whose onset step differs from the
    step before: a note's step is its score onset ``onsets`` (N,) minus the latest onset of
    the kept notes before it; only positive steps count (a chord's later notes and notes
    played out of score order are never a change and leave the step before as it was);
    ``drop`` (N,) notes are skipped. A window's first step is never a change."""
    out = np.zeros(len(onsets), dtype=np.int64)
    latest, previous_step = None, None
    for i in np.flatnonzero(~drop):
        onset = int(onsets[i])
        if latest is not None and onset > latest:
            step = onset - latest
            if previous_step is not None and step != previous_step:
                out[i] = 1
            previous_step = step
        latest = onset if latest is None else max(latest, onset)
    return out
