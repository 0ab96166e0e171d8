"""Musical constants shared by the converters, the tokens and the training data.

One definition each; every module that needs one imports it from here.
"""

GRID_PER_QUARTER = 24  # ticks per quarter of the converters' score time (triplets and 32nds)
CHORD_SECONDS = 0.035  # notes played closer than this may be one chord (any order)
APART_SECONDS = 0.07  # notes played further apart never share an onset (0.5 % of ASAP's do)
