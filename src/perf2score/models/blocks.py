"""Pre-norm transformer blocks with rotary positions and ``scaled_dot_product_attention``.

Shapes: B batch, T notes (queries), S notes (keys), H heads, D head width, C = H·D model width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rotary_tables(positions: torch.Tensor, dim: int, base: float) -> tuple[torch.Tensor, ...]:
    """cos, sin tables (T, dim/2) for integer positions (T,)."""
    inv = 1.0 / base ** (torch.arange(0, dim, 2, device=positions.device).float() / dim)
    angles = positions.float()[:, None] * inv[None, :]  # (T, D/2)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of channels of x (B, H, T, D) by the position angles (T, D/2)."""
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (B, H, T, D/2) each
    rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (B,H,T,D/2,2)
    return rotated.flatten(-2)  # (B, H, T, D)


class SelfAttention(nn.Module):
    """Multi-head self-attention with rotary positions and an optional KV cache."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, rope_base: float):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)
        self.dropout, self.rope_base = dropout, rope_base

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        causal: bool,
        padding: torch.Tensor | None = None,
        cache: dict | None = None,
    ) -> torch.Tensor:
        """x (B, T, C); positions (T,); padding (B, S) True = ignore; cache holds k, v."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=-1)  # (B, T, C) each
        q, k, v = (t.view(B, T, self.n_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        cos, sin = rotary_tables(positions, self.head_dim, self.rope_base)  # (T, D/2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)  # (B, H, T, D)
        if cache is not None:  # buffers grown by doubling, written in place (no O(T²) copies)
            end = cache.get("length", 0) + T
            if "k" not in cache or cache["k"].shape[2] < end:
                size = max(end, 2 * cache["k"].shape[2] if "k" in cache else 64)
                for name in ("k", "v"):
                    grown = k.new_zeros(B, self.n_heads, size, self.head_dim)  # (B, H, cap, D)
                    if name in cache:
                        grown[:, :, : cache["length"]] = cache[name][:, :, : cache["length"]]
                    cache[name] = grown
            cache["k"][:, :, end - T : end] = k
            cache["v"][:, :, end - T : end] = v
            cache["length"] = end
            k, v = cache["k"][:, :, :end], cache["v"][:, :, :end]  # (B, H, S, D)
        S = k.shape[2]
        mask = None
        if causal and T > 1:
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(S - T)  # (T, S)
        if padding is not None:
            keep = ~padding[:, None, None, :]  # (B, 1, 1, S)
            mask = keep if mask is None else keep & mask
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, T, D)
        return self.out(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, T, C)


class Block(nn.Module):
    """Pre-norm block: x + attention(norm(x)), then x + feed_forward(norm(x))."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, rope_base: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attention = SelfAttention(d_model, n_heads, dropout, rope_base)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, positions, causal, padding=None, cache=None, cross=None) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C); ``cross`` (optional) maps x to a residual update
        between self-attention and the feed-forward sub-layer (the adapter's hook)."""
        x = x + self.drop(self.attention(self.norm1(x), positions, causal, padding, cache))
        if cross is not None:
            x = x + cross(x)  # (B, T, C)
        return x + self.feed_forward(self.norm2(x))  # (B, T, C)
