"""Note values chosen among the decoded onsets that follow: a learned, non-autoregressive pass.

The decoder writes a note's value before it has decoded the onsets that come after it, and
the gap closing (``neural.values``) can only extend a value to the next onset of its own
voice. Yet a notated value nearly always ends where some later onset of the score begins:
on the validation decodings, 15.2 % of the notes end where the ground truth does not, and
10.9 % would if each chord took the best of the options below (``benchmarks/value_choice.py
report``). So, once every onset, staff and voice is decoded, each
kept note gets ``OPTIONS`` options for its end: the next ``CANDIDATES`` distinct onsets of
the piece (any staff) that do not pass the next onset of its own staff and voice (the
writer would cut them there), and the value it has now. A small network scores each option
from how the note was played against the performed time of that end (the key's release, and
the sustain pedal's), the option's value, whether it is the voice's next onset, the
decoder's own value, the meter head's rest question and the note's place in its chord; the
best-scored option is written. It is trained on the training split's decodings by the
ground truth's ends (``benchmarks/value_choice.py``).

Shapes: N notes of a piece; M the kept, timed notes that get options; ``OPTIONS`` options
each; ``FEATURES`` numbers an option.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perf2score.score.meter import beat_quarters

CANDIDATES = 8  # later distinct onsets offered as a note's end
OPTIONS = CANDIDATES + 1  # and the value the note has now
MIN_SECONDS = 0.02  # floor of a performed span in the log ratios (seconds)
RATIO_CLIP = 3.0  # |log| ratios clipped to this
FEATURE_NAMES = (
    "release_ratio",  # log(played length / performed time to the option's end)
    "pedal_ratio",  # the same with the sustain pedal's hold
    "release_ratio_abs",
    "pedal_ratio_abs",
    "value_log2",  # log2 of the option's value in quarters
    "is_current",  # the value the note has now
    "is_decoded",  # the value the decoder wrote (before any closing)
    "is_voice_next",  # the next onset of the note's staff and voice
    "before_voice_next",  # short of it (a rest in the voice follows)
    "own_staff_onset",  # a note of its staff starts there
    "rest_odds",  # the meter head's log-odds of a rest after the note (0 when none)
    "rest_before_next",  # rest_odds where the option is short of the voice's next onset
    "rank",  # the option's place among the later onsets / CANDIDATES (1 for the current)
    "is_top",  # the highest note of its staff's chord
    "is_bottom",  # the lowest
    "lower_staff",
    "voice_gap_log2",  # log2 quarters to the voice's next onset (4 when none)
    "held_past",  # the key (pedal aside) still down at the option's end
    "ends_on_downbeat",  # the option's end is a bar line
    "ends_on_beat",  # ... a beat of its time signature
    "plain_value",  # a value of one notehead: 1/16, 1/8, ..., 4 quarters
    "dotted_value",  # a dotted one
    "nearest_release",  # the option whose performed end is nearest the key's release
    "nearest_pedal",  # ... nearest the end of the sound under the pedal
    "short_of_voice_log2",  # log2 quarters from the option's end to the voice's next onset
    "other_staff_onset",  # a note of the other staff starts there
    "legato_log",  # log(played length / performed time to the voice's next onset), per note
    "pitch_height",  # (pitch - 60) / 24
)
PLAIN_QUARTERS = (0.0625, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0)
FEATURES = len(FEATURE_NAMES)


@dataclass(frozen=True)
class ValueOptions:
    """The options of one piece's notes: ``notes`` (M,) indices into the piece's notes,
    ``starts`` (M,) their onsets in ticks, ``chords`` (M,) which chord each is in (the
    notes of one staff and voice at one onset, which the score writes with one value and
    which share their options), ``ends`` (M, OPTIONS) onset ticks of each option's end,
    ``valid`` (M, OPTIONS) which options exist, ``features`` (M, OPTIONS, FEATURES)
    float32. The current value of a chord is its longest note's, cut at the next onset of
    its voice: as the score writes it (``score.assembly``)."""

    notes: np.ndarray
    starts: np.ndarray
    chords: np.ndarray
    ends: np.ndarray
    valid: np.ndarray
    features: np.ndarray


def performed_times(onsets: np.ndarray, seconds: np.ndarray, kept: np.ndarray):
    """(distinct onset ticks (D,), their mean performed seconds (D,)) of the ``kept`` notes
    (``onsets`` (N,) ticks, ``seconds`` (N,))."""
    distinct, inverse = np.unique(onsets[kept], return_inverse=True)
    total = np.zeros(len(distinct))
    np.add.at(total, inverse, seconds[kept])
    return distinct, total / np.bincount(inverse, minlength=len(distinct))


def seconds_at(ticks: np.ndarray, distinct: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Performed seconds of score times ``ticks`` (any shape), linear between the distinct
    onsets ``distinct`` (D,) at ``times`` (D,), past the last at the piece's mean pace."""
    if len(distinct) < 2:
        return np.zeros(np.shape(ticks)) + (times[0] if len(times) else 0.0)
    inside = np.interp(ticks, distinct, times)
    pace = (times[-1] - times[0]) / max(float(distinct[-1] - distinct[0]), 1.0)
    past = times[-1] + (np.asarray(ticks, dtype=np.float64) - distinct[-1]) * pace
    return np.where(ticks > distinct[-1], past, inside)


def value_options(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    ticks_per_quarter: int,
    onset_sec: np.ndarray,
    release_sec: np.ndarray,
    pedal_sec: np.ndarray,
    decoded_durations: np.ndarray,
    rest_odds: np.ndarray | None = None,
) -> ValueOptions:
    """Every kept, timed note's options for its end (module docstring).

    Args:
        attributes: (N,) ``ATTRIBUTE_DTYPE`` rows with staves, voices and values settled.
        drop: (N,) notes left out of the score.
        onsets: (N,) absolute onsets in ticks.
        ticks_per_quarter: the ticks' resolution.
        onset_sec, release_sec, pedal_sec: (N,) performed onsets, key releases and ends
            held by the sustain pedal, in seconds.
        decoded_durations: (N,) the decoder's values in ticks, before any closing.
        rest_odds: (N,) the meter head's log-odds of a rest after each note (None: 0).
    """
    onsets = np.asarray(onsets, dtype=np.int64)
    timed = ~drop & ~attributes["is_grace"]
    notes = np.flatnonzero(timed)
    options, voice_next = option_ends(attributes, notes, onsets[notes])
    if len(notes):
        timing = Timing(onset_sec[notes], release_sec[notes], pedal_sec[notes])
        decoded = decoded_durations[notes]
        option_features(
            options, voice_next, attributes, ticks_per_quarter, timing, decoded, rest_odds
        )
    return options


@dataclass(frozen=True)
class Timing:
    """How the M notes were played: onsets, key releases and pedal-held ends (M,), seconds."""

    onset: np.ndarray
    release: np.ndarray
    pedal: np.ndarray


def voice_next_onsets(streams: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(M,) the next onset of each note's stream (staff and voice), -1 where none;
    ``streams``/``starts`` (M,)."""
    following = np.full(len(starts), -1, np.int64)
    for value in np.unique(streams):
        members = np.flatnonzero(streams == value)
        own = np.unique(starts[members])
        at = np.searchsorted(own, starts[members], side="right")
        has = at < len(own)
        following[members[has]] = own[at[has]]
    return following


def option_ends(
    attributes: np.ndarray, notes: np.ndarray, starts: np.ndarray
) -> tuple[ValueOptions, np.ndarray]:
    """(the options' ends and validity of the notes ``notes`` (M,) at ``starts`` (M,) ticks
    with their chords, features all zero but ``rank`` (filled by ``option_features``); the
    next onset of each note's voice (M,), -1 where none)."""
    m = len(notes)
    ends = np.zeros((m, OPTIONS), np.int64)
    valid = np.zeros((m, OPTIONS), bool)
    features = np.zeros((m, OPTIONS, FEATURES), np.float32)
    if m == 0:
        empty = np.zeros(0, np.int64)
        return ValueOptions(notes, starts, empty, ends, valid, features), empty
    distinct = np.unique(starts)
    streams = attributes["staff"][notes].astype(np.int64) * 1000 + attributes["voice"][notes]
    voice_next = voice_next_onsets(streams, starts)
    first = np.searchsorted(distinct, starts, side="right")
    rank = FEATURE_NAMES.index("rank")
    for k in range(CANDIDATES):
        at = first + k
        ok = at < len(distinct)
        ends[ok, k] = distinct[np.minimum(at, len(distinct) - 1)][ok]
        valid[:, k] = ok & ((voice_next < 0) | (ends[:, k] <= voice_next))
        features[:, k, rank] = k / CANDIDATES
    _, chords = np.unique(np.stack([streams, starts]), axis=1, return_inverse=True)
    chords = chords.reshape(-1)
    current = np.zeros(chords.max() + 1, np.int64)
    np.maximum.at(current, chords, starts + attributes["duration_ticks"][notes])
    current = current[chords]  # the chord's longest value, cut at the voice's next onset:
    current = np.where(voice_next >= 0, np.minimum(current, voice_next), current)  # as written
    ends[:, CANDIDATES] = current
    features[:, CANDIDATES, rank] = 1.0
    # the current value is one option: where a candidate ends there, the candidate's
    same = ((ends[:, :CANDIDATES] == current[:, None]) & valid[:, :CANDIDATES]).any(1)
    valid[:, CANDIDATES] = (current > starts) & ~same
    return ValueOptions(notes, starts, chords, ends, valid, features), voice_next


def option_features(
    options: ValueOptions,
    voice_next: np.ndarray,
    attributes: np.ndarray,
    ticks_per_quarter: int,
    timing: Timing,
    decoded_durations: np.ndarray,
    rest_odds: np.ndarray | None,
) -> None:
    """Fill ``options.features`` (in place) of the notes ``options.notes`` (M,), whose
    voices next begin at ``voice_next`` (M,) (``option_ends``), from how they were played
    (``timing``), the decoder's values ``decoded_durations`` (M,) in ticks
    and the rest question's log-odds ``rest_odds`` (N,) of the piece's notes (None: 0)."""
    notes, starts, ends, valid = options.notes, options.starts, options.ends, options.valid
    features, m = options.features, len(notes)
    distinct, times = performed_times(starts, timing.onset, np.ones(m, bool))
    staff = attributes["staff"][notes].astype(np.int64)
    own_staff = np.zeros((m, OPTIONS), bool)
    other_staff = np.zeros((m, OPTIONS), bool)
    for number in np.unique(staff):
        rows = staff == number
        own_staff[rows] = np.isin(ends[rows], np.unique(starts[rows]))
        other_staff[rows] = np.isin(ends[rows], np.unique(starts[~rows]))
    span = seconds_at(ends, distinct, times) - timing.onset[:, None]  # (M, OPTIONS)
    span = np.maximum(span, MIN_SECONDS)
    played = np.maximum(timing.release - timing.onset, MIN_SECONDS)[:, None]
    pedal = np.maximum(timing.pedal - timing.onset, MIN_SECONDS)[:, None]
    release_ratio = np.clip(np.log(played / span), -RATIO_CLIP, RATIO_CLIP)
    pedal_ratio = np.clip(np.log(pedal / span), -RATIO_CLIP, RATIO_CLIP)
    value = np.maximum(ends - starts[:, None], 1) / ticks_per_quarter
    rest = np.zeros(m) if rest_odds is None else np.clip(rest_odds[notes], -10, 10)
    before_next = (voice_next[:, None] >= 0) & (ends < voice_next[:, None])
    top, bottom = chord_edges(staff, starts, attributes["pitch"][notes])
    gap = np.where(voice_next >= 0, (voice_next - starts) / ticks_per_quarter, 16.0)
    current = ends[:, CANDIDATES]
    column = {name: i for i, name in enumerate(FEATURE_NAMES)}
    features[..., column["release_ratio"]] = release_ratio
    features[..., column["pedal_ratio"]] = pedal_ratio
    features[..., column["release_ratio_abs"]] = np.abs(release_ratio)
    features[..., column["pedal_ratio_abs"]] = np.abs(pedal_ratio)
    features[..., column["value_log2"]] = np.clip(np.log2(value), -6, 4)
    features[..., column["is_current"]] = ends == current[:, None]
    features[..., column["is_decoded"]] = ends == (starts + decoded_durations)[:, None]
    features[..., column["is_voice_next"]] = ends == voice_next[:, None]
    features[..., column["before_voice_next"]] = before_next
    features[..., column["own_staff_onset"]] = own_staff
    features[..., column["rest_odds"]] = rest[:, None]
    features[..., column["rest_before_next"]] = rest[:, None] * before_next
    features[..., column["is_top"]] = top[:, None]
    features[..., column["is_bottom"]] = bottom[:, None]
    features[..., column["lower_staff"]] = (staff == 2)[:, None]
    features[..., column["voice_gap_log2"]] = np.clip(np.log2(np.maximum(gap, 1e-3)), -6, 4)[
        :, None
    ]
    features[..., column["held_past"]] = (timing.release - timing.onset)[:, None] > span
    downbeat, beat = metric_places(attributes, notes, starts, ends, ticks_per_quarter)
    features[..., column["ends_on_downbeat"]] = downbeat
    features[..., column["ends_on_beat"]] = beat
    features[..., column["plain_value"]] = np.isin(value, PLAIN_QUARTERS)
    features[..., column["dotted_value"]] = np.isin(value, np.array(PLAIN_QUARTERS) * 1.5)
    for name, ratio in (("nearest_release", release_ratio), ("nearest_pedal", pedal_ratio)):
        distance = np.where(valid, np.abs(ratio), np.inf)
        features[..., column[name]] = distance == distance.min(1, keepdims=True)
    short = np.where(before_next, (voice_next[:, None] - ends) / ticks_per_quarter, 0.0)
    features[..., column["short_of_voice_log2"]] = np.where(
        before_next, np.clip(np.log2(np.maximum(short, 1e-3)), -6, 4), -7.0
    )
    features[..., column["other_staff_onset"]] = other_staff
    voice_span = seconds_at(np.maximum(voice_next, 0), distinct, times) - timing.onset
    legato = np.log(played[:, 0] / np.maximum(voice_span, MIN_SECONDS))
    legato = np.where(voice_next >= 0, np.clip(legato, -RATIO_CLIP, RATIO_CLIP), 0.0)
    features[..., column["legato_log"]] = legato[:, None]
    features[..., column["pitch_height"]] = ((attributes["pitch"][notes] - 60) / 24.0)[:, None]
    features[~valid] = 0.0


def chord_edges(staff: np.ndarray, starts: np.ndarray, pitch: np.ndarray):
    """(top (M,), bottom (M,)): whether each note is the highest / lowest of the notes of
    its staff at its onset."""
    chord = staff * 10**12 + starts
    order = np.lexsort((pitch, chord))
    keys = chord[order]
    top = np.zeros(len(chord), bool)
    bottom = np.zeros(len(chord), bool)
    bottom[order[np.r_[True, keys[1:] != keys[:-1]]]] = True
    top[order[np.r_[keys[1:] != keys[:-1], True]]] = True
    return top, bottom


def metric_places(
    attributes: np.ndarray,
    notes: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    ticks_per_quarter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(on a bar line (M, OPTIONS), on a beat (M, OPTIONS)) of the options' ``ends``: an end
    at a decoded onset (one of ``starts`` (M,)) takes the place of that onset's notes; another
    end is placed in its note's measure (past its end: into the next measure of the same
    length)."""
    position = attributes["position_ticks"][notes].astype(np.int64)
    length = np.maximum(attributes["measure_length_ticks"][notes].astype(np.int64), 1)
    signatures, which = np.unique(
        np.stack([attributes["ts_num"][notes], np.maximum(attributes["ts_den"][notes], 1)]),
        axis=1,
        return_inverse=True,
    )
    beats = [int(beat_quarters(int(n), int(d)) * ticks_per_quarter) for n, d in signatures.T]
    beat = np.maximum(np.array(beats, np.int64)[which.reshape(-1)], 1)  # (M,) ticks
    place = (position[:, None] + ends - starts[:, None]) % length[:, None]
    # an end at a decoded onset: the place of the first note decoded there
    onset_values, first = np.unique(starts, return_index=True)  # == distinct
    at = np.clip(np.searchsorted(onset_values, ends), 0, len(onset_values) - 1)
    at_onset = onset_values[at] == ends
    own = attributes["position_ticks"][notes[first[at]]].astype(np.int64)
    place = np.where(at_onset, own, place)
    return place == 0, place % beat[:, None] == 0


@dataclass(frozen=True)
class ValueChooser:
    """A two-layer network that scores each option (``FEATURES`` → ``hidden`` → 1, GELU
    between): ``w1`` (FEATURES, H), ``b1`` (H,), ``w2`` (H,), ``mean``/``scale``
    (FEATURES,) the features' standardisation; float32."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def scores(self, features: np.ndarray) -> np.ndarray:
        """(..., OPTIONS) scores of ``features`` (..., OPTIONS, FEATURES)."""
        shape = features.shape[:-1]
        x = (features.reshape(-1, FEATURES) - self.mean) / self.scale  # one 2-D product
        h = x @ self.w1 + self.b1
        h = 0.5 * h * (1.0 + np.tanh(0.7978845608 * (h + 0.044715 * h * h * h)))
        return (h @ self.w2).reshape(shape)

    def save(self, folder: str | os.PathLike) -> None:
        """``value_choice.safetensors`` and ``value_choice.json`` in ``folder``."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {name: getattr(self, name).astype(np.float32) for name in TENSORS}
        save_file(tensors, str(folder / "value_choice.safetensors"))
        config = {"features": list(FEATURE_NAMES), "candidates": CANDIDATES}
        (folder / "value_choice.json").write_text(json.dumps(config, indent=2) + "\n")


TENSORS = ("w1", "b1", "w2", "mean", "scale")


def load_value_chooser(folder: str | os.PathLike) -> ValueChooser | None:
    """The chooser saved in ``folder`` (None when there is none); refuses one trained on
    other features."""
    folder = Path(folder)
    path = folder / "value_choice.safetensors"
    if not path.is_file():
        return None
    from safetensors.numpy import load_file

    config = json.loads((folder / "value_choice.json").read_text())
    if tuple(config["features"]) != FEATURE_NAMES or config["candidates"] != CANDIDATES:
        raise ValueError(f"{folder}: a value chooser of other features")
    tensors = load_file(str(path))
    return ValueChooser(**{name: tensors[name].astype(np.float32) for name in TENSORS})


def choose_values(
    attributes: np.ndarray, options: ValueOptions, chooser: ValueChooser, margin: float = 0.0
) -> int:
    """Write each chord's chosen end (``chosen_options``) into ``attributes["duration_ticks"]``
    of its notes (in place); returns how many values changed."""
    if not len(options.notes):
        return 0
    chosen = chosen_options(options.chords, options.valid, options.features, chooser, margin)
    change = chosen >= 0
    new = options.ends[np.flatnonzero(change), chosen[change]] - options.starts[change]
    before = attributes["duration_ticks"][options.notes[change]].copy()
    attributes["duration_ticks"][options.notes[change]] = new
    return int((before != new).sum())


def chosen_options(
    chords: np.ndarray,
    valid: np.ndarray,
    features: np.ndarray,
    chooser: ValueChooser,
    margin: float = 0.0,
) -> np.ndarray:
    """(M,) per note, the option its chord takes, or -1 where it keeps its current value:
    an option's score for a chord is the sum over its notes of the option's log-probability
    among the note's options (``chord_log_probabilities``), and the best is taken where it
    beats the current value's by more than ``margin``. ``chords`` (M,), ``valid`` (M,
    OPTIONS), ``features`` (M, OPTIONS, FEATURES) as in ``ValueOptions``."""
    scores = np.full(valid.shape, -np.inf)
    scores[valid] = chooser.scores(features[valid])  # (V,) rows only
    log_p = chord_log_probabilities(chords, valid, scores)
    best = log_p.argmax(1)
    rows = np.arange(len(best))
    is_current = features[..., FEATURE_NAMES.index("is_current")] > 0
    current = np.where(is_current & valid, log_p, -np.inf).max(1)
    change = np.isfinite(log_p[rows, best]) & (log_p[rows, best] > current + margin)
    return np.where(change, best, -1)


def chord_log_probabilities(chords: np.ndarray, valid: np.ndarray, scores: np.ndarray):
    """(M, OPTIONS) per note, its chord's (``chords`` (M,)) summed log-probabilities of each
    option (``scores`` (M, OPTIONS) softmaxed over each note's ``valid`` options; -inf where
    the option is not valid for every note of the chord)."""
    scores = np.where(valid, scores, -np.inf)
    top = scores.max(1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    log_z = top + np.log(np.exp(scores - top).sum(1, keepdims=True) + 1e-30)
    log_p = np.where(valid, scores - log_z, -np.inf)
    total = np.zeros((int(chords.max()) + 1, OPTIONS))
    np.add.at(total, chords, np.where(valid, log_p, 0.0))
    everywhere = np.zeros(total.shape, np.int64)
    np.add.at(everywhere, chords, valid.astype(np.int64))
    size = np.bincount(chords, minlength=len(total))[:, None]
    total = np.where(everywhere == size, total, -np.inf)
    return total[chords]
