"""Token streams for the two language models: one spec table, encoders and decoders."""

from perf2score.tokens.performance import decode_performance, encode_performance
from perf2score.tokens.score import decode_score, encode_score
from perf2score.tokens.spec import (
    IGNORE_INDEX,
    PERFORMANCE_STREAMS,
    SCORE_STREAMS,
    STREAMS,
    Stream,
    stream,
)

__all__ = [
    "IGNORE_INDEX",
    "PERFORMANCE_STREAMS",
    "SCORE_STREAMS",
    "STREAMS",
    "Stream",
    "decode_performance",
    "decode_score",
    "encode_performance",
    "encode_score",
    "stream",
]
