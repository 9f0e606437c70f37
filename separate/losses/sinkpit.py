"""SinkPIT (Tachibana 2021): a soft assignment by log-domain Sinkhorn iterations (SPEC §1.4).

With ``C = pair_loss^T`` (rows targets, columns estimates) and inverse temperature ``beta``, the
Sinkhorn fixed point ``P`` minimises ``<P, C> - H(P) / beta`` over doubly-stochastic matrices; the
loss is that minimum divided by J. It is at most the PIT loss and tends to it as ``beta`` grows.
"""

from __future__ import annotations

import torch
from torch import Tensor

from separate.errors import SeparateError
from separate.losses.pit import hungarian_permutation

DEFAULT_N_ITER = 200


def beta_schedule(epoch: int, growth: float = 1.02, max_beta: float = 10.0) -> float:
    """Inverse temperature at the start of ``epoch`` (0-based): ``min(growth**epoch, max_beta)``."""
    return min(growth**epoch, max_beta)


def sinkhorn_log(cost: Tensor, beta: float, n_iter: int = DEFAULT_N_ITER) -> Tensor:
    """Log of an approximately doubly-stochastic matrix close to ``softmin(beta * cost)``.

    Args:
        cost: ``[B, J, J]``.
        beta: inverse temperature (> 0).
        n_iter: normalisation steps, even: ``n_iter / 2`` rounds of (columns sum to 1, rows sum to 1).

    Returns:
        ``log_p: [B, J, J]``; ``exp(log_p)`` has rows summing exactly to 1, columns approximately.
    """
    if n_iter < 2 or n_iter % 2:
        raise SeparateError(f"SinkPIT needs a positive even number of Sinkhorn iterations, got {n_iter}")
    if beta <= 0:
        raise SeparateError(f"SinkPIT's inverse temperature beta must be positive, got {beta}")
    log_p = -beta * cost
    for _ in range(n_iter // 2):
        log_p = log_p - torch.logsumexp(log_p, dim=1, keepdim=True)
        log_p = log_p - torch.logsumexp(log_p, dim=2, keepdim=True)
    return log_p


def sinkpit(pair_loss: Tensor, beta: float, n_iter: int = DEFAULT_N_ITER) -> tuple[Tensor, Tensor]:
    """SinkPIT loss per item and the Hungarian assignment of the same matrix.

    Args:
        pair_loss: ``[B, J, J]``, rows estimates, columns targets.
        beta: inverse temperature.
        n_iter: Sinkhorn normalisation steps (even).

    Returns:
        ``loss: [B]`` = ``(1/J) sum_ij P_ij (C_ij + log P_ij / beta)`` with ``C = pair_loss^T``;
        gradients flow through ``C`` and ``P`` (nothing is detached);
        ``perm: LongTensor [B, J]`` (Hungarian, estimate index per target, for logging and validation).
    """
    if pair_loss.dim() != 3 or pair_loss.shape[1] != pair_loss.shape[2]:
        raise SeparateError(f"a pairwise loss matrix must be [B, J, J], got {tuple(pair_loss.shape)}")
    n_src = pair_loss.shape[1]
    cost = pair_loss.transpose(1, 2)
    log_p = sinkhorn_log(cost, beta, n_iter)
    loss = (log_p.exp() * (cost + log_p / beta)).sum(dim=(1, 2)) / n_src
    return loss, hungarian_permutation(pair_loss)
