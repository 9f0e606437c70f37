"""Learning-rate schedules of the papers and early stopping (SPEC §1.5, §3.5, §5.8, §6.5, §7).

Every schedule has the same three hooks, called by the training loop: :meth:`Schedule.before_step`
before each optimizer step (warm-up schedules set the rate there), :meth:`Schedule.after_epoch`
with the monitored validation value (lower is better) at the end of each epoch, and
``state_dict`` / ``load_state_dict`` for resuming.

* ``none``: constant rate.
* ``plateau``: multiply by ``factor`` once the monitored value has not improved for ``patience``
  epochs in a row (LTL: 0.5 after 3; AttentionPIT: 0.5 after 5; TDANet: 0.5 after 15).
* ``step``: multiply by ``gamma`` every ``step_size`` epochs (GALR: 0.96 every 2 epochs).
* ``dptnet``: Noam warm-up ``scale · d_model^-0.5 · min(n^-0.5, n · warmup^-1.5)`` for the first
  ``warmup_steps`` optimizer steps n (1-based), then ``exp_max · exp_base^((epoch - 1) // 2)`` with
  1-based epochs (asteroid's ``DPTNetScheduler``, SPEC §3.5).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau, StepLR

from separate.errors import SeparateError


class Schedule:
    """Constant learning rate; the base class of the others."""

    name = "none"

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer

    def before_step(self, epoch: int) -> None:
        """Called before every optimizer step of (0-based) ``epoch``."""

    def after_epoch(self, value: float) -> None:
        """Called once per epoch with the monitored validation value (lower is better)."""

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class TorchSchedule(Schedule):
    """A schedule driven by a torch ``lr_scheduler`` object (``self.scheduler``), whose state it saves."""

    scheduler: LRScheduler

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)


class PlateauSchedule(TorchSchedule):
    """``factor`` x the rate once ``patience`` epochs in a row bring no new best (the papers' wording:
    "halve when the validation loss has not improved for 3 consecutive epochs" is ``patience=3``).

    Built on ``ReduceLROnPlateau``, whose own ``patience=N`` waits for N + 1 bad epochs, so it is given
    ``patience - 1``. Any decrease counts as an improvement (``threshold=0``), as in :class:`EarlyStopping`.
    """

    name = "plateau"

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 0.5,
        patience: int = 3,
        threshold: float = 0.0,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__(optimizer)
        if not 0.0 < factor < 1.0 or patience < 1:
            raise SeparateError(
                f"the plateau schedule needs 0 < factor < 1 and patience >= 1, got {factor}, {patience}"
            )
        self.scheduler = ReduceLROnPlateau(
            optimizer,
            mode="min",
            factor=factor,
            patience=patience - 1,
            threshold=threshold,
            threshold_mode="abs",
            min_lr=min_lr,
        )

    def after_epoch(self, value: float) -> None:
        self.scheduler.step(value)


class StepSchedule(TorchSchedule):
    """``gamma`` x the rate every ``step_size`` epochs (``StepLR``)."""

    name = "step"

    def __init__(self, optimizer: Optimizer, step_size: int = 2, gamma: float = 0.96) -> None:
        super().__init__(optimizer)
        if step_size < 1 or gamma <= 0:
            raise SeparateError(
                f"the step schedule needs step_size >= 1 and gamma > 0, got {step_size}, {gamma}"
            )
        self.scheduler = StepLR(optimizer, step_size=step_size, gamma=gamma)

    def after_epoch(self, value: float) -> None:
        self.scheduler.step()


class DPTNetSchedule(Schedule):
    """Noam warm-up over optimizer steps, then exponential decay every two epochs (SPEC §3.5)."""

    name = "dptnet"

    def __init__(
        self,
        optimizer: Optimizer,
        d_model: int = 64,
        warmup_steps: int = 4000,
        noam_scale: float = 1.0,
        exp_max: float = 4e-4,
        exp_base: float = 0.98,
    ) -> None:
        super().__init__(optimizer)
        if warmup_steps < 1 or d_model < 1:
            raise SeparateError("the dptnet schedule needs warmup_steps >= 1 and d_model >= 1")
        self.d_model, self.warmup_steps, self.noam_scale = d_model, warmup_steps, noam_scale
        self.exp_max, self.exp_base = exp_max, exp_base
        self.step_num = 0

    def rate(self, step_num: int, epoch: int) -> float:
        """Rate of optimizer step ``step_num`` (1-based) in ``epoch`` (0-based)."""
        if step_num <= self.warmup_steps:
            return (
                self.noam_scale * self.d_model**-0.5 * min(step_num**-0.5, step_num * self.warmup_steps**-1.5)
            )
        return self.exp_max * self.exp_base ** (epoch // 2)

    def before_step(self, epoch: int) -> None:
        self.step_num += 1
        for group in self.optimizer.param_groups:
            group["lr"] = self.rate(self.step_num, epoch)

    def state_dict(self) -> dict[str, Any]:
        return {"step_num": self.step_num}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_num = int(state["step_num"])


SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls for cls in (Schedule, PlateauSchedule, StepSchedule, DPTNetSchedule)
}


def schedule_options(name: str) -> set[str]:
    """Keyword options the schedule ``name`` accepts (for recipe validation)."""
    if name not in SCHEDULES:
        raise SeparateError(f"unknown learning-rate schedule '{name}' (known: {', '.join(SCHEDULES)})")
    return set(inspect.signature(SCHEDULES[name].__init__).parameters) - {"self", "optimizer"}


def build_schedule(optimizer: Optimizer, config: dict[str, Any]) -> Schedule:
    """``config = {"name": ..., **options}`` -> a :class:`Schedule` driving ``optimizer``."""
    options = dict(config)
    name = options.pop("name", "none")
    unknown = sorted(set(options) - schedule_options(name))
    if unknown:
        raise SeparateError(
            f"the '{name}' schedule does not take {', '.join(unknown)} "
            f"(it takes: {', '.join(sorted(schedule_options(name))) or 'nothing'})"
        )
    return SCHEDULES[name](optimizer, **options)


class EarlyStopping:
    """Tracks the best monitored value (lower is better) and stops after ``patience`` epochs without
    a new best (0 = never stop). With ``window`` > 1 the value compared is the mean of the last
    ``window`` epochs' values (fewer at the start of a run), so one lucky epoch is not the best."""

    def __init__(self, patience: int = 0, window: int = 1) -> None:
        if patience < 0:
            raise SeparateError(f"early-stopping patience must be >= 0, got {patience}")
        if window < 1:
            raise SeparateError(f"the monitor window must be at least 1 epoch, got {window}")
        self.patience, self.window = patience, window
        self.best = math.inf
        self.best_epoch = -1
        self.bad_epochs = 0
        self.recent: list[float] = []

    @property
    def value(self) -> float:
        """The smoothed value of the last update (inf before the first)."""
        return sum(self.recent) / len(self.recent) if self.recent else math.inf

    def update(self, value: float, epoch: int) -> bool:
        """Record the value of 0-based ``epoch``; True when the smoothed value is a new best."""
        self.recent = [*self.recent, value][-self.window :]
        if self.value < self.best:
            self.best, self.best_epoch, self.bad_epochs = self.value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "recent": list(self.recent),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]
        self.recent = [float(v) for v in state.get("recent", [])][-self.window :]
