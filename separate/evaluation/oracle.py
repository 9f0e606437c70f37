"""Oracle masks: the scores a perfect time-frequency masking system would reach on the same data.

``irm``: ideal ratio mask, each source's share of the summed magnitudes, ``|S_j| / sum_k |S_k|``.
``ibm``: ideal binary mask, 1 where the source has the largest magnitude of all sources.
Both are applied to the mixture's STFT (Hann window of 32 ms, hop of 8 ms) and inverted, so the
estimates sum to the mixture (IRM) or partition it (IBM) up to the STFT's edge effects.
"""

from __future__ import annotations

import torch
from torch import Tensor

from separate.refinement import masked_mixture

ORACLES = ("irm", "ibm")
WINDOW_SECONDS = 0.032
HOP_SECONDS = 0.008


def oracle_estimates(mix: Tensor, sources: Tensor, sample_rate: int, kind: str = "irm") -> Tensor:
    """Estimates of an oracle mask. ``mix: [C, T]``, ``sources: [S, C, T]`` -> ``[S, C, T]``."""
    if kind not in ORACLES:
        raise ValueError(f"unknown oracle '{kind}' (known: {', '.join(ORACLES)})")
    n_fft = max(16, int(round(WINDOW_SECONDS * sample_rate)))
    hop = max(1, int(round(HOP_SECONDS * sample_rate)))
    length = mix.shape[-1]
    # Signals shorter than a window get trailing zeros: the STFT's reflection padding needs them.
    padded = max(length, n_fft)
    mix = torch.nn.functional.pad(mix.double(), (0, padded - length))
    sources_64 = torch.nn.functional.pad(sources.double(), (0, padded - length))
    estimates = masked_mixture(mix, sources_64, n_fft, hop, _irm if kind == "irm" else _ibm)
    return estimates[..., :length].to(sources.dtype)


def _irm(magnitudes: Tensor) -> Tensor:
    """``[S, ...]`` -> each source's share of the summed magnitudes."""
    return magnitudes / magnitudes.sum(0, keepdim=True).clamp_min(1e-12)


def _ibm(magnitudes: Tensor) -> Tensor:
    """``[S, ...]`` -> 1 for the loudest source of each bin, 0 elsewhere."""
    return torch.zeros_like(magnitudes).scatter_(0, magnitudes.argmax(0, keepdim=True), 1.0)
