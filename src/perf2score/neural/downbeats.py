"""Downbeats tracked in performance time from the meter head's per-note evidence.

The piece barring (``perf2score.neural.meter``) places bar lines on the decoded onsets, in
score time, where the decoder's slips (a 16th too many here, a beat too few there) force a
change of bar phase at every slip. Played time has no slips: here a Viterbi pass over
50 frames a second follows a tempo and a position in the bar (a dynamic Bayesian network in
the manner of Böck, Krebs & Widmer's bar tracker), observing the performed onsets through
the meter head's downbeat and beat probabilities. Its downbeats, sharpened into per-note
evidence (``tracked_odds``), then steer the phase tracking of the barring.

States: tempo ``k`` (a beat period of ``P_k`` frames, 30-240 beats a minute), beat ``b`` of
the bar and frame ``j`` of the beat; the position advances one frame per frame, and at each
beat's end the tempo may move to a neighbour (``tempo_change``). Observations: a frame that
holds an onset (within ±1 frame) scores the head's posterior over (downbeat, other beat,
off the beat), divided by its mean over the piece (a likelihood up to a constant), times the
chance of an onset on that kind of frame; a frame without one scores the chance of no onset.
Shapes: N notes, F frames, S states.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAMES_PER_SECOND = 50
MIN_BPM, MAX_BPM, TEMPI = 30.0, 240.0, 40
ONSET_ON_DOWNBEAT, ONSET_ON_BEAT = 0.85, 0.7  # chance that a (down)beat frame holds an onset


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, elementwise."""
    return 1.0 / (1.0 + np.exp(-x))


def frame_evidence(
    seconds: np.ndarray, odds: np.ndarray, smear: int = 1, fps: int = FRAMES_PER_SECOND
) -> np.ndarray:
    """(F, 3) log-likelihoods of (downbeat, other beat, off the beat) per frame (``fps``
    frames a second), relative to off the beat, from onsets ``seconds`` (N,) and the head's
    log-odds ``odds`` (N, 2) (downbeat, beat)."""
    frames = int(np.max(seconds) * fps) + 2
    frame = np.round(np.asarray(seconds) * fps).astype(np.int64)
    down = sigmoid(odds[:, 0].astype(np.float64))
    beat = np.maximum(sigmoid(odds[:, 1].astype(np.float64)), down)
    posterior = np.stack([down, beat - down, 1.0 - beat], 1).clip(1e-3, 1.0)  # (N, 3)
    likelihood = np.log(posterior / posterior.mean(0))
    best = np.full((frames, 3), -np.inf)
    for shift in range(-smear, smear + 1):
        np.maximum.at(best, np.clip(frame + shift, 0, frames - 1), likelihood)
    onset = np.isfinite(best[:, 0])
    chance = np.array([ONSET_ON_DOWNBEAT, ONSET_ON_BEAT, np.clip(onset.mean(), 1e-3, 0.999)])
    scores = np.where(
        onset[:, None], np.log(chance) + np.where(onset[:, None], best, 0.0), np.log1p(-chance)
    )
    return scores - scores[:, 2:3]


@dataclass(frozen=True)
class Tracked:
    """The bar tracker's best path: ``downbeats`` and ``beats`` (downbeats included) in
    seconds, sorted, and ``log_likelihood``, the path's score in nats (the evidence of its
    frames relative to "off the beat", plus its tempo changes): comparable between runs
    over the same onsets with different beats per bar."""

    downbeats: np.ndarray
    beats: np.ndarray
    log_likelihood: float

    @property
    def beats_per_minute(self) -> float:
        """The median tracked beat rate (0.0 with fewer than two beats)."""
        if len(self.beats) < 2:
            return 0.0
        return 60.0 / float(np.median(np.diff(self.beats)))


def track_downbeats(
    seconds: np.ndarray,
    odds: np.ndarray,
    beats_per_bar: int,
    tempo_change: float = 0.2,
) -> tuple[np.ndarray, np.ndarray]:
    """(downbeats, beats) in seconds, tracked over the onsets ``seconds`` (N,) with the meter
    head's log-odds ``odds`` (N, 2), in bars of ``beats_per_bar`` beats; ``tempo_change``:
    the chance of moving to a neighbouring tempo at a beat's end (``track_bars``)."""
    tracked = track_bars(seconds, odds, beats_per_bar, tempo_change)
    return tracked.downbeats, tracked.beats


def track_bars(
    seconds: np.ndarray,
    odds: np.ndarray,
    beats_per_bar: int,
    tempo_change: float = 0.2,
) -> Tracked:
    """The best path of bars of ``beats_per_bar`` beats over the onsets ``seconds`` (N,),
    observed through the meter head's log-odds ``odds`` (N, 2) (downbeat, beat);
    ``tempo_change``: the chance of moving to a neighbouring tempo at a beat's end."""
    return track_bars_each(seconds, odds, (beats_per_bar,), tempo_change)[beats_per_bar]


@dataclass(frozen=True)
class _Layout:
    """The states of bars of one length (all tempi), numbered from ``offset``: each beat's
    first state (B,) with its three sources (B, 3) and their log costs (B, 3)."""

    size: int
    firsts: np.ndarray
    sources: np.ndarray
    costs: np.ndarray
    downbeats: np.ndarray
    beats: np.ndarray


def _layout(beats_per_bar: int, tempo_change: float, offset: int, fps: int) -> _Layout:
    periods = np.unique(np.round(fps * 60 / np.geomspace(MIN_BPM, MAX_BPM, TEMPI)).astype(np.int64))
    K = len(periods)
    bar_start = offset + np.concatenate([[0], np.cumsum(periods * beats_per_bar)])  # (K + 1,)
    # each beat's first state, per tempo and beat: (K, beats_per_bar)
    firsts = bar_start[:-1, None] + np.arange(beats_per_bar)[None, :] * periods[:, None]
    ends = firsts + periods[:, None] - 1
    # a beat's first state is entered from the end of the bar's previous beat, at the same
    # tempo or a neighbouring one (sources (K, beats, 3), their log costs (3,))
    previous = (np.arange(beats_per_bar) - 1) % beats_per_bar
    sources = np.stack(
        [ends[np.clip(np.arange(K) + dk, 0, K - 1)][:, previous] for dk in (0, -1, 1)], -1
    )
    change = np.log(tempo_change)
    costs = np.stack(
        [
            np.zeros(K),
            np.where(np.arange(K) > 0, change, -np.inf),
            np.where(np.arange(K) < K - 1, change, -np.inf),
        ],
        -1,
    )[:, None, :]  # (K, 1, 3)
    return _Layout(
        int(bar_start[-1] - offset),
        firsts.ravel(),
        sources.reshape(-1, 3),
        np.broadcast_to(costs, sources.shape).reshape(-1, 3),
        firsts[:, 0],
        firsts[:, 1:].ravel(),
    )


def track_bars_each(
    seconds: np.ndarray,
    odds: np.ndarray,
    options: tuple[int, ...],
    tempo_change: float = 0.2,
    fps: int = FRAMES_PER_SECOND,
) -> dict[int, Tracked]:
    """``track_bars`` for each number of beats per bar in ``options``, in one pass over the
    frames (the bar lengths' state spaces side by side: one loop instead of one each), at
    ``fps`` frames a second."""
    seconds = np.asarray(seconds, float)
    if len(seconds) < 2 or min(options) < 1 or np.ptp(seconds) * fps < 2:  # no span to track
        return {beats: Tracked(np.zeros(0), np.zeros(0), 0.0) for beats in options}
    evidence = frame_evidence(seconds, odds, fps=fps)  # (F, 3)
    layouts, offset = [], 0
    for beats in options:
        layouts.append(_layout(beats, tempo_change, offset, fps))
        offset += layouts[-1].size
    S = offset
    first_flat = np.concatenate([layout.firsts for layout in layouts])
    source_flat = np.concatenate([layout.sources for layout in layouts])
    cost_flat = np.concatenate([layout.costs for layout in layouts])
    downbeat_states = np.concatenate([layout.downbeats for layout in layouts])
    beat_states = np.concatenate([layout.beats for layout in layouts])
    rows = np.arange(len(first_flat))
    frames = len(evidence)
    # every beat-first state observes its frame's downbeat or (other) beat evidence
    first_kind = np.ones(len(first_flat), dtype=np.int64)
    first_kind[np.isin(first_flat, downbeat_states)] = 0
    chosen = np.zeros((frames, len(first_flat)), dtype=np.int8)  # which source entered
    # Scores live in a buffer that slides one place a frame: state s before frame f is
    # buffer[s + frames - f], so moving every state on by one (within a beat) costs nothing
    # and only the beat-first states are written.
    buffer = np.zeros(S + frames)
    for f in range(frames):
        here = frames - f  # state 0's place before this frame; after it, one place lower
        entering = buffer[source_flat + here] + cost_flat  # (beat-first states, 3)
        pick = entering.argmax(1)
        chosen[f] = pick
        buffer[first_flat + (here - 1)] = entering[rows, pick] + evidence[f, first_kind]
    score = buffer[:S]  # the states after the last frame
    position = np.full(S, -1, dtype=np.int64)  # state -> index among the beat-first states
    position[first_flat] = rows
    kind = np.zeros(S, dtype=np.int8)  # 2 downbeat, 1 beat, 0 off
    kind[beat_states], kind[downbeat_states] = 1, 2
    # each state's beat-first state: within a beat the path steps back one state a frame
    beat_first = np.maximum.accumulate(np.where(position >= 0, np.arange(S), 0))
    out, low = {}, 0
    for beats, layout in zip(options, layouts, strict=True):
        state = low + int(score[low : low + layout.size].argmax())
        log_likelihood = float(score[state])
        marks: list[tuple[int, int]] = []  # (frame, kind) of the path's beat-first states
        f = frames - 1
        while f >= 0:
            first = int(beat_first[state])
            f -= state - first  # the frame at which the path entered this beat
            if f < 0:
                break
            marks.append((f, int(kind[first])))
            index = position[first]
            state = int(source_flat[index, chosen[f, index]])
            f -= 1
        at, what = np.array(marks[::-1], dtype=np.int64).reshape(-1, 2).T
        out[beats] = Tracked(at[what == 2] / fps, at[what >= 1] / fps, log_likelihood)
        low += layout.size
    return out


def tracked_odds(
    seconds: np.ndarray,
    odds: np.ndarray,
    beats_per_bar: int,
    strength: float = 4.0,
    window: float = 0.05,
    tempo_change: float = 0.2,
) -> np.ndarray:
    """The head's log-odds (N, 2) moved by ``strength`` towards yes for notes played within
    ``window`` seconds of a tracked downbeat (column 0) or beat (column 1), and towards no
    for the others (``track_downbeats``, then ``nudged_odds``)."""
    downbeats, beats = track_downbeats(seconds, odds, beats_per_bar, tempo_change)
    return nudged_odds(seconds, odds, downbeats, beats, strength, window)


def nudged_odds(
    seconds: np.ndarray,
    odds: np.ndarray,
    downbeats: np.ndarray,
    beats: np.ndarray,
    strength: float = 4.0,
    window: float = 0.05,
) -> np.ndarray:
    """``odds`` (N, 2) of notes at ``seconds`` (N,) moved by ``strength`` towards yes
    within ``window`` seconds of one of ``downbeats`` (column 0) / ``beats`` (column 1)
    (seconds, sorted) and towards no elsewhere."""
    out = np.array(odds, dtype=np.float32, copy=True)
    for column, marks in ((0, downbeats), (1, beats)):
        if not len(marks):
            continue
        at = np.clip(np.searchsorted(marks, seconds), 1, len(marks) - 1)
        near = np.minimum(np.abs(seconds - marks[at - 1]), np.abs(seconds - marks[at]))
        if len(marks) == 1:
            near = np.abs(seconds - marks[0])
        out[:, column] += np.where(near <= window, strength, -strength)
    return out
