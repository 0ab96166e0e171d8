"""Decoding settings: a typed, validated configuration saved beside the adapter.

``decoding.json`` in an aligned-model folder holds the settings the model is decoded with
(absent: the defaults below); ``predict`` writes them into ``predict.json`` so that every
results-table row names the settings that made it, and a decoding experiment is a changed
file, not an edited module.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from perf2score.constants import APART_SECONDS, CHORD_SECONDS, GRID_PER_QUARTER
from perf2score.errors import Perf2ScoreError
from perf2score.files import atomic_write
from perf2score.neural.segment_scale import STATE_SETS
from perf2score.tokens.spec import DENOMINATORS, SCORE_STREAMS

DECODING_FILE = "decoding.json"


@dataclass(frozen=True)
class DecodeConfig:
    """How a performance is cut into windows and decoded note by note."""

    # notes per window (at most the score LM's max_notes), and notes shared by consecutive
    # windows (joined in the middle). Validation, shipped model, E_avg for 256/64, 128/32,
    # 64/16: 8.43, 8.44, 8.69; 128 decodes half the sequential steps (500 notes 1.8x faster)
    window: int = 128
    overlap: int = 32
    tempo_weight: float = 2.0  # nats per unit |log(score IOI / expected IOI)| (0 = off;
    # validation over 0, 1, 3, 6, 12 -> E_avg 10.42 / 10.22 / 9.93 / 10.16 / 10.86; the
    # shipped decoding.json sets 2 for the scheduled-sampling model: 1 / 2 / 3 / 5 -> 8.214 /
    # 8.166 / 8.242 / 8.280, README)
    tempo_slack_grid: int = GRID_PER_QUARTER // 4  # grid units added to both IOIs (a 16th)
    tempo_blend: float = 0.2  # running tempo: weight of each new IOI (the rest: the old one)
    # |log(score IOI / expected IOI)| up to this costs nothing (played timing that far off
    # the running tempo is taken as rubato); beyond it the penalty grows from 0
    tempo_tolerance: float = 0.0
    # the running tempo's clock: "seconds" (played time) or "beats" (the classical
    # converter's beat tracking and quantisation, perf2score.classical.rhythm.beat_clock:
    # score time per tracked beat, the rubato taken out before the tempo compares steps)
    tempo_clock: str = "seconds"
    # where each window's running tempo starts: "none" (unknown until its first step, whose
    # scale the model chooses), "tracked" (a quarter per beat of the classical beat tracker,
    # perf2score.classical.rhythm.beat_clock, over the window's notes). Validation, shipped
    # model, E_avg / downbeat F: none 8.351 / 0.244; tracked 8.369 / 0.249 (38 better, 41
    # worse); tracked with tempo_weight 6 8.532 / 0.243 (README)
    tempo_start: str = "none"
    # a performance whose onsets sit this close to the classical beat tracker's grid (mean
    # distance in beats, perf2score.classical.rhythm.grid_residual: metronomic or quantised
    # playing; 0 = off) is decoded with the running tempo on the beat clock at
    # steady_tempo_weight and steady_slack_grid instead (the grid is trusted where the
    # model would repeat its onset step). Measured: make demo's performance 0.004; the
    # steadiest of the 86 validation performances 0.013, of the 59 test ones 0.012 (none
    # changes) (README)
    steady_residual: float = 0.008
    # 10 until 2026-12-06; 4 since: the 17 validation scores played with make demo's kind
    # of rubato (benchmarks/quantised_scores.py --jitter 0.004), E_avg 5.35 -> 5.23 (the
    # 2,400-step model; the 1,600-step one 5.59 -> 5.40), and make demo's 16 bars kept
    steady_tempo_weight: float = 4.0
    steady_slack_grid: int = 1
    # on that path, a held note the decoder wrote a whole beat shorter than the beat clock
    # counts gets that beat back (perf2score.neural.steady; bar lines per piece only). Off
    # since meter_held_cost: the clock also gains a beat at phrase ends (make demo's bar 12,
    # onset error 1.1 % with it, 0 without); on the 17 steadily played validation scores
    # (benchmarks/quantised_scores.py --jitter 0.004) the same scores either way (README)
    steady_whole_beats: bool = False
    # nats per unit log probability of the step head's answer (perf2score.models.meter_head
    # step questions: is a note's onset step the same as the one before, else longer or
    # shorter?) added to each candidate position's score, against the decoder's habit of
    # repeating its previous step (0 = off; needs a step head: ``load_neural_model(steps=)``
    # or the shipped one; the numpy runtime only)
    step_weight: float = 0.0
    # the score prior's weight α: these streams are decoded by log p(y | performance) -
    # α log p(y), p(y) the score LM without the adapters (perf2score.neural.runtime's
    # NumpySession; 0 = off; the numpy runtime only; decoding takes about twice the time)
    prior_weight: float = 0.0
    prior_streams: tuple[str, ...] = ("bar", "position", "value")
    # hypotheses kept per window by a beam search over the notes' onsets (bar and position;
    # perf2score.neural.beam; 1 = greedy, the ids of every release before 2026-12-05; not
    # with the score prior; a step decodes beam times the rows). Validation (86), E_avg /
    # onset / downbeat F: 1 7.27 / 9.07 / 0.325; 2 7.06 / 8.37 / 0.341; 4 6.95 / 8.10 /
    # 0.362; 8 6.79 / 7.78 / 0.376 (README). A 5,000-note file against MuseScore's import:
    # 2 at 1.3-1.65x by the hour, 4 at 1.9-2.05x (issue 13 asks 1.5x; README, Speed)
    beam: int = 2
    # the streams besides the onset's (bar, position) whose greedy choices' log
    # probabilities count in a hypothesis's score (perf2score.neural.beam). Validation,
    # E_avg at beam 2 / 4: every stream 7.06 / 6.95; all but value, staff, voice, alter,
    # key, grace 6.96 / 6.76; all but value 6.97 (beam 2); none 7.00 (README)
    beam_streams: tuple[str, ...] = ("time_signature", "measure_length", "drop")
    # the same for a steady performance decoded on the beat clock (steady_residual), where
    # the greedy choice is already on the grid (make demo: 16 bars greedy, 15 with a beam of 4)
    steady_beam: int = 1
    # windows decoded one after another, each continuing from the notes it shares with the
    # one before (their decoded tokens given, so meter, value scale and bar phase carry on),
    # in chains of this many windows (0: the whole piece; 1: every window on its own).
    # Validation, shipped model, E_avg / hand / scale right: 1 8.44 / 17.0 / 0.756; 0
    # 8.77 / 23.6 / 0.279; 0 from the median-tempo window 8.80 / 25.5 / 0.477 (README)
    chain_windows: int = 1
    # where a chain starts: "first" (the performance's first window) or "tempo" (all
    # windows decoded alone first; the chain starts at the first one whose tempo in score
    # time is within a factor √2 of the windows' median and runs to the end)
    chain_from: str = "first"
    junction_notes: int = 16  # shared notes nearest a window junction that vote on its shift
    # a decoded window whose tempo in score time (``window_tempo.local_tempo``) is about
    # twice or half the piece's (the median over every window's note intervals; more than a
    # factor √2 off) has its onsets and values scaled by ½ or 2 before the windows are
    # joined, so that the piece is written at one value scale (False: each window keeps its
    # own; needs at least ``window_tempo.MIN_SCALED_WINDOWS`` windows with a tempo;
    # ``window_tempo.scale_steps``).
    # Validation, shipped model, off / on: E_avg 6.963 / 6.948, onset 8.21 / 8.15, downbeat
    # F 0.348 / 0.362, pickups right 82.6 / 87.2 %, irregular measures 12.65 / 12.13 (README)
    window_scales: bool = True
    # a stretch inside a window written at twice or half the piece's value scale (16ths
    # written as eighths for a few bars, which puts every later bar line out of phase) is
    # rewritten at the piece's scale before the piece barring: the cost of a change of
    # scale in the Viterbi labelling of the steps between notes
    # (``neural.segment_scale``; 0 = off). Validation, shipped model, off / octaves at 4:
    # onset 8.15 / 8.10, E_avg 6.948 / 6.946, downbeat F 0.362 / 0.356, irregular measures
    # 12.1 / 12.0: fewer slips, so the barring keeps a wrong phase longer (docs/meter.md): off
    segment_scale_cost: float = 0.0
    # the scales a stretch may be found at: "octaves" (½, 1, 2) or "tuplets" (also ¾:
    # triplet eighths written as 16ths, and 3/2: triplet eighths written as eighths) or
    # "doubled" (1 and 2 only: a slower stretch may be played slower). Tuplets at cost 4:
    # E_avg 7.012, downbeat F 0.321 (slower playing read as triplets)
    segment_scale_states: str = "octaves"
    # what the played steps are measured on: "seconds" or "beats" (the classical
    # converter's tracked beats, rubato and a section's tempo taken out)
    segment_scale_clock: str = "seconds"
    # nats added to the drop head's "leave this note out" before its choice (0 = the head's
    # argmax; positive drops more notes: ornaments and slips the score does not have).
    # Validation, shipped model, E_avg / missing / extra: -1 7.913 / 4.46 / 5.84; 0 7.883 /
    # 4.64 / 5.60; +1 8.045 / 5.60 / 5.42 (README)
    drop_bias: float = 0.0
    chord_seconds: float = CHORD_SECONDS  # notes closer than this may go back in time (chords)
    apart_seconds: float = APART_SECONDS  # notes further apart never share an onset
    # values that stop short of the next onset of their voice by at most this many quarters
    # are extended to it (0 = off; see perf2score.neural.values). Validation, shipped model,
    # E_avg over 0, 0.5, 1, 2, 4, unbounded: 10.09, 9.36, 9.11, 8.95, 8.86, 8.83 (offset and
    # note-matching rates only); 4 keeps rests longer than a 4/4 bar
    legato_gap_quarters: float = 4.0
    # ...except where the performer left a silence longer than this share of the time to
    # the next onset of the voice (key released and sustain pedal up): that rest stays
    # (perf2score.neural.values.Articulation; 1 = every gap closes). Validation, shipped
    # model, E_avg over 1, 0.7, 0.4, 0.2: 8.351, 8.525, 8.634, 8.701 (offset 20.6 -> 22.3)
    legato_silence_share: float = 1.0
    # values that stop short of the next onset of their voice by more than
    # legato_gap_quarters are extended to it where the performance held them (key or
    # sustain pedal) until at most this share of the time between the two onsets before it
    # (0 = off: those rests stay, however long the note sounded; perf2score.neural.values).
    # Validation, shipped model, offset / E_avg: off 19.30 / 7.561; 0.3 19.25 / 7.552 (44
    # better, 3 worse); 0.5 19.25 / 7.553; 1 (every long gap) 19.30 / 7.562 (README)
    long_gap_silence_share: float = 0.3
    # no gap is closed after a note that the meter head hears a rest after (its
    # "rest_after" question, log-odds above rest_odds; perf2score.data.rests): both
    # closings leave its value as decoded. Needs a meter head that asks the question
    # (without one: off). Validation, shipped model, the rest head used whole, E_avg /
    # offset over off, odds 2, 1, 0, -1, -2, -4: 6.498 / 16.86, 6.49 / 16.8, 6.48 / 16.8,
    # 6.465 / 16.69, 6.55 / 17.1, 6.97 / 19.2, 7.5 / 21.9; the shipped merged head at 0:
    # 6.499 -> 6.467; test 11.217 -> 11.247 (README, "Rests the meter head hears")
    rest_head: bool = True
    rest_odds: float = 0.0
    # after voices, values and staves are settled: each kept chord's value chosen among the
    # later decoded onsets by the learned value chooser (perf2score.neural.value_choice; the
    # model folder's own, else weights/values); written only where its best option beats
    # the value the chord has by more than value_choice_margin (nats of the chord's summed
    # log-probabilities). Validation, shipped model, E_avg / offset: off 6.467 / 16.69, on
    # at 0.5 6.266 / 15.69; pooled offset errors by margin 0 / 0.5 / 1 / 2: 14.13 / 14.04 /
    # 14.04 / 14.34 % (README, "Values chosen among the later onsets")
    value_choice: bool = True
    value_choice_margin: float = 0.5
    # a key signature for each section where the music settles in a remote key
    # (perf2score.score.key_sections), or the home key's throughout (false); the spelling
    # follows each section's key either way. Validation, shipped model: notes under the
    # score's signature (key_note_acc) 96.7 % one signature, 92.1 % a signature a section
    # (Beethoven's op. 53 written with an E major section where the score keeps C major);
    # the training split's scores: 81.8 -> 86.2 % (README, "Key signatures per section")
    key_changes: bool = False
    # a note that sounds at least this many quarters past the next onset of its staff gets a
    # voice of its own, before the gaps are closed (0 = off: the voice head's voices; see
    # perf2score.neural.voices). Validation, shipped model, E_avg over 0, 1, 2: 8.43, 9.63,
    # 9.07 (offset 21.4, 27.4, 24.6; voice 34.2, 38.6, 36.2): the values it keeps are wrong
    held_voice_quarters: float = 0.0
    # voices within a staff: "head" (the decoder's voice head: one voice per staff in
    # practice) or "pass" (the voice pass, perf2score.models.voice_head, reading the whole
    # decoded piece; needs trained weights, none shipped). Validation, shipped model: head
    # E_avg 8.44 / offset 21.0 / voice 32.9; pass (configs/voices.toml) 8.78 / 22.6 / 33.3
    # "hands": the hand head's second-voice odds, cut per decoded onset and staff (the head
    # is loaded with staff "hands"; without one asked "second_voice", or with another
    # staff choice, the decoder's voices stay; perf2score.neural.hands). Shipped since
    # 2026-12-04 (tenth session) with the hand head of configs/hands-voices-from-hands.toml:
    # validation voice error 26.43 -> 25.70, E_avg 7.386 -> 7.374, hand 7.11 -> 7.25
    # (test: 40.9 -> 41.0, 11.94 -> 11.92; README)
    voices: str = "hands"
    voice_confidence: float = 0.0  # the pass moves a note out of voice 1 only this sure
    second_voice_bias: float = 0.0  # nats added to the hand head's second-voice log-odds
    # nats per semitone the boundary between a staff's two voices moves from one decoded
    # onset to the next (0: a cut per onset). Validation, the joint head of
    # configs/hands-voices-tuned.toml (README, "Second voices from a head"): voice error
    # 27.57 (one voice per staff) -> 29.11 (0), 27.18 (0.1), 27.06 (0.5), 27.51 (1.5)
    second_voice_continuity: float = 0.5
    # nats added to the second-voice log-odds of a note struck while a higher note of its
    # staff is still held (key down) second_voice_held_margin seconds past its onset
    # (neural.hands.held_above; 0 = off): the accompaniment under a held melody note.
    # Validation, cached decodings (benchmarks/voice_pass.py), voice error 25.72 (off) ->
    # 25.31 (1), 25.33 (2), 25.40 (3, margin 0.2), 26.28 (5); margin 0.05 / 0.2: 25.31 / 25.35
    second_voice_held_weight: float = 2.0
    second_voice_held_margin: float = 0.1
    # with voices "hands": after the split, a first-voice value that ends where another
    # voice of its staff begins is extended to the next onset of its own voice when that is
    # at most this many quarters away (neural.values.close_split_gaps; 0 = off). Validation,
    # same route, held weight 2, the shipped hand head: offset 18.18 (off) -> 17.88 (4 or
    # 8); every voice, not only the first: 19.03 (README, "Melody over accompaniment")
    voice_gap_quarters: float = 4.0
    # close those gaps in every voice of the staff, not only the first (with the voice
    # chooser: the values of the notes it moves to the second voice reach their own
    # voice's next onset; under the rule alone it cost offsets, 17.88 -> 19.03). Shipped
    # with voice_choice (twenty-seventh session; README, "Second voices chosen by a learned
    # pass"): validation E_avg 6.266 -> 6.250, offset 15.69 -> 15.61, voice 24.88 -> 23.99
    voice_gap_all: bool = True
    # with voices "hands": the second voices chosen by the learned voice chooser
    # (perf2score.neural.voice_choice; the model folder's own, else weights/voice_choice)
    # from the head's odds, the rule's voices and the decoded piece around each note: its
    # log-odds plus voice_choice_bias, cut per onset and staff (voice_choice_continuity:
    # nats per semitone, 0 a cut per onset). Validation, shipped model: voice error 24.88
    # -> 23.99; with the first voice's gaps closed only, offset 15.69 -> 15.89 and E_avg
    # 6.266 -> 6.307; with every voice's (voice_gap_all, shipped) 15.61 and 6.250 (README,
    # "Second voices chosen by a learned pass")
    voice_choice: bool = True
    voice_choice_bias: float = 0.0
    voice_choice_continuity: float = 0.0
    # with voice_choice: the voices as lines instead (perf2score.neural.voice_links; the
    # model folder's own linker, else weights/voice_links): every note linked to the notes
    # that follow it in its voice, the chooser's log-odds among what the links read, and a
    # tracker over each staff's onsets; a note with no link of voice_links_new nats opens a
    # voice of its own (up to 4 a staff); the voices then numbered by register in each
    # measure. Shipped (twenty-eighth session; README, "Voices as lines"): validation E_avg
    # 6.250 -> 6.116, offset 15.61 -> 14.94, voice 23.99 -> 22.86; new-voice threshold
    # chosen on validation by the proxy (mean over performances, -1: 24.42, -0.5: 24.16,
    # 0: 24.51). voice_links_chord: how a note weighs joining a voice a note above it at
    # its onset already joined (neural.voice_links.linked_voices): "max" (the twenty-eighth
    # session's) the stronger of the link from that note and the one from the voice's last
    # chord, "mean" their mean. Twenty-ninth session (README, "A chord joined by both its
    # links"): the proxy pooled, max at -0.5 / mean at -0.5 / -1.0 / -1.5 / -2.0: validation
    # 24.03 / 23.52 / 23.46 / 23.69 / 23.97, training (every 4th) 28.96 / 28.03 / 27.92 /
    # 28.15 / 28.57
    voice_links: bool = True
    voice_links_new: float = -1.0
    voice_links_chord: str = "mean"
    # the staff of each note, set after its value is settled (perf2score.neural.hands):
    # "decoder" (the decoder's staff head), "split" (the classical hand split), "hands" (the
    # hand head cut per decoded onset, the split's vote added with hand_split_weight; needs
    # the hand head: without one, as "split"). Validation, shipped model, E_avg / offset /
    # voice / hand: decoder 8.44 / 21.0 / 32.9 / 17.0; split 8.39 / 20.7 / 31.9 / 11.9;
    # hands (weight 1) 8.38 / 20.6 / 31.4 / 8.56. Staves set before the values are closed
    # (a head trained with transposition): 8.77 / 22.5 / 31.7 / 10.2 (README)
    staff: str = "hands"
    hand_split_weight: float = 1.0  # nats added towards the classical split's staff
    # nats per semitone the hands' boundary moves from one decoded onset to the next (0:
    # each onset cut on its own). Validation, E_avg / offset / voice / hand / staff right:
    # 0 8.378 / 20.65 / 31.42 / 8.56 / 91.50 %; 0.1 8.359 / 20.55 / 31.01 / 8.41 / 91.64 %;
    # 0.3 8.361 / 20.57 / 31.16 / 8.43 / 91.64 %; 1.0: 91.32 % (README)
    hand_continuity: float = 0.1
    # bar lines: "piece" re-bars the decoded piece in its main time signature with the bar
    # phase tracked from the meter head (perf2score.neural.meter; needs the head: without
    # one, as "window"); "window": each window's own bar lines. Validation (shipped model),
    # downbeat F / irregular measures per piece / E_avg: window 0.119 / 38.0 / 8.43; piece
    # with 16th changes 12 nats, larger ones 40, slips not closed 0.222 / 16.6 / 8.43
    meter: str = "piece"
    # (16 / 48 since the evidence is relative to the piece: 12 / 40 gave 0.254 / 22.7 / 8.353)
    # 18 / 18 with meter_beat_weight 0.5 since 2026-12-05. Validation, downbeat F /
    # irregular measures per performance / E_avg, change / jump: 16 / 48 0.279 / 14.0 /
    # 7.269; 16 / 24 0.318 / 15.5 / 7.268; 16 / 16 0.351 / 21.9 / 7.267; 24 / 24 0.315 /
    # 13.7 / 7.268; 18 / 18 with beat weight 0.5 0.325 / 13.3 / 7.268 (README, "Cheaper
    # phase jumps")
    meter_change_cost: float = 18.0  # nats per change of the bar phase by a 16th (a slip)
    meter_jump_cost: float = 18.0  # nats per larger change of the bar phase
    # nats per downbeat that no decoded onset falls on (0 = off): 98.6 % of the measures of
    # the training scores have an onset on their downbeat (log(0.5 / 0.014) is about 3.6);
    # without it, a phase with every note between the bar lines could win where the head's
    # evidence is weak (the demo). Validation, downbeat F / beat F / irregular measures per
    # piece (E_avg 8.35 throughout): 0 0.238 / 0.445 / 16.4; 2 0.241 / 0.453 / 15.6;
    # 4 0.244 / 0.454 / 15.5; 8 0.245 / 0.453 / 15.0 (README)
    meter_empty_downbeat_cost: float = 4.0
    # nats a bar phase pays when the piece's first onset is not on a downbeat (it opens with
    # a pickup measure; 0 = no preference). Validation (86 performances, 9 with a pickup),
    # pickup right / downbeat F / irregular measures per piece, E_avg 8.351 throughout:
    # 0 0.349 / 0.244 / 15.5; 8 0.465 / 0.242 / 15.4; 30 0.756 / 0.242 / 15.7; 100 0.837 /
    # 0.242 / 15.8 (README)
    meter_pickup_cost: float = 30.0
    # nats a bar phase pays for a change by exactly one beat where an onset comes two or
    # more beats after the one before (a held note or rest written a beat short or long, as
    # at a phrase end played slower); that change is then closed, the held step lengthened
    # or shortened by the beat (perf2score.score.barring.close_held_slips; 0 = off: such a
    # change costs meter_jump_cost and leaves an irregular measure). Validation (86
    # performances), downbeat F / pickup right / irregular measures per piece / E_avg:
    # 0 0.258 / 80.2 % / 16.3 / 8.166; 16 0.262 / 83.7 % / 16.2 / 8.166; 8 0.266 / 86.0 % /
    # 16.0 / 8.167; 3 0.268 / 86.0 % / 15.9 / 8.167 (README)
    meter_held_cost: float = 8.0
    # weight of the meter head's beat evidence against its downbeat evidence in the bar-phase
    # tracking (perf2score.score.barring.track_phase's beat_weight; 0 = downbeats only).
    # 0.5 since 2026-12-05, 1 before (validation, with 18 / 18 nat phase changes: downbeat
    # F 0.325, 13.3 irregular measures a performance; 0.25 at 16 / 16: 0.318, 12.3). 0.25
    # since 2026-12-06, with the meter head trained on the fine-tuned performance LM
    # (downbeat F 0.380 against 0.391 at 0.5, irregular measures 11.3 against 13.5, pickups
    # right 84.9 against 83.7 %; docs/meter.md)
    meter_beat_weight: float = 0.25
    # close the slips by moving the later onsets (regular bars, but onset intervals change:
    # E_avg 8.43 -> 8.51 at costs 8/40) instead of an irregular measure at each change
    meter_close_slips: bool = False
    # the head's evidence relative to the piece (perf2score.neural.meter.relative_odds): each
    # note's log-odds minus those of the piece's mean probability (False: as the head gives).
    # Validation, downbeat F / irregular measures per piece / E_avg, phase changes 12 / 40
    # nats: as given 0.222 / 19.3 / 8.359; relative 0.257 / 22.8 / 8.351; relative with the
    # tracked meter, 16 / 48 nats: 0.235 / 16.3 / 8.351 (README)
    meter_relative: bool = True
    # nats added to a note's downbeat log-odds per doubling of the longest played length
    # (key down to key up, seconds) among its decoded onset's notes over the piece's median
    # such length, capped at two doublings (perf2score.neural.meter.length_accent: long notes
    # begin bars, as the metrical preference rules have it; 0 = off)
    meter_length_weight: float = 0.0
    # downbeats tracked in performance time (perf2score.neural.downbeats: a tempo and bar
    # position followed over the played onsets with the meter head's evidence) move the
    # head's per-note log-odds by this much towards yes near a tracked (down)beat and
    # towards no elsewhere, before the phase tracking (0 = off: the head's odds alone).
    # Validation, downbeat F / irregular measures per piece / E_avg: 0 0.222 / 19.3 / 8.44;
    # 4 0.306 / 60.9 / 8.44; 8 0.356 / 89.1 / 8.44; with slips closed, 4 0.303 / 47.8 /
    # 8.55, 8 0.352 / 72.0 / 8.60: the decoded onsets slip, so following the tracked bars
    # costs an irregular measure at each slip: off
    downbeat_tracking: float = 0.0
    # bars laid on the tracked downbeats instead (perf2score.neural.tracked_bars): each
    # tracked bar one measure at the piece's value scale, a slip of up to an 8th of a bar
    # taken out of the interval the performance disagrees with most, larger ones left as
    # irregular measures. Validation, E_avg / downbeat F / irregular measures per piece:
    # 8.53 / 0.427 / 99.6 (shipped 8.44 / 0.222 / 19.3); stretching every bar to fit
    # instead: 10.4 / 0.423 / 0 (README): off
    tracked_bars: bool = False
    # what the user knows of the piece (bar lines per piece only): its time signature
    # ("3/4"; "" = the one most notes were decoded in) and notated tempo (quarters per
    # minute; 0 = the decoder's): the decoded values are halved, kept or doubled, whichever
    # brings their tempo nearest it
    time_signature: str = ""
    tempo: float = 0.0
    # a given time signature is also forced on each window's first kept note (its time
    # signature and measure length tokens), so the decoder writes positions in that meter;
    # False: it only re-bars the notes decoded in the decoder's own meter. Validation, each
    # performance given its ground-truth main time signature: forced E_avg 9.03 / downbeat
    # F 0.226; re-barred only 8.45 / 0.237 (none given: 8.44 / 0.222): off
    force_given_meter: bool = False
    # the meter and tempo not given: "decoder" (the time signature most notes were decoded
    # in, the decoded value scale) or "tracked" (perf2score.neural.meter_estimate: bars of
    # 2, 3 and 4 beats tracked over the played onsets; 3/4 at the tracked beat rate when
    # the decoder wrote a duple meter and bars of three lead the best duple ones by more
    # than triple_margin nats a minute, else as "decoder")
    # Validation, main time signature right / value scale right: decoder 67.4 % / 75.6 %;
    # tracked 72.1 % / 76.7 % (README)
    meter_estimate: str = "tracked"
    triple_margin: float = 2.0  # 1 until 2026-12-06 (docs/meter.md)
    # with "tracked", a triple meter the decoder wrote becomes the duple one it wrote most
    # (4/4 when none) when the best duple bars lead bars of three by more than this many
    # nats a minute (negative: never). Training split (797), 2,400-step model, main time
    # signature right: never 42.3 %, 2 nats 45.2 %, with triple_margin 2 45.8 % (docs/meter.md)
    duple_margin: float = 2.0
    # "tracked" and the decoder wrote a triple meter: the value scale from the beat tracked
    # in it too (False: the decoder's own scale). The 2,000-step model decodes make demo's
    # minuet in 3/4 at half its values (8 bars); with it, 16 bars and every onset right.
    # Validation: the same scores (no performance changes) (README)
    triple_tempo: bool = True
    # triple_tempo only for a performance on the steady path (neural.decode.on_steady_path:
    # played on a metronome's grid, where the tracked beat is the notated one; make demo's
    # minuet); a human performance keeps the decoder's own scale. Training split (797
    # performances, benchmarks/rebar.py --split train): value scale right 57.8 % (the
    # tracked beat for every performance) -> 59.0 %, main time signature 43.5 % either way;
    # validation and test outputs byte-identical (README)
    triple_tempo_steady_only: bool = True

    def __post_init__(self) -> None:
        if self.window < 2 or not 0 <= self.overlap < self.window:
            raise ValueError("need window >= 2 and 0 <= overlap < window")
        if self.tempo_weight < 0 or self.tempo_slack_grid < 1:
            raise ValueError("need tempo_weight >= 0 and tempo_slack_grid >= 1")
        if not 0 < self.tempo_blend <= 1:
            raise ValueError("need 0 < tempo_blend <= 1")
        if self.tempo_tolerance < 0:
            raise ValueError("need tempo_tolerance >= 0")
        if not self.step_weight >= 0:
            raise ValueError("need step_weight >= 0")
        if self.tempo_clock not in ("seconds", "beats"):
            raise ValueError("tempo_clock must be 'seconds' or 'beats'")
        if self.steady_residual < 0 or self.steady_tempo_weight < 0 or self.steady_slack_grid < 1:
            raise ValueError(
                "need steady_residual >= 0, steady_tempo_weight >= 0, steady_slack_grid >= 1"
            )
        if self.tempo_start not in ("none", "tracked"):
            raise ValueError("tempo_start must be 'none' or 'tracked'")
        if not 0 <= self.prior_weight <= 1:
            raise ValueError("need 0 <= prior_weight <= 1")
        object.__setattr__(self, "prior_streams", tuple(self.prior_streams))  # JSON: a list
        names = {stream.name for stream in SCORE_STREAMS}
        unknown_streams = set(self.prior_streams) - names
        if unknown_streams:
            raise ValueError(f"prior_streams: no score streams {sorted(unknown_streams)}")
        object.__setattr__(self, "beam_streams", tuple(self.beam_streams))
        refused = set(self.beam_streams) - (names - {"bar", "position"})  # or the onset's own
        if refused:
            raise ValueError(
                f"beam_streams: score streams other than bar and position, not {sorted(refused)}"
            )
        if self.beam < 1 or self.steady_beam < 1:
            raise ValueError("need beam >= 1 and steady_beam >= 1")
        if self.chain_windows < 0:
            raise ValueError("need chain_windows >= 0")
        if self.chain_from not in ("first", "tempo"):
            raise ValueError("chain_from must be 'first' or 'tempo'")
        if self.junction_notes < 1:
            raise ValueError("need junction_notes >= 1")
        if not 0 <= self.chord_seconds <= self.apart_seconds:
            raise ValueError("need 0 <= chord_seconds <= apart_seconds")
        if not self.legato_gap_quarters >= 0:
            raise ValueError("need legato_gap_quarters >= 0")
        if not self.legato_silence_share >= 0:
            raise ValueError("need legato_silence_share >= 0")
        if not 0 <= self.long_gap_silence_share <= 1:
            raise ValueError("need 0 <= long_gap_silence_share <= 1")
        if not math.isfinite(self.rest_odds):
            raise ValueError("need a finite rest_odds")
        if not math.isfinite(self.value_choice_margin):
            raise ValueError("need a finite value_choice_margin")
        if not math.isfinite(self.voice_choice_bias):
            raise ValueError("need a finite voice_choice_bias")
        if not self.voice_choice_continuity >= 0:
            raise ValueError("need voice_choice_continuity >= 0")
        if not math.isfinite(self.voice_links_new):
            raise ValueError("need a finite voice_links_new")
        from perf2score.neural.voice_links import CHORD_RULES  # its one list of the rules

        if self.voice_links_chord not in CHORD_RULES:
            raise ValueError(f"voice_links_chord must be one of {CHORD_RULES}")
        if not self.held_voice_quarters >= 0:
            raise ValueError("need held_voice_quarters >= 0")
        if self.voices not in ("head", "pass", "hands"):
            raise ValueError("voices must be 'head', 'pass' or 'hands'")
        if not 0 <= self.voice_confidence <= 1:
            raise ValueError("need 0 <= voice_confidence <= 1")
        if self.staff not in ("decoder", "split", "hands"):
            raise ValueError("staff must be 'decoder', 'split' or 'hands'")
        if not self.hand_split_weight >= 0:
            raise ValueError("need hand_split_weight >= 0")
        if not self.hand_continuity >= 0:
            raise ValueError("need hand_continuity >= 0")
        if self.meter not in ("piece", "window"):
            raise ValueError("meter must be 'piece' or 'window'")
        if not (self.meter_change_cost >= 0 and self.meter_jump_cost >= 0):
            raise ValueError("need meter_change_cost >= 0 and meter_jump_cost >= 0")
        for name in (
            "meter_length_weight",
            "meter_pickup_cost",
            "meter_held_cost",
            "meter_beat_weight",
            "meter_empty_downbeat_cost",
        ):
            if not getattr(self, name) >= 0:
                raise ValueError(f"need {name} >= 0")
        if self.meter_estimate not in ("decoder", "tracked"):
            raise ValueError("meter_estimate must be 'decoder' or 'tracked'")
        if not self.second_voice_continuity >= 0:
            raise ValueError("need second_voice_continuity >= 0")
        if not math.isfinite(self.second_voice_bias):
            raise ValueError("second_voice_bias must be finite")
        if not self.voice_gap_quarters >= 0:
            raise ValueError("need voice_gap_quarters >= 0")
        if not (self.second_voice_held_weight >= 0 and self.second_voice_held_margin >= 0):
            raise ValueError("need second_voice_held_weight >= 0 and second_voice_held_margin >= 0")
        if not math.isfinite(self.drop_bias):
            raise ValueError("need a finite drop_bias")
        if not math.isfinite(self.triple_margin):
            raise ValueError("need a finite triple_margin")
        if not math.isfinite(self.duple_margin):
            raise ValueError("need a finite duple_margin (negative: never)")
        if not self.segment_scale_cost >= 0:
            raise ValueError("need segment_scale_cost >= 0")
        if self.segment_scale_states not in STATE_SETS:
            raise ValueError(f"segment_scale_states must be one of {sorted(STATE_SETS)}")
        if self.segment_scale_clock not in ("seconds", "beats"):
            raise ValueError("segment_scale_clock must be 'seconds' or 'beats'")
        if not self.downbeat_tracking >= 0:
            raise ValueError("need downbeat_tracking >= 0")
        self.meter_given()  # a malformed time signature fails here
        if not (self.tempo == 0 or 20 <= self.tempo <= 400):
            raise ValueError(f"tempo {self.tempo}: give quarters per minute, 20 to 400 (0: none)")
        if (self.time_signature or self.tempo) and self.meter != "piece":
            raise ValueError("a given time signature or tempo needs meter = 'piece'")

    def with_meter(self, time_signature: str | None, tempo: float | None) -> DecodeConfig:
        """These settings with the time signature ("3/4") and notated tempo (quarters per
        minute) the user knows (None: not given), bar lines per piece; ``Perf2ScoreError``
        when one is malformed."""
        try:
            return replace(
                self, meter="piece", time_signature=time_signature or "", tempo=tempo or 0.0
            )
        except ValueError as exc:
            raise Perf2ScoreError(str(exc)) from None

    def meter_given(self) -> tuple[int, int] | None:
        """The time signature the user gave, as (numerator, denominator); None when none."""
        if not self.time_signature:
            return None
        num, _, den = self.time_signature.partition("/")
        if not (
            num.isdigit() and den.isdigit() and 1 <= int(num) <= 12 and int(den) in DENOMINATORS
        ):
            raise ValueError(
                f"time signature {self.time_signature!r}: give N/D, N 1-12, D one of {DENOMINATORS}"
            )
        return int(num), int(den)

    def to_dict(self) -> dict:
        """The settings as JSON values (tuples as lists): what ``decoding.json`` holds."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict, where: str = "decoding") -> DecodeConfig:
        """Settings from a dict (unknown keys and invalid values: ``Perf2ScoreError``)."""
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise Perf2ScoreError(f"{where}: unknown decoding settings {sorted(unknown)}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise Perf2ScoreError(f"{where}: {exc}") from exc

    def save(self, folder: str | os.PathLike) -> None:
        """Write ``decoding.json`` into ``folder``."""
        atomic_write(Path(folder) / DECODING_FILE, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, path: str | os.PathLike) -> DecodeConfig:
        """Settings from a JSON file, or from ``decoding.json`` when ``path`` is a folder (a
        folder without one: the defaults)."""
        path = Path(path)
        if path.is_dir():
            path = path / DECODING_FILE
            if not path.is_file():
                return cls()
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise Perf2ScoreError(f"{path}: no such file") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise Perf2ScoreError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise Perf2ScoreError(f"{path}: expected a JSON object of decoding settings")
        return cls.from_dict(data, str(path))
