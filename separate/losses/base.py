"""The interface every training loss implements: :class:`SeparationLoss` returning a :class:`LossResult`.

The base class checks shapes, builds the pairwise loss matrices (multichannel estimates: the mean over
channels), keeps the epoch the schedules read, and reduces per-item losses to the batch mean, with
TDANet's ``threshold_byloss`` trick (items whose loss is already below :data:`LOSS_THRESHOLD` are left
out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from torch import Tensor, nn

from separate.errors import SeparateError
from separate.losses.pit import hungarian_pit
from separate.losses.sisnr import LOSSES, pairwise

#: ``threshold_byloss`` drops items whose loss is below this: -30, an SNR above 30 dB (TDANet reference).
LOSS_THRESHOLD = -30.0


@dataclass
class LossResult:
    """One loss evaluation: the scalar to back-propagate, the assignment used, and values to log."""

    loss: Tensor  #: scalar
    perm: Tensor | None = None  #: LongTensor [B, J], estimate index per target; None for fixed order
    metrics: dict[str, float] = field(default_factory=dict)


class SeparationLoss(nn.Module):
    """Base class: input checks, pairwise matrices, epoch bookkeeping and the per-item reduction.

    Args:
        n_src: J, the number of estimates and of targets.
        signal_loss: per-pair loss name from ``LOSSES`` (``"sisnr"``, ``"snr"``, ``"mse"``).
        threshold_byloss: TDANet-reference trick: drop batch items whose loss is below
            ``loss_threshold`` before averaging (only when at least one item remains).
        loss_threshold: the threshold (:data:`LOSS_THRESHOLD`).
    """

    permutation_invariant: ClassVar[bool] = True

    def __init__(
        self,
        n_src: int,
        signal_loss: str,
        threshold_byloss: bool = False,
        loss_threshold: float = LOSS_THRESHOLD,
    ) -> None:
        super().__init__()
        if not isinstance(n_src, int) or n_src < 1:
            raise SeparateError(f"a loss needs a positive number of sources, got {n_src!r}")
        if signal_loss not in LOSSES:
            raise SeparateError(f"unknown signal loss '{signal_loss}' (known: {', '.join(LOSSES)})")
        self.n_src = n_src
        self.signal_loss = signal_loss
        self.threshold_byloss = threshold_byloss
        self.loss_threshold = loss_threshold
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Set the 0-based epoch index that the schedules (beta, lambda, switch) read."""
        if epoch < 0:
            raise SeparateError(f"epoch indices start at 0, got {epoch}")
        self.epoch = epoch

    def _check(self, est: Tensor, tgt: Tensor) -> None:
        if est.shape != tgt.shape or est.dim() not in (3, 4) or est.shape[1] != self.n_src:
            raise SeparateError(
                f"the loss expects estimates and targets of one shape [B, {self.n_src}, T] (or "
                f"[B, {self.n_src}, C, T]), got {tuple(est.shape)} and {tuple(tgt.shape)}"
            )

    def _pairwise(self, est: Tensor, tgt: Tensor) -> Tensor:
        """``[B, J, T]`` or ``[B, J, C, T]`` -> ``[B, J, J]`` (multichannel: mean over channels)."""
        if est.dim() == 3:
            return pairwise(self.signal_loss, est, tgt)
        batch, n_src, channels, length = est.shape
        folded = [x.transpose(1, 2).reshape(batch * channels, n_src, length) for x in (est, tgt)]
        return pairwise(self.signal_loss, *folded).view(batch, channels, n_src, n_src).mean(1)

    def _reduce(self, per_item: Tensor) -> tuple[Tensor, dict[str, float]]:
        """``per_item: [B] -> (scalar mean, metrics)`` applying ``threshold_byloss``."""
        metrics: dict[str, float] = {}
        if self.threshold_byloss:
            keep = per_item.detach() > self.loss_threshold
            metrics["kept_fraction"] = float(keep.float().mean())
            if bool(keep.any()):
                per_item = per_item[keep]
        return per_item.mean(), metrics

    def _hungarian_result(self, est: Tensor, tgt: Tensor, metrics: dict[str, float]) -> LossResult:
        per_item, perm = hungarian_pit(self._pairwise(est, tgt))
        loss, reduce_metrics = self._reduce(per_item)
        return LossResult(loss, perm, {**metrics, **reduce_metrics})
