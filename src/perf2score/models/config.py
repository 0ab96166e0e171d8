"""Model configurations: typed, validated, saved as JSON next to the weights."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
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


MAPPINGS = ("mix", "one-to-one", "last")
MODES = ("frozen", "score-finetune", "performance-finetune", "full-finetune", "scratch")


@dataclass
class AdapterConfig:
    """How the two LMs are joined and what is trained."""

    mapping: str = "mix"  # mix | one-to-one | last
    # frozen LMs | score-finetune (the performance LM frozen, the score LM trained in full) |
    # performance-finetune (the performance LM trained in full, the score LM frozen but for
    # its LoRA and heads) | full-finetune (everything) | scratch (no pre-training)
    mode: str = "frozen"
    rank: int = 64  # width of the low-rank cross-attention
    n_heads: int = 4
    lora_rank: int = 0  # 0 = no LoRA on the score LM's attention
    lora_alpha: float = 16.0
    dropout: float = 0.1
    rope_base: float = 10_000.0
    # the score LM's input also holds an embedding (zero-initialised, trained) of each
    # note's played step ratio (perf2score.tokens.timing), read from the performance
    played_ratio: bool = False

    @property
    def performance_frozen(self) -> bool:
        """Whether the performance LM keeps its pre-trained weights (then the weights file
        holds only what was trained, and the meter and hand heads can share its states)."""
        return self.mode in ("frozen", "score-finetune")

    @property
    def score_frozen(self) -> bool:
        """Whether the score LM keeps its pre-trained weights (its LoRA and heads train)."""
        return self.mode in ("frozen", "performance-finetune")

    @property
    def holds_every_weight(self) -> bool:
        """Whether the weights file holds both LMs in full (every weight trained), so that
        no pre-trained base is read; otherwise it holds what was trained, over the bases."""
        return not (self.performance_frozen or self.score_frozen)

    def __post_init__(self) -> None:
        if self.mapping not in MAPPINGS:
            raise ValueError(f"mapping must be one of {MAPPINGS}, not {self.mapping!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        if self.rank % self.n_heads or (self.rank // self.n_heads) % 2:
            raise ValueError("rank / n_heads must be an even integer (rotary pairs)")
        if self.lora_rank < 0:
            raise ValueError("lora_rank must be >= 0")

    def to_dict(self) -> dict:
        """The config as saved in ``adapter.json`` (its ``adapter`` entry)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AdapterConfig:
        """The config from ``to_dict``'s form (ValueError for unknown keys or values)."""
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown adapter settings {sorted(unknown)}")
        return cls(**data)


def adapter_sources(mapping: str, layer: int, n_perf: int, n_score: int) -> list[int]:
    """Which performance hidden states (0 = embeddings .. ``n_perf``) score layer ``layer``
    reads under ``mapping`` (``MAPPINGS``): all of them (mix), the last (last), or the layer
    at the same relative depth (one-to-one)."""
    if mapping == "mix":
        return list(range(n_perf + 1))
    if mapping == "last":
        return [n_perf]
    return [max(1, round((layer + 1) * n_perf / n_score))]


ADAPTER_FORMAT = 2  # adapter.json layout: 2 adds "format", "token_spec", decoding.json


def read_adapter_json(folder: str | os.PathLike) -> dict:
    """``adapter.json`` of an aligned-model folder, checked: its format is one this version
    reads and its weights were made for this token spec (one-sentence errors otherwise)."""
    folder = Path(folder)
    path = folder / "adapter.json"
    if not path.is_file() or not (folder / "adapter.safetensors").is_file():
        raise Perf2ScoreError(f"{folder}: no aligned model (adapter.json + adapter.safetensors)")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Perf2ScoreError(f"{path}: not valid JSON ({exc})") from exc
    version = config.get("format", 1)
    if not isinstance(version, int) or version > ADAPTER_FORMAT:
        raise Perf2ScoreError(
            f"{path}: format {version} is newer than this perf2score reads ({ADAPTER_FORMAT})"
        )
    check_token_spec(config.get("token_spec"), folder)
    return config


def read_aligned_configs(
    folder: str | os.PathLike,
) -> tuple[dict, AdapterConfig, tuple[LMConfig, LMConfig]]:
    """(``adapter.json`` as read, the adapter config, the (performance, score) LM configs) of
    an aligned-model folder (``read_adapter_json``; ``Perf2ScoreError`` when invalid)."""
    folder = Path(folder)
    config = read_adapter_json(folder)
    try:
        adapter = AdapterConfig.from_dict(config["adapter"])
        performance, score = (LMConfig.from_dict(config[name]) for name in ("performance", "score"))
    except (KeyError, TypeError, ValueError) as exc:
        raise Perf2ScoreError(f"{folder}/adapter.json: invalid ({exc})") from exc
    return config, adapter, (performance, score)


METER_FORMAT = 1


# the yes/no questions a performance head can be trained to answer per performed note
# (``perf2score.models.meter_head.meter_targets``)
# the time signatures a head can be asked about ("ts_4_4": is the note in a measure of 4/4?):
# those of at least 3 training performances of ASAP
SIGNATURE_CLASSES = (
    (4, 4),
    (3, 4),
    (2, 4),
    (6, 8),
    (2, 2),
    (12, 8),
    (3, 8),
    (9, 8),
    (6, 4),
    (3, 2),
)
SIGNATURE_QUESTIONS = tuple(f"ts_{num}_{den}" for num, den in SIGNATURE_CLASSES)
# does a rest follow the note in its own voice (its value ends before the voice's next
# onset; ``perf2score.data.rests``)? The target rides in the aligned batches' targets.
REST_TARGET = "rest_after"
HEAD_QUESTIONS = (
    "downbeat",
    "beat",
    "staff",
    "second_voice",
    "same_step",
    "longer_step",
    REST_TARGET,
    *SIGNATURE_QUESTIONS,
)


@dataclass(frozen=True)
class MeterConfig:
    """A per-note head on the frozen performance LM: the meter head asks ``downbeat`` and
    ``beat``, the hand head ``staff`` (is the note on the lower staff?) and maybe
    ``second_voice`` (is it in another voice than its staff's first?), the step head
    ``same_step`` and ``longer_step`` (is the note's score-time onset step the same as the
    step before it; if not, is it longer?)."""

    hidden: int = 256  # width of the hidden layer
    dropout: float = 0.1
    questions: tuple[str, ...] = ("downbeat", "beat")  # outputs, in order
    # train the performance LM with the head (saved beside it, read by its own encoder pass)
    tune_performance: bool = False
    # with tune_performance: only the top k blocks train (0: every weight); the blocks below
    # stay the decoder's, so conversion reads them from its encoder pass and runs k blocks
    tuned_layers: int = 0
    # training only: the loss weight of each question, in the order of ``questions`` (empty:
    # all 1); the loss is the weighted mean of the questions' cross-entropies
    loss_weights: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        questions = tuple(self.questions)
        object.__setattr__(self, "questions", questions)
        object.__setattr__(self, "loss_weights", tuple(float(w) for w in self.loss_weights))
        if self.tuned_layers < 0 or (self.tuned_layers and not self.tune_performance):
            raise ValueError("tuned_layers: a count >= 0, and only with tune_performance")
        weights = self.loss_weights
        if weights and (len(weights) != len(questions) or min(weights) < 0 or not sum(weights)):
            raise ValueError(
                f"loss_weights {list(weights)}: one weight >= 0 per question "
                f"({len(questions)}), not all 0"
            )
        unknown = [q for q in questions if q not in HEAD_QUESTIONS]
        if not questions or unknown or len(set(questions)) != len(questions):
            raise ValueError(f"questions {list(questions)}: choose among {list(HEAD_QUESTIONS)}")

    @classmethod
    def from_dict(cls, data: dict) -> MeterConfig:
        return cls(**data)


def read_meter_json(folder: str | os.PathLike) -> tuple[dict, MeterConfig]:
    """(``meter.json`` as read, the head's config) of a meter-head folder, checked like
    ``read_adapter_json`` (``Perf2ScoreError`` when missing or invalid)."""
    folder = Path(folder)
    path = folder / "meter.json"
    if not path.is_file() or not (folder / "meter.safetensors").is_file():
        raise Perf2ScoreError(f"{folder}: no meter head (meter.json + meter.safetensors)")
    try:
        config = json.loads(path.read_text())
        head = MeterConfig.from_dict(config["meter"])
        LMConfig.from_dict(config["performance"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise Perf2ScoreError(f"{path}: invalid ({exc})") from exc
    if config.get("format", 0) > METER_FORMAT:
        raise Perf2ScoreError(f"{path}: format {config['format']} is newer than this version")
    check_token_spec(config.get("token_spec"), folder)
    return config, head
