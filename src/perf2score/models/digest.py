"""A fingerprint of a language model's weights, to tell whether two folders hold the same LM.

A head trained on a performance LM (``perf2score train meter``) records the digest of the
LM it read; a model whose performance LM has that digest can hand the head the states of
its own encoder pass instead of a pass of the head's copy. The weights are rounded to
float16 first, so that a run's float32 weights and their shipped float16 copy agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np


def lm_digest(weights: Mapping[str, np.ndarray]) -> str:
    """Hex digest (32 characters) of an LM's weights by name (any float dtype, any order of
    names): the names, shapes and float16-rounded values."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(weights):
        value = np.ascontiguousarray(np.asarray(weights[name], dtype=np.float16))
        digest.update(f"{name}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()
