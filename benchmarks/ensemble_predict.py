"""Experiment: predict a split with an ensemble of aligned models (not in the package).

Each decoding step takes the mean of the members' log probabilities per score stream; the
first member's performance LM reads the performance for the meter and hand heads (the
members must share the frozen performance LM, as runs of the shipped recipe do). The
package's loader is patched in this process so that ``perf2score predict``'s forked
workers decode with the ensemble; every member makes its own encoder pass and step.

Run: ``.venv/bin/python benchmarks/ensemble_predict.py OUT MEMBER_FOLDER...`` (e.g.
``src/perf2score/weights/adapter ../runs/seed1/checkpoint ../runs/seed2/checkpoint``), then
``perf2score evaluate --data .cache/prepared --split validation --predictions OUT``.
"""

from __future__ import annotations

import argparse

import numpy as np

from perf2score.neural import converter, runtime
from perf2score.neural.runtime import NumpyAligned, NumpySession, log_softmax
from perf2score.predict import predict_split


class EnsembleSession:
    """The members' sessions of one batch; ``step`` gives their mean log probabilities."""

    def __init__(self, sessions: list[NumpySession]):
        self.sessions = sessions
        self.odds, self.steps = sessions[0].odds, sessions[0].steps

    def step(self, previous: dict, pitch: np.ndarray, t: int) -> dict[str, np.ndarray]:
        outs = [session.step(previous, pitch, t) for session in self.sessions]
        return {k: np.mean([log_softmax(out[k]) for out in outs], 0) for k in outs[0]}


class EnsembleAligned(NumpyAligned):
    """Several numpy aligned models decoded as one (the first one's heads and LM)."""

    def __init__(self, members: list[NumpyAligned]):
        first = members[0]
        super().__init__(first.performance, first.score, first.adapters)
        self.performance_folder = first.performance_folder
        self.members = members

    def session(self, perf, padding, want_odds=False, prior=(0.0, ())) -> EnsembleSession:
        head = NumpySession(self, perf, padding, want_odds, prior)
        rest = [NumpySession(m, perf, padding, False, prior) for m in self.members[1:]]
        return EnsembleSession([head, *rest])


def with_heads(model: NumpyAligned, folder) -> NumpyAligned:
    """``runtime.with_meter_head`` for an ensemble too (it copies a plain model otherwise)."""
    plain = runtime.with_meter_head(model, folder)
    if not isinstance(model, EnsembleAligned):
        return plain
    ensemble = EnsembleAligned(model.members)
    ensemble.meter, ensemble.hands, ensemble.steps = plain.meter, plain.hands, plain.steps
    return ensemble


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("members", nargs="+", help="aligned-model folders")
    parser.add_argument("--data", default=".cache/prepared")
    parser.add_argument("--split", default="validation")
    args = parser.parse_args()
    members = [runtime.load_numpy_aligned(folder) for folder in args.members]
    converter.load_numpy_aligned = lambda folder, meter=None: EnsembleAligned(members)
    converter.with_meter_head = with_heads
    result = predict_split(args.data, args.split, args.out, "neural", workers=2, progress=False)
    print(f"{result['notes_per_second']:.0f} notes/s per worker; failures: {result['failures']}")


if __name__ == "__main__":
    main()
