"""The training losses by name: fixed order, PIT (exhaustive or Hungarian), SinkPIT and AttentionPIT.

    >>> loss_module = build_loss("attn-sink", n_src=5, switch_epoch=20)

Every class is a :class:`separate.losses.base.SeparationLoss`. ``build_loss`` takes the ``[loss]``
table of a recipe: ``name`` (a key of :data:`LOSS_NAMES`) and the class's keyword options. The
per-pair signal loss is ``signal_loss`` everywhere (a recipe key of the permutation-invariant losses;
``pit_loss``, its former name, is still read); the fixed-order losses take it from their name
(``sisnr``, ``snr``, ``mse``).
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from separate.errors import SeparateError
from separate.losses.attentionpit import AttentionPIT, GMode, Regulariser, lambda_schedule
from separate.losses.base import LOSS_THRESHOLD, LossResult, SeparationLoss
from separate.losses.pit import exhaustive_pit, gather_assigned, hungarian_permutation, hungarian_pit
from separate.losses.refined import refine_options, refined_estimates
from separate.losses.sinkpit import DEFAULT_N_ITER, beta_schedule, sinkpit
from separate.losses.sisnr import LOSSES

Solver = Literal["auto", "exhaustive", "hungarian"]


class FixedOrderLoss(SeparationLoss):
    """No permutation: estimate j is compared with target j (music stems, or a model with fixed roles).

    ``weights``: one positive weight per source (recipe ``[loss] weights = [1.0, 3.0]``); the loss is
    the weighted mean over sources, so a stem that matters more can pull harder. Default: equal.
    ``refine``: ``{n_fft, power}`` scores the stems after the inference's consistency and ratio-mask
    refinement (:mod:`separate.losses.refined`) instead of the raw ones. Default: raw.
    """

    permutation_invariant: ClassVar[bool] = False

    def __init__(
        self,
        n_src: int,
        signal_loss: str = "sisnr",
        threshold_byloss: bool = False,
        loss_threshold: float = LOSS_THRESHOLD,
        weights: list[float] | None = None,
        refine: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(n_src, signal_loss, threshold_byloss, loss_threshold)
        self.refine = refine_options(refine)
        if weights is None:
            weights = [1.0] * n_src
        numbers = isinstance(weights, list | tuple) and all(
            isinstance(w, int | float) and not isinstance(w, bool) and w > 0 for w in weights
        )
        if not numbers or len(weights) != n_src:
            raise SeparateError(
                f"loss weights must be {n_src} positive numbers, one per source, got {weights!r}"
            )
        total = float(sum(weights))
        self.register_buffer("weights", torch.tensor([w / total for w in weights]), persistent=False)

    def forward(self, est: Tensor, tgt: Tensor) -> LossResult:
        """``est, tgt: [B, J, T]`` or ``[B, J, C, T]``; weighted mean over sources (mean over channels)."""
        self._check(est, tgt)
        est = refined_estimates(est, tgt, self.refine)
        per_source = LOSSES[self.signal_loss](est, tgt)
        if per_source.dim() == 3:
            per_source = per_source.mean(2)
        per_item = (per_source * self.weights).sum(1)
        loss, metrics = self._reduce(per_item)
        return LossResult(loss, None, metrics)


class PITLoss(SeparationLoss):
    """PIT with exact assignment: ``solver="auto"`` is exhaustive for J <= 3, Hungarian above.

    ``refine``: as for :class:`FixedOrderLoss`; the refinement treats every estimate alike, so the
    assignment is searched over the refined estimates.
    """

    def __init__(
        self,
        n_src: int,
        signal_loss: str = "sisnr",
        solver: Solver = "auto",
        threshold_byloss: bool = False,
        loss_threshold: float = LOSS_THRESHOLD,
        refine: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(n_src, signal_loss, threshold_byloss, loss_threshold)
        self.refine = refine_options(refine)
        if solver not in ("auto", "exhaustive", "hungarian"):
            raise SeparateError(f"unknown PIT solver '{solver}' (known: auto, exhaustive, hungarian)")
        self.solver = solver

    def forward(self, est: Tensor, tgt: Tensor) -> LossResult:
        """``est, tgt: [B, J, T]`` or ``[B, J, C, T]`` -> loss under the best assignment."""
        self._check(est, tgt)
        pair_loss = self._pairwise(refined_estimates(est, tgt, self.refine), tgt)
        exhaustive = self.solver == "exhaustive" or (self.solver == "auto" and self.n_src <= 3)
        per_item, perm = exhaustive_pit(pair_loss) if exhaustive else hungarian_pit(pair_loss)
        loss, metrics = self._reduce(per_item)
        return LossResult(loss, perm, metrics)


class SinkPITLoss(SeparationLoss):
    """SinkPIT; ``beta`` fixed, or (``beta=None``) ``min(beta_growth**epoch, beta_max)``."""

    def __init__(
        self,
        n_src: int,
        signal_loss: str = "sisnr",
        beta: float | None = None,
        beta_growth: float = 1.02,
        beta_max: float = 10.0,
        n_iter: int = DEFAULT_N_ITER,
        hungarian_validation: bool = True,
        threshold_byloss: bool = False,
        loss_threshold: float = LOSS_THRESHOLD,
    ) -> None:
        super().__init__(n_src, signal_loss, threshold_byloss, loss_threshold)
        if n_iter < 2 or n_iter % 2:
            raise SeparateError(f"SinkPIT needs a positive even number of Sinkhorn iterations, got {n_iter}")
        if beta is not None and beta <= 0:
            raise SeparateError(f"SinkPIT's inverse temperature beta must be positive, got {beta}")
        self.fixed_beta = beta
        self.beta_growth = beta_growth
        self.beta_max = beta_max
        self.n_iter = n_iter
        self.hungarian_validation = hungarian_validation

    @property
    def beta(self) -> float:
        """Inverse temperature for the current epoch."""
        if self.fixed_beta is not None:
            return self.fixed_beta
        return beta_schedule(self.epoch, self.beta_growth, self.beta_max)

    def forward(self, est: Tensor, tgt: Tensor) -> LossResult:
        """``est, tgt: [B, J, T]`` or ``[B, J, C, T]`` -> soft-assignment loss (Hungarian in eval mode)."""
        self._check(est, tgt)
        metrics = {"beta": self.beta}
        if not self.training and self.hungarian_validation:
            return self._hungarian_result(est, tgt, metrics)
        pair_loss = self._pairwise(est, tgt)
        per_item, perm = sinkpit(pair_loss, self.beta, self.n_iter)
        metrics["hungarian_loss"] = float(gather_assigned(pair_loss.detach(), perm).mean())
        loss, reduce_metrics = self._reduce(per_item)
        return LossResult(loss, perm, {**metrics, **reduce_metrics})


class AttentionPITLoss(SeparationLoss):
    """AttentionPIT with its lambda schedule; optionally SinkPIT or Hungarian PIT from ``switch_epoch`` on.

    ``switch_to=None`` keeps AttentionPIT for every epoch; ``"sinkpit"`` / ``"hungarian"`` give the
    paper's Attn->Sink / Attn->Hun (g_phi unused from epoch ``switch_epoch``, 0-based, on; SinkPIT's
    beta follows the global epoch index). ``lam`` fixes lambda instead of ``min(lam_growth**e - 1, lam_max)``.
    """

    def __init__(
        self,
        n_src: int,
        signal_loss: str = "sisnr",
        reg: Regulariser = "eq10",
        g_mode: GMode = "literal",
        g_channels: int | None = None,
        lam: float | None = None,
        lam_growth: float = 1.05,
        lam_max: float = 50.0,
        switch_to: Literal["sinkpit", "hungarian"] | None = None,
        switch_epoch: int = 20,
        beta: float | None = None,
        beta_growth: float = 1.02,
        beta_max: float = 10.0,
        n_iter: int = DEFAULT_N_ITER,
        hungarian_validation: bool = True,
        threshold_byloss: bool = False,
        loss_threshold: float = LOSS_THRESHOLD,
    ) -> None:
        super().__init__(n_src, signal_loss, threshold_byloss, loss_threshold)
        self.attention = AttentionPIT(n_src, signal_loss, reg=reg, g_mode=g_mode, g_channels=g_channels)
        self.fixed_lam = lam
        self.lam_growth = lam_growth
        self.lam_max = lam_max
        self.switch_epoch = switch_epoch
        self.hungarian_validation = hungarian_validation
        shared = {"threshold_byloss": threshold_byloss, "loss_threshold": loss_threshold}
        self.after_switch: SeparationLoss | None
        if switch_to is None:
            self.after_switch = None
        elif switch_to == "sinkpit":
            self.after_switch = SinkPITLoss(
                n_src, signal_loss, beta, beta_growth, beta_max, n_iter, hungarian_validation, **shared
            )
        elif switch_to == "hungarian":
            self.after_switch = PITLoss(n_src, signal_loss, solver="hungarian", **shared)
        else:
            raise SeparateError(f"AttentionPIT can switch to 'sinkpit' or 'hungarian', not '{switch_to}'")

    @property
    def lam(self) -> float:
        """Regulariser weight for the current epoch."""
        if self.fixed_lam is not None:
            return self.fixed_lam
        return lambda_schedule(self.epoch, self.lam_growth, self.lam_max)

    @property
    def switched(self) -> bool:
        """True once the loss has handed over to SinkPIT / Hungarian PIT."""
        return self.after_switch is not None and self.epoch >= self.switch_epoch

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if self.after_switch is not None:
            self.after_switch.set_epoch(epoch)

    def forward(self, est: Tensor, tgt: Tensor) -> LossResult:
        """``est, tgt: [B, J, T]`` -> AttentionPIT loss + lambda * regulariser (or the post-switch loss)."""
        self._check(est, tgt)
        if self.switched:
            result = self.after_switch(est, tgt)
            result.metrics["switched"] = 1.0
            return result
        if not self.training and self.hungarian_validation:
            return self._hungarian_result(est, tgt, {"lambda": self.lam, "switched": 0.0})
        if est.dim() != 3:
            raise SeparateError(
                f"AttentionPIT takes single-channel estimates [B, J, T], got {tuple(est.shape)}"
            )
        out = self.attention(est, tgt)
        attn_loss, metrics = self._reduce(out.loss)
        penalty = out.penalty.mean()
        attention = out.attention.detach()
        metrics.update(
            {
                "lambda": self.lam,
                "reg": float(penalty.detach()),
                "attn_loss": float(attn_loss.detach()),
                "attention_peak": float(attention.amax(dim=1).mean()),
                "switched": 0.0,
            }
        )
        perm = hungarian_permutation(-attention)
        return LossResult(attn_loss + self.lam * penalty, perm, metrics)


#: Loss names -> (class, fixed constructor arguments).
LOSS_NAMES: dict[str, tuple[type[SeparationLoss], dict[str, Any]]] = {
    "sisnr": (FixedOrderLoss, {"signal_loss": "sisnr"}),
    "snr": (FixedOrderLoss, {"signal_loss": "snr"}),
    "mse": (FixedOrderLoss, {"signal_loss": "mse"}),
    "pit": (PITLoss, {}),
    "hungarian": (PITLoss, {"solver": "hungarian"}),
    "sinkpit": (SinkPITLoss, {}),
    "attentionpit": (AttentionPITLoss, {}),
    "attn-sink": (AttentionPITLoss, {"switch_to": "sinkpit"}),
    "attn-hun": (AttentionPITLoss, {"switch_to": "hungarian"}),
}


def build_loss(name: str, n_src: int, **kwargs: Any) -> SeparationLoss:
    """Build a training loss by name (see ``LOSS_NAMES``) for ``n_src`` sources.

    The module's ``config`` records ``{"name", "n_src", **kwargs}`` so a run can rebuild it.
    ``pit_loss`` is read as ``signal_loss`` (its former name).
    """
    if name not in LOSS_NAMES:
        raise SeparateError(f"unknown loss '{name}' (known: {', '.join(LOSS_NAMES)})")
    if "pit_loss" in kwargs:  # the former name, in older recipes and saved runs
        if "signal_loss" in kwargs:
            raise SeparateError("give the loss's signal_loss once (pit_loss is its former name)")
        kwargs["signal_loss"] = kwargs.pop("pit_loss")
    cls, fixed = LOSS_NAMES[name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "n_src"} - set(fixed)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise SeparateError(
            f"loss '{name}' does not take option(s) {', '.join(unknown)} "
            f"(it takes: {', '.join(sorted(accepted))})"
        )
    module = cls(n_src, **fixed, **kwargs)
    module.config = {"name": name, "n_src": n_src, **kwargs}
    return module
