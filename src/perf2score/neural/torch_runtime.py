"""The torch model behind the decoding loop's runtime interface (``session`` / ``step``).

``perf2score.neural.decode`` decodes in numpy with a *runtime*: an object whose
``session(perf, padding, want_odds)`` encodes a batch of windows and returns a session
with ``odds`` and ``step(previous, pitch, t)``. The numpy runtime
(``perf2score.neural.runtime.NumpyAligned``) converts files; this wrapper lets the same loop
decode a torch ``AlignedModel`` (a model being trained, or one built in memory).
Shapes: B windows, T notes, V a vocabulary.
"""

from __future__ import annotations

import numpy as np
import torch

from perf2score.models.adapter import AlignedModel
from perf2score.models.lm import score_step_inputs
from perf2score.models.meter_head import MeterModel
from perf2score.neural.runtime import moved_rows


class TorchSession:
    """Decoding state of one batch of windows for a torch ``AlignedModel``."""

    @torch.no_grad()
    def __init__(self, runtime: TorchRuntime, perf: dict, padding: np.ndarray, want_odds: bool):
        self.network = runtime.network
        self.padding = torch.from_numpy(padding)
        states: list[torch.Tensor] = []
        perf = {k: torch.from_numpy(v) for k, v in perf.items()}
        self.memory = self.network.encode(perf, self.padding, states)
        self.ratios = self.network.ratio_inputs(perf)  # (B, T, C) or None
        meter = runtime.meter
        self.odds = meter.odds(states).numpy() if want_odds and meter is not None else None
        self.steps = None  # no step head in the torch runtime (``NumpySession.steps``)
        self.cache = self.network.score.new_cache()

    @torch.no_grad()
    def step(self, previous: dict[str, np.ndarray], pitch: np.ndarray, t: int) -> dict:
        """Logits (B, V) per score stream for note ``t`` (``NumpySession.step``'s contract)."""
        previous_ids = {k: torch.from_numpy(v)[:, None] for k, v in previous.items()}
        inputs = score_step_inputs(previous_ids, torch.from_numpy(pitch)[:, None])
        logits = self.network(
            None,
            inputs,
            padding=self.padding,
            memory=self.memory,
            cache=self.cache,
            start=t,
            ratios=self.ratios,
        )
        return {k: v[:, -1].float().numpy() for k, v in logits.items()}

    def expand(self, copies: int) -> None:
        """Before the first step: each window decoded as ``copies`` rows (the hypotheses of
        a beam; ``NumpySession.expand``)."""

        def repeat(tensor):
            return None if tensor is None else tensor.repeat_interleave(copies, dim=0)

        self.memory = [tuple(repeat(part) for part in layer) for layer in self.memory]
        self.padding, self.ratios = repeat(self.padding), repeat(self.ratios)

    def reorder(self, rows: np.ndarray, filled: int) -> None:
        """Row r of the KV cache becomes row ``rows[r]``'s (``NumpySession.reorder``)."""
        moved, parents = moved_rows(rows)
        into, parents = torch.from_numpy(moved), torch.from_numpy(parents)
        for layer in self.cache:
            for name in ("k", "v"):
                if name in layer:
                    layer[name][into, :, :filled] = layer[name][parents, :, :filled]


class TorchRuntime:
    """A torch aligned model (in eval mode) and, optionally, a meter head reading its own
    performance LM, as a decoding runtime."""

    def __init__(self, network: AlignedModel, meter: MeterModel | None = None):
        self.network, self.meter = network, meter

    def session(
        self,
        perf: dict,
        padding: np.ndarray,
        want_odds: bool = False,
        prior: tuple[float, tuple[str, ...]] = (0.0, ()),
        background: bool = False,
    ) -> TorchSession:
        """Start decoding a batch: performance ids (B, T) per stream, ``padding`` (B, T);
        ``prior`` as ``NumpySession``'s, here only its off value (weight 0): the score
        prior needs the numpy runtime (``decode_many`` refuses it before). ``background``
        (``NumpySession``'s threads) is not used: torch computes everything here."""
        if prior[0] > 0:
            raise ValueError("the score prior needs the numpy runtime")
        return TorchSession(self, perf, padding, want_odds)
