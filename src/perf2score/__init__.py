"""perf2score: expressive piano performance MIDI → readable score.

Public names are re-exported here; everything else lives in its subpackage:
``midi`` (reading performances), ``score`` (the attribute record, reading, assembly,
export), ``classical`` and ``neural`` (the two backends), ``models`` and ``tokens`` (the
language models), ``data`` (training targets), ``train``, ``evaluate`` (metrics). The
``convert`` function lives in ``perf2score.conversion``.
"""

from perf2score.conversion import Score, convert
from perf2score.errors import Perf2ScoreError
from perf2score.midi import Performance, PerformanceNote, read_performance
from perf2score.neural.converter import NeuralModel, load_neural_model

__all__ = [
    "NeuralModel",
    "Perf2ScoreError",
    "Performance",
    "PerformanceNote",
    "Score",
    "convert",
    "load_neural_model",
    "read_performance",
]
__version__ = "0.1.0"
