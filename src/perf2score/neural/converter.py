"""The neural backend: an aligned model (the shipped one, or a given one) → per-note score
attributes.

``load_neural_model`` loads a model folder once into a ``NeuralModel`` (the network and its
decoding settings); a caller that converts many files holds it and passes it to
``perf2score.convert(..., model=...)``. Nothing here caches models behind the caller's back.
By default the network runs in numpy (``perf2score.neural.runtime``: no torch import when
converting); ``runtime="torch"`` loads the torch modules instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from perf2score.constants import GRID_PER_QUARTER
from perf2score.errors import Perf2ScoreError
from perf2score.midi.reading import Performance
from perf2score.models.config import REST_TARGET, read_meter_json
from perf2score.neural.hands import (
    HAND_QUESTIONS,
    answers,
    choose_staff,
    hand_logits,
    held_above,
    second_voices,
)
from perf2score.neural.runtime import (
    NumpyAligned,
    NumpyMeter,
    load_numpy_aligned,
    reads_model_lm,
    with_meter_head,
)
from perf2score.neural.settings import DecodeConfig
from perf2score.neural.values import Articulation, close_gaps, close_split_gaps
from perf2score.score.assembly import average_tempo
from perf2score.shipped import (
    SHIPPED_ADAPTER,
    SHIPPED_HANDS,
    SHIPPED_METER,
    SHIPPED_STEPS,
    SHIPPED_VALUES,
    SHIPPED_VOICE_CHOICE,
    SHIPPED_VOICE_LINKS,
    SHIPPED_VOICES,
)
from perf2score.tokens.performance import pedal_extended_offsets

if TYPE_CHECKING:  # torch is imported only when a model is loaded
    from perf2score.models.adapter import AlignedModel
    from perf2score.models.meter_head import MeterModel
    from perf2score.models.voice_head import VoiceModel
    from perf2score.neural.value_choice import ValueChooser
    from perf2score.neural.voice_choice import VoiceChooser
    from perf2score.neural.voice_links import VoiceLinker


@dataclass
class NeuralModel:
    """An aligned model ready to convert with: the network (numpy runtime, or a torch model
    in eval mode), the settings it is decoded with, the folder it came from (``""`` when
    built in memory), the meter head that places the bar lines (``None``: each decoded
    window's own bar lines), the voice pass (``None``: the decoder's voice head), the
    hand head that chooses the staves (``None``: as ``decoding.staff`` says without it) and
    how many processes decode one performance's windows side by side (forked; the same
    score whatever the number), and the value chooser (loaded when
    ``decoding.value_choice``; used while it says so; ``None``: the values as closed), and
    the voice chooser (loaded when ``decoding.voice_choice``; used while it says so, with
    ``voices`` "hands"; ``None``: the second voices of the head's odds alone), and the voice
    linker (loaded when ``decoding.voice_links`` with the chooser; ``None``: the chooser's
    first and second voices)."""

    network: NumpyAligned | AlignedModel
    decoding: DecodeConfig
    folder: str = ""
    meter: NumpyMeter | MeterModel | None = None
    voices: VoiceModel | None = None
    hands: NumpyMeter | MeterModel | None = None
    processes: int = 1
    values: ValueChooser | None = None
    voice_chooser: VoiceChooser | None = None
    voice_linker: VoiceLinker | None = None

    def describe(self) -> dict:
        """What made a conversion: the model folder, the runtime and the decoding settings."""
        runtime = "numpy" if isinstance(self.network, NumpyAligned) else "torch"
        return {"folder": self.folder, "runtime": runtime, "decoding": self.decoding.to_dict()}


def model_folder(folder: str | os.PathLike | None = None) -> Path:
    """The aligned-model folder ``folder`` names (None: the shipped one), checked to hold an
    ``adapter.json`` (``Perf2ScoreError`` otherwise)."""
    folder = Path(folder) if folder else SHIPPED_ADAPTER
    if not (folder / "adapter.json").is_file():
        raise Perf2ScoreError(f"{folder}: no trained aligned model (adapter.json)")
    return folder


RUNTIMES = ("numpy", "torch")


def load_neural_model(
    folder: str | os.PathLike | None = None,
    decoding: DecodeConfig | None = None,
    meter: str | os.PathLike | None = None,
    voices: str | os.PathLike | None = None,
    runtime: str = "numpy",
    hands: str | os.PathLike | None = None,
    steps: str | os.PathLike | None = None,
) -> NeuralModel:
    """Load an aligned-model folder (default: the shipped model) with its ``decoding.json``
    (or ``decoding`` when given), for inference: LoRA weights are merged into the linear
    layers they adapt (the same scores, one product instead of three). The meter head comes
    from the folder ``meter`` (default: the shipped head), loaded only when the decoding
    places bar lines per piece; the voice pass from the folder ``voices`` (default: the
    shipped one), loaded only when the decoding asks for it; the hand head from the folder
    ``hands`` (default: the shipped one), loaded only when ``decoding.staff`` is "hands";
    the step head from the folder ``steps`` (default: the shipped one), loaded only when
    ``decoding.step_weight`` > 0 (the numpy runtime only). ``runtime``: "numpy" (the
    default) or "torch". A head trained on another performance LM than the model's (a
    model whose performance LM was fine-tuned) reads the performance through its own."""
    if runtime not in RUNTIMES:
        raise Perf2ScoreError(f"runtime must be one of {RUNTIMES}, not {runtime!r}")
    folder = model_folder(folder)
    decoding = decoding or DecodeConfig.read(folder)
    passes = voice_pass(decoding, voices)
    if runtime == "numpy":
        network = load_numpy_aligned(folder)
        head_folder = meter_folder(decoding, meter)
        network = with_step_head(decoding, numpy_with_head(network, head_folder), steps)
        network, staves = with_hand_head(decoding, network, hands)
        return NeuralModel(
            network,
            decoding,
            str(folder),
            network.meter,
            passes,
            staves,
            values=value_chooser(decoding, folder),
            voice_chooser=voice_chooser(decoding, folder),
            voice_linker=voice_linker(decoding, folder),
        )
    if decoding.step_weight > 0:
        raise Perf2ScoreError("decoding with step_weight > 0 needs the numpy runtime")
    from perf2score.models.adapter import merge_lora
    from perf2score.models.io import load_aligned

    torch_network = load_aligned(folder)
    merge_lora(torch_network)
    head = share_states(torch_network, meter_head(decoding, meter))
    _, staves = with_hand_head(decoding, torch_network, hands)
    return NeuralModel(
        torch_network,
        decoding,
        str(folder),
        head,
        passes,
        staves,
        values=value_chooser(decoding, folder),
        voice_chooser=voice_chooser(decoding, folder),
        voice_linker=voice_linker(decoding, folder),
    )


def value_chooser(
    decoding: DecodeConfig, folder: str | os.PathLike | None = None
) -> ValueChooser | None:
    """The value chooser when ``decoding.value_choice`` asks for it (None otherwise): the
    one saved in the model folder ``folder`` (``value_choice.json`` + ``.safetensors``,
    trained on that model's decodings by ``benchmarks/value_choice.py``), else the shipped
    one (``Perf2ScoreError`` when there is none)."""
    if not decoding.value_choice:
        return None
    from perf2score.neural.value_choice import load_value_chooser

    chooser = load_value_chooser(folder) if folder else None
    chooser = chooser or load_value_chooser(SHIPPED_VALUES)
    if chooser is None:
        raise Perf2ScoreError("decoding value_choice needs the value chooser (weights/values)")
    return chooser


def voice_chooser(
    decoding: DecodeConfig, folder: str | os.PathLike | None = None
) -> VoiceChooser | None:
    """The voice chooser when ``decoding.voice_choice`` asks for it and the voices come from
    the hand head (None otherwise): the one saved in the model folder ``folder``
    (``voice_choice.json`` + ``.safetensors``, trained on that model's decodings by
    ``benchmarks/voice_choice.py``), else the shipped one (``Perf2ScoreError`` when there
    is none)."""
    if not decoding.voice_choice or decoding.voices != "hands":
        return None
    from perf2score.neural.voice_choice import load_voice_chooser

    chooser = load_voice_chooser(folder) if folder else None
    chooser = chooser or load_voice_chooser(SHIPPED_VOICE_CHOICE)
    if chooser is None:
        raise Perf2ScoreError(
            "decoding voice_choice needs the voice chooser (weights/voice_choice)"
        )
    return chooser


def with_step_head(
    decoding: DecodeConfig, network: NumpyAligned, steps: str | os.PathLike | None = None
) -> NumpyAligned:
    """``network`` with the step head attached when ``decoding.step_weight`` > 0: the head
    of the folder ``steps`` when given, else the shipped one (``Perf2ScoreError`` when
    there is none, when the head does not answer "same_step" and "longer_step", or when it
    reads another performance LM than the network's)."""
    if decoding.step_weight <= 0:
        return network
    folder = Path(steps) if steps else SHIPPED_STEPS
    if not (folder / "meter.json").is_file():
        raise Perf2ScoreError(f"step_weight > 0 needs a step head ({folder}: none)")
    _, config = read_meter_json(folder)
    if config.questions != ("same_step", "longer_step"):
        raise Perf2ScoreError(f"{folder}: not a step head (it answers {list(config.questions)})")
    if not reads_model_lm(network, folder):
        raise Perf2ScoreError(f"{folder}: the step head reads another performance LM")
    return with_meter_head(network, folder)


def with_hand_head(
    decoding: DecodeConfig,
    network: NumpyAligned | AlignedModel,
    hands: str | os.PathLike | None = None,
) -> tuple[NumpyAligned | AlignedModel, NumpyMeter | MeterModel | None]:
    """(network, the hand head it decodes with): none unless ``decoding.staff`` is "hands";
    then the head of the folder ``hands`` when given, else the shipped one (none when the
    package has none). A numpy ``network`` comes back with the head attached (fed by its
    encoder pass when the head reads the network's performance LM, else by a pass of the
    head's own LM); a torch network gets a torch head, sharing its states where it can
    (``Perf2ScoreError`` for a head that does not answer "staff")."""
    if isinstance(network, NumpyAligned) and network.hands is not None:
        return network, network.hands
    if decoding.staff != "hands":
        return network, None
    if hands:
        folder = Path(hands)
    elif (SHIPPED_HANDS / "meter.json").is_file():
        folder = SHIPPED_HANDS
    else:
        return network, None
    _, config = read_meter_json(folder)
    if "staff" not in config.questions:
        raise Perf2ScoreError(f"{folder}: not a hand head (it answers {list(config.questions)})")
    if isinstance(network, NumpyAligned):
        network = with_meter_head(network, folder)
        return network, network.hands
    from perf2score.models.meter_head import load_meter

    head = load_meter(folder)
    if not isinstance(network, NumpyAligned):
        head = share_states(network, head)
    return network, head


def meter_folder(decoding: DecodeConfig, meter: str | os.PathLike | None = None) -> Path | None:
    """The meter-head folder a model decodes with: none unless ``decoding.meter`` is
    "piece"; then ``meter`` when given, else the shipped head (``None`` when the package
    has none)."""
    if decoding.meter != "piece":
        return None
    if meter:
        return Path(meter)
    return SHIPPED_METER if (SHIPPED_METER / "meter.json").is_file() else None


def numpy_with_head(network: NumpyAligned, head_folder: Path | None) -> NumpyAligned:
    """``network`` with the meter head of ``head_folder`` (as it is when None, or when it
    holds a head already)."""
    if head_folder is None or network.meter is not None:
        return network
    return with_meter_head(network, head_folder)


def voice_pass(
    decoding: DecodeConfig, voices: str | os.PathLike | None = None
) -> VoiceModel | None:
    """The voice pass a model decodes with: none unless ``decoding.voices`` is "pass"; then
    the folder ``voices`` when given, else the shipped one (``Perf2ScoreError`` when the
    package has none: the package ships no voice pass now, see the README)."""
    if decoding.voices != "pass":
        return None
    from perf2score.models.voice_head import load_voices

    if not voices and not (SHIPPED_VOICES / "voices.json").is_file():
        raise Perf2ScoreError(
            "decoding voices = 'pass' needs a trained voice pass (none is shipped; "
            "`perf2score train voices`, then load_neural_model(..., voices=FOLDER))"
        )
    return load_voices(voices or SHIPPED_VOICES)


def share_states(network: AlignedModel, head: MeterModel | None) -> MeterModel | None:
    """``head``, made to read ``network``'s own performance LM when the two hold the same
    weights, frozen or fine-tuned (then decoding hands it the states of its encoder pass)."""
    if head is None:
        return head
    mine, theirs = network.performance.state_dict(), head.performance.state_dict()
    if mine.keys() == theirs.keys() and all(
        mine[k].shape == theirs[k].shape and bool((mine[k] == theirs[k]).all()) for k in mine
    ):
        head.performance = network.performance
    return head


def meter_head(decoding: DecodeConfig, meter: str | os.PathLike | None = None) -> MeterModel | None:
    """The torch meter head a model decodes with (``meter_folder``; ``None`` when none)."""
    folder = meter_folder(decoding, meter)
    if folder is None:
        return None
    from perf2score.models.meter_head import load_meter

    return load_meter(folder)


def with_meter(model: NeuralModel, time_signature: str | None, tempo: float | None) -> NeuralModel:
    """``model`` decoding with the time signature and tempo the user gave
    (``DecodeConfig.with_meter``), its meter head loaded if it had none."""
    decoding = model.decoding.with_meter(time_signature, tempo)
    if model.meter is not None:
        return replace(model, decoding=decoding)
    if isinstance(model.network, NumpyAligned):
        network = numpy_with_head(model.network, meter_folder(decoding))
        return replace(model, network=network, decoding=decoding, meter=network.meter)
    head = share_states(model.network, meter_head(decoding))
    return replace(model, decoding=decoding, meter=head)


def as_neural_model(
    model: NeuralModel | NumpyAligned | AlignedModel | str | os.PathLike | None,
) -> NeuralModel:
    """A ``NeuralModel`` from what a caller holds: one already (returned as is), a bare
    network (numpy ``NumpyAligned`` or torch ``AlignedModel``; default decoding settings,
    the shipped meter head and value chooser), or a folder (``None``: the shipped one)."""
    if isinstance(model, NeuralModel):
        return model
    if model is None or isinstance(model, (str, os.PathLike)):
        return load_neural_model(model)
    if isinstance(model, NumpyAligned):
        settings = DecodeConfig()
        network = numpy_with_head(model, meter_folder(settings))
        network, staves = with_hand_head(settings, network)
        return NeuralModel(
            network,
            settings,
            meter=network.meter,
            voices=voice_pass(settings),
            hands=staves,
            values=value_chooser(settings),
            voice_chooser=voice_chooser(settings),
            voice_linker=voice_linker(settings),
        )
    from perf2score.models.adapter import AlignedModel

    if isinstance(model, AlignedModel):
        settings = DecodeConfig()
        return NeuralModel(
            model.eval(),
            settings,
            meter=share_states(model, meter_head(settings)),
            voices=voice_pass(settings),
            hands=with_hand_head(settings, model)[1],
            values=value_chooser(settings),
            voice_chooser=voice_chooser(settings),
            voice_linker=voice_linker(settings),
        )
    raise Perf2ScoreError(
        "model must be a folder, a NeuralModel, a NumpyAligned or an AlignedModel, not"
        f" {type(model).__name__}"
    )


def respell(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    signature_changes: bool = False,
) -> None:
    """Key signature and spelling of the decoded notes (``onsets`` (N,) in ticks), in
    place: the home key's signature (or, with ``signature_changes``, each section's) and
    ps13 spelling pulled toward each section's key
    (``perf2score.score.spelling.key_and_spelling_by_section``) over the decoded onsets,
    values and measures, which beat the model's own heads on validation; between enharmonic
    keys of six accidentals each (F# / Gb major) the model's key decides."""
    from perf2score.score.spelling import key_and_spelling_by_section

    keep = ~drop
    if not keep.any():
        return
    durations = np.maximum(attributes["duration_ticks"][keep], 1)
    kept = attributes[keep]
    fifths, mode, spelling = key_and_spelling_by_section(
        kept["pitch"],
        onsets[keep],
        durations,
        kept["measure"],
        voted=kept["key_fifths"].astype(np.float64),
        signature_changes=signature_changes,
    )
    for field in ("step", "alter", "octave"):
        kept[field] = spelling[field]
    kept["key_fifths"], kept["key_mode"] = fifths, mode
    attributes[keep] = kept


def neural_attributes(
    performance: Performance, model: NeuralModel
) -> tuple[np.ndarray, int, float, np.ndarray]:
    """(attributes (N,), ticks per quarter, tempo in quarters/min, drop (N,)) of a performance."""
    hand_odds: dict[str, np.ndarray] = {}
    attributes, drop, onsets, tpq = decoded_attributes(performance, model, hand_odds)
    tempo = finish_attributes(attributes, drop, onsets, tpq, performance, model, hand_odds)
    return attributes, tpq, tempo, drop


def bars_per_piece(model: NeuralModel) -> bool:
    """Whether ``model`` places bar lines per piece (``DecodeConfig.meter`` "piece" and a
    meter head loaded)."""
    return model.decoding.meter == "piece" and model.meter is not None


def unbarred_attributes(
    performance: Performance, model: NeuralModel, hand_odds: dict[str, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The decoded notes before the piece barring: (attributes (N,), drop (N,), onsets (N,)
    in ticks at ``GRID_PER_QUARTER``, the meter head's log-odds (N, 2) (downbeat, beat) when
    read in the decoder's encoder pass, else None). ``hand_odds``: as ``decoded_attributes``."""
    from perf2score.neural.decode import (
        decode_many,
        head_questions,
        measure_grid,
        on_steady_path,
        shares_performance_lm,
    )

    piece = bars_per_piece(model)
    if (model.decoding.time_signature or model.decoding.tempo) and not piece:
        raise Perf2ScoreError("a given time signature or tempo needs the meter head (not found)")
    shared = piece and shares_performance_lm(model.network, model.meter)
    head = model.meter if shared else None
    questions = head_questions(model.network, head)
    odds: list[np.ndarray] = []
    attributes, drop = decode_many(
        model.network, [performance], model.decoding, head, odds, model.processes
    )[0]
    if hand_odds is not None:
        for question in (*HAND_QUESTIONS, REST_TARGET):
            if question in questions:
                hand_odds[question] = odds[0][:, questions.index(question)]
    meter_odds = odds[0][:, [questions.index(q) for q in ("downbeat", "beat")]] if shared else None
    onsets = measure_grid(attributes, drop)[0]  # (N,) ticks
    if piece and model.decoding.steady_whole_beats and on_steady_path(performance, model.decoding):
        from perf2score.classical.rhythm import beat_clock
        from perf2score.neural.steady import whole_beat_steps

        onsets = whole_beat_steps(onsets, ~drop, beat_clock(performance))
    return attributes, drop, onsets, meter_odds


def decoded_attributes(
    performance: Performance, model: NeuralModel, hand_odds: dict[str, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The decoded notes, barred and spelled, before voices, values and staves are settled:
    (attributes (N,), drop (N,), onsets (N,) in ticks, ticks per quarter). When the network
    carries a hand head (numpy) and a dict ``hand_odds`` is given, the head's log-odds (N,)
    of yes to each of its questions (``HAND_QUESTIONS``: on the lower staff, in a second
    voice), read in the same encoder pass, are put in it by question, and so is the meter
    head's rest question when it asks one (``REST_TARGET``)."""
    attributes, drop, onsets, meter_odds = unbarred_attributes(performance, model, hand_odds)
    tpq = GRID_PER_QUARTER
    if bars_per_piece(model):
        from perf2score.neural.meter import head_odds, piece_barring

        if meter_odds is None:  # a head the decoder's pass did not read: read it once here
            asked, config = answers(model.meter), model.decoding
            read = head_odds(model.meter, performance, config.window, config.overlap)
            meter_odds = read[:, [asked.index("downbeat"), asked.index("beat")]]
            if hand_odds is not None and REST_TARGET in asked:  # for the closing of values
                hand_odds[REST_TARGET] = read[:, asked.index(REST_TARGET)]
        attributes, onsets, tpq, _ = piece_barring(
            attributes,
            drop,
            onsets,
            performance,
            model.meter,
            model.decoding,
            meter_odds,
        )
    respell(attributes, drop, onsets, model.decoding.key_changes)
    return attributes, drop, onsets, tpq


def finish_attributes(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    tpq: int,
    performance: Performance,
    model: NeuralModel,
    hand_odds: dict[str, np.ndarray] | None = None,
) -> float:
    """Voices, values and staves of decoded notes (``decoded_attributes``), in place;
    returns the played tempo in notated quarters per minute. The values are closed on the
    decoder's staves and the staves chosen after (``decoding.staff``): closing values on
    the chosen staves cost offset error on validation (21.0 -> 22.5). ``hand_odds``: the
    hand head's log-odds (N,) by question when the decoding computed them (else read
    here)."""
    hand_odds = {} if hand_odds is None else hand_odds
    decoded = attributes["duration_ticks"].copy()  # the decoder's values, for the chooser
    if model.voices is not None:
        from perf2score.neural.voice_pass import assign_voices

        assign_voices(
            attributes,
            drop,
            onsets,
            tpq,
            performance,
            model.voices,
            model.decoding.voice_confidence,
        )
    elif model.decoding.held_voice_quarters > 0:
        from perf2score.neural.voices import separate_voices

        held = round(model.decoding.held_voice_quarters * tpq)
        separate_voices(attributes, drop, onsets, held)
    gap = round(model.decoding.legato_gap_quarters * tpq)
    share, long_share = model.decoding.legato_silence_share, model.decoding.long_gap_silence_share
    sound_end = pedal_extended_offsets(performance) if share < 1 or long_share > 0 else None
    onset_sec = performance.notes["onset_sec"]
    played = Articulation(onset_sec, sound_end, share) if share < 1 else None
    held = Articulation(onset_sec, sound_end, long_share) if long_share > 0 else None
    rests = heard_rests(performance, model, hand_odds)
    close_gaps(attributes, drop, onsets, min(gap, 2**40), played, held, rests)  # int64 ticks
    settle_staves(attributes, drop, onsets, performance, model, hand_odds)
    if model.decoding.voices == "hands":  # after the values: closing them to the new
        settle_voices(attributes, drop, onsets, tpq, performance, model, hand_odds)  # cost
        split_gap = round(model.decoding.voice_gap_quarters * tpq)  # only the gaps the
        close_split_gaps(
            attributes,
            drop,
            onsets,
            split_gap,
            first_only=not model.decoding.voice_gap_all,
            rests=rests,
        )  # split opened
    if model.values is not None and model.decoding.value_choice:
        chosen_values(attributes, drop, onsets, tpq, decoded, performance, model, hand_odds)
    timed = ~drop & ~attributes["is_grace"]
    return average_tempo(onsets[timed] / tpq, performance.notes["onset_sec"][timed])


def chosen_values(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    tpq: int,
    decoded: np.ndarray,
    performance: Performance,
    model: NeuralModel,
    hand_odds: dict[str, np.ndarray],
) -> int:
    """Each kept note's value chosen by ``model.values`` among the later onsets
    (``neural.value_choice``), in place; ``decoded`` (N,): the decoder's values in ticks.
    Returns how many values changed."""
    from perf2score.neural.value_choice import choose_values, value_options

    notes = performance.notes
    options = value_options(
        attributes,
        drop,
        onsets,
        tpq,
        notes["onset_sec"],
        notes["offset_sec"],
        pedal_extended_offsets(performance),
        decoded,
        rest_logits(performance, model, hand_odds),
    )
    return choose_values(attributes, options, model.values, model.decoding.value_choice_margin)


def rest_logits(
    performance: Performance, model: NeuralModel, odds: dict[str, np.ndarray]
) -> np.ndarray | None:
    """(N,) the meter head's log-odds of a rest after each note (its ``rest_after``
    question; None when the head does not ask it). ``odds``: the heads' log-odds by
    question when the decoding read them (else read here once, and kept in ``odds`` for
    the closings and the value chooser both)."""
    meter = model.meter
    if meter is None or REST_TARGET not in answers(meter):
        return None
    rest = odds.get(REST_TARGET)
    if rest is None:  # not read with the decoding (bar lines per window)
        config = model.decoding
        network = model.network if isinstance(model.network, NumpyAligned) else None
        rest = hand_logits(network, meter, performance, config.window, config.overlap, REST_TARGET)
        odds[REST_TARGET] = rest
    return rest


def heard_rests(
    performance: Performance, model: NeuralModel, odds: dict[str, np.ndarray]
) -> np.ndarray | None:
    """(N,) the notes the meter head hears a rest after (log-odds of its ``rest_after``
    question above ``decoding.rest_odds``), whose gaps stay open; None when
    ``decoding.rest_head`` is off or the meter head does not ask the question. ``odds``:
    the heads' log-odds by question when the decoding read them (else read here)."""
    if not model.decoding.rest_head:
        return None
    rest = rest_logits(performance, model, odds)
    return None if rest is None else rest > model.decoding.rest_odds


def hand_answer(
    performance: Performance,
    model: NeuralModel,
    hand_odds: dict[str, np.ndarray],
    question: str,
) -> np.ndarray:
    """The hand head's log-odds (N,) of yes to ``question``: those of ``hand_odds`` when
    the decoding read them, else read here, in the decoder's windows."""
    odds = hand_odds.get(question)
    if odds is None:
        config = model.decoding
        network = model.network if isinstance(model.network, NumpyAligned) else None
        odds = hand_logits(
            network, model.hands, performance, config.window, config.overlap, question
        )
    return odds


def settle_voices(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    tpq: int,
    performance: Performance,
    model: NeuralModel,
    hand_odds: dict[str, np.ndarray],
) -> None:
    """The voice of each kept note within its (chosen) staff, in place: the rule's
    (``rule_voices``), or, with ``model.voice_chooser`` (and ``decoding.voice_choice``), the
    chooser's log-odds over the rule's voices and the decoded piece (``voice_inputs``,
    ``neural.voice_choice.chosen_voices``) cut per onset and staff. Without a hand head that
    answers "second_voice" (a model of one's own, or a staff-only head) the decoder's voices
    stay, as ``staff = "hands"`` falls back to the classical split without a hand head. The
    values stay as closed; ``tpq``: ticks per quarter."""
    if model.hands is None or "second_voice" not in answers(model.hands):
        return
    config = model.decoding
    voices, odds = rule_voices(attributes, drop, onsets, performance, model, hand_odds)
    if model.voice_chooser is not None and config.voice_choice:
        from perf2score.neural.voice_choice import chosen_voices

        features = voice_inputs(attributes, drop, onsets, tpq, performance, odds, voices)
        if model.voice_linker is not None and config.voice_links:
            voices = linker_voices(
                attributes, drop, onsets, tpq, performance, odds, features, model
            )
        else:
            voices = chosen_voices(
                attributes,
                ~drop,
                onsets,
                features,
                model.voice_chooser,
                config.voice_choice_bias,
                config.voice_choice_continuity,
            )
    attributes["voice"][~drop] = voices[~drop]


def linker_voices(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    tpq: int,
    performance: Performance,
    odds: np.ndarray,
    features: np.ndarray,
    model: NeuralModel,
) -> np.ndarray:
    """(N,) the voices of ``model.voice_linker`` (``neural.voice_links.tracked_voices``):
    each note linked to the notes that follow it in its voice, from the performance, the
    head's log-odds ``odds`` (N,) and the voice chooser's log-odds of its ``features``
    (N, FEATURES); a note opens a voice of its own below ``decoding.voice_links_new`` nats
    and joins a chord by ``decoding.voice_links_chord``."""
    from perf2score.neural.voice_links import tracked_voices

    notes = performance.notes
    return tracked_voices(
        attributes,
        ~drop,
        onsets,
        tpq,
        notes["onset_sec"],
        notes["offset_sec"],
        notes["velocity"],
        odds,
        model.voice_chooser.log_odds(features),
        model.voice_linker,
        model.decoding.voice_links_new,
        model.decoding.voice_links_chord,
    )


def rule_voices(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    performance: Performance,
    model: NeuralModel,
    hand_odds: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """(voices (N,) 1 or 2, the hand head's second-voice log-odds (N,)): the head's
    "second_voice" log-odds (``hand_answer``) plus ``decoding.second_voice_bias``, plus
    ``decoding.second_voice_held_weight`` for a note struck under a held higher note of its
    staff (``neural.hands.held_above``), cut per onset and staff
    (``neural.hands.second_voices``, tracked with ``decoding.second_voice_continuity``).
    Needs a hand head that asks "second_voice"."""
    config = model.decoding
    odds = hand_answer(performance, model, hand_odds, "second_voice")
    evidence = odds + config.second_voice_bias
    if config.second_voice_held_weight > 0:
        staff = attributes["staff"].astype(np.int64)
        under = held_above(performance, staff, ~drop, config.second_voice_held_margin)
        evidence = evidence + config.second_voice_held_weight * under
    voices = second_voices(evidence, onsets, attributes, ~drop, config.second_voice_continuity)
    return voices, odds


def voice_inputs(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    tpq: int,
    performance: Performance,
    odds: np.ndarray,
    voices: np.ndarray,
) -> np.ndarray:
    """(N, FEATURES) the voice chooser's features (``neural.voice_choice.voice_features``)
    of the kept notes, from the performance, the head's log-odds ``odds`` (N,) and the
    rule's ``voices`` (N,)."""
    from perf2score.neural.voice_choice import voice_features

    notes = performance.notes
    return voice_features(
        attributes,
        ~drop,
        onsets,
        tpq,
        notes["onset_sec"],
        notes["offset_sec"],
        notes["velocity"],
        odds,
        voices,
    )


def voice_linker(
    decoding: DecodeConfig, folder: str | os.PathLike | None = None
) -> VoiceLinker | None:
    """The voice linker when ``decoding.voice_links`` asks for it beside the voice chooser
    (None otherwise): the one saved in the model folder ``folder`` (``voice_links.json`` +
    ``.safetensors``, trained on that model's decodings by ``benchmarks/voice_links.py``),
    else the shipped one (``Perf2ScoreError`` when there is none)."""
    if not decoding.voice_links or voice_chooser(decoding, None) is None:
        return None
    from perf2score.neural.voice_links import load_voice_linker

    linker = load_voice_linker(folder) if folder else None
    linker = linker or load_voice_linker(SHIPPED_VOICE_LINKS)
    if linker is None:
        raise Perf2ScoreError("decoding voice_links needs the voice linker (weights/voice_links)")
    return linker


def settle_staves(
    attributes: np.ndarray,
    drop: np.ndarray,
    onsets: np.ndarray,
    performance: Performance,
    model: NeuralModel,
    hand_odds: dict[str, np.ndarray],
) -> None:
    """The staff of each kept note by ``model.decoding.staff`` (``neural.hands``), in place;
    "hands" without a hand head falls back to the classical split; its log-odds by
    ``hand_answer``."""
    config = model.decoding
    how = config.staff
    if how == "hands" and model.hands is None:
        how = "split"
    odds = hand_answer(performance, model, hand_odds, "staff") if how == "hands" else None
    choose_staff(
        attributes,
        drop,
        onsets,
        performance,
        how,
        odds,
        config.hand_split_weight,
        config.hand_continuity,
    )
