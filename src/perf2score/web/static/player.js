// A small Web Audio player for the score MIDI's notes ([onset s, duration s, pitch, velocity]):
// each note is two detuned oscillators under a struck-string envelope, scheduled a little
// ahead of time so that long scores do not create every node at once.
"use strict";

class ScorePlayer {
  constructor(onEnd) {
    this.context = null;
    this.notes = [];
    this.next = 0;
    this.timer = null;
    this.start = 0;
    this.scheduled = 0;
    this.onEnd = onEnd;
  }

  get playing() { return this.timer !== null; }

  play(notes) {
    this.stop();
    this.context = this.context || new AudioContext();
    this.context.resume();
    this.notes = notes;
    this.next = 0;
    this.scheduled = 0;
    this.master = this.context.createGain();
    this.master.gain.value = 0.25;
    this.master.connect(this.context.destination);
    this.start = this.context.currentTime + 0.1;
    this.timer = setInterval(() => this.schedule(), 100);
    this.schedule();
  }

  schedule() {
    const horizon = this.context.currentTime - this.start + 1.0;  // seconds of score ahead
    while (this.next < this.notes.length && this.notes[this.next][0] < horizon) {
      this.sound(this.notes[this.next]);
      this.next += 1;
      this.scheduled += 1;
    }
    if (this.next >= this.notes.length) {
      const last = this.notes.reduce((end, n) => Math.max(end, n[0] + n[1]), 0);
      if (this.context.currentTime > this.start + last + 0.5) this.finish();
    }
  }

  sound([onset, duration, pitch, velocity]) {
    const ctx = this.context;
    const at = this.start + onset;
    const frequency = 440 * Math.pow(2, (pitch - 69) / 12);
    const gain = ctx.createGain();
    const level = 0.15 + 0.6 * (velocity / 127);
    gain.gain.setValueAtTime(0, at);
    gain.gain.linearRampToValueAtTime(level, at + 0.005);
    gain.gain.setTargetAtTime(level * 0.3, at + 0.005, 0.4);
    gain.gain.setTargetAtTime(0, at + duration, 0.05);
    gain.connect(this.master);
    for (const [type, detune] of [["triangle", 0], ["sine", 7]]) {
      const osc = ctx.createOscillator();
      osc.type = type;
      osc.frequency.value = frequency;
      osc.detune.value = detune;
      osc.connect(gain);
      osc.start(at);
      osc.stop(at + duration + 0.4);
    }
  }

  finish() {
    this.stop();
    if (this.onEnd) this.onEnd();
  }

  stop() {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.master) {
      this.master.disconnect();
      this.master = null;
    }
  }
}

window.ScorePlayer = ScorePlayer;
