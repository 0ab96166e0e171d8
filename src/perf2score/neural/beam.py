"""Beam search over the notes' onsets, for ``DecodeConfig.beam`` > 1.

Greedy decoding (``neural.decode._decode_batch``) fixes each note's onset (bar and position)
before it has seen the notes after it. Here each window keeps ``beam`` hypotheses: at every
note each hypothesis proposes its ``beam`` best onsets (staying in the measure or opening
the next one, each position's log probability less the running tempo's penalty,
``decode.onset_scores``), the other streams are chosen greedily as before, and the window
keeps the ``beam`` continuations whose summed scores (the onset's log probability less
the tempo penalties, plus the log probabilities of the ``beam_streams`` choices) are
highest. Each kept hypothesis takes its parent's KV cache rows, tokens and running tempo.
At the window's end the best hypothesis is written. With ``beam`` 1 this is greedy
decoding, the same ids (``tests/test_beam.py``).

Shapes: B windows, K = ``beam`` hypotheses per window, R = B·K rows (window b's are rows
b·K … b·K + K - 1), T notes, V position values.
"""

from __future__ import annotations

import numpy as np

from perf2score.neural.decode import (
    SCORE_NAMES,
    Timeline,
    masked_scores,
    onset_scores,
)
from perf2score.neural.runtime import log_softmax
from perf2score.neural.settings import DecodeConfig
from perf2score.tokens.spec import BOS, FIRST_VALUE


def _repeat(array: np.ndarray | None, copies: int) -> np.ndarray | None:
    return None if array is None else np.repeat(array, copies, axis=0)


def beam_steps(
    session,
    pitch_ids: np.ndarray,
    pitch: np.ndarray,
    onset: np.ndarray,
    padding: np.ndarray,
    out: dict[str, np.ndarray],
    config: DecodeConfig,
    first_meter: dict[str, int],
    forced: dict[str, np.ndarray] | None = None,
    forced_notes: np.ndarray | None = None,
    clock: np.ndarray | None = None,
    start: np.ndarray | None = None,
    steps: np.ndarray | None = None,
) -> None:
    """Decode a batch of B windows into ``out`` ((B, T) ids per stream, in place) with a
    started runtime ``session`` (B rows, expanded here: ``NumpySession`` or the torch
    runtime's ``TorchSession``), from the inputs ``_decode_batch`` decodes greedily: the
    performance's pitch ids ``pitch_ids`` and MIDI ``pitch``, ``onset`` seconds and
    ``padding`` (B, T); a given meter's ids ``first_meter``; a ``forced`` prefix; the tempo
    ``clock`` and ``start`` tempi; the step head's log-odds ``steps`` (B, T, 2)."""
    K = config.beam
    B, T = padding.shape
    R = B * K
    session.expand(K)
    pitch_ids, pitch = _repeat(pitch_ids, K), _repeat(pitch, K)
    onset, padding = _repeat(onset, K), _repeat(padding, K)
    clock, start, steps = _repeat(clock, K), _repeat(start, K), _repeat(steps, K)
    if forced is not None and forced_notes is not None:
        forced = {k: _repeat(v, K) for k, v in forced.items()}
        forced_notes = _repeat(forced_notes, K)
    rows = np.arange(R)
    history = {k: np.zeros((R, T), dtype=np.int64) for k in SCORE_NAMES}
    previous = {k: np.full(R, BOS, dtype=np.int64) for k in SCORE_NAMES}
    state = Timeline(R, config, start)
    meter_open = np.ones(R, dtype=bool)
    total = np.full(R, -np.inf)
    total[::K] = 0.0  # at first every hypothesis of a window is the same: one lives
    for t in range(T):
        logits = session.step(previous, pitch_ids[:, t], t)
        gap = onset[:, t] - onset[:, max(t - 1, 0)]
        clock_gap = None if clock is None else clock[:, t] - clock[:, max(t - 1, 0)]
        chosen: dict[str, np.ndarray] = {}
        gain = np.zeros(R)  # log probability of the greedy streams' choices
        scores = {name: masked_scores(logits[name], name, pitch[:, t], config) for name in logits}
        for name in SCORE_NAMES:
            choice = scores[name].argmax(-1)
            if name in first_meter:
                choice = np.where(meter_open, first_meter[name], choice)
            chosen[name] = choice
            if name in config.beam_streams:
                gain += log_softmax(scores[name])[rows, choice]
        found = onset_scores(
            logits["bar"],
            scores["position"],
            chosen,
            gap,
            state,
            clock_gap,
            None if steps is None else steps[:, t],
        )
        bar_ids, position_ids, onset_gain = _onset_candidates(found, chosen["bar"], K)
        # a forced prefix, a dropped note or padding has one onset: no choice to score
        fixed = padding[:, t] | (chosen["drop"] == FIRST_VALUE + 1)
        if forced is not None and forced_notes is not None and t < forced["drop"].shape[1]:
            given = t < forced_notes
            for name in SCORE_NAMES:
                chosen[name] = np.where(given, forced[name][:, t], chosen[name])
            bar_ids[given, 0] = forced["bar"][given, t]
            position_ids[given, 0] = forced["position"][given, t]
            fixed |= given
        onset_gain[fixed, 0] = 0.0
        onset_gain[fixed, 1:] = -np.inf
        gain = np.where(np.isfinite(gain) & ~padding[:, t], gain, 0.0)
        candidates = total[:, None] + gain[:, None] + onset_gain  # (R, K)
        parent, pick = _best_continuations(candidates, B, K)
        total = candidates[parent, pick]
        chosen = {name: chosen[name][parent] for name in SCORE_NAMES}
        chosen["bar"], chosen["position"] = bar_ids[parent, pick], position_ids[parent, pick]
        dropped = chosen["drop"] == FIRST_VALUE + 1
        meter_open = meter_open[parent]
        if first_meter:
            meter_open &= dropped
        for name in SCORE_NAMES:
            if name != "drop":
                chosen[name] = np.where(dropped, FIRST_VALUE, chosen[name])
            history[name] = history[name][parent]
            history[name][:, t] = chosen[name]
            previous[name] = chosen[name]
        session.reorder(parent, t + 1)
        state.take(parent)
        state.advance(chosen, ~dropped, gap, clock_gap)
    best = np.arange(B) * K + total.reshape(B, K).argmax(1)
    for name in SCORE_NAMES:
        out[name][:] = history[name][best]


def _onset_candidates(
    found, chosen_bar: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's ``count`` best onsets: bar ids, position ids and scores (R, count), best
    first, each picked as greedy decoding picks its one (``decode._bar_and_position``: the
    best staying and the best opening position, staying on a tie) among those not yet
    taken, so the first is greedy decoding's choice. A row whose bar moves 2+ measures or
    back (not ``found.joint``) has one: the chosen bar at the likeliest position."""
    R = len(chosen_bar)
    rows = np.arange(R)
    stay, move = found.stay.copy(), found.move.copy()
    bar = np.empty((R, count), dtype=np.int64)
    position = np.empty((R, count), dtype=np.int64)
    best = np.empty((R, count), dtype=np.float32)
    for m in range(count):
        stay_index, move_index = stay.argmax(1), move.argmax(1)
        stay_total = stay[rows, stay_index] + found.bar_lp[:, FIRST_VALUE]
        move_total = move[rows, move_index] + found.bar_lp[:, FIRST_VALUE + 1]
        opens = move_total > stay_total
        bar[:, m] = np.where(opens, FIRST_VALUE + 1, FIRST_VALUE)
        position[:, m] = np.where(opens, move_index, stay_index)
        best[:, m] = np.where(opens, move_total, stay_total)
        stay[rows[~opens], stay_index[~opens]] = -np.inf
        move[rows[opens], move_index[opens]] = -np.inf
    alone = ~found.joint
    bar[alone, 0], position[alone, 0] = chosen_bar[alone], found.free[alone]
    best[alone, 0] = found.bar_lp[alone, chosen_bar[alone]]
    best[alone, 1:] = -np.inf
    return bar, position, best


def _best_continuations(candidates: np.ndarray, windows: int, count: int):
    """(parent rows (R,), candidate index (R,)): per window the ``count`` best of its
    hypotheses' candidates (``candidates`` (R, count) summed scores), best first (the
    earlier hypothesis and candidate first among equal scores)."""
    per_window = candidates.reshape(windows, count * count)
    order = np.argsort(-per_window, axis=1, kind="stable")[:, :count]  # (B, K)
    parent = np.arange(windows)[:, None] * count + order // count
    return parent.reshape(-1), (order % count).reshape(-1)
