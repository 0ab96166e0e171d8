"""The classical (non-neural) converter: beat tracking, quantisation, hands, voices, spelling.

It produces the same per-note score attributes as the models and goes through the same
score assembly; it is the baseline and the fallback when no trained weights are present.
"""

from perf2score.classical.converter import classical_attributes

__all__ = ["classical_attributes"]
