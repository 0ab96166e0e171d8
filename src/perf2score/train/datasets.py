"""Pre-training examples for the two language models.

``PerformanceLMData``: windows of ASAP training performances (augmented) and of synthetic
performances rendered from training scores, with masked-note targets. ``ScoreLMData``:
windows of training scores (ASAP training pieces and the corpus), transposed, with next-note
targets. ``sample(rng, batch)`` draws a training batch; ``validation()`` returns the fixed
validation batches (real validation performances / scores, no augmentation, fixed masks).

A batch is a dict: ``inputs`` and ``targets`` (stream -> (B, T) int64 tensors; targets use
``IGNORE_INDEX`` where nothing is predicted) and ``padding`` ((B, T) bool, True = padded).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from perf2score.data.cache import load_index, load_prepared, score_path
from perf2score.data.corpus import load_corpus_index, load_corpus_score
from perf2score.data.rests import UNKNOWN, rest_follows
from perf2score.errors import Perf2ScoreError
from perf2score.midi.reading import NOTE_DTYPE, Performance
from perf2score.models.config import REST_TARGET
from perf2score.models.lm import score_inputs
from perf2score.models.losses import CHANGE_TARGET, rhythm_changes
from perf2score.tokens.performance import encode_performance, pitch_ids
from perf2score.tokens.score import encode_score
from perf2score.tokens.spec import (
    IGNORE_INDEX,
    MASK,
    PAD,
    PERFORMANCE_STREAMS,
    SCORE_STREAMS,
)
from perf2score.train.augment import (
    augment_performance,
    render_performance,
    transpose_score,
    transposition,
)
from perf2score.train.config import RunConfig

PERFORMANCE_NAMES = tuple(s.name for s in PERFORMANCE_STREAMS)
SCORE_NAMES = tuple(s.name for s in SCORE_STREAMS)
VALIDATION_SEED = 20_241_125


def collate(examples: list[tuple[dict, dict]], length: int) -> dict:
    """Pad (inputs, targets) pairs of (n,) arrays to (B, length) tensors."""
    batch = {"inputs": {}, "targets": {}}
    padding = np.ones((len(examples), length), dtype=bool)
    for part, fill in (("inputs", PAD), ("targets", IGNORE_INDEX)):
        names = examples[0][0 if part == "inputs" else 1].keys()
        for name in names:
            array = np.full((len(examples), length), fill, dtype=np.int64)
            for row, example in enumerate(examples):
                values = example[0 if part == "inputs" else 1][name][:length]
                array[row, : len(values)] = values
                padding[row, : len(values)] = False
            batch[part][name] = torch.from_numpy(array)
    batch["padding"] = torch.from_numpy(padding)
    return batch


def _crop(rng: np.random.Generator, n: int, length: int) -> slice:
    start = int(rng.integers(0, n - length + 1)) if n > length else 0
    return slice(start, start + length)


def score_example(rows: np.ndarray, ticks_per_quarter: int) -> tuple[dict, dict]:
    """Next-note (inputs, targets) of score rows (n,) in decoding order.

    Inputs: the previous note's score tokens (``BOS`` first) and this note's pitch (see
    ``perf2score.models.lm.score_inputs``); targets: this note's score tokens.
    """
    tokens, _ = encode_score(rows, ticks_per_quarter)
    return score_inputs(tokens, pitch_ids(rows["pitch"])), tokens


def mask_notes(
    rng: np.random.Generator, tokens: dict[str, np.ndarray], ratio: float
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Masked-note modelling: (inputs, targets) from (n,) token ids per stream.

    A share ``ratio`` of notes is chosen (at least one); 70 % of them lose every stream,
    the others a random non-empty subset of streams (e.g. only the IOI, so the model learns
    to infer timing from context). Targets hold the original ids where masked.
    """
    n = len(next(iter(tokens.values())))
    chosen = rng.random(n) < ratio
    if n and not chosen.any():
        chosen[rng.integers(n)] = True
    names = list(tokens)
    full = rng.random(n) < 0.7
    partial = rng.random((n, len(names))) < 0.5
    partial[np.arange(n), rng.integers(0, len(names), n)] = True  # non-empty subsets
    inputs, targets = {}, {}
    for k, name in enumerate(names):
        masked = chosen & (full | partial[:, k])
        inputs[name] = np.where(masked, MASK, tokens[name])
        targets[name] = np.where(masked, tokens[name], IGNORE_INDEX)
    return inputs, targets


class WindowData:
    """Batches of windows: subclasses define ``example(rng, augment)`` and may change
    ``collate``; ``config`` is the ``RunConfig``."""

    config: RunConfig

    def example(self, rng: np.random.Generator, augment: bool = True):
        raise NotImplementedError

    def collate(self, examples: list, length: int) -> dict:
        return collate(examples, length)

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict:
        """A training batch of ``batch_size`` augmented windows."""
        examples = [self.example(rng) for _ in range(batch_size)]
        return self.collate(examples, self.config.data.window)

    def validation(self, batch_size: int) -> list[dict]:
        """The fixed validation batches (the same windows and masks in every run)."""
        rng = np.random.default_rng(VALIDATION_SEED)
        count = self.config.data.validation_windows
        examples = [self.example(rng, augment=False) for _ in range(count)]
        return [
            self.collate(examples[i : i + batch_size], self.config.data.window)
            for i in range(0, len(examples), batch_size)
        ]


class PerformanceLMData(WindowData):
    """Masked-note examples from prepared performances and synthetic renderings."""

    def __init__(self, config: RunConfig, split: str = "train"):
        self.config = config
        cache = Path(config.data.prepared)
        rows = load_index(cache, split, required=True)
        self.performances: list[Performance] = []
        self.scores: list[tuple[np.ndarray, int]] = []
        pieces: set[str] = set()
        for row in rows:
            prepared = load_prepared(cache, row["perf_id"])
            self.performances.append(Performance(prepared.notes, prepared.pedal))
            if row["piece"] not in pieces:
                pieces.add(row["piece"])
                self.scores.append((prepared.score, prepared.ticks_per_quarter))
        if config.data.corpus and split == "train":  # only training renders synthetic windows
            self.scores += list(_corpus_tables(config.data.corpus))
        self.weights = _weights([len(p.notes) for p in self.performances])
        self.split = split

    def _real(self, rng: np.random.Generator, augment: bool) -> dict[str, np.ndarray]:
        window = self.config.data.window
        performance = self.performances[rng.choice(len(self.performances), p=self.weights)]
        rows = _crop(rng, len(performance.notes), int(window * 1.1) + 8)
        part = Performance(performance.notes[rows], performance.pedal)
        if augment:
            part, _, _ = augment_performance(rng, part, self.config.augment)
        tokens = encode_performance(part)
        return {k: v[:window] for k, v in tokens.items()}

    def _synthetic(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        table, tpq = self.scores[int(rng.integers(len(self.scores)))]
        table = table[~table["tie_stop"]]
        rows = table[_crop(rng, len(table), self.config.data.window)]
        rows = transpose_score(
            rows, transposition(rng, rows["pitch"], self.config.augment.transpose)
        )
        return encode_performance(render_performance(rng, rows, tpq))

    def example(self, rng: np.random.Generator, augment: bool = True) -> tuple[dict, dict]:
        synthetic = augment and rng.random() < self.config.data.synthetic_share
        tokens = self._synthetic(rng) if synthetic else self._real(rng, augment)
        return mask_notes(rng, tokens, self.config.data.mask_ratio)


class ScoreLMData(WindowData):
    """Next-note examples from training scores (ASAP pieces and the score corpus)."""

    def __init__(self, config: RunConfig, split: str = "train"):
        self.config = config
        cache = Path(config.data.prepared)
        pieces = sorted({r["piece"] for r in load_index(cache, split, required=True)})
        self.asap = [_asap_table(cache, piece) for piece in pieces]
        self.corpus, self.corpus_weights = [], None
        if config.data.corpus and split == "train":
            self.corpus, self.corpus_weights = weighted_corpus(config)
        self.asap_weights = _weights([len(t) for t, _ in self.asap])

    def example(self, rng: np.random.Generator, augment: bool = True) -> tuple[dict, dict]:
        use_corpus = self.corpus and rng.random() < self.config.data.corpus_share
        tables, weights = (
            (self.corpus, self.corpus_weights) if use_corpus else (self.asap, self.asap_weights)
        )
        table, tpq = tables[rng.choice(len(tables), p=weights)]
        rows = table[_crop(rng, len(table), self.config.data.window)]
        if augment:
            rows = transpose_score(
                rows, transposition(rng, rows["pitch"], self.config.augment.transpose)
            )
        return score_example(rows, tpq)


def _weights(sizes: list[float]) -> np.ndarray:
    sizes = np.asarray(sizes, dtype=float)
    if len(sizes) == 0 or sizes.sum() <= 0:
        raise Perf2ScoreError("no training examples")
    return sizes / sizes.sum()


def weighted_corpus(config: RunConfig) -> tuple[list[tuple[np.ndarray, int]], np.ndarray]:
    """The corpus scores (table, ticks per quarter) of ``[data] corpus`` and their sampling
    weights: notes, song accompaniments times ``lieder_weight``."""
    tables, sizes = [], []
    for table, tpq, group in _corpus_tables(config.data.corpus, with_group=True):
        tables.append((table, tpq))
        lied = group.startswith("OpenScore-Lieder")
        sizes.append(len(table) * (config.data.lieder_weight if lied else 1.0))
    return tables, _weights(sizes)


def _asap_table(cache: Path, piece: str) -> tuple[np.ndarray, int]:
    with np.load(score_path(cache, piece)) as data:
        table = data["table"]
        return table[~table["tie_stop"]], int(data["ticks_per_quarter"])


def _corpus_tables(cache: str, with_group: bool = False):
    for row in load_corpus_index(cache):
        table, tpq = load_corpus_score(cache, row["id"])
        yield (table, tpq, row["group"]) if with_group else (table, tpq)


def align_example(
    performance: Performance, targets: np.ndarray, drop: np.ndarray, ticks_per_quarter: int
) -> dict[str, dict[str, np.ndarray]]:
    """One fine-tuning example of n performed notes and their score attributes (n,).

    Returns ``performance`` (performance token ids), ``inputs`` (score-LM inputs: the
    previous note's score tokens and this note's pitch) and ``targets`` (this note's score
    tokens; a dropped note has only its ``drop`` target).
    """
    score, _ = encode_score(targets, ticks_per_quarter, drop)
    inputs = score_inputs(score, pitch_ids(performance.notes["pitch"]))
    goals = {
        name: ids if name == "drop" else np.where(drop, IGNORE_INDEX, ids)
        for name, ids in score.items()
    }
    return {"performance": encode_performance(performance), "inputs": inputs, "targets": goals}


class AlignData(WindowData):
    """Note-aligned (performance, score) windows of prepared performances for fine-tuning.

    Augmentation (training only): tempo, transposition (the targets are respelled),
    velocity, dropped notes, inserted notes (their target is ``drop``), chord asynchrony.
    """

    def __init__(self, config: RunConfig, split: str = "train"):
        self.config = config
        cache = Path(config.data.prepared)
        self.items = []
        # the meter head's rest question: per performed note, does a rest follow it in its
        # voice (``data.rests``; -1 unknown, dropped notes included)
        self.rests: list[np.ndarray] | None = [] if REST_TARGET in config.meter.questions else None
        for row in load_index(cache, split, required=True):
            p = load_prepared(cache, row["perf_id"])
            self.items.append(
                (Performance(p.notes, p.pedal), p.targets(), p.drop, p.ticks_per_quarter)
            )
            if self.rests is not None:
                rests = np.full(len(p.notes), UNKNOWN, dtype=np.int8)
                rests[~p.drop] = rest_follows(p.score)[p.score_index[~p.drop]]
                self.rests.append(rests)
        self.weights = _weights([len(item[0].notes) for item in self.items])
        self.corpus, self.corpus_weights = [], None
        if config.data.unpaired_share > 0 and split == "train":
            if not config.data.corpus:
                raise Perf2ScoreError("[data] unpaired_share needs a score corpus ([data] corpus)")
            self.corpus, self.corpus_weights = weighted_corpus(config)

    def collate(self, examples: list, length: int) -> dict:
        return collate_aligned(examples, length)

    def example(self, rng: np.random.Generator, augment: bool = True) -> dict:
        if self.corpus and augment and rng.random() < self.config.data.unpaired_share:
            example, targets, drop = self._unpaired(rng)
        else:
            example, targets, drop = self._paired(rng, augment)
        if self.config.train.change_weight != 1.0:
            example["targets"][CHANGE_TARGET] = rhythm_changes(targets["onset_ticks"], drop)
        if augment and self.config.augment.previous_mask[1] > 0:
            augment_config = self.config.augment
            mask_previous(
                rng,
                example["inputs"],
                augment_config.previous_mask,
                augment_config.previous_mask_streams,
            )
        window = self.config.data.window
        return {
            part_name: {k: v[:window] for k, v in streams.items()}
            for part_name, streams in example.items()
        }

    def _paired(
        self, rng: np.random.Generator, augment: bool
    ) -> tuple[dict, np.ndarray, np.ndarray]:
        """A window of a training performance (augmented when ``augment``) as an aligned
        example, with its score rows (n,) and drop flags (n,)."""
        window = self.config.data.window
        item = rng.choice(len(self.items), p=self.weights)
        performance, targets, drop, tpq = self.items[item]
        rows = _crop(rng, len(performance.notes), int(window * 1.05) if augment else window)
        part = Performance(performance.notes[rows], performance.pedal)
        targets, drop = targets[rows], drop[rows]
        rests = self.rests[item][rows] if self.rests is not None else None
        if augment:
            part, source, shift = augment_performance(rng, part, self.config.augment)
            inserted = source < 0
            targets = transpose_score(targets[np.maximum(source, 0)], shift)
            drop = drop[np.maximum(source, 0)] | inserted
            if rests is not None:
                rests = np.where(inserted, UNKNOWN, rests[np.maximum(source, 0)])
        example = align_example(part, targets, drop, tpq)
        if rests is not None:
            example["targets"][REST_TARGET] = np.where(
                rests == UNKNOWN, IGNORE_INDEX, rests
            ).astype(np.int64)
        return example, targets, drop

    def _unpaired(self, rng: np.random.Generator) -> tuple[dict, np.ndarray, np.ndarray]:
        """A window of a corpus score, transposed, as an aligned example whose performance
        input holds only the pitches (``pitch_only``), with its score rows (n,) and drop
        flags (n,, none): the score LM learns to write scores of unseen music from the
        pitches and its own context."""
        table, tpq = self.corpus[rng.choice(len(self.corpus), p=self.corpus_weights)]
        rows = table[_crop(rng, len(table), self.config.data.window)]
        rows = transpose_score(
            rows, transposition(rng, rows["pitch"], self.config.augment.transpose)
        )
        notes = np.zeros(len(rows), dtype=NOTE_DTYPE)  # in the rows' order; the timing is
        notes["pitch"] = rows["pitch"]  # masked below, so any will do
        notes["onset_sec"] = rows["onset_ticks"] / tpq / 2
        notes["offset_sec"], notes["velocity"] = notes["onset_sec"] + 0.25, 64
        drop = np.zeros(len(rows), bool)
        example = align_example(Performance(notes, np.zeros((0, 2))), rows, drop, tpq)
        example["performance"] = pitch_only(example["performance"])
        return example, rows, drop


def pitch_only(performance: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Performance token ids (n,) per stream with every stream but ``pitch`` set to ``MASK``:
    the input of an unpaired score (no performed note has all of them masked)."""
    return {
        name: ids if name == "pitch" else np.full_like(ids, MASK)
        for name, ids in performance.items()
    }


def mask_previous(
    rng: np.random.Generator,
    inputs: dict[str, np.ndarray],
    share: tuple[float, float],
    streams: tuple[str, ...] = (),
) -> np.ndarray:
    """Previous-note input dropout, in place: for a share of notes drawn from ``share``
    (low, high), the score-stream inputs ``streams`` (empty: every one; the previous note's
    tokens, never the note's own pitch nor the first note's BOS) become ``MASK``. Returns
    the masked notes (n,)."""
    n = len(inputs["pitch"])
    masked = rng.random(n) < rng.uniform(*share)
    masked[:1] = False
    for name, ids in inputs.items():
        if name != "pitch" and (not streams or name in streams):
            ids[masked] = MASK
    return masked


def collate_aligned(examples: list[dict], length: int) -> dict:
    """Aligned examples padded to (B, length): performance, inputs, targets, padding."""
    batch = collate([(e["inputs"], e["targets"]) for e in examples], length)
    batch["performance"] = collate([(e["performance"], {}) for e in examples], length)["inputs"]
    return batch
