"""``perf2score.convert``: a performance MIDI (or its notes) → an engraved ``Score``.

Backends: ``classical`` (beat tracking and quantisation, no weights), ``neural`` (the
shipped fine-tuned model: pre-trained LMs joined by the function-alignment adapter) and
``auto`` (the neural model when its weights are in the package, else the classical
converter; the classical converter too for a file played exactly as written, such as a
sequencer's export: ``played_exactly``). Converting imports no training, data-preparation
or evaluation code (a test checks ``sys.modules``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from perf2score.errors import Perf2ScoreError
from perf2score.midi import Performance, read_performance
from perf2score.score.assembly import AssembledScore, assemble
from perf2score.score.export import save
from perf2score.score.musicxml import to_musicxml
from perf2score.shipped import shipped_available

if TYPE_CHECKING:
    from perf2score.models.adapter import AlignedModel
    from perf2score.neural.converter import NeuralModel

    ModelLike = NeuralModel | AlignedModel | str | os.PathLike | None

BACKENDS = ("auto", "neural", "classical")
# onsets this close to the classical tracker's grid (mean distance in beats,
# ``classical.rhythm.grid_residual``) mark a file played exactly as written (a sequencer's or
# notation program's export): "auto" converts it with the classical backend. The validation
# scores rendered exactly (benchmarks/quantised_scores.py): on the 8 under 0.001, classical
# E_avg 4.13 against the neural 5.05, better on 7 (README)
EXACT_RESIDUAL = 0.001
MAX_NOTES = 100_000
MAX_SECONDS = 3 * 3600.0


@dataclass
class Score:
    """A converted score: ``save(path)`` writes MusicXML, MIDI, MEI, SVG, PNG or PDF."""

    assembled: AssembledScore
    backend: str
    source: str = ""

    def save(self, path: str | os.PathLike, fmt: str | None = None) -> list[Path]:
        """Write the score (format from ``fmt`` or the suffix); return the files written."""
        return save(self.assembled, path, fmt)

    def to_musicxml(self) -> str:
        return to_musicxml(self.assembled)

    @property
    def repairs(self) -> list[str]:
        return self.assembled.repairs


def neural_available() -> bool:
    """Whether trained weights ship with the package."""
    return shipped_available()


def resolve_backend(backend: str, model: ModelLike = None) -> str:
    """The backend that ``backend`` means here (``auto`` picks one; a given model (folder or
    loaded) makes ``auto`` and ``neural`` use it)."""
    if backend not in BACKENDS:
        raise Perf2ScoreError(f"unknown backend '{backend}' (use {', '.join(BACKENDS)})")
    if model is not None and backend != "classical":
        return "neural"
    if backend == "auto":
        return "neural" if neural_available() else "classical"
    if backend == "neural" and not neural_available():
        raise Perf2ScoreError(
            "no trained neural model ships with this version; use --backend classical"
        )
    return backend


def played_exactly(performance: Performance) -> bool:
    """Whether the performance's onsets sit on the classical beat tracker's grid (mean
    distance under ``EXACT_RESIDUAL`` beats): a file played exactly as written."""
    from perf2score.classical.rhythm import grid_residual

    return bool(grid_residual(performance) < EXACT_RESIDUAL)


def _hours(seconds: float) -> str:
    """'3 h' or '3 h 01 min', minutes rounded up (a file over a limit never reads as on it)."""
    minutes = math.ceil(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes % 60 else f"{minutes // 60} h"


def check_performance(performance: Performance) -> Performance:
    """The performance, validated for conversion (sorted by onset when it was not).

    Raises:
        Perf2ScoreError: no notes, too many or too long (``MAX_NOTES``, ``MAX_SECONDS``),
            missing fields, times that are not finite or negative, offsets before onsets,
            pitches outside MIDI's 0-127.
    """
    name = performance.source or "input"
    notes = performance.notes
    missing = [
        f
        for f in ("pitch", "onset_sec", "offset_sec", "velocity")
        if f not in (notes.dtype.names or ())
    ]
    if missing:
        raise Perf2ScoreError(f"{name}: the notes have no field(s) {', '.join(missing)}")
    if len(notes) == 0:
        raise Perf2ScoreError(f"{name}: the performance has no notes")
    if len(notes) > MAX_NOTES:
        raise Perf2ScoreError(f"{name}: {len(notes):,} notes (at most {MAX_NOTES:,})")
    onsets, offsets = notes["onset_sec"], notes["offset_sec"]
    if not (np.isfinite(onsets).all() and np.isfinite(offsets).all()):
        raise Perf2ScoreError(f"{name}: note times are not finite")
    if onsets.min() < 0:
        raise Perf2ScoreError(f"{name}: a note starts before 0 s ({onsets.min():.3f} s)")
    if (offsets < onsets).any():
        count = int((offsets < onsets).sum())
        raise Perf2ScoreError(f"{name}: {count} note(s) end before they start")
    pitches = notes["pitch"]
    if pitches.min() < 0 or pitches.max() > 127:
        raise Perf2ScoreError(f"{name}: pitches must be MIDI numbers 0-127")
    if performance.duration_sec > MAX_SECONDS:
        raise Perf2ScoreError(
            f"{name}: lasts {_hours(performance.duration_sec)} (at most {_hours(MAX_SECONDS)})"
        )
    order = np.lexsort((offsets, pitches, onsets))
    if (order != np.arange(len(order))).any():
        performance = replace(performance, notes=notes[order])
    return performance


def read_input(path: str | os.PathLike) -> Performance:
    """The performance in a MIDI file, or transcribed from an audio recording (by suffix)."""
    from perf2score.audio import is_audio

    if is_audio(path):
        from perf2score.audio import transcribe_file

        return transcribe_file(path)
    return read_performance(path)


def convert(
    source: str | os.PathLike | Performance,
    backend: str = "auto",
    model: ModelLike = None,
    time_signature: str | None = None,
    tempo: float | None = None,
    repeats: bool = True,
    key_changes: bool = False,
) -> Score:
    """Convert a performance MIDI file, an audio recording (WAV, FLAC, MP3, Ogg, AIFF:
    transcribed first, with the ``audio`` extra) or an already read ``Performance`` to a
    ``Score``.

    ``backend``: "auto" (the neural model, the given one or the shipped one, except for a
    performance played exactly as written, ``played_exactly``, which the classical converter
    reads better; with a time signature or tempo given, always the neural model),
    "neural" or "classical".

    ``model`` (neural backend): an aligned-model folder (``adapter.json``), or a model loaded
    once with ``perf2score.load_neural_model`` (a ``NeuralModel``, or a bare
    ``AlignedModel``), instead of loading the shipped one on every call. A caller that
    converts many files should load the model once and pass it.

    ``time_signature`` ("3/4") and ``tempo`` (notated quarters per minute), when you know
    them (neural backend): the bar lines are drawn in that time signature and the decoded
    values doubled or halved to come nearest that tempo.

    ``repeats``: a section the performer played twice in a row is written once between
    repeat bar lines, with first and second endings where the passes end differently
    (``perf2score.score.repeats``); False writes every note played.

    ``key_changes``: a new key signature where the music settles in a remote key
    (``perf2score.score.key_sections``) instead of the home key's throughout; the spelling
    follows each section's key either way.
    """
    performance = source if isinstance(source, Performance) else read_input(source)
    performance = check_performance(performance)
    chosen = resolve_backend(backend, model)
    given = time_signature is not None or tempo is not None
    if backend == "auto" and chosen == "neural" and not given and played_exactly(performance):
        chosen = "classical"
    if given and chosen != "neural":
        raise Perf2ScoreError("a given time signature or tempo needs the neural backend")
    if chosen == "classical":
        from perf2score.classical import classical_attributes

        attributes, tpq, played_qpm = classical_attributes(performance, key_changes)
        drop = None
    else:
        from perf2score.neural.converter import as_neural_model, neural_attributes, with_meter

        neural = as_neural_model(model)
        if given:
            neural = with_meter(neural, time_signature, tempo)
        if key_changes:
            neural = replace(neural, decoding=replace(neural.decoding, key_changes=True))
        attributes, tpq, played_qpm, drop = neural_attributes(performance, neural)
    title = Path(performance.source).stem if performance.source else "Transcription"
    assembled = assemble(
        attributes,
        tpq,
        drop=drop,
        velocities=performance.notes["velocity"],
        tempo_qpm=played_qpm,
        title=title,
    )
    if repeats:
        write_repeats_once(assembled, performance, attributes, drop)
    return Score(assembled, chosen, performance.source)


def write_repeats_once(
    score: AssembledScore,
    performance: Performance,
    attributes: np.ndarray,
    drop: np.ndarray | None,
) -> int:
    """Fold the sections ``performance`` played twice in a row in ``score`` (assembled
    from ``attributes`` (N,) with ``drop`` (N,) left out), in place; returns how many."""
    from perf2score.score.repeats import find_repeats, fold_repeats

    notes = performance.notes
    found = find_repeats(notes["onset_sec"], notes["pitch"])
    if not found:
        return 0
    timed = ~attributes["is_grace"] if drop is None else ~attributes["is_grace"] & ~drop
    starts = np.array([m.start for m in score.measures], dtype=np.int64)
    measure = np.clip(attributes["measure"][timed], 0, len(starts) - 1)
    ticks = starts[measure] + attributes["position_ticks"][timed]
    return len(fold_repeats(score, found, notes["onset_sec"][timed], ticks))
