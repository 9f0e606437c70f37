"""Checks of what users hand the engine, each failing as one line: chunk lengths and samples."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from separate.errors import SeparateError

if TYPE_CHECKING:
    import torch

    from separate.models.base import SeparationModel

#: Shortest hop between chunks: below it a 20 s input takes thousands of forward passes.
MIN_HOP_SECONDS = 0.005


def check_segment(segment: float | None, overlap: float) -> None:
    """Refuse a segment that is not a positive finite number of seconds, or that moves by less than
    :data:`MIN_HOP_SECONDS` per chunk."""
    if segment is None:
        return
    if not (math.isfinite(segment) and segment > 0):
        raise SeparateError(f"segment must be a positive number of seconds, got {segment}")
    hop = segment * (1.0 - overlap)
    if hop < MIN_HOP_SECONDS:
        raise SeparateError(
            f"segment {segment:g} s with overlap {overlap:g} moves {1000 * hop:.3g} ms per chunk; "
            f"use a hop of at least {1000 * MIN_HOP_SECONDS:g} ms (a longer --segment or less --overlap)"
        )


def check_receptive_field(segment: float | None, model: SeparationModel) -> None:
    """Refuse a segment shorter than the model's receptive field: every output sample would be
    computed mostly from padding. (Benchmarks and evaluation may still ask for one.)"""
    field = getattr(model, "receptive_field", None)
    if segment is None or not field or not math.isfinite(segment):
        return
    rate = model.sample_rate
    if round(segment * rate) < field:
        shortest = math.ceil(100 * field / rate) / 100
        raise SeparateError(
            f"segment {segment:g} s is shorter than the model's receptive field "
            f"({field} samples = {field / rate:.3g} s); use --segment {shortest:g} or more"
        )


def check_finite(mix: torch.Tensor, sample_rate: int) -> None:
    """mix: [C, T]. Refuse NaN or infinite samples, naming the first one's time."""
    import torch

    bad = ~torch.isfinite(mix).all(dim=0)
    if bool(bad.any()):
        first = int(torch.argmax(bad.to(torch.uint8)))
        raise SeparateError(f"input contains NaN or infinite samples (first at {first / sample_rate:.3f} s)")
