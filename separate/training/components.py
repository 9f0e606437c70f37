"""What a resolved recipe describes: the separator, its loss module, and the weights it starts from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from separate import checkpoints
from separate.errors import SeparateError
from separate.losses import build_loss
from separate.models import SeparationModel, build
from separate.training.recipe import model_spec
from separate.training.state import is_training_state, load_state


def build_model(config: dict[str, Any]) -> SeparationModel:
    """The separator a resolved config describes."""
    name, kwargs = model_spec(config)
    try:
        model = build(name, **kwargs)
    except TypeError as problem:
        raise SeparateError(f"model '{name}' does not accept these [model] options: {problem}") from None
    except ValueError as problem:
        raise SeparateError(f"model '{name}': {problem}") from None
    if not isinstance(model, SeparationModel):
        raise SeparateError(f"model '{name}' is not a separate.models.SeparationModel")
    return model


def build_loss_module(config: dict[str, Any], model: SeparationModel) -> nn.Module:
    """The ``[loss]`` table's loss for the model's number of sources."""
    options = dict(config["loss"])
    return build_loss(options.pop("name"), model.n_src, **options)


def load_initial_weights(model: SeparationModel, path: str) -> None:
    """``train.init``: weights of a training state (``RUN/state/last.safetensors``) or a checkpoint."""
    if not Path(path).is_file():
        raise SeparateError(f"train.init '{path}' does not exist")
    if is_training_state(path):
        tensors = load_state(path)["model"]
    else:
        tensors = checkpoints.load(path).state_dict()
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as problem:
        raise SeparateError(
            f"train.init '{path}' does not fit this model: {str(problem).splitlines()[0]}"
        ) from None
