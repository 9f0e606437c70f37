"""Losses from the shared signal measures: negative SI-SNR, negative SNR, MSE, and pairwise loss matrices.

All losses take ``est, tgt: [..., T]`` and return ``[...]`` (lower is better). SI-SNR and SNR
themselves live in :mod:`separate.measures` (the evaluation and the engine use them too).

:func:`pairwise` builds the ``[B, J, J]`` matrix of a loss between every estimate (rows) and every
target (columns). The named losses are computed from inner products (one batched matrix product
over time, accumulated in float64 so that high-SNR entries do not cancel out); any other callable
is broadcast once over ``[B, J, 1, T]`` x ``[B, 1, J, T]``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from separate.errors import SeparateError
from separate.measures import EPS, gram_statistics, pairwise_si_snr, prepare, si_snr, snr

__all__ = [
    "EPS",
    "LOSSES",
    "PairLoss",
    "mse",
    "neg_si_snr",
    "neg_snr",
    "pairwise",
    "resolve_loss",
    "si_snr",
    "snr",
]

PairLoss = Callable[[Tensor, Tensor], Tensor]


def mse(est: Tensor, tgt: Tensor) -> Tensor:
    """Mean squared error over time (no zero-mean: a DC error is an error). ``[..., T]`` -> ``[...]``."""
    est, tgt = prepare(est, tgt, zero_mean=False)
    return (est - tgt).pow(2).mean(-1)


def neg_si_snr(est: Tensor, tgt: Tensor) -> Tensor:
    """Loss: ``-SI-SNR`` in dB. ``[..., T]`` -> ``[...]``."""
    return -si_snr(est, tgt)


def neg_snr(est: Tensor, tgt: Tensor) -> Tensor:
    """Loss: ``-SNR`` in dB. ``[..., T]`` -> ``[...]``."""
    return -snr(est, tgt)


#: Losses by name (lower is better); the names used by ``build_loss(..., signal_loss=...)``.
LOSSES: dict[str, PairLoss] = {"sisnr": neg_si_snr, "snr": neg_snr, "mse": mse}


def resolve_loss(signal_loss: str | PairLoss) -> PairLoss:
    """A loss callable from its name (``"sisnr"``, ``"snr"``, ``"mse"``) or the callable itself."""
    if callable(signal_loss):
        return signal_loss
    if signal_loss not in LOSSES:
        raise SeparateError(f"unknown signal loss '{signal_loss}' (known: {', '.join(LOSSES)})")
    return LOSSES[signal_loss]


def _pairwise_neg_si_snr(est: Tensor, tgt: Tensor) -> Tensor:
    return -pairwise_si_snr(est, tgt)


def _pairwise_neg_snr(est: Tensor, tgt: Tensor) -> Tensor:
    cross, est_energy, tgt_energy = gram_statistics(est, tgt, zero_mean=True)
    noise_energy = (est_energy - 2 * cross + tgt_energy).clamp_min(0)
    return -10 * torch.log10(tgt_energy / (noise_energy + EPS) + EPS)


def _pairwise_mse(est: Tensor, tgt: Tensor) -> Tensor:
    cross, est_energy, tgt_energy = gram_statistics(est, tgt, zero_mean=False)
    return (est_energy - 2 * cross + tgt_energy).clamp_min(0) / est.shape[-1]


_FAST_PAIRWISE: dict[PairLoss, PairLoss] = {
    neg_si_snr: _pairwise_neg_si_snr,
    neg_snr: _pairwise_neg_snr,
    mse: _pairwise_mse,
}


def pairwise(signal_loss: str | PairLoss, est: Tensor, tgt: Tensor) -> Tensor:
    """Loss between every estimate and every target.

    Args:
        signal_loss: a name from :data:`LOSSES` or a callable ``(est [..., T], tgt [..., T]) -> [...]`` that
            broadcasts.
        est: ``[B, J, T]`` estimates.
        tgt: ``[B, J, T]`` targets.

    Returns:
        ``[B, J, J]``, ``out[b, i, j] = signal_loss(est[b, i], tgt[b, j])`` (rows estimates, columns targets).
    """
    if est.dim() != 3 or est.shape != tgt.shape:
        raise SeparateError(
            f"pairwise losses need estimates and targets of one shape [B, J, T], got "
            f"{tuple(est.shape)} and {tuple(tgt.shape)}"
        )
    loss_fn = resolve_loss(signal_loss)
    fast = _FAST_PAIRWISE.get(loss_fn)
    if fast is not None:
        out_dtype = torch.promote_types(est.dtype, torch.float32)
        return fast(est, tgt).to(out_dtype)
    return loss_fn(est.unsqueeze(2), tgt.unsqueeze(1))
