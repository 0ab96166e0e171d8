"""The piece's meter and bar lines from the meter head: decoded notes → one grid.

The decoder writes each window's bars from its own start, so bar phases drift and windows
disagree; here the whole piece is re-barred (``perf2score.score.barring``) with the time
signature most notes were decoded in and a downbeat phase tracked from the meter head's
per-note evidence (``perf2score.models.meter_head``), read off the performance alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from perf2score.constants import GRID_PER_QUARTER
from perf2score.midi.reading import Performance
from perf2score.neural.downbeats import nudged_odds, sigmoid, track_downbeats
from perf2score.neural.hands import answers
from perf2score.neural.meter_estimate import TRIPLE, estimate_meter
from perf2score.neural.segment_scale import STATE_SETS, rescale_segments
from perf2score.neural.settings import DecodeConfig
from perf2score.neural.tracked_bars import regular_bars
from perf2score.score.assembly import average_tempo
from perf2score.score.barring import (
    BAR_TICKS_PER_QUARTER,
    SCALES,
    Barring,
    Evidence,
    apply_barring,
)
from perf2score.score.meter import meter_levels

if TYPE_CHECKING:
    from perf2score.models.meter_head import MeterModel
    from perf2score.neural.runtime import NumpyMeter


def windowed_odds(
    read: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray],
    questions: int,
    performance: Performance,
    window: int,
    overlap: int,
) -> np.ndarray:
    """(N, ``questions``) per-note log-odds of a head read in the decoder's windows
    (``neural.decode.windows``, each note from the window that keeps it): ``read`` maps a
    batch of performance ids (B, T) per stream and its padding (B, T) to log-odds (B, T, Q)."""
    from perf2score.neural.decode import MAX_BATCH_WINDOWS, kept_from, windows
    from perf2score.tokens.performance import encode_performance
    from perf2score.tokens.spec import PAD

    n = len(performance.notes)
    tokens = encode_performance(performance)
    spans = windows(n, window, overlap)
    out = np.zeros((n, questions), dtype=np.float32)
    for first in range(0, len(spans), MAX_BATCH_WINDOWS):
        chunk = spans[first : first + MAX_BATCH_WINDOWS]
        size = max(e - s for s, e in chunk)
        batch = {k: np.full((len(chunk), size), PAD, dtype=np.int64) for k in tokens}
        padding = np.ones((len(chunk), size), dtype=bool)
        for b, (s, e) in enumerate(chunk):
            for k, ids in tokens.items():
                batch[k][b, : e - s] = ids[s:e]
            padding[b, : e - s] = False
        odds = read(batch, padding)  # (B, size, Q)
        for b, (s, e) in enumerate(chunk):
            keep = kept_from(s, overlap)
            out[keep:e] = odds[b, keep - s : e - s]
    return out


def meter_logits(
    model: MeterModel, performance: Performance, window: int = 256, overlap: int = 64
) -> np.ndarray:
    """(N, Q) log-odds of yes to each of the torch head's questions (the meter head: on a
    downbeat, on a beat) per performed note, read in the decoder's windows
    (``windowed_odds``); for a head that does not read the decoder's own performance LM
    (the decoder hands the others its states, ``decode_many(..., meter, odds)``)."""
    import torch

    def read(batch: dict[str, np.ndarray], padding: np.ndarray) -> np.ndarray:
        ids = {k: torch.from_numpy(v) for k, v in batch.items()}
        with torch.no_grad():
            _, states = model.performance(ids, padding=torch.from_numpy(padding))
            return model.odds(states).numpy()

    return windowed_odds(read, len(model.config.questions), performance, window, overlap)


def head_odds(
    meter: MeterModel | NumpyMeter, performance: Performance, window: int, overlap: int
) -> np.ndarray:
    """(N, Q) per-note log-odds of a head that is not read in the decoder's encoder pass:
    a numpy head with its own performance LM, or a torch head (``meter_logits``)."""
    from perf2score.neural.runtime import NumpyMeter

    if isinstance(meter, NumpyMeter):
        return windowed_odds(meter.read, len(meter.questions), performance, window, overlap)
    return meter_logits(meter, performance, window, overlap)


def signature_counts(attributes: np.ndarray, drop: np.ndarray) -> Counter:
    """How many kept notes were decoded in each time signature (numerator, denominator)."""
    keep = ~drop
    return Counter(
        zip(attributes["ts_num"][keep].tolist(), attributes["ts_den"][keep].tolist(), strict=True)
    )


def commonest_signature(counts: Counter, duple: bool = False) -> tuple[int, int]:
    """The signature of ``counts`` (``signature_counts``) with the most notes (4/4 when
    none); ``duple``: the one among those with two or four beats a bar."""
    for pair, _ in counts.most_common():
        if not duple or meter_levels(*pair)[0] != TRIPLE:
            return pair
    return 4, 4


def main_signature(
    attributes: np.ndarray, drop: np.ndarray, duple: bool = False
) -> tuple[int, int]:
    """The time signature most kept notes were decoded in (4/4 when none); ``duple``: the
    one among those with two or four beats a bar."""
    return commonest_signature(signature_counts(attributes, drop), duple)


def triple_tempo(decoded: tuple[int, int], performance: Performance, config: DecodeConfig) -> bool:
    """Whether a triple meter the decoder wrote (``decoded``) takes its value scale from the
    tracked beat: ``config.triple_tempo``, and with ``triple_tempo_steady_only`` only for a
    performance on the steady path (``neural.decode.on_steady_path``; checked only for a
    triple ``decoded``)."""
    if not config.triple_tempo or meter_levels(*decoded)[0] != TRIPLE:
        return False
    if not config.triple_tempo_steady_only:
        return True
    from perf2score.neural.decode import on_steady_path

    return on_steady_path(performance, config)


def piece_barring(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    performance: Performance,
    meter: MeterModel,
    config: DecodeConfig,
    odds: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int, Barring]:
    """(attributes, onsets (N,), ticks per quarter, the barring): the decoded notes
    (``attributes``/``drop``/``onsets`` (N,) at ``GRID_PER_QUARTER``) re-barred in their
    main time signature with the bar phase tracked from the meter head's evidence
    (``odds`` (N, 2) when the decoder computed it, else ``meter_logits``)."""
    factor = BAR_TICKS_PER_QUARTER // GRID_PER_QUARTER
    fine = attributes.copy()
    for name in ("position_ticks", "duration_ticks", "measure_length_ticks"):
        fine[name] = attributes[name] * factor
    fine_onsets = onsets * factor
    timed = ~drop & ~attributes["is_grace"]
    if config.segment_scale_cost > 0:
        fine_onsets, fine["duration_ticks"] = rescaled_stretches(
            fine_onsets, fine, drop, performance, config
        )
    if odds is None:
        asked = answers(meter)  # a head may ask more (the rest question): its two columns
        read = head_odds(meter, performance, config.window, config.overlap)
        odds = read[:, [asked.index("downbeat"), asked.index("beat")]]
    seconds = performance.notes["onset_sec"][timed]
    counts = signature_counts(attributes, drop)
    decoded = commonest_signature(counts)
    signature, tempo = config.meter_given(), config.tempo
    estimating = config.meter_estimate == "tracked" and timed.sum() >= 2
    if estimating and (signature is None or tempo <= 0):
        estimate = estimate_meter(
            seconds,
            odds[timed],
            decoded,
            config.triple_margin,
            triple_tempo(decoded, performance, config),
            config.duple_margin,
            commonest_signature(counts, duple=True),
        )
        if signature is None:
            signature, tempo = estimate.signature, tempo or estimate.tempo
        elif estimate.signature == signature:  # the given meter heard: its tracked tempo
            tempo = estimate.tempo
    signature = signature or decoded
    evidence_odds = odds[timed]
    tracking = (config.downbeat_tracking > 0 or config.tracked_bars) and timed.sum() >= 2
    if tracking:  # once, for either use
        downbeats, beats = track_downbeats(seconds, odds[timed], meter_levels(*signature)[0])
    if tracking and config.downbeat_tracking > 0:
        evidence_odds = nudged_odds(
            seconds, evidence_odds, downbeats, beats, strength=config.downbeat_tracking
        )
    if config.meter_length_weight > 0:
        evidence_odds = evidence_odds.copy()
        played = performance.notes["offset_sec"][timed] - seconds
        evidence_odds[:, 0] += config.meter_length_weight * length_accent(
            fine_onsets[timed], played
        )
    if config.meter_relative:
        evidence_odds = relative_odds(evidence_odds)
    evidence = Evidence.from_logits(
        fine_onsets[timed], seconds, evidence_odds[:, 0], evidence_odds[:, 1]
    )
    rebarred, new_onsets, barring = apply_barring(
        fine,
        drop,
        fine_onsets,
        evidence,
        change_cost=config.meter_change_cost,
        jump_cost=config.meter_jump_cost,
        empty_cost=config.meter_empty_downbeat_cost,
        pickup_cost=config.meter_pickup_cost,
        held_cost=config.meter_held_cost,
        beat_weight=config.meter_beat_weight,
        close=config.meter_close_slips,
        scales=(hinted_scale(tempo, fine_onsets[timed] / BAR_TICKS_PER_QUARTER, seconds),),
        meters=(signature,),
    )
    if tracking and config.tracked_bars:
        regular = regular_bars(
            fine, drop, fine_onsets, performance.notes["onset_sec"], downbeats, signature
        )
        if regular is not None:
            rebarred, new_onsets = regular
    return rebarred, new_onsets, BAR_TICKS_PER_QUARTER, barring


def rescaled_stretches(
    onsets: np.ndarray,
    attributes: np.ndarray,
    drop: np.ndarray,
    performance: Performance,
    config: DecodeConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """(onsets (N,), durations (N,)) in ticks with the stretches the decoder wrote at
    another scale than the piece's rewritten at its scale (``neural.segment_scale``, as
    ``config.segment_scale_*`` say): ``onsets`` (N,) and ``attributes``' durations in
    ticks fine enough to take a half or a third of a 16th."""
    clock = None
    if config.segment_scale_clock == "beats":
        from perf2score.classical.rhythm import played_beats

        clock = played_beats(performance)
        if clock is None:
            return onsets, attributes["duration_ticks"]
    new_onsets, durations, _ = rescale_segments(
        onsets,
        attributes["duration_ticks"],
        performance.notes["onset_sec"],
        ~drop & ~attributes["is_grace"],
        ~drop,
        config.apart_seconds,
        config.segment_scale_cost,
        STATE_SETS[config.segment_scale_states],
        clock,
    )
    return new_onsets, durations


LENGTH_ACCENT_CAP = 2.0  # doublings of the played length over the median that count


def length_accent(onsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(K,) per note: log2 of the longest played length (seconds) among the notes of its
    decoded onset ``onsets`` (K,) over the median of those longest lengths across the
    piece's onsets, clipped to [0, ``LENGTH_ACCENT_CAP``]: how much a long note marks the
    onset as the start of a bar."""
    onsets = np.asarray(onsets)
    if not len(onsets):
        return np.zeros(0)
    _, inverse = np.unique(onsets, return_inverse=True)
    longest = np.zeros(int(inverse.max()) + 1)
    np.maximum.at(longest, inverse, np.asarray(lengths, dtype=np.float64))
    median = float(np.median(longest))
    if median <= 0:
        return np.zeros(len(onsets))
    ratio = np.log2(np.maximum(longest, 1e-6) / median)
    return np.clip(ratio, 0.0, LENGTH_ACCENT_CAP)[inverse]


def relative_odds(odds: np.ndarray) -> np.ndarray:
    """Log-odds (N, Q) shifted per column by minus the log-odds of their mean probability:
    a note scores for "yes" when the head finds it likelier than the piece's average note,
    so a head that finds every note unlikely (out of its training style) still ranks them
    (a phase's notes on downbeats then outweigh phases that fall between notes)."""
    odds = np.asarray(odds, dtype=np.float64)
    if not len(odds):
        return odds.astype(np.float32)
    mean = np.clip(sigmoid(odds).mean(0), 1e-6, 1 - 1e-6)  # (Q,)
    return (odds - np.log(mean / (1.0 - mean))).astype(np.float32)


def hinted_scale(tempo: float, quarters: np.ndarray, seconds: np.ndarray) -> float:
    """The scale among ``SCALES`` (×½, ×1, ×2: halving keeps the 1/24-quarter grid integral
    at ``BAR_TICKS_PER_QUARTER``) that brings the decoded tempo nearest ``tempo`` (notated
    quarters per minute; 0: no tempo given, 1.0); ``quarters``/``seconds`` (K,) are the
    decoded and performed onsets of the timed notes."""
    if tempo <= 0:
        return 1.0
    decoded = average_tempo(quarters, seconds)
    return min(SCALES, key=lambda scale: abs(np.log2(tempo / (decoded * scale))))
