"""The language models (imported only by training and the neural backend, never by the
classical converter)."""

from perf2score.models.config import LMConfig
from perf2score.models.io import load_model, save_model
from perf2score.models.lm import NoteLM, score_inputs, shift_right
from perf2score.models.losses import stream_losses

__all__ = [
    "LMConfig",
    "NoteLM",
    "load_model",
    "save_model",
    "score_inputs",
    "shift_right",
    "stream_losses",
]
