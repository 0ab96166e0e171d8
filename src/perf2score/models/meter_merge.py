"""Two per-note heads on the same performance LM merged into one head that answers the
first head's questions exactly as it does and adds some of the second's: so that a new
question (the rest after a note, ``data.rests``) joins the shipped meter head without
retraining the answers it already gives.

Each head is ``LayerNorm -> Linear -> GELU -> Dropout -> Linear`` (``MeterModel.head``).
A LayerNorm's gain and bias fold into the Linear after it (``W (g * n + b) + c = (W g) n +
(W b + c)``), so the merged head normalises without an affine map, stacks both heads'
folded first layers (hidden ``h1 + h2``) and gives each output the rows of its own head
(zeros over the other's hidden units). Equal to the two heads up to float rounding; saved
in fp32 so that the folding adds no fp16 rounding of its own.

    .venv/bin/python -m perf2score.models.meter_merge FIRST SECOND OUT --take rest_after
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from perf2score.models.meter_head import MeterModel, load_meter, save_meter


def _folded(model: MeterModel) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's first Linear with its LayerNorm's gain and bias folded in: (W, c)."""
    norm, linear = model.head[0], model.head[1]
    weight = linear.weight.detach().double() * norm.weight.detach().double()[None, :]
    bias = linear.weight.detach().double() @ norm.bias.detach().double() + linear.bias.double()
    return weight, bias


def merged_heads(first: MeterModel, second: MeterModel, take: tuple[str, ...]) -> MeterModel:
    """A head on ``first``'s performance LM answering ``first``'s questions as ``first``
    does, then the questions ``take`` of ``second`` as ``second`` does (both heads must
    read the same LM: the caller checks, e.g. by ``meter.json``'s digest)."""
    questions_a, questions_b = first.config.questions, second.config.questions
    missing = [q for q in take if q not in questions_b or q in questions_a]
    if missing or not take:
        raise ValueError(
            f"cannot take {missing or 'nothing'}: a question the second head asks "
            f"{questions_b} and the first does not {questions_a}"
        )
    if first.config.tune_performance or second.config.tune_performance:
        raise ValueError("only heads on a shared, frozen performance LM can be merged")
    config = replace(
        first.config,
        hidden=first.config.hidden + second.config.hidden,
        questions=questions_a + tuple(take),
        loss_weights=(),
    )
    merged = MeterModel(first.performance, config)
    (w_a, c_a), (w_b, c_b) = _folded(first), _folded(second)
    out_a, out_b = first.head[4], second.head[4]
    h_a = first.config.hidden
    weight = torch.zeros(2 * len(config.questions), config.hidden, dtype=torch.float64)
    bias = torch.zeros(2 * len(config.questions), dtype=torch.float64)
    weight[: 2 * len(questions_a), :h_a] = out_a.weight.detach().double()
    bias[: 2 * len(questions_a)] = out_a.bias.detach().double()
    for k, question in enumerate(take):
        row, source = 2 * (len(questions_a) + k), 2 * questions_b.index(question)
        weight[row : row + 2, h_a:] = out_b.weight.detach().double()[source : source + 2]
        bias[row : row + 2] = out_b.bias.detach().double()[source : source + 2]
    with torch.no_grad():
        merged.head[0].weight.fill_(1.0)
        merged.head[0].bias.zero_()
        merged.head[1].weight.copy_(torch.cat([w_a, w_b]).float())
        merged.head[1].bias.copy_(torch.cat([c_a, c_b]).float())
        merged.head[4].weight.copy_(weight.float())
        merged.head[4].bias.copy_(bias.float())
    return merged.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path, help="head folder whose answers are kept")
    parser.add_argument("second", type=Path, help="head folder the questions are taken from")
    parser.add_argument("out", type=Path)
    parser.add_argument("--take", nargs="+", required=True, help="questions of SECOND")
    args = parser.parse_args()
    import json

    from perf2score.errors import Perf2ScoreError

    try:
        bases = [json.loads((f / "meter.json").read_text()) for f in (args.first, args.second)]
        if bases[0]["performance_digest"] != bases[1]["performance_digest"]:
            raise ValueError("the two heads read different performance LMs")
        first, second = load_meter(args.first), load_meter(args.second)
        merged = merged_heads(first, second, tuple(args.take))
    except (OSError, KeyError, ValueError, Perf2ScoreError) as exc:  # one line, exit 1
        raise SystemExit(f"meter_merge: {exc}") from None
    save_meter(merged, args.out, (args.first / bases[0]["base"]).resolve())
    print(f"{args.out}: {merged.config.questions}, hidden {merged.config.hidden}")


if __name__ == "__main__":
    main()
