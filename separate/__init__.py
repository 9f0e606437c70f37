"""separate: audio source separation for music and speech.

Public API: :class:`Separator` (chunked overlap-add inference) and :func:`load_model`
(registry name, local ``.safetensors`` path or ``hf://org/repo/file``). Both import torch lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Separator", "load_model", "__version__"]

if TYPE_CHECKING:
    from separate.checkpoints import load_model
    from separate.engine import Separator


def __getattr__(name: str) -> Any:
    if name == "Separator":
        from separate.engine import Separator

        return Separator
    if name == "load_model":
        from separate.checkpoints import load_model

        return load_model
    raise AttributeError(name)
