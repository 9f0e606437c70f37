"""Release checkpoints of a run: what ``model.safetensors`` holds.

The model's weights go with a header of the architecture and its options
(:func:`separate.checkpoints.save`), ``training`` (recipe, paper, epoch, cumulative steps, training
seconds and examples, seed, loss, data) and ``metrics`` (the epoch's validation values).
"""

from __future__ import annotations

from typing import Any

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
        "data": {key: data[key] for key in ("layout", "root", "train", "valid")},
    }
    if step_in_epoch:
        training["step_in_epoch"] = step_in_epoch
    metrics = {key: record[key] for key in METRICS if key in record} if record else {}
    return {"training": training, "metrics": metrics}


def state_examples(state: dict[str, Any]) -> int:
    """Examples seen by a saved state; states written before they were counted give an estimate."""
    if "examples" in state:
        return int(state["examples"])
    return int(state["global_step"]) * int(state["config"]["data"]["batch_size"]) * int(state["world"])
