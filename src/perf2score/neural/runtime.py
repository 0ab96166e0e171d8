"""The numpy runtime: an aligned model's inference in numpy, without torch.

Converting a file needs only the forward pass of the two LMs, the adapters and the meter
head; in numpy that spares the torch import (about 1 s, more than decoding a short file
takes) and the per-operation overhead of torch's small products, which dominates the
note-by-note decoding of windows this size. The same weights (``safetensors``) are read
from the same folders as ``perf2score.models.io.load_aligned``, LoRA merged into the
weights it adapts; ``tests/test_runtime.py`` checks that it decodes the same attributes as
the torch model. Training and anything else that needs gradients use the torch modules.

Mirrors ``perf2score.models.blocks`` / ``lm`` / ``adapter`` / ``meter_head`` (pre-norm blocks,
interleaved rotary positions, low-rank cross-attention read from a softmax mixture of the
performance LM's layers, tanh gates). Shapes: B batch (windows), T notes, S keys, H heads,
D head width, C model width, R adapter rank, L performance layers + 1, V a vocabulary.
"""

from __future__ import annotations

import copy
import functools
import os
import threading
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from perf2score.errors import Perf2ScoreError
from perf2score.models.config import (
    AdapterConfig,
    LMConfig,
    adapter_sources,
    read_aligned_configs,
    read_meter_json,
)
from perf2score.models.digest import lm_digest
from perf2score.tokens.spec import STREAMS
from perf2score.tokens.timing import played_ratio_ids

Weights = dict[str, np.ndarray]
LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default
# windows an encoder pass takes through its blocks at a time (NumpyLM.encode_from): 4 windows
# of 128 notes keep the feed-forward's (512, 576) activations within a core's 4 MiB L2 cache
# (26 windows, one thread: 15 % faster than all at once; 2026-12-05, sixteenth session)
ENCODED_TOGETHER = 4


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Normalise the last axis of x (..., C) to zero mean and unit variance, then scale;
    one new array of x's size besides the squares."""
    inverse_width = np.float32(1 / x.shape[-1])
    centred = x - x.sum(-1, keepdims=True) * inverse_width
    variance = np.square(centred).sum(-1, keepdims=True) * inverse_width
    centred /= np.sqrt(variance + LAYER_NORM_EPS)
    centred *= weight
    centred += bias
    return centred


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU of float32 x, erf from Abramowitz & Stegun 7.1.26 (error below
    1.5e-7), computed in three buffers of x's size (the feed-forward's largest arrays): with
    q = |x| (1 - erf(|x| / √2)) / 2, GELU(x) = max(x, 0) - q for either sign."""
    z = np.abs(x)
    z *= np.float32(1 / np.sqrt(2))
    t = z * np.float32(0.3275911)
    t += 1
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(coefficient)
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # 1 - erf(|x| / √2)
    poly *= np.float32(0.5)
    np.abs(x, out=t)
    poly *= t  # q: -GELU for x < 0, x - GELU for x ≥ 0
    np.maximum(x, 0, out=t)
    t -= poly
    return t


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (entries at -inf get weight 0); one new array."""
    e = x - x.max(-1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(-1, keepdims=True)
    return e


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis of x (B, V) (entries at -inf stay at -inf)."""
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def rotary_tables(count: int, dim: int, base: float) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin (count, dim/2) for positions 0..count-1 (computed once per model)."""
    inv = (1.0 / base ** (np.arange(0, dim, 2, dtype=np.float32) / dim)).astype(np.float32)
    angles = np.arange(count, dtype=np.float32)[:, None] * inv[None, :]
    return np.cos(angles), np.sin(angles)


def rotate(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate channel pairs (0, 1), (2, 3), .. of x (B, H, T, D) by angles (T, D/2)."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    even, odd = out[..., 0::2], out[..., 1::2]  # views: written in place
    np.multiply(x1, cos, out=even)
    even -= x2 * sin
    np.multiply(x1, sin, out=odd)
    odd += x2 * cos
    return out


def pair_swap(width: int) -> np.ndarray:
    """Index (width,) that swaps channels 2i and 2i+1 (the pairs ``rotate`` turns)."""
    return np.arange(width).reshape(-1, 2)[:, ::-1].reshape(width).copy()


def rotation_rows(cos: np.ndarray, sin: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The rotation of ``rotate`` as multipliers of flat rows: (N, width) of x and of x
    pair-swapped (``pair_swap``), from tables cos, sin (N, D/2) repeated over each pair and
    over the heads (``width`` a multiple of D), sin signed -, + within each pair:
    ``rotate`` of x (.., width) at position n is ``x * c[n] + x[.., swap] * s[n]``."""
    c, s = np.repeat(cos, 2, axis=1), np.repeat(sin, 2, axis=1)
    s[:, 0::2] *= -1
    copies = width // c.shape[1]
    return np.tile(c, (1, copies)), np.tile(s, (1, copies))


def attend(
    q: np.ndarray, keys_t: np.ndarray, v: np.ndarray, bias: np.ndarray | None, scaled: bool = False
) -> np.ndarray:
    """Scaled dot-product attention: q (B, H, T, D), keys transposed (B, H, D, S), values
    (B, H, S, D), ``bias`` broadcast to (B, H, T, S) (0 = attend, -inf = not) or None
    -> (B, H, T, D); ``scaled``: q already carries the factor 1/√D."""
    scores = q @ keys_t
    if not scaled:
        scores *= np.float32(1 / np.sqrt(q.shape[-1]))
    if bias is not None:
        scores += bias
    return softmax(scores) @ v


def padding_bias(padding: np.ndarray) -> np.ndarray:
    """(B, 1, 1, S) additive attention bias: -inf at padded keys (``padding`` (B, S) True)."""
    return np.where(padding, -np.inf, 0.0).astype(np.float32)[:, None, None, :]


def dense(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """x (..., in) @ weight (in, out) as one 2-D product (numpy loops over stacked ones)."""
    return (x.reshape(-1, x.shape[-1]) @ weight).reshape(*x.shape[:-1], weight.shape[1])


def heads_view(x: np.ndarray, n_heads: int) -> np.ndarray:
    """(B, T, H·D) -> (B, H, T, D)."""
    B, T, C = x.shape
    return x.reshape(B, T, n_heads, C // n_heads).transpose(0, 2, 1, 3)


def merged_view(x: np.ndarray) -> np.ndarray:
    """(B, H, T, D) -> (B, T, H·D)."""
    B, H, T, D = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * D)


@dataclass
class NumpyBlock:
    """One pre-norm transformer block's weights (linear weights stored transposed, (in, out))."""

    norm1: tuple[np.ndarray, np.ndarray]
    norm2: tuple[np.ndarray, np.ndarray]
    qkv: np.ndarray  # (C, 3C)
    out: np.ndarray  # (C, C)
    ff_in: tuple[np.ndarray, np.ndarray]  # (C, F), (F,)
    ff_out: tuple[np.ndarray, np.ndarray]  # (F, C), (C,)
    step_qkv: np.ndarray | None = None  # (C, 3C) with q's columns scaled by 1/√D (``step``)

    def feed_forward(self, x: np.ndarray) -> np.ndarray:
        """The feed-forward sub-layer's update of x (..., C)."""
        hidden = gelu(dense(layer_norm(x, *self.norm2), self.ff_in[0]) + self.ff_in[1])
        return dense(hidden, self.ff_out[0]) + self.ff_out[1]


class NumpyLM:
    """A ``NoteLM``'s forward pass: the bidirectional encoder pass (performance LM) and the
    causal one-note step with a KV cache (score LM)."""

    def __init__(self, config: LMConfig, weights: Weights):
        self.config = config
        get = _getter(weights, config.kind)
        self.embeddings = {name: get(f"embeddings.{name}.weight") for name in config.input_streams}
        self.blocks = [
            NumpyBlock(
                norm1=(get(f"blocks.{i}.norm1.weight"), get(f"blocks.{i}.norm1.bias")),
                norm2=(get(f"blocks.{i}.norm2.weight"), get(f"blocks.{i}.norm2.bias")),
                qkv=_linear(weights, f"blocks.{i}.attention.qkv", config.kind),
                out=_linear(weights, f"blocks.{i}.attention.out", config.kind),
                ff_in=(
                    get(f"blocks.{i}.feed_forward.net.0.weight").T.copy(),
                    get(f"blocks.{i}.feed_forward.net.0.bias"),
                ),
                ff_out=(
                    get(f"blocks.{i}.feed_forward.net.2.weight").T.copy(),
                    get(f"blocks.{i}.feed_forward.net.2.bias"),
                ),
            )
            for i in range(config.n_layers)
        ]
        self.head_dim = config.d_model // config.n_heads
        self.cos, self.sin = rotary_tables(config.max_notes, self.head_dim, config.rope_base)
        if config.causal:  # the one-note step's tables, and the output heads fused
            C = config.d_model
            for block in self.blocks:
                block.step_qkv = block.qkv.copy()
                block.step_qkv[:, :C] *= np.float32(1 / np.sqrt(self.head_dim))
            self.step_cos, self.step_sin = rotation_rows(self.cos, self.sin, 2 * C)  # q and k
            self.step_swap = pair_swap(2 * C)
            self.norm = (get("norm.weight"), get("norm.bias"))
            names = config.output_streams
            self.head_weight = np.concatenate([get(f"heads.{n}.weight") for n in names]).T.copy()
            self.head_bias = np.concatenate([get(f"heads.{n}.bias") for n in names])
            sizes = np.cumsum([0] + [STREAMS[n].size for n in names])
            self.head_slices = {
                n: slice(a, b) for n, a, b in zip(names, sizes[:-1], sizes[1:], strict=True)
            }

    def embed(self, tokens: dict[str, np.ndarray]) -> np.ndarray:
        """Sum of the input streams' embeddings: ids (B, T) per stream -> (B, T, C)."""
        names = self.config.input_streams
        x = self.embeddings[names[0]][tokens[names[0]]]
        for name in names[1:]:
            x = x + self.embeddings[name][tokens[name]]
        return x

    def encode(self, tokens: dict[str, np.ndarray], padding: np.ndarray) -> list[np.ndarray]:
        """Hidden states [(B, T, C)] * (n_layers + 1) (embeddings first) of a bidirectional
        pass over ids (B, T) per stream; ``padding`` (B, T) True at padded notes."""
        x = self.embed(tokens)
        return [x, *self.encode_from(x, padding)]

    def encode_from(self, x: np.ndarray, padding: np.ndarray, first: int = 0) -> list[np.ndarray]:
        """The outputs [(B, T, C)] of blocks ``first`` on, from ``x`` (B, T, C), the input of
        block ``first`` (the embeddings for 0); ``padding`` (B, T) as in ``encode``. At most
        ``ENCODED_TOGETHER`` windows go through the blocks at a time: their activations
        then stay in a core's cache (the same floats: each window's products are its own)."""
        if len(x) > ENCODED_TOGETHER:
            groups = [
                self._encode_group(
                    x[s : s + ENCODED_TOGETHER], padding[s : s + ENCODED_TOGETHER], first
                )
                for s in range(0, len(x), ENCODED_TOGETHER)
            ]
            return [np.concatenate(layer) for layer in zip(*groups, strict=True)]
        return self._encode_group(x, padding, first)

    def _encode_group(self, x: np.ndarray, padding: np.ndarray, first: int) -> list[np.ndarray]:
        """``encode_from`` for one group of windows."""
        length = x.shape[1]
        if length > self.config.max_notes:
            raise ValueError(f"{length} notes exceed max_notes={self.config.max_notes}")
        cos, sin = self.cos[:length], self.sin[:length]
        bias = padding_bias(padding)  # (B, 1, 1, T)
        hidden = []
        H = self.config.n_heads
        for block in self.blocks[first:]:
            q, k, v = np.split(dense(layer_norm(x, *block.norm1), block.qkv), 3, axis=-1)
            q, k, v = heads_view(q, H), heads_view(k, H), heads_view(v, H)
            y = attend(rotate(q, cos, sin), rotate(k, cos, sin).transpose(0, 1, 3, 2), v, bias)
            x = x + dense(merged_view(y), block.out)
            x = x + block.feed_forward(x)
            hidden.append(x)
        return hidden

    def new_cache(self, batch: int, length: int) -> list[list[np.ndarray]]:
        """Per layer, buffers for ``step``: keys transposed (B, H, D, length) and values
        (B, H, length, D)."""
        H, D = self.config.n_heads, self.head_dim
        return [
            [
                np.zeros((batch, H, D, length), np.float32),
                np.zeros((batch, H, length, D), np.float32),
            ]
            for _ in self.blocks
        ]

    def step(self, x: np.ndarray, t: int, cache: list, cross: list) -> dict[str, np.ndarray]:
        """Logits (B, V) per output stream for one note at position ``t`` whose embedded
        inputs are x (B, C); ``cross`` (one callable per layer) is the adapter's hook."""
        if t >= self.config.max_notes:
            raise ValueError(f"{t + 1} notes exceed max_notes={self.config.max_notes}")
        cos, sin, swap = self.step_cos[t], self.step_sin[t], self.step_swap
        B, H, D = x.shape[0], self.config.n_heads, self.head_dim
        C = H * D
        for block, (keys, values), hook in zip(self.blocks, cache, cross, strict=True):
            qkv = layer_norm(x, *block.norm1) @ block.step_qkv  # (B, 3C), q scaled
            qk = qkv[:, : 2 * C]
            qk = qk * cos + qk[:, swap] * sin  # q and k rotated (``rotation_rows``)
            keys[:, :, :, t] = qk[:, C:].reshape(B, H, D)
            values[:, :, t] = qkv[:, 2 * C :].reshape(B, H, D)
            q = qk[:, :C].reshape(B, H, 1, D)
            y = attend(q, keys[..., : t + 1], values[:, :, : t + 1], None, scaled=True)
            x = x + y.reshape(B, H * D) @ block.out
            x = x + hook(x, t)
            x = x + block.feed_forward(x)
        logits = layer_norm(x, *self.norm) @ self.head_weight + self.head_bias  # (B, ΣV)
        return {name: logits[:, part] for name, part in self.head_slices.items()}


@dataclass
class NumpyCross:
    """One score layer's cross-attention adapter (``models.adapter.CrossAdapter``)."""

    sources: list[int]
    mixture: np.ndarray  # (L,) softmax of the mixture logits
    memory_norm: tuple[np.ndarray, np.ndarray]
    query_norm: tuple[np.ndarray, np.ndarray]
    q: np.ndarray  # (C, R)
    kv: np.ndarray  # (C_perf, 2R)
    out: np.ndarray  # (R, C)
    gate: float  # tanh of the gate
    n_heads: int
    cos: np.ndarray
    sin: np.ndarray

    def __post_init__(self):
        rank = self.q.shape[1]
        self.head_dim = rank // self.n_heads
        self.q_scaled = self.q * np.float32(1 / np.sqrt(self.head_dim))  # (C, R)
        self.step_cos, self.step_sin = rotation_rows(self.cos, self.sin, rank)
        self.swap = pair_swap(rank)

    def memory(self, hidden: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Keys transposed (B, H, D, M) and values (B, H, M, D) from the performance LM's
        states [(B, M, C)] * L."""
        mixed = sum(w * hidden[s] for w, s in zip(self.mixture, self.sources, strict=True))
        k, v = np.split(dense(layer_norm(mixed, *self.memory_norm), self.kv), 2, axis=-1)
        M = k.shape[1]
        keys = rotate(heads_view(k, self.n_heads), self.cos[:M], self.sin[:M])
        return np.ascontiguousarray(keys.transpose(0, 1, 3, 2)), heads_view(v, self.n_heads)

    def __call__(
        self, x: np.ndarray, t: int, memory: tuple, bias: np.ndarray, copies: int = 1
    ) -> np.ndarray:
        """Residual update (B, C) for the score state x (B, C) at position ``t``; with
        ``copies`` > 1, rows b·copies … b·copies + copies - 1 of x read window b's ``memory``
        (the hypotheses of a beam: one product per window and head for all of them)."""
        B, H = x.shape[0], self.n_heads
        q = layer_norm(x, *self.query_norm) @ self.q_scaled  # (B, R)
        q = q * self.step_cos[t] + q[:, self.swap] * self.step_sin[t]
        if copies == 1:
            y = attend(q.reshape(B, H, 1, -1), memory[0], memory[1], bias, scaled=True)
            return self.gate * (y.reshape(B, -1) @ self.out)  # y (B, H, 1, D)
        windows = B // copies
        q = q.reshape(windows, copies, H, -1).transpose(0, 2, 1, 3)  # (W, H, copies, D)
        y = attend(q, memory[0], memory[1], bias, scaled=True)  # (W, H, copies, D)
        return self.gate * (y.transpose(0, 2, 1, 3).reshape(B, -1) @ self.out)


def moved_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the rows r whose parent ``rows[r]`` is another row, those parents): what a beam's
    ``reorder`` copies (both empty when every hypothesis continues itself)."""
    moved = np.flatnonzero(rows != np.arange(len(rows)))
    return moved, rows[moved]


class NumpySession:
    """Decoding state of one batch of windows: the adapters' memory, the score LM's KV cache,
    (when asked) the heads' log-odds (B, T, Q) in ``odds``, one column per question of
    ``model.head_questions()`` (the meter head's, then the hand head's), and the step
    head's log-odds (B, T, 2) in ``steps`` when the model has one (else None).

    With a ``prior`` weight α > 0, the score LM also runs on the same notes without the
    adapters (the score prior: what the LM expects from the notes before, the performance
    unread), and the listed streams' scores become log p(y | performance) - α log p(y):
    evidence from the performance counts more against the LM's habit of repeating itself.

    ``background``: a second core is free. The encoder pass is split between this thread
    and another (half the windows each), and the heads' log-odds are computed in a thread
    beside the decoding steps (large products release the GIL); ``odds`` waits for them.
    The same floats either way (each window's products are the same)."""

    def __init__(
        self,
        model: NumpyAligned,
        perf: dict,
        padding: np.ndarray,
        want_odds: bool,
        prior: tuple[float, tuple[str, ...]] = (0.0, ()),
        background: bool = False,
    ):
        B, T = padding.shape
        hidden = _encoded(model.performance, perf, padding, background)
        self.model = model
        self.memory = [adapter.memory(hidden) for adapter in model.adapters]
        self.bias = padding_bias(padding)  # (B, 1, 1, M)
        self.prior_weight, self.prior_streams = prior
        self.batch, self.length, self.copies = B, T, 1
        rows = 2 * B if self.prior_weight > 0 else B  # the prior's rows below the batch's
        self.cache = model.score.new_cache(rows, T)
        self.hooks = self._hooks()
        heads = model.heads() if want_odds else []
        # the step head's log-odds (B, T, 2) (same step, longer step), read by the decoder
        self.steps = None
        if model.steps is not None:
            self.steps = model.steps.answer(np.concatenate(hidden, -1))
        self._odds = BackgroundCall(_heads_odds, heads, hidden, padding, perf)
        if not background:
            self._odds.result()
        else:
            self._odds.start()
        # the notes' played step ratios embedded (B, T, C), added to the score LM's input
        self.ratios = None if model.ratio is None else model.ratio[played_ratio_ids(perf["ioi"])]

    def _hooks(self) -> list:
        """The adapters' residual updates, one callable per score layer; with the prior the
        adapters read the performance for the batch's rows only."""
        B, copies, bias = self.batch, self.copies, self.bias
        rows_read = _above if self.prior_weight > 0 else (lambda update: update)
        # the callables hold the arrays, not the session: a cycle through the session would
        # keep each batch's KV cache alive until Python's cyclic collector ran
        return [
            (lambda h, step, a=adapter, m=memory: rows_read(a(h[:B], step, m, bias, copies)))
            for adapter, memory in zip(self.model.adapters, self.memory, strict=True)
        ]

    def expand(self, copies: int) -> None:
        """Before the first step: decode each window as ``copies`` rows (window b's are rows
        b·copies … b·copies + copies - 1), the hypotheses of a beam. Not with the prior."""
        if self.prior_weight > 0:
            raise ValueError("a beam does not decode with the score prior")
        if self.ratios is not None:
            self.ratios = np.repeat(self.ratios, copies, axis=0)
        self.batch *= copies
        self.copies = copies  # the adapters read each window's memory for all its copies
        self.cache = self.model.score.new_cache(self.batch, self.length)
        self.hooks = self._hooks()

    def reorder(self, rows: np.ndarray, filled: int) -> None:
        """Row r of the KV cache becomes row ``rows[r]``'s (B,), for its first ``filled``
        notes (the hypotheses a beam keeps, each continuing its parent)."""
        moved, parents = moved_rows(rows)
        for keys, values in self.cache:
            keys[moved, ..., :filled] = keys[parents, ..., :filled]
            values[moved, :, :filled] = values[parents, :, :filled]

    @property
    def odds(self) -> np.ndarray | None:
        """The heads' log-odds (B, T, Q), None when not asked (waits for a background pass)."""
        return self._odds.result()

    def step(self, previous: dict[str, np.ndarray], pitch: np.ndarray, t: int) -> dict:
        """Logits (B, V) per score stream for note ``t``: ``previous`` the previous notes'
        score ids (B,) per stream, ``pitch`` (B,) the notes' performance pitch ids."""
        score = self.model.score
        tokens = {**previous, "pitch": pitch}
        x = score.embed({name: tokens[name] for name in score.config.input_streams})  # (B, C)
        if self.ratios is not None:
            x = x + self.ratios[:, t]
        if self.prior_weight <= 0:
            return score.step(x, t, self.cache, self.hooks)
        B = self.batch
        both = score.step(np.concatenate([x, x]), t, self.cache, self.hooks)
        out = {}
        for name, logits in both.items():
            if name in self.prior_streams:
                out[name] = log_softmax(logits[:B]) - self.prior_weight * log_softmax(logits[B:])
            else:
                out[name] = logits[:B]
        return out


def _encoded(
    lm: NumpyLM, perf: dict[str, np.ndarray], padding: np.ndarray, split: bool
) -> list[np.ndarray]:
    """``lm.encode`` of ids (B, T) per stream; ``split``: the later half of the windows in
    another thread (a free second core), the states joined in window order."""
    half = padding.shape[0] // 2
    if not split or half == 0:
        return lm.encode(perf, padding)
    later = BackgroundCall(lm.encode, {k: v[half:] for k, v in perf.items()}, padding[half:])
    later.start()
    first = lm.encode({k: v[:half] for k, v in perf.items()}, padding[:half])
    return [np.concatenate(pair) for pair in zip(first, later.result(), strict=True)]


def _heads_odds(
    heads: list, hidden: list[np.ndarray], padding: np.ndarray, perf: dict
) -> np.ndarray | None:
    """The ``heads``' log-odds (B, T, Q) side by side, from the decoder's encoder states
    ``hidden`` [(B, T, C)] * L (None without heads)."""
    if not heads:
        return None
    features = np.concatenate(hidden, -1) if any(h.performance is None for h in heads) else None
    answers = [
        h.answer(features) if h.performance is None else h.pass_odds(hidden, padding, perf)
        for h in heads
    ]
    return np.concatenate(answers, -1)


class BackgroundCall:
    """``function(*args)`` computed once, in a thread when ``start`` is called, else when
    the result is first asked for; an exception it raised is raised to the caller."""

    def __init__(self, function, *args):
        self._call = (function, args)
        self._thread: threading.Thread | None = None
        self._done = False
        self._value = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        function, args = self._call
        self._call = (function, ())  # the arguments (a batch's encoder states) are let go
        try:
            self._value = function(*args)
        except BaseException as exc:  # handed to the thread that asks for the result
            self._error = exc
        self._done = True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def result(self):
        if self._thread is not None:
            self._thread.join()
        elif not self._done:
            self._run()
        if self._error is not None:
            raise self._error
        return self._value


def _above(update: np.ndarray) -> np.ndarray:
    """(2B, C): the batch's update (B, C) above zeros (the prior's rows, no performance)."""
    return np.concatenate([update, np.zeros_like(update)])


class NumpyMeter:
    """A per-note head on performance LM states (``models.meter_head.MeterModel.odds``):
    the meter head (``questions`` downbeat, beat), the hand head (staff) or the step head
    (same_step, longer_step)."""

    def __init__(
        self,
        weights: Weights,
        questions: tuple[str, ...] = ("downbeat", "beat"),
        performance: NumpyLM | None = None,
        shared: int = 0,
    ):
        self.questions = tuple(questions)
        # its own (trained) performance LM, read in a pass of its own; None: the model's
        self.performance = performance
        # with its own LM: how many blocks below its trained ones are the model's (their
        # states then come from the decoder's encoder pass; 0: the whole pass is its own)
        self.shared = shared
        get = _getter(weights, "meter")
        self.norm = (get("head.0.weight"), get("head.0.bias"))
        self.hidden = (get("head.1.weight").T.copy(), get("head.1.bias"))
        self.out = (get("head.4.weight").T.copy(), get("head.4.bias"))

    def odds(self, hidden: list[np.ndarray]) -> np.ndarray:
        """(B, T, Q) log-odds of yes per question from the states [(B, T, C)] * L."""
        return self.answer(np.concatenate(hidden, -1))

    def pass_odds(
        self, hidden: list[np.ndarray], padding: np.ndarray, tokens: dict[str, np.ndarray]
    ) -> np.ndarray:
        """(B, T, Q) log-odds of a head with its own performance LM for the windows of the
        decoder's encoder pass (its states [(B, T, C)] * L, of the ids ``tokens`` (B, T) per
        stream): its own top blocks run on from those states, or its whole own pass."""
        if not self.shared:
            return self.read(tokens, padding)
        below = hidden[: self.shared + 1]
        return self.odds([*below, *self.performance.encode_from(below[-1], padding, self.shared)])

    def read(self, tokens: dict[str, np.ndarray], padding: np.ndarray) -> np.ndarray:
        """(B, T, Q) log-odds from performance ids (B, T) per stream through the head's own
        performance LM (only for a head that has one)."""
        if self.performance is None:
            raise ValueError("this head reads the decoder's performance LM, not its own")
        return self.odds(self.performance.encode(tokens, padding))

    def answer(self, features: np.ndarray) -> np.ndarray:
        """(B, T, Q) log-odds of yes per question from the states concatenated (B, T, C * L)."""
        x = layer_norm(features, *self.norm)
        out = dense(gelu(dense(x, self.hidden[0]) + self.hidden[1]), self.out[0]) + self.out[1]
        return out[..., 1::2] - out[..., 0::2]


class NumpyAligned:
    """An aligned model (performance LM + score LM + adapters, and optionally the meter and
    hand heads and the step head reading the same performance LM) for inference in numpy."""

    def __init__(self, performance: NumpyLM, score: NumpyLM, adapters: list[NumpyCross]):
        self.performance, self.score, self.adapters = performance, score, adapters
        self.meter: NumpyMeter | None = None  # the meter head (``with_meter_head``)
        self.hands: NumpyMeter | None = None  # the hand head (``with_meter_head``)
        self.steps: NumpyMeter | None = None  # the step head (``with_meter_head``)
        self.performance_folder: Path | None = None  # where the frozen performance LM is
        # the digest of a trained (not frozen) performance LM (``perf2score.models.digest``)
        self.performance_digest: str | None = None
        self.ratio: np.ndarray | None = None  # played step ratio embedding (RATIO_IDS, C)

    def heads(self) -> list[NumpyMeter]:
        """The heads read with the encoder pass (each from its states, or with the head's
        own LM blocks beside it): the meter head, then the hand head."""
        return [head for head in (self.meter, self.hands) if head is not None]

    def head_questions(self) -> tuple[str, ...]:
        """The columns of a session's ``odds``."""
        return tuple(q for head in self.heads() for q in head.questions)

    def session(
        self,
        perf: dict,
        padding: np.ndarray,
        want_odds: bool = False,
        prior: tuple[float, tuple[str, ...]] = (0.0, ()),
        background: bool = False,
    ) -> NumpySession:
        """Start decoding a batch: performance ids (B, T) per stream, ``padding`` (B, T);
        ``prior`` (weight, streams) and ``background``: see ``NumpySession``."""
        return NumpySession(self, perf, padding, want_odds, prior, background)


def _getter(weights: Weights, where: str):
    def get(key: str) -> np.ndarray:
        if key not in weights:
            raise Perf2ScoreError(f"{where} weights: {key} is missing")
        return weights[key]

    return get


def _linear(weights: Weights, name: str, where: str) -> np.ndarray:
    """A bias-free linear layer's weight, transposed to (in, out), LoRA merged when the
    weights hold it (``W + alpha/r · up @ down``; ``alpha/r`` as ``<name>.scale``)."""
    base = weights.get(f"{name}.weight", weights.get(f"{name}.base.weight"))
    if base is None:
        raise Perf2ScoreError(f"{where} weights: {name}.weight is missing")
    down, up = weights.get(f"{name}.down.weight"), weights.get(f"{name}.up.weight")
    if down is not None and up is not None:
        base = base + weights[f"{name}.scale"] * (up @ down)
    return np.ascontiguousarray(base.T)


@functools.cache
def _half_to_single() -> np.ndarray:
    """(65,536,) float32: the value of every float16 bit pattern, by the pattern."""
    return np.arange(2**16, dtype=np.uint16).view(np.float16).astype(np.float32)


def as_float32(weights: np.ndarray) -> np.ndarray:
    """``weights`` as float32: float16 through a table of all 65,536 bit patterns (the same
    values as ``astype``, in half its time: a shipped model's load 31 -> 16 ms)."""
    if weights.dtype != np.float16:
        return weights.astype(np.float32)
    return _half_to_single()[weights.view(np.uint16)]


def _read(path: Path) -> Weights:
    try:
        return {k: as_float32(v) for k, v in load_file(str(path)).items()}
    except (OSError, ValueError) as exc:
        raise Perf2ScoreError(f"{path}: unreadable weights ({exc})") from exc


def _part(weights: Weights, prefix: str) -> Weights:
    return {k.removeprefix(prefix): v for k, v in weights.items() if k.startswith(prefix)}


def load_numpy_aligned(
    folder: str | os.PathLike, meter: str | os.PathLike | None = None
) -> NumpyAligned:
    """The aligned model of ``folder`` (as ``models.io.load_aligned``) for the numpy runtime,
    with the meter head of the folder ``meter`` when given (it must read the same
    performance LM: ``Perf2ScoreError`` otherwise)."""
    folder = Path(folder)
    config, adapter, (perf_config, score_config) = read_aligned_configs(folder)
    trained = _read(folder / "adapter.safetensors")
    perf_weights = _performance_weights(folder, config, adapter, trained)
    score_weights: Weights = {}
    if not adapter.holds_every_weight:
        score_weights = _read(folder / config["base"]["score"] / "model.safetensors")
    score_weights.update(_part(trained, "score."))
    if adapter.lora_rank:
        for key in [k for k in score_weights if k.endswith(".down.weight")]:
            score_weights[key.removesuffix(".down.weight") + ".scale"] = np.float32(
                adapter.lora_alpha / adapter.lora_rank
            )
    performance = NumpyLM(perf_config, perf_weights)
    score = NumpyLM(score_config, score_weights)
    head_dim = adapter.rank // adapter.n_heads
    cos, sin = rotary_tables(
        max(perf_config.max_notes, score_config.max_notes), head_dim, adapter.rope_base
    )
    adapters = []
    for i in range(score_config.n_layers):
        get = _getter(trained, "adapter")
        sources = adapter_sources(adapter.mapping, i, perf_config.n_layers, score_config.n_layers)
        mix = get(f"adapters.{i}.mix_logits")
        adapters.append(
            NumpyCross(
                sources=sources,
                mixture=np.exp(mix - mix.max()) / np.exp(mix - mix.max()).sum(),
                memory_norm=(
                    get(f"adapters.{i}.memory_norm.weight"),
                    get(f"adapters.{i}.memory_norm.bias"),
                ),
                query_norm=(
                    get(f"adapters.{i}.query_norm.weight"),
                    get(f"adapters.{i}.query_norm.bias"),
                ),
                q=get(f"adapters.{i}.q.weight").T.copy(),
                kv=get(f"adapters.{i}.kv.weight").T.copy(),
                out=get(f"adapters.{i}.out.weight").T.copy(),
                gate=float(np.tanh(get(f"adapters.{i}.gate"))),
                n_heads=adapter.n_heads,
                cos=cos,
                sin=sin,
            )
        )
    model = NumpyAligned(performance, score, adapters)
    if adapter.played_ratio:
        ratio = _getter(trained, "adapter")("ratio.weight")  # (RATIO_IDS, C)
        model.ratio = ratio * np.float32(np.sqrt(ratio.shape[1]))  # as AlignedModel.ratio_inputs
    if adapter.performance_frozen:
        model.performance_folder = (folder / config["base"]["performance"]).resolve()
    else:  # recorded when saved (older folders: computed, about 25 ms)
        model.performance_digest = config.get("performance_digest") or lm_digest(perf_weights)
    return model if meter is None else with_meter_head(model, meter)


def _performance_weights(
    folder: Path, config: dict, adapter: AdapterConfig, trained: Weights
) -> Weights:
    """The performance LM's weights of the aligned model in ``folder`` (``adapter.json`` as
    read, its adapter config, its ``adapter.safetensors``): the base LM's, then the
    trained ones over them."""
    weights: Weights = {}
    if not adapter.holds_every_weight:
        weights = _read(folder / config["base"]["performance"] / "model.safetensors")
    weights.update(_part(trained, "performance."))
    return weights


def performance_lm(folder: str | os.PathLike) -> tuple[NumpyLM, str | None]:
    """(the performance LM, its digest or None) of an LM folder (``config.json`` +
    ``model.safetensors``; no digest) or of an aligned-model folder (``adapter.json``: the
    LM it decodes with; the digest recorded there, or computed)."""
    folder = Path(folder)
    if not (folder / "adapter.json").is_file():
        lm_config = LMConfig.from_json(folder / "config.json")
        return NumpyLM(lm_config, _read(folder / "model.safetensors")), None
    config, adapter, (lm_config, _) = read_aligned_configs(folder)
    weights = _performance_weights(folder, config, adapter, _read(folder / "adapter.safetensors"))
    digest = config.get("performance_digest") or lm_digest(weights)
    return NumpyLM(lm_config, weights), digest


def numpy_reads(model: NumpyAligned, folder: str | os.PathLike) -> bool:
    """Whether ``with_meter_head`` can give ``model`` the head of ``folder``: the head has a
    performance LM of its own, or it reads the model's (``reads_model_lm``)."""
    return has_own_lm(folder) or reads_model_lm(model, folder)


def reads_model_lm(model: NumpyAligned, folder: str | os.PathLike) -> bool:
    """Whether the meter head of ``folder`` reads ``model``'s own performance LM: for a
    model whose LM was trained, the head recorded that LM's digest; for a frozen one, the
    head's base is the same LM folder or one holding the same weights (a head on an
    aligned model's LM reads its own copy) (``Perf2ScoreError`` for a folder without a
    valid head)."""
    folder = Path(folder)
    config, _ = read_meter_json(folder)
    if model.performance_digest is not None:
        return config.get("performance_digest") == model.performance_digest
    base = (folder / config["base"]).resolve()
    mine = model.performance_folder
    if mine is None or (base / "adapter.json").is_file():
        return False
    return base == mine or _same_weights(base, mine)


def with_meter_head(model: NumpyAligned, folder: str | os.PathLike) -> NumpyAligned:
    """A copy of ``model`` with the head of ``folder``: as its hand head when the head
    answers "staff", as its step head when it answers "same_step", else as its meter head.
    A head trained on a performance LM that is not the model's (a model whose performance
    LM was fine-tuned) reads its own copy of the LM it was trained on, in a pass of its own."""
    head = load_numpy_head(folder, own_lm=not numpy_reads(model, folder))
    if head.shared and not _same_below(head.performance, model.performance, head.shared):
        raise Perf2ScoreError(f"{folder}: its untrained blocks are not the model's")
    attached = copy.copy(model)  # everything the model carries; one head replaced below
    if "staff" in head.questions:
        attached.hands = head
    elif "same_step" in head.questions:
        attached.steps = head
    else:
        attached.meter = head
    return attached


def has_own_lm(folder: str | os.PathLike) -> bool:
    """Whether the head of ``folder`` was trained with a performance LM of its own (kept
    beside it; ``MeterConfig.tune_performance``)."""
    _, config = read_meter_json(folder)
    return config.tune_performance


def load_numpy_head(folder: str | os.PathLike, own_lm: bool = False) -> NumpyMeter:
    """The per-note head of ``folder`` (``meter.json`` + ``meter.safetensors``, and its own
    performance LM when it was trained with one, or when ``own_lm``: the LM at its base,
    read in a pass of its own instead of the decoder's states)."""
    meta, config = read_meter_json(folder)
    performance, shared = None, 0
    if config.tune_performance or own_lm:
        performance, digest = performance_lm(Path(folder) / meta["base"])
        recorded = meta.get("performance_digest")
        if digest is not None and recorded is not None and digest != recorded:
            raise Perf2ScoreError(
                f"{folder}: its base {meta['base']} no longer holds the performance LM the "
                "head was trained on (retrain the head on it, or ship the head's model)"
            )
        if config.tuned_layers:
            shared = performance.config.n_layers - config.tuned_layers
    weights = _read(Path(folder) / "meter.safetensors")
    return NumpyMeter(weights, config.questions, performance, shared)


def _same_below(mine: NumpyLM, theirs: NumpyLM, blocks: int) -> bool:
    """Whether two LMs have the same embeddings and first ``blocks`` blocks."""
    if mine.embeddings.keys() != theirs.embeddings.keys() or not all(
        np.array_equal(mine.embeddings[k], theirs.embeddings[k]) for k in mine.embeddings
    ):
        return False
    for a, b in zip(mine.blocks[:blocks], theirs.blocks[:blocks], strict=True):
        for field in fields(NumpyBlock):
            x, y = getattr(a, field.name), getattr(b, field.name)
            pairs = zip(x, y, strict=True) if isinstance(x, tuple) else [(x, y)]
            if not all(_equal(u, v) for u, v in pairs):
                return False
    return True


def _equal(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (
        a is not None and b is not None and a.shape == b.shape and np.array_equal(a, b)
    )


def _same_weights(a: Path, b: Path) -> bool:
    first, second = _read(a / "model.safetensors"), _read(b / "model.safetensors")
    return first.keys() == second.keys() and all(
        first[k].shape == second[k].shape and np.array_equal(first[k], second[k]) for k in first
    )
