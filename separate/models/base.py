"""The model contract shared by every architecture.

Every model maps ``mix: [B, C, T]`` to ``est: [B, S, C, T]`` (C = ``audio_channels``,
S = ``len(sources)``) and returns exactly T samples for any T. Its constructor takes plain
JSON-serialisable keyword arguments; :attr:`SeparationModel.config` records them so a checkpoint
can rebuild the model.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from typing import Any, ClassVar

from torch import Tensor, nn


def source_names(sources: int | Sequence[str]) -> list[str]:
    """``2 -> ["s1", "s2"]``; a list of names is returned as a list."""
    if isinstance(sources, int):
        if sources < 1:
            raise ValueError("a model needs at least one source")
        return [f"s{i + 1}" for i in range(sources)]
    names = [str(name) for name in sources]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"source names must be unique and non-empty, got {names}")
    return names


class SeparationModel(nn.Module):
    """Base class: declares the I/O facts the engine needs and records constructor kwargs.

    Subclasses call ``super().__init__(sample_rate=..., sources=..., audio_channels=..., causal=...)``
    and may set ``receptive_field`` (samples of context one output sample sees, ``None`` if
    unbounded, e.g. recurrent or attention over the whole input) and ``default_segment`` (seconds
    of audio per chunk the engine should use when the user gives none).
    """

    architecture: ClassVar[str] = ""
    #: True for speech models trained with permutation-invariant losses (the engine then keeps
    #: speakers on the same output across chunks).
    permutation_invariant: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            return
        init = cls.__init__
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self: SeparationModel, *args: Any, **kw: Any) -> None:
            init(self, *args, **kw)
            if type(self) is cls:
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                config = dict(bound.arguments)
                config.pop("self")
                extra = config.pop("kwargs", None) if "kwargs" in signature.parameters else None
                if extra:
                    config.update(extra)
                self.config = _jsonable(config)

        cls.__init__ = recording_init  # type: ignore[method-assign]

    def __init__(
        self,
        *,
        sample_rate: int,
        sources: int | Sequence[str],
        audio_channels: int = 1,
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.sources = source_names(sources)
        self.audio_channels = int(audio_channels)
        self.causal = bool(causal)
        self.receptive_field: int | None = None
        self.default_segment: float | None = None
        self.config: dict[str, Any] = {}

    @property
    def n_src(self) -> int:
        return len(self.sources)

    def forward(self, mix: Tensor) -> Tensor:  # pragma: no cover - abstract
        """mix: [B, C, T] -> [B, S, C, T]."""
        raise NotImplementedError


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"model config values must be JSON-serialisable, got {type(value).__name__}")
