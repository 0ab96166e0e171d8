"""Voices within a staff from the decoded onsets and values, not from the voice head.

The voice head learned to copy the previous note's voice and writes one voice per staff, so
a note held while its staff moves on is cut at the next onset (a chord shares one value) and
its line is lost. Here a note that sounds at least ``min_overhang`` ticks past the next onset
of its staff is given a voice of its own; the notes that move on take another voice, free at
that onset: the free voice nearest in pitch among those already used, else a new one. Up to
``MAX_VOICES`` voices per staff; a group with no free voice joins the voice that frees first
(assembly then shortens the chord before it, as it did before).

Off by default (``DecodeConfig.held_voice_quarters`` = 0): on validation it made the shipped
model worse (E_avg 8.43 → 9.07 at 2 quarters, 9.63 at 1; offset 21.4 → 24.6 / 27.4, voice
34.2 → 36.2 / 38.6): the values the decoder writes past the next onset are mostly wrong, and
the assembly's cut at that onset was right more often than the held value. Kept as a
decoding option for models whose value head is better.
"""

from __future__ import annotations

import numpy as np

MAX_VOICES = 4


def _groups(
    ends: np.ndarray,
    pitches: np.ndarray,
    following: int | None,
    min_overhang: int,
) -> list[np.ndarray]:
    """The notes of one onset as chords (indices, highest first): the moving notes together,
    the held notes of each end apart."""
    held = np.zeros(len(ends), dtype=bool)
    if following is not None:
        held = ends - following >= min_overhang
    groups = [np.flatnonzero(~held)] if (~held).any() else []
    for end in np.unique(ends[held]):
        groups.append(np.flatnonzero(held & (ends == end)))
    return sorted(groups, key=lambda g: -float(pitches[g].mean()))


def separate_voices(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    min_overhang: int,
) -> int:
    """Rewrite ``attributes["voice"]`` in place (see the module docstring).

    Args:
        attributes: (N,) ``ATTRIBUTE_DTYPE`` rows of one piece (``staff``, ``duration_ticks``,
            ``pitch`` are read).
        drop: (N,) notes left out of the score (voice unchanged).
        onsets: (N,) absolute onsets in ticks.
        min_overhang: ticks past the next onset of the staff from which a note is "held".

    Returns:
        How many notes are in a voice other than 1.
    """
    timed = ~drop & ~attributes["is_grace"]
    attributes["voice"][timed] = 1
    for staff in np.unique(attributes["staff"][timed]):
        members = np.flatnonzero(timed & (attributes["staff"] == staff))
        starts = onsets[members].astype(np.int64)
        ends = starts + attributes["duration_ticks"][members].astype(np.int64)
        pitches = attributes["pitch"][members].astype(np.float64)
        times = np.unique(starts)
        busy_until = np.full(MAX_VOICES, np.iinfo(np.int64).min)
        last_pitch = np.full(MAX_VOICES, np.nan)
        for k, now in enumerate(times):
            here = np.flatnonzero(starts == now)
            following = int(times[k + 1]) if k + 1 < len(times) else None
            for group in _groups(ends[here], pitches[here], following, min_overhang):
                notes = here[group]
                pitch = float(pitches[notes].mean())
                free = np.flatnonzero(busy_until <= now)
                used = free[~np.isnan(last_pitch[free])]
                if len(used):  # the free line nearest in pitch continues
                    voice = int(used[np.argmin(np.abs(last_pitch[used] - pitch))])
                elif len(free):  # a new line
                    voice = int(free[0])
                else:
                    voice = int(np.argmin(busy_until))
                end = int(ends[notes].max())
                if following is not None and end - following < min_overhang:
                    end = min(end, following)  # a moving chord frees its voice at the next onset
                busy_until[voice] = end
                last_pitch[voice] = pitch
                attributes["voice"][members[notes]] = voice + 1
    return int((attributes["voice"][timed] != 1).sum())
