"""Mixture consistency: make separated stems add up to the mixture they came from.

Models trained with a scale-invariant loss (SI-SNR) return each source at an arbitrary scale, so their
stems neither sum to the input nor fit an integer format, and SI-SNR does not see a stem's sign either:
a model may return a source upside down. :func:`mixture_consistency` turns each stem whose correlation
with the mixture is negative the right way up, fits one non-negative gain per stem and channel by least
squares (``mix ~ sum_j g_j est_j``), then spreads the remaining residual ``mix - sum_j est_j`` over the
stems: the projection of Wisdom et al. 2019, "Differentiable consistency constraints for improved deep
speech enhancement", with uniform weights by default, or all of it to one stem (a music model's
accompaniment, see :func:`separate.engine.remainder_stem`).
"""

from __future__ import annotations

import torch
from torch import Tensor


def mixture_consistency(
    estimates: Tensor, mix: Tensor, eps: float = 1e-8, remainder: int | None = None
) -> Tensor:
    """``estimates: [B, S, C, T]``, ``mix: [B, C, T]`` -> ``[B, S, C, T]`` summing to ``mix``.

    ``remainder``: the stem that takes the whole residual (default: shared equally).
    """
    est = estimates.transpose(1, 2).double()  # [B, C, S, T]
    target = mix.double().unsqueeze(-1)  # [B, C, T, 1]
    est = est * torch.where(est @ target < 0, -1.0, 1.0)  # polarity: [B, C, S, 1]
    gram = est @ est.transpose(-1, -2)  # [B, C, S, S]
    ridge = eps * gram.diagonal(dim1=-2, dim2=-1).sum(-1).clamp_min(eps)[..., None, None]
    eye = torch.eye(est.shape[2], dtype=est.dtype, device=est.device)
    gains = torch.linalg.solve(gram + ridge * eye, est @ target).clamp_min(0.0)  # [B, C, S, 1]
    scaled = est * gains
    residual = mix.double() - scaled.sum(2)
    if remainder is None:
        consistent = scaled + residual.unsqueeze(2) / est.shape[2]
    else:
        consistent = scaled.clone()
        consistent[:, :, remainder] += residual
    return consistent.transpose(1, 2).to(estimates.dtype)
