"""The staff (hand) of each decoded note, chosen after decoding (issue 11).

The decoder's staff head decides a note's staff before it has read what follows and copies
its previous choices, so it puts about one note in six on the wrong staff (validation).
Two replacements, chosen by ``DecodeConfig.staff``:

- ``"split"``: the classical converter's hand split (``perf2score.classical.hands``) over
  the performed notes;
- ``"hands"``: the hand head (``perf2score.models.meter_head`` asked ``staff``: is this
  performed note on the lower staff?) on the frozen performance LM, its log-odds read in the
  decoder's windows and then cut per decoded onset: the notes of one onset, sorted by pitch,
  go below (lower staff) or above one cut, the one that agrees most with the head
  (``cut_per_onset``); the classical split's vote is added with ``hand_split_weight``.
  With ``hand_continuity`` the cut is a pitch boundary tracked from onset to onset
  (``tracked_cut``), so that a note alone at its onset keeps to the side of the boundary
  the music around it put it on unless its evidence outweighs a move.

A wrong staff costs more than the hand error: it breaks the voice successors of the notes
before it in both staves, and the values closed to the next onset of its staff.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from perf2score.midi.reading import Performance

if TYPE_CHECKING:
    from perf2score.models.meter_head import MeterModel
    from perf2score.neural.runtime import NumpyAligned, NumpyMeter

STAFF_CHOICES = ("decoder", "split", "hands")
HAND_QUESTIONS = ("staff", "second_voice")  # what a hand head may answer, used here


def answers(head: NumpyMeter | MeterModel) -> tuple[str, ...]:
    """The questions a (numpy or torch) per-note head answers, in its output order."""
    from perf2score.neural.runtime import NumpyMeter

    return tuple(head.questions if isinstance(head, NumpyMeter) else head.config.questions)


def split_staff(performance: Performance) -> np.ndarray:
    """(N,) staff (1 upper, 2 lower) of each performed note by the classical hand split."""
    from perf2score.classical.hands import split_hands
    from perf2score.classical.rhythm import onset_events

    notes = performance.notes
    pitches = notes["pitch"].astype(int)
    events = onset_events(
        notes["onset_sec"], notes["offset_sec"], pitches, notes["velocity"].astype(float)
    )
    return split_hands(pitches, events.of_note)


def hand_logits(
    network: NumpyAligned | None,
    head: NumpyMeter | MeterModel,
    performance: Performance,
    window: int,
    overlap: int,
    question: str = "staff",
) -> np.ndarray:
    """(N,) log-odds of yes to ``question`` ("staff": is the performed note on the lower
    staff? "second_voice": is it in another voice than its staff's first?) by the hand
    ``head`` read in the decoder's windows (each note from the window that keeps it). A
    numpy head reads its own performance LM when it has one, else that of ``network`` (the
    decoder's); a torch head its own."""
    from perf2score.neural.meter import head_odds, windowed_odds
    from perf2score.neural.runtime import NumpyMeter

    if not isinstance(head, NumpyMeter) or head.performance is not None:  # reads its own LM
        return head_odds(head, performance, window, overlap)[:, answers(head).index(question)]
    if network is None:
        raise ValueError("a numpy hand head needs the network whose performance LM it reads")
    column = head.questions.index(question)

    def read(batch: dict[str, np.ndarray], padding: np.ndarray) -> np.ndarray:
        return head.odds(network.performance.encode(batch, padding))[..., column : column + 1]

    return windowed_odds(read, 1, performance, window, overlap)[:, 0]


def _by_onset_and_pitch(onsets: np.ndarray, pitches: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Indices of the kept notes, by onset, then pitch (lowest first)."""
    kept = np.flatnonzero(keep)
    return kept[np.lexsort((pitches[kept], onsets[kept]))]


def cut_per_onset(
    lower_odds: np.ndarray, onsets: np.ndarray, pitches: np.ndarray, keep: np.ndarray
) -> np.ndarray:
    """(N,) staff per note (1 upper, 2 lower; 1 where not ``keep``): the notes of each onset
    (``onsets`` (N,) ticks), sorted by pitch, split at the cut that maximises the summed
    log-odds (``lower_odds`` (N,)) of the notes put on the lower staff."""
    staff = np.ones(len(onsets), dtype=np.int8)
    order = _by_onset_and_pitch(onsets, pitches, keep)
    if not len(order):
        return staff
    starts = np.flatnonzero(np.r_[True, np.diff(onsets[order]) != 0])
    ends = np.r_[starts[1:], len(order)]
    alone = ends - starts == 1  # one note at its onset: lower when its log-odds are positive
    single = order[starts[alone]]
    staff[single[lower_odds[single] > 0]] = 2
    values = lower_odds[order].tolist()
    for first, end in zip(starts[~alone].tolist(), ends[~alone].tolist(), strict=True):
        best, best_gain, gain = 0, 0.0, 0.0  # cut c: the c lowest go below
        for c in range(first, end):
            gain += values[c]
            if gain > best_gain:
                best, best_gain = c - first + 1, gain
        staff[order[first : first + best]] = 2
    return staff


def tracked_cut(
    lower_odds: np.ndarray,
    onsets: np.ndarray,
    pitches: np.ndarray,
    keep: np.ndarray,
    per_semitone: float,
) -> np.ndarray:
    """(N,) staff per note (1 upper, 2 lower; 1 where not ``keep``) like ``cut_per_onset``,
    but the cut is a pitch boundary (notes below it on the lower staff) tracked over the
    decoded onsets (``onsets`` (N,) ticks) by a Viterbi pass that adds the log-odds
    (``lower_odds`` (N,)) of the notes put below and pays ``per_semitone`` nats for each
    semitone the boundary moves from one onset to the next. Linear in the onsets times the
    pitch range (the move's maximum by two running maxima, not all pairs)."""
    staff = np.ones(len(onsets), dtype=np.int8)
    order = _by_onset_and_pitch(onsets, pitches, keep)
    if not len(order):
        return staff
    group = np.r_[0, np.cumsum(np.diff(onsets[order]) != 0)]  # (K,) onset of each note
    low = int(pitches[order].min())
    height = pitches[order].astype(np.int64) - low  # (K,) 0 .. S-2
    states = int(height.max()) + 2  # boundary b: the notes with height < b go below
    below = np.zeros((int(group[-1]) + 1, states))
    np.add.at(below, (group, height + 1), lower_odds[order])
    emit = np.cumsum(below, axis=1)  # (onsets, S): summed odds of the notes below b
    ramp = per_semitone * np.arange(states)
    scores = np.empty_like(emit)
    scores[0] = emit[0]
    for t in range(1, len(emit)):
        previous = scores[t - 1]
        up = np.maximum.accumulate(previous + ramp) - ramp  # from a boundary at or below
        down = np.maximum.accumulate((previous - ramp)[::-1])[::-1] + ramp  # at or above
        row = np.maximum(up, down) + emit[t]
        scores[t] = row - row.max()
    boundary = np.empty(len(emit), dtype=np.int64)
    boundary[-1] = scores[-1].argmax()
    heights = np.arange(states)
    for t in range(len(emit) - 1, 0, -1):
        move = per_semitone * np.abs(heights - boundary[t])
        boundary[t - 1] = np.argmax(scores[t - 1] - move)
    staff[order[height < boundary[group]]] = 2
    return staff


def second_voices(
    voice_odds: np.ndarray,
    onsets: np.ndarray,
    attributes: np.ndarray,
    keep: np.ndarray,
    continuity: float = 0.0,
) -> np.ndarray:
    """(N,) voice per note within its staff (1, or 2 for a second voice; 1 where not
    ``keep``): the notes of each decoded onset (``onsets`` (N,) ticks) and staff
    (``attributes["staff"]``), sorted by pitch, split at the cut that maximises the summed
    log-odds (``voice_odds`` (N,), the hand head's "second_voice") of the notes put below
    it, which go to the second voice; a second voice is never above the first at one
    onset. With ``continuity`` > 0 the cut is a pitch boundary tracked over each staff's
    onsets (``tracked_cut``, nats per semitone it moves): a voice, once begun, keeps to its
    register, and a note alone at its onset joins the voice on its side of the boundary."""
    staff = attributes["staff"].astype(np.int64)
    pitches = attributes["pitch"].astype(np.int64)
    if continuity <= 0:
        per_staff_onset = onsets.astype(np.int64) * 4 + staff  # one group per onset, staff
        return cut_per_onset(voice_odds, per_staff_onset, pitches, keep)
    voices = np.ones(len(onsets), dtype=np.int8)
    for number in np.unique(staff[keep]).tolist():
        mine = keep & (staff == number)
        tracked = tracked_cut(voice_odds, onsets, pitches, mine, continuity)
        voices[mine] = tracked[mine]
    return voices


def held_above(
    performance: Performance,
    staff: np.ndarray,
    keep: np.ndarray,
    margin: float = 0.1,
    lead: float = 0.03,
) -> np.ndarray:
    """(N,) True for each kept note struck while a higher kept note of its staff
    (``staff`` (N,)), struck more than ``lead`` seconds before it, is still held (its key
    down: the performed offset, not the pedal) ``margin`` seconds past its onset: a melody
    note held over the accompaniment struck beneath it. Times in seconds."""
    notes = performance.notes
    pitch = notes["pitch"].astype(np.int64)
    return held_beside(notes["onset_sec"], notes["offset_sec"], pitch, staff, keep, margin, lead)[0]


def held_beside(
    onset_sec: np.ndarray,
    release_sec: np.ndarray,
    pitch: np.ndarray,
    staff: np.ndarray,
    keep: np.ndarray,
    margin: float = 0.1,
    lead: float = 0.03,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(above (N,) bool, below (N,) bool, held (N,) int): for each kept note, whether a
    higher / lower kept note of its staff (``staff`` (N,)), struck more than ``lead``
    seconds before it, is still held (key down, ``release_sec``) ``margin`` seconds past
    its onset, and how many such notes there are. Times in seconds."""
    n = len(onset_sec)
    above, below = np.zeros(n, bool), np.zeros(n, bool)
    held = np.zeros(n, np.int64)
    order = np.argsort(onset_sec, kind="stable")
    for number in np.unique(staff[keep]).tolist():
        sounding: list[int] = []  # notes that may still be held past a later onset
        for i in order[keep[order] & (staff[order] == number)].tolist():
            now = onset_sec[i]
            # onsets only grow, so a note released by now + margin is done with for good
            sounding = [j for j in sounding if release_sec[j] > now + margin]
            earlier = [pitch[j] for j in sounding if now - onset_sec[j] > lead]
            if earlier:
                above[i] = max(earlier) > pitch[i]
                below[i] = min(earlier) < pitch[i]
                held[i] = len(earlier)
            sounding.append(i)
    return above, below, held


def choose_staff(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    performance: Performance,
    how: str,
    lower_odds: np.ndarray | None = None,
    split_weight: float = 0.0,
    continuity: float = 0.0,
) -> None:
    """Set ``attributes["staff"]`` of the kept notes in place by ``how`` (``STAFF_CHOICES``:
    "decoder" leaves them): "split" the classical hand split, "hands" the cut per decoded
    onset (``onsets`` (N,) ticks) of the hand head's ``lower_odds`` (N,) plus
    ``split_weight`` times the split's vote (+1 lower, −1 upper); with ``continuity`` > 0
    the cut is tracked across the onsets (``tracked_cut``, nats per semitone)."""
    if how not in STAFF_CHOICES:
        raise ValueError(f"staff must be one of {STAFF_CHOICES}, not {how!r}")
    if how == "decoder":
        return
    keep = ~drop
    split = split_staff(performance)
    if how == "split":
        attributes["staff"][keep] = split[keep]
        return
    if lower_odds is None:
        raise ValueError("staff 'hands' needs the hand head's log-odds")
    evidence = lower_odds + split_weight * np.where(split == 2, 1.0, -1.0)
    pitches = performance.notes["pitch"].astype(int)
    if continuity > 0:
        staff = tracked_cut(evidence, onsets, pitches, keep, continuity)
    else:
        staff = cut_per_onset(evidence, onsets, pitches, keep)
    attributes["staff"][keep] = staff[keep]
