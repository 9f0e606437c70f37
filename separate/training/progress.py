"""Progress of a run between epoch records: what a background run logs and prints every few seconds.

``log.jsonl`` holds two kinds of records. Epoch records (``"event": "epoch"``; logs written before
the field existed have none) close each epoch. Progress records (``"event": "progress"``) are
written every ``progress_every`` seconds by the main process, the first one after the first step::

    {"event": "progress", "epoch": 3, "epochs": 40, "step": 120, "steps": 500, "loss": -7.9,
     "examples_per_second": 45.1, "elapsed": 83.2, "eta": 263.5,
     "train_seconds": 1754.0, "global_step": 1120, "examples": 8960}

``step``/``steps``: optimizer steps done in the epoch and in the whole epoch; ``loss``: the running
mean of the epoch on the main process; ``elapsed``: seconds this process has spent in the epoch;
``eta``: seconds to the end of the epoch at that rate (validation not included). ``train_seconds``,
``global_step`` and ``examples`` count from the start of the run, across resumes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

EPOCH, PROGRESS = "epoch", "progress"


class Reporter:
    """Receives progress from the main process; the CLI draws it with rich. Does nothing by default."""

    def epoch_started(self, epoch: int, epochs: int, steps: int, done: int = 0) -> None:
        """``epoch`` is 1-based; ``steps`` is the number of optimizer steps in it (this process), of
        which ``done`` were done before a resume."""

    def step_done(self, loss: float, examples: int) -> None:
        """One optimizer step over ``examples`` examples with mean loss ``loss``."""

    def progress(self, record: dict[str, Any]) -> None:
        """A progress record (every ``progress_every`` seconds; see separate.training.progress)."""

    def epoch_done(self, record: dict[str, Any]) -> None:
        """The epoch's log record."""

    def message(self, text: str) -> None:
        """A one-line note (resuming, early stop...)."""


def is_epoch_record(record: dict[str, Any]) -> bool:
    return record.get("event", EPOCH) == EPOCH


def epoch_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The epoch records of a log, in order (progress records left out)."""
    return [record for record in records if is_epoch_record(record)]


def cut_back(records: Iterable[dict[str, Any]], epoch: int, global_step: int) -> list[dict[str, Any]]:
    """The records a state saved after ``epoch`` finished epochs and ``global_step`` steps had seen."""
    return [
        record
        for record in records
        if (
            record.get("epoch", 0) <= epoch
            if is_epoch_record(record)
            else record.get("global_step", 0) <= global_step
        )
    ]


class EpochProgress:
    """Speed and time left of the epoch this process is running (from where it started or resumed it).

    Args:
        epoch, epochs: 1-based epoch and the run's number of epochs.
        steps: optimizer steps in the whole epoch.
        done: steps of the epoch already done when this process took it over (a mid-epoch resume).
        world: processes; each step of this process stands for ``world`` batches.
    """

    def __init__(self, epoch: int, epochs: int, steps: int, done: int, world: int = 1) -> None:
        self.epoch, self.epochs, self.steps, self.done, self.world = epoch, epochs, steps, done, world
        self.started = time.perf_counter()
        self.examples = 0

    def step(self, examples: int) -> None:
        """One step of this process over ``examples`` examples."""
        self.examples += examples * self.world

    def record(
        self, step: int, loss: float, train_seconds: float, global_step: int, examples: int
    ) -> dict[str, Any]:
        """A progress record at ``step`` of the epoch (see the module docstring for the fields)."""
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        per_step = elapsed / max(step - self.done, 1)
        return {
            "event": PROGRESS,
            "epoch": self.epoch,
            "epochs": self.epochs,
            "step": step,
            "steps": self.steps,
            "loss": loss if math.isfinite(loss) else None,
            "examples_per_second": round(self.examples / elapsed, 3),
            "elapsed": round(elapsed, 3),
            "eta": round(per_step * max(self.steps - step, 0), 3),
            "train_seconds": round(train_seconds, 3),
            "global_step": global_step,
            "examples": examples,
        }


def clock(seconds: float | None) -> str:
    """``seconds`` as ``H:MM:SS`` (``M:SS`` under an hour)."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_line(record: dict[str, Any]) -> str:
    """One line of a progress record, as a background run prints it."""
    loss = "n/a" if record["loss"] is None else f"{record['loss']:.4f}"
    return (
        f"epoch {record['epoch']}/{record['epochs']}  step {record['step']}/{record['steps']}  "
        f"loss {loss}  {record['examples_per_second']:.1f} ex/s  elapsed {clock(record['elapsed'])}  "
        f"ETA {clock(record['eta'])}  (run: {clock(record['train_seconds'])}, "
        f"step {record['global_step']}, {record['examples']} examples)"
    )
