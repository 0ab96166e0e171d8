"""Voices of the decoded notes from the voice pass (``perf2score.models.voice_head``).

The decoded notes (drops and grace notes left out) are put in voice order with their decoded
onsets and staves and their played times, and every one gets the voice the pass gives it
within its staff; the values are then closed up to the next onset of the new voice
(``perf2score.neural.values.close_gaps``) as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from perf2score.midi.reading import Performance
from perf2score.neural.voice_features import voice_features, voice_order

if TYPE_CHECKING:
    from perf2score.models.voice_head import VoiceModel


def assign_voices(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    ticks_per_quarter: int,
    performance: Performance,
    model: VoiceModel,
    confidence: float = 0.0,
) -> int:
    """Rewrite ``attributes["voice"]`` (N,) in place from the voice pass.

    Args:
        attributes: (N,) ``ATTRIBUTE_DTYPE`` rows, one per performed note.
        drop: (N,) notes left out of the score (unchanged).
        onsets: (N,) absolute onsets in ticks.
        ticks_per_quarter: resolution of ``onsets``.
        performance: the performance the rows were decoded from (same N notes).
        model: the voice pass.
        confidence: a note leaves voice 1 only when the pass is at least this sure of it.

    Returns:
        How many notes are in a voice other than 1.
    """
    from perf2score.models.voice_head import predict_voices

    timed = np.flatnonzero(~drop & ~attributes["is_grace"])
    if not len(timed):
        return 0
    quarters = onsets[timed] / ticks_per_quarter
    staff = attributes["staff"][timed].astype(np.int64)
    pitch = attributes["pitch"][timed].astype(np.int64)
    order = voice_order(quarters, staff, pitch)
    chosen = timed[order]
    features = voice_features(
        performance.notes[chosen], quarters[order], staff[order], performance.pedal
    )
    voices = predict_voices(model, features, pitch[order], staff[order], confidence)
    attributes["voice"][chosen] = voices
    return int((voices != 1).sum())
