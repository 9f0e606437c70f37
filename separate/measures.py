"""Signal measures that training, evaluation and the engine share, defined once, below all three.

* :func:`si_snr` and :func:`snr` (SPEC §1.1): ``est, tgt: [..., T] -> [...]`` dB; both signals are
  zero-meaned (on by default), ``eps = 1e-8`` in the projection denominator, in the noise energy and
  inside the logarithm.
* :func:`pairwise_si_snr`: the ``[B, J, J]`` SI-SNR of every estimate (rows) against every target
  (columns), from inner products accumulated in float64 so that high-SNR entries do not cancel out.
* :func:`hungarian`: the minimum-cost assignment of a square cost matrix (speakers to references in
  the evaluation and PIT, chunk to chunk in the engine).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from separate.errors import SeparateError

EPS = 1e-8
#: What :func:`hungarian` puts in place of NaN and infinite costs.
LARGE_COST = 1e30


def prepare(est: Tensor, tgt: Tensor, zero_mean: bool) -> tuple[Tensor, Tensor]:
    """Check matching lengths, lift half precision to float32 and (optionally) remove the means."""
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
    est, tgt = prepare(est, tgt, zero_mean)
    alpha = (est * tgt).sum(-1, keepdim=True) / (tgt.pow(2).sum(-1, keepdim=True) + eps)
    projection = alpha * tgt
    noise = est - projection
    ratio = projection.pow(2).sum(-1) / (noise.pow(2).sum(-1) + eps)
    return 10 * torch.log10(ratio + eps)


def snr(est: Tensor, tgt: Tensor, zero_mean: bool = True, eps: float = EPS) -> Tensor:
    """Plain SNR in dB (target not rescaled). ``est, tgt: [..., T]`` -> ``[...]``."""
    est, tgt = prepare(est, tgt, zero_mean)
    ratio = tgt.pow(2).sum(-1) / ((est - tgt).pow(2).sum(-1) + eps)
    return 10 * torch.log10(ratio + eps)


def gram_statistics(est: Tensor, tgt: Tensor, zero_mean: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Inner products ``<e_i, s_j>: [B, J, J]``, energies ``|e_i|^2: [B, J, 1]`` and ``|s_j|^2: [B, 1, J]``.

    Accumulated in float64 (float32 on MPS, which has no float64).
    """
    est, tgt = prepare(est, tgt, zero_mean)
    wide = torch.float32 if est.device.type == "mps" else torch.float64
    est, tgt = est.to(wide), tgt.to(wide)
    cross = torch.einsum("bit,bjt->bij", est, tgt)
    est_energy = est.pow(2).sum(-1).unsqueeze(-1)
    tgt_energy = tgt.pow(2).sum(-1).unsqueeze(-2)
    return cross, est_energy, tgt_energy


def pairwise_si_snr(est: Tensor, tgt: Tensor) -> Tensor:
    """SI-SNR of every estimate against every target: ``[B, J, T], [B, J, T] -> [B, J, J]`` dB.

    ``out[b, i, j] = si_snr(est[b, i], tgt[b, j])``, computed from :func:`gram_statistics` and returned
    in the inputs' precision (at least float32).
    """
    cross, est_energy, tgt_energy = gram_statistics(est, tgt, zero_mean=True)
    alpha = cross / (tgt_energy + EPS)
    projection_energy = alpha.pow(2) * tgt_energy
    noise_energy = (est_energy - 2 * alpha * cross + projection_energy).clamp_min(0)
    ratio = 10 * torch.log10(projection_energy / (noise_energy + EPS) + EPS)
    return ratio.to(torch.promote_types(est.dtype, torch.float32))


def hungarian(cost: np.ndarray) -> np.ndarray:
    """Minimum-cost one-to-one assignment (``scipy.optimize.linear_sum_assignment``), per matrix.

    ``cost: [..., J, J]`` (rows: what is matched, columns: candidates) -> ``[..., J]`` int64, the
    column given to each row. NaN and infinite costs count as :data:`LARGE_COST` (minus that for
    negative infinity), so a diverged batch still gets an assignment.
    """
    cost = np.nan_to_num(
        np.asarray(cost, dtype=np.float64), nan=LARGE_COST, posinf=LARGE_COST, neginf=-LARGE_COST
    )
    matrices = cost.reshape(-1, *cost.shape[-2:])
    columns = np.empty(matrices.shape[:2], dtype=np.int64)
    for index, matrix in enumerate(matrices):
        columns[index] = linear_sum_assignment(matrix)[1]
    return columns.reshape(cost.shape[:-1])
