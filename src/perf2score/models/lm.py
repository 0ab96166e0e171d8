"""``NoteLM``: a transformer over compound note tokens (the performance LM and the score LM).

Each note's token is the sum of one embedding per input stream; each output stream has its
own linear head. ``kind="performance"`` attends both ways (masked-note modelling);
``kind="score"`` is causal and supports a KV cache for note-by-note decoding. ``forward``
also returns every layer's hidden states (the embedding output first): the adapter reads
them. Shapes: B batch, T notes, C model width, V a stream's vocabulary.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
from torch import nn

from perf2score.models.blocks import Block
from perf2score.models.config import LMConfig
from perf2score.tokens.spec import BOS, STREAMS

Ids = TypeVar("Ids", torch.Tensor, np.ndarray)


class NoteLM(nn.Module):
    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = config
        c = config
        self.embeddings = nn.ModuleDict(
            {name: nn.Embedding(STREAMS[name].size, c.d_model) for name in c.input_streams}
        )
        self.blocks = nn.ModuleList(
            Block(c.d_model, c.n_heads, c.d_ff, c.dropout, c.rope_base) for _ in range(c.n_layers)
        )
        self.norm = nn.LayerNorm(c.d_model)
        self.heads = nn.ModuleDict(
            {name: nn.Linear(c.d_model, STREAMS[name].size) for name in c.output_streams}
        )

    def embed(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """Sum of the input streams' embeddings: tokens[name] (B, T) -> (B, T, C)."""
        return sum(self.embeddings[name](tokens[name]) for name in self.config.input_streams)

    def forward(
        self,
        tokens: dict[str, torch.Tensor],
        padding: torch.Tensor | None = None,
        cache: list[dict] | None = None,
        start: int = 0,
        cross: list | None = None,
        extra: torch.Tensor | None = None,
    ) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
        """(logits per output stream (B, T, V), hidden states [(B, T, C)] * (n_layers + 1)).

        ``padding`` (B, T) is True at padded notes; ``cache`` (one dict per layer) and
        ``start`` (the position of the first given note) are for incremental decoding;
        ``cross`` (one callable per layer, or None) is the adapter's hook in each block;
        ``extra`` (B, T, C), when given, is added to the input embeddings.
        """
        x = self.embed(tokens)  # (B, T, C)
        if extra is not None:
            x = x + extra
        T = x.shape[1]
        if start + T > self.config.max_notes:
            raise ValueError(f"{start + T} notes exceed max_notes={self.config.max_notes}")
        positions = torch.arange(start, start + T, device=x.device)  # (T,)
        hidden = [x]
        for index, block in enumerate(self.blocks):
            layer_cache = cache[index] if cache is not None else None
            hook = cross[index] if cross is not None else None
            x = block(x, positions, self.config.causal, padding, layer_cache, hook)  # (B, T, C)
            hidden.append(x)
        x = self.norm(x)  # (B, T, C)
        return {name: head(x) for name, head in self.heads.items()}, hidden

    def new_cache(self) -> list[dict]:
        """An empty KV cache (one dict per layer) for causal decoding."""
        if not self.config.causal:
            raise ValueError("only the causal (score) model decodes incrementally")
        return [{} for _ in self.blocks]

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def shift_right(tokens: dict[str, Ids]) -> dict[str, Ids]:
    """Teacher forcing: each note sees the previous note's tokens (BOS before the first).

    ``tokens`` maps streams to ids (..., T): torch tensors (B, T) or numpy arrays (T,)."""
    shifted = {}
    for name, ids in tokens.items():
        if isinstance(ids, torch.Tensor):
            first = torch.full_like(ids[..., :1], BOS)  # (..., 1)
            shifted[name] = torch.cat((first, ids[..., :-1]), dim=-1)  # (..., T)
        else:
            first = np.full_like(ids[..., :1], BOS)  # (..., 1)
            shifted[name] = np.concatenate((first, ids[..., :-1]), axis=-1)  # (..., T)
    return shifted


def score_step_inputs(previous: dict[str, Ids], pitch: Ids) -> dict[str, Ids]:
    """The score LM's inputs for the notes whose predecessors have the score tokens
    ``previous`` (stream -> ids (..., T)): those tokens and the notes' own pitch ids (..., T)
    (performance-token pitch ids; the converter knows every pitch). Decoding calls it one
    step at a time; ``score_inputs`` for whole sequences."""
    inputs = dict(previous)
    inputs["pitch"] = pitch
    return inputs


def score_inputs(score: dict[str, Ids], pitch: Ids) -> dict[str, Ids]:
    """The score LM's inputs for whole sequences (teacher forcing): the previous note's score
    tokens (``BOS`` before the first) and this note's pitch.

    ``score`` maps score streams to ids (..., T) in decoding order; ``pitch`` (..., T) holds
    the performance-token pitch ids of the same notes. Torch tensors or numpy arrays.
    """
    return score_step_inputs(shift_right(score), pitch)
