"""Train and measure the voice linker (``perf2score.neural.voice_links``).

Reads the voice chooser's stored inputs (``benchmarks/voice_choice.py extract``: the decoded
notes settled up to the voices, with the played times and the hand head's log-odds), so no
new decoding is needed; the shipped voice chooser's log-odds are among the features.

- ``train`` fits the linker on the training split's pairs. A pair (n, m) at a later onset
  is a link when the ground truth puts m among n's successors (the notes of n's voice at
  that voice's next onset); a pair at one onset, when the ground truth writes both in one
  voice. Only notes with a timed ground-truth partner on the ground truth's staff teach,
  and a pair only where the tracker would weigh it: none past the onset where the ground
  truth's voice of n went on. It keeps the epoch with the fewest voice errors of the
  tracker on the validation split's.
- ``listwise`` fine-tunes a linker on the tracker's own decisions (teacher-forced; measured,
  not better: README, "Voices as lines").
- ``report`` prints the pooled voice errors (the evaluator's successor rule through the
  known note correspondence, as ``voice_choice.py report``) of the shipped voice chooser,
  of the tracker on the ground truth's own links, and of the linker's tracker at several
  ``new_voice`` thresholds.

    python benchmarks/voice_links.py train --train ../runs/voice-inputs/train \\
        --validation ../runs/voice-inputs/validation --out src/perf2score/weights/voice_links \\
        --limit 400 --reach 16 --epochs 4 --new-voice -1
    python benchmarks/voice_links.py report --inputs ../runs/voice-inputs/validation \\
        --linker src/perf2score/weights/voice_links --new-voice -1 -0.5 0 --chord max mean
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from voice_choice import load_inputs, network_layers, pooled_errors, successors, torch_network

from perf2score.neural.voice_links import (
    CHORD_RULES,
    LINK_FEATURES,
    VoiceLinker,
    link_inputs,
    linked_voices,
    load_voice_linker,
    written_voices,
)


def piece_links(
    folder: str, data: str, limit: int | None = None, reach: int = 8, every: int = 1
) -> list[dict]:
    """``voice_choice.load_inputs`` with each piece's grouping, pairs, features and labels:
    every ``every``-th performance, the first ``limit`` of them."""
    from perf2score.neural.voice_choice import load_voice_chooser
    from perf2score.shipped import SHIPPED_VOICE_CHOICE

    chooser = load_voice_chooser(SHIPPED_VOICE_CHOICE)
    pieces = load_inputs(folder, data, limit, every)
    for piece in pieces:
        inputs = piece.pop("inputs")
        grouped, pairs, piece["link_features"] = link_inputs(
            inputs["attributes"],
            ~inputs["drop"],
            inputs["onsets"],
            int(inputs["tpq"]),
            inputs["onset_sec"],
            inputs["release_sec"],
            inputs["velocity"],
            inputs["odds"],
            chooser.log_odds(piece["features"]),
            reach,
        )
        piece["grouped"], piece["pairs"], piece["reach"] = grouped, pairs, reach
        piece["link_labels"], piece["link_usable"] = link_labels(piece, grouped, pairs)
    return pieces


def link_labels(piece: dict, grouped, pairs) -> tuple[np.ndarray, np.ndarray]:
    """(label (P,), usable (P,)) per pair: a link by the ground truth; both notes teach."""
    src, dst, step = pairs
    a, b = grouped.order[src], grouped.order[dst]
    usable = piece["usable"][a] & piece["usable"][b]
    index = np.flatnonzero(piece["matched"])
    place = np.full(len(piece["matched"]), -1)
    place[index] = np.arange(len(index))
    following = successors(piece["truth_voice"][index], piece["truth_onsets"][index])
    label = np.zeros(len(src), bool)
    voice = piece["truth_voice"]
    for i in np.flatnonzero(usable).tolist():
        if step[i] == 0:
            label[i] = voice[a[i]] == voice[b[i]]
        else:
            label[i] = place[b[i]] in following[place[a[i]]]
    # as the tracker sees them: a pair past the onset where n's voice went on teaches nothing
    first = np.full(len(grouped.order), np.iinfo(np.int64).max)
    linked = label & (step >= 1)
    np.minimum.at(first, src[linked], step[linked])
    usable &= ~((step >= 2) & (first[src] < step))
    return label, usable


def tracker_voices(linker: VoiceLinker, new_voice: float = 0.0, chord: str = "mean"):
    """``voices_of`` for ``pooled_errors``: the tracker's voices numbered by register in each
    measure, as a conversion writes them (``written_voices``; ``chord`` as there)."""

    def voices_of(piece):
        odds = linker.log_odds(piece["link_features"]).astype(np.float64)
        grouped, pairs, attributes = piece["grouped"], piece["pairs"], piece["attributes"]
        return written_voices(grouped, pairs, odds, attributes, new_voice, linker.reach, chord)

    return voices_of


def _linker_of(network, mean: np.ndarray, scale: np.ndarray, reach: int) -> VoiceLinker:
    """The numpy ``VoiceLinker`` of a torch ``voice_choice.torch_network``."""
    return VoiceLinker(*network_layers(network), mean, scale, reach)


def train(args: argparse.Namespace) -> None:
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    pieces = piece_links(args.train, args.data, args.limit, args.reach, args.every)
    x = np.concatenate([p["link_features"][p["link_usable"]] for p in pieces])
    y = np.concatenate([p["link_labels"][p["link_usable"]] for p in pieces]).astype(np.float32)
    del pieces
    mean, scale = x.mean(0), np.maximum(x.std(0), 1e-3)
    held_out = piece_links(args.validation, args.data, reach=args.reach)
    print(json.dumps({"train_pairs": len(x), "link_share": round(float(y.mean()), 4)}), flush=True)
    hidden = args.hidden
    network = torch_network(LINK_FEATURES, hidden)
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
        linker = _linker_of(network, mean.astype(np.float32), scale.astype(np.float32), args.reach)
        errors = pooled_errors(held_out, tracker_voices(linker, args.new_voice))
        line = {
            "epoch": epoch + 1,
            "loss": round(loss.item(), 4),
            "validation_voice": round(errors, 2),
        }
        print(json.dumps(line), flush=True)
        if best is None or errors < best:
            best, kept = errors, linker
    kept.save(args.out)
    print(json.dumps({"saved": args.out, "validation_voice": round(best, 2)}))


def report(args: argparse.Namespace) -> None:
    from voice_choice import chooser_voices

    from perf2score.neural.voice_choice import load_voice_chooser
    from perf2score.shipped import SHIPPED_VOICE_CHOICE

    linker = load_voice_linker(args.linker)
    pieces = piece_links(args.inputs, args.data, reach=linker.reach, every=args.every)
    chooser = load_voice_chooser(SHIPPED_VOICE_CHOICE)
    line = {
        "notes": int(sum(p["matched"].sum() for p in pieces)),
        "voice_chooser": round(pooled_errors(pieces, chooser_voices(chooser)), 2),
        "voice_truth_links": round(pooled_errors(pieces, truth_voices), 2),
    }
    for chord in args.chord:
        for new_voice in args.new_voice:
            line[f"voice_linked_{chord}_{new_voice:g}"] = round(
                pooled_errors(pieces, tracker_voices(linker, new_voice, chord)), 2
            )
    print(json.dumps(line))


def truth_voices(piece: dict) -> np.ndarray:
    """The tracker on the ground truth's own links (log-odds +-10): what it can give."""
    odds = np.where(piece["link_labels"], 10.0, -10.0)
    odds[~piece["link_usable"]] = -10.0
    size = len(piece["keep"])
    return linked_voices(piece["grouped"], piece["pairs"], odds, size, 0.0, piece["reach"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    two = commands.add_parser("train")
    two.add_argument("--data", default=".cache/prepared")
    two.add_argument("--train", required=True)
    two.add_argument("--validation", required=True)
    two.add_argument("--out", required=True)
    two.add_argument("--limit", type=int, help="the first LIMIT training performances")
    two.add_argument("--every", type=int, default=1, help="every EVERY-th performance")
    two.add_argument("--hidden", type=int, default=64)
    two.add_argument("--epochs", type=int, default=6)
    two.add_argument("--batch", type=int, default=2048)
    two.add_argument("--lr", type=float, default=2e-3)
    two.add_argument("--new-voice", type=float, default=0.0)
    two.add_argument("--reach", type=int, default=8, help="onsets ahead a note links")
    two.add_argument("--seed", type=int, default=0)
    four = commands.add_parser("listwise")
    four.add_argument("--data", default=".cache/prepared")
    four.add_argument("--train", required=True)
    four.add_argument("--validation", required=True)
    four.add_argument("--init", required=True, help="a linker trained by train")
    four.add_argument("--out", required=True)
    four.add_argument("--limit", type=int, help="the first LIMIT training performances")
    four.add_argument("--epochs", type=int, default=6)
    four.add_argument("--lr", type=float, default=1e-3)
    four.add_argument("--new-voice", type=float, default=0.0)
    four.add_argument("--seed", type=int, default=0)
    three = commands.add_parser("report")
    three.add_argument("--data", default=".cache/prepared")
    three.add_argument("--inputs", required=True)
    three.add_argument("--linker", required=True)
    three.add_argument("--every", type=int, default=1, help="every EVERY-th performance")
    three.add_argument("--new-voice", type=float, nargs="+", default=[0.0])
    three.add_argument(
        "--chord", nargs="+", default=["mean"], choices=CHORD_RULES, help="linked_voices' chord"
    )
    args = parser.parse_args()
    {"train": train, "listwise": train_listwise, "report": report}[args.command](args)


NEW = -1  # the candidate "a voice of its own"
WIDEST = 6  # candidates per decision at most (open voices, joined voices, a new one)


def decisions(piece: dict, reach: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tracker's decisions on a piece, taken on the ground truth's voices (teacher
    forcing): (pair (E,), candidate (E,), choices (D, WIDEST), answer (D,)). Each usable
    note is a decision among the ground truth's voices open on its staff (last struck at one
    of the ``reach`` onsets before; their last chord's pairs to it) or joined by a usable note
    above it at its onset (those pairs), and a new voice; ``pair``/``candidate`` list each
    candidate's pairs, ``choices`` the candidates of each decision (``NEW`` for the new
    voice, -2 none), ``answer`` the place of the ground truth's voice among them."""
    grouped = piece["grouped"]
    src, dst, _ = piece["pairs"]
    index = {(a, b): i for i, (a, b) in enumerate(zip(src.tolist(), dst.tolist(), strict=True))}
    order = grouped.order
    teach = piece["usable"][order]
    voice = piece["truth_voice"][order]
    pair, candidate, choices, answer = [], [], [], []
    last: dict[int, tuple[int, list[int]]] = {}
    staff_now = None
    for g in range(len(grouped.starts) - 1):
        staff, rank = int(grouped.group_staff[g]), int(grouped.group_rank[g])
        if staff != staff_now:
            staff_now, last = staff, {}
        here = [q for q in range(grouped.starts[g], grouped.starts[g + 1]) if teach[q]]
        for k, q in enumerate(here):
            sources: dict[int, list[int]] = {}
            for v, (r, chord) in last.items():
                if rank - r <= reach:
                    sources[v] = [index[(a, q)] for a in chord if (a, q) in index]
            for a in here[:k]:
                if (a, q) in index:
                    sources.setdefault(int(voice[a]), []).append(index[(a, q)])
            sources = {v: s for v, s in sources.items() if s}
            row = []
            for v, pairs in sources.items():
                for i in pairs:
                    pair.append(i)
                    candidate.append(len(answer) * WIDEST + len(row))
                row.append(v)
            row = row[: WIDEST - 1]
            answer.append(row.index(int(voice[q])) if int(voice[q]) in row else len(row))
            choices.append([0] * len(row) + [NEW] + [-2] * (WIDEST - 1 - len(row)))
        for q in here:
            v = int(voice[q])
            if v not in last or last[v][0] != rank:
                last[v] = (rank, [])
            last[v][1].append(q)
    keep = np.array(candidate, np.int64) % WIDEST < WIDEST - 1
    return (
        np.array(pair, np.int64)[keep],
        np.array(candidate, np.int64)[keep],
        np.array(choices, np.int64).reshape(-1, WIDEST),
        np.array(answer, np.int64),
    )


def train_listwise(args: argparse.Namespace) -> None:
    """Fine-tune a linker (``--init``) on the tracker's own decisions (``decisions``): per
    note a softmax over its candidates, each scored by the best of its pairs' log-odds, the
    new voice by one learned score; keeps the epoch with the fewest validation voice errors
    and prints the new voice's score (the tracker's ``new_voice``)."""
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    init = load_voice_linker(args.init)
    pieces = piece_links(args.train, args.data, args.limit, init.reach)
    batches = []
    for piece in pieces:
        pair, candidate, choices, answer = decisions(piece, init.reach)
        x = (piece["link_features"] - init.mean) / init.scale
        batches.append((x.astype(np.float32), pair, candidate, choices, answer))
    del pieces
    held_out = piece_links(args.validation, args.data, reach=init.reach)
    network = torch_network(LINK_FEATURES, init.w1.shape[1])
    with torch.no_grad():
        network[0].weight.copy_(torch.from_numpy(init.w1.T))
        network[0].bias.copy_(torch.from_numpy(init.b1))
        network[2].weight.copy_(torch.from_numpy(init.w2.T))
        network[2].bias.copy_(torch.from_numpy(init.b2))
        network[4].weight.copy_(torch.from_numpy(init.w3[None]))
    new_score = torch.nn.Parameter(torch.tensor(args.new_voice))
    optimizer = torch.optim.AdamW([*network.parameters(), new_score], lr=args.lr, weight_decay=1e-4)
    best, kept = None, None
    for epoch in range(args.epochs):
        total, count = 0.0, 0
        for b in torch.randperm(len(batches)).tolist():
            x, pair, candidate, choices, answer = batches[b]
            if not len(answer):
                continue
            logits = network(torch.from_numpy(x)).squeeze(-1)
            flat = torch.full((choices.size,), -1e4)
            flat = flat.scatter_reduce(
                0, torch.from_numpy(candidate), logits[torch.from_numpy(pair)], "amax"
            )
            scores = flat.view(-1, WIDEST)
            c = torch.from_numpy(choices)
            scores = torch.where(c == NEW, new_score.expand_as(scores), scores)
            scores = torch.where(c == -2, torch.full_like(scores, -1e4), scores)
            loss = torch.nn.functional.cross_entropy(scores, torch.from_numpy(answer))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + loss.item(), count + 1
        linker = _linker_of(network, init.mean, init.scale, init.reach)
        threshold = float(new_score.item())
        errors = pooled_errors(held_out, tracker_voices(linker, threshold))
        line = {
            "epoch": epoch + 1,
            "loss": round(total / max(count, 1), 4),
            "new_voice": round(threshold, 3),
            "validation_voice": round(errors, 2),
        }
        print(json.dumps(line), flush=True)
        if best is None or errors < best:
            best, kept = errors, linker
    kept.save(args.out)
    print(json.dumps({"saved": args.out, "validation_voice": round(best, 2)}))


if __name__ == "__main__":
    main()
