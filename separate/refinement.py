"""Ratio-mask refinement: re-estimate every stem as its share of the mixture's spectrogram.

A time-domain model's stems carry errors that the mixture does not: phase and level noise in bins
where one source dominates. Taking each stem's magnitude share of the mixture STFT,
``mask_j = |E_j|^p / sum_k |E_k|^p``, and applying the masks to the mixture itself keeps what the
model decided (which source owns which bin) but takes every sample from the mixture, the single-pass
soft-mask post-filter that spectrogram separators such as Open-Unmix apply through Wiener filtering.
The refined stems add up to the mixture. ``p = 1`` over 256 ms windows scored best of the settings
tried with ``ltl-bilstm`` on the music corpus's validation songs (see the model card).
"""

from __future__ import annotations

import torch
from torch import Tensor

#: STFT window of the refinement, in seconds (rounded to a power of two in samples).
WINDOW_SECONDS = 0.256
#: Magnitude exponent of the masks (1: magnitude ratios, 2: Wiener's power ratios).
MASK_POWER = 1.0


def refinement_fft_size(sample_rate: int, seconds: float = WINDOW_SECONDS) -> int:
    """The power of two nearest ``seconds`` at ``sample_rate`` (at least 16)."""
    return max(16, 1 << round(torch.log2(torch.tensor(seconds * sample_rate)).item()))


def refine_with_ratio_masks(
    estimates: Tensor, mix: Tensor, sample_rate: int, power: float = MASK_POWER, eps: float = 1e-10
) -> Tensor:
    """``estimates: [B, S, C, T]``, ``mix: [B, C, T]`` -> ``[B, S, C, T]``, stem j ``mask_j * STFT(mix)``."""
    batch, n_stems, channels, length = estimates.shape
    n_fft = refinement_fft_size(sample_rate)
    if length < n_fft // 2 + 1:
        return estimates
    hop = n_fft // 4
    window = torch.hann_window(n_fft, device=estimates.device, dtype=torch.float32)

    def spectrogram(signals: Tensor) -> Tensor:  # [N, T] -> [N, F, K]
        return torch.stft(signals.float(), n_fft, hop, window=window, return_complex=True)

    stems = spectrogram(estimates.reshape(-1, length)).reshape(batch, n_stems, channels, n_fft // 2 + 1, -1)
    mixture = spectrogram(mix.reshape(-1, length)).reshape(batch, 1, channels, n_fft // 2 + 1, -1)
    weights = stems.abs().pow(power)
    masks = weights / (weights.sum(1, keepdim=True) + eps)
    masks = torch.where(weights.sum(1, keepdim=True) > eps, masks, torch.full_like(masks, 1.0 / n_stems))
    refined = torch.istft(
        (masks * mixture).reshape(-1, n_fft // 2 + 1, masks.shape[-1]),
        n_fft,
        hop,
        window=window,
        length=length,
    )
    return refined.reshape(batch, n_stems, channels, length).to(estimates.dtype)
