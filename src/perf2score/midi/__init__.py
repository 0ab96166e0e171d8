"""Reading expressive performance MIDI files."""

from perf2score.midi.reading import Performance, PerformanceNote, read_performance

__all__ = ["Performance", "PerformanceNote", "read_performance"]
