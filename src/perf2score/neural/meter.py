"""The piece's meter and bar lines from the meter head: decoded notes → one grid.

The decoder writes each window's bars from its own start, so bar phases drift and windows
disagree; here the whole piece is re-barred (``perf2score.score.barring``) with the time
signature most notes were decoded in and a downbeat phase tracked from the meter head's
per-note evidence (``perf2score.models.meter_head``), read off the performance alone.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from perf2score.constants import GRID_PER_QUARTER
from perf2score.midi.reading import Performance
from perf2score.neural.settings import DecodeConfig
from perf2score.score.barring import BAR_TICKS_PER_QUARTER, Barring, Evidence, apply_barring

if TYPE_CHECKING:
    from perf2score.models.meter_head import MeterModel

MAX_BATCH_WINDOWS = 64  # windows read side by side at most (memory stays bounded)


def meter_logits(
    model: MeterModel, performance: Performance, window: int = 256, overlap: int = 64
) -> np.ndarray:
    """(N, 2) log-odds that each performed note is on a downbeat and on a beat; windows of
    ``window`` notes overlapping by ``overlap``, each note read from the window where it
    is furthest from an edge."""
    import torch

    from perf2score.tokens.performance import encode_performance
    from perf2score.tokens.spec import PAD

    n = len(performance.notes)
    tokens = encode_performance(performance)
    step = max(window - overlap, 1)
    starts = list(range(0, max(n - overlap, 1), step))
    out = np.zeros((n, 2), dtype=np.float32)
    for first in range(0, len(starts), MAX_BATCH_WINDOWS):
        chunk = starts[first : first + MAX_BATCH_WINDOWS]
        batch = {k: torch.full((len(chunk), window), PAD, dtype=torch.long) for k in tokens}
        padding = torch.ones(len(chunk), window, dtype=torch.bool)
        for b, s in enumerate(chunk):
            e = min(s + window, n)
            for k, ids in tokens.items():
                batch[k][b, : e - s] = torch.from_numpy(ids[s:e])
            padding[b, : e - s] = False
        with torch.no_grad():
            logits = model(batch, padding=padding)
        odds = torch.stack([v[..., 1] - v[..., 0] for v in logits.values()], -1).numpy()
        for b, s in enumerate(chunk):
            e = min(s + window, n)
            keep_from = 0 if s == 0 else overlap // 2
            out[s + keep_from : e] = odds[b, keep_from : e - s]
    return out


def main_signature(attributes: np.ndarray, drop: np.ndarray) -> tuple[int, int]:
    """The time signature most kept notes were decoded in (4/4 when none)."""
    keep = ~drop
    if not keep.any():
        return 4, 4
    pairs = zip(
        attributes["ts_num"][keep].tolist(), attributes["ts_den"][keep].tolist(), strict=True
    )
    return Counter(pairs).most_common(1)[0][0]


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
    if odds is None:
        odds = meter_logits(meter, performance, config.window, config.overlap)
    evidence = Evidence.from_logits(
        fine_onsets[timed], performance.notes["onset_sec"][timed], odds[timed, 0], odds[timed, 1]
    )
    rebarred, new_onsets, barring = apply_barring(
        fine,
        drop,
        fine_onsets,
        evidence,
        change_cost=config.meter_change_cost,
        jump_cost=config.meter_jump_cost,
        close=config.meter_close_slips,
        scales=(1.0,),
        meters=(main_signature(attributes, drop),),
    )
    return rebarred, new_onsets, BAR_TICKS_PER_QUARTER, barring
