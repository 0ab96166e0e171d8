"""Train and measure the learned choice of note values (``perf2score.neural.value_choice``).

``extract`` decodes each performance of a split with the shipped model (the decodings before
the bar lines are cached, as ``benchmarks/rebar.py`` caches them), settles it as a
conversion does (bar lines, spelling, voices, values, staves), and stores per performance
the options of every kept note with, for the notes that have a ground-truth partner, which
options end the note where the ground truth does (the evaluator's offset rule:
``evaluate.muster.offset_deviations``). ``train`` fits the chooser on the training split's
options and keeps the epoch whose choices fix most offsets on the validation split's;
``report`` prints, per split, the offset errors now, with the chooser, and with the best
option (the most a choice among these options can give).

    python benchmarks/value_choice.py extract --split train --cache ../runs/decoded-bars/train \
        --out ../runs/value-options/train [--part 0 --parts 2]
    python benchmarks/value_choice.py extract --split validation \
        --cache ../runs/decoded-bars/validation --out ../runs/value-options/validation
    python benchmarks/value_choice.py train --train ../runs/value-options/train \
        --validation ../runs/value-options/validation --out src/perf2score/weights/values
    python benchmarks/value_choice.py report --options ../runs/value-options/validation \
        --chooser src/perf2score/weights/values

For a model of one's own: ``extract --model RUN/best`` (with a cache folder of its own), then
``train --out RUN/best``: a model folder that holds a chooser decodes with it (else with the
shipped one) when its ``decoding.json`` says ``"value_choice": true``.
"""

from __future__ import annotations

import argparse
import json
import sys
from math import lcm
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perf2score.data.cache import atomic_save_npz, load_index, load_prepared
from perf2score.evaluate.muster import offset_deviations, rhythm_correction
from perf2score.neural.value_choice import (
    FEATURES,
    OPTIONS,
    ValueChooser,
    chosen_options,
    load_value_chooser,
    value_options,
)


def option_labels(prepared, attributes, drop, onsets, tpq, options) -> tuple[np.ndarray, ...]:
    """(matched (M,), right (M, OPTIONS), now_right (M,)): the notes with a timed
    ground-truth partner, which options end them where the ground truth does, and whether
    the value they have now does (the evaluator's mapping through the matched onsets)."""
    targets = prepared.targets()
    notes = options.notes
    matched = ~prepared.drop[notes] & ~targets["is_grace"][notes]
    right = np.zeros(options.valid.shape, bool)
    now_right = np.zeros(len(notes), bool)
    index = np.flatnonzero(matched)
    if len(index) < 2:
        return matched, right, now_right
    grid = lcm(tpq, prepared.ticks_per_quarter)
    ours, theirs = grid // tpq, grid // prepared.ticks_per_quarter
    members = notes[index]
    order = np.lexsort((targets["pitch"][members], targets["onset_ticks"][members]))
    index, members = index[order], members[order]
    gt_on = targets["onset_ticks"][members] * theirs
    gt_off = gt_on + targets["duration_ticks"][members] * theirs
    est_on = onsets[members].astype(np.int64) * ours
    _, scale = rhythm_correction(gt_on, est_on)
    now = options.ends[index, -1] * ours  # the chord's value, as written
    now_right[index] = offset_deviations(gt_on, gt_off, est_on, now, scale) == 0
    ends = options.ends[index] * ours
    deviation = offset_deviations(
        np.repeat(gt_on, OPTIONS),
        np.repeat(gt_off, OPTIONS),
        np.repeat(est_on, OPTIONS),
        ends.ravel(),
        scale,
    ).reshape(-1, OPTIONS)
    right[index] = (deviation == 0) & options.valid[index]
    return matched, right, now_right


def extract(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from rebar import barred_decoding

    from perf2score.midi import Performance
    from perf2score.neural.converter import (
        finish_attributes,
        load_neural_model,
        rest_logits,
    )
    from perf2score.tokens.performance import pedal_extended_offsets

    model = load_neural_model(args.model)
    config = replace(model.decoding, value_choice=False)  # the values the chooser starts from
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
        decoded = attributes["duration_ticks"].copy()
        odds: dict[str, np.ndarray] = {}  # the rest question, read once for both
        finish_attributes(attributes, drop, onsets, tpq, performance, model, odds)
        rest = rest_logits(performance, model, odds)
        notes = performance.notes
        inputs = {
            "attributes": attributes,
            "drop": drop,
            "onsets": onsets.astype(np.int64),
            "tpq": np.array(tpq),
            "onset_sec": notes["onset_sec"],
            "release_sec": notes["offset_sec"],
            "pedal_sec": pedal_extended_offsets(performance),
            "decoded": decoded,
            "rest": rest if rest is not None else np.zeros(len(drop), np.float32),
        }
        atomic_save_npz(path, perf_id=np.array(perf_id), **inputs)
        print(perf_id, int((~drop).sum()), flush=True)


def options_of(inputs: dict[str, np.ndarray]):
    """``value_options`` of one performance's stored inputs (``extract``)."""
    return value_options(
        inputs["attributes"],
        inputs["drop"],
        inputs["onsets"],
        int(inputs["tpq"]),
        inputs["onset_sec"],
        inputs["release_sec"],
        inputs["pedal_sec"],
        inputs["decoded"],
        inputs["rest"],
    )


def load_options(folder: str, data: str) -> list[dict[str, np.ndarray]]:
    """Every performance's options in ``folder`` (``extract``'s files) with their labels
    (``option_labels`` against the prepared ground truth in ``data``): computed again
    from the stored notes, so a new feature needs no new decoding."""
    pieces = []
    for path in sorted(Path(folder).glob("*.npz")):
        with np.load(path) as stored:
            inputs = {name: stored[name] for name in stored.files}
        options = options_of(inputs)
        perf_id = str(inputs.get("perf_id", path.stem.replace("__", "/")))
        prepared = load_prepared(data, perf_id)
        matched, right, now_right = option_labels(
            prepared,
            inputs["attributes"],
            inputs["drop"],
            inputs["onsets"],
            int(inputs["tpq"]),
            options,
        )
        pieces.append(
            {
                "features": options.features,
                "valid": options.valid,
                "chords": options.chords,
                "matched": matched,
                "right": right,
                "now_right": now_right,
            }
        )
    return pieces


def stacked(pieces: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The options of every note of ``pieces`` in one set: ``features`` (K, OPTIONS,
    FEATURES), ``valid``/``right`` (K, OPTIONS), ``matched``/``now_right`` (K,) and
    ``chords`` (K,) numbered across the pieces."""
    out = {
        name: np.concatenate([p[name] for p in pieces])
        for name in ("features", "valid", "right", "matched", "now_right")
    }
    chords, offset = [], 0
    for piece in pieces:
        chords.append(piece["chords"] + offset)
        offset += int(piece["chords"].max()) + 1 if len(piece["chords"]) else 0
    out["chords"] = np.concatenate(chords)
    return out


def fixed_share(
    chooser: ValueChooser, notes: dict[str, np.ndarray], margin: float = 0.0
) -> tuple[float, float]:
    """(offset errors now, offset errors with ``chooser``'s choices at ``margin``, as
    ``choose_values`` makes them) in % of the matched notes."""
    chosen = chosen_options(notes["chords"], notes["valid"], notes["features"], chooser, margin)
    taken = notes["right"][np.arange(len(chosen)), np.maximum(chosen, 0)]
    chosen_right = np.where(chosen >= 0, taken, notes["now_right"])
    matched = notes["matched"]
    return 100 * (1 - notes["now_right"][matched].mean()), 100 * (1 - chosen_right[matched].mean())


def train(args: argparse.Namespace) -> None:
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    notes = stacked(load_options(args.train, args.data))
    features, valid, right = notes["features"], notes["valid"], notes["right"]
    answerable = notes["matched"] & right.any(1)  # notes with no right option teach nothing
    x = torch.from_numpy(features[answerable])
    v = torch.from_numpy(valid[answerable])
    r = torch.from_numpy(right[answerable])
    flat = features[valid]
    mean = flat.mean(0)
    scale = np.maximum(flat.std(0), 1e-3)
    held_out = stacked(load_options(args.validation, args.data))
    hidden = args.hidden
    w1 = torch.nn.Parameter(torch.randn(FEATURES, hidden) / FEATURES**0.5)
    b1 = torch.nn.Parameter(torch.zeros(hidden))
    w2 = torch.nn.Parameter(torch.randn(hidden) / hidden**0.5)
    optimizer = torch.optim.Adam([w1, b1, w2], lr=args.lr)
    steps = args.epochs * -(-len(x) // args.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=steps)
    m, s = torch.from_numpy(mean), torch.from_numpy(scale)
    best, kept = None, None
    print(json.dumps({"train_notes": len(x), "features": FEATURES}), flush=True)

    def note_log_p(features_batch, valid_batch):
        h = torch.nn.functional.gelu((features_batch - m) / s @ w1 + b1, approximate="tanh")
        return torch.log_softmax((h @ w2).masked_fill(~valid_batch, -1e9), 1)

    batches = chord_batches(notes["chords"], args.batch) if args.chord_loss else None
    all_x, all_v = torch.from_numpy(features), torch.from_numpy(valid)
    all_r = torch.from_numpy(right & answerable[:, None])
    for epoch in range(args.epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), args.batch):
            if batches is None:  # note by note
                pick = order[start : start + args.batch]
                log_p = note_log_p(x[pick], v[pick])
                loss = -torch.logsumexp(log_p.masked_fill(~r[pick], -1e9), 1).mean()
            else:  # chord by chord: the chord's summed log-probabilities, as decoded
                pick, local, size = batches()
                pick, local = torch.from_numpy(pick), torch.from_numpy(local)
                log_p = note_log_p(all_x[pick], all_v[pick])
                total = torch.zeros(size, OPTIONS).index_add_(
                    0, local, log_p.masked_fill(~all_v[pick], 0.0)
                )
                chord_valid = torch.zeros(size, OPTIONS, dtype=torch.bool)
                chord_valid[local] = all_v[pick]
                chord_log_p = torch.log_softmax(total.masked_fill(~chord_valid, -1e9), 1)
                wanted = all_r[pick]
                per_note = torch.logsumexp(chord_log_p[local].masked_fill(~wanted, -1e9), 1)
                loss = -per_note[wanted.any(1)].mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        chooser = ValueChooser(
            w1.detach().numpy().copy(),
            b1.detach().numpy().copy(),
            w2.detach().numpy().copy(),
            mean.astype(np.float32),
            scale.astype(np.float32),
        )
        now, chosen = fixed_share(chooser, held_out)
        print(
            json.dumps(
                {
                    "epoch": epoch + 1,
                    "loss": round(loss.item(), 4),
                    "validation_offset_now": round(now, 2),
                    "validation_offset_chosen": round(chosen, 2),
                }
            ),
            flush=True,
        )
        if best is None or chosen < best:
            best, kept = chosen, chooser
    kept.save(args.out)
    print(json.dumps({"saved": args.out, "validation_offset_chosen": round(best, 2)}))


def chord_batches(chords: np.ndarray, batch: int):
    """A function giving random batches of whole chords, about ``batch`` notes each:
    (note indices (B,), their chord's place in the batch (B,), chords in the batch)."""
    order = np.argsort(chords, kind="stable")
    count = int(chords.max()) + 1
    bounds = np.searchsorted(chords[order], np.arange(count + 1))
    rng = np.random.default_rng(0)
    per_batch = max(1, int(batch * count / len(chords)))

    def draw():
        picked = rng.choice(count, per_batch, replace=False)
        lengths = bounds[picked + 1] - bounds[picked]
        offsets = np.repeat(bounds[picked] - np.cumsum(lengths) + lengths, lengths)
        notes = order[offsets + np.arange(int(lengths.sum()))]
        return notes, np.repeat(np.arange(len(picked)), lengths), len(picked)

    return draw


def report(args: argparse.Namespace) -> None:
    notes = stacked(load_options(args.options, args.data))
    matched = notes["matched"]
    line = {
        "notes": int(matched.sum()),
        "offset_now": round(100 * (1 - notes["now_right"][matched].mean()), 2),
        "offset_best_option": round(100 * (1 - notes["right"][matched].any(1).mean()), 2),
    }
    if args.chooser:
        chooser = load_value_chooser(args.chooser)
        line["offset_chosen"] = round(fixed_share(chooser, notes, args.margin)[1], 2)
    print(json.dumps(line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("extract")
    one.add_argument("--data", default=".cache/prepared")
    one.add_argument("--split", default="validation")
    one.add_argument("--cache", required=True, help="folder of the cached decodings")
    one.add_argument("--out", required=True)
    one.add_argument("--model", default=None, help="aligned-model folder (default: shipped)")
    one.add_argument("--part", type=int, default=0)
    one.add_argument("--parts", type=int, default=1)
    two = commands.add_parser("train")
    two.add_argument("--data", default=".cache/prepared")
    two.add_argument("--train", required=True)
    two.add_argument("--validation", required=True)
    two.add_argument("--out", required=True)
    two.add_argument("--hidden", type=int, default=32)
    two.add_argument("--epochs", type=int, default=8)
    two.add_argument("--batch", type=int, default=512)
    two.add_argument("--lr", type=float, default=3e-3)
    two.add_argument("--seed", type=int, default=0)
    two.add_argument(
        "--chord-loss", action="store_true", help="train on whole chords' summed choices"
    )
    three = commands.add_parser("report")
    three.add_argument("--data", default=".cache/prepared")
    three.add_argument("--options", required=True)
    three.add_argument("--chooser", default=None)
    three.add_argument("--margin", type=float, default=0.5, help="as value_choice_margin")
    args = parser.parse_args()
    {"extract": extract, "train": train, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
