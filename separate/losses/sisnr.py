"""Signal-level measures (SI-SNR, SNR, MSE), their negative versions as losses, and pairwise matrices.

All measures take ``est, tgt: [..., T]`` and return ``[...]``. SI-SNR and SNR follow SPEC §1.1:
zero-mean both signals (on by default), ``eps = 1e-8`` in the projection denominator, in the
noise energy and inside the logarithm.

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

EPS = 1e-8

PairLoss = Callable[[Tensor, Tensor], Tensor]


def _prepare(est: Tensor, tgt: Tensor, zero_mean: bool) -> tuple[Tensor, Tensor]:
    if est.shape[-1] != tgt.shape[-1]:
        raise SeparateError(
            f"estimates have {est.shape[-1]} samples but targets have {tgt.shape[-1]}; they must match"
        )
    if est.dtype in (torch.float16, torch.bfloat16):
        est = est.float()
    if tgt.dtype in (torch.float16, torch.bfloat16):
        tgt = tgt.float()
    if zero_mean:
        est = est - est.mean(dim=-1, keepdim=True)
        tgt = tgt - tgt.mean(dim=-1, keepdim=True)
    return est, tgt


def si_snr(est: Tensor, tgt: Tensor, zero_mean: bool = True, eps: float = EPS) -> Tensor:
    """Scale-invariant SNR in dB. ``est, tgt: [..., T]`` (broadcastable) -> ``[...]``."""
    est, tgt = _prepare(est, tgt, zero_mean)
    alpha = (est * tgt).sum(-1, keepdim=True) / (tgt.pow(2).sum(-1, keepdim=True) + eps)
    projection = alpha * tgt
    noise = est - projection
    ratio = projection.pow(2).sum(-1) / (noise.pow(2).sum(-1) + eps)
    return 10 * torch.log10(ratio + eps)


def snr(est: Tensor, tgt: Tensor, zero_mean: bool = True, eps: float = EPS) -> Tensor:
    """Plain SNR in dB (target not rescaled). ``est, tgt: [..., T]`` -> ``[...]``."""
    est, tgt = _prepare(est, tgt, zero_mean)
    ratio = tgt.pow(2).sum(-1) / ((est - tgt).pow(2).sum(-1) + eps)
    return 10 * torch.log10(ratio + eps)


def mse(est: Tensor, tgt: Tensor) -> Tensor:
    """Mean squared error over time (no zero-mean: a DC error is an error). ``[..., T]`` -> ``[...]``."""
    est, tgt = _prepare(est, tgt, zero_mean=False)
    return (est - tgt).pow(2).mean(-1)


def neg_si_snr(est: Tensor, tgt: Tensor) -> Tensor:
    """Loss: ``-SI-SNR`` in dB. ``[..., T]`` -> ``[...]``."""
    return -si_snr(est, tgt)


def neg_snr(est: Tensor, tgt: Tensor) -> Tensor:
    """Loss: ``-SNR`` in dB. ``[..., T]`` -> ``[...]``."""
    return -snr(est, tgt)


#: Losses by name (lower is better); the names used by ``build_loss(..., pit_loss=...)``.
LOSSES: dict[str, PairLoss] = {"sisnr": neg_si_snr, "snr": neg_snr, "mse": mse}


def resolve_loss(loss: str | PairLoss) -> PairLoss:
    """A loss callable from its name (``"sisnr"``, ``"snr"``, ``"mse"``) or the callable itself."""
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise SeparateError(f"unknown signal loss '{loss}' (known: {', '.join(LOSSES)})")
    return LOSSES[loss]


def _gram_statistics(est: Tensor, tgt: Tensor, zero_mean: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Inner products ``<e_i, s_j>: [B, J, J]``, energies ``|e_i|^2: [B, J, 1]`` and ``|s_j|^2: [B, 1, J]``.

    Accumulated in float64 (float32 on MPS, which has no float64).
    """
    est, tgt = _prepare(est, tgt, zero_mean)
    wide = torch.float32 if est.device.type == "mps" else torch.float64
    est, tgt = est.to(wide), tgt.to(wide)
    cross = torch.einsum("bit,bjt->bij", est, tgt)
    est_energy = est.pow(2).sum(-1).unsqueeze(-1)
    tgt_energy = tgt.pow(2).sum(-1).unsqueeze(-2)
    return cross, est_energy, tgt_energy


def _pairwise_neg_si_snr(est: Tensor, tgt: Tensor) -> Tensor:
    cross, est_energy, tgt_energy = _gram_statistics(est, tgt, zero_mean=True)
    alpha = cross / (tgt_energy + EPS)
    projection_energy = alpha.pow(2) * tgt_energy
    noise_energy = (est_energy - 2 * alpha * cross + projection_energy).clamp_min(0)
    return -10 * torch.log10(projection_energy / (noise_energy + EPS) + EPS)


def _pairwise_neg_snr(est: Tensor, tgt: Tensor) -> Tensor:
    cross, est_energy, tgt_energy = _gram_statistics(est, tgt, zero_mean=True)
    noise_energy = (est_energy - 2 * cross + tgt_energy).clamp_min(0)
    return -10 * torch.log10(tgt_energy / (noise_energy + EPS) + EPS)


def _pairwise_mse(est: Tensor, tgt: Tensor) -> Tensor:
    cross, est_energy, tgt_energy = _gram_statistics(est, tgt, zero_mean=False)
    return (est_energy - 2 * cross + tgt_energy).clamp_min(0) / est.shape[-1]


_FAST_PAIRWISE: dict[PairLoss, PairLoss] = {
    neg_si_snr: _pairwise_neg_si_snr,
    neg_snr: _pairwise_neg_snr,
    mse: _pairwise_mse,
}


def pairwise(loss: str | PairLoss, est: Tensor, tgt: Tensor) -> Tensor:
    """Loss between every estimate and every target.

    Args:
        loss: a name from :data:`LOSSES` or a callable ``(est [..., T], tgt [..., T]) -> [...]`` that
            broadcasts.
        est: ``[B, J, T]`` estimates.
        tgt: ``[B, J, T]`` targets.

    Returns:
        ``[B, J, J]`` with ``out[b, i, j] = loss(est[b, i], tgt[b, j])`` (rows estimates, columns targets).
    """
    if est.dim() != 3 or est.shape != tgt.shape:
        raise SeparateError(
            f"pairwise losses need estimates and targets of one shape [B, J, T], got "
            f"{tuple(est.shape)} and {tuple(tgt.shape)}"
        )
    loss_fn = resolve_loss(loss)
    fast = _FAST_PAIRWISE.get(loss_fn)
    if fast is not None:
        out_dtype = torch.promote_types(est.dtype, torch.float32)
        return fast(est, tgt).to(out_dtype)
    return loss_fn(est.unsqueeze(2), tgt.unsqueeze(1))


def pairwise_neg_sisnr(est: Tensor, tgt: Tensor) -> Tensor:
    """``[B, J, T], [B, J, T] -> [B, J, J]`` negative SI-SNR, rows estimates, columns targets."""
    return pairwise("sisnr", est, tgt)
