"""Train a separator from a recipe: the entry point of ``separate train`` (see :mod:`separate.training`).

    >>> from separate.training import train
    >>> summary = train("examples/recipes/tiny.toml", ["train.epochs=3"], out="runs/tiny")
    >>> summary["best"]["valid_si_snri"]

Runs on the CPU or one CUDA device (automatic mixed precision there when ``train.amp``), or on
several processes launched by ``torchrun`` (DDP; rank 0 alone writes the run folder). ``resume=True``
continues from ``RUN/state/last.safetensors`` exactly where the run stopped, bit for bit on the CPU;
the layout of the run folder is described in :mod:`separate.training.loop`. SIGINT (Ctrl-C) and
SIGTERM save the state and raise :class:`separate.training.TrainingInterrupted`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from separate.errors import SeparateError
from separate.runtime import atomic_write_text, check_writable_folder
from separate.training.components import build_loss_module, build_model
from separate.training.data import check_data_config
from separate.training.distributed import Distributed
from separate.training.interrupt import StopSignals
from separate.training.loop import Trainer
from separate.training.progress import Reporter, cut_back, epoch_records
from separate.training.recipe import differences, load_recipe, resolve
from separate.training.state import RunPaths, append_jsonl, load_state, read_jsonl

DEFAULT_RUNS = "runs"


def resolve_recipe(
    recipe: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()
) -> dict[str, Any]:
    """Load a recipe file, apply ``KEY=VALUE`` overrides, fill defaults and check the fixed keys."""
    path = Path(recipe)
    raw = load_recipe(path)
    config = resolve(raw, overrides)
    previous = config["recipe"]
    name = previous.get("name") if path.suffix.lower() == ".json" and previous.get("name") else path.stem
    config["recipe"] = {"name": name, "path": str(path), "overrides": list(overrides)}
    return config


def check_recipe(
    recipe: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()
) -> dict[str, Any]:
    """Resolve a recipe and build its model and loss; check its data options without reading any data.

    Returns ``{"config", "model", "loss"}``.
    """
    config = resolve_recipe(recipe, overrides)
    model = build_model(config)
    loss = build_loss_module(config, model)
    check_data_config(config["data"])
    return {"config": config, "model": model, "loss": loss}


def train(
    recipe: str | os.PathLike[str],
    overrides: list[str] | tuple[str, ...] = (),
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    device: str = "auto",
    reporter: Reporter | None = None,
    progress_every: float = 30.0,
) -> dict[str, Any]:
    """Train the recipe's model; return a summary (best epoch and metrics, paths, time).

    Args:
        recipe: recipe TOML, or a run's ``config.json``.
        overrides: ``KEY=VALUE`` strings (``train.lr=5e-4``).
        out: run folder (default ``runs/<recipe name>``).
        resume: continue the run in ``out`` from its last state; starts afresh when there is none.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (under torchrun each process takes
            ``cuda:LOCAL_RANK``).
        reporter: progress callbacks (main process only).
        progress_every: seconds between progress records in ``log.jsonl`` (and ``reporter.progress``
            calls), the first after the first step; 0 writes none.

    Raises:
        TrainingInterrupted: SIGINT or SIGTERM stopped the run; its state was saved first.
    """
    config = resolve_recipe(recipe, overrides)
    check_data_config(config["data"])
    paths = RunPaths(out if out is not None else Path(DEFAULT_RUNS) / config["recipe"]["name"])
    resuming = _check_run_folder(paths, config, resume)
    reporter = reporter or Reporter()
    dist = Distributed.setup(device)
    try:
        with StopSignals() as signals:
            trainer = Trainer(
                config, paths, dist, reporter, progress_every, signals, start_weights=not resuming
            )
            if resuming:
                _restore(trainer, paths, dist.is_main)
            elif dist.is_main:
                _start_log(paths, config)
            epochs = config["train"]["epochs"]
            while trainer.epoch < epochs and not trainer.early.should_stop:
                record = trainer.run_epoch()
                if dist.is_main:
                    append_jsonl(paths.log, record)
                    reporter.epoch_done(record)
                trainer.save(best=bool(record["best"]))
                if trainer.epoch < epochs and not trainer.early.should_stop:
                    trainer.check_interrupt()
        stopped = "early_stop" if trainer.early.should_stop else "max_epochs"
        if stopped == "early_stop":
            trainer.reporter.message(
                f"early stop: no better validation value for {trainer.early.patience} epochs"
            )
        dist.barrier()
        return _summary(trainer, paths, stopped)
    finally:
        dist.close()


def _restore(trainer: Trainer, paths: RunPaths, is_main: bool) -> None:
    """Continue from the last state; the log is cut back to what that state had seen."""
    trainer.restore(load_state(paths.last))
    records = cut_back(read_jsonl(paths.log), trainer.epoch, trainer.global_step)
    trainer.history = epoch_records(records)
    if is_main:
        # config.json keeps its first version; only epochs, workers and the like may differ.
        atomic_write_text(paths.log, "".join(json.dumps(record) + "\n" for record in records))
    trainer.reporter.message(
        f"resuming {paths.root} at epoch {trainer.epoch + 1}"
        + (f", step {trainer.step_in_epoch + 1}" if trainer.step_in_epoch else "")
    )


def _check_run_folder(paths: RunPaths, config: dict[str, Any], resume: bool) -> bool:
    """True when the run continues from a saved state; errors for folders that hold another run or
    cannot be written."""
    if paths.root.exists() and not paths.root.is_dir():
        raise SeparateError(f"--out '{paths.root}' exists and is not a folder")
    check_writable_folder(paths.root, "run folder")
    has_state = paths.last.exists()
    if not resume:
        if has_state or paths.model.exists():
            raise SeparateError(
                f"'{paths.root}' already holds a run; pass --resume to continue it or choose another --out"
            )
        return False
    if not has_state:
        return False
    if paths.config.exists():
        saved = json.loads(paths.config.read_text())
        changed = differences(saved, config)
        if changed:
            raise SeparateError(
                f"cannot resume '{paths.root}': the recipe differs from its config.json in "
                f"{', '.join(changed)}; resume with the same recipe and --set options, or start a new "
                "run with another --out"
            )
    return True


def _start_log(paths: RunPaths, config: dict[str, Any]) -> None:
    """A fresh run: config.json and an empty log."""
    paths.root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(paths.config, json.dumps(config, indent=2) + "\n")
    atomic_write_text(paths.log, "")


def _summary(trainer: Trainer, paths: RunPaths, stopped: str) -> dict[str, Any]:
    best_epoch = trainer.early.best_epoch + 1
    best = next((r for r in trainer.history if r["epoch"] == best_epoch), {})
    return {
        "run": str(paths.root),
        "model": str(paths.model),
        "epochs": trainer.epoch,
        "steps": trainer.global_step,
        "stopped": stopped,
        "best_epoch": best_epoch,
        "best": {key: best.get(key) for key in ("valid_loss", "valid_si_snri", "train_loss")},
        "seconds": round(trainer.elapsed, 3),
        "examples": trainer.examples,
        "world_size": trainer.dist.world,
        "device": str(trainer.dist.device),
    }
