"""Release checkpoints of a run: what ``model.safetensors`` holds, and ``separate train --export``.

Both write the model's weights with the same header: the architecture and its options
(:func:`separate.checkpoints.save`), ``training`` (recipe, paper, epoch, cumulative steps, training
seconds and examples, seed, loss, data: layout, folder name, train and valid options; the
file name of ``train.init`` for a fine-tuned run) and ``metrics`` (the epoch's validation values).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from separate import checkpoints
from separate.errors import SeparateError
from separate.training.components import build_model
from separate.training.progress import epoch_records
from separate.training.state import RunPaths, load_state, read_jsonl

STATES = ("best", "last")
#: Training facts a summary of an export repeats.
SUMMARY = ("recipe", "epoch", "steps", "train_seconds", "examples")
METRICS = ("valid_loss", "valid_si_snri", "smoothed_valid_loss", "smoothed_valid_si_snri")


def release_metadata(
    config: dict[str, Any],
    *,
    epoch: int,
    steps: int,
    train_seconds: float,
    examples: int,
    record: dict[str, Any] | None,
    step_in_epoch: int = 0,
) -> dict[str, Any]:
    """``{"training": ..., "metrics": ...}`` for :func:`separate.checkpoints.save`.

    ``epoch`` is the number of finished epochs (1-based epoch of the weights), ``record`` that
    epoch's log record (None leaves the metrics empty); ``step_in_epoch`` > 0 marks weights taken
    part-way through the next epoch.
    """
    data = config["data"]
    training: dict[str, Any] = {
        "recipe": config["recipe"].get("name"),
        "paper": config["paper"],
        "epoch": epoch,
        "steps": steps,
        "train_seconds": round(float(train_seconds), 3),
        "examples": int(examples),
        "seed": config["train"]["seed"],
        "loss": config["loss"],
        # Only the data folder's name: where it lay on the training machine means nothing elsewhere.
        "data": {
            "layout": data["layout"],
            "root": Path(data["root"]).name if data.get("root") else data.get("root"),
            **{key: data[key] for key in ("train", "valid")},
        },
    }
    if config["train"].get("init"):
        training["init"] = Path(config["train"]["init"]).name  # fine-tuned from that file's weights
    if step_in_epoch:
        training["step_in_epoch"] = step_in_epoch
    metrics = {key: record[key] for key in METRICS if key in record} if record else {}
    return {"training": training, "metrics": metrics}


def state_examples(state: dict[str, Any]) -> int:
    """Examples seen by a saved state; states written before they were counted give an estimate."""
    if "examples" in state:
        return int(state["examples"])
    return int(state["global_step"]) * int(state["config"]["data"]["batch_size"]) * int(state["world"])


def export_run(
    run: str | os.PathLike[str], out: str | os.PathLike[str], state: str = "best", half: bool = False
) -> dict[str, Any]:
    """Write the weights of ``RUN/state/<state>.safetensors`` as a release checkpoint at ``out``.

    Returns a summary: paths, epoch, steps, parameters, bytes and metrics.
    """
    if state not in STATES:
        raise SeparateError(f"--state must be one of {', '.join(STATES)}, got '{state}'")
    paths = RunPaths(run)
    if not paths.root.is_dir():
        raise SeparateError(f"run folder '{paths.root}' does not exist")
    source = paths.best if state == "best" else paths.last
    if not source.is_file():
        raise SeparateError(f"'{paths.root}' has no {state} state ({source} does not exist)")
    saved = load_state(source)
    config = saved["config"]
    model = build_model(config)
    try:
        model.load_state_dict(saved["model"])
    except RuntimeError as problem:
        raise SeparateError(f"{source} does not fit its own config: {str(problem).splitlines()[0]}") from None
    epoch, step_in_epoch = int(saved["epoch"]), int(saved["step_in_epoch"])
    record = None
    if not step_in_epoch:
        record = next((r for r in epoch_records(read_jsonl(paths.log)) if r.get("epoch") == epoch), None)
    metadata = release_metadata(
        config,
        epoch=epoch,
        steps=int(saved["global_step"]),
        train_seconds=float(saved["elapsed"]),
        examples=state_examples(saved),
        record=record,
        step_in_epoch=step_in_epoch,
    )
    written = checkpoints.save(model, out, half=half, **metadata)
    return {
        "run": str(paths.root),
        "state": state,
        "model": str(written),
        "architecture": type(model).architecture,
        "parameters": sum(p.numel() for p in model.parameters()),
        "half": half,
        "bytes": Path(written).stat().st_size,
        **{key: metadata["training"][key] for key in SUMMARY},
        "step_in_epoch": step_in_epoch,
        "metrics": metadata["metrics"],
    }
