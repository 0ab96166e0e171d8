"""Scores: reading MusicXML into exact note tables (assembly and export come later)."""

from perf2score.score.reading import ScoreNotes, load_musicxml, read_score, score_notes_from_part

__all__ = ["ScoreNotes", "load_musicxml", "read_score", "score_notes_from_part"]
