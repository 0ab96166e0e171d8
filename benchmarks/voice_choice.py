"""Train and measure the learned choice of second voices (``perf2score.neural.voice_choice``).

``extract`` decodes each performance of a split with the shipped model (the decodings before
the bar lines are cached, as ``benchmarks/rebar.py`` caches them), settles it as a
conversion does up to the voices (bar lines, spelling, values, staves) and stores per
performance what the voice chooser reads: the notes, the hand head's second-voice log-odds
and the rule's voices (``neural.converter.rule_voices``). ``train`` fits the chooser on the
training split's notes and keeps the epoch with the fewest voice errors on the validation
split's; ``report`` prints, per split, the voice errors of the rule, of the chooser at
several biases, and of the ground truth's voice labels on the same staves (the most a
choice of first and second voices can give). Features and labels are recomputed from the
stored notes, so a new feature needs no new decoding.

The label of a note: in a second voice when the ground truth writes it in another voice
than the commonest of its staff in its measure; notes on another staff than the ground
truth's teach nothing. The voice errors are the evaluator's rule (a matched note whose
voice successors differ, ``evaluate.muster``) through the known note correspondence of the
prepared data instead of the evaluator's matching, on the voices as settled (the score
writer may still split a voice where its values differ), pooled over the split's notes.

    python benchmarks/voice_choice.py extract --split train --cache ../runs/decoded-bars/train \\
        --out ../runs/voice-inputs/train [--part 0 --parts 2]
    python benchmarks/voice_choice.py extract --split validation \\
        --cache ../runs/decoded-bars/validation --out ../runs/voice-inputs/validation
    python benchmarks/voice_choice.py train --train ../runs/voice-inputs/train \\
        --validation ../runs/voice-inputs/validation --out src/perf2score/weights/voice_choice
    python benchmarks/voice_choice.py report --inputs ../runs/voice-inputs/validation \\
        --chooser src/perf2score/weights/voice_choice

For a model of one's own: ``extract --model RUN/best`` (with a cache folder of its own), then
``train --out RUN/best``: a model folder that holds a voice chooser decodes with it (else
with the shipped one) when its ``decoding.json`` says ``"voice_choice": true``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perf2score.data.cache import atomic_save_npz, load_index, load_prepared
from perf2score.neural.hands import second_voices
from perf2score.neural.voice_choice import (
    FEATURES,
    VoiceChooser,
    load_voice_chooser,
    voice_features,
)


def extract(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from rebar import barred_decoding

    from perf2score.midi import Performance
    from perf2score.neural.converter import (
        finish_attributes,
        load_neural_model,
        model_folder,
        rule_voices,
    )
    from perf2score.neural.settings import DecodeConfig

    shipped = DecodeConfig.read(model_folder(args.model))
    loading = replace(shipped, value_choice=False, voice_choice=False)  # none needed here
    model = load_neural_model(args.model, decoding=loading)
    # settled up to the voices: "head" leaves the decoder's voices (the rule comes after)
    config = replace(loading, voices="head")
    model = replace(model, decoding=config)
    rows = load_index(args.data, args.split, required=True)[args.part :: args.parts]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for row in rows:
        perf_id = row["perf_id"]
        path = out / f"{perf_id.replace('/', '__')}.npz"
        if path.is_file():
            continue
        prepared = load_prepared(args.data, perf_id)
        performance = Performance(prepared.notes, prepared.pedal, source=perf_id)
        attributes, drop, onsets, tpq = barred_decoding(
            model, Path(args.cache), perf_id, performance
        )
        odds: dict[str, np.ndarray] = {}
        finish_attributes(attributes, drop, onsets, tpq, performance, model, odds)
        voices, head = rule_voices(attributes, drop, onsets, performance, model, odds)
        notes = performance.notes
        atomic_save_npz(
            path,
            perf_id=np.array(perf_id),
            attributes=attributes,
            voice_now=voices,
            odds=head.astype(np.float32),
            drop=drop,
            onsets=onsets.astype(np.int64),
            tpq=np.array(tpq),
            onset_sec=notes["onset_sec"],
            release_sec=notes["offset_sec"],
            velocity=notes["velocity"],
        )
        print(perf_id, int((~drop).sum()), flush=True)


def features_of(inputs: dict[str, np.ndarray]) -> np.ndarray:
    """``voice_features`` of one performance's stored inputs (``extract``)."""
    return voice_features(
        inputs["attributes"],
        ~inputs["drop"],
        inputs["onsets"],
        int(inputs["tpq"]),
        inputs["onset_sec"],
        inputs["release_sec"],
        inputs["velocity"],
        inputs["odds"],
        inputs["voice_now"],
    )


def voice_labels(prepared, attributes: np.ndarray, drop: np.ndarray) -> tuple[np.ndarray, ...]:
    """(matched (N,), usable (N,), second (N,)): the kept notes with a timed ground-truth
    partner, those of them on the ground truth's staff, and whether the ground truth
    writes each in another voice than the commonest of its staff in its measure."""
    targets = prepared.targets()
    matched = ~prepared.drop & ~drop & ~targets["is_grace"] & ~attributes["is_grace"]
    staff = targets["staff"].astype(np.int64)
    voice = targets["voice"].astype(np.int64)
    index = np.flatnonzero(matched)
    second = np.zeros(len(attributes), bool)
    if len(index):
        place = staff[index] * 100_000 + targets["measure"][index].astype(np.int64)
        pairs, counts = np.unique(np.stack([place, voice[index]], 1), axis=0, return_counts=True)
        # per staff-measure, the voice with the most notes (the first such on a tie)
        order = np.lexsort((-counts, pairs[:, 0]))
        ranked = pairs[order]
        first = np.r_[True, ranked[1:, 0] != ranked[:-1, 0]]
        main = dict(zip(ranked[first, 0].tolist(), ranked[first, 1].tolist(), strict=True))
        wanted = np.array([main[k] for k in place.tolist()])
        second[index] = voice[index] != wanted
    usable = matched & (attributes["staff"].astype(np.int64) == staff)
    return matched, usable, second


def successors(keys: np.ndarray, onsets: np.ndarray) -> list[frozenset]:
    """Per note (M,): the notes (positions) of the same ``keys`` voice at that voice's next
    onset (``onsets`` (M,)); empty for a voice's last onset."""
    out: list[frozenset] = [frozenset()] * len(keys)
    order = np.lexsort((onsets, keys))
    k, o = keys[order], onsets[order]
    bounds = np.flatnonzero(np.r_[True, (k[1:] != k[:-1]) | (o[1:] != o[:-1]), True])
    groups = [order[a:b] for a, b in itertools.pairwise(bounds)]
    for here, after in itertools.pairwise(groups):
        if keys[here[0]] != keys[after[0]]:
            continue
        following = frozenset(after.tolist())
        for position in here.tolist():
            out[position] = following
    return out


def voice_error_count(piece: dict[str, np.ndarray], voices: np.ndarray) -> int:
    """Matched notes of ``piece`` (``load_inputs``) whose voice successors under ``voices``
    (N,) (on their staves as settled) differ from the ground truth's."""
    index = np.flatnonzero(piece["matched"])
    ours = piece["staff"][index] * 10 + voices[index]
    mine = successors(ours, piece["onsets"][index])
    theirs = successors(piece["truth_voice"][index], piece["truth_onsets"][index])
    return sum(a != b for a, b in zip(mine, theirs, strict=True))


def load_inputs(
    folder: str, data: str, limit: int | None = None, every: int = 1
) -> list[dict[str, np.ndarray]]:
    """The stored inputs (``inputs``) of every ``every``-th performance in ``folder``, the
    first ``limit`` of them, with their features and labels."""
    pieces = []
    for path in sorted(Path(folder).glob("*.npz"))[::every][:limit]:
        with np.load(path) as stored:
            inputs = {name: stored[name] for name in stored.files}
        perf_id = str(inputs.get("perf_id", path.stem.replace("__", "/")))
        prepared = load_prepared(data, perf_id)
        attributes, drop = inputs["attributes"], inputs["drop"]
        matched, usable, second = voice_labels(prepared, attributes, drop)
        targets = prepared.targets()
        pieces.append(
            {
                "perf_id": perf_id,
                "inputs": inputs,
                "features": features_of(inputs),
                "matched": matched,
                "usable": usable,
                "second": second,
                "rule": inputs["voice_now"].astype(np.int64),
                "keep": ~drop,
                "attributes": attributes,
                "staff": attributes["staff"].astype(np.int64),
                "onsets": inputs["onsets"],
                "truth_voice": targets["voice"].astype(np.int64),
                "truth_onsets": targets["onset_ticks"].astype(np.int64),
            }
        )
    return pieces


def pooled_errors(pieces, voices_of) -> float:
    """Voice errors in % of the matched notes of ``pieces``, pooled, with the voices
    ``voices_of(piece)`` (N,)."""
    errors = sum(voice_error_count(p, voices_of(p)) for p in pieces)
    return 100 * errors / max(1, sum(int(p["matched"].sum()) for p in pieces))


def chooser_voices(chooser: VoiceChooser, bias: float = 0.0, continuity: float = 0.0):
    """``voices_of`` for ``pooled_errors``: the chooser's voices as ``chosen_voices`` sets them."""

    def voices_of(piece):
        evidence = chooser.log_odds(piece["features"]).astype(np.float64) + bias
        return second_voices(
            evidence, piece["onsets"], piece["attributes"], piece["keep"], continuity
        )

    return voices_of


def torch_network(features: int, hidden: int):
    """A torch network of two hidden layers, ``features`` → ``hidden`` → ``hidden`` → 1,
    GELU (tanh form) between: the shape of ``neural.voice_choice.TwoLayerNetwork``."""
    import torch

    return torch.nn.Sequential(
        torch.nn.Linear(features, hidden),
        torch.nn.GELU(approximate="tanh"),
        torch.nn.Linear(hidden, hidden),
        torch.nn.GELU(approximate="tanh"),
        torch.nn.Linear(hidden, 1, bias=False),
    )


def network_layers(network) -> tuple[np.ndarray, ...]:
    """(w1, b1, w2, b2, w3) of a ``torch_network`` as numpy copies, for a
    ``TwoLayerNetwork``."""
    first, middle, last = network[0], network[2], network[4]
    return (
        first.weight.detach().numpy().T.copy(),
        first.bias.detach().numpy().copy(),
        middle.weight.detach().numpy().T.copy(),
        middle.bias.detach().numpy().copy(),
        last.weight.detach().numpy()[0].copy(),
    )


def train(args: argparse.Namespace) -> None:
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    pieces = load_inputs(args.train, args.data)
    x = np.concatenate([p["features"][p["usable"]] for p in pieces])
    y = np.concatenate([p["second"][p["usable"]] for p in pieces]).astype(np.float32)
    mean, scale = x.mean(0), np.maximum(x.std(0), 1e-3)
    held_out = load_inputs(args.validation, args.data)
    print(
        json.dumps({"train_notes": len(x), "second_share": round(float(y.mean()), 4)}), flush=True
    )
    hidden = args.hidden
    network = torch_network(FEATURES, hidden)
    optimizer = torch.optim.AdamW(network.parameters(), lr=args.lr, weight_decay=1e-4)
    xt = torch.from_numpy((x - mean) / scale)
    yt = torch.from_numpy(y)
    best, kept = None, None
    for epoch in range(args.epochs):
        order = torch.randperm(len(xt))
        for start in range(0, len(xt), args.batch):
            pick = order[start : start + args.batch]
            logits = network(xt[pick]).squeeze(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, yt[pick])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        chooser = VoiceChooser(
            *network_layers(network), mean.astype(np.float32), scale.astype(np.float32)
        )
        errors = pooled_errors(held_out, chooser_voices(chooser))
        print(
            json.dumps(
                {
                    "epoch": epoch + 1,
                    "loss": round(loss.item(), 4),
                    "validation_voice": round(errors, 2),
                }
            ),
            flush=True,
        )
        if best is None or errors < best:
            best, kept = errors, chooser
    kept.save(args.out)
    print(json.dumps({"saved": args.out, "validation_voice": round(best, 2)}))


def report(args: argparse.Namespace) -> None:
    pieces = load_inputs(args.inputs, args.data)
    line = {
        "notes": int(sum(p["matched"].sum() for p in pieces)),
        "voice_rule": round(pooled_errors(pieces, lambda p: p["rule"]), 2),
        "voice_one_per_staff": round(pooled_errors(pieces, lambda p: np.ones_like(p["rule"])), 2),
        "voice_labels": round(pooled_errors(pieces, lambda p: np.where(p["second"], 2, 1)), 2),
    }
    if args.chooser:
        chooser = load_voice_chooser(args.chooser)
        for bias in args.biases:
            line[f"voice_chosen_bias_{bias:g}"] = round(
                pooled_errors(pieces, chooser_voices(chooser, bias, args.continuity)), 2
            )
    print(json.dumps(line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("extract")
    one.add_argument("--data", default=".cache/prepared")
    one.add_argument("--split", default="train")
    one.add_argument("--model", help="aligned-model folder (default: the shipped one)")
    one.add_argument("--cache", required=True, help="decodings before the bar lines")
    one.add_argument("--out", required=True)
    one.add_argument("--part", type=int, default=0)
    one.add_argument("--parts", type=int, default=1)
    two = commands.add_parser("train")
    two.add_argument("--data", default=".cache/prepared")
    two.add_argument("--train", required=True)
    two.add_argument("--validation", required=True)
    two.add_argument("--out", required=True)
    two.add_argument("--hidden", type=int, default=64)
    two.add_argument("--epochs", type=int, default=8)
    two.add_argument("--batch", type=int, default=1024)
    two.add_argument("--lr", type=float, default=2e-3)
    two.add_argument("--seed", type=int, default=0)
    three = commands.add_parser("report")
    three.add_argument("--data", default=".cache/prepared")
    three.add_argument("--inputs", required=True)
    three.add_argument("--chooser")
    three.add_argument("--biases", type=float, nargs="+", default=[0.0])
    three.add_argument("--continuity", type=float, default=0.0)
    args = parser.parse_args()
    {"extract": extract, "train": train, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
