"""Decoding: a performance → per-note score attributes with an aligned model.

Every setting is a field of ``DecodeConfig`` (``perf2score.neural.settings``). The performance is
cut into windows of ``window`` notes overlapping by ``overlap``; all windows are encoded at
once and decoded together, note by note, with the score LM's KV cache (greedy), in numpy:
the model is a *runtime* (``perf2score.neural.runtime.NumpyAligned``, which converts files
without torch, or a torch ``AlignedModel``, wrapped by
``perf2score.neural.torch_runtime``). Constraints at every step: no special ids; the
position lies inside the predicted measure; within a measure, onsets do not go backwards
(unless the note is played within ``chord_seconds`` of the previous one, as in a rolled
chord) and notes played more than ``apart_seconds`` apart do not share an onset (when the
measure has no room left, the note opens the next measure); the spelling (``alter``) fits
the pitch. Windows are stitched in the middle of their overlaps, in time (see ``_stitch``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from perf2score.classical.rhythm import beat_clock, grid_residual
from perf2score.constants import GRID_PER_QUARTER
from perf2score.errors import Perf2ScoreError
from perf2score.midi.reading import Performance
from perf2score.neural.runtime import NumpyAligned, NumpyMeter, log_softmax
from perf2score.neural.settings import DecodeConfig
from perf2score.neural.window_tempo import (
    can_scale,
    interval_tempi,
    local_tempo,
    scale_steps,
    scaled,
)
from perf2score.score.barring import assign_measures
from perf2score.tokens.performance import encode_performance
from perf2score.tokens.score import BACKWARDS, NATURAL_STEPS, decode_score, meter_ids
from perf2score.tokens.spec import BOS, FIRST_VALUE, PAD, SCORE_STREAMS, STREAMS

if TYPE_CHECKING:  # torch is imported only for a torch model
    from perf2score.models.adapter import AlignedModel
    from perf2score.models.meter_head import MeterModel

SCORE_NAMES = tuple(s.name for s in SCORE_STREAMS)
DEFAULT = DecodeConfig()


def windows(n: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) of the windows of ``window`` notes overlapping by ``overlap`` over n."""
    step = max(window - overlap, 1)
    starts = list(range(0, max(n - overlap, 1), step))
    return [(s, min(s + window, n)) for s in starts]


def kept_from(start: int, overlap: int) -> int:
    """The first note a window starting at ``start`` contributes: windows after the first
    hand over in the middle of their overlap."""
    return start if start == 0 else start + overlap // 2


def _alter_table() -> np.ndarray:
    """(12, 5) True where alter -2..+2 spells pitch class 0..11 with a natural step."""
    natural = (np.arange(12)[:, None] - np.arange(-2, 3)[None, :]) % 12  # (12, 5)
    return np.isin(natural, list(NATURAL_STEPS))


ALTER_ALLOWED = _alter_table()


def decode_windows(
    model: NumpyAligned | AlignedModel, performance: Performance, config: DecodeConfig = DEFAULT
) -> tuple[np.ndarray, np.ndarray]:
    """(score attributes (N,) ``ATTRIBUTE_DTYPE`` at ``GRID_PER_QUARTER`` ticks per
    quarter, drop (N,) bool) for the performance's notes in their stored order."""
    return decode_many(model, [performance], config)[0]


# windows decoded side by side at most: 128 x 256 notes keeps the key/value cache near
# 0.6 GB; a 100,000-note file (521 windows) in one batch peaked at 2.6 GB
MAX_BATCH_WINDOWS = 128
MIN_SPLIT_WINDOWS = 4  # windows per process below which one process decodes them all
POSITION_VALUES = np.arange(STREAMS["position"].size) - FIRST_VALUE  # (V,) grid units


class Timeline:
    """Per-window decoding state in the window's own score time (grid units): the current
    measure's start and length, the last kept note's position and onset, the last positive
    onset step (0: none yet), and a running tempo (log grid units per second) from the
    notes decoded so far."""

    def __init__(self, rows: int, config: DecodeConfig = DEFAULT, start: np.ndarray | None = None):
        """``start`` (rows,): each window's running tempo before its first step (log grid
        units per second, or per beat on the beat clock; NaN or None: unknown)."""
        self.config = config
        self.measure_start = np.zeros(rows, dtype=np.int64)
        self.measure_length = np.zeros(rows, dtype=np.int64)
        self.last_position = np.full(rows, -1, dtype=np.int64)
        self.last_onset = np.full(rows, -1, dtype=np.int64)
        self.last_step = np.zeros(rows, dtype=np.int64)
        self.log_tempo = np.full(rows, np.nan, dtype=np.float64)
        if start is not None:
            self.log_tempo[:] = start

    def take(self, rows: np.ndarray) -> None:
        """Row r's state becomes row ``rows[r]``'s (a beam's kept hypotheses)."""
        for name in ("measure_start", "measure_length", "last_position", "last_onset"):
            setattr(self, name, getattr(self, name)[rows])
        self.last_step, self.log_tempo = self.last_step[rows], self.log_tempo[rows]

    def advance(
        self,
        chosen: dict[str, np.ndarray],
        kept: np.ndarray,
        gap: np.ndarray,
        clock_gap: np.ndarray | None = None,
    ):
        """Take in the notes just decoded (token ids (B,)); ``gap`` (B,) in seconds;
        ``clock_gap`` (B,) the same step on the tempo's clock (None: the seconds)."""
        clock_gap = gap if clock_gap is None else clock_gap
        advance = chosen["bar"] - FIRST_VALUE
        length = chosen["measure_length"] - FIRST_VALUE
        position = chosen["position"] - FIRST_VALUE
        moved = kept & (advance >= 1) & (advance < BACKWARDS)
        jump = self.measure_length + np.maximum(advance - 1, 0) * length
        self.measure_start = np.where(moved, self.measure_start + jump, self.measure_start)
        backwards = kept & (advance == BACKWARDS)  # a repeat: the tempo carries on, time restarts
        self.measure_length = np.where(kept, length, self.measure_length)
        onset = self.measure_start + position
        ioi = (onset - self.last_onset).astype(np.float64)
        apart = gap > self.config.apart_seconds
        seen = kept & ~backwards & (self.last_onset >= 0) & apart & (ioi > 0) & (clock_gap > 0)
        observed = np.log(np.maximum(ioi, 1) / np.maximum(clock_gap, 1e-3))
        new = self.config.tempo_blend  # the new IOI's weight
        blended = np.where(
            np.isnan(self.log_tempo), observed, (1 - new) * self.log_tempo + new * observed
        )
        self.log_tempo = np.where(seen, blended, self.log_tempo)
        stepped = kept & ~backwards & (self.last_onset >= 0) & (ioi > 0)
        self.last_step = np.where(stepped, ioi, self.last_step).astype(np.int64)
        self.last_step = np.where(backwards, 0, self.last_step)
        self.last_onset = np.where(kept & ~backwards, onset, self.last_onset)
        self.last_onset = np.where(backwards, -1, self.last_onset)
        self.last_position = np.where(moved | backwards, -1, self.last_position)
        self.last_position = np.where(kept, position, self.last_position)


def _bar_and_position(
    bar_logits: np.ndarray,
    position_scores: np.ndarray,
    chosen: dict[str, np.ndarray],
    gap: np.ndarray,
    state: Timeline,
    clock_gap: np.ndarray | None = None,
    steps: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(bar, position) token ids (B,): staying in the measure or opening the next one,
    whichever scores best (``onset_scores``), each with its best position. Bar advances of
    2+ measures or backwards are kept as chosen, with the likeliest position inside the
    measure."""
    found = onset_scores(bar_logits, position_scores, chosen, gap, state, clock_gap, steps)
    rows = np.arange(len(gap))
    stay_index, move_index = found.stay.argmax(1), found.move.argmax(1)
    stay_total = found.stay[rows, stay_index] + found.bar_lp[:, FIRST_VALUE]
    move_total = found.move[rows, move_index] + found.bar_lp[:, FIRST_VALUE + 1]
    opens = move_total > stay_total
    bar = np.where(found.joint, np.where(opens, FIRST_VALUE + 1, FIRST_VALUE), chosen["bar"])
    position = np.where(opens, move_index, stay_index)
    return bar, np.where(found.joint, position, found.free)


@dataclass
class OnsetScores:
    """The scores of a note's onset choices (B rows, V position values): ``stay`` and
    ``move`` (B, V), each position's log probability minus its tempo penalty (-inf where not
    allowed) when staying in the measure or opening the next one; ``bar_lp`` (B, bar
    vocabulary) the bar stream's log probabilities; ``joint`` (B,) whether the bar is
    chosen with the position (an advance of 0 or 1 measure); ``free`` (B,) the likeliest
    position inside the measure (for the other rows)."""

    stay: np.ndarray
    move: np.ndarray
    bar_lp: np.ndarray
    joint: np.ndarray
    free: np.ndarray


def onset_scores(
    bar_logits: np.ndarray,
    position_scores: np.ndarray,
    chosen: dict[str, np.ndarray],
    gap: np.ndarray,
    state: Timeline,
    clock_gap: np.ndarray | None = None,
    steps: np.ndarray | None = None,
) -> OnsetScores:
    """The scores of staying in the measure or opening the next one at each position: a
    position's score is its log probability minus a penalty for a score-time step out of
    line with the running tempo, plus (``steps``: the step head's log-odds (B, 2) for these
    notes) ``step_weight`` × the log probability the head gives the step's relation to the
    step before (``step_terms``).

    Staying needs a position inside the measure, not before the previous note unless the
    two were played within ``chord_seconds``, and after it when played more than
    ``apart_seconds`` apart (``state.config``)."""
    config = state.config
    values = POSITION_VALUES[None, :]  # (1, V)
    length = chosen["measure_length"] - FIRST_VALUE  # (B,)
    inside = values < np.maximum(length, 1)[:, None]  # (B, V)
    last = state.last_position[:, None]
    forward = np.where((gap > config.apart_seconds)[:, None], values > last, values >= last)
    need = ((gap >= config.chord_seconds) & (state.last_position >= 0))[:, None]
    stay_ok = inside & (forward | ~need)
    position_lp = log_softmax(position_scores)
    bar_logits = bar_logits.copy()
    bar_logits[:, :FIRST_VALUE] = -np.inf
    bar_lp = log_softmax(bar_logits)  # (B, 5 + FIRST_VALUE)

    if clock_gap is None:  # seconds: notes played together (a gap of 0) are held to one
        clock_gap, timed = gap, gap >= 0  # onset too; only padding (a negative gap) is out
    else:  # the beat clock: no step on it (the tracker put both notes together) says nothing
        timed = clock_gap > 0
    known = (~np.isnan(state.log_tempo) & (state.last_onset >= 0) & timed)[:, None]
    expected = (clock_gap * np.exp(np.nan_to_num(state.log_tempo)))[:, None]  # (B, 1) grid

    def penalised(start: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """(B, V) scores of the ``ok`` positions (-inf elsewhere) from ``start`` (B,)."""
        ioi = np.maximum(start[:, None] + values - state.last_onset[:, None], 0).astype(float)
        slack = config.tempo_slack_grid
        with np.errstate(invalid="ignore"):  # padded notes (a negative gap): never chosen
            off = np.abs(np.log((ioi + slack) / (expected + slack)))
        off = np.maximum(off - config.tempo_tolerance, 0.0)
        penalty = np.where(known, config.tempo_weight * off, 0.0).astype(np.float32)
        if steps is not None and config.step_weight > 0:
            terms = step_terms(ioi, state.last_step, state.last_onset >= 0, steps)
            penalty = penalty - (config.step_weight * terms).astype(np.float32)
        return np.where(ok, position_lp - penalty, -np.inf)

    return OnsetScores(
        stay=penalised(state.measure_start, stay_ok),
        move=penalised(state.measure_start + state.measure_length, inside),
        bar_lp=bar_lp,
        joint=chosen["bar"] <= FIRST_VALUE + 1,
        free=np.where(inside, position_scores, -np.inf).argmax(1),
    )


def step_terms(
    ioi: np.ndarray, last_step: np.ndarray, known: np.ndarray, steps: np.ndarray
) -> np.ndarray:
    """(B, V) log probability, relative to the likeliest answer (so ≤ 0), that the step
    head (log-odds ``steps`` (B, 2): same step, longer step) gives the relation of each
    candidate onset step ``ioi`` (B, V) (grid units) to the note's previous step
    ``last_step`` (B,) (same, longer or shorter); 0 where there is no step to compare (a
    chord note, no previous step, ``known`` (B,) false: no note kept yet)."""
    same, longer = steps[:, 0].astype(np.float64), steps[:, 1].astype(np.float64)
    yes_same, no_same = -np.logaddexp(0.0, -same), -np.logaddexp(0.0, same)  # log σ(±x)
    yes_longer, no_longer = -np.logaddexp(0.0, -longer), -np.logaddexp(0.0, longer)
    answers = np.stack([yes_same, no_same + yes_longer, no_same + no_longer], 1)
    # (B, 3): same, longer, shorter
    answers -= answers.max(1, keepdims=True)
    previous = last_step[:, None]
    kind = np.where(ioi == previous, 0, np.where(ioi > previous, 1, 2))  # (B, V)
    terms = np.take_along_axis(answers, kind, 1)
    applies = (ioi > 0) & (previous > 0) & known[:, None]
    return np.where(applies, terms, 0.0)


def _decode_batch(
    runtime: Any,
    perf: dict[str, np.ndarray],
    padding: np.ndarray,
    pitch: np.ndarray,
    onset: np.ndarray,
    out: dict[str, np.ndarray],
    config: DecodeConfig,
    odds: np.ndarray | None = None,
    forced: dict[str, np.ndarray] | None = None,
    forced_notes: np.ndarray | None = None,
    clock: np.ndarray | None = None,
    start: np.ndarray | None = None,
    background: bool = False,
) -> None:
    """Decode a batch of windows note by note into ``out`` ((B, T) each, in place) with a
    ``runtime`` (``as_runtime``): ``perf`` the performance tokens, ``padding``/``pitch``/
    ``onset`` (B, T); when ``odds`` (B, T, Q) is given, the runtime's heads fill it.
    ``forced`` (token ids (B, P) per stream) are taken instead of the model's choice for
    the first ``forced_notes`` (B,) notes of each window (a prefix the window continues).
    A time signature the user gave (``config.force_given_meter``) is forced on each
    window's first kept note: its time signature and measure length tokens. ``clock``
    (B, T), when given, is the running tempo's time (``DecodeConfig.tempo_clock``: tracked
    beats) instead of ``onset`` seconds; ``start`` (B,), each window's running tempo
    before its first step (``start_tempi``). ``background``: the heads' pass runs in a
    thread beside the steps (a numpy runtime; ``NumpySession``), for a free second core."""
    B, T = padding.shape
    given = config.meter_given() if config.force_given_meter else None
    first_meter = (
        dict(zip(("time_signature", "measure_length"), meter_ids(*given), strict=True))
        if given
        else {}
    )
    prior = (config.prior_weight, config.prior_streams)
    session = runtime.session(perf, padding, odds is not None, prior, background)
    steps = session.steps if config.step_weight > 0 else None  # (B, T, 2) or None
    if config.beam > 1:
        from perf2score.neural.beam import beam_steps

        beam_steps(
            session,
            perf["pitch"],
            pitch,
            onset,
            padding,
            out,
            config,
            first_meter,
            forced,
            forced_notes,
            clock,
            start,
            steps,
        )
        if odds is not None and session.odds is not None:
            odds[:] = session.odds
        return
    previous = {k: np.full(B, BOS, dtype=np.int64) for k in SCORE_NAMES}
    state = Timeline(B, config, start)
    meter_open = np.ones(B, dtype=bool)  # no kept note yet (the given meter is still to set)
    for t in range(T):
        logits = session.step(previous, perf["pitch"][:, t], t)  # (B, V) per stream
        gap = onset[:, t] - onset[:, max(t - 1, 0)]  # (B,) seconds since the previous note
        clock_gap = None if clock is None else clock[:, t] - clock[:, max(t - 1, 0)]
        chosen = {}
        for name in SCORE_NAMES:
            scores = masked_scores(logits[name], name, pitch[:, t], config)  # (B, V)
            if name == "position":
                chosen["bar"], chosen[name] = _bar_and_position(
                    logits["bar"],
                    scores,
                    chosen,
                    gap,
                    state,
                    clock_gap,
                    None if steps is None else steps[:, t],
                )
                continue
            chosen[name] = scores.argmax(-1)  # (B,)
            if name in first_meter:
                chosen[name] = np.where(meter_open, first_meter[name], chosen[name])
        if forced is not None and forced_notes is not None and t < forced["drop"].shape[1]:
            given = t < forced_notes  # (B,)
            for name in SCORE_NAMES:
                chosen[name] = np.where(given, forced[name][:, t], chosen[name])
        dropped = chosen["drop"] == FIRST_VALUE + 1
        if first_meter:
            meter_open &= dropped
        for name in SCORE_NAMES:
            if name != "drop":
                chosen[name] = np.where(dropped, FIRST_VALUE, chosen[name])
            out[name][:, t] = chosen[name]
            previous[name] = chosen[name]
        state.advance(chosen, ~dropped, gap, clock_gap)
    if odds is not None and session.odds is not None:
        odds[:] = session.odds


def masked_scores(
    logits: np.ndarray, name: str, pitch: np.ndarray, config: DecodeConfig
) -> np.ndarray:
    """(B, V) float32 copy of stream ``name``'s logits with what it may not choose at -inf:
    the special ids, and for ``alter`` the accidentals no spelling of the notes' ``pitch``
    (B,) takes; for ``drop``, ``config.drop_bias`` added to leaving the note out."""
    scores = np.array(logits, dtype=np.float32)  # a copy
    scores[:, :FIRST_VALUE] = -np.inf
    if name == "drop" and config.drop_bias:
        scores[:, FIRST_VALUE + 1] += config.drop_bias
    if name == "alter":
        allowed = ALTER_ALLOWED[pitch % 12]  # (B, 5)
        scores[:, FIRST_VALUE:] = np.where(allowed, scores[:, FIRST_VALUE:], -np.inf)
    return scores


def shares_performance_lm(
    model: NumpyAligned | AlignedModel, meter: NumpyMeter | MeterModel | None
) -> bool:
    """Whether ``meter`` reads the very performance LM of ``model`` (then decoding computes
    its evidence from the encoder pass it makes anyway): for the numpy runtime, whether it
    is the model's own head."""
    if isinstance(model, NumpyAligned):
        return meter is not None and meter is model.meter
    return meter is not None and meter.performance is model.performance


def head_questions(
    model: NumpyAligned | AlignedModel, meter: NumpyMeter | MeterModel | None
) -> tuple[str, ...]:
    """The columns of ``decode_many``'s odds: a numpy model's heads' questions (its meter
    head's, then its hand head's), or the torch ``meter`` head's (none without one)."""
    if isinstance(model, NumpyAligned):
        return model.head_questions()
    return tuple(meter.config.questions) if meter is not None else ()


def as_runtime(model: NumpyAligned | AlignedModel, meter: NumpyMeter | MeterModel | None) -> Any:
    """The decoding runtime of ``model``: the numpy model itself, or a torch model (put in
    eval mode) wrapped with its meter head (``perf2score.neural.torch_runtime``)."""
    if isinstance(model, NumpyAligned):
        return model
    from perf2score.neural.torch_runtime import TorchRuntime

    return TorchRuntime(model.eval(), meter)


def decode_many(
    model: NumpyAligned | AlignedModel,
    performances: list[Performance],
    config: DecodeConfig = DEFAULT,
    meter: NumpyMeter | MeterModel | None = None,
    odds: list[np.ndarray] | None = None,
    processes: int = 1,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``decode_windows`` for several performances at once (their windows side by side, at
    most ``MAX_BATCH_WINDOWS`` at a time), the windows shared among ``processes`` forked
    processes (one when there are too few windows to gain; the same result up to the
    float rounding of products over smaller batches, as for ``MAX_BATCH_WINDOWS``). With a
    list ``odds``, the log-odds (N, Q) per performance of the heads that read the model's
    own performance LM are appended to it (each note from the window where it is kept, as
    ``neural.meter.meter_logits``; columns: ``head_questions(model, meter)``): a numpy
    model's own heads, or the torch ``meter`` head (``shares_performance_lm``). Steady
    performances (``steady_groups``) are decoded apart, with the tempo on the beat clock."""
    if meter is not None and not shares_performance_lm(model, meter):
        raise ValueError("the meter head does not read this model's performance LM")
    groups = steady_groups(performances, config)
    if groups is not None:  # steady performances decode on the beat clock
        results: list = [None] * len(performances)
        placed: list = [None] * len(performances)
        for settings, members in groups:
            part_odds: list[np.ndarray] | None = [] if odds is not None else None
            chosen = [performances[i] for i in members]
            decoded = decode_many(model, chosen, settings, meter, part_odds, processes)
            for k, i in enumerate(members):
                results[i] = decoded[k]
                placed[i] = part_odds[k] if part_odds else None
        if odds is not None and any(p is not None for p in placed):
            odds.extend(placed)
        return results
    if config.window > model.score.config.max_notes:
        raise Perf2ScoreError(
            f"decoding window {config.window} exceeds the model's {model.score.config.max_notes}"
            " notes"
        )
    if config.prior_weight > 0 and not isinstance(model, NumpyAligned):
        raise Perf2ScoreError("decoding with prior_weight > 0 needs the numpy runtime")
    if config.beam > 1 and config.prior_weight > 0:
        raise Perf2ScoreError("a beam (beam > 1) does not decode with the score prior")
    if config.step_weight > 0 and getattr(model, "steps", None) is None:
        raise Perf2ScoreError("decoding with step_weight > 0 needs a numpy model with a step head")
    runtime = as_runtime(model, meter)
    window, overlap = config.window, config.overlap
    jobs = []  # (performance index, start, end)
    for index, performance in enumerate(performances):
        jobs += [(index, s, e) for s, e in windows(len(performance.notes), window, overlap)]
    tokens = [encode_performance(p) for p in performances]
    B, T = len(jobs), max(e - s for _, s, e in jobs)
    perf = {k: np.full((B, T), PAD, dtype=np.int64) for k in tokens[0]}
    padding = np.ones((B, T), dtype=bool)
    pitch = np.zeros((B, T), dtype=np.int64)
    onset = np.zeros((B, T), dtype=np.float64)
    clock = np.zeros((B, T), dtype=np.float64) if config.tempo_clock == "beats" else None
    beat_clocks = [beat_clock(p) for p in performances] if clock is not None else []
    for b, (index, s, e) in enumerate(jobs):
        notes = performances[index].notes
        for k, ids in tokens[index].items():
            perf[k][b, : e - s] = ids[s:e]
        padding[b, : e - s] = False
        pitch[b, : e - s] = notes["pitch"][s:e]
        onset[b, : e - s] = notes["onset_sec"][s:e]
        if clock is not None:
            clock[b, : e - s] = beat_clocks[index][s:e]
    out = {k: np.zeros((B, T), dtype=np.int64) for k in SCORE_NAMES}
    questions = head_questions(model, meter)
    want = odds is not None and bool(questions)
    window_odds = np.zeros((B, T, len(questions)), dtype=np.float32) if want else None
    start = start_tempi(jobs, performances, config, beat_clocks)
    timing = (onset, clock, start)
    state = (runtime, perf, padding, pitch, timing, out, window_odds, jobs, config)
    if config.chain_windows != 1 and config.chain_from == "tempo":
        alone = chain_links(jobs, 1)
        _decode_rounds(state, alone, chain_rounds(alone), processes)
        link = chains_from_steady_windows(out, jobs, performances, config)
        _decode_rounds(state, link, chain_rounds(link)[1:], processes)  # round 0: decoded already
    else:
        link = chain_links(jobs, config.chain_windows)
        _decode_rounds(state, link, chain_rounds(link), processes)
    results = []
    for index, performance in enumerate(performances):
        rows = [b for b, job in enumerate(jobs) if job[0] == index]
        spans = [jobs[b][1:] for b in rows]
        ids = {k: v[rows] for k, v in out.items()}
        results.append(
            _stitch(ids, spans, performance.notes["pitch"], config, performance.notes["onset_sec"])
        )
        if window_odds is not None and odds is not None:
            piece = np.zeros((len(performance.notes), len(questions)), dtype=np.float32)
            for b, (s, e) in zip(rows, spans, strict=True):
                keep_from = kept_from(s, config.overlap)
                piece[keep_from:e] = window_odds[b, keep_from - s : e - s]
            odds.append(piece)
    return results


def on_steady_path(performance: Performance, config: DecodeConfig) -> bool:
    """Whether ``steady_groups`` decodes ``performance`` on the beat clock."""
    if config.steady_residual <= 0 or config.tempo_clock == "beats":
        return False
    return bool(grid_residual(performance) < config.steady_residual)


def steady_groups(
    performances: list[Performance], config: DecodeConfig
) -> list[tuple[DecodeConfig, list[int]]] | None:
    """The performances (indices) to decode with other settings than ``config``: those whose
    onsets sit within ``config.steady_residual`` beats of the beat tracker's grid on
    average (``perf2score.classical.rhythm.grid_residual``) with the running tempo on the beat
    clock (``steady_tempo_weight``, ``steady_slack_grid``, ``steady_beam``), the others as
    ``config``, as (settings, indices) groups; None when every performance keeps ``config``
    (the check off, the beat clock already chosen, or no steady performance)."""
    steady = [
        i for i, performance in enumerate(performances) if on_steady_path(performance, config)
    ]
    if not steady:
        return None
    plain = replace(config, steady_residual=0.0)
    trusted = replace(
        plain,
        tempo_clock="beats",
        tempo_weight=config.steady_tempo_weight,
        tempo_slack_grid=config.steady_slack_grid,
        beam=config.steady_beam,
    )
    chosen = set(steady)
    others = [i for i in range(len(performances)) if i not in chosen]
    return [(trusted, steady)] + ([(plain, others)] if others else [])


def start_tempi(
    jobs: list[tuple[int, int, int]],
    performances: list[Performance],
    config: DecodeConfig,
    beat_clocks: list[np.ndarray] | None = None,
) -> np.ndarray:
    """(B,) each window's (``jobs``: performance index, start, end) running tempo before its
    first step: with ``config.tempo_start`` "tracked", a quarter per beat of the classical
    beat tracker (on the beat clock log ``GRID_PER_QUARTER``; on seconds, over the window's
    notes from their ``beat_clock``, or ``beat_clocks`` when given: one per performance),
    in log grid units per clock unit; else NaN (unknown until the first step)."""
    start = np.full(len(jobs), np.nan)
    if config.tempo_start == "none":
        return start
    if config.tempo_clock == "beats":
        return np.full(len(jobs), np.log(GRID_PER_QUARTER))
    clocks = beat_clocks or [beat_clock(p) for p in performances]
    for b, (index, s, e) in enumerate(jobs):
        seconds = performances[index].notes["onset_sec"][s:e]
        counted = clocks[index][s:e]
        span, played = seconds[-1] - seconds[0], counted[-1] - counted[0]
        if span > 0 and played > 0:
            start[b] = np.log(GRID_PER_QUARTER * played / span)  # tracked beats a second
    return start


def _decode_rounds(
    state: tuple, link: list[int], rounds: list[list[int]], processes: int = 1
) -> None:
    """Decode the windows of ``rounds`` (rows, in order) into ``out`` (in place), each
    window after the one it continues (``link``, -1: none), whose decoded tokens of the
    shared notes it is given. ``state``: decode_many's (runtime, perf, padding, pitch,
    (onset seconds, tempo clock or None, start tempi), out, window odds, jobs, config). A
    round of at least ``MIN_SPLIT_WINDOWS`` windows per process is decoded by ``processes``
    processes side by side."""
    from perf2score.parallel import side_by_side

    _, _, padding, _, _, out, window_odds, jobs, _ = state
    T = padding.shape[1]
    for rows in rounds:
        forced = {k: np.full((len(rows), T), FIRST_VALUE, dtype=np.int64) for k in out}
        forced_notes = np.zeros(len(rows), dtype=np.int64)
        for i, b in enumerate(rows):
            before = link[b]
            if before < 0:
                continue
            (_, s, _), (_, s0, e0) = jobs[b], jobs[before]
            shared = max(e0 - s, 0)
            forced_notes[i] = shared
            for k in out:
                forced[k][i, :shared] = out[k][before, s - s0 : e0 - s0]
        count = max(1, min(processes, len(rows) // MIN_SPLIT_WINDOWS))
        parts = np.array_split(np.arange(len(rows)), count)
        row_ids = np.asarray(rows)
        alone = count == 1 and processes > 1  # a second core is free: the heads beside the steps

        def decode_part(
            mine: np.ndarray, row_ids=row_ids, forced=forced, notes=forced_notes, alone=alone
        ):
            given = {k: v[mine] for k, v in forced.items()}
            return _decode_rows(state, row_ids[mine], given, notes[mine], alone)

        for mine, (ids, odds) in zip(parts, side_by_side(decode_part, parts), strict=True):
            part = row_ids[mine]
            for k in out:
                out[k][part] = ids[k]
            if window_odds is not None and odds is not None:
                window_odds[part] = odds


def _decode_rows(
    state: tuple,
    rows: np.ndarray,
    forced: dict[str, np.ndarray],
    forced_notes: np.ndarray,
    background: bool = False,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Decode the windows ``rows`` (R,), at most ``MAX_BATCH_WINDOWS`` rows (windows ×
    ``config.beam`` hypotheses) at a time: their
    score ids (R, T) per stream and their heads' log-odds (R, T, Q) (None when not asked),
    ``forced`` ids (R, T) per stream taken for the first ``forced_notes`` (R,) notes;
    ``background`` as ``_decode_batch``'s."""
    runtime, perf, padding, pitch, (onset, clock, start), out, window_odds, _, config = state
    T = padding.shape[1]
    ids = {k: np.zeros((len(rows), T), dtype=np.int64) for k in out}
    odds = (
        np.zeros((len(rows), T, window_odds.shape[-1]), np.float32)
        if window_odds is not None
        else None
    )
    size = max(1, MAX_BATCH_WINDOWS // config.beam)  # memory bounded: rows = windows × beam
    for first in range(0, len(rows), size):
        mine = slice(first, first + size)
        part = rows[mine]
        batch_ids = {k: np.zeros((len(part), T), dtype=np.int64) for k in out}
        _decode_batch(
            runtime,
            {k: v[part] for k, v in perf.items()},
            padding[part],
            pitch[part],
            onset[part],
            batch_ids,
            config,
            odds[mine] if odds is not None else None,
            {k: v[mine] for k, v in forced.items()} if forced_notes.any() else None,
            forced_notes[mine],
            clock[part] if clock is not None else None,
            start[part],
            background,
        )
        for k in out:
            ids[k][mine] = batch_ids[k]
    return ids, odds


def chains_from_steady_windows(
    out: dict[str, np.ndarray],
    jobs: list[tuple[int, int, int]],
    performances: list[Performance],
    config: DecodeConfig,
) -> list[int]:
    """Links (``chain_links``) that chain each performance from its first window decoded
    (alone, in ``out``) at about the piece's median tempo in score time (within a factor
    √2 of the windows' median grid units per second): that window and the ones before it
    stay as decoded, the later ones continue from it."""
    link = [-1] * len(jobs)
    for index, performance in enumerate(performances):
        rows = [b for b, job in enumerate(jobs) if job[0] == index]
        tempi = []
        for b in rows:
            s, e = jobs[b][1:]
            _, drop, onsets, _ = _window_frame(out, b, (s, e), performance.notes["pitch"])
            seconds = performance.notes["onset_sec"][s:e]
            tempi.append(local_tempo(onsets, seconds, ~drop, config.apart_seconds))
        known = [t for t in tempi if not np.isnan(t)]
        if not known:
            continue
        middle = float(np.median(known))
        steady = [i for i, t in enumerate(tempi) if abs(t - middle) < 0.5 * np.log(2.0)]
        head = steady[0] if steady else 0
        for i in range(head + 1, len(rows)):
            link[rows[i]] = rows[i - 1]
    return link


def chain_links(jobs: list[tuple[int, int, int]], chain_windows: int) -> list[int]:
    """For each window ``jobs[b]`` = (performance, start, end): the row of the window it
    continues (-1: it starts a chain). Consecutive windows of one performance form chains of
    ``chain_windows`` (0: the whole performance; 1: every window on its own)."""
    link, place = [], 0
    for b, job in enumerate(jobs):
        place = place + 1 if b and jobs[b - 1][0] == job[0] else 0
        starts = chain_windows == 1 or (chain_windows > 1 and place % chain_windows == 0)
        link.append(-1 if place == 0 or starts else b - 1)
    return link


def chain_rounds(link: list[int]) -> list[list[int]]:
    """Rows in decoding order: round r holds every chain's r-th window (each window after
    the one it continues)."""
    depth: list[int] = []
    for before in link:
        depth.append(0 if before < 0 else depth[before] + 1)
    rounds: list[list[int]] = [[] for _ in range(max(depth, default=-1) + 1)]
    for b, d in enumerate(depth):
        rounds[d].append(b)
    return rounds


def _window_frame(
    out: dict[str, np.ndarray], row: int, span: tuple[int, int], pitches: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(attributes, drop, onsets in ticks), each (e - s,), and bar lines (``measure_grid``)
    of window ``row`` of ``out`` (token ids (B, T)) covering the notes ``span`` = (s, e)
    with ``pitches`` (N,)."""
    s, e = span
    ids = {k: v[row, : e - s] for k, v in out.items()}
    attributes, drop = decode_score(ids, pitches[s:e], GRID_PER_QUARTER)
    onsets, bars = measure_grid(attributes, drop)
    return attributes, drop, onsets, bars


def measure_grid(attributes: np.ndarray, drop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(onsets (N,), bar lines (M + 1,)) in ticks from the notes' measure indices, measure
    lengths and positions: measure m of the kept notes spans ``bars[m - first]`` to
    ``bars[m - first + 1]`` (its length is that of its first kept note; measures without
    notes take the first measure's length). Dropped notes get onset 0."""
    keep = ~drop
    onsets = np.zeros(len(attributes), dtype=np.int64)
    if not keep.any():
        return onsets, np.zeros(2, dtype=np.int64)
    measures = attributes["measure"][keep].astype(np.int64)
    lengths: dict[int, int] = {}
    for m, length in zip(
        measures.tolist(), attributes["measure_length_ticks"][keep].tolist(), strict=True
    ):
        lengths.setdefault(m, max(int(length), 1))
    first = min(lengths)
    sizes = [lengths.get(m, lengths[first]) for m in range(first, max(lengths) + 1)]
    bars = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    onsets[keep] = bars[measures - first] + attributes["position_ticks"][keep]
    return onsets, bars


def _junction_offset(
    previous: np.ndarray, current: np.ndarray, junction: int, notes: int
) -> int | None:
    """Shift (ticks) that puts ``current`` window onsets onto ``previous`` global onsets:
    the most common difference over up to ``notes`` shared notes nearest the junction."""
    if not len(previous):
        return None
    near = np.argsort(np.abs(np.arange(len(previous)) - junction), kind="stable")[:notes]
    differences = previous[near] - current[near]
    values, counts = np.unique(differences, return_counts=True)
    best = values[counts == counts.max()]
    for d in differences:  # ties: the difference of the note nearest the junction
        if d in best:
            return int(d)
    return None


def _stitch(
    out: dict[str, np.ndarray],
    spans: list[tuple[int, int]],
    pitches: np.ndarray,
    config: DecodeConfig = DEFAULT,
    seconds: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Join the windows' token ids (B, T) into attributes and drops for all N notes
    (``pitches`` (N,); ``seconds`` (N,) the performed onsets, needed for
    ``config.window_scales``, which first writes every window at the value scale of most:
    ``window_tempo.scale_steps``).

    Each window has its own frame (bar phase, measure lengths). Windows are joined in the
    middle of their overlaps: window b's onsets are shifted onto window b - 1's on the
    shared notes nearest the junction, so time runs on without a jump; each note keeps the
    bar lines of the window it comes from. Where two windows disagree on the bar phase, the
    measure holding the junction gets an irregular length instead of a jump in time.
    """
    n = len(pitches)
    attributes, drop = None, np.zeros(n, bool)
    onsets = np.zeros(n, dtype=np.int64)
    bars: list[int] = []
    previous: tuple[int, np.ndarray, np.ndarray] | None = None  # start, onsets, kept
    frames = [_window_frame(out, b, span, pitches) for b, span in enumerate(spans)]
    if config.window_scales and seconds is not None:
        frames = _one_scale(frames, spans, config.overlap, seconds, config.apart_seconds)
    for (s, e), (window_attrs, window_drop, window_onsets, window_bars) in zip(
        spans, frames, strict=True
    ):
        if attributes is None:
            attributes = np.zeros(n, dtype=window_attrs.dtype)
        keep_from = kept_from(s, config.overlap)
        offset = 0
        if previous is not None:
            p_start, p_onsets, p_kept = previous
            shared = np.arange(s, min(e, p_start + len(p_onsets)))
            both = shared[p_kept[shared - p_start] & ~window_drop[shared - s]]
            found = _junction_offset(
                p_onsets[both - p_start],
                window_onsets[both - s],
                int(np.searchsorted(both, keep_from)),
                config.junction_notes,
            )
            if found is None:  # no shared kept note: start after everything so far
                last = max(bars[-1] if bars else 0, int(onsets[:keep_from].max(initial=0)))
                found = last - int(window_onsets[~window_drop].min(initial=0))
            offset = found
        global_onsets = window_onsets + offset
        global_bars = window_bars + offset
        rows = slice(keep_from - s, e - s)
        kept = ~window_drop[rows]
        if kept.any():
            junction = int(global_onsets[rows][kept][0])
            before = [x for x in bars if x <= junction]
            holding = global_bars[global_bars <= junction]
            if len(holding) and (not before or holding[-1] > before[-1]):
                before.append(int(holding[-1]))
            bars = before + [int(x) for x in global_bars[global_bars > junction]]
        attributes[keep_from:e] = window_attrs[rows]
        onsets[keep_from:e] = global_onsets[rows]
        drop[keep_from:e] = window_drop[rows]
        previous = (s, global_onsets, ~window_drop)
    return _rebar(attributes, drop, onsets, np.asarray(bars, dtype=np.int64))


def _one_scale(
    frames: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    spans: list[tuple[int, int]],
    overlap: int,
    seconds: np.ndarray,
    gap: float,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The windows' frames (``_window_frame``) with each window's score time halved or
    doubled where its tempo in score time over the notes it keeps (from ``kept_from``) is
    about twice or half the piece's, the median over every kept interval
    (``window_tempo.scale_steps``; a window whose ticks cannot be halved stays)."""
    ratios = []
    for (s, e), (_, drop, onsets, _) in zip(spans, frames, strict=True):
        k = kept_from(s, overlap) - s  # the notes this window keeps, as the join does
        ratios.append(interval_tempi(onsets[k:], seconds[s + k : e], ~drop[k:], gap))
    tempi = [float(np.median(r)) if len(r) else np.nan for r in ratios]
    pooled = np.concatenate(ratios)
    middle = float(np.median(pooled)) if len(pooled) else None
    result = []
    steps = scale_steps(tempi, middle)
    for step, (attributes, drop, onsets, bars) in zip(steps, frames, strict=True):
        if step and can_scale(step, attributes[~drop], onsets[~drop], bars):
            attributes, onsets, bars = scaled(step, attributes, onsets, bars)
        result.append((attributes, drop, onsets, bars))
    return result


def _rebar(
    attributes: np.ndarray, drop: np.ndarray, onsets: np.ndarray, bars: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Measure indices, positions and lengths of the kept notes from global onsets and bar
    lines (ticks); a dropped note takes the measure of the kept note before it."""
    keep = ~drop
    if not keep.any():
        return attributes, drop
    low = int(onsets[keep].min())
    if low < bars[0]:  # notes before the first bar line: one more measure in front
        bars = np.concatenate([[low], bars])
    if onsets[keep].max() >= bars[-1]:
        bars = np.concatenate([bars, [int(onsets[keep].max()) + 1]])
    assign_measures(attributes, drop, onsets, bars)
    return attributes, drop
