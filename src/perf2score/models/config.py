"""Model configurations: typed, validated, saved as JSON next to the weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from perf2score.errors import Perf2ScoreError
from perf2score.files import atomic_write
from perf2score.tokens.spec import (
    PERFORMANCE_STREAMS,
    SCORE_STREAMS,
    STREAMS,
    spec_fingerprint,
)


@dataclass
class LMConfig:
    """A transformer language model over compound note tokens."""

    kind: str = "performance"  # "performance" (bidirectional encoder) or "score" (causal)
    d_model: int = 256  # width of every layer
    n_layers: int = 6  # transformer blocks
    n_heads: int = 4  # attention heads (d_model must divide evenly)
    d_ff: int = 768  # hidden width of the feed-forward sub-layer
    dropout: float = 0.1  # on attention weights and residual branches
    max_notes: int = 1024  # longest window (rotary positions need no table, this is a guard)
    rope_base: float = 10_000.0  # rotary position frequency base
    input_streams: tuple[str, ...] = field(default=())  # embedded streams (() = by kind)
    output_streams: tuple[str, ...] = field(default=())  # predicted streams (() = by kind)

    def __post_init__(self) -> None:
        if self.kind not in ("performance", "score"):
            raise ValueError(f"kind must be 'performance' or 'score', not {self.kind!r}")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError("d_model / n_heads must be an even integer (rotary pairs)")
        if min(self.n_layers, self.d_ff, self.max_notes) <= 0 or not 0 <= self.dropout < 1:
            raise ValueError("n_layers, d_ff, max_notes must be positive; 0 <= dropout < 1")
        default = PERFORMANCE_STREAMS if self.kind == "performance" else SCORE_STREAMS
        names = tuple(s.name for s in default)
        # The score LM also reads the pitch of the note it predicts (known from the
        # performance when converting): see ``perf2score.models.lm.score_inputs``.
        inputs = names if self.kind == "performance" else (*names, "pitch")
        self.input_streams = tuple(self.input_streams) or inputs
        self.output_streams = tuple(self.output_streams) or names
        unknown = set(self.input_streams + self.output_streams) - set(STREAMS)
        if unknown:
            raise ValueError(f"unknown streams {sorted(unknown)}")

    @property
    def causal(self) -> bool:
        return self.kind == "score"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LMConfig:
        """The config from ``to_dict``'s form (lists become tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def to_json_text(self) -> str:
        """``config.json``: the fields and the token spec the weights are made for."""
        return json.dumps({**self.to_dict(), "token_spec": spec_fingerprint()}, indent=2)

    def to_json(self, path: str | Path) -> None:
        atomic_write(path, self.to_json_text())

    @classmethod
    def from_json(cls, path: str | Path) -> LMConfig:
        """Read ``config.json`` (``Perf2ScoreError`` when it was made for another token spec)."""
        data = json.loads(Path(path).read_text())
        check_token_spec(data.pop("token_spec", None), Path(path).parent)
        return cls.from_dict(data)


def check_token_spec(recorded: str | None, where: Path) -> None:
    """Weights record the token spec they were trained on; refuse those of another spec (a
    record from before fingerprints, ``None``, is accepted)."""
    if recorded is not None and recorded != spec_fingerprint():
        raise Perf2ScoreError(
            f"{where}: these weights were trained on another token spec ({recorded}; this"
            f" perf2score speaks {spec_fingerprint()}): use the version that made them or retrain"
        )
