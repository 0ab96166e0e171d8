"""Note values that agree with the onsets: close the gaps the value head leaves in a voice.

The decoder chooses a note's value before it has decoded the later onsets of its voice, and
it chooses too short far more often than too long: on validation 20.6 % of matched notes
end too early against 4.3 % too late, and 91 % of notated values run exactly to the next
onset of their own voice (``benchmarks/error_breakdown.py``). After decoding, every value
that stops short of the next onset of its staff and voice by at most ``max_gap`` ticks is
extended to that onset, i.e. a rest of at most that length inside a voice is closed.

Optionally, notes the performer detached are left short (``Articulation``): where the sound
(the key, or the sustain pedal holding it) stops before the next onset of the voice by more
than a share of the time between the two onsets, the gap stays open as a rest. Off by
default (``DecodeConfig.legato_silence_share`` = 1): on validation every share tried made
the offset error worse (a played silence is rarely a notated rest).

Gaps longer than ``max_gap`` (a held bass under a bar or two of running notes in the other
staff) are closed only where the performance held the note that long (``held``: an
``Articulation`` whose share is the silence allowed before the next onset): a long note the
performer held is written long, a long rest the performer left stays a rest.

Optionally, the gaps after notes that the meter head hears a rest after (its
``rest_after`` question, ``DecodeConfig.rest_head``) stay open in both closings
(``rests``: a mask (N,) of the notes whose gap is kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Articulation:
    """How the notes were played, for ``close_gaps``: performed onsets (N,) and the ends of
    their sound (N,) in seconds (the release, or later while the sustain pedal is down:
    ``tokens.performance.pedal_extended_offsets``); a gap stays open where the silence
    before the next onset of the voice exceeds ``silence_share`` of the time between the
    two onsets (1 or more: every gap closes)."""

    onset_sec: np.ndarray
    sound_end_sec: np.ndarray
    silence_share: float


def close_gaps(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    max_gap: int,
    played: Articulation | None = None,
    held: Articulation | None = None,
    rests: np.ndarray | None = None,
) -> int:
    """Extend ``attributes["duration_ticks"]`` in place (see the module docstring).

    Args:
        attributes: (N,) ``ATTRIBUTE_DTYPE`` rows of one piece.
        drop: (N,) notes left out of the score (never changed, never an onset).
        onsets: (N,) absolute onsets in ticks (``neural.decode.measure_grid``).
        max_gap: longest gap in ticks that is closed (0: none; a large number: every one).
        played: the performance's articulation (None: close every gap up to ``max_gap``).
        held: the articulation that decides gaps longer than ``max_gap`` (None: they stay).
        rests: (N,) notes whose gap stays open whatever its length (None: none).

    Returns:
        How many values were extended.
    """
    if max_gap <= 0 and held is None:
        return 0
    timed = ~drop & ~attributes["is_grace"]
    changed = 0
    streams = attributes["staff"].astype(np.int64) * 1000 + attributes["voice"]
    for stream in np.unique(streams[timed]):
        members = np.flatnonzero(timed & (streams == stream))
        starts = onsets[members]
        distinct, k, has_next, following = next_onsets(starts)
        ends = starts + attributes["duration_ticks"][members]
        gap = following - ends
        close = has_next & (gap > 0) & (gap <= max_gap)
        if played is not None and played.silence_share < 1:
            close &= ~_detached(played, members, distinct, k, has_next)
        if held is not None:
            long = has_next & (gap > max(max_gap, 0))
            close |= long & ~_detached(held, members, distinct, k, has_next)
        if rests is not None:
            close &= ~rests[members]
        attributes["duration_ticks"][members[close]] = (following - starts)[close]
        changed += int(close.sum())
    return changed


def next_onsets(starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For the onsets ``starts`` (M,) of one voice's notes: its distinct onsets (D,), each
    note's index (M,) of the next distinct onset after its own, whether there is one (M,),
    and that onset (M,) (the last onset where there is none)."""
    distinct = np.unique(starts)
    index = np.searchsorted(distinct, starts, side="right")
    has_next = index < len(distinct)
    return distinct, index, has_next, distinct[np.minimum(index, len(distinct) - 1)]


def _detached(
    played: Articulation,
    members: np.ndarray,
    distinct: np.ndarray,
    following: np.ndarray,
    has_next: np.ndarray,
) -> np.ndarray:
    """(M,) True where member m's sound stopped before the voice's next onset (index
    ``following`` (M,) into ``distinct``, valid where ``has_next``) by more than the
    silence share of the performed time between the two onsets. The next onset is played
    when its earliest note is."""
    first_played = np.full(len(distinct), np.inf)
    np.minimum.at(first_played, following - 1, played.onset_sec[members])  # own onset's index
    next_sec = first_played[np.minimum(following, len(distinct) - 1)]
    silence = next_sec - played.sound_end_sec[members]
    between = next_sec - played.onset_sec[members]
    return has_next & (silence > played.silence_share * np.maximum(between, 0.0))


def close_split_gaps(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    max_gap: int,
    first_only: bool = True,
    rests: np.ndarray | None = None,
) -> int:
    """After a staff's notes are split into voices: extend, in place, each value of the
    first voice (every voice unless ``first_only``) that ends where a note of another voice
    of its staff begins, short of the next onset of its own voice by at most ``max_gap``
    ticks, to that onset. ``close_gaps`` closed the value on the staff's notes before the
    split, so it ends at the next onset of the staff, which may now be the accompaniment's:
    without this the melody reads as a short note and a rest where it is held.

    Args:
        attributes: (N,) ``ATTRIBUTE_DTYPE`` rows of one piece (``staff``, ``voice`` set).
        drop: (N,) notes left out of the score (never changed, never an onset).
        onsets: (N,) absolute onsets in ticks.
        max_gap: longest gap in ticks that is closed (0: none).
        first_only: only the first voice of each staff.
        rests: (N,) notes whose gap stays open (None: none).

    Returns:
        How many values were extended.
    """
    if max_gap <= 0:
        return 0
    timed = ~drop & ~attributes["is_grace"]
    staff = attributes["staff"].astype(np.int64)
    voice = attributes["voice"].astype(np.int64)
    changed = 0
    for number in np.unique(staff[timed]):
        on_staff = timed & (staff == number)
        voices = np.unique(voice[on_staff])
        if len(voices) < 2:
            continue
        for own in voices[:1] if first_only else voices:
            members = np.flatnonzero(on_staff & (voice == own))
            others = np.unique(onsets[on_staff & (voice != own)])
            starts = onsets[members]
            _, _, has_next, following = next_onsets(starts)
            ends = starts + attributes["duration_ticks"][members]
            gap = following - ends
            close = has_next & (gap > 0) & (gap <= max_gap) & np.isin(ends, others)
            if rests is not None:
                close &= ~rests[members]
            attributes["duration_ticks"][members[close]] = (following - starts)[close]
            changed += int(close.sum())
    return changed
