"""Piece-level bar lines: one time signature, a tracked downbeat phase, one value scale.

A converter that decides the meter note by note (or window by window) writes whatever the
local evidence suggests: 4/4 by default, a bar phase that moves where two windows disagree,
values halved in one stretch. Here the whole piece is re-barred on one metrical grid, from
per-note evidence: the probability that each performed note falls on a downbeat and on a
beat (``perf2score.models.meter_head`` reads them off the performance LM).

- A *candidate* is a value scale (``SCALES``: the decoded onsets and values ×½, ×1 or ×2)
  and a time signature (``METERS``).
- For each candidate a Viterbi pass over the onsets (``track_phase``) finds the downbeat
  phase (on a 16th grid) that best explains which notes are on downbeats and beats, allowing
  a change of phase (cost ``change_cost`` nats) where the decoded time slipped; the
  candidate's score is that path's log likelihood plus a log-normal tempo prior on the
  notated tempo (``tempo_prior``).
- The best candidate is written by ``apply_barring``: bar lines follow the tracked phase
  (``bar_lines``: a change of phase makes the measure across it irregular, unless the slip
  is closed by moving the later onsets, ``close_slips``), a pickup measure where the first
  notes come before the first downbeat; ``assign_measures`` puts every note in its measure
  (the decoder's window stitching uses it too).

Times are integer ticks at ``BAR_TICKS_PER_QUARTER`` (48 per quarter: halving a value on the
1/24-quarter grid stays integral).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perf2score.score.meter import is_compound

BAR_TICKS_PER_QUARTER = 48
PHASE_STEP = BAR_TICKS_PER_QUARTER // 4  # downbeat phases are tried on every 16th
SCALES = (0.5, 1.0, 2.0)
METERS = ((2, 4), (3, 4), (4, 4), (2, 2), (3, 8), (6, 8), (9, 8), (12, 8), (3, 2))
# notated tempo prior (quarters per minute, log-normal): the ASAP training scores' tempi
# in score quarters per minute have median ~ 100 and spread ~ a factor 1.6 either way
TEMPO_MEDIAN_QPM = 100.0
TEMPO_LOG_SPREAD = 0.5


@dataclass(frozen=True)
class Barring:
    """A metrical grid for a whole piece: onsets are ``scale`` × the decoded onsets (ticks at
    ``BAR_TICKS_PER_QUARTER``), downbeats at ``phase`` + k × the measure length."""

    scale: float
    ts_num: int
    ts_den: int
    phase: int  # ticks, 0 <= phase < measure_ticks
    score: float = 0.0  # log likelihood of the evidence (+ tempo prior), for comparisons

    @property
    def measure_ticks(self) -> int:
        return self.ts_num * 4 * BAR_TICKS_PER_QUARTER // self.ts_den

    @property
    def beat_ticks(self) -> int:
        unit = 4 * BAR_TICKS_PER_QUARTER // self.ts_den
        return unit * 3 if is_compound(self.ts_num) else unit


@dataclass
class Evidence:
    """Per-note metrical evidence of the notes that count (not dropped, not grace notes):
    onsets (K,) in ticks at ``BAR_TICKS_PER_QUARTER`` (decoded, unscaled), seconds (K,)
    (performed onsets), and log probabilities (K,) of being / not being on a downbeat and
    on a beat."""

    onsets: np.ndarray
    seconds: np.ndarray
    downbeat: np.ndarray  # log P(on a downbeat)
    not_downbeat: np.ndarray
    beat: np.ndarray
    not_beat: np.ndarray

    @classmethod
    def from_logits(
        cls, onsets: np.ndarray, seconds: np.ndarray, downbeat: np.ndarray, beat: np.ndarray
    ) -> Evidence:
        """Evidence from logits (K,) of the two binary questions."""

        def logs(logit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            logit = np.asarray(logit, dtype=np.float64)
            return -np.logaddexp(0.0, -logit), -np.logaddexp(0.0, logit)

        (db, not_db), (bt, not_bt) = logs(downbeat), logs(beat)
        return cls(np.asarray(onsets, np.int64), np.asarray(seconds, float), db, not_db, bt, not_bt)


def _clusters(onsets: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """(distinct onsets (C,), per-cluster sums (C,) of each of ``values`` (K,))."""
    times, inverse = np.unique(onsets, return_inverse=True)
    return times, [np.bincount(inverse, weights=v, minlength=len(times)) for v in values]


def track_phase(
    times: np.ndarray,
    sums: list[np.ndarray],
    barring: Barring,
    change_cost: float,
    beat_weight: float = 1.0,
    jump_cost: float | None = None,
    empty_cost: float = 0.0,
    pickup_cost: float = 0.0,
    held_cost: float = 0.0,
) -> tuple[np.ndarray, float]:
    """(phase (C,) in ticks at each onset cluster, log likelihood of the best path).

    ``times`` (C,) are the clusters' scaled onsets, ``sums`` their summed log probabilities
    (downbeat, not downbeat, beat, not beat). A path scores each cluster by what its
    position under the phase says (on a downbeat, on a beat, neither), pays ``empty_cost``
    for each downbeat between two clusters that no onset falls on (under the later
    cluster's phase), ``change_cost`` for each change of phase by a 16th (a slip of the
    decoded time) and ``jump_cost`` (default: the same) for a larger change, and
    ``pickup_cost`` when the first cluster is not on a downbeat (the piece would open with a
    pickup measure), and only ``held_cost`` (when > 0 and cheaper) for a change by exactly one
    beat at a cluster that comes two or more beats after the one before (``held_slips``: a
    held note or rest written a beat short or long, mended in ``close_held_slips``)
    (Viterbi)."""
    length, beat = barring.measure_ticks, barring.beat_ticks
    db, not_db, bt, not_bt = sums
    phases = np.arange(0, length, PHASE_STEP)  # (S,)
    if not len(times):
        return np.zeros(0, dtype=np.int64), 0.0
    offsets = (times[:, None] - phases[None, :]) % length  # (C, S)
    on_downbeat = offsets == 0
    on_beat = offsets % beat == 0
    emission = np.where(on_downbeat, db[:, None], not_db[:, None]) + beat_weight * np.where(
        on_beat, bt[:, None], not_bt[:, None]
    )  # (C, S)
    if empty_cost and len(times) > 1:  # downbeats strictly between consecutive clusters
        before = times[:-1, None] - phases[None, :]
        after = times[1:, None] - phases[None, :]
        emission[1:] -= empty_cost * ((after - 1) // length - before // length)
    emission[0] -= pickup_cost * ~on_downbeat[0]
    apart = np.abs(phases[:, None] - phases[None, :])
    apart = np.minimum(apart, length - apart)  # circular distance between phases
    jump = change_cost if jump_cost is None else jump_cost
    cost = np.where(apart == 0, 0.0, np.where(apart <= PHASE_STEP, change_cost, jump))  # (S, S)
    if held_cost > 0:
        held = held_slips(times, beat)
        held_step = np.where(apart == beat, np.minimum(cost, held_cost), cost)  # (S, S)
    else:
        held, held_step = np.zeros(len(times), dtype=bool), cost
    score = emission[0].copy()
    back = np.zeros(emission.shape, dtype=np.int32)
    for k in range(1, len(times)):
        candidates = score[:, None] - (held_step if held[k] else cost)  # (from, to)
        back[k] = np.argmax(candidates, 0)
        score = candidates[back[k], np.arange(len(phases))] + emission[k]
    path = np.zeros(len(times), dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for k in range(len(times) - 1, 0, -1):
        path[k - 1] = back[k, path[k]]
    return phases[path], float(score.max())


def held_slips(times: np.ndarray, beat: int) -> np.ndarray:
    """(C,) booleans: clusters at ``times`` (C,, sorted ticks) that come two or more beats
    (``beat`` ticks) after the cluster before, where a held note or a rest may have been
    written a beat short or long."""
    out = np.zeros(len(times), dtype=bool)
    out[1:] = np.diff(times) >= 2 * beat
    return out


def close_held_slips(
    onsets: np.ndarray, times: np.ndarray, phases: np.ndarray, barring: Barring
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(onsets (N,), cluster onsets (C,), their phases (C,)) with each change of phase by
    one beat at a ``held_slips`` cluster closed: that cluster and every later onset move by
    the beat (the held note before it is lengthened or shortened), so the phase before the
    change goes on. ``onsets`` (N,) and ``times`` (C,) in ticks, ``phases`` (C,) as
    ``track_phase`` gives them. Other changes stay."""
    length, beat = barring.measure_ticks, barring.beat_ticks
    if len(times) < 2:
        return onsets, times, phases
    change = (phases[:-1] - phases[1:]) % length  # (C - 1,) later phase back to the earlier
    change = np.where(change > length // 2, change - length, change)
    closing = held_slips(times, beat)[1:] & (np.abs(change) == beat)
    if not closing.any():
        return onsets, times, phases
    shift = np.concatenate([[0], np.cumsum(np.where(closing, change, 0))])  # (C,) ticks
    cluster = np.clip(np.searchsorted(times, onsets, side="right") - 1, 0, len(times) - 1)
    return onsets + shift[cluster], times + shift, (phases + shift) % length


def tempo_prior(barring: Barring, evidence: Evidence) -> float:
    """Log density (nats, up to a constant) of the notated tempo under the prior: the
    scaled score span over the performed span, in quarters per minute."""
    if len(evidence.onsets) < 2:
        return 0.0
    span_s = float(np.ptp(evidence.seconds))
    span_q = float(np.ptp(evidence.onsets)) * barring.scale / BAR_TICKS_PER_QUARTER
    if span_s <= 0 or span_q <= 0:
        return 0.0
    qpm = 60.0 * span_q / span_s
    return -0.5 * (np.log(qpm / TEMPO_MEDIAN_QPM) / TEMPO_LOG_SPREAD) ** 2


def choose_barring(
    evidence: Evidence,
    change_cost: float = 4.0,
    jump_cost: float | None = None,
    tempo_weight: float = 1.0,
    beat_weight: float = 1.0,
    scales: tuple[float, ...] = SCALES,
    meters: tuple[tuple[int, int], ...] = METERS,
    empty_cost: float = 0.0,
    pickup_cost: float = 0.0,
    held_cost: float = 0.0,
) -> tuple[Barring, np.ndarray, np.ndarray]:
    """(the best ``Barring``, its clusters' scaled onsets (C,), their phases (C,)).

    Every (scale, meter) candidate is tracked (``track_phase``, ``empty_cost`` nats per
    downbeat without an onset, ``pickup_cost`` nats for a pickup, ``held_cost`` nats for a
    beat gained or lost at a held note) and scored by its path's
    log likelihood plus ``tempo_weight`` × ``tempo_prior``."""
    best: tuple[Barring, np.ndarray, np.ndarray] | None = None
    for scale in scales:
        scaled = np.rint(evidence.onsets * scale).astype(np.int64)
        times, sums = _clusters(
            scaled, evidence.downbeat, evidence.not_downbeat, evidence.beat, evidence.not_beat
        )
        for num, den in meters:
            option = Barring(scale, num, den, 0)
            phases, fit = track_phase(
                times,
                sums,
                option,
                change_cost,
                beat_weight,
                jump_cost,
                empty_cost,
                pickup_cost,
                held_cost,
            )
            total = fit + tempo_weight * tempo_prior(option, evidence)
            if best is None or total > best[0].score:
                option = Barring(scale, num, den, int(phases[0]) if len(phases) else 0, total)
                best = (option, times, phases)
    assert best is not None
    return best


SLIP_REACH = 8  # clusters searched on either side for room to close a slip backwards


def close_slips(
    onsets: np.ndarray, times: np.ndarray, phases: np.ndarray, length: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(onsets (N,), cluster onsets (C,), their phases (C,)) after closing slips.

    At each change of ``phases`` (C,) at the cluster onsets ``times`` (C,), the cluster
    and every later onset of ``onsets`` (N,) move by the smallest shift (under half a
    measure) that restores the first phase. A move backwards needs room: where the cluster
    would reach its neighbour (a run of 16ths), the move is made at the nearest cluster
    within ``SLIP_REACH`` that has room (the notes between keep the slip); where none has,
    time stays as it is and the new phase holds from there (the measure across the change
    is irregular)."""
    out, moved, phase_out = onsets.copy(), times.copy(), phases.copy()
    shift, done = 0, 0  # the shift applied from cluster ``done`` on
    for k in range(1, len(times)):
        if phases[k] == phases[k - 1]:
            continue
        delta = int((phases[0] - phases[k]) % length)
        if delta > length // 2:
            delta -= length
        order = sorted(
            range(max(done + 1, k - SLIP_REACH), min(len(times), k + SLIP_REACH + 1)),
            key=lambda j: (abs(j - k), j),
        )
        room = [j for j in order if moved[j] + delta - shift > moved[j - 1]]
        if delta - shift >= 0:
            room = [k]
        if not room:
            continue
        j = room[0]
        out[onsets >= times[j]] += delta - shift
        moved[j:] += delta - shift
        shift, done = delta, j
    for k in range(len(times)):  # the phase each cluster now has
        phase_out[k] = (phases[k] + (moved[k] - times[k])) % length
    return out, moved, _steady(phase_out)


def _steady(phases: np.ndarray) -> np.ndarray:
    """Phases with each cluster that differs from both neighbours' common phase set to it
    (the notes left between a slip and the place it was closed)."""
    out = phases.copy()
    for k in range(1, len(out) - 1):
        if out[k - 1] == out[k + 1] != out[k]:
            out[k] = out[k - 1]
    return out


def bar_lines(
    times: np.ndarray, phases: np.ndarray, length: int, low: int, high: int
) -> np.ndarray:
    """(M + 1,) bar lines in ticks for clusters at ``times`` (C,, sorted) whose downbeat
    phase is ``phases`` (C,), for notes from ``low`` to ``high`` (ticks): the downbeats of
    each stretch of one phase, a pickup measure from ``low`` when it comes before the first
    downbeat, and measures of ``length`` on to past ``high``."""
    changes = np.flatnonzero(np.diff(phases) != 0) + 1
    heads = [0, *changes.tolist()]
    # a stretch owns the time from just after the previous stretch's last onset to its own
    # last onset: a downbeat of the old phase never falls between a slip and its new phase
    ends = [int(times[c - 1]) + 1 for c in changes]
    bounds = [min(low, int(times[0])), *ends, max(high, int(times[-1])) + 1]
    lines: list[int] = []
    for lo, hi, head in zip(bounds[:-1], bounds[1:], heads, strict=True):
        phase = int(phases[head])
        start = phase + -(-(lo - phase) // length) * length  # the first downbeat from lo
        lines.extend(range(start, hi, length))
    if not lines or lines[0] > bounds[0]:
        lines.insert(0, bounds[0])  # a pickup measure
    end = lines[-1] + length
    return np.array([*lines, end], dtype=np.int64)


def rebar(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    barring: Barring,
    lines: np.ndarray,
) -> np.ndarray:
    """``attributes`` (N,) re-barred: ``onsets`` (N,) are the new onsets and ``lines`` the
    bar lines (``bar_lines``), ticks at ``BAR_TICKS_PER_QUARTER``; values are scaled by
    ``barring.scale`` and every note is in its meter. Dropped notes take the measure of the
    kept note before them."""
    out = attributes.copy()
    out["duration_ticks"] = np.rint(attributes["duration_ticks"] * barring.scale).astype(np.int64)
    out["ts_num"], out["ts_den"] = barring.ts_num, barring.ts_den
    assign_measures(out, drop, onsets, lines)
    return out


def assign_measures(
    attributes: np.ndarray, drop: np.ndarray, onsets: np.ndarray, lines: np.ndarray
) -> None:
    """Measure indices (from 0), positions and lengths, in place, of the notes with
    ``onsets`` (N,) between the bar lines ``lines`` (M + 1,) (ticks; every kept onset at or
    after the first line); a dropped note takes the measure of the kept note before it."""
    keep = ~drop
    if not keep.any():
        return
    measure = np.clip(np.searchsorted(lines, onsets, side="right") - 1, 0, len(lines) - 2)
    kept_rows = np.flatnonzero(keep)
    source = kept_rows[
        np.clip(np.searchsorted(kept_rows, np.arange(len(drop)), "right") - 1, 0, None)
    ]
    measure = np.where(keep, measure, measure[source])
    attributes["measure"] = measure - measure[keep].min()
    attributes["measure_length_ticks"] = lines[measure + 1] - lines[measure]
    attributes["position_ticks"] = np.where(keep, onsets - lines[measure], 0)


def apply_barring(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    evidence: Evidence,
    close: bool = True,
    held_cost: float = 0.0,
    **options,
) -> tuple[np.ndarray, np.ndarray, Barring]:
    """(attributes, onsets (N,), the chosen ``Barring``): the decoded notes
    ``attributes``/``drop``/``onsets`` (N,) (ticks at ``BAR_TICKS_PER_QUARTER``) re-barred on
    the candidate ``choose_barring(evidence, **options)`` finds best, its slips closed
    (``close``; otherwise the onsets stay as decoded and each change of phase makes the
    measure across it irregular); a beat gained or lost at a held note (``held_cost`` > 0,
    ``choose_barring``'s) is always closed (``close_held_slips``)."""
    barring, times, phases = choose_barring(evidence, held_cost=held_cost, **options)
    scaled = np.rint(onsets * barring.scale).astype(np.int64)
    keep = ~drop
    if not keep.any():
        return rebar(attributes, drop, scaled, barring, np.zeros(2, np.int64)), scaled, barring
    if not len(times):  # no timed note (grace notes only): one phase from the first onset
        times, phases = scaled[keep][:1], np.zeros(1, np.int64)
    else:
        if held_cost > 0:
            scaled, times, phases = close_held_slips(scaled, times, phases, barring)
        if close:
            scaled, times, phases = close_slips(scaled, times, phases, barring.measure_ticks)
    low, high = int(scaled[keep].min()), int(scaled[keep].max())
    lines = bar_lines(times, phases, barring.measure_ticks, low, high)
    return rebar(attributes, drop, scaled, barring, lines), scaled, barring
