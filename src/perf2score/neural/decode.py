"""Decoding: a performance → per-note score attributes with an ``AlignedModel``.

Every setting is a field of ``DecodeConfig`` (``perf2score.neural.settings``). The
performance is cut into windows of ``window`` notes overlapping by ``overlap``; all
windows are encoded at once and decoded together, note by note, with the score LM's KV
cache (greedy). Constraints at every step: no special ids; the position lies inside the
predicted measure; within a measure, onsets do not go backwards (unless the note is played
within ``chord_seconds`` of the previous one, as in a rolled chord) and notes played more
than ``apart_seconds`` apart do not share an onset (when the measure has no room left, the
note opens the next measure); the spelling (``alter``) fits the pitch. Windows are
stitched in the middle of their overlaps, in time (see ``_stitch``).
"""

from __future__ import annotations

import numpy as np
import torch

from perf2score.constants import GRID_PER_QUARTER
from perf2score.errors import Perf2ScoreError
from perf2score.midi.reading import Performance
from perf2score.models.adapter import AlignedModel
from perf2score.models.lm import score_step_inputs
from perf2score.models.meter_head import MeterModel
from perf2score.neural.settings import DecodeConfig
from perf2score.neural.window_tempo import local_tempo
from perf2score.score.barring import assign_measures
from perf2score.tokens.performance import encode_performance
from perf2score.tokens.score import BACKWARDS, NATURAL_STEPS, decode_score
from perf2score.tokens.spec import BOS, FIRST_VALUE, PAD, SCORE_STREAMS, STREAMS

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


def _alter_table() -> torch.Tensor:
    """(12, 5) True where alter -2..+2 spells pitch class 0..11 with a natural step."""
    natural = (torch.arange(12)[:, None] - torch.arange(-2, 3)[None, :]) % 12  # (12, 5)
    return torch.isin(natural, torch.tensor(list(NATURAL_STEPS)))


ALTER_ALLOWED = _alter_table()


def decode_windows(
    model: AlignedModel, performance: Performance, config: DecodeConfig = DEFAULT
) -> tuple[np.ndarray, np.ndarray]:
    """(score attributes (N,) ``ATTRIBUTE_DTYPE`` at ``GRID_PER_QUARTER`` ticks per
    quarter, drop (N,) bool) for the performance's notes in their stored order."""
    return decode_many(model, [performance], config)[0]


# windows decoded side by side at most: 128 x 256 notes keeps the key/value cache near
# 0.6 GB; a 100,000-note file (521 windows) in one batch peaked at 2.6 GB
MAX_BATCH_WINDOWS = 128
POSITION_VALUES = torch.arange(STREAMS["position"].size) - FIRST_VALUE  # (V,) grid units


class _Timeline:
    """Per-window decoding state in the window's own score time (grid units): the current
    measure's start and length, the last kept note's position and onset, and a running
    tempo (log grid units per second) from the notes decoded so far."""

    def __init__(self, rows: int, config: DecodeConfig = DEFAULT):
        self.config = config
        self.measure_start = torch.zeros(rows, dtype=torch.long)
        self.measure_length = torch.zeros(rows, dtype=torch.long)
        self.last_position = torch.full((rows,), -1, dtype=torch.long)
        self.last_onset = torch.full((rows,), -1, dtype=torch.long)
        self.log_tempo = torch.full((rows,), torch.nan, dtype=torch.float64)

    def advance(self, chosen: dict[str, torch.Tensor], kept: torch.Tensor, gap: torch.Tensor):
        """Take in the notes just decoded (token ids (B,)); ``gap`` (B,) in seconds."""
        advance = chosen["bar"] - FIRST_VALUE
        length = chosen["measure_length"] - FIRST_VALUE
        position = chosen["position"] - FIRST_VALUE
        moved = kept & (advance >= 1) & (advance < BACKWARDS)
        jump = self.measure_length + (advance - 1).clamp(min=0) * length
        self.measure_start = torch.where(moved, self.measure_start + jump, self.measure_start)
        backwards = kept & (advance == BACKWARDS)  # a repeat: the tempo carries on, time restarts
        self.measure_length = torch.where(kept, length, self.measure_length)
        onset = self.measure_start + position
        ioi = (onset - self.last_onset).double()
        apart = gap > self.config.apart_seconds
        seen = kept & ~backwards & (self.last_onset >= 0) & apart & (ioi > 0)
        observed = torch.log(ioi.clamp(min=1) / gap.clamp(min=1e-3))
        new = self.config.tempo_blend  # the new IOI's weight
        blended = torch.where(
            torch.isnan(self.log_tempo), observed, (1 - new) * self.log_tempo + new * observed
        )
        self.log_tempo = torch.where(seen, blended, self.log_tempo)
        self.last_onset = torch.where(kept & ~backwards, onset, self.last_onset)
        self.last_onset = torch.where(backwards, -1, self.last_onset)
        self.last_position = torch.where(moved | backwards, -1, self.last_position)
        self.last_position = torch.where(kept, position, self.last_position)


def _bar_and_position(
    bar_logits: torch.Tensor,
    position_scores: torch.Tensor,
    chosen: dict[str, torch.Tensor],
    gap: torch.Tensor,
    state: _Timeline,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(bar, position) token ids (B,): staying in the measure or opening the next one,
    whichever scores best, each with its best position; a position's score is its log
    probability minus a penalty for a score-time step out of line with the running tempo.

    Staying needs a position inside the measure, not before the previous note unless the
    two were played within ``chord_seconds``, and after it when played more than
    ``apart_seconds`` apart (``state.config``). Bar advances of 2+ measures or backwards are
    kept as chosen."""
    config = state.config
    values = POSITION_VALUES[None, :]  # (1, V)
    length = chosen["measure_length"] - FIRST_VALUE  # (B,)
    inside = values < torch.clamp(length, min=1)[:, None]  # (B, V)
    last = state.last_position[:, None]
    forward = torch.where((gap > config.apart_seconds)[:, None], values > last, values >= last)
    need = ((gap >= config.chord_seconds) & (state.last_position >= 0))[:, None]
    stay_ok = inside & (forward | ~need)
    position_lp = torch.log_softmax(position_scores, -1)
    bar_logits = bar_logits.clone()
    bar_logits[:, :FIRST_VALUE] = -torch.inf
    bar_lp = torch.log_softmax(bar_logits, -1)  # (B, 5 + FIRST_VALUE)

    known = (~torch.isnan(state.log_tempo) & (state.last_onset >= 0))[:, None]
    expected = (gap * torch.exp(torch.nan_to_num(state.log_tempo)))[:, None]  # (B, 1) grid

    def penalised(start: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
        ioi = (start[:, None] + values - state.last_onset[:, None]).clamp(min=0).double()
        slack = config.tempo_slack_grid
        off = torch.abs(torch.log((ioi + slack) / (expected + slack)))
        score = position_lp - torch.where(known, config.tempo_weight * off, 0.0).float()
        return torch.where(ok, score, -torch.inf)

    stay = penalised(state.measure_start, stay_ok).max(1)
    move = penalised(state.measure_start + state.measure_length, inside).max(1)
    stay_total = stay.values + bar_lp[:, FIRST_VALUE]
    move_total = move.values + bar_lp[:, FIRST_VALUE + 1]
    opens = move_total > stay_total
    joint = chosen["bar"] <= FIRST_VALUE + 1
    bar = torch.where(joint, torch.where(opens, FIRST_VALUE + 1, FIRST_VALUE), chosen["bar"])
    position = torch.where(opens, move.indices, stay.indices)
    free = torch.where(inside, position_scores, -torch.inf).argmax(1)
    return bar, torch.where(joint, position, free)


def _decode_batch(
    model: AlignedModel,
    perf: dict[str, torch.Tensor],
    padding: torch.Tensor,
    pitch: torch.Tensor,
    onset: torch.Tensor,
    out: dict[str, torch.Tensor],
    config: DecodeConfig,
    meter: MeterModel | None = None,
    odds: torch.Tensor | None = None,
    forced: dict[str, torch.Tensor] | None = None,
    forced_notes: torch.Tensor | None = None,
) -> None:
    """Decode a batch of windows note by note into ``out`` ((B, T) each, in place):
    ``perf`` the performance tokens, ``padding``/``pitch``/``onset`` (B, T); with a
    ``meter`` head reading the same performance LM, its log-odds go into ``odds`` (B, T, 2).
    ``forced`` (token ids (B, P) per stream) are taken instead of the model's choice for
    the first ``forced_notes`` (B,) notes of each window (a prefix the window continues)."""
    B, T = padding.shape
    states: list[torch.Tensor] = []
    memory = model.encode(perf, padding, states)
    if meter is not None and odds is not None:
        odds[:] = meter.odds(states)
    cache = model.score.new_cache()
    previous = {k: torch.full((B, 1), BOS, dtype=torch.long) for k in SCORE_NAMES}
    state = _Timeline(B, config)
    for t in range(T):
        inputs = score_step_inputs(previous, perf["pitch"][:, t : t + 1])  # (B, 1) each
        logits = model(None, inputs, padding=padding, memory=memory, cache=cache, start=t)
        gap = onset[:, t] - onset[:, max(t - 1, 0)]  # (B,) seconds since the previous note
        chosen = {}
        for name in SCORE_NAMES:
            scores = logits[name][:, -1].float()  # (B, V)
            scores[:, :FIRST_VALUE] = -torch.inf
            if name == "position":
                chosen["bar"], chosen[name] = _bar_and_position(
                    logits["bar"][:, -1].float(), scores, chosen, gap, state
                )
                continue
            if name == "alter":
                allowed = ALTER_ALLOWED[pitch[:, t] % 12]  # (B, 5)
                scores[:, FIRST_VALUE:] = torch.where(allowed, scores[:, FIRST_VALUE:], -torch.inf)
            chosen[name] = scores.argmax(-1)  # (B,)
        if forced is not None and forced_notes is not None and t < forced["drop"].shape[1]:
            given = t < forced_notes  # (B,)
            for name in SCORE_NAMES:
                chosen[name] = torch.where(given, forced[name][:, t], chosen[name])
        dropped = chosen["drop"] == FIRST_VALUE + 1
        for name in SCORE_NAMES:
            if name != "drop":
                chosen[name] = torch.where(dropped, FIRST_VALUE, chosen[name])
            out[name][:, t] = chosen[name]
            previous[name] = chosen[name][:, None]
        state.advance(chosen, ~dropped, gap)


def shares_performance_lm(model: AlignedModel, meter: MeterModel | None) -> bool:
    """Whether ``meter`` reads the very performance LM of ``model`` (then decoding computes
    its evidence from the encoder pass it makes anyway)."""
    return meter is not None and meter.performance is model.performance


@torch.no_grad()
def decode_many(
    model: AlignedModel,
    performances: list[Performance],
    config: DecodeConfig = DEFAULT,
    meter: MeterModel | None = None,
    odds: list[np.ndarray] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``decode_windows`` for several performances at once (their windows side by side, at
    most ``MAX_BATCH_WINDOWS`` at a time). With a ``meter`` head that reads the model's own
    performance LM (``shares_performance_lm``) and a list ``odds``, the head's log-odds
    (N, 2) per performance are appended to ``odds`` (each note from the window where it is
    kept, as ``neural.meter.meter_logits``)."""
    if meter is not None and not shares_performance_lm(model, meter):
        raise ValueError("the meter head does not read this model's performance LM")
    if config.window > model.score.config.max_notes:
        raise Perf2ScoreError(
            f"decoding window {config.window} exceeds the model's {model.score.config.max_notes}"
            " notes"
        )
    window, overlap = config.window, config.overlap
    jobs = []  # (performance index, start, end)
    for index, performance in enumerate(performances):
        jobs += [(index, s, e) for s, e in windows(len(performance.notes), window, overlap)]
    tokens = [encode_performance(p) for p in performances]
    B, T = len(jobs), max(e - s for _, s, e in jobs)
    perf = {k: torch.full((B, T), PAD, dtype=torch.long) for k in tokens[0]}
    padding = torch.ones(B, T, dtype=torch.bool)
    pitch = torch.zeros(B, T, dtype=torch.long)
    onset = torch.zeros(B, T, dtype=torch.float64)
    for b, (index, s, e) in enumerate(jobs):
        notes = performances[index].notes
        for k, ids in tokens[index].items():
            perf[k][b, : e - s] = torch.from_numpy(ids[s:e])
        padding[b, : e - s] = False
        pitch[b, : e - s] = torch.from_numpy(notes["pitch"][s:e].astype(np.int64))
        onset[b, : e - s] = torch.from_numpy(notes["onset_sec"][s:e])
    out = {k: torch.zeros(B, T, dtype=torch.long) for k in SCORE_NAMES}
    window_odds = torch.zeros(B, T, 2) if meter is not None else None
    state = (model, perf, padding, pitch, onset, out, window_odds, jobs, config, meter)
    if config.chain_windows != 1 and config.chain_from == "tempo":
        alone = chain_links(jobs, 1)
        _decode_rounds(state, alone, chain_rounds(alone))
        link = chains_from_steady_windows(out, jobs, performances, config)
        _decode_rounds(state, link, chain_rounds(link)[1:])  # round 0: decoded already
    else:
        link = chain_links(jobs, config.chain_windows)
        _decode_rounds(state, link, chain_rounds(link))
    results = []
    for index, performance in enumerate(performances):
        rows = [b for b, job in enumerate(jobs) if job[0] == index]
        spans = [jobs[b][1:] for b in rows]
        ids = {k: v[rows] for k, v in out.items()}
        results.append(_stitch(ids, spans, performance.notes["pitch"], config))
        if window_odds is not None and odds is not None:
            piece = np.zeros((len(performance.notes), 2), dtype=np.float32)
            for b, (s, e) in zip(rows, spans, strict=True):
                keep_from = kept_from(s, config.overlap)
                piece[keep_from:e] = window_odds[b, keep_from - s : e - s].numpy()
            odds.append(piece)
    return results


def _decode_rounds(state: tuple, link: list[int], rounds: list[list[int]]) -> None:
    """Decode the windows of ``rounds`` (rows, in order) into ``out`` (in place), each
    window after the one it continues (``link``, -1: none), whose decoded tokens of the
    shared notes it is given. ``state``: decode_many's (model, perf, padding, pitch, onset,
    out, window odds, jobs, config, meter)."""
    model, perf, padding, pitch, onset, out, window_odds, jobs, config, meter = state
    T = padding.shape[1]
    for rows in rounds:
        forced = {k: torch.full((len(rows), T), FIRST_VALUE, dtype=torch.long) for k in out}
        forced_notes = torch.zeros(len(rows), dtype=torch.long)
        for i, b in enumerate(rows):
            before = link[b]
            if before < 0:
                continue
            (_, s, _), (_, s0, e0) = jobs[b], jobs[before]
            shared = max(e0 - s, 0)
            forced_notes[i] = shared
            for k in out:
                forced[k][i, :shared] = out[k][before, s - s0 : e0 - s0]
        for first in range(0, len(rows), MAX_BATCH_WINDOWS):  # memory bounded
            part = torch.tensor(rows[first : first + MAX_BATCH_WINDOWS])
            mine = slice(first, first + len(part))
            ids = {k: torch.zeros(len(part), T, dtype=torch.long) for k in out}
            part_odds = torch.zeros(len(part), T, 2) if window_odds is not None else None
            _decode_batch(
                model,
                {k: v[part] for k, v in perf.items()},
                padding[part],
                pitch[part],
                onset[part],
                ids,
                config,
                meter,
                part_odds,
                {k: v[mine] for k, v in forced.items()} if forced_notes.any() else None,
                forced_notes[mine],
            )
            for k in out:
                out[k][part] = ids[k]
            if window_odds is not None and part_odds is not None:
                window_odds[part] = part_odds


def chains_from_steady_windows(
    out: dict[str, torch.Tensor],
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
    out: dict[str, torch.Tensor], row: int, span: tuple[int, int], pitches: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(attributes, drop, onsets in ticks), each (e - s,), and bar lines (``measure_grid``)
    of window ``row`` of ``out`` (token ids (B, T)) covering the notes ``span`` = (s, e)
    with ``pitches`` (N,)."""
    s, e = span
    ids = {k: v[row, : e - s].numpy() for k, v in out.items()}
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
    out: dict[str, torch.Tensor],
    spans: list[tuple[int, int]],
    pitches: np.ndarray,
    config: DecodeConfig = DEFAULT,
) -> tuple[np.ndarray, np.ndarray]:
    """Join the windows' token ids (B, T) into attributes and drops for all N notes.

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
    for b, (s, e) in enumerate(spans):
        window_attrs, window_drop, window_onsets, window_bars = _window_frame(
            out, b, (s, e), pitches
        )
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
