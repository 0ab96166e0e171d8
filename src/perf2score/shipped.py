"""Where the package's own trained weights are (found from the package path, no network).

``weights/performance`` and ``weights/score``: the pre-trained LMs (``config.json`` +
``model.safetensors``); ``weights/adapter``: the fine-tuned aligned model that reads them
(``adapter.json`` + ``adapter.safetensors`` + ``decoding.json``); ``weights/meter``: the meter
head that places the bar lines (``meter.json`` + ``meter.safetensors``); ``weights/hands``: the
hand head that chooses the staves (the same files); ``weights/steps``: the step head that
holds the decoder to the played rhythm (the same files); ``weights/voices``: the
voice pass (``voices.json`` + ``voices.safetensors``); ``weights/values``: the value chooser
(``value_choice.json`` + ``value_choice.safetensors``); ``weights/voice_choice``: the voice
chooser (``voice_choice.json`` + ``voice_choice.safetensors``); ``weights/voice_links``: the
voice linker (``voice_links.json`` + ``voice_links.safetensors``).
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_ADAPTER = WEIGHTS_DIR / "adapter"
SHIPPED_METER = WEIGHTS_DIR / "meter"
SHIPPED_HANDS = WEIGHTS_DIR / "hands"
SHIPPED_STEPS = WEIGHTS_DIR / "steps"
SHIPPED_VOICES = WEIGHTS_DIR / "voices"
SHIPPED_VALUES = WEIGHTS_DIR / "values"
SHIPPED_VOICE_CHOICE = WEIGHTS_DIR / "voice_choice"
SHIPPED_VOICE_LINKS = WEIGHTS_DIR / "voice_links"
SHIPPED_LMS = {"performance": WEIGHTS_DIR / "performance", "score": WEIGHTS_DIR / "score"}


def shipped_available() -> bool:
    """Whether the package holds a trained aligned model."""
    return (SHIPPED_ADAPTER / "adapter.json").is_file()
