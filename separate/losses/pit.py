"""Permutation-invariant training: exhaustive search and the Hungarian algorithm (SPEC §1.2-1.3).

Both solvers take a pairwise loss matrix ``pair_loss: [B, J, J]`` (rows estimates, columns
targets, see :func:`separate.losses.sisnr.pairwise`) and return ``(loss, perm)``:

* ``loss: [B]``, the per-item mean over targets of the chosen entries, differentiable through
  exactly those entries;
* ``perm: LongTensor [B, J]``, ``perm[b, j]`` = index of the estimate assigned to target ``j``, so
  ``reorder(est, perm)[:, j]`` lines up with ``tgt[:, j]``.
"""

from __future__ import annotations

import functools
import itertools

import torch
from torch import Tensor

from separate.errors import SeparateError
from separate.losses.sisnr import PairLoss, pairwise
from separate.measures import hungarian

#: Largest J for which exhaustive PIT is allowed (8! = 40 320 permutations).
MAX_EXHAUSTIVE_SOURCES = 8


def _check_square(pair_loss: Tensor) -> int:
    if pair_loss.dim() != 3 or pair_loss.shape[1] != pair_loss.shape[2]:
        raise SeparateError(f"a pairwise loss matrix must be [B, J, J], got {tuple(pair_loss.shape)}")
    return pair_loss.shape[1]


@functools.cache
def permutations(n_src: int) -> Tensor:
    """All permutations of ``range(n_src)`` in lexicographic order: ``LongTensor [J!, J]``."""
    return torch.tensor(list(itertools.permutations(range(n_src))), dtype=torch.long).reshape(-1, n_src)


def permutation_matrices(n_src: int) -> Tensor:
    """One-hot ``[J!, J, J]``: ``M[p, i, j] = 1`` when permutation ``p`` maps target ``j`` to ``i``."""
    perms = permutations(n_src)
    return torch.nn.functional.one_hot(perms, n_src).transpose(1, 2).float()


def exhaustive_pit(pair_loss: Tensor) -> tuple[Tensor, Tensor]:
    """Best assignment by trying all J! permutations in one contraction.

    Args:
        pair_loss: ``[B, J, J]``, rows estimates, columns targets.

    Returns:
        ``(loss [B], perm LongTensor [B, J])``.
    """
    n_src = _check_square(pair_loss)
    if n_src > MAX_EXHAUSTIVE_SOURCES:
        raise SeparateError(
            f"exhaustive PIT over {n_src} sources would try {n_src}! permutations; "
            f"use the Hungarian solver for more than {MAX_EXHAUSTIVE_SOURCES} sources"
        )
    one_hot = permutation_matrices(n_src).to(device=pair_loss.device, dtype=pair_loss.dtype)
    per_permutation = torch.einsum("bij,pij->bp", pair_loss, one_hot) / n_src
    loss, best = per_permutation.min(dim=1)
    perm = permutations(n_src).to(pair_loss.device)[best]
    return loss, perm


def hungarian_permutation(pair_loss: Tensor) -> Tensor:
    """Optimal assignment per item with :func:`separate.measures.hungarian` (no gradient).

    ``pair_loss: [B, J, J]`` (rows estimates, columns targets) -> ``perm: LongTensor [B, J]``.
    Non-finite entries are treated as very large costs so a diverged batch still gets an assignment.
    """
    _check_square(pair_loss)
    costs = pair_loss.detach().transpose(1, 2).to("cpu", torch.float64).numpy()
    return torch.from_numpy(hungarian(costs)).to(pair_loss.device)


def gather_assigned(pair_loss: Tensor, perm: Tensor) -> Tensor:
    """Mean over targets of ``pair_loss[b, perm[b, j], j]``: ``[B, J, J], [B, J] -> [B]``."""
    chosen = torch.gather(pair_loss, 1, perm.unsqueeze(1)).squeeze(1)
    return chosen.mean(dim=1)


def hungarian_pit(pair_loss: Tensor) -> tuple[Tensor, Tensor]:
    """HungarianPIT: assignment on the detached matrix, gradient through the chosen entries only.

    Args:
        pair_loss: ``[B, J, J]``, rows estimates, columns targets; any J.

    Returns:
        ``(loss [B], perm LongTensor [B, J])``.
    """
    perm = hungarian_permutation(pair_loss)
    return gather_assigned(pair_loss, perm), perm


def reorder(est: Tensor, perm: Tensor) -> Tensor:
    """Estimates in target order: ``est: [B, J, ...], perm: [B, J] -> [B, J, ...]``.

    ``out[:, j] = est[:, perm[:, j]]``.
    """
    index = perm.view(*perm.shape, *([1] * (est.dim() - 2))).expand(-1, -1, *est.shape[2:])
    return torch.gather(est, 1, index)


@torch.no_grad()
def best_permutation(est: Tensor, tgt: Tensor, signal_loss: str | PairLoss = "sisnr") -> Tensor:
    """Hungarian assignment for evaluation: ``est, tgt: [B, J, T] -> perm: LongTensor [B, J]``."""
    return hungarian_permutation(pairwise(signal_loss, est, tgt))
