"""Per-stream cross-entropy, weighted by the spec table, ignoring ``IGNORE_INDEX`` targets;
optionally with per-class weights (``tuplet_class_weights``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from perf2score.constants import GRID_PER_QUARTER
from perf2score.tokens.spec import FIRST_VALUE, IGNORE_INDEX, STREAMS

DYADIC_GRID = GRID_PER_QUARTER // 8  # a 32nd: grid values that are multiples of it are dyadic
TUPLET_STREAMS = ("position", "value")


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
) -> tuple[torch.Tensor, dict[str, float]]:
    """(weighted total loss, per-stream mean loss) over logits (B, T, V) and targets (B, T);
    ``class_weights``: per-class weights (V,) of some streams (a stream's loss is then the
    weighted mean over its targets, as ``F.cross_entropy`` takes them)."""
    class_weights = class_weights or {}
    total = torch.zeros((), device=next(iter(logits.values())).device)
    weights = 0.0
    parts: dict[str, float] = {}
    for name, scores in logits.items():
        target = targets[name]  # (B, T)
        if not (target != IGNORE_INDEX).any():
            total = total + 0.0 * scores.sum()  # keeps the head in the graph (DDP)
            continue
        loss = F.cross_entropy(
            scores.float().flatten(0, 1),
            target.flatten(),
            weight=class_weights[name].to(scores.device) if name in class_weights else None,
            ignore_index=IGNORE_INDEX,
        )
        weight = STREAMS[name].loss_weight
        total = total + weight * loss
        weights += weight
        parts[name] = float(loss.detach())
    return total / max(weights, 1e-9), parts
