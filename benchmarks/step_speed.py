"""The numpy runtime's decoding cost for a batch of windows: the session (encoder pass,
adapter memory, meter and hand heads) and 128 one-note steps, on random tokens.

    .venv/bin/python benchmarks/step_speed.py [--windows 5 11] [--rounds 3]

One math thread, the shipped model; for each batch size prints the best of ``--rounds``
(session ms, steps ms, ms a step) and a checksum of the last logits, so that two versions
of the runtime can be timed side by side (``PYTHONPATH=other/src``) and checked to compute
the same thing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from perf2score.neural.converter import load_neural_model
from perf2score.tokens.spec import FIRST_VALUE, STREAMS

STEPS = 128


def time_batch(network, windows: int, rounds: int) -> tuple[float, float, float]:
    """(best session seconds, best seconds for ``STEPS`` steps, checksum) for ``windows``
    windows of random performance tokens and random previous score tokens."""
    rng = np.random.default_rng(0)
    perf = {
        name: rng.integers(FIRST_VALUE, STREAMS[name].size, (windows, STEPS))
        for name in network.performance.config.input_streams
    }
    padding = np.zeros((windows, STEPS), bool)
    names = [n for n in network.score.config.input_streams if n != "pitch"]
    previous = {n: rng.integers(FIRST_VALUE, FIRST_VALUE + 2, (STEPS, windows)) for n in names}
    best_session = best_steps = float("inf")
    checksum = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        session = network.session(perf, padding, True)
        middle = time.perf_counter()
        for t in range(STEPS):
            logits = session.step({n: v[t] for n, v in previous.items()}, perf["pitch"][:, t], t)
        end = time.perf_counter()
        best_session, best_steps = min(best_session, middle - start), min(best_steps, end - middle)
        checksum = float(sum(np.abs(v).sum() for v in logits.values()))
    return best_session, best_steps, checksum


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, nargs="+", default=[5, 11])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    threadpool_limits(1)
    network = load_neural_model().network
    for windows in args.windows:
        session, steps, checksum = time_batch(network, windows, args.rounds)
        print(
            f"{windows:3d} windows: session {session * 1e3:6.1f} ms, {STEPS} steps"
            f" {steps * 1e3:6.1f} ms ({steps / STEPS * 1e3:.2f} ms a step), checksum {checksum:.4f}"
        )


if __name__ == "__main__":
    main()
