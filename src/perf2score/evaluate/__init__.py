"""The project's measuring stick: MUSTER-style error rates, MV2H, attribute and beat metrics.

Each module follows mir_eval's shape (``validate``, pure metric functions, named results)
and states its definitions and deviations from the reference tools in its docstring.
"""

from perf2score.evaluate.alignment import NoteMatching, match_notes
from perf2score.evaluate.muster import MusterResult, evaluate_scores
from perf2score.evaluate.mv2h import MV2HResult, evaluate_mv2h, write_mv2h
from perf2score.evaluate.whole import evaluate

__all__ = [
    "MV2HResult",
    "MusterResult",
    "NoteMatching",
    "evaluate",
    "evaluate_mv2h",
    "evaluate_scores",
    "match_notes",
    "write_mv2h",
]
