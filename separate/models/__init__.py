"""Registry of architectures and named presets.

Each model module defines ``ARCHITECTURES`` (name -> class) and ``PRESETS`` (preset name ->
``{"architecture": name, **kwargs}``); this package gathers them. Shared pieces: :mod:`.base` (the
model contract), :mod:`.layers` (norms, attention, dual-path segmentation), :mod:`.filterbanks`
(encoders and decoders), :mod:`.masking` (the encoder -> masker -> decoder base). Families:
:mod:`.convtasnet`, :mod:`.tasnet` (TasNet, LTL), :mod:`.dualpath` (DPRNN, DPTNet, GALR),
:mod:`.tdanet` (+ :mod:`.tdanet_layers`), :mod:`.waveunet`, :mod:`.waveunet_lite`.

    >>> from separate import models
    >>> model = models.build("convtasnet", sources=3)
"""

from __future__ import annotations

import importlib
from typing import Any

from torch import nn

from separate.errors import SeparateError
from separate.models.base import SeparationModel, source_names

__all__ = ["ARCHITECTURES", "PRESETS", "SeparationModel", "build", "source_names"]

_MODULES = ("convtasnet", "tasnet", "dualpath", "tdanet", "waveunet", "waveunet_lite")


def _gather() -> tuple[dict[str, type[SeparationModel]], dict[str, dict[str, Any]]]:
    architectures: dict[str, type[SeparationModel]] = {}
    presets: dict[str, dict[str, Any]] = {}
    for name in _MODULES:
        module = importlib.import_module(f"separate.models.{name}")
        architectures.update(module.ARCHITECTURES)
        presets.update(module.PRESETS)
    return architectures, presets


ARCHITECTURES, PRESETS = _gather()


def build(name: str, **kwargs: Any) -> nn.Module:
    """Build a preset (its kwargs, overridden by ``kwargs``) or a bare architecture by name."""
    if name in PRESETS:
        preset = dict(PRESETS[name])
        architecture = preset.pop("architecture")
        preset.update(kwargs)
        kwargs = preset
    elif name in ARCHITECTURES:
        architecture = name
    else:
        known = ", ".join(sorted(set(PRESETS) | set(ARCHITECTURES)))
        raise SeparateError(f"unknown model architecture or preset '{name}' (known: {known})")
    return ARCHITECTURES[architecture](**kwargs)
