"""Key signatures per section: a piece's music settled in a remote key gets its own.

Scores change their key signature where the music stays long in a key far from the home
one (a trio in C♯ minor inside an A♭ major impromptu, a coda in the tonic major), and keep
it through passing modulations to the dominant or the relative key. Here each measure's
notes give every key a log-likelihood (Temperley's presence model with the Kostka–Payne
profiles: each pitch class of the 12 sounds in a measure with the key's probability for
it), a signature collects the keys of its own and of its neighbours on the line of fifths
(``NEIGHBOUR_REACH`` fifths away, ``NEIGHBOUR_COST`` nats a fifth: C major's signature
stands for a passage in G or F), and a Viterbi pass over the measures changes the
signature only where the new one gains more than ``KEY_CHANGE_COST`` nats. The piece's
home key (found over the whole piece, ``spelling.estimate_key``) is favoured in its first
and last measures (``HOME_START_BONUS``, ``HOME_END_BONUS`` nats), so that an opening in
a neighbouring key (a minor piece opening on its relative major's chord) keeps the home
signature. The settings were chosen on the training split's scores
(``benchmarks/spelling.py --sections``).
"""

from __future__ import annotations

import numpy as np

# Kostka–Payne key profiles (Temperley 2007): the probability that each pitch class,
# tonic first, sounds in a segment of music in a major / minor key
KP_MAJOR = np.array(
    [0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400]
)
KP_MINOR = np.array(
    [0.712, 0.048, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330]
)
# signature (fifths) of each tonic pitch class C=0 … B=11
MAJOR_FIFTHS = (0, -5, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5)
MINOR_FIFTHS = (-3, 4, -1, 6, 1, -4, 3, -2, 5, 0, -5, 2)
MAJOR, MINOR = 0, 1

# the 24 keys: index mode * 12 + tonic; their profiles (24, 12) and signatures (24,)
_PROFILES = np.stack([np.roll(p, t) for p in (KP_MAJOR, KP_MINOR) for t in range(12)])
KEY_FIFTHS = np.array(MAJOR_FIFTHS + MINOR_FIFTHS)
_LOG_YES, _LOG_NO = np.log(_PROFILES), np.log1p(-_PROFILES)
# per signature (fifths mod 12): the index of its major key and of its relative minor
_MAJOR_KEY = np.argsort(np.mod(MAJOR_FIFTHS, 12))
_MINOR_KEY = 12 + np.argsort(np.mod(MINOR_FIFTHS, 12))

# chosen on the training split's scores (182 pieces): see ``benchmarks/spelling.py``
KEY_CHANGE_COST = 60.0  # nats to change the signature between two measures
NEIGHBOUR_REACH = 1  # keys this many fifths from a signature count for it
NEIGHBOUR_COST = 1.0  # nats per fifth a neighbouring key pays
HOME_START_BONUS = 40.0  # nats for the home signature in the first measure
HOME_END_BONUS = 30.0  # and in the last


def measure_key_evidence(pitches: np.ndarray, measures: np.ndarray, count: int) -> np.ndarray:
    """(``count``, 24) log-likelihood of each measure's pitch classes under each key (index
    mode * 12 + tonic): the presence model over the pitch classes sounding in it (0 for
    every key in a measure without notes). ``measures`` (N,) is each note's measure index
    (0 … ``count`` - 1), ``pitches`` (N,) its MIDI pitch."""
    present = np.zeros((count, 12), dtype=bool)
    present[np.asarray(measures, dtype=np.int64), np.mod(np.asarray(pitches, np.int64), 12)] = True
    evidence = present @ _LOG_YES.T + (~present) @ _LOG_NO.T
    evidence[~present.any(1)] = 0.0
    return evidence


def signature_evidence(evidence: np.ndarray) -> np.ndarray:
    """(M, 12) per measure and signature (index: fifths mod 12) the log of the summed
    likelihoods of the keys within ``NEIGHBOUR_REACH`` fifths of it, each paying
    ``NEIGHBOUR_COST`` nats a fifth away; ``evidence`` (M, 24) as ``measure_key_evidence``."""
    distance = np.mod(KEY_FIFTHS[None, :] - np.arange(12)[:, None] + 6, 12) - 6  # (12, 24)
    weight = np.where(
        np.abs(distance) <= NEIGHBOUR_REACH, -NEIGHBOUR_COST * np.abs(distance), -np.inf
    )
    terms = evidence[:, None, :] + weight[None, :, :]  # (M, 12, 24)
    top = terms.max(2, keepdims=True)
    return (top + np.log(np.exp(terms - top).sum(2, keepdims=True)))[:, :, 0]


def signature_path(evidence: np.ndarray, change_cost: float = KEY_CHANGE_COST) -> np.ndarray:
    """(M,) the signature index (fifths mod 12) of each measure: the Viterbi path through
    ``evidence`` (M, 12) (``signature_evidence``) that pays ``change_cost`` nats at each
    change of signature."""
    count = len(evidence)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    score = evidence[0].copy()
    back = np.zeros((count, 12), dtype=np.int64)
    for m in range(1, count):
        best = int(score.argmax())
        stay = score >= score[best] - change_cost  # staying beats coming from the best
        back[m] = np.where(stay, np.arange(12), best)
        score = np.where(stay, score, score[best] - change_cost) + evidence[m]
    path = np.zeros(count, dtype=np.int64)
    path[-1] = int(score.argmax())
    for m in range(count - 1, 0, -1):
        path[m - 1] = back[m, path[m]]
    return path


def key_sections(
    pitches: np.ndarray,
    measures: np.ndarray,
    home: int | None = None,
    change_cost: float = KEY_CHANGE_COST,
) -> tuple[np.ndarray, np.ndarray]:
    """(fifths (N,) in -5 … 6, mode (N,): ``MAJOR`` / ``MINOR``) of each note's section: the
    signature ``signature_path`` gives its measure (``measures`` (N,) any integers, in
    order of the music), the ``home`` signature (fifths; None: none) favoured in the first
    and last measures, and of the signature's major key and its relative minor the one
    likelier over the section's measures. F♯ / G♭ come out as six sharps
    (``spelling.enharmonic_choice`` decides)."""
    pitches = np.asarray(pitches, dtype=np.int64)
    measures = np.asarray(measures, dtype=np.int64)
    if len(pitches) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    labels, index = np.unique(measures, return_inverse=True)
    evidence = measure_key_evidence(pitches, index, len(labels))
    signatures = signature_evidence(evidence)
    if home is not None:
        signatures[0, home % 12] += HOME_START_BONUS
        signatures[-1, home % 12] += HOME_END_BONUS
    path = signature_path(signatures, change_cost)
    mode_of = np.zeros(len(labels), dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, path[1:] != path[:-1]])
    for start, end in zip(starts, np.r_[starts[1:], len(path)], strict=True):
        signature = int(path[start])
        summed = evidence[start:end].sum(0)
        minor = summed[_MINOR_KEY[signature]] > summed[_MAJOR_KEY[signature]]
        mode_of[start:end] = MINOR if minor else MAJOR
    fifths = np.mod(path + 5, 12) - 5  # -5 … 6
    return fifths[index], mode_of[index]
