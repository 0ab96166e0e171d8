"""symusic, imported without the sound-font downloader it loads at import time.

symusic 0.6 imports ``pySmartDL`` (a download manager, with urllib, ssl, http and email)
in its sound-font module, only to fetch sound fonts when asked: 0.05-0.08 s of every
conversion's start-up (issue 13). While symusic is imported, a stand-in module answers
``from pySmartDL import SmartDL`` with a function that imports the real downloader on its
first call; the stand-in is removed right after, so any later ``import pySmartDL`` gets the
real package.
"""

from __future__ import annotations

import sys
import types
from typing import Any

STAND_IN = "pySmartDL"


def _smart_dl(*args: Any, **kwargs: Any) -> Any:
    """``pySmartDL.SmartDL(*args, **kwargs)``, the real one, imported now."""
    from pySmartDL import SmartDL

    return SmartDL(*args, **kwargs)


def import_symusic() -> types.ModuleType:
    """The ``symusic`` module (imported once, without importing ``pySmartDL``)."""
    if "symusic" in sys.modules or STAND_IN in sys.modules:
        import symusic

        return symusic
    stand_in = types.ModuleType(STAND_IN)
    stand_in.SmartDL = _smart_dl  # type: ignore[attr-defined]
    sys.modules[STAND_IN] = stand_in
    try:
        import symusic
    finally:
        if sys.modules.get(STAND_IN) is stand_in:
            del sys.modules[STAND_IN]
    return symusic


symusic = import_symusic()
