"""Per-stream cross-entropy, weighted by the spec table, ignoring ``IGNORE_INDEX`` targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from perf2score.tokens.spec import IGNORE_INDEX, STREAMS


def stream_losses(
    logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, float]]:
    """(weighted total loss, per-stream mean loss) over logits (B, T, V) and targets (B, T)."""
    total = torch.zeros((), device=next(iter(logits.values())).device)
    weights = 0.0
    parts: dict[str, float] = {}
    for name, scores in logits.items():
        target = targets[name]  # (B, T)
        if not (target != IGNORE_INDEX).any():
            total = total + 0.0 * scores.sum()  # keeps the head in the graph (DDP)
            continue
        loss = F.cross_entropy(
            scores.float().flatten(0, 1), target.flatten(), ignore_index=IGNORE_INDEX
        )
        weight = STREAMS[name].loss_weight
        total = total + weight * loss
        weights += weight
        parts[name] = float(loss.detach())
    return total / max(weights, 1e-9), parts
