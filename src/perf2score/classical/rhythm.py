"""Beat tracking, meter and quantisation of performed onsets.

1. Onsets within ``CHORD_SECONDS`` of each other form one event (a chord, maybe spread).
2. An onset-strength envelope on a 20 ms grid puts each event's salience (notes, loudness,
   duration, bass weight) at its time. The beat period is the autocorrelation peak of the
   envelope within 0.3–1.3 s, weighted towards 0.6 s (a log-Gaussian prior).
3. Beats by dynamic programming (Ellis 2007): score(t) = envelope(t) +
   max_τ [score(t − τ) − α·log²(τ / period)], τ in [period/2, 2·period]; the best path is
   traced back and each beat snaps to an event within ``APART_SECONDS`` (70 ms).
4. Meter (2, 3 or 4 beats) and downbeat phase maximise the contrast between the salience
   on bar starts (where bass notes and long notes weigh more) and on other beats.
5. Each event's position between its two beats is rounded on the per-beat grid (16ths,
   triplet 8ths, triplet 16ths or 32nds) that fits that beat's events best, with a small
   penalty for finer and ternary grids.
All positions are in ticks at ``GRID_PER_QUARTER`` with a quarter-note beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perf2score.constants import APART_SECONDS, CHORD_SECONDS, GRID_PER_QUARTER

FRAME_SEC = 0.02
PRIOR_PERIOD = 0.6  # seconds: the tempo prior's peak (100 beats per minute)
GRIDS = {4: 0.0, 2: 0.0, 3: 0.004, 6: 0.008, 8: 0.010}  # divisions of a beat: penalty


@dataclass
class Events:
    """Onset events: time (s), salience, and the event index of each note."""

    times: np.ndarray  # (E,)
    salience: np.ndarray  # (E,)
    bass: np.ndarray  # (E,) salience of low and long notes
    of_note: np.ndarray  # (N,)


def onset_events(
    onsets: np.ndarray, offsets: np.ndarray, pitches: np.ndarray, velocities: np.ndarray
) -> Events:
    """Group notes (sorted by onset) into onset events."""
    of_note = np.zeros(len(onsets), dtype=int)
    starts = [0]
    for k in range(1, len(onsets)):
        if onsets[k] - onsets[starts[-1]] > CHORD_SECONDS:
            starts.append(k)
        of_note[k] = len(starts) - 1
    count = len(starts)
    times = np.zeros(count)
    salience = np.zeros(count)
    bass = np.zeros(count)
    duration = np.clip(offsets - onsets, 0.05, 4.0)
    weight = (0.5 + velocities / 127.0) * (1.0 + np.log1p(duration))
    np.add.at(salience, of_note, weight)
    np.add.at(bass, of_note, weight * (pitches < 55) * np.log1p(duration * 2))
    np.add.at(times, of_note, onsets)
    times /= np.bincount(of_note, minlength=count)
    return Events(times, salience, bass, of_note)


def _envelope(events: Events) -> np.ndarray:
    frames = int(np.ceil(events.times.max() / FRAME_SEC)) + 3
    env = np.zeros(frames)
    np.add.at(env, np.rint(events.times / FRAME_SEC).astype(int), events.salience)
    kernel = np.array([0.5, 1.0, 0.5])
    return np.convolve(env, kernel, mode="same")


def beat_period(env: np.ndarray) -> float:
    """Beat period in seconds from the envelope's autocorrelation with a tempo prior; the
    prior's peak (0.6 s) when the envelope is too short or flat to show a period."""
    lo, hi = int(0.3 / FRAME_SEC), int(1.3 / FRAME_SEC)
    centred = env - env.mean()
    spectrum = np.fft.rfft(centred, n=max(2 * len(env), 2 * (hi + 1)))
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[: hi + 1]
    lags = np.arange(lo, hi + 1)
    prior = np.exp(-0.5 * (np.log2(lags * FRAME_SEC / PRIOR_PERIOD) / 0.9) ** 2)
    weighted = acf[lo : hi + 1] * prior
    if len(env) <= lo or not (weighted > 1e-12 * max(float(np.abs(acf).max()), 1e-300)).any():
        return PRIOR_PERIOD
    return float(lags[np.argmax(weighted)] * FRAME_SEC)


def track_beats(events: Events, alpha: float = 8.0) -> np.ndarray:
    """Beat times (s) by dynamic programming over the onset envelope."""
    env = _envelope(events)
    env = env / (env.max() or 1.0)
    period = beat_period(env) / FRAME_SEC
    taus = np.arange(max(1, int(period / 2)), int(period * 2) + 1)
    penalty = -alpha * np.log(taus / period) ** 2
    score = env.copy()
    back = np.full(len(env), -1)
    longest = int(taus[-1])
    for t in range(int(taus[0]), len(env)):
        if t >= longest:
            previous = t - taus
            candidates = score[previous] + penalty
        else:
            valid = taus <= t
            previous = t - taus[valid]
            candidates = score[previous] + penalty[valid]
        best = int(np.argmax(candidates))
        if candidates[best] > 0:
            score[t] = env[t] + candidates[best]
            back[t] = previous[best]
    last_window = max(0, len(env) - int(period) - 1)
    t = last_window + int(np.argmax(score[last_window:]))
    frames = []
    while t >= 0:
        frames.append(t)
        t = back[t]
    beats = np.array(frames[::-1], dtype=float) * FRAME_SEC
    # extend with the period to cover every event, then snap to nearby events
    step = period * FRAME_SEC
    while beats[0] > events.times.min():
        beats = np.insert(beats, 0, beats[0] - step)
    while beats[-1] < events.times.max():
        beats = np.append(beats, beats[-1] + step)
    nearest = np.searchsorted(events.times, beats)
    for k, beat in enumerate(beats):
        for j in (nearest[k] - 1, nearest[k]):
            if 0 <= j < len(events.times) and abs(events.times[j] - beat) < APART_SECONDS:
                beats[k] = events.times[j]
                break
    return np.maximum.accumulate(beats)


def choose_meter(events: Events, beats: np.ndarray) -> tuple[int, int]:
    """(beats per bar, index of the first downbeat) maximising downbeat salience contrast."""
    k = np.clip(np.searchsorted(beats, events.times - APART_SECONDS / 2), 0, len(beats) - 1)
    on_beat = np.abs(beats[k] - events.times) < APART_SECONDS
    strength = np.zeros(len(beats))
    np.add.at(strength, k[on_beat], events.salience[on_beat] + 2.0 * events.bass[on_beat])
    best, best_score = (4, 0), -np.inf
    for meter, prior in ((4, 0.02), (3, 0.0), (2, -0.02)):
        for phase in range(meter):
            downbeats = strength[phase::meter]
            others = np.delete(strength, np.arange(phase, len(strength), meter))
            if len(downbeats) == 0 or len(others) == 0:
                continue
            contrast = downbeats.mean() / (others.mean() + 1e-9) - 1.0
            score = contrast * np.sqrt(meter / 4.0) + prior
            if score > best_score:
                best, best_score = (meter, phase), score
    return best


def beat_fractions(times: np.ndarray, beats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index k of the beat each time (E,) follows, its distance after beat k in beats):
    the times placed between the tracked ``beats`` (s)."""
    k = np.clip(np.searchsorted(beats, times, side="right") - 1, 0, len(beats) - 2)
    spans = beats[k + 1] - beats[k]
    return k, (times - beats[k]) / np.where(spans > 0, spans, 1.0)


def quantize(times: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Ticks (24 per beat) of each time, on the best grid of its beat."""
    k, frac = beat_fractions(times, beats)
    frac = np.clip(frac, -0.5, 1.5)
    ticks = np.zeros(len(times), dtype=np.int64)
    for beat in np.unique(k):
        members = k == beat
        best, best_cost = None, np.inf
        for grid, penalty in GRIDS.items():
            rounded = np.rint(frac[members] * grid) / grid
            cost = float(np.mean((frac[members] - rounded) ** 2)) + penalty
            if cost < best_cost:
                best, best_cost = rounded, cost
        ticks[members] = beat * GRID_PER_QUARTER + np.rint(best * GRID_PER_QUARTER).astype(int)
    return ticks


def events_and_beats(notes: np.ndarray) -> tuple[Events, np.ndarray]:
    """(onset events, beat times (s)) of notes (N,) sorted by onset: steps 1, 2 and 3 of
    the module docstring."""
    events = onset_events(
        notes["onset_sec"],
        notes["offset_sec"],
        notes["pitch"].astype(int),
        notes["velocity"].astype(float),
    )
    return events, track_beats(events)


def tracked_events(notes: np.ndarray) -> tuple[Events, np.ndarray, np.ndarray]:
    """(onset events, beat times (s), each event's onset in ticks (E,)) of notes (N,)
    sorted by onset: steps 1, 2, 3 and 5 of the module docstring."""
    events, beats = events_and_beats(notes)
    return events, beats, quantize(events.times, beats)


def tracked_onsets(notes: np.ndarray) -> tuple[Events, np.ndarray, np.ndarray]:
    """(onset events, beat times (s), each note's onset in ticks (N,)) of notes (N,)
    sorted by onset (``tracked_events``, per note)."""
    events, beats, ticks = tracked_events(notes)
    return events, beats, ticks[events.of_note]


_RESIDUALS: dict[bytes, float] = {}  # the last few performances' residuals (by content)


def grid_residual(performance, probe: int = 512) -> float:
    """Mean distance, in beats, between the played onset events (chords as one, at their
    mean time) of the performance's first ``probe`` notes and the positions ``quantize``
    gives them between the tracked beats: near 0 for metronomic or quantised playing (a
    sequencer's export), 0.012 and more for the human performances of (n)ASAP. NaN for
    fewer than two beats. Notes sorted by onset (as read). Remembered for the last few
    performances (converting asks twice: the backend choice, then the decoder)."""
    notes = performance.notes[:probe]
    key = notes.tobytes()
    if key not in _RESIDUALS:
        if len(_RESIDUALS) >= 8:
            _RESIDUALS.pop(next(iter(_RESIDUALS)))
        _RESIDUALS[key] = _grid_residual(notes)
    return _RESIDUALS[key]


def _grid_residual(notes: np.ndarray) -> float:
    """``grid_residual`` of these notes (N,), sorted by onset."""
    if len(notes) < 2:
        return float("nan")
    events, beats, ticks = tracked_events(notes)  # one quantisation, per event
    if len(beats) < 2:
        return float("nan")
    k, played = beat_fractions(events.times, beats)  # beats after beat k
    written = ticks / GRID_PER_QUARTER - k
    return float(np.mean(np.abs(played - written)))


def played_beats(performance) -> np.ndarray | None:
    """(N,) each note's onset in tracked beats, unquantised (the beat it follows plus its
    fraction of the way to the next; before the first and after the last beat, the
    nearest beat's period carries on), or None with fewer than two tracked beats. Notes
    sorted by onset (as read)."""
    notes = performance.notes
    if len(notes) < 2:
        return None
    beats = events_and_beats(notes)[1]
    if len(beats) < 2:
        return None
    k, fraction = beat_fractions(notes["onset_sec"].astype(np.float64), beats)
    return k + fraction


def beat_clock(performance) -> np.ndarray:
    """(N,) each note's onset in tracked beats (float, a quarter-note beat), the
    performance's rubato taken out (``tracked_onsets``). Notes sorted by onset (as read)."""
    notes = performance.notes
    if len(notes) == 0:
        return np.zeros(0)
    return tracked_onsets(notes)[2] / GRID_PER_QUARTER
