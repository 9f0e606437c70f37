"""AttentionPIT (Kameoka et al.): a soft output-target assignment by attention (SPEC §1.5).

An encoder ``g_phi`` turns the estimates and the targets into feature rows ``K = g(S_hat)`` and
``Q = g(S)``; ``A = softmax(K Q^T / sqrt(N'))`` over the estimate axis (every column sums to 1);
each target is fitted by the convex combination ``S_tilde = A^T S_hat`` of the estimates. A
regulariser (eq. 10 or the Hoyer-type eq. 11) pushes ``A`` towards a permutation matrix, weighted by
``lambda(e) = min(1.05^e - 1, 50)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from separate.errors import SeparateError
from separate.losses.sisnr import PairLoss, resolve_loss

#: g_phi halves the length four times.
ENCODER_STRIDE = 16
HOYER_EPS = 1e-8

GMode = Literal["literal", "shared"]
Regulariser = Literal["eq10", "hoyer"]


def lambda_schedule(epoch: int, growth: float = 1.05, max_lambda: float = 50.0) -> float:
    """Regulariser weight at ``epoch`` (0-based): ``min(growth**epoch - 1, max_lambda)``."""
    return min(growth**epoch - 1.0, max_lambda)


class AttentionEncoder(nn.Module):
    """g_phi: four ``Conv1d(kernel 8, stride 2, padding 3)``; InstanceNorm + SiLU after the first three.

    ``mode="literal"`` (paper): the J signals are the J channels, every conv is ``Conv1d(J, J)``
    (mixes signals, 4(8J^2 + J) parameters). ``mode="shared"``: one encoder ``1 -> c -> c -> c -> 1``
    applied to each signal on its own (permutation-equivariant), ``c = channels`` (default J).
    """

    def __init__(self, n_src: int, mode: GMode = "literal", channels: int | None = None) -> None:
        super().__init__()
        if mode == "literal":
            widths = [n_src] * 5
        elif mode == "shared":
            hidden = channels or n_src
            widths = [1, hidden, hidden, hidden, 1]
        else:
            raise SeparateError(f"unknown AttentionPIT encoder mode '{mode}' (known: literal, shared)")
        self.n_src = n_src
        self.mode = mode
        self.convs = nn.ModuleList(
            nn.Conv1d(widths[k], widths[k + 1], kernel_size=8, stride=2, padding=3) for k in range(4)
        )
        self.norms = nn.ModuleList(nn.InstanceNorm1d(widths[k + 1]) for k in range(3))

    def forward(self, signals: Tensor) -> Tensor:
        """``signals: [B, J, N] -> features: [B, J, N']`` with ``N' = max(ceil(N / 16), 1)``.

        The input is right-padded with zeros to a multiple of 16 (at least 16) first.
        """
        batch, n_src, length = signals.shape
        padded = max(math.ceil(length / ENCODER_STRIDE), 1) * ENCODER_STRIDE
        x = F.pad(signals, (0, padded - length))
        if self.mode == "shared":
            x = x.reshape(batch * n_src, 1, padded)
        for k, conv in enumerate(self.convs):
            x = conv(x)
            if k < len(self.norms):
                x = F.silu(self.norms[k](x))
        return x.reshape(batch, n_src, -1)


def attention_matrix(keys: Tensor, queries: Tensor) -> Tensor:
    """Eq. (6): ``keys, queries: [B, J, N'] -> A: [B, J_est, J_tgt]``, softmax over estimates.

    Every column of ``A`` sums to 1; the logits are scaled by ``1 / sqrt(N')``.
    """
    logits = torch.einsum("bin,bjn->bij", keys, queries) / math.sqrt(keys.shape[-1])
    return logits.softmax(dim=1)


def attention_reconstruct(attention: Tensor, est: Tensor) -> Tensor:
    """Eq. (7): ``S_tilde = A^T S_hat``; ``attention: [B, J, J], est: [B, J, N] -> [B, J, N]`` (targets)."""
    return torch.einsum("bij,bin->bjn", attention, est)


def orthogonality_penalty(attention: Tensor) -> Tensor:
    """Eq. (10) without lambda: ``(1/J^2) ||A A^T - I||_1`` per item; ``[B, J, J] -> [B]``."""
    n_src = attention.shape[-1]
    gram = attention @ attention.transpose(1, 2)
    identity = torch.eye(n_src, device=attention.device, dtype=attention.dtype)
    return (gram - identity).abs().sum(dim=(1, 2)) / n_src**2


def hoyer_penalty(attention: Tensor, eps: float = HOYER_EPS) -> Tensor:
    """Eq. (11) without lambda: row-wise Hoyer sparsity; ``[B, J, J] -> [B]``.

    Zero when every row has a single non-zero entry; ``eps`` under the square root because the rows
    of ``A`` are not normalised and can be all near zero.
    """
    n_src = attention.shape[-1]
    if n_src == 1:
        return attention.new_zeros(attention.shape[0])
    l1 = attention.abs().sum(dim=2)
    l2 = (attention.pow(2).sum(dim=2) + eps).sqrt()
    return ((l1 / l2 - 1) / (math.sqrt(n_src) - 1)).mean(dim=1)


PENALTIES = {"eq10": orthogonality_penalty, "hoyer": hoyer_penalty}


@dataclass
class AttentionOutput:
    """What one AttentionPIT pass computes (all per item, before lambda)."""

    loss: Tensor  #: ``[B]`` mean over targets of ``D(S_tilde_j, S_j)``
    penalty: Tensor  #: ``[B]`` regulariser value
    attention: Tensor  #: ``[B, J_est, J_tgt]``


class AttentionPIT(nn.Module):
    """Attention assignment, convex reconstruction, fixed-order loss and regulariser (eqs. 6, 7, 9-11).

    Args:
        n_src: J.
        signal_loss: signal loss ``D`` by name (``"sisnr"`` = negative SI-SDR, the paper's) or callable.
        reg: ``"eq10"`` (``||A A^T - I||_1 / J^2``, the paper's reported setting) or ``"hoyer"`` (eq. 11).
        g_mode: ``"literal"`` (J-channel convs, default) or ``"shared"`` (per-signal encoder).
        g_channels: hidden width of the shared encoder (default J).
    """

    def __init__(
        self,
        n_src: int,
        signal_loss: str | PairLoss = "sisnr",
        reg: Regulariser = "eq10",
        g_mode: GMode = "literal",
        g_channels: int | None = None,
    ) -> None:
        super().__init__()
        if reg not in PENALTIES:
            raise SeparateError(f"unknown AttentionPIT regulariser '{reg}' (known: {', '.join(PENALTIES)})")
        self.loss_fn = resolve_loss(signal_loss)
        self.penalty_fn = PENALTIES[reg]
        self.encoder = AttentionEncoder(n_src, g_mode, g_channels)

    def forward(self, est: Tensor, tgt: Tensor) -> AttentionOutput:
        """``est, tgt: [B, J, N]`` -> :class:`AttentionOutput`."""
        attention = attention_matrix(self.encoder(est), self.encoder(tgt))
        reconstruction = attention_reconstruct(attention, est)
        loss = self.loss_fn(reconstruction, tgt).mean(dim=1)
        return AttentionOutput(loss=loss, penalty=self.penalty_fn(attention), attention=attention)
