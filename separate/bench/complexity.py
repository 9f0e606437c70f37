"""Parameter and MAC counts of a model on one second of audio (ptflops, which counts LSTMs and attention)."""

from __future__ import annotations

import io

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, seconds: float = 1.0, sample_rate: int | None = None) -> int:
    """Multiply-accumulates of one forward pass on ``seconds`` of audio, batch 1.

    The model takes ``mix: [1, C, T]`` with ``C = model.audio_channels``. Uses ptflops' PyTorch
    backend, which hooks modules (conv, linear, LSTM, multi-head attention, norms) and the
    functional/tensor ops (matmul, bmm, interpolate...) that models call directly.
    """
    from ptflops import get_model_complexity_info

    rate = sample_rate or model.sample_rate
    channels = getattr(model, "audio_channels", 1)
    length = int(round(seconds * rate))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            macs, _ = get_model_complexity_info(
                model,
                (channels, length),
                input_constructor=lambda shape: {"mix": torch.zeros(1, *shape)},
                as_strings=False,
                print_per_layer_stat=False,
                ost=io.StringIO(),
                backend="pytorch",
            )
    finally:
        model.train(was_training)
    return int(macs)
