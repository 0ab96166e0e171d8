"""Where one decoding step's time goes: each operation of one score-LM block, timed alone.

    .venv/bin/python benchmarks/step_parts.py [--rows 52 104] [--beam 4] [--note 64]

One math thread, the shipped model's weights (its first score block and first adapter),
random inputs and a KV cache of random floats. For each row count (windows × beam
hypotheses, the rows a step decodes side by side) prints the median microseconds of each
operation over ``--repeats`` calls and its share of the block (the output heads once per
step, shown apart). A step runs the block's operations once per score layer.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from perf2score.neural.converter import load_neural_model
from perf2score.neural.runtime import attend, gelu, layer_norm, padding_bias
from perf2score.tokens.spec import FIRST_VALUE, STREAMS


def timed(function: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``function`` (after one warm-up call)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def block_parts(network, rows: int, beam: int, note: int) -> dict[str, Callable[[], object]]:
    """The operations of one step of the first score block (and the output heads) for
    ``rows`` rows, ``rows // beam`` windows of 128 performed notes, at note ``note``."""
    score, adapter = network.score, network.adapters[0]
    block = score.blocks[0]
    windows = max(1, rows // beam)
    rows = windows * beam
    rng = np.random.default_rng(0)
    H, D, C, T = score.config.n_heads, score.head_dim, score.config.d_model, 128
    perf = {
        name: rng.integers(FIRST_VALUE, STREAMS[name].size, (windows, T))
        for name in network.performance.config.input_streams
    }
    padding = np.zeros((windows, T), bool)
    memory = adapter.memory(network.performance.encode(perf, padding))
    bias = padding_bias(padding)
    x = rng.standard_normal((rows, C), dtype=np.float32)
    keys = rng.standard_normal((rows, H, D, T), dtype=np.float32)
    values = rng.standard_normal((rows, H, T, D), dtype=np.float32)
    q = rng.standard_normal((rows, H, 1, D), dtype=np.float32)
    hidden = rng.standard_normal((rows, block.ff_in[0].shape[1]), dtype=np.float32)
    filled = note + 1
    return {
        "layer norm (one of three)": lambda: layer_norm(x, *block.norm1),
        "q/k/v product": lambda: x @ block.step_qkv,
        "attention over the KV cache": lambda: attend(
            q, keys[..., :filled], values[:, :, :filled], None, scaled=True
        ),
        "attention output product": lambda: x @ block.out,
        "adapter (cross-attention)": lambda: adapter(x, note, memory, bias, beam),
        "feed-forward in": lambda: x @ block.ff_in[0] + block.ff_in[1],
        "GELU": lambda: gelu(hidden),
        "feed-forward out": lambda: hidden @ block.ff_out[0] + block.ff_out[1],
        "output heads (once a step)": lambda: layer_norm(x, *score.norm) @ score.head_weight,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[52, 104])
    parser.add_argument("--beam", type=int, default=4, help="hypotheses per window")
    parser.add_argument("--note", type=int, default=64, help="the step's note in its window")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    threadpool_limits(1)
    network = load_neural_model().network
    for rows in args.rows:
        parts = block_parts(network, rows, args.beam, args.note)
        micro = {name: timed(call, args.repeats) * 1e6 for name, call in parts.items()}
        heads = micro.pop("output heads (once a step)")
        block = sum(micro.values()) + 2 * micro["layer norm (one of three)"]  # three norms
        print(f"{rows} rows ({args.beam} hypotheses a window), note {args.note}:")
        for name, us in micro.items():
            print(f"  {name:30s} {us:8.1f} us  {us / block:6.1%}")
        print(f"  {'one block':30s} {block:8.1f} us")
        print(f"  {'output heads (once a step)':30s} {heads:8.1f} us")


if __name__ == "__main__":
    main()
