"""separate: audio source separation for music and speech.

Public API (each imports torch only when first used):

* :func:`separate`: one call, ``separate.separate(audio, sample_rate, model="NAME_OR_PATH")`` -> stems;
* :class:`Separator`: chunked overlap-add inference over audio of any length (:mod:`separate.engine`);
* :func:`load_model`: a registry name, a local ``.safetensors`` path or ``hf://org/repo/file``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Separator", "load_model", "separate", "__version__"]

if TYPE_CHECKING:
    from separate.checkpoints import load_model
    from separate.engine import Separator
    from separate.inference import separate


def __getattr__(name: str) -> Any:
    if name == "Separator":
        from separate.engine import Separator

        return Separator
    if name == "load_model":
        from separate.checkpoints import load_model

        return load_model
    if name == "separate":
        from separate.inference import separate

        return separate
    raise AttributeError(name)
