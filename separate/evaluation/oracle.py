"""Oracle masks: the scores a perfect time-frequency masking system would reach on the same data.

``irm``: ideal ratio mask, each source's share of the summed magnitudes, ``|S_j| / sum_k |S_k|``.
``ibm``: ideal binary mask, 1 where the source has the largest magnitude of all sources.
Both are applied to the mixture's STFT (Hann window of 32 ms, hop of 8 ms) and inverted, so the
estimates sum to the mixture (IRM) or partition it (IBM) up to the STFT's edge effects.
"""

from __future__ import annotations

import torch
from torch import Tensor

ORACLES = ("irm", "ibm")
WINDOW_SECONDS = 0.032
HOP_SECONDS = 0.008


def _stft(signal: Tensor, n_fft: int, hop: int, window: Tensor) -> Tensor:
    return torch.stft(signal, n_fft, hop, window=window, center=True, return_complex=True)


def oracle_estimates(mix: Tensor, sources: Tensor, sample_rate: int, kind: str = "irm") -> Tensor:
    """Estimates of an oracle mask. ``mix: [C, T]``, ``sources: [S, C, T]`` -> ``[S, C, T]``."""
    if kind not in ORACLES:
        raise ValueError(f"unknown oracle '{kind}' (known: {', '.join(ORACLES)})")
    n_fft = max(16, int(round(WINDOW_SECONDS * sample_rate)))
    hop = max(1, int(round(HOP_SECONDS * sample_rate)))
    window = torch.hann_window(n_fft, dtype=torch.float64, device=mix.device)
    length = mix.shape[-1]
    # Signals shorter than a window get trailing zeros: the STFT's reflection padding needs them.
    padded = max(length, n_fft)
    mix = torch.nn.functional.pad(mix.double(), (0, padded - length))
    sources_64 = torch.nn.functional.pad(sources.double(), (0, padded - length))
    mix_spec = _stft(mix, n_fft, hop, window)  # [C, F, N]
    magnitudes = _stft(sources_64.flatten(0, 1), n_fft, hop, window).abs()
    magnitudes = magnitudes.view(*sources.shape[:2], *magnitudes.shape[-2:])  # [S, C, F, N]
    if kind == "irm":
        masks = magnitudes / magnitudes.sum(0, keepdim=True).clamp_min(1e-12)
    else:
        winner = magnitudes.argmax(0, keepdim=True)
        masks = torch.zeros_like(magnitudes).scatter_(0, winner, 1.0)
    masked = (masks * mix_spec.unsqueeze(0)).flatten(0, 1)
    estimates = torch.istft(masked, n_fft, hop, window=window, center=True, length=padded)
    return estimates[..., :length].reshape(sources.shape).to(sources.dtype)
