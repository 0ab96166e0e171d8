"""The piece's time signature and notated tempo estimated from the performance.

The decoder picks a meter at each window's first note, where a 4/4 prior wins (it writes
4/4 for 118 of 124 training performances in 3/4), and a value scale that is off by ×2 or
×½ on a quarter of the validation performances. Here the bar tracker
(``perf2score.neural.downbeats``) follows the played onsets in bars of 2, 3 and 4 beats:
when bars of three explain the meter head's downbeat evidence better than the best duple
bars by more than ``triple_margin`` nats a minute and the decoder wrote a duple meter, the
piece is in 3/4 and the tracked beat rate is its notated tempo, which sets the value scale
(``neural.meter.hinted_scale``): the decoder's values were decoded in a meter it did not
hear. The other way round, when the decoder wrote a triple meter and the best duple bars
lead bars of three by more than ``duple_margin`` nats a minute, the piece takes the duple
meter the decoder wrote most (4/4 when it wrote none), at the decoder's value scale.
Otherwise the decoder's meter and value scale stand (the tracker is no better judge of 2
against 4 beats a bar, and its beat is twice the notated one on a quarter of the
validation performances, where the decoder's scale is right on three quarters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perf2score.neural.downbeats import Tracked, track_bars_each
from perf2score.score.meter import beat_quarters, meter_levels

DUPLE, TRIPLE = (2, 4), 3  # beats per bar compared
# frames a second of the tracking (the downbeat tracker's 50 halved: 0.17 s of one core for
# a training performance instead of 0.9 s; on validation its triple verdicts at a margin of
# 1 nat a minute: 5 of 5 triple performances, none of 81 others (at 50: 4 and 2); on every
# 4th training performance 11 of 35 and 17 of 165 (at 50: 13 and 20))
ESTIMATE_FPS = 25


@dataclass(frozen=True)
class MeterEstimate:
    """``signature`` (numerator, denominator), ``tempo`` in notated quarters per minute
    (0.0: none, the decoded value scale stands) and ``triple_lead``: nats a minute by which
    bars of three beats beat the best duple bars (negative: duple won; 0.0: not tracked)."""

    signature: tuple[int, int]
    tempo: float
    triple_lead: float


def estimate_meter(
    seconds: np.ndarray,
    odds: np.ndarray,
    decoded: tuple[int, int],
    triple_margin: float,
    triple_tempo: bool = False,
    duple_margin: float = -1.0,
    duple: tuple[int, int] = (4, 4),
) -> MeterEstimate:
    """The meter of the onsets ``seconds`` (N,) from the meter head's log-odds ``odds``
    (N, 2) (downbeat, beat): 3/4 at the tracked tempo when bars of three lead by more than
    ``triple_margin`` nats a minute and the decoder's signature ``decoded`` is not triple;
    for a triple ``decoded``, the duple signature ``duple`` (the one the decoder wrote most)
    with no tempo when the best duple bars lead by more than ``duple_margin`` nats a minute
    (negative: never, as ``DecodeConfig.duple_margin``), else ``decoded`` with the tempo
    tracked in it when ``triple_tempo`` (the value scale from the tracked beat, as for a
    triple meter the tracker found); else ``decoded`` with no tempo (0.0: the decoder's
    value scale)."""
    seconds = np.asarray(seconds, dtype=np.float64)
    if len(seconds) < 2:
        return MeterEstimate(decoded, 0.0, 0.0)
    triple = meter_levels(*decoded)[0] == TRIPLE
    if triple and duple_margin < 0:
        tempo = tracked_tempo(seconds, odds, decoded) if triple_tempo else 0.0
        return MeterEstimate(decoded, tempo, 0.0)
    minutes = max(float(np.ptp(seconds)) / 60.0, 1.0 / 60.0)
    tracked = track_bars_each(seconds, odds, (*DUPLE, TRIPLE), fps=ESTIMATE_FPS)
    best_duple = max(tracked[beats].log_likelihood for beats in DUPLE)
    lead = (tracked[TRIPLE].log_likelihood - best_duple) / minutes
    if triple:
        if lead < -duple_margin:
            return MeterEstimate(duple, 0.0, lead)
        tempo = tracked_tempo(seconds, odds, decoded, tracked) if triple_tempo else 0.0
        return MeterEstimate(decoded, tempo, lead)
    if lead > triple_margin:
        return MeterEstimate((3, 4), tracked_tempo(seconds, odds, (3, 4), tracked), lead)
    return MeterEstimate(decoded, 0.0, lead)


def tracked_tempo(
    seconds: np.ndarray,
    odds: np.ndarray,
    signature: tuple[int, int],
    tracked: dict[int, Tracked] | None = None,
) -> float:
    """Notated quarters per minute of the onsets ``seconds`` (N,) in ``signature``: the
    tracker's median beat rate in bars of its beats (``tracked``: paths already run, by
    beats per bar) times its beat in quarters (0.0 when no beats were found)."""
    beats_per_bar = meter_levels(*signature)[0]
    path = (tracked or {}).get(beats_per_bar)
    if path is None:
        path = track_bars_each(seconds, odds, (beats_per_bar,), fps=ESTIMATE_FPS)[beats_per_bar]
    return path.beats_per_minute * float(beat_quarters(*signature))
