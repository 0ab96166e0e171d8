"""Voices within a staff from the decoded onsets and values, not from the voice head.

The voice head learned to copy the previous note's voice and writes one voice per staff, so
a note held while its staff moves on is cut at the next onset (a chord shares one value) and
its line is lost. Here a note that sounds at least ``min_overhang`` ticks past the next onset
of its staff is given a voice of its own; the notes that move on take another voice, free at
that onset, and lines keep their voices by nearness in pitch. Up to ``MAX_VOICES`` voices per
staff; a group with no free voice joins the voice that frees first (assembly then shortens
the chord before it, as it did before).
"""

from __future__ import annotations

import numpy as np

MAX_VOICES = 4
NEW_VOICE_COST = 7.0  # semitones: a line jumps this far before a new voice is opened for it


def _groups(
    starts: np.ndarray,
    ends: np.ndarray,
    pitches: np.ndarray,
    following: int | None,
    min_overhang: int,
):
    """The notes of one onset as chords: the moving notes together, each held value apart."""
    held = (
        np.zeros(len(starts), dtype=bool) if following is None else ends - following >= min_overhang
    )
    groups = [np.flatnonzero(~held)] if (~held).any() else []
    for end in np.unique(ends[held]):
        groups.append(np.flatnonzero(held & (ends == end)))
    return sorted(groups, key=lambda g: -float(pitches[g].mean()))


def separate_voices(
    attributes: np.ndarray, drop: np.ndarray, onsets: np.ndarray, min_overhang: int
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
            for group in _groups(starts[here], ends[here], pitches[here], following, min_overhang):
                notes = here[group]
                pitch = float(pitches[notes].mean())
                free = np.flatnonzero(busy_until <= now)
                if len(free):
                    distance = np.where(
                        np.isnan(last_pitch[free]), NEW_VOICE_COST, np.abs(last_pitch[free] - pitch)
                    )
                    voice = int(free[np.argmin(distance + 0.01 * free)])
                else:
                    voice = int(np.argmin(busy_until))
                end = int(ends[notes].max())
                if following is not None and end - following < min_overhang:
                    end = min(end, following)  # a moving chord frees its voice at the next onset
                busy_until[voice] = end
                last_pitch[voice] = pitch
                attributes["voice"][members[notes]] = voice + 1
    return int((attributes["voice"][timed] != 1).sum())
