"""Second voices chosen by a small learned network over the decoded piece (the voice chooser).

Once the staves are set, each kept note of a staff is in its first voice or in a second one
below it. ``neural.hands.second_voices`` cuts each decoded onset of a staff by the hand
head's "second_voice" log-odds, which read the performance alone (the rule). The
``VoiceChooser`` reads those log-odds together with what the decoded piece says about each
note (``voice_features``): struck under a held higher note of its staff or over a held lower
one, its place in its chord, its register against its neighbours, how long it is held
against the next onsets of its staff, its value, how far it leaps from the notes of the
staff's previous and next onsets, its loudness against its chord, the voice the rule gives
it, and the passage around it. Its log-odds (plus a bias) are then cut per onset by
``second_voices`` as the head's were: a second voice is never above the first at one onset.
Trained on the training split's decodings against the ground truth's voices
(``benchmarks/voice_choice.py``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perf2score.neural.hands import held_beside

ODDS_CLIP = 10.0  # |head log-odds| clipped to this (nats)
LOCAL_ONSETS = 4  # onsets each side for the local pitch and loudness
PASSAGE_ONSETS = 8  # onsets each side for the passage's odds and held share
HELD_MARGIN = 0.1  # a held note still sounds this long past the onset (seconds)
HELD_LEAD = 0.03  # and was struck at least this long before it (seconds)
MIN_SECONDS = 0.02  # floor of a performed span in the log ratios (seconds)
LAST_GAP_SECONDS = 60.0  # the time to the next onset after a staff's last one (seconds)
RELEASE_SLACK = 0.05  # an onset counts as held over when struck this long before the release
NO_NEIGHBOUR = 2.0  # leap (octaves) given where the staff has no previous / next onset
FEATURE_NAMES = (
    "head_odds",  # the hand head's second-voice log-odds / 4
    "held_above",  # struck under a held higher note of its staff
    "held_below",  # struck over a held lower note of its staff
    "chord_size",  # log2(1 + notes of its staff at its onset)
    "chord_rank",  # 0 the top of that chord .. 1 its bottom
    "chord_top",
    "chord_bottom",
    "below_top",  # (pitch - the chord's highest) / 12
    "above_bottom",  # (pitch - the chord's lowest) / 12
    "against_local",  # (pitch - the mean pitch of the staff's nearby onsets) / 12
    "lower_staff",
    "held_over_gap",  # log2(played span / time to the staff's next onset)
    "onsets_held",  # log2(1 + the staff's later onsets struck while its key is down)
    "value",  # log2 value in quarters (as closed)
    "next_gap",  # log2 quarters to the staff's next onset
    "previous_gap",  # log2 quarters from the staff's previous onset
    "louder_than_chord",  # (velocity - its chord's mean) / 20
    "louder_than_local",  # (velocity - the nearby onsets' mean) / 20
    "other_staff_onset",  # the other staff strikes at the same onset
    "leap_from_previous",  # octaves to the nearest note of the staff's previous onset
    "leap_to_next",  # octaves to the nearest note of the staff's next onset
    "sounding",  # log2(1 + notes of its staff held through its onset)
    "register",  # pitch / 128
    "on_beat",  # on a quarter of the grid
    "rule_second",  # the rule (second_voices on the head's evidence) puts it in voice 2
    "passage_odds",  # the head's log-odds / 4, mean over the staff's nearby onsets
    "passage_held",  # share of held_above notes over the staff's nearby onsets
)
FEATURES = len(FEATURE_NAMES)
TENSORS = ("w1", "b1", "w2", "b2", "w3", "mean", "scale")


def _window_mean(values: np.ndarray, reach: int) -> np.ndarray:
    """(G,) the mean of ``values`` (G,) over each position ± ``reach`` (clipped at the ends)."""
    sums = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    positions = np.arange(len(values))
    low = np.clip(positions - reach, 0, len(values))
    high = np.clip(positions + reach + 1, 0, len(values))
    return (sums[high] - sums[low]) / (high - low)


def _leaps(group: np.ndarray, pitch: np.ndarray, step: int) -> np.ndarray:
    """(M,) octaves from each note to the nearest note of group ``group + step`` (notes
    sorted by group, then pitch); ``NO_NEIGHBOUR`` where that group does not exist."""
    keys = group * 256 + pitch
    wanted = (group + step) * 256 + pitch
    at = np.searchsorted(keys, wanted)
    best = np.full(len(keys), np.inf)
    for candidate in (at - 1, at):
        inside = (candidate >= 0) & (candidate < len(keys))
        c = np.clip(candidate, 0, len(keys) - 1)
        same = inside & (group[c] == group + step)
        best = np.where(same, np.minimum(best, np.abs(pitch[c] - pitch)), best)
    return np.where(np.isfinite(best), np.minimum(best / 12, NO_NEIGHBOUR), NO_NEIGHBOUR)


def voice_features(
    attributes: np.ndarray,
    keep: np.ndarray,
    onsets: np.ndarray,
    tpq: int,
    onset_sec: np.ndarray,
    release_sec: np.ndarray,
    velocity: np.ndarray,
    head_odds: np.ndarray,
    rule_voices: np.ndarray,
) -> np.ndarray:
    """(N, FEATURES) float32 features of each note (zeros where not ``keep``).

    Args:
        attributes: (N,) ``ATTRIBUTE_DTYPE`` rows, staves chosen (``pitch``, ``staff``,
            ``duration_ticks`` as closed).
        keep: (N,) the notes written (not dropped).
        onsets: (N,) absolute onsets in ticks; ``tpq`` ticks per quarter.
        onset_sec, release_sec: (N,) performed onsets and key releases in seconds.
        velocity: (N,) MIDI velocities.
        head_odds: (N,) the hand head's second-voice log-odds (nats).
        rule_voices: (N,) the voices ``second_voices`` gives on the head's evidence.
    """
    n = len(attributes)
    out = np.zeros((n, FEATURES), np.float32)
    staff = attributes["staff"].astype(np.int64)
    pitch = attributes["pitch"].astype(np.int64)
    onsets = onsets.astype(np.int64)
    odds = np.clip(head_odds.astype(np.float64), -ODDS_CLIP, ODDS_CLIP) / 4
    above, below, sounding = held_beside(
        onset_sec, release_sec, pitch, staff, keep, HELD_MARGIN, HELD_LEAD
    )
    velocity = velocity.astype(np.float64)
    value_ticks = attributes["duration_ticks"]
    column = {name: k for k, name in enumerate(FEATURE_NAMES)}
    for number in np.unique(staff[keep]).tolist():
        index = np.flatnonzero(keep & (staff == number))
        index = index[np.lexsort((pitch[index], onsets[index]))]
        distinct, start, counts = np.unique(onsets[index], return_index=True, return_counts=True)
        group = np.repeat(np.arange(len(distinct)), counts)
        p = pitch[index]
        top, bottom = np.maximum.reduceat(p, start), np.minimum.reduceat(p, start)
        rank_up = np.arange(len(index)) - start[group]
        size = counts[group]
        struck = np.minimum.reduceat(onset_sec[index], start)
        following = np.append(struck[1:], struck[-1] + LAST_GAP_SECONDS)[group]
        gap_sec = np.clip(following - onset_sec[index], MIN_SECONDS, LAST_GAP_SECONDS)
        played = np.maximum(release_sec[index] - onset_sec[index], MIN_SECONDS)
        later = np.searchsorted(struck, release_sec[index] - RELEASE_SLACK) - (group + 1)
        nxt = np.append(distinct[1:], distinct[-1] + 4 * tpq)[group]
        prv = np.insert(distinct[:-1], 0, distinct[0] - 4 * tpq)[group]
        chord_velocity = np.add.reduceat(velocity[index], start) / counts
        chord_pitch = np.add.reduceat(p.astype(np.float64), start) / counts
        chord_odds = np.add.reduceat(odds[index], start) / counts
        chord_held = np.add.reduceat(above[index].astype(np.float64), start) / counts
        others = np.isin(onsets[index], onsets[keep & (staff != number)])
        columns = {
            "head_odds": odds[index],
            "held_above": above[index],
            "held_below": below[index],
            "chord_size": np.log2(1 + size),
            "chord_rank": np.where(size > 1, (size - 1 - rank_up) / np.maximum(size - 1, 1), 0),
            "chord_top": rank_up == size - 1,
            "chord_bottom": rank_up == 0,
            "below_top": (p - top[group]) / 12,
            "above_bottom": (p - bottom[group]) / 12,
            "against_local": (p - _window_mean(chord_pitch, LOCAL_ONSETS)[group]) / 12,
            "lower_staff": np.full(len(index), float(number >= 2)),
            "held_over_gap": np.clip(np.log2(played / gap_sec), -4, 4),
            "onsets_held": np.log2(1 + np.maximum(later, 0)),
            "value": np.clip(np.log2(np.maximum(value_ticks[index], 1) / tpq), -5, 4),
            "next_gap": np.clip(np.log2(np.maximum(nxt - onsets[index], 1) / tpq), -5, 4),
            "previous_gap": np.clip(np.log2(np.maximum(onsets[index] - prv, 1) / tpq), -5, 4),
            "louder_than_chord": (velocity[index] - chord_velocity[group]) / 20,
            "louder_than_local": (
                velocity[index] - _window_mean(chord_velocity, LOCAL_ONSETS)[group]
            )
            / 20,
            "other_staff_onset": others,
            "leap_from_previous": _leaps(group, p, -1),
            "leap_to_next": _leaps(group, p, 1),
            "sounding": np.log2(1 + sounding[index]),
            "register": p / 128,
            "on_beat": onsets[index] % tpq == 0,
            "rule_second": rule_voices[index] >= 2,
            "passage_odds": _window_mean(chord_odds, PASSAGE_ONSETS)[group],
            "passage_held": _window_mean(chord_held, PASSAGE_ONSETS)[group],
        }
        for name, values in columns.items():
            out[index, column[name]] = values
    return out


@dataclass
class TwoLayerNetwork:
    """The weights of a network of two hidden layers over F features (F → H → H → 1, GELU
    between): ``w1`` (F, H), ``b1`` (H,), ``w2`` (H, H), ``b2`` (H,), ``w3`` (H,);
    ``mean``/``scale`` (F,) the features' standardisation; float32. Shared by the voice
    chooser and the voice linker (``neural.voice_links``)."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    w3: np.ndarray
    mean: np.ndarray
    scale: np.ndarray


def save_network(network: TwoLayerNetwork, folder: str | os.PathLike, stem: str, config: dict):
    """``{stem}.safetensors`` (the network's ``TENSORS``, float32) and ``{stem}.json``
    (``config``) in ``folder``."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {name: getattr(network, name).astype(np.float32) for name in TENSORS}
    save_file(tensors, str(folder / f"{stem}.safetensors"))
    (folder / f"{stem}.json").write_text(json.dumps(config, indent=2) + "\n")


def load_network(
    folder: str | os.PathLike, stem: str, features: tuple[str, ...], what: str
) -> tuple[dict[str, np.ndarray], dict] | None:
    """(the ``TENSORS`` as float32, the config) saved by ``save_network`` in ``folder``
    (None when there is none); refuses one trained on other ``features`` (``ValueError``
    naming ``what``)."""
    folder = Path(folder)
    path = folder / f"{stem}.safetensors"
    if not path.is_file():
        return None
    from safetensors.numpy import load_file

    config = json.loads((folder / f"{stem}.json").read_text())
    if tuple(config["features"]) != features:
        raise ValueError(f"{folder}: a {what} of other features")
    tensors = load_file(str(path))
    return {name: tensors[name].astype(np.float32) for name in TENSORS}, config


@dataclass
class VoiceChooser(TwoLayerNetwork):
    """The ``TwoLayerNetwork`` over the ``FEATURES`` of ``voice_features`` that gives each
    note's log-odds of a second voice."""

    def log_odds(self, features: np.ndarray) -> np.ndarray:
        """(N,) log-odds (nats) of a second voice for ``features`` (N, FEATURES)."""
        x = (features - self.mean) / self.scale
        h = _gelu(x @ self.w1 + self.b1)
        h = _gelu(h @ self.w2 + self.b2)
        return h @ self.w3

    def save(self, folder: str | os.PathLike) -> None:
        """``voice_choice.safetensors`` and ``voice_choice.json`` in ``folder``."""
        save_network(self, folder, "voice_choice", {"features": list(FEATURE_NAMES)})


def _gelu(h: np.ndarray) -> np.ndarray:
    """GELU, tanh form (as torch's ``approximate="tanh"``)."""
    return 0.5 * h * (1.0 + np.tanh(0.7978845608 * (h + 0.044715 * h * h * h)))


def load_voice_chooser(folder: str | os.PathLike) -> VoiceChooser | None:
    """The chooser saved in ``folder`` (None when there is none); refuses one trained on
    other features."""
    loaded = load_network(folder, "voice_choice", FEATURE_NAMES, "voice chooser")
    return None if loaded is None else VoiceChooser(**loaded[0])


def chosen_voices(
    attributes: np.ndarray,
    keep: np.ndarray,
    onsets: np.ndarray,
    features: np.ndarray,
    chooser: VoiceChooser,
    bias: float = 0.0,
    continuity: float = 0.0,
) -> np.ndarray:
    """(N,) voice per note within its staff (1 or 2; 1 where not ``keep``): the chooser's
    log-odds of ``features`` (N, FEATURES) plus ``bias`` (nats), cut per decoded onset
    (``onsets`` (N,) ticks) and staff by ``neural.hands.second_voices`` (``continuity``:
    nats per semitone the boundary moves; 0 a cut per onset)."""
    from perf2score.neural.hands import second_voices

    evidence = chooser.log_odds(features).astype(np.float64) + bias
    return second_voices(evidence, onsets, attributes, keep, continuity)
