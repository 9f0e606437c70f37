"""What a benchmark measures: a :class:`Target` (a preset with random weights, or a checkpoint file).

A target travels to the measuring child process as plain JSON (:meth:`Target.spec`), where
:func:`build_target` rebuilds the model. :data:`ENGINE_TARGET` and :data:`MEMORY_TARGET` are the
small Conv-TasNets the engine benchmarks use when no model is named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from separate.errors import SeparateError

if TYPE_CHECKING:
    from separate.models.base import SeparationModel

#: Conv-TasNet reduced to 0.34 M parameters (0.34 GMAC/s): the default model of the engine and batching
#: benchmarks, light enough for a 10-minute input on one CPU core yet not so light that I/O dominates.
SMALL_CONVTASNET = {"n_filters": 128, "bottleneck": 64, "hidden": 128, "skip": 64, "blocks": 6, "repeats": 2}
#: Conv-TasNet reduced to 10 k parameters: the default model of the memory benchmark (60 minutes of audio).
TINY_CONVTASNET = {"n_filters": 32, "bottleneck": 16, "hidden": 32, "skip": 16, "blocks": 4, "repeats": 1}


@dataclass
class Target:
    """A model to measure: a preset built with random weights, or a checkpoint file.

    ``name`` is the preset name (``kind="preset"``) or the checkpoint path (``kind="checkpoint"``);
    ``label`` is what tables show.
    """

    label: str
    kind: Literal["preset", "checkpoint"]
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        """The JSON form a child process rebuilds the model from."""
        if self.kind == "checkpoint":
            return {"kind": "checkpoint", "path": self.name}
        return {"kind": "preset", "name": self.name, "overrides": dict(self.overrides)}


ENGINE_TARGET = Target("convtasnet-small", "preset", "convtasnet", SMALL_CONVTASNET)
MEMORY_TARGET = Target("convtasnet-tiny", "preset", "convtasnet", TINY_CONVTASNET)


def select_targets(
    models: Sequence[str] = (), presets: Sequence[str] = (), all_presets: bool = False
) -> list[Target]:
    """Targets named by ``--model`` (registry name, path, ``hf://``), ``--presets`` and ``--all``, no repeats.

    Checkpoints are resolved (downloaded when needed) and their headers read here, so a bad name or file
    fails before any measurement.
    """
    from separate.checkpoints import read_header, resolve
    from separate.models import PRESETS

    targets: list[Target] = []
    for name in models:
        path = resolve(name)
        read_header(path)
        targets.append(Target(name, "checkpoint", str(path)))
    unknown = [name for name in presets if name not in PRESETS]
    if unknown:
        raise SeparateError(f"unknown preset(s) {', '.join(unknown)} (known: {', '.join(sorted(PRESETS))})")
    for name in [*presets, *(PRESETS if all_presets else ())]:
        targets.append(Target(name, "preset", name))
    unique: dict[tuple[str, str], Target] = {}
    for target in targets:
        unique.setdefault((target.kind, target.name), target)
    return list(unique.values())


def build_target(target: dict[str, Any]) -> SeparationModel:
    """A model from ``{"kind": "preset", "name", "overrides"}`` (random weights, seed 0) or
    ``{"kind": "checkpoint", "path"}``."""
    import torch

    if target["kind"] == "checkpoint":
        from separate.checkpoints import load

        return load(target["path"])
    from separate.models import build

    torch.manual_seed(0)
    return build(target["name"], **target.get("overrides", {}))
