"""Training configuration: a TOML file parsed into typed dataclasses.

A file has up to four tables, each optional (defaults below)::

    [model]      # perf2score.models.LMConfig fields (kind is set by the task; LMs only)
    [base]       # align, meter: folders of the pre-trained LMs (and heads) a run starts
                 # from; perf-lm, score-lm: ``lm``, an LM to pre-train further
    [adapter]    # align only: perf2score.models.adapter.AdapterConfig fields
    [decode]     # align only: perf2score.neural.settings.DecodeConfig fields (decoded
                 # validation; saved beside the adapter as decoding.json)
    [meter]      # meter only: perf2score.models.meter_head.MeterConfig fields
    [voices]     # voices only: perf2score.models.voice_head.VoiceConfig fields
    [data]       # where the prepared caches are, window length, synthetic share
    [augment]    # augmentation strengths
    [train]      # steps, batch, optimiser, schedule, validation, checkpoints, precision
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from perf2score.errors import Perf2ScoreError
from perf2score.models.adapter import AdapterConfig
from perf2score.models.config import LMConfig
from perf2score.models.meter_head import MeterConfig
from perf2score.models.voice_head import VoiceConfig
from perf2score.neural.settings import DecodeConfig
from perf2score.shipped import SHIPPED_LMS
from perf2score.tokens.spec import SCORE_STREAMS


@dataclass
class DataConfig:
    prepared: str = ".cache/prepared"  # `data prepare` cache (ASAP performances + scores)
    corpus: str = ""  # `data corpus` cache ("" = ASAP scores only)
    window: int = 256  # notes per training example
    synthetic_share: float = 0.3  # perf LM: share of windows rendered from scores
    corpus_share: float = 0.7  # score LM: share of windows from the corpus (when given)
    lieder_weight: float = 0.3  # weight of song accompaniments within the corpus
    # align: share of training windows made from unpaired corpus scores (``corpus``), their
    # performance input reduced to the pitches (every other stream MASK); 0 = off
    # (MIDI2ScoreTransformer's re-implementation mixes them about 1:1 with the pairs)
    unpaired_share: float = 0.0
    mask_ratio: float = 0.15  # perf LM: share of notes masked
    validation_windows: int = 64  # fixed validation windows (the same in every run)
    # voices: cached decodings (DECODED/<split>/<perf_id>.npz, benchmarks/voice_pass.py) to
    # train on the decoder's onsets and staves ("" = the ground truth's only), and the share
    # of training windows taken from them (validation: all from them when given)
    decoded: str = ""
    decoded_share: float = 0.5


@dataclass
class AugmentConfig:
    tempo: tuple[float, float] = (0.8, 1.25)  # tempo scale range
    transpose: int = 6  # semitones up or down (scores are respelled)
    velocity_jitter: float = 8.0  # std of velocity noise (MIDI units)
    drop_notes: float = 0.03  # max share of performed notes removed
    insert_notes: float = 0.03  # max share of spurious notes inserted
    asynchrony: float = 0.012  # std of chord-note onset jitter (seconds)
    # align only: share of notes whose previous-note score tokens the score LM sees as MASK
    # (drawn per window from this range; (0, 0) = off): it must read the performance instead
    # of copying the previous note (MIDI2ScoreTransformer's recipe uses 0.5-0.75)
    previous_mask: tuple[float, float] = (0.0, 0.0)
    # the score streams previous_mask hides (empty: every one); e.g. ("bar", "position"):
    # where the last note was is hidden, what it was (its value, staff, voice...) is not
    previous_mask_streams: tuple[str, ...] = ()


@dataclass
class TrainConfig:
    steps: int = 2000  # optimiser steps in all
    batch_size: int = 16  # windows per step (per process under torchrun)
    lr: float = 1e-3  # peak learning rate (AdamW)
    # align, when the LMs train (score-finetune, full-finetune): the pre-trained LM weights'
    # learning rate as a share of ``lr`` (the adapters, LoRA and score heads take ``lr``)
    pretrained_lr_scale: float = 1.0
    warmup: int = 100  # linear warm-up steps, then cosine decay to lr/10
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    eval_every: int = 200  # steps between validations (and checkpoints)
    log_every: int = 10  # steps between log lines
    seed: int = 0
    threads: int = 0  # torch threads (0 = leave torch's default)
    precision: str = "auto"  # fp32 | bf16 | auto (bf16 only where the hardware has it)
    select: str = "loss"  # best model by: loss | decoded (align: transcription accuracy)
    decoded_excerpts: int = 8  # align: validation performances transcribed at each validation
    # align: loss weight of the position and value classes that are not dyadic (tuplets;
    # 1 = plain cross-entropy; MIDI2ScoreTransformer's re-implementation: about 2)
    tuplet_weight: float = 1.0
    # align: loss weight of the bar and position targets of notes whose onset step differs
    # from the step before (``models.losses.rhythm_changes``; 1 = plain cross-entropy): the
    # notes where the decoder cannot repeat itself and must read the performance
    change_weight: float = 1.0
    # align: scheduled sampling: for this share of the notes (training only), the previous
    # note's score-token inputs are the model's own teacher-forced predictions (argmax, one
    # pass without gradients) instead of the truth, so that wrong context must be read past
    # (``train.tasks.own_predictions``; 0 = plain teacher forcing)
    sampled_share: float = 0.0


@dataclass
class BaseConfig:
    """The pre-trained LMs an aligned model starts from: folders (relative paths in a TOML
    file are relative to that file); the defaults are the LMs shipped in the package."""

    performance: str = str(SHIPPED_LMS["performance"])  # pre-trained performance LM folder
    score: str = str(SHIPPED_LMS["score"])  # pre-trained score LM folder
    # align only: an aligned-model folder whose trained weights (adapters, LoRA, score
    # heads) the run starts from instead of fresh adapters ("" = fresh); weights the
    # folder lacks (e.g. the played-ratio embedding) keep their initial values
    adapter: str = ""
    # meter only: a trained head folder (``perf2score train meter``) the run starts from: its
    # performance LM when both tune theirs, its hidden layer, and the output rows of the
    # questions both ask (the others fresh); "" = a fresh head
    head: str = ""
    # perf-lm / score-lm only: an LM folder (``config.json`` + ``model.safetensors``, e.g.
    # the shipped one or a run's ``best``) whose weights the run starts from instead of
    # random ones, to pre-train longer with a schedule of its own; its architecture must be
    # the [model] table's (dropout aside); "" = random weights
    lm: str = ""


@dataclass
class RunConfig:
    model: LMConfig = field(default_factory=LMConfig)
    base: BaseConfig = field(default_factory=BaseConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    meter: MeterConfig = field(default_factory=MeterConfig)
    voices: VoiceConfig = field(default_factory=VoiceConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _build(cls, table: dict, where: str):
    known = {f.name: f for f in fields(cls)}
    unknown = set(table) - set(known)
    if unknown:
        raise Perf2ScoreError(f"[{where}]: unknown keys {sorted(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise Perf2ScoreError(f"[{where}]: {exc}") from exc


def run_config_from_dict(data: dict, kind: str) -> RunConfig:
    """Build a ``RunConfig`` from parsed TOML; ``kind``: performance | score (an LM), align,
    meter or voices."""
    own = {
        "align": {"base", "adapter", "decode"},
        "meter": {"base", "meter"},
        "voices": {"voices"},
    }
    tables = {"data", "augment", "train"} | own.get(kind, {"model", "base"})
    pre_training = kind not in own  # an LM: performance or score
    unknown = set(data) - tables
    if unknown:
        raise Perf2ScoreError(
            f"unknown tables {sorted(unknown)} (this task reads {sorted(tables)})"
        )
    model = dict(data.get("model", {}))
    if kind in own:
        model["kind"] = kind = "score"  # unused: the base LMs define the architectures
    if model.setdefault("kind", kind) != kind:
        raise Perf2ScoreError(f"[model] kind = {model['kind']!r}, but this task trains {kind!r}")
    config = RunConfig(
        model=_build(LMConfig, model, "model"),
        base=_build(BaseConfig, data.get("base", {}), "base"),
        adapter=_build(AdapterConfig, data.get("adapter", {}), "adapter"),
        decode=_build(DecodeConfig, data.get("decode", {}), "decode"),
        meter=_build(MeterConfig, data.get("meter", {}), "meter"),
        voices=_build(VoiceConfig, data.get("voices", {}), "voices"),
        data=_build(DataConfig, data.get("data", {}), "data"),
        augment=_build(AugmentConfig, data.get("augment", {}), "augment"),
        train=_build(TrainConfig, data.get("train", {}), "train"),
    )
    if pre_training:
        if config.base.adapter or config.base.head:
            raise Perf2ScoreError("[base]: a language model starts from an LM folder (lm) only")
    elif config.base.lm:
        raise Perf2ScoreError("[base] lm: only for pre-training a language model")
    if config.train.precision not in ("fp32", "bf16", "auto"):
        raise Perf2ScoreError("[train] precision must be fp32, bf16 or auto")
    if config.train.select not in ("loss", "decoded"):
        raise Perf2ScoreError("[train] select must be loss or decoded")
    low, high = config.augment.previous_mask
    if not 0 <= low <= high <= 1:
        raise Perf2ScoreError("[augment] previous_mask must be a range 0 <= low <= high <= 1")
    unknown = set(config.augment.previous_mask_streams) - {s.name for s in SCORE_STREAMS}
    if unknown:
        names = sorted(unknown)
        raise Perf2ScoreError(f"[augment] previous_mask_streams: not score streams {names}")
    if not config.train.tuplet_weight > 0:
        raise Perf2ScoreError("[train] tuplet_weight must be positive (1 = off)")
    if not config.train.change_weight > 0:
        raise Perf2ScoreError("[train] change_weight must be positive (1 = off)")
    if not 0.0 <= config.train.sampled_share <= 1.0:
        raise Perf2ScoreError("[train] sampled_share must be between 0 and 1")
    if not 0 <= config.data.decoded_share <= 1:
        raise Perf2ScoreError("[data] decoded_share must be between 0 and 1")
    if not 0 <= config.data.unpaired_share <= 1:
        raise Perf2ScoreError("[data] unpaired_share must be between 0 and 1")
    if not config.train.pretrained_lr_scale > 0:
        raise Perf2ScoreError("[train] pretrained_lr_scale must be positive (1 = off)")
    if config.data.window > config.model.max_notes:
        raise Perf2ScoreError("[data] window is longer than [model] max_notes")
    return config


def load_run_config(path: str | Path, kind: str) -> RunConfig:
    """Parse a TOML training configuration (one-line errors for bad files)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise Perf2ScoreError(f"{path}: no such file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise Perf2ScoreError(f"{path}: not valid TOML ({exc})") from exc
    for name, folder in data.get("base", {}).items():  # model paths: relative to this file
        if isinstance(folder, str) and not Path(folder).is_absolute():
            data["base"][name] = str((path.parent / folder).resolve())
    try:
        return run_config_from_dict(data, kind)
    except Perf2ScoreError as exc:
        raise Perf2ScoreError(f"{path}: {exc}") from exc
