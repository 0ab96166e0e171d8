"""Voices and values of one decoding, re-settled several ways (issue 11).

Decodes every performance of a split once with an aligned model (bar lines, key and spelling
included; cached as ``CACHE/<perf_id>.npz``), then settles voices and values with the given
decoding settings and voice pass and writes one MusicXML per performance, ready for
``perf2score evaluate --data ... --predictions OUT``. Re-settling takes seconds a piece where
decoding takes minutes, so decoding variants of voices and values compare on one decoding.

    python benchmarks/voice_pass.py --data .cache/prepared --split validation \
        --cache ../runs/decoded-val --out ../runs/vp-val --voices ../runs/voices/best
    perf2score evaluate --data .cache/prepared --split validation --predictions ../runs/vp-val
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from perf2score.data.cache import atomic_save_npz, load_index, load_prepared
from perf2score.midi import Performance
from perf2score.neural.converter import decoded_attributes, finish_attributes, load_neural_model
from perf2score.neural.settings import DecodeConfig
from perf2score.score.assembly import assemble
from perf2score.score.export import save


def biased(voices, factor: float):
    """``voices`` (a ``VoiceModel``) with its voice-2/3/4 probabilities multiplied by
    ``factor`` (log ``factor`` added to those logits)."""
    import math

    forward = voices.forward

    def tilted(*args, **kwargs):
        logits = forward(*args, **kwargs)["voice"].clone()
        logits[..., 1:] += math.log(factor)
        return {"voice": logits}

    voices.forward = tilted
    return voices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="prepared cache")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--model", help="aligned-model folder (default: the shipped one)")
    parser.add_argument("--cache", required=True, help="folder of the cached decodings")
    parser.add_argument("--out", required=True, help="folder for the MusicXML files")
    parser.add_argument(
        "--voices",
        help="voice-pass folder; 'head': the decoder's voice head; 'truth': the ground truth's "
        "voice of every decoded note (the ceiling of any voice pass on this decoding)",
    )
    parser.add_argument("--decoding", help="JSON of DecodeConfig settings for voices and values")
    parser.add_argument("--hands", help="hand-head folder (default: the shipped one)")
    parser.add_argument(
        "--second-voice-bias",
        type=float,
        default=1.0,
        help="multiply the pass's probabilities of voices 2-4 by this (before the argmax)",
    )
    parser.add_argument(
        "--reverse", action="store_true", help="last performance first (a second process)"
    )
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    decoding = DecodeConfig.read(args.decoding) if args.decoding else None
    # loaded without the decoding's voice pass (none is shipped: it is given by --voices)
    loading = replace(decoding, voices="head") if decoding else None
    model = load_neural_model(args.model, decoding=loading, hands=args.hands)
    if decoding:
        model = replace(model, decoding=decoding)
    if args.voices and args.voices not in ("head", "truth"):
        from perf2score.models.voice_head import load_voices

        voices = load_voices(args.voices)
        if args.second_voice_bias != 1.0:
            voices = biased(voices, args.second_voice_bias)
        model = replace(model, voices=voices)
    cache, out = Path(args.cache), Path(args.out)
    spent = {"decode": 0.0, "settle": 0.0}
    staff_right: list[float] = []  # per performance: kept notes on the ground truth's staff
    rows = load_index(args.data, args.split, required=True)
    for row in reversed(rows) if args.reverse else rows:
        prepared = load_prepared(args.data, row["perf_id"])
        performance = Performance(prepared.notes, prepared.pedal, source=row["perf_id"])
        stored = cache / f"{row['perf_id']}.npz"
        start = time.perf_counter()
        if not stored.is_file():
            attributes, drop, onsets, tpq = decoded_attributes(performance, model)
            atomic_save_npz(stored, attributes=attributes, drop=drop, onsets=onsets, tpq=tpq)
            spent["decode"] += time.perf_counter() - start
        data = np.load(stored)
        attributes, drop, onsets = data["attributes"], data["drop"], data["onsets"]
        tpq = int(data["tpq"])
        if args.voices == "truth":
            from perf2score.train.voice_data import voice_class

            known = ~prepared.drop & ~drop
            folded = voice_class(prepared.targets()["voice"])
            attributes["voice"][known] = np.maximum(folded[known], 0) + 1
        start = time.perf_counter()
        tempo = finish_attributes(attributes, drop, onsets, tpq, performance, model)
        spent["settle"] += time.perf_counter() - start
        known = ~prepared.drop & ~drop
        if known.any():
            truth = prepared.targets()["staff"][known]
            staff_right.append(float(np.mean(attributes["staff"][known] == truth)))
        assembled = assemble(
            attributes,
            tpq,
            drop=drop,
            velocities=performance.notes["velocity"],
            tempo_qpm=tempo,
            title=row["perf_id"],
        )
        save(assembled, out / f"{row['perf_id']}.musicxml")
    summary = {k: round(v, 1) for k, v in spent.items()}
    summary["staff_right"] = round(float(np.mean(staff_right)), 4) if staff_right else None
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
