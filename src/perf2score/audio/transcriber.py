"""Piano transcription of a recording with transkun 2.0, into a ``Performance``.

transkun's package names torchaudio among its requirements, which has no release for the
pinned torch; its inference path uses torchaudio only to build the mel filter bank, which is
also a buffer of the checkpoint. The model is therefore built with a mel front end whose
filter bank starts empty and is filled by loading the checkpoint (strictly: every tensor of
the checkpoint, and nothing else), so transkun is installed without its dependencies.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from pathlib import Path

import numpy as np

from perf2score.audio import EXTRA_HINT
from perf2score.audio.reading import read_audio
from perf2score.errors import Perf2ScoreError
from perf2score.midi.reading import NOTE_DTYPE, SUSTAIN_CC, Performance, merge_intervals

CHECKPOINT = "2.0"  # the checkpoint shipped in transkun 2.0.1: pretrained/2.0.pt and .conf


@functools.lru_cache(maxsize=1)
def load_transcriber():
    """The transkun model (eval mode, CPU), loaded once per process."""
    try:
        import torch
        from transkun import ModelTransformer as transkun_model  # noqa: N813
        from transkun import Util as transkun_util  # noqa: N813
    except ImportError:
        raise Perf2ScoreError(EXTRA_HINT) from None
    from importlib import resources

    class MelFrontEnd(transkun_util.MelSpectrum):
        """transkun's mel spectrum with the filter bank left to the checkpoint."""

        def __init__(self, windowSize, f_min, f_max, n_mels, fs, nExtraWins=0, **options):
            torch.nn.Module.__init__(self)
            self.outputDim = n_mels
            self.nChannel = nExtraWins + 1
            self.register_buffer("freq2mels", torch.zeros(windowSize // 2 + 1, n_mels))
            self.log = options.get("log", False)
            self.eps = options.get("eps", 1e-5)
            self.spectrogramExtractor = transkun_util.Spectrum(windowSize, nExtraWins)
            self.toMono = options.get("toMono", False)

    folder = resources.files("transkun") / "pretrained"
    settings = json.loads((folder / f"{CHECKPOINT}.conf").read_text())["Model"]["config"]
    config = transkun_model.Config()
    config.__dict__.update(settings)
    built_with = transkun_model.MelSpectrum
    transkun_model.MelSpectrum = MelFrontEnd  # only while this one model is built
    try:
        model = transkun_model.TransKun(conf=config)
    finally:
        transkun_model.MelSpectrum = built_with
    with resources.as_file(folder / f"{CHECKPOINT}.pt") as weights:
        checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["state_dict"], strict=True)
    if not bool(model.framewiseFeatureExtractor.freq2mels.abs().sum() > 0):
        raise RuntimeError("the transkun checkpoint holds no mel filter bank")
    return model.eval()


def notes_to_performance(events: list[dict], source: str) -> Performance:
    """transkun's note events (``start``/``end`` in seconds, ``pitch``, ``velocity``) → a
    ``Performance``: the keys (pitch ≥ 0) and the sustain pedal, which transkun reports as
    events of pitch −64 (−67, the soft pedal, is left out)."""
    keys = [e for e in events if e["pitch"] >= 0 and e["end"] > e["start"]]
    notes = np.empty(len(keys), dtype=NOTE_DTYPE)
    notes["pitch"] = [e["pitch"] for e in keys]
    notes["onset_sec"] = [max(0.0, float(e["start"])) for e in keys]
    notes["offset_sec"] = [float(e["end"]) for e in keys]
    notes["velocity"] = [int(np.clip(e["velocity"], 1, 127)) for e in keys]
    notes["track"] = 0
    notes["channel"] = 0
    notes = notes[np.lexsort((notes["offset_sec"], notes["pitch"], notes["onset_sec"]))]
    pedal = [
        (max(0.0, float(e["start"])), float(e["end"]))
        for e in events
        if e["pitch"] == -SUSTAIN_CC and e["end"] > e["start"]
    ]
    return Performance(notes=notes, pedal=merge_intervals(pedal), source=source)


def transcribe_samples(samples: np.ndarray, source: str = "recording") -> Performance:
    """Transcribe ``samples`` (frames, channels), float32 at ``load_transcriber().fs`` Hz."""
    import torch

    model = load_transcriber()
    with torch.inference_mode(), warnings.catch_warnings():
        # transkun calls torch.utils.checkpoint without use_reentrant (harmless at inference)
        warnings.filterwarnings("ignore", message=".*use_reentrant.*")
        warnings.filterwarnings("ignore", message=".*requires_grad=True.*")
        events = model.transcribe(torch.from_numpy(samples), discardSecondHalf=False)
    performance = notes_to_performance([vars(event) for event in events], source)
    if len(performance.notes) == 0:
        raise Perf2ScoreError(f"{source}: no piano notes were heard in the recording")
    return performance


def transcribe_file(path: str | os.PathLike) -> Performance:
    """The performance transcribed from an audio file (see ``read_audio`` for the limits)."""
    model = load_transcriber()
    return transcribe_samples(read_audio(path, int(model.fs)), str(Path(path)))
