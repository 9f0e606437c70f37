"""The training loop: epochs of optimizer steps, validation, schedules, early stopping, run-folder writes.

A run folder holds::

    config.json               the resolved recipe (a valid recipe itself: ``separate train RUN/config.json``)
    log.jsonl                 one record per finished epoch, progress records between them
    state/last.safetensors    everything needed to continue exactly (see separate.training.state)
    state/best.safetensors    the same, at the epoch with the best validation value
    model.safetensors         the best weights as a release checkpoint (``separate audio --model``)

Order of writes at the end of an epoch: log record, best state and ``model.safetensors`` (when the
epoch is a new best), last state. A run killed anywhere resumes from the last state and, being
deterministic, rewrites whatever came after it identically; the log is cut back to that state.

Exactness: the global RNG states of every process, the optimizer, schedule, scaler, early-stopping
and loss-module states are saved; each epoch's shuffle and loader worker seeds derive from
``(seed, epoch, rank)``. States written between epochs (``train.save_every_steps``) resume exactly
with ``data.num_workers = 0``; with loader workers, a mid-epoch resume restarts the workers' random
crops (end-of-epoch states stay exact).

Stopping: SIGINT or SIGTERM (see :mod:`separate.training.interrupt`) ends the run after the current
step, every process agreeing on that step, with a state saved there (:class:`TrainingInterrupted`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import nn

from separate import checkpoints
from separate.errors import SeparateError
from separate.runtime import mix_seed
from separate.training import data as data_setup
from separate.training.components import build_loss_module, build_model, load_initial_weights
from separate.training.distributed import Distributed
from separate.training.export import release_metadata, state_examples
from separate.training.interrupt import StopSignals, TrainingInterrupted
from separate.training.objective import Objective, per_item, si_snr_improvement
from separate.training.progress import EPOCH, EpochProgress, Reporter
from separate.training.schedules import EarlyStopping, build_schedule
from separate.training.state import (
    RunPaths,
    append_jsonl,
    capture_rng,
    restore_rng,
    save_state,
    seed_everything,
)


class TrainingDiverged(SeparateError):
    """The loss or the gradient became NaN or infinite; the last good state stays on disk."""


class Trainer:
    """One training run of a resolved config (see :func:`separate.training.train` for the entry point).

    ``progress_every``: seconds between progress records (0: none); ``signals``: the stop flag
    (an active :class:`StopSignals`); ``start_weights``: load ``train.init`` (off when resuming:
    the state holds the weights, and the init file may be gone).
    """

    def __init__(
        self,
        config: dict[str, Any],
        paths: RunPaths,
        dist: Distributed,
        reporter: Reporter,
        progress_every: float = 0.0,
        signals: StopSignals | None = None,
        start_weights: bool = True,
    ) -> None:
        self.config, self.paths, self.dist = config, paths, dist
        self.reporter = reporter if dist.is_main else Reporter()
        self.progress_every = progress_every if dist.is_main else 0.0
        self.signals = signals or StopSignals()
        train, data = config["train"], config["data"]
        self.train_cfg, self.data_cfg = train, data
        device = dist.device
        seed_everything(train["seed"])
        self.model = build_model(config)
        self.loss = build_loss_module(config, self.model)
        if train["init"] and start_weights:
            load_initial_weights(self.model, train["init"])
        use_amp = train["amp"] and device.type == "cuda"
        amp_dtype = getattr(torch, train["amp_dtype"]) if use_amp else None
        self.objective = Objective(self.model, self.loss, amp_dtype, train["loss_window"]).to(device)
        self.step_module: nn.Module = self.objective
        if dist.active:
            from torch.nn.parallel import DistributedDataParallel

            # Some models own parameters a forward pass may skip (the last TCN block's residual conv)
            # and AttentionPIT's encoder stops being used at its switch epoch.
            self.step_module = DistributedDataParallel(
                self.objective,
                device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=True,
            )
        self.parameters = [p for p in self.objective.parameters() if p.requires_grad]
        optimizer_cls = torch.optim.AdamW if train["optimizer"] == "adamw" else torch.optim.Adam
        self.optimizer = optimizer_cls(
            self.parameters,
            lr=train["lr"],
            betas=tuple(train["betas"]),
            eps=train["eps"],
            weight_decay=train["weight_decay"],
        )
        self.schedule = build_schedule(self.optimizer, train["scheduler"])
        self.early = EarlyStopping(train["early_stop"], train["monitor_window"])
        self.scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None

        self.train_set, self.valid_set, data_sources = data_setup.build_datasets(data, self.model)
        self.order = data_setup.source_order(data_sources, self.model.sources)
        self.permute = bool(getattr(self.loss, "permutation_invariant", False))
        steps = train["steps_per_epoch"]
        self.sampler = data_setup.EpochSampler(
            self.train_set,
            dist.world,
            dist.rank,
            train["seed"],
            steps * data["batch_size"] if steps else None,
        )
        if len(self.valid_set) == 0 or len(self.train_set) == 0:
            raise SeparateError("the training and validation sets must each hold at least one example")
        self.valid_loader = data_setup.loader(
            self.valid_set,
            data_setup.valid_indices(self.valid_set, dist.rank, dist.world),
            data["valid_batch_size"] or data["batch_size"],
            data["num_workers"],
            train["seed"],
        )
        seed_everything(mix_seed(train["seed"], dist.rank))
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.partial: dict[str, float] = {}
        self.elapsed = 0.0
        self.examples = 0
        self.history: list[dict[str, Any]] = []
        self.segment_started = time.perf_counter()
        self.last_progress = -math.inf
        self.stop_signal = 0

    # ---------------------------------------------------------------- state
    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs; collective (every rank contributes its RNG state)."""
        rng = self.dist.gather(capture_rng())
        return {
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "partial": dict(self.partial),
            "elapsed": self.elapsed,
            "examples": self.examples,
            "model": self.model.state_dict(),
            "loss": self.loss.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "early_stopping": self.early.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "rng": rng,
            "world": self.dist.world,
            "config": self.config,
        }

    def restore(self, state: dict[str, Any]) -> None:
        device = self.dist.device
        self.model.load_state_dict(state["model"])
        self.loss.load_state_dict(state["loss"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.early.load_state_dict(state["early_stopping"])
        if self.scaler is not None and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.objective.to(device)
        self.epoch, self.step_in_epoch = int(state["epoch"]), int(state["step_in_epoch"])
        self.global_step, self.elapsed = int(state["global_step"]), float(state["elapsed"])
        self.examples = state_examples(state)
        self.segment_started = time.perf_counter()
        self.partial = dict(state["partial"])
        if len(state["rng"]) == self.dist.world:
            restore_rng(state["rng"][self.dist.rank])
        else:
            seed_everything(mix_seed(self.train_cfg["seed"], self.dist.rank, self.epoch, self.step_in_epoch))
            self.reporter.message(
                f"the state was written by {len(state['rng'])} process(es), this run has {self.dist.world}: "
                "random streams restart, so the result will not be bit-identical to an uninterrupted run"
            )

    def save(self, best: bool) -> None:
        """Write the last state (and, for a new best, the best state and the release checkpoint)."""
        now = time.perf_counter()
        self.elapsed += now - self.segment_started
        self.segment_started = now
        state = self.state()
        if not self.dist.is_main:
            return
        if best:
            save_state(self.paths.best, state)
            self.save_release()
        save_state(self.paths.last, state)

    def save_release(self) -> None:
        metadata = release_metadata(
            self.config,
            epoch=self.early.best_epoch + 1,
            steps=self.global_step,
            train_seconds=self.elapsed,
            examples=self.examples,
            record=self.history[-1] if self.history else None,
        )
        checkpoints.save(self.model, self.paths.model, **metadata)

    @property
    def train_seconds(self) -> float:
        """Training time since the run began, across resumes."""
        return self.elapsed + time.perf_counter() - self.segment_started

    def check_interrupt(self) -> None:
        """Between epochs: stop (every process) when any process received a signal."""
        self.stop_signal = int(self.dist.max([float(self.signals.received)])[0])
        if self.stop_signal:
            raise TrainingInterrupted(self.stop_signal, self.paths.last)

    # ---------------------------------------------------------------- steps
    def _batch(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mix, sources, lengths = batch
        mix, sources, lengths = data_setup.fit_channels(mix, sources, lengths, self.model.audio_channels)
        if self.order is not None:
            sources = sources[:, self.order]
        device = self.dist.device
        return mix.to(device, non_blocking=True), sources.to(device, non_blocking=True), lengths

    def _diverged(self, what: str, value: float) -> TrainingDiverged:
        where = f"epoch {self.epoch + 1}, step {self.step_in_epoch + 1} (global step {self.global_step + 1})"
        if self.paths.last.exists():
            kept = (
                f"the last good state stays in {self.paths.last}; lower train.lr or check the data "
                f"(a new run can start from that state with --set train.init={self.paths.last})"
            )
        else:
            kept = "no state had been saved yet; lower train.lr or check the data"
        return TrainingDiverged(f"training diverged: the {what} is {value} at {where}; {kept}")

    def train_step(self, batch: Any) -> tuple[float, dict[str, float], int]:
        mix, sources, lengths = self._batch(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss, metrics = self.step_module(mix, sources, lengths)
        # One collective per step: every process learns of a divergence or a signal on any of them.
        nonfinite, signal = self.dist.max(
            [float(not bool(torch.isfinite(loss.detach()))), float(self.signals.received)]
        )
        if nonfinite:
            raise self._diverged("training loss", float(loss.detach()))
        self.stop_signal = int(signal)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        clip = self.train_cfg["clip_grad_norm"]
        norm = torch.nn.utils.clip_grad_norm_(self.parameters, clip if clip > 0 else math.inf)
        if self.scaler is None and not bool(torch.isfinite(norm)):
            raise self._diverged("gradient norm", float(norm))
        self.schedule.before_step(self.epoch)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return float(loss.detach()), metrics, int(mix.shape[0])

    def _accumulate(self, loss: float, metrics: dict[str, float], count: int) -> None:
        for key, value in {"loss": loss, **metrics}.items():
            self.partial[key] = self.partial.get(key, 0.0) + value * count
        self.partial["count"] = self.partial.get("count", 0.0) + count

    def _reduced(self, sums: dict[str, float]) -> dict[str, float]:
        keys = sorted(sums)
        values = self.dist.sum(torch.tensor([sums[k] for k in keys], dtype=torch.float64))
        totals = dict(zip(keys, values.tolist(), strict=True))
        count = max(totals.pop("count", 0.0), 1.0)
        return {key: value / count for key, value in totals.items()}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean validation loss (the loss module in eval mode: Hungarian PIT for the PIT family) and
        SI-SNRi over this process's share, summed over processes. Items of different lengths are
        separated one by one, so padding never reaches the model."""
        self.objective.eval()
        sums = {"loss": 0.0, "si_snri": 0.0, "count": 0.0}
        limit = self.train_cfg["max_valid_batches"]
        window = self.train_cfg["loss_window"]
        for index, batch in enumerate(self.valid_loader):
            if limit and index >= limit:
                break
            mix, sources, lengths = self._batch(batch)
            if bool((lengths < mix.shape[-1]).any()):
                parts = [
                    (*item, lengths[i : i + 1]) for i, item in enumerate(per_item(lengths, mix, sources))
                ]
            else:
                parts = [(mix, sources, lengths)]
            for part_mix, part_sources, part_lengths in parts:
                est = self.objective.separate(part_mix)
                loss, _ = self.objective.score(est, part_sources, part_lengths)
                improvement = si_snr_improvement(
                    est, part_sources, part_mix, part_lengths, self.permute, window
                )
                count = int(improvement.numel())
                sums["loss"] += float(loss) * count
                sums["si_snri"] += float(improvement.sum())
                sums["count"] += count
        self.objective.train()
        return self._reduced(sums)

    # ---------------------------------------------------------------- epochs
    def run_epoch(self) -> dict[str, Any]:
        """Train one epoch (from ``step_in_epoch`` on) and validate; returns the epoch's log record.

        Raises :class:`TrainingInterrupted` after saving the state when a signal stops the run."""
        self.loss.set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(self.epoch)
        self.sampler.start = self.step_in_epoch * self.data_cfg["batch_size"]
        loader = data_setup.loader(
            self.train_set,
            self.sampler,
            self.data_cfg["batch_size"],
            self.data_cfg["num_workers"],
            mix_seed(self.train_cfg["seed"], self.epoch, self.dist.rank),
        )
        epochs, steps = self.train_cfg["epochs"], len(loader) + self.step_in_epoch
        self.reporter.epoch_started(self.epoch + 1, epochs, steps, self.step_in_epoch)
        progress = EpochProgress(self.epoch + 1, epochs, steps, self.step_in_epoch, self.dist.world)
        self.objective.train()
        for batch in loader:
            loss, metrics, count = self.train_step(batch)
            self.after_step(len(batch[0]), loss, metrics, count, progress)
        train_means = self._reduced(self.partial)
        valid = self.validate()
        monitored = valid["loss"] if self.train_cfg["monitor"] == "loss" else -valid["si_snri"]
        improved = self.early.update(monitored, self.epoch)
        lr = self.schedule.lr
        self.schedule.after_epoch(monitored)
        record = {
            "event": EPOCH,
            "epoch": self.epoch + 1,
            "train_loss": train_means.pop("loss", math.nan),
            "valid_loss": valid["loss"],
            "valid_si_snri": valid["si_snri"],
            "lr": lr,
            "seconds": time.perf_counter() - progress.started,
            "steps": self.step_in_epoch,
            "global_step": self.global_step,
            "examples": self.examples,
            "train_seconds": self.train_seconds,
            "best": improved,
            "train_metrics": train_means,
        }
        if self.early.window > 1:
            sign = 1.0 if self.train_cfg["monitor"] == "loss" else -1.0
            record[f"smoothed_valid_{self.train_cfg['monitor']}"] = sign * self.early.value
        self.history.append(record)
        self.epoch += 1
        self.step_in_epoch = 0
        self.partial = {}
        return record

    def after_step(
        self, examples: int, loss: float, metrics: dict[str, float], count: int, progress: EpochProgress
    ) -> None:
        """Count a finished step of ``examples`` examples (``count`` loss items); report, log progress,
        save every ``save_every_steps`` steps and when a signal stops the run."""
        self.global_step += 1
        self.step_in_epoch += 1
        self.examples += examples * self.dist.world
        progress.step(examples)
        self._accumulate(loss, metrics, count)
        self.reporter.step_done(loss, count)
        now = time.perf_counter()
        if self.progress_every and now - self.last_progress >= self.progress_every:
            self.last_progress = now
            running = self.partial["loss"] / max(self.partial["count"], 1.0)
            record = progress.record(
                self.step_in_epoch, running, self.train_seconds, self.global_step, self.examples
            )
            append_jsonl(self.paths.log, record)
            self.reporter.progress(record)
        every = self.train_cfg["save_every_steps"]
        if self.stop_signal or (every and self.global_step % every == 0):
            self.save(best=False)
        if self.stop_signal:
            raise TrainingInterrupted(self.stop_signal, self.paths.last)
