"""Ratio-mask refinement: re-estimate every stem as its share of the mixture's spectrogram.

A time-domain model's stems carry errors that the mixture does not: phase and level noise in bins
where one source dominates. Taking each stem's magnitude share of the mixture STFT,
``mask_j = |E_j|^p / sum_k |E_k|^p``, and applying the masks to the mixture itself keeps what the
model decided (which source owns which bin) but takes every sample from the mixture, the single-pass
soft-mask post-filter that spectrogram separators such as Open-Unmix apply through Wiener filtering.
The refined stems add up to the mixture. ``p = 1`` over 256 ms windows scored best of the settings
tried with ``ltl-bilstm`` on the music corpus's validation songs (see the model card).

A stereo (or wider) input gets the multichannel Wiener filter instead (Duong, Vincent and Gribonval,
2010; the post-filter of Open-Unmix and Demucs v2): each stem is modelled as its power spectrum
``v_j(f, t)`` times a spatial covariance ``R_j(f)`` (a ``C x C`` matrix per frequency, estimated from
the stem over the chunk), and is taken from the mixture as ``v_j R_j (sum_k v_k R_k)^-1 x``. Where the
stems sit at different places in the stereo image, this separates them further than any mask
applied channel by channel could.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

#: STFT window of the refinement, in seconds (rounded to a power of two in samples).
WINDOW_SECONDS = 0.256
#: Magnitude exponent of the masks (1: magnitude ratios, 2: Wiener's power ratios).
MASK_POWER = 1.0
#: STFT window of the multichannel Wiener filter, in seconds.
WIENER_WINDOW_SECONDS = 1.024
#: Exponent of the stems' magnitudes that stands for their power in the Wiener filter (2: power).
WIENER_POWER = 1.5


def refinement_fft_size(sample_rate: int, seconds: float = WINDOW_SECONDS) -> int:
    """The power of two nearest ``seconds`` at ``sample_rate`` (at least 16)."""
    return max(16, 1 << round(math.log2(seconds * sample_rate)))


def spectrogram(signals: Tensor, n_fft: int, hop: int, window: Tensor) -> Tensor:
    """``[..., T]`` -> complex ``[..., F, K]``."""
    spec = torch.stft(signals.reshape(-1, signals.shape[-1]), n_fft, hop, window=window, return_complex=True)
    return spec.reshape(*signals.shape[:-1], *spec.shape[-2:])


def waveform(spec: Tensor, n_fft: int, hop: int, window: Tensor, length: int) -> Tensor:
    """Complex ``[..., F, K]`` -> ``[..., length]``, the inverse of :func:`spectrogram`."""
    signals = torch.istft(spec.reshape(-1, *spec.shape[-2:]), n_fft, hop, window=window, length=length)
    return signals.reshape(*spec.shape[:-2], length)


def masked_mixture(
    mix: Tensor, parts: Tensor, n_fft: int, hop: int, masks_of: Callable[[Tensor], Tensor]
) -> Tensor:
    """``mix: [..., T]``, ``parts: [S, ..., T]`` -> ``[S, ..., T]``: the mixture's STFT (Hann window,
    hop ``hop``) under the masks ``masks_of`` makes from the parts' magnitudes (``[S, ..., F, K]``),
    inverted. Shared by the refinement and the oracle masks of :mod:`separate.evaluation.oracle`."""
    window = torch.hann_window(n_fft, dtype=mix.dtype, device=mix.device)
    masks = masks_of(spectrogram(parts, n_fft, hop, window).abs())
    masked = masks * spectrogram(mix, n_fft, hop, window).unsqueeze(0)
    return waveform(masked, n_fft, hop, window, mix.shape[-1])


def ratio_masks(magnitudes: Tensor, power: float = MASK_POWER, eps: float = 1e-10) -> Tensor:
    """``[S, ...]`` magnitudes -> masks ``|E_j|^p / sum_k |E_k|^p``; equal shares where all are silent."""
    weights = magnitudes.pow(power)
    total = weights.sum(0, keepdim=True)
    return torch.where(total > eps, weights / (total + eps), torch.full_like(weights, 1.0 / len(weights)))


def refine_with_ratio_masks(
    estimates: Tensor, mix: Tensor, sample_rate: int, power: float = MASK_POWER, eps: float = 1e-10
) -> Tensor:
    """``estimates: [B, S, C, T]``, ``mix: [B, C, T]`` -> ``[B, S, C, T]``, stem j ``mask_j * STFT(mix)``."""
    return ratio_mask_refinement(estimates, mix, refinement_fft_size(sample_rate), power, eps)


def ratio_mask_refinement(
    estimates: Tensor, mix: Tensor, n_fft: int, power: float, eps: float = 1e-10
) -> Tensor:
    """:func:`refine_with_ratio_masks` over an ``n_fft``-sample window (hop ``n_fft // 4``); inputs
    shorter than half a window come back unchanged. Differentiable (the losses train through it)."""
    if estimates.shape[-1] < n_fft // 2 + 1:
        return estimates
    refined = masked_mixture(
        mix.float(),
        estimates.float().transpose(0, 1),
        n_fft,
        n_fft // 4,
        lambda m: ratio_masks(m, power, eps),
    )
    return refined.transpose(0, 1).to(estimates.dtype)


def spectral_covariances(spectra: Tensor, power: Tensor, eps: float) -> Tensor:
    """``spectra: [S, C, F, K]`` complex, ``power: [S, F, K]`` -> ``[S, F, C, C]``: each stem's
    spatial covariance per frequency, ``sum_t y y^H / sum_t v``."""
    outer = torch.einsum("scfk,sdfk->sfcd", spectra, spectra.conj())
    return outer / power.sum(-1).clamp_min(eps)[..., None, None]


def multichannel_wiener(
    stems: Tensor, mix: Tensor, power_exponent: float = WIENER_POWER, eps: float = 1e-10
) -> Tensor:
    """``stems: [S, C, F, K]``, ``mix: [C, F, K]`` complex STFTs -> ``[S, C, F, K]``, stem j
    ``v_j R_j (sum_k v_k R_k + eps I)^-1 x`` with ``v_j`` its RMS magnitude over channels raised to
    ``power_exponent`` (2: its power)."""
    channels = mix.shape[0]
    power = stems.abs().square().mean(1).pow(power_exponent / 2)  # [S, F, K]
    identity = torch.eye(channels, dtype=mix.dtype, device=mix.device)
    covariance = spectral_covariances(stems, power, eps) + eps * identity  # [S, F, C, C]
    weighted = power.to(mix.dtype)[..., None, None] * covariance[:, :, None]  # [S, F, K, C, C]
    total = weighted.sum(0) + eps * identity  # [F, K, C, C]
    solved = torch.linalg.solve(total, mix.permute(1, 2, 0).unsqueeze(-1))  # [F, K, C, 1]
    return (weighted @ solved.unsqueeze(0)).squeeze(-1).permute(0, 3, 1, 2)


def refine_with_wiener(
    estimates: Tensor,
    mix: Tensor,
    sample_rate: int,
    window_seconds: float = WIENER_WINDOW_SECONDS,
    power_exponent: float = WIENER_POWER,
    eps: float = 1e-10,
) -> Tensor:
    """``estimates: [B, S, C, T]``, ``mix: [B, C, T]`` (C >= 2) -> ``[B, S, C, T]``: the multichannel
    Wiener filter of each chunk, with what it leaves of the mixture (silent bins)
    shared equally so the stems add up to the mixture."""
    n_fft = refinement_fft_size(sample_rate, window_seconds)
    length = mix.shape[-1]
    if length < n_fft // 2 + 1:
        return estimates
    hop = n_fft // 4
    window = torch.hann_window(n_fft, dtype=torch.float32, device=mix.device)
    mix_spec = spectrogram(mix.float(), n_fft, hop, window)
    stem_spec = spectrogram(estimates.float(), n_fft, hop, window)
    refined = torch.stack(
        [
            multichannel_wiener(stems, mixture, power_exponent, eps)
            for stems, mixture in zip(stem_spec, mix_spec, strict=True)
        ]
    )
    signals = waveform(refined, n_fft, hop, window, length)
    signals = signals + (mix.float() - signals.sum(1)).unsqueeze(1) / estimates.shape[1]
    return signals.to(estimates.dtype)


def refine(estimates: Tensor, mix: Tensor, sample_rate: int) -> Tensor:
    """``estimates: [B, S, C, T]``, ``mix: [B, C, T]``: the multichannel Wiener filter for a stereo
    (or wider) mixture, ratio masks for a mono one."""
    if mix.shape[1] >= 2:
        return refine_with_wiener(estimates, mix, sample_rate)
    return refine_with_ratio_masks(estimates, mix, sample_rate)
