"""The language models (imported only by training and the neural backend, never by the
classical converter).

The names below are loaded on first use (PEP 562), so ``perf2score.models.config`` can be
read without importing torch (the numpy runtime, ``perf2score.neural.runtime``, does)."""

from importlib import import_module

_WHERE = {
    "LMConfig": "config",
    "NoteLM": "lm",
    "load_model": "io",
    "save_model": "io",
    "score_inputs": "lm",
    "shift_right": "lm",
    "stream_losses": "losses",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'perf2score.models' has no attribute {name!r}")
    return getattr(import_module(f"perf2score.models.{_WHERE[name]}"), name)
