"""Function alignment: the score LM reads the performance LM through inter-layer
cross-attention adapters.

Every score-LM layer ``i`` gets a cross-attention sub-layer after its self-attention. Its
keys and values come from a *memory* built from the performance LM's hidden states
(embedding output included): ``mix`` learns a softmax mixture over all of them per score
layer, ``one-to-one`` reads performance layer ``i`` (scaled to the depth of the score LM),
``last`` reads the last layer only (a plain encoder-decoder). Queries, keys and values go
through low-rank projections (``rank`` channels); score note ``n`` and performance note
``m`` share rotary positions (note ``n`` of the score is the score of performed note ``n``),
and a zero-initialised gate per layer makes training start from the unchanged score LM.
Optional LoRA on the score LM's attention projections.

Shapes: B batch, T score notes, M performance notes, L performance layers + 1, C widths,
R adapter rank, H heads, D = R / H.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from perf2score.models.blocks import apply_rotary, rotary_tables
from perf2score.models.config import AdapterConfig, adapter_sources
from perf2score.models.lm import NoteLM
from perf2score.tokens.timing import RATIO_IDS, played_ratio_ids


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) · B(A(x))`` with ``B`` zero-initialised (starts as ``base``)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base
        self.down = nn.Linear(base.in_features, rank, bias=False)
        self.up = nn.Linear(rank, base.out_features, bias=False)
        nn.init.zeros_(self.up.weight)
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * self.up(self.down(x))  # (..., out)


@torch.no_grad()
def merge_lora(model: nn.Module) -> int:
    """Replace every ``LoRALinear`` in ``model`` by one ``nn.Linear`` with the merged weight
    ``W + (alpha / r) · B A`` (for inference: one product instead of three); return how many."""
    merged = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LoRALinear):
                base = child.base
                linear = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
                linear.weight.copy_(base.weight + child.scale * child.up.weight @ child.down.weight)
                if base.bias is not None:
                    linear.bias.copy_(base.bias)
                linear.requires_grad_(False)
                setattr(parent, name, linear)
                merged += 1
    return merged


class CrossAdapter(nn.Module):
    """One score layer's cross-attention into the performance memory."""

    def __init__(self, d_score: int, d_perf: int, n_sources: int, config: AdapterConfig):
        super().__init__()
        self.config = config
        self.n_heads, self.head_dim = config.n_heads, config.rank // config.n_heads
        self.mix_logits = nn.Parameter(torch.zeros(n_sources))  # uniform mixture at start
        self.memory_norm = nn.LayerNorm(d_perf)
        self.query_norm = nn.LayerNorm(d_score)
        self.q = nn.Linear(d_score, config.rank, bias=False)
        self.kv = nn.Linear(d_perf, 2 * config.rank, bias=False)
        self.out = nn.Linear(config.rank, d_score, bias=False)
        self.gate = nn.Parameter(torch.zeros(()))  # tanh(0) = 0: the score LM unchanged

    def mixture(self) -> torch.Tensor:
        """(L,) weights over the performance layers this adapter reads."""
        return torch.softmax(self.mix_logits, dim=0)

    def memory(self, states: torch.Tensor) -> torch.Tensor:
        """Keys and values (B, H, M, D) x 2 from stacked performance states (L, B, M, C)."""
        mixed = torch.einsum("l,lbmc->bmc", self.mixture(), states)  # (B, M, C)
        B, M, _ = mixed.shape
        k, v = self.kv(self.memory_norm(mixed)).split(self.config.rank, dim=-1)  # (B, M, R)
        k = k.view(B, M, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, M, D)
        v = v.view(B, M, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, M, D)
        cos, sin = rotary_tables(
            torch.arange(M, device=k.device), self.head_dim, self.config.rope_base
        )
        return apply_rotary(k, cos, sin), v

    def forward(
        self,
        x: torch.Tensor,
        memory: tuple[torch.Tensor, torch.Tensor],
        positions: torch.Tensor,
        padding: torch.Tensor | None,
    ) -> torch.Tensor:
        """Residual update (B, T, C) for score states x (B, T, C) at ``positions`` (T,)."""
        B, T, _ = x.shape
        k, v = memory  # (B, H, M, D)
        q = self.q(self.query_norm(x)).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        cos, sin = rotary_tables(positions, self.head_dim, self.config.rope_base)  # (T, D/2)
        q = apply_rotary(q, cos, sin)  # (B, H, T, D)
        mask = None if padding is None else ~padding[:, None, None, :]  # (B, 1, 1, M)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.config.dropout if self.training else 0.0
        )  # (B, H, T, D)
        y = self.out(y.transpose(1, 2).reshape(B, T, self.config.rank))  # (B, T, C)
        return torch.tanh(self.gate) * y


class AlignedModel(nn.Module):
    """Performance LM (encoder) + score LM (decoder) joined by ``CrossAdapter`` layers."""

    def __init__(self, performance: NoteLM, score: NoteLM, config: AdapterConfig):
        super().__init__()
        if performance.config.causal or not score.config.causal:
            raise ValueError("need a performance (bidirectional) LM and a score (causal) LM")
        self.config = config
        self.performance, self.score = performance, score
        n_perf, n_score = performance.config.n_layers, score.config.n_layers
        self.sources = [self._sources(i, n_perf, n_score) for i in range(n_score)]
        self.adapters = nn.ModuleList(
            CrossAdapter(score.config.d_model, performance.config.d_model, len(s), config)
            for s in self.sources
        )
        # each note's played step ratio, embedded into the score LM's input: zero at start,
        # scaled by √C so that it grows to the size of the LM's own embeddings (N(0, 1)
        # rows) within a few hundred steps, not thousands
        self.ratio = nn.Embedding(RATIO_IDS, score.config.d_model) if config.played_ratio else None
        self.ratio_scale = float(score.config.d_model) ** 0.5
        if self.ratio is not None:
            nn.init.zeros_(self.ratio.weight)
        if config.lora_rank:
            for block in score.blocks:
                attention = block.attention
                attention.qkv = LoRALinear(attention.qkv, config.lora_rank, config.lora_alpha)
                attention.out = LoRALinear(attention.out, config.lora_rank, config.lora_alpha)
        self.set_trainable()

    def train(self, mode: bool = True) -> AlignedModel:
        """Training mode for the adapters. In ``frozen`` mode the performance LM stays in eval
        mode (no dropout: its states are a fixed memory, as when converting); the score LM
        keeps its dropout, since its heads (and LoRA, when used) train through it; the
        shipped adapter was trained this way."""
        super().train(mode)
        if self.config.performance_frozen:
            self.performance.eval()
        return self

    def _sources(self, i: int, n_perf: int, n_score: int) -> list[int]:
        """Which performance hidden states (0 = embeddings .. n_perf) score layer i reads."""
        return adapter_sources(self.config.mapping, i, n_perf, n_score)

    def set_trainable(self) -> None:
        """Adapters, LoRA and the score heads always train; each LM in full unless its mode
        keeps it frozen (``performance_frozen``, ``score_frozen``)."""
        for p in self.performance.parameters():
            p.requires_grad = not self.config.performance_frozen
        for p in self.score.parameters():
            p.requires_grad = not self.config.score_frozen
        for p in self._new_parameters():
            p.requires_grad = True

    def _new_parameters(self) -> list[nn.Parameter]:
        """The parameters that every mode trains: adapters, score heads, LoRA."""
        lora = [
            p
            for module in self.score.modules()
            if isinstance(module, LoRALinear)
            for p in (*module.down.parameters(), *module.up.parameters())
        ]
        ratio = list(self.ratio.parameters()) if self.ratio is not None else []
        return [*self.adapters.parameters(), *self.score.heads.parameters(), *lora, *ratio]

    def ratio_inputs(self, performance: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """(B, M, C) the embedded played step ratios of a performance window (None without
        ``played_ratio``): added to the score LM's input of the same notes."""
        if self.ratio is None:
            return None
        ioi = performance["ioi"]
        ids = torch.from_numpy(played_ratio_ids(ioi.detach().cpu().numpy())).to(ioi.device)
        return self.ratio(ids) * self.ratio_scale

    def encode(
        self, performance: dict[str, torch.Tensor], padding=None, states: list | None = None
    ) -> list[tuple]:
        """Per score layer, the adapter's keys and values of a performance (B, M) window;
        ``states``, when given, receives the performance LM's hidden states [(B, M, C)] * L."""
        frozen = self.config.performance_frozen
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            _, hidden = self.performance(performance, padding=padding)  # [(B, M, C)] * (L)
        if states is not None:
            states.extend(hidden)
        stacked = torch.stack(hidden)  # (L, B, M, C)
        return [
            adapter.memory(stacked[sources])
            for adapter, sources in zip(self.adapters, self.sources, strict=True)
        ]

    def forward(
        self,
        performance: dict[str, torch.Tensor],
        score_inputs: dict[str, torch.Tensor],
        padding: torch.Tensor | None = None,
        memory: list[tuple] | None = None,
        cache: list[dict] | None = None,
        start: int = 0,
        ratios: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Logits per score stream (B, T, V) for score inputs (B, T) at ``start``..

        ``memory`` (from ``encode``) may be given to decode note by note with ``cache``, and
        then ``ratios`` (``ratio_inputs``, (B, M, C)) when the model reads played ratios.
        """
        if memory is None:
            memory = self.encode(performance, padding)
        if ratios is None and self.ratio is not None:
            if performance is None:
                raise ValueError("a model that reads played ratios needs them with its memory")
            ratios = self.ratio_inputs(performance)
        T = next(iter(score_inputs.values())).shape[1]
        positions = torch.arange(start, start + T, device=memory[0][0].device)  # (T,)
        hooks = [
            (lambda x, a=adapter, m=mem: a(x, m, positions, padding))
            for adapter, mem in zip(self.adapters, memory, strict=True)
        ]
        self_padding = padding if cache is None else None
        extra = ratios[:, start : start + T] if ratios is not None else None
        logits, _ = self.score(
            score_inputs, padding=self_padding, cache=cache, start=start, cross=hooks, extra=extra
        )
        return logits

    def pretrained_names(self) -> set[str]:
        """Names of the parameters that come from the pre-trained LMs (LoRA and the score
        heads excepted): those ``[train] pretrained_lr_scale`` applies to."""
        new = {id(p) for p in self._new_parameters()}
        return {n for n, p in self.named_parameters() if id(p) not in new}

    def mixture_weights(self) -> list[list[float]]:
        """Per score layer, the weights over performance states 0..n_perf (0 where unread)."""
        n = self.performance.config.n_layers + 1
        rows = []
        for adapter, sources in zip(self.adapters, self.sources, strict=True):
            row = [0.0] * n
            for weight, source in zip(adapter.mixture().tolist(), sources, strict=True):
                row[source] = weight
            rows.append(row)
        return rows

    def parameter_counts(self) -> dict[str, int]:
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {"total": total, "trainable": trainable, "share": round(trainable / total, 4)}


def adapter_state(model: AlignedModel) -> dict[str, torch.Tensor]:
    """The weights that differ from the two base LMs: the trained ones (all of them when
    every weight trains)."""
    state = model.state_dict()
    if model.config.holds_every_weight:
        return {k: v.detach().contiguous() for k, v in state.items()}
    keep = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().contiguous() for k, v in state.items() if k in keep}
