"""Scores: the attribute record, reading MusicXML into exact note tables, assembly, export.

partitura (about a second to import) is imported inside the readers, where a score is read.
"""

from perf2score.score.reading import ScoreNotes, load_musicxml, read_score, score_notes_from_part

__all__ = ["ScoreNotes", "load_musicxml", "read_score", "score_notes_from_part"]
