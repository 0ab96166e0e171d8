"""Voices as lines: each note linked to the notes that follow it in its voice (the voice linker).

The evaluator's voice error asks, of every note, which notes come next in its voice (its
successors). ``neural.voice_choice`` labels notes one by one as a first or second voice and
cannot follow a line across onsets. Here a small network scores, for each kept note ``n``
and each note ``m`` of its staff at one of the next ``REACH`` onsets of that staff, the
log-odds that ``m`` is among ``n``'s successors (``link_features``: the pitch step and how
near ``m`` is against the other notes there and in between, the time between them in the
score and in the performance, whether ``n``'s key is still down when ``m`` is struck, the
chords' sizes and places, loudness, the hand head's second-voice log-odds of both). A
tracker (``linked_voices``) then walks each staff's onsets: every note joins the open voice
whose last chord links to it best, or opens a voice of its own when no link reaches
``new_voice`` nats; a voice that no note has joined for ``REACH`` onsets is closed and its
number (1-4) freed. Trained on the training split's decodings against the ground truth's
successors (``benchmarks/voice_links.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from perf2score.neural.voice_choice import TwoLayerNetwork, load_network, save_network

REACH = 8  # onsets of its staff ahead of a note that its successors may be at (default)
STEP_SCALE = 8.0  # the step feature's unit (onsets)
MAX_VOICES = 4  # voices per staff (assembly clamps to 1-4)
CHORD_RULES = ("mean", "max")  # how a note's links weigh joining a voice at its own onset
ODDS_CLIP = 10.0  # |head log-odds| clipped to this (nats)
MIN_SECONDS = 0.02  # floor of a performed span in the log ratios (seconds)
RELEASE_SLACK = 0.05  # an onset counts as held over when struck this long before the release
FAR = 24.0  # semitones given where no note lies between two onsets
LINK_FEATURE_NAMES = (
    "step",  # which of the next onsets of the staff m is at, / STEP_SCALE
    "next_onset",  # m is at the staff's very next onset
    "pitch_step",  # (pitch m - pitch n) / 12, clipped to +-3 octaves
    "pitch_distance",  # |pitch m - pitch n| / 12
    "nearest_there",  # (|m - n| - the least |x - n| over m's onset) / 12
    "nearest_from_here",  # (|m - n| - the least |m - x| over n's onset) / 12
    "nearer_between_from_n",  # (least |x - n| over the onsets between) - |m - n|, / 12
    "nearer_between_to_m",  # (least |m - x| over the onsets between) - |m - n|, / 12
    "score_gap",  # log2 quarters from n to m
    "value_against_gap",  # log2(n's value / the gap; at one onset, / m's value), clipped
    "release_to_onset",  # n's release - m's played onset (seconds), clipped to +-2
    "held_against_gap",  # log2(n's played span / the played gap; at one onset, / m's), clipped
    "held_over_next",  # n's key is down when the staff's next onset is struck
    "held_over_m",  # n's key is down when m is struck
    "size_n",  # log2(1 + notes at n's onset)
    "size_m",
    "rank_n",  # 0 the top of n's chord .. 1 its bottom
    "rank_m",
    "louder",  # (velocity m - velocity n) / 20
    "odds_n",  # the head's second-voice log-odds / 4
    "odds_m",
    "lower_staff",
    "second_n",  # the voice chooser's second-voice log-odds / 4
    "second_m",
)
LINK_FEATURES = len(LINK_FEATURE_NAMES)


@dataclass
class Staffed:
    """The kept notes of a piece in (staff, onset, pitch from the top) order: ``order`` (K,)
    their positions in the piece; ``group`` (K,) the index of their (staff, onset) group;
    ``starts`` (G + 1,) each group's first place in ``order``; ``group_staff`` (G,);
    ``group_rank`` (G,) each group's index among its staff's onsets."""

    order: np.ndarray
    group: np.ndarray
    starts: np.ndarray
    group_staff: np.ndarray
    group_rank: np.ndarray


def staffed(onsets: np.ndarray, staff: np.ndarray, pitch: np.ndarray, keep: np.ndarray) -> Staffed:
    """Group the ``keep`` notes (N,) by staff and decoded onset (``onsets`` (N,) ticks)."""
    index = np.flatnonzero(keep)
    order = index[np.lexsort((-pitch[index], onsets[index], staff[index]))]
    s, o = staff[order], onsets[order]
    new = np.r_[True, (s[1:] != s[:-1]) | (o[1:] != o[:-1])] if len(order) else np.zeros(0, bool)
    group = np.cumsum(new) - 1
    starts = np.r_[np.flatnonzero(new), len(order)].astype(np.int64)
    group_staff = s[new]
    first_of_staff = np.r_[True, group_staff[1:] != group_staff[:-1]]
    rank = np.arange(len(group_staff)) - np.maximum.accumulate(
        np.where(first_of_staff, np.arange(len(group_staff)), 0)
    )
    return Staffed(order, group, starts, group_staff, rank)


def link_pairs(grouped: Staffed, reach: int = REACH) -> tuple[np.ndarray, ...]:
    """(src (P,), dst (P,), step (P,)) places in ``grouped.order``: every kept note with each
    note below it at its own onset (step 0) and with each note of its staff at each of its
    staff's next ``reach`` onsets (step 1..reach)."""
    sizes = np.diff(grouped.starts)
    groups = len(sizes)
    src_all, dst_all, step_all = [], [], []
    places = np.arange(len(grouped.order))
    # step 0: each note with every note below it at its own onset
    below = grouped.starts[grouped.group + 1] - places - 1
    src = np.repeat(places, below)
    offset = np.arange(len(src)) - np.repeat(np.cumsum(below) - below, below)
    src_all.append(src)
    dst_all.append(src + 1 + offset)
    step_all.append(np.zeros(len(src), np.int64))
    for step in range(1, reach + 1):
        target = grouped.group + step
        ok = target < groups
        ok[ok] = grouped.group_staff[target[ok]] == grouped.group_staff[grouped.group[ok]]
        src = places[ok]
        count = sizes[target[ok]]
        src = np.repeat(src, count)
        first = np.repeat(grouped.starts[target[ok]], count)
        offset = np.arange(len(src)) - np.repeat(np.cumsum(count) - count, count)
        src_all.append(src)
        dst_all.append(first + offset)
        step_all.append(np.full(len(src), step, np.int64))
    return (
        np.concatenate(src_all).astype(np.int64),
        np.concatenate(dst_all).astype(np.int64),
        np.concatenate(step_all),
    )


def _least(keys: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """(size,) the least of ``values`` per integer key (inf where a key has none)."""
    out = np.full(size, np.inf)
    np.minimum.at(out, keys, values)
    return out


def link_features(
    grouped: Staffed,
    pairs: tuple[np.ndarray, ...],
    attributes: np.ndarray,
    onsets: np.ndarray,
    tpq: int,
    onset_sec: np.ndarray,
    release_sec: np.ndarray,
    velocity: np.ndarray,
    odds: np.ndarray,
    second: np.ndarray,
) -> np.ndarray:
    """(P, LINK_FEATURES) float32 features of the ``pairs`` (``link_pairs``) of a piece.

    ``attributes`` (N,) with staff, pitch and ``duration_ticks`` set; ``onsets`` (N,) ticks;
    ``tpq`` ticks per quarter; ``onset_sec``/``release_sec`` (N,) the played times (seconds,
    the key's release, not the pedal's); ``velocity`` (N,); ``odds`` (N,) the hand head's
    second-voice log-odds; ``second`` (N,) the voice chooser's (``neural.voice_choice``)."""
    src, dst, step = pairs
    order, group = grouped.order, grouped.group
    k = len(order)
    reach = int(step.max()) if len(step) else 1
    pitch = attributes["pitch"].astype(np.float64)[order]
    on = onsets.astype(np.float64)[order]
    value = np.maximum(attributes["duration_ticks"].astype(np.float64)[order], 1.0)
    played_on = onset_sec.astype(np.float64)[order]
    release = release_sec.astype(np.float64)[order]
    loud = velocity.astype(np.float64)[order]
    head = np.clip(odds.astype(np.float64)[order], -ODDS_CLIP, ODDS_CLIP) / 4
    chosen = np.clip(second.astype(np.float64)[order], -ODDS_CLIP, ODDS_CLIP) / 4
    sizes = np.diff(grouped.starts)
    size = sizes[group]
    place = np.arange(k) - grouped.starts[group]
    rank = place / np.maximum(size - 1, 1)
    group_time = np.minimum.reduceat(played_on, grouped.starts[:-1]) if k else played_on
    distance = np.abs(pitch[dst] - pitch[src])
    # the nearest note to n at each step ahead, and to m at each step back
    ahead = _least(src * (reach + 1) + step, distance, k * (reach + 1)).reshape(k, reach + 1)
    back = _least(dst * (reach + 1) + step, distance, k * (reach + 1)).reshape(k, reach + 1)
    ahead[~np.isfinite(ahead)] = FAR
    back[~np.isfinite(back)] = FAR
    between_n = np.full(len(src), FAR)
    between_m = np.full(len(src), FAR)
    for s in range(2, reach + 1):
        at = step == s
        between_n[at] = ahead[src[at], 1:s].min(1)
        between_m[at] = back[dst[at], 1:s].min(1)
    # the nearest note of n's onset to m
    key = dst.astype(np.int64) * (len(sizes) + 1) + group[src]
    unique, inverse = np.unique(key, return_inverse=True)
    least_from = _least(inverse, distance, len(unique))[inverse]
    gap = np.maximum(on[dst] - on[src], 1.0)
    played_gap = np.maximum(played_on[dst] - played_on[src], MIN_SECONDS)
    span = np.maximum(release - played_on, MIN_SECONDS)
    next_group = np.minimum(group[src] + 1, len(sizes) - 1)
    columns = {
        "step": step / STEP_SCALE,
        "next_onset": step == 1,
        "pitch_step": np.clip((pitch[dst] - pitch[src]) / 12, -3, 3),
        "pitch_distance": np.minimum(distance, FAR * 2) / 12,
        "nearest_there": (distance - ahead[src, step]) / 12,
        "nearest_from_here": (distance - least_from) / 12,
        "nearer_between_from_n": np.clip(between_n - distance, -FAR, FAR) / 12,
        "nearer_between_to_m": np.clip(between_m - distance, -FAR, FAR) / 12,
        "score_gap": np.log2(gap / tpq),
        "value_against_gap": np.clip(  # at one onset: n's value against m's
            np.log2(value[src] / np.where(step == 0, value[dst], gap)), -4, 4
        ),
        "release_to_onset": np.clip(release[src] - played_on[dst], -2, 2),
        "held_against_gap": np.clip(
            np.log2(span[src] / np.where(step == 0, span[dst], played_gap)), -4, 4
        ),
        "held_over_next": release[src] > group_time[next_group] + RELEASE_SLACK,
        "held_over_m": release[src] > played_on[dst] + RELEASE_SLACK,
        "size_n": np.log2(1 + size[src]),
        "size_m": np.log2(1 + size[dst]),
        "rank_n": rank[src],
        "rank_m": rank[dst],
        "louder": (loud[dst] - loud[src]) / 20,
        "odds_n": head[src],
        "odds_m": head[dst],
        "lower_staff": grouped.group_staff[group[src]] >= 2,
        "second_n": chosen[src],
        "second_m": chosen[dst],
    }
    out = np.empty((len(src), LINK_FEATURES), np.float32)
    for column, name in enumerate(LINK_FEATURE_NAMES):
        out[:, column] = columns[name]
    return out


def _gelu_in_place(h: np.ndarray) -> np.ndarray:
    """GELU, tanh form (as torch's ``approximate="tanh"``), of float32 ``h`` (overwritten
    by a temporary of its size; the result is returned)."""
    t = h * h
    t *= np.float32(0.044715)
    t += np.float32(1.0)
    t *= h
    t *= np.float32(0.7978845608)
    np.tanh(t, out=t)
    t += np.float32(1.0)
    t *= h
    t *= np.float32(0.5)
    return t


@dataclass
class VoiceLinker(TwoLayerNetwork):
    """The ``TwoLayerNetwork`` (``neural.voice_choice``) over the ``LINK_FEATURES`` of
    ``link_features`` that gives each pair's log-odds of a link; ``reach``: the onsets
    ahead it links (``link_pairs``)."""

    reach: int = REACH

    def log_odds(self, features: np.ndarray) -> np.ndarray:
        """(P,) log-odds (nats) of a link for ``features`` (P, LINK_FEATURES) float32; the
        standardisation folded into the first layer, the GELUs computed in place (a piece
        of 5,000 notes has some 250,000 pairs)."""
        w1 = (self.w1 / self.scale[:, None]).astype(np.float32)
        b1 = (self.b1 - (self.mean / self.scale) @ self.w1).astype(np.float32)
        h = features.astype(np.float32, copy=False) @ w1
        h += b1
        h = _gelu_in_place(h)
        h = h @ self.w2
        h += self.b2
        return _gelu_in_place(h) @ self.w3

    def save(self, folder: str | os.PathLike) -> None:
        """``voice_links.safetensors`` and ``voice_links.json`` in ``folder``."""
        config = {"features": list(LINK_FEATURE_NAMES), "reach": self.reach}
        save_network(self, folder, "voice_links", config)


def load_voice_linker(folder: str | os.PathLike) -> VoiceLinker | None:
    """The linker saved in ``folder`` (None when there is none); refuses one trained on
    other features."""
    loaded = load_network(folder, "voice_links", LINK_FEATURE_NAMES, "voice linker")
    if loaded is None:
        return None
    tensors, config = loaded
    return VoiceLinker(**tensors, reach=int(config["reach"]))


def linked_voices(
    grouped: Staffed,
    pairs: tuple[np.ndarray, ...],
    link_odds: np.ndarray,
    size: int,
    new_voice: float = 0.0,
    reach: int = REACH,
    chord: str = "mean",
) -> np.ndarray:
    """(size,) voice per note within its staff (1..MAX_VOICES; 1 for notes not in
    ``grouped``). Each staff's onsets are walked in order, each chord from its top note; a
    note takes the best of: an open voice, scored by the strongest link (``link_odds`` (P,)
    per pair of ``pairs``) from that voice's last chord; a voice a note above it at this
    onset already joined, scored by the strongest link from those notes (step 0: the same
    voice) and the one from the voice's last chord, combined by ``chord`` (``CHORD_RULES``:
    "mean" their mean, so a note joins a chord only when it belongs with the notes already
    in it as well as with the line; "max" the stronger, where a link from the line alone
    could add it); a voice of its own, at ``new_voice`` nats, numbered with the lowest free
    number (with none free, the best other). A voice not joined for ``reach`` onsets is
    closed."""
    if chord not in CHORD_RULES:
        raise ValueError(f"chord must be one of {CHORD_RULES}, not {chord!r}")
    mean = chord == "mean"
    src, dst, _ = pairs
    width = len(grouped.order) + 1
    links = dict(zip((src * width + dst).tolist(), link_odds.tolist(), strict=True))
    voices = np.ones(size, np.int8)
    order = grouped.order
    current_staff = None
    open_voices: dict[int, tuple[list[int], int]] = {}  # number -> (last chord, its rank)
    for g in range(len(grouped.starts) - 1):
        staff, rank = int(grouped.group_staff[g]), int(grouped.group_rank[g])
        if staff != current_staff:
            current_staff, open_voices = staff, {}
        for number in [n for n, (_, r) in open_voices.items() if rank - r > reach]:
            del open_voices[number]
        joined: dict[int, list[int]] = {}
        for place in range(grouped.starts[g], grouped.starts[g + 1]):
            scores: dict[int, float] = {}
            for number, (chord, _) in open_voices.items():
                scores[number] = max(links.get(a * width + place, -np.inf) for a in chord)
            for number, here in joined.items():
                together = max(links.get(a * width + place, -np.inf) for a in here)
                line = scores.get(number, -np.inf)
                if mean and line > -np.inf:
                    scores[number] = (line + together) / 2
                else:
                    scores[number] = max(line, together)
            free = [n for n in range(1, MAX_VOICES + 1) if n not in open_voices and n not in joined]
            best = max(scores, key=scores.get) if scores else None
            if free and (best is None or scores[best] < new_voice):
                best = free[0]
            joined.setdefault(best, []).append(place)
        for number, chord in joined.items():
            open_voices[number] = (chord, rank)
            voices[order[chord]] = number
    return voices


def link_inputs(
    attributes: np.ndarray,
    keep: np.ndarray,
    onsets: np.ndarray,
    tpq: int,
    onset_sec: np.ndarray,
    release_sec: np.ndarray,
    velocity: np.ndarray,
    odds: np.ndarray,
    second: np.ndarray,
    reach: int = REACH,
) -> tuple[Staffed, tuple[np.ndarray, ...], np.ndarray]:
    """(grouped, pairs, features): the ``keep`` notes that are not grace notes grouped by
    staff and onset (``staffed``), their pairs within ``reach`` onsets (``link_pairs``) and
    the pairs' features (``link_features`` of the arguments, as documented there)."""
    timed = keep & ~attributes["is_grace"]
    staff, pitch = attributes["staff"].astype(np.int64), attributes["pitch"].astype(np.int64)
    grouped = staffed(onsets, staff, pitch, timed)
    pairs = link_pairs(grouped, reach)
    features = link_features(
        grouped, pairs, attributes, onsets, tpq, onset_sec, release_sec, velocity, odds, second
    )
    return grouped, pairs, features


def written_voices(
    grouped: Staffed,
    pairs: tuple[np.ndarray, ...],
    link_odds: np.ndarray,
    attributes: np.ndarray,
    new_voice: float = 0.0,
    reach: int = REACH,
    chord: str = "mean",
) -> np.ndarray:
    """(N,) the voices a conversion writes: ``linked_voices`` of the pairs' ``link_odds``
    (P,) (``new_voice``, ``reach``, ``chord`` as there), numbered by register in each
    measure (``numbered_by_register``); 1 for the notes not in ``grouped``."""
    voices = linked_voices(grouped, pairs, link_odds, len(attributes), new_voice, reach, chord)
    timed = np.zeros(len(attributes), bool)
    timed[grouped.order] = True
    return numbered_by_register(voices, attributes, timed)


def tracked_voices(
    attributes: np.ndarray,
    keep: np.ndarray,
    onsets: np.ndarray,
    tpq: int,
    onset_sec: np.ndarray,
    release_sec: np.ndarray,
    velocity: np.ndarray,
    odds: np.ndarray,
    second: np.ndarray,
    linker: VoiceLinker,
    new_voice: float = 0.0,
    chord: str = "mean",
) -> np.ndarray:
    """(N,) voice per note within its staff (1..MAX_VOICES; 1 where not ``keep`` or a grace
    note): ``written_voices`` over the ``linker``'s log-odds of the pairs of ``link_inputs``
    (the arguments as documented there; ``new_voice`` and ``chord`` as ``linked_voices``)."""
    inputs = (attributes, keep, onsets, tpq, onset_sec, release_sec, velocity, odds, second)
    grouped, pairs, features = link_inputs(*inputs, linker.reach)
    link_odds = linker.log_odds(features).astype(np.float64)
    return written_voices(grouped, pairs, link_odds, attributes, new_voice, linker.reach, chord)


def numbered_by_register(
    voices: np.ndarray, attributes: np.ndarray, keep: np.ndarray
) -> np.ndarray:
    """(N,) ``voices`` renumbered within each measure and staff (``attributes["measure"]``,
    ``["staff"]``) as a score numbers them: the voice of the highest mean pitch there is 1,
    the next 2, and so on; a measure's only voice is voice 1 (the tracker's own numbers
    drift as lines open and close, and a measure without a voice 1 is written with a whole
    rest in it). ``keep`` (N,): the notes renumbered."""
    out = voices.copy()
    index = np.flatnonzero(keep)
    if not len(index):
        return out
    staff = attributes["staff"].astype(np.int64)[index]
    measure = attributes["measure"].astype(np.int64)[index]
    pitch = attributes["pitch"].astype(np.float64)[index]
    key = (measure * 8 + staff) * (MAX_VOICES + 1) + voices.astype(np.int64)[index]
    unique, inverse = np.unique(key, return_inverse=True)
    mean = np.bincount(inverse, pitch) / np.bincount(inverse)
    place = unique // (MAX_VOICES + 1)  # the measure and staff
    ranked = np.lexsort((-mean, place))
    first = np.r_[True, place[ranked][1:] != place[ranked][:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(ranked)), 0))
    number = np.empty(len(unique), np.int64)
    number[ranked] = np.arange(len(ranked)) - start + 1
    out[index] = number[inverse]
    return out
