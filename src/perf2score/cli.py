"""Command-line interface: parses arguments, calls library functions, prints results.

Every user error becomes one line on stderr and exit status 2; nothing here computes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence

from perf2score.conversion import BACKENDS
from perf2score.errors import Perf2ScoreError
from perf2score.score.export import FORMATS

EXIT_USER_ERROR = 2  # a bad option or input
EXIT_INTERNAL_ERROR = 1  # a bug (reported as 'internal error: ...')
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_TERMINATED = 143  # SIGTERM

RATE_LABELS = [
    ("e_avg", "E_avg"),
    ("pitch_er", "pitch"),
    ("missing_rate", "missing"),
    ("extra_rate", "extra"),
    ("onset_er", "onset"),
    ("offset_er", "offset"),
    ("voice_er", "voice"),
    ("hand_er", "hand"),
    ("spell_er", "spelling"),
]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def _add_convert(sub) -> None:
    conv = sub.add_parser(
        "convert",
        help="convert performance MIDI files to scores",
        description="Convert performance MIDI files (or folders of them), or piano "
        "recordings, to engraved scores.",
    )
    conv.add_argument(
        "inputs",
        nargs="+",
        help="MIDI or audio files (WAV, FLAC, MP3, Ogg, AIFF), or folders of MIDI",
    )
    where = conv.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", help="output file (one input, one format)")
    where.add_argument("--out-dir", help="folder for the outputs (default: beside each input)")
    conv.add_argument(
        "--format",
        nargs="+",
        default=None,
        choices=FORMATS,
        help="output formats (default: musicxml, or the -o suffix)",
    )
    conv.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="auto (default): the neural model, but the classical converter for a file"
        " played exactly as written (a sequencer's export)",
    )
    conv.add_argument("--model", help="aligned-model folder for the neural backend")
    conv.add_argument(
        "--time-signature",
        metavar="N/D",
        help="the piece's time signature, when you know it (neural backend; e.g. 3/4)",
    )
    conv.add_argument(
        "--tempo",
        type=float,
        metavar="QPM",
        help="the notated tempo in quarters per minute, when you know it (neural backend): "
        "note values are doubled or halved to match it",
    )
    conv.add_argument(
        "--beam",
        type=_positive,
        metavar="K",
        help="hypotheses kept per decoding window (neural backend; default: the model's "
        "decoding.json; 1 = greedy, fastest; more: slower, onsets chosen with the notes after)",
    )
    conv.add_argument(
        "--decoding",
        metavar="JSON",
        help="decoding settings file (neural backend; default: the model's decoding.json; "
        "the keys of the README's settings list)",
    )
    conv.add_argument(
        "--key-changes",
        action="store_true",
        help="a new key signature where the music settles in a remote key (default: the "
        "home key's signature throughout, with accidentals)",
    )
    conv.add_argument(
        "--written-out",
        action="store_true",
        help="write every note played: a section played twice in a row is not folded "
        "into repeat signs",
    )
    conv.add_argument(
        "--workers",
        type=_positive,
        default=2,
        help="processes (default 2): files side by side, or one file's decoding windows",
    )
    conv.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="convert on Ray (the 'ray' extra): a local instance with --workers actors, or "
        "the cluster at ADDRESS ('auto', 'ray://head:10001')",
    )
    conv.add_argument(
        "--manifest",
        help="with --ray: the results manifest (JSON Lines; default "
        "perf2score-manifest.jsonl in --out-dir or here); finished files are skipped",
    )
    conv.set_defaults(func=_run_convert)


def _convert_formats(args) -> list[str]:
    from perf2score.score.export import format_of

    if not args.output:
        return args.format or ["musicxml"]
    implied = format_of(args.output)
    if args.format and args.format != [implied]:
        raise Perf2ScoreError(
            f"-o {args.output} names a {implied} file but --format asks for "
            f"{' '.join(args.format)}: give a matching suffix or leave out --format"
        )
    return [implied]


def one_math_thread(inputs: Sequence[str]) -> bool:
    """One math thread for a conversion of MIDI files (``OMP_NUM_THREADS=1`` for torch to
    come, and numpy's BLAS, loaded already, limited to one thread), unless the user set
    ``OMP_NUM_THREADS`` or an input is a recording; return whether it was set.

    The decoder's per-step matrix products are small: one thread converts as fast as two on
    an idle machine and much faster on a busy one (875 notes, whole process: 6.0 s either way
    idle; 10.8 s against 16.6 s beside two CPU-bound processes; the numpy runtime, a
    500-note file beside one CPU-bound process: 0.85 s against 1.6-2.1 s). The
    transcriber's large products do gain from two threads, so recordings keep the default.
    """
    from perf2score.audio import is_audio

    if "OMP_NUM_THREADS" in os.environ or any(is_audio(path) for path in inputs):
        return False
    if "torch" in sys.modules:  # too late to matter (an in-process caller): leave it be
        return False
    from perf2score.parallel import one_math_thread as limit

    limit()
    return True


def _run_convert(args) -> int:
    one_math_thread(args.inputs)
    from perf2score.batch_convert import check_destinations, plan, run
    from perf2score.conversion import resolve_backend

    formats = _convert_formats(args)
    backend = resolve_backend(args.backend, args.model)
    decoding = _decoding(args, backend)
    told = args.time_signature is not None or args.tempo is not None
    auto = args.backend == "auto" and not told  # a told meter keeps the model
    jobs, repeated = plan(
        args.inputs,
        args.output,
        args.out_dir,
        formats,
        backend,
        args.model,
        decoding,
        auto,
        repeats=not args.written_out,
        key_changes=args.key_changes,
    )
    check_destinations(jobs)
    for path in repeated:
        print(f"perf2score: {path} is named more than once: converted once", file=sys.stderr)
    if args.backend == "auto":
        print(f"backend: {backend} (auto)", file=sys.stderr)
    failures = []
    if args.ray:
        outcomes_of = _ray_batch(args, jobs)
    elif args.manifest:
        raise Perf2ScoreError("--manifest goes with --ray")
    else:
        outcomes_of = run(jobs, workers=args.workers, progress=not args.quiet)
    with contextlib.closing(outcomes_of) as outcomes:
        for outcome in outcomes:  # closing: an interrupted batch stops its workers at once
            stop_if_requested()
            if outcome.error:
                failures.append(outcome)
            else:
                if outcome.backend != backend:  # auto: a file played exactly as written
                    print(
                        f"perf2score: {outcome.source}: played exactly as written:"
                        f" converted with the {outcome.backend} backend",
                        file=sys.stderr,
                    )
                for notice in outcome.notices:
                    print(f"perf2score: {outcome.source}: {notice}", file=sys.stderr)
                for path in outcome.written:
                    print(path, flush=True)
    for outcome in failures:
        error, source = outcome.error, outcome.source
        print(
            f"perf2score: failed: {error}"
            if error.startswith(source)
            else f"perf2score: failed: {source}: {error}",
            file=sys.stderr,
        )
    if len(jobs) > 1:
        print(f"converted {len(jobs) - len(failures)}/{len(jobs)} files", file=sys.stderr)
    if any(outcome.internal for outcome in failures):
        return EXIT_INTERNAL_ERROR
    return EXIT_USER_ERROR if failures else 0


def _decoding(args, backend: str):
    """The model's decoding settings (or those of the ``--decoding`` file) with the time
    signature and tempo (``--time-signature``, ``--tempo``) and the beam (``--beam``) the
    user gave; None when none was given."""
    told = args.time_signature is not None or args.tempo is not None
    if not told and args.beam is None and args.decoding is None:
        return None
    if told and backend != "neural":
        raise Perf2ScoreError("--time-signature and --tempo need the neural backend")
    if backend != "neural":
        option = "--beam" if args.beam is not None else "--decoding"
        raise Perf2ScoreError(f"{option} needs the neural backend")
    from dataclasses import replace

    from perf2score.neural.converter import model_folder
    from perf2score.neural.settings import DecodeConfig

    settings = DecodeConfig.read(args.decoding or model_folder(args.model))
    if args.beam is not None:
        settings = replace(settings, beam=args.beam)
    return settings.with_meter(args.time_signature, args.tempo) if told else settings


def _ray_batch(args, jobs):
    from pathlib import Path

    from perf2score.batch_ray import run_on_ray

    manifest = Path(args.manifest or Path(args.out_dir or ".") / "perf2score-manifest.jsonl")

    def notice(skipped) -> None:
        print(
            f"perf2score: {len(skipped)} file(s) already converted ({manifest}): skipped",
            file=sys.stderr,
        )

    address = None if args.ray == "local" else args.ray
    return run_on_ray(jobs, manifest, actors=args.workers, address=address, on_skipped=notice)


def _add_serve(sub) -> None:
    serve = sub.add_parser(
        "serve",
        help="a local web page: drop a performance, see and download the score",
        description="Serve the conversion page (needs the 'web' extra). Bound to this "
        "computer only unless --host says otherwise.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=_positive, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--workers", type=_positive, default=1, help="conversions at a time (default 1)"
    )
    serve.add_argument(
        "--max-upload-mb", type=_positive, default=20, help="upload limit (default 20 MB)"
    )
    serve.add_argument("--model", help="aligned-model folder for the neural backend")
    serve.set_defaults(func=_run_serve)


def _run_serve(args) -> int:
    from perf2score.web.app import serve

    if "OMP_NUM_THREADS" not in os.environ:  # the workers' decoding: one BLAS thread each
        from perf2score.parallel import one_blas_thread

        one_blas_thread()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"perf2score: warning: serving on {args.host}: other computers can reach the page",
            file=sys.stderr,
        )
    serve(
        args.host,
        args.port,
        workers=args.workers,
        model=args.model,
        max_upload_bytes=args.max_upload_mb * 2**20,
    )
    return 0


def _add_prepare(sub) -> None:
    data = sub.add_parser("data", help="prepare training targets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    prep = data_sub.add_parser(
        "prepare", help="note-aligned targets from ASAP + (n)ASAP into a cache folder"
    )
    prep.add_argument("--asap", required=True, help="ASAP folder or asap-m2st.tar.xz")
    prep.add_argument("--nasap", required=True, help="(n)ASAP folder or nasap.tar.xz")
    prep.add_argument("--splits", required=True, help="asap_splits.csv")
    prep.add_argument("--out", required=True, help="cache folder to create or update")
    prep.add_argument("--workers", type=_positive, default=2)
    prep.add_argument("--force", action="store_true", help="redo pieces already in the cache")
    prep.set_defaults(func=_run_prepare)
    corpus = data_sub.add_parser(
        "corpus", help="score-LM pre-training tables from the piano score corpus"
    )
    corpus.add_argument("--corpus", required=True, help="corpus folder or scores-corpus.tar.xz")
    corpus.add_argument("--out", required=True, help="cache folder to create or update")
    corpus.add_argument("--prepared", help="prepared ASAP cache: its validation works are left out")
    corpus.add_argument("--workers", type=_positive, default=2)
    corpus.add_argument("--limit", type=int, help="first N scores of the manifest only")
    corpus.set_defaults(func=_run_corpus)


def _add_evaluate(sub) -> None:
    ev = sub.add_parser(
        "evaluate",
        help="score MusicXML transcriptions",
        description="Either GT.musicxml EST.musicxml, or --data/--split/--predictions.",
    )
    ev.add_argument("gt", nargs="?", help="ground-truth MusicXML")
    ev.add_argument("est", nargs="?", help="estimated MusicXML")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--no-mv2h", action="store_true", help="skip MV2H (faster)")
    ev.add_argument("--data", help="prepared cache folder (from `data prepare`)")
    ev.add_argument("--split", default="test", choices=["train", "validation", "test"])
    ev.add_argument("--predictions", help="folder of <perf_id>.musicxml files")
    ev.add_argument("--out", help="where batch results go (default: PREDICTIONS/evaluation)")
    ev.add_argument("--workers", type=_positive, default=2)
    ev.set_defaults(func=_run_evaluate)


def _add_compare(sub) -> None:
    cmp = sub.add_parser(
        "compare",
        help="paired comparison of two evaluation runs (piece-bootstrap intervals)",
        description="Pair two runs of `perf2score evaluate --data ... --predictions DIR` by "
        "performance; for each metric: both means, the difference (second minus first), its "
        "95 %% interval from resampling pieces, and the performances and pieces better or worse.",
    )
    cmp.add_argument("first", help="per_performance.csv, its evaluation folder, or PREDICTIONS")
    cmp.add_argument("second", help="the run compared with the first (same forms)")
    cmp.add_argument("--metrics", nargs="+", help="metrics to compare (default: all in both)")
    cmp.add_argument("--labels", nargs=2, metavar=("FIRST", "SECOND"), help="column names")
    cmp.add_argument("--resamples", type=_positive, default=10_000, help="bootstrap resamples")
    cmp.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    cmp.add_argument("--json", action="store_true", help="print one JSON object")
    cmp.set_defaults(func=_run_compare)


def _run_compare(args) -> int:
    from perf2score.evaluate.compare import (
        compare_runs,
        comparison_summary,
        markdown_comparison,
        read_rows,
    )

    first, second = read_rows(args.first), read_rows(args.second)
    results = compare_runs(first, second, args.metrics, args.resamples, args.seed)
    summary = comparison_summary(first, second, results)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    labels = tuple(args.labels) if args.labels else ("first", "second")
    print(markdown_comparison(results, labels))
    print(
        f"paired {summary['paired_performances']} performances of {summary['paired_pieces']} "
        f"pieces; scored in one run only: {len(summary['only_first'])} (first), "
        f"{len(summary['only_second'])} (second)"
    )
    return 0


def _add_calibrate(sub) -> None:
    cal = sub.add_parser(
        "calibrate", help="compare our evaluator with the reference MUSTER tool's numbers"
    )
    cal.add_argument(
        "--calibration", required=True, help="calibration-musescore3-test.tar.xz or its folder"
    )
    cal.add_argument("--asap", required=True, help="ASAP folder or asap-m2st.tar.xz")
    cal.add_argument("--out", required=True)
    cal.add_argument("--workers", type=_positive, default=2)
    cal.add_argument("--limit", type=int, help="only the first N performances")
    cal.set_defaults(func=_run_calibrate)


def _add_predict(sub) -> None:
    predict = sub.add_parser(
        "predict",
        help="write a score for every performance of a split (oracle, classical or neural)",
    )
    predict.add_argument("--data", required=True, help="prepared cache folder")
    predict.add_argument("--split", default="validation", choices=["train", "validation", "test"])
    predict.add_argument(
        "--source",
        default="classical",
        choices=["oracle", "classical", "neural"],
        help="oracle = ground-truth attributes (the round trip)",
    )
    predict.add_argument("--model", help="aligned-model folder (neural; default: shipped)")
    predict.add_argument(
        "--decoding", help="JSON file of decoding settings (neural; default: the model's own)"
    )
    predict.add_argument("--meter", help="meter-head folder (neural; default: shipped)")
    predict.add_argument("--hands", help="hand-head folder (neural; default: shipped)")
    predict.add_argument("--out", required=True, help="folder for <perf_id>.musicxml files")
    predict.add_argument(
        "--written-out",
        action="store_true",
        help="every note played: sections played twice are not folded into repeat signs",
    )
    predict.add_argument("--workers", type=_positive, default=2)
    predict.set_defaults(func=_run_predict)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perf2score",
        description="Performance MIDI to score: conversion, data preparation, evaluation.",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_convert(sub)
    _add_serve(sub)
    _add_prepare(sub)
    _add_evaluate(sub)
    _add_compare(sub)
    _add_calibrate(sub)
    _add_predict(sub)
    _add_train(sub)
    _add_ship(sub)
    _add_inspect(sub)
    return parser


def _add_train(sub) -> None:
    tr = sub.add_parser(
        "train",
        help="pre-train a language model, fine-tune the adapter, train the meter head or the "
        "voice pass",
        description="Train from a TOML configuration into a run folder (resumable).",
    )
    tr.add_argument("task", choices=["perf-lm", "score-lm", "align", "meter", "voices"])
    tr.add_argument(
        "--config",
        required=True,
        help="TOML file ([model], or [base] [adapter] / [base] [meter] / [voices]; [data] "
        "[augment] [train])",
    )
    tr.add_argument("--out", required=True, help="run folder (checkpoints, log, best model)")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out")
    tr.add_argument("--steps", type=int, help="override [train] steps (the schedule's length)")
    tr.add_argument("--until", type=int, help="stop at this step (checkpointed; --resume later)")
    tr.add_argument(
        "--validate", action="store_true", help="only validate the run's best model (no training)"
    )
    tr.set_defaults(func=_run_train)


def _add_ship(sub) -> None:
    ship = sub.add_parser(
        "ship",
        help="copy a trained aligned model, meter, hand or step head or voice pass (fp16) into "
        "the package's weights",
    )
    ship.add_argument(
        "model",
        help="aligned-model folder (runs/align-mix/best), an LM's, a meter, hand or step head's "
        "or a voice pass's",
    )
    ship.add_argument("--out", help="destination (default: the package's weights folder)")
    ship.set_defaults(func=_run_ship)


def _add_inspect(sub) -> None:
    inspect = sub.add_parser(
        "inspect", help="parameter counts, gates and layer mixture of an aligned model"
    )
    inspect.add_argument("model", help="aligned-model folder (adapter.json)")
    inspect.add_argument("--svg", help="write the mixture weights as an SVG heat map")
    inspect.set_defaults(func=_run_inspect)


def _run_inspect(args) -> int:
    from perf2score.files import atomic_write
    from perf2score.models.inspect import describe, mixture_svg
    from perf2score.models.io import load_aligned

    facts = describe(load_aligned(args.model))
    print(json.dumps(facts, indent=2))
    if args.svg:
        title = f"{facts['mapping']} ({facts['mode']}): mixture weights per score layer"
        atomic_write(args.svg, mixture_svg(facts["mixture"], title))
    return 0


def _run_ship(args) -> int:
    from pathlib import Path

    from perf2score.models.io import load_model, ship_aligned, ship_lm
    from perf2score.shipped import WEIGHTS_DIR

    if (Path(args.model) / "adapter.json").is_file():
        sizes = ship_aligned(args.model, args.out or WEIGHTS_DIR)
    elif (Path(args.model) / "meter.json").is_file():  # weights/meter, hands or steps
        from perf2score.models.config import read_meter_json
        from perf2score.models.meter_head import ship_meter

        dest = Path(args.out or WEIGHTS_DIR)
        questions = read_meter_json(args.model)[1].questions
        name = "hands" if "staff" in questions else "steps" if "same_step" in questions else "meter"
        shipped = [dest / "performance", dest / "adapter"]  # the LMs it may read
        sizes = {name: ship_meter(args.model, dest / name, shipped)}
    elif (Path(args.model) / "voices.json").is_file():  # the voice pass: weights/voices
        from perf2score.models.voice_head import ship_voices

        sizes = {"voices": ship_voices(args.model, Path(args.out or WEIGHTS_DIR) / "voices")}
    else:  # one pre-trained LM: weights/performance or weights/score
        lm = load_model(args.model)
        sizes = {lm.config.kind: ship_lm(lm, args.out or WEIGHTS_DIR / lm.config.kind)}
    for name, size in sizes.items():
        print(f"{name}: {size / 1e6:.1f} MB")
    return 0


def _run_train(args) -> int:
    from perf2score.train.config import load_run_config
    from perf2score.train.loop import train
    from perf2score.train.tasks import KINDS, build_task

    config = load_run_config(args.config, KINDS[args.task])
    if args.steps:
        config.train.steps = args.steps
    if args.validate:
        from perf2score.train.loop import validate_best

        print(json.dumps(validate_best(build_task(args.task, config), args.out), indent=2))
        return 0
    summary = train(
        build_task(args.task, config), args.out, args.resume, not args.quiet, args.until
    )
    if summary:
        print(json.dumps(summary, indent=2))
    return 0


def _format_metrics(result: dict) -> str:
    lines = [f"{label:>8s}: {result[key]:6.2f} %" for key, label in RATE_LABELS]
    if "mv2h" in result:
        parts = ", ".join(
            f"{k.removeprefix('mv2h_')} {result[k]:.3f}"
            for k in ("mv2h_multi_pitch", "mv2h_voice", "mv2h_meter", "mv2h_value", "mv2h_harmony")
        )
        lines.append(f"    MV2H: {result['mv2h']:.4f} ({parts})")
    lines.append(
        f"   notes: {result['n_gt']} ground truth, {result['n_est']} estimated,"
        f" {result['n_matched']} matched"
    )
    return "\n".join(lines)


def _run_evaluate(args) -> int:
    if args.data or args.predictions:
        if not (args.data and args.predictions):
            raise Perf2ScoreError("batch evaluation needs both --data and --predictions")
        if args.gt or args.est:
            raise Perf2ScoreError("give either GT EST files or --data/--predictions, not both")
        from pathlib import Path

        from perf2score.evaluate.batch import evaluate_folder, markdown_table

        out = args.out or str(Path(args.predictions) / "evaluation")
        summary = evaluate_folder(
            args.data,
            args.split,
            args.predictions,
            out,
            workers=args.workers,
            with_mv2h=not args.no_mv2h,
            progress=not args.quiet,
        )
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            print(markdown_table(summary))
            print(f"scored {summary['n_scored']}/{summary['n_performances']}; results in {out}")
        return 1 if summary["failed"] else 0
    if not (args.gt and args.est):
        raise Perf2ScoreError("evaluate needs GT.musicxml EST.musicxml (or --data/--predictions)")
    from perf2score.evaluate.whole import evaluate

    result = evaluate(args.gt, args.est, with_mv2h=not args.no_mv2h)
    print(json.dumps(result) if args.json else _format_metrics(result))
    return 0


def _run_corpus(args) -> int:
    from perf2score.data.corpus import prepare_corpus

    report = prepare_corpus(
        args.corpus, args.out, args.prepared, args.workers, args.limit, not args.quiet
    )
    print(
        f"corpus: {report['scores']} scores, {report['notes']} notes, "
        f"{report['skipped']} skipped (see {args.out}/report.json)"
    )
    return 0


def _run_prepare(args) -> int:
    from perf2score.data.prepare import format_report, prepare

    report = prepare(
        args.asap,
        args.nasap,
        args.splits,
        args.out,
        workers=args.workers,
        force=args.force,
        progress=not args.quiet,
    )
    print(format_report(report))
    print(f"cache: {args.out} (report.json, index.csv)")
    return 0


def _run_calibrate(args) -> int:
    from perf2score.evaluate.calibration import calibrate, format_report

    report = calibrate(
        args.calibration,
        args.asap,
        args.out,
        workers=args.workers,
        limit=args.limit,
        progress=not args.quiet,
    )
    print(format_report(report))
    return 0


def _run_predict(args) -> int:
    one_math_thread(())  # as in convert: the in-process decoder and its forked windows
    from perf2score.predict import predict_split

    result = predict_split(
        args.data,
        args.split,
        args.out,
        source=args.source,
        workers=args.workers,
        model=args.model,
        progress=not args.quiet,
        decoding=args.decoding,
        repeats=not args.written_out,
        heads={k: v for k, v in (("meter", args.meter), ("hands", args.hands)) if v},
    )
    for perf_id, error in result["failures"].items():
        print(f"failed: {perf_id}: {error}", file=sys.stderr)
    print(
        f"{args.source} scores in {args.out} ({result['notes']} notes,"
        f" {result['notes_per_second']:.0f} notes/s per worker, MusicXML included)"
    )
    print(
        f"score them with: perf2score evaluate --data {args.data} --split {args.split}"
        f" --predictions {args.out}"
    )
    return 1 if result["failures"] else 0


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that clean-up runs as for Ctrl-C."""


_STOPS: list[int] = []  # the stop signals received (SIGINT, SIGTERM), in order


def _on_stop_signal(signum: int, _frame) -> None:
    """Record the stop, then raise it. The record outlives the exception: Python swallows an
    exception raised while a finalizer runs ('Exception ignored in ...'), and a batch must
    stop all the same (``stop_if_requested``, the exit status in ``main``)."""
    _STOPS.append(signum)
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def stop_if_requested() -> None:
    """Raise the stop again if a stop signal came and its exception was lost."""
    if _STOPS:
        raise Terminated if _STOPS[-1] == signal.SIGTERM else KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``perf2score`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="perf2score: %(message)s")
    _STOPS.clear()
    previous = {sig: signal.signal(sig, _on_stop_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = args.func(args)
        stop_if_requested()
        return status
    except Perf2ScoreError as exc:
        print(f"perf2score: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        from perf2score.files import remove_pending

        remove_pending()
        terminated = isinstance(exc, Terminated)
        print(f"perf2score: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
