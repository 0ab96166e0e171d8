"""perf2score: expressive piano performance MIDI → readable score.

Public names are re-exported here; everything else lives in its subpackage:
``midi`` (reading performances), ``score`` (reading scores), ``data`` (training targets),
``evaluate`` (metrics).
"""

from perf2score.convert import Score, convert
from perf2score.errors import Perf2ScoreError
from perf2score.midi import Performance, PerformanceNote, read_performance

__all__ = [
    "Perf2ScoreError",
    "Performance",
    "PerformanceNote",
    "Score",
    "convert",
    "read_performance",
]
__version__ = "0.1.0"
