"""How often the decoder repeats its previous onset step, against the ground truth.

For each performance of a split (its first ``--notes`` notes), the notes played more than
``--apart`` seconds after the previous kept note give a sequence of score-time onset steps,
decoded and true (from the (n)ASAP alignment). Reported per performance and on average:
the share of steps equal to the one before (decoded, true) and the share whose ratio to the
one before is the true ratio (the local rhythm right, whatever the value scale). A decoder
that reads the performance repeats about as often as the truth; one that copies itself
repeats more and gets the ratios of varied rhythms wrong.

``--timing-noise S`` asks how much the decoder reads the played timing: every gap between
successive onsets (longer than ``CHORD_SECONDS``; chord notes move together) is multiplied
by exp(S·z), z standard normal, before decoding (the statistics keep the pairs chosen on the
real timing). A decoder that reads the timing loses ratio-right steps as S grows; one that
writes the rhythm from the pitches and its own previous steps does not.

Run: ``.venv/bin/python benchmarks/step_repetition.py --data .cache/prepared --split
validation [--decoding D.json] [--model FOLDER] [--every 1] [--notes 300]
[--timing-noise 0.5]``
"""

from __future__ import annotations

import argparse

import numpy as np

from perf2score.constants import CHORD_SECONDS
from perf2score.data.cache import load_index, load_prepared
from perf2score.midi.reading import Performance
from perf2score.neural.converter import load_neural_model
from perf2score.neural.decode import decode_many, measure_grid
from perf2score.neural.settings import DecodeConfig


def step_statistics(
    decoded: np.ndarray, truth: np.ndarray, onsets: np.ndarray, apart: float
) -> tuple[float, float, float, int] | None:
    """(decoded repeat share, true repeat share, ratio-right share, pairs) of the onset
    steps between consecutive notes played more than ``apart`` seconds apart; ``decoded``,
    ``truth`` (N,) score onsets of kept notes (any unit each), ``onsets`` (N,) seconds.
    None when no pair of steps can be compared."""
    gap = np.diff(onsets)
    played = gap > apart
    d, g = np.diff(decoded)[played], np.diff(truth)[played]
    valid = (d[1:] > 0) & (d[:-1] > 0) & (g[1:] > 0) & (g[:-1] > 0)
    if not valid.any():
        return None
    d_same = d[1:][valid] == d[:-1][valid]
    g_same = g[1:][valid] == g[:-1][valid]
    ratio = np.isclose(d[1:][valid] / d[:-1][valid], g[1:][valid] / g[:-1][valid])
    return float(d_same.mean()), float(g_same.mean()), float(ratio.mean()), int(valid.sum())


def retimed(notes: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``notes`` (sorted by onset) with each gap between successive onsets longer
    than ``CHORD_SECONDS`` multiplied by exp(``noise``·z), z standard normal; durations kept."""
    out = notes.copy()
    if noise <= 0 or len(notes) < 2:
        return out
    gaps = np.diff(notes["onset_sec"])
    stretch = np.where(gaps > CHORD_SECONDS, np.exp(noise * rng.standard_normal(len(gaps))), 1.0)
    onsets = notes["onset_sec"][0] + np.concatenate([[0.0], np.cumsum(gaps * stretch)])
    out["offset_sec"] = onsets + (notes["offset_sec"] - notes["onset_sec"])
    out["onset_sec"] = onsets
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=".cache/prepared")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--model", default=None, help="aligned-model folder (default: shipped)")
    parser.add_argument("--decoding", default=None, help="decoding settings JSON")
    parser.add_argument("--every", type=int, default=1, help="every k-th performance")
    parser.add_argument("--notes", type=int, default=300, help="first notes of each")
    parser.add_argument("--apart", type=float, default=0.1, help="seconds between notes")
    parser.add_argument("--timing-noise", type=float, default=0.0, help="log-scale IOI noise")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    decoding = DecodeConfig.read(args.decoding) if args.decoding else None
    model = load_neural_model(args.model, decoding)  # the heads the decoding asks for
    decoding = model.decoding
    rows = load_index(args.data, args.split, required=True)[:: args.every]
    results = []
    for row in rows:
        prepared = load_prepared(args.data, row["perf_id"])
        n = args.notes
        notes = retimed(prepared.notes[:n], args.timing_noise, rng)
        performance = Performance(notes=notes, pedal=prepared.pedal)
        ids, drop = decode_many(model.network, [performance], decoding)[0]
        decoded = measure_grid(ids, drop)[0]
        keep = np.flatnonzero(~prepared.drop[:n] & ~drop)
        truth = prepared.targets()[:n]["onset_ticks"]
        stats = step_statistics(
            decoded[keep].astype(float),
            truth[keep].astype(float),
            prepared.notes["onset_sec"][:n][keep],
            args.apart,
        )
        if stats is None:
            continue
        results.append(stats)
        print(
            f"{row['perf_id'][:48]:48s} repeats decoded {stats[0]:.2f} true {stats[1]:.2f}"
            f"  ratio right {stats[2]:.2f}  ({stats[3]} pairs)"
        )
    mean = np.mean([r[:3] for r in results], axis=0)
    print(
        f"mean over {len(results)} performances: repeats decoded {mean[0]:.3f}, true"
        f" {mean[1]:.3f}; ratio right {mean[2]:.3f}"
    )


if __name__ == "__main__":
    main()
