"""Wave-U-Net (Stoller et al. 2018), and the pieces the lightweight Wave-U-Net (:mod:`.waveunet_lite`)
shares with it. Both map ``mix: [B, C, T]`` to ``est: [B, S, C, T]`` at 22.05 kHz.

``"waveunet"`` (SPEC §6.3): ``levels`` down blocks (Conv k15 + LeakyReLU(0.2), save skip, decimate by 2),
a bottleneck conv, ``levels`` up blocks (interpolate x2, crop-and-concat skip, Conv k5 + LeakyReLU), then the
mixture is concatenated and a k1 conv per explicit source gives the outputs. Variants M1-M5 are options:
``output_type`` (M1 "direct", M2 "difference"), ``context`` (M3, valid convolutions), ``audio_channels=2``
(M4), ``upsampling="learned"`` (M5). Counts (SPEC §9.6): 10 263 002 mono, 10 263 390 stereo, 10 265 550
stereo + learned up-sampling.

Decisions:

* Explicit sources and the difference output (SPEC §6.2, §6.3, §10 item 49): the last source is always
  ``mix - sum(others)``. Wave-U-Net keeps its reference order ``["accompaniment", "vocals"]`` (vocals are the
  difference); the lightweight model uses ``["vocals", "accompaniment"]`` and ``["vocals", "bass", "drums",
  "other"]`` (accompaniment / other are the difference, as the paper says for 4 stems).
* The difference source is never clipped, so sources always sum to the mixture; ``output_activation="linear"``
  clips explicit sources to [-1, 1] in eval mode only (Wave-U-Net's "linear" option; SPEC §6.2 "out").
* Context (SPEC §6.3): for T requested samples the model runs the valid network at the smallest native output
  size >= T (output 16 384 -> input 147 443, output 16 389), with zeros as context around the mixture, and
  crops back to T. A block of outputs needs input - output = 131 054 samples of context, but one output sample
  can depend on inputs up to 65 527 + 4 095 samples away on either side (the decimation phase and the
  interpolation shift each output's window), so ``receptive_field`` = 139 245 samples (6.3 s; SPEC's 6.69 s is
  the 147 443-sample input). Without context, T is right-padded to a multiple of 2^levels.
  ``default_segment`` is 10 s, so most output samples of a chunk see real audio as context.
* Up-sampling without context gives 2n samples: midpoints, the last sample repeated (TF1 bilinear resize);
  learned weights w = sigmoid(v) per channel start at v = 0, i.e. linear interpolation (SPEC §6.3, M5).
* Initialisation: Xavier-uniform weights, zero biases, the TensorFlow defaults of the reference code [O].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from separate.errors import SeparateError
from separate.models.base import SeparationModel
from separate.models.layers import pad_to_multiple

LEAKY_SLOPE = 0.2


def conv_act(
    in_channels: int, out_channels: int, kernel: int, *, stride: int = 1, padding: int = 0
) -> nn.Module:
    """Conv1d + LeakyReLU(0.2). x: [B, in, T] -> [B, out, T']."""
    return nn.Sequential(
        nn.Conv1d(in_channels, out_channels, kernel, stride=stride, padding=padding),
        nn.LeakyReLU(LEAKY_SLOPE),
    )


def separable_conv_act(in_channels: int, out_channels: int, kernel: int, dilation: int = 1) -> nn.Module:
    """Depthwise conv ("same" padding) + pointwise conv + LeakyReLU. x: [B, in, T] -> [B, out, T]."""
    return nn.Sequential(
        nn.Conv1d(
            in_channels,
            in_channels,
            kernel,
            padding=dilation * (kernel - 1) // 2,
            dilation=dilation,
            groups=in_channels,
        ),
        nn.Conv1d(in_channels, out_channels, 1),
        nn.LeakyReLU(LEAKY_SLOPE),
    )


def center_crop(x: Tensor, length: int) -> Tensor:
    """Crop the last axis symmetrically (extra sample on the right): x: [..., T] -> [..., length]."""
    start = (x.shape[-1] - length) // 2
    return x[..., start : start + length]


def crop_and_concat(skip: Tensor, x: Tensor) -> Tensor:
    """skip: [B, Cs, Ts >= T], x: [B, Cx, T] -> [B, Cs + Cx, T] (skip centre-cropped, first)."""
    return torch.cat([center_crop(skip, x.shape[-1]), x], dim=1)


def time_to_depth(x: Tensor, factor: int) -> Tensor:
    """Fold time into channels: x: [B, C, T] (T divisible by factor) -> [B, C * factor, T / factor]."""
    batch, channels, length = x.shape
    folded = x.reshape(batch, channels, length // factor, factor).transpose(2, 3)
    return folded.reshape(batch, channels * factor, length // factor)


def depth_to_time(x: Tensor, factor: int) -> Tensor:
    """Inverse of :func:`time_to_depth`: x: [B, C * factor, T'] -> [B, C, T' * factor]."""
    batch, depth, frames = x.shape
    unfolded = x.reshape(batch, depth // factor, factor, frames).transpose(2, 3)
    return unfolded.reshape(batch, depth // factor, frames * factor)


def finish_outputs(
    explicit: Tensor, mix: Tensor, activation: str, difference: bool, training: bool
) -> Tensor:
    """Output activation on explicit sources, then the difference source last.

    explicit: [B, K, C, T], mix: [B, C, T] -> [B, K (+1 with ``difference``), C, T].
    """
    if activation == "tanh":
        explicit = torch.tanh(explicit)
    elif not training:
        explicit = explicit.clamp(-1.0, 1.0)
    if not difference:
        return explicit
    return torch.cat([explicit, (mix - explicit.sum(1)).unsqueeze(1)], dim=1)


class Upsample(nn.Module):
    """Interpolation by 2 between neighbouring frames: ``w * x[n] + (1 - w) * x[n + 1]`` inserted after x[n],
    w = 1/2 (linear) or, given ``learned_channels``, w = sigmoid(v) with one v per channel (learned).

    x: [B, C, n] -> [B, C, 2n - 1] (``same=False``, Wave-U-Net with context) or [B, C, 2n] (``same=True``).
    """

    def __init__(self, same: bool, learned_channels: int | None = None) -> None:
        super().__init__()
        self.logit = None if learned_channels is None else nn.Parameter(torch.zeros(learned_channels, 1))
        self.same = same

    def forward(self, x: Tensor) -> Tensor:
        following = torch.cat([x[..., 1:], x[..., -1:]], dim=-1) if self.same else x[..., 1:]
        current = x[..., : following.shape[-1]]
        weight = 0.5 if self.logit is None else torch.sigmoid(self.logit)
        between = weight * current + (1 - weight) * following
        interleaved = torch.stack([current, between], dim=-1).flatten(-2)
        return interleaved if self.same else torch.cat([interleaved, x[..., -1:]], dim=-1)


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise SeparateError(f"{name} must be one of {', '.join(choices)}, got '{value}'.")


def check_odd(**kernels: int) -> None:
    for name, kernel in kernels.items():
        if kernel < 1 or kernel % 2 == 0:
            raise SeparateError(f"{name} must be a positive odd number, got {kernel}.")


def check_mix(mix: Tensor, channels: int, model: str) -> None:
    if mix.dim() != 3 or mix.shape[1] != channels:
        shape = list(mix.shape)
        raise SeparateError(f"{model} takes audio shaped [batch, {channels}, samples], got {shape}.")


def init_like_tensorflow(module: nn.Module) -> None:
    """Xavier-uniform conv weights and zero biases (the TensorFlow defaults of the reference code)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv1d):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


class WaveUNet(SeparationModel):
    """Wave-U-Net (SPEC §6.3). mix: [B, C, T] -> [B, S, C, T] with C = ``audio_channels``."""

    architecture = "waveunet"

    def __init__(
        self,
        *,
        sources: int | Sequence[str] = ("accompaniment", "vocals"),
        sample_rate: int = 22050,
        audio_channels: int = 1,
        levels: int = 12,
        base_filters: int = 24,
        down_kernel: int = 15,
        up_kernel: int = 5,
        context: bool = True,
        upsampling: str = "linear",
        output_type: str = "difference",
        output_activation: str = "tanh",
    ) -> None:
        super().__init__(sample_rate=sample_rate, sources=sources, audio_channels=audio_channels)
        check_choice("upsampling", upsampling, ("linear", "learned"))
        check_choice("output_type", output_type, ("direct", "difference"))
        check_choice("output_activation", output_activation, ("tanh", "linear"))
        check_odd(down_kernel=down_kernel, up_kernel=up_kernel)
        if levels < 1 or base_filters < 1:
            raise SeparateError("Wave-U-Net needs levels >= 1 and base_filters >= 1.")
        if output_type == "difference" and self.n_src < 2:
            raise SeparateError("a difference output needs at least two sources.")
        self.levels, self.down_kernel, self.up_kernel = levels, down_kernel, up_kernel
        self.context = context
        self.difference = output_type == "difference"
        self.output_activation = output_activation
        down_pad, up_pad = (0, 0) if context else (down_kernel // 2, up_kernel // 2)
        widths = [audio_channels] + [base_filters * (i + 1) for i in range(levels + 1)]

        self.down_blocks = nn.ModuleList(
            conv_act(widths[i], widths[i + 1], down_kernel, padding=down_pad) for i in range(levels)
        )
        self.bottleneck = conv_act(widths[levels], widths[levels + 1], down_kernel, padding=down_pad)
        self.upsamplers = nn.ModuleList(
            Upsample(same=not context, learned_channels=widths[i + 1] if upsampling == "learned" else None)
            for i in range(levels, 0, -1)
        )
        self.up_blocks = nn.ModuleList(
            conv_act(widths[i + 1] + widths[i], widths[i], up_kernel, padding=up_pad)
            for i in range(levels, 0, -1)
        )
        n_explicit = self.n_src - 1 if self.difference else self.n_src
        self.output_conv = nn.Conv1d(base_filters + audio_channels, n_explicit * audio_channels, 1)
        init_like_tensorflow(self)

        native_in, native_out = self.valid_lengths(1)
        # Decimation phase and interpolation widen one output's window by up to 2^levels - 1 per side.
        self.receptive_field = native_in - native_out + 2 ** (levels + 1) - 1
        self.default_segment = 10.0

    def valid_lengths(self, length: int) -> tuple[int, int]:
        """(input, output) samples of the valid-convolution network for the smallest output >= ``length``."""
        bottleneck = float(length)
        for _ in range(self.levels):
            bottleneck = (bottleneck + self.up_kernel) / 2  # inverse of: out = 2 n - 1 - (up_kernel - 1)
        frames = math.ceil(bottleneck)
        input_length = frames + self.down_kernel - 1
        output_length = frames
        for _ in range(self.levels):
            input_length = 2 * input_length - 1 + self.down_kernel - 1
            output_length = 2 * output_length - 1 - (self.up_kernel - 1)
        return input_length, output_length

    def forward(self, mix: Tensor) -> Tensor:
        """mix: [B, C, T] -> [B, S, C, T]."""
        check_mix(mix, self.audio_channels, "Wave-U-Net")
        length = mix.shape[-1]
        if self.context:
            input_length, output_length = self.valid_lengths(length)
            left = (input_length - output_length) // 2
            padded = F.pad(mix, (left, input_length - length - left))
        else:
            padded, _ = pad_to_multiple(mix, 2**self.levels)

        x = padded
        skips = []
        for block in self.down_blocks:
            x = block(x)
            skips.append(x)
            x = x[..., ::2]
        x = self.bottleneck(x)
        for upsample, block, skip in zip(self.upsamplers, self.up_blocks, reversed(skips), strict=True):
            x = block(crop_and_concat(skip, upsample(x)))

        mix_region = center_crop(padded, x.shape[-1])
        explicit = self.output_conv(torch.cat([mix_region, x], dim=1))
        explicit = explicit.unflatten(1, (-1, self.audio_channels))
        est = finish_outputs(explicit, mix_region, self.output_activation, self.difference, self.training)
        return est[..., :length]


ARCHITECTURES = {"waveunet": WaveUNet}

WAVEUNET_VOICE_TASK = ["accompaniment", "vocals"]
PRESETS = {
    # Wave-U-Net M3 (mono, difference output, context): 10 263 002 parameters.
    "waveunet": {"architecture": "waveunet", "sources": WAVEUNET_VOICE_TASK},
    # M4 (stereo) and M5 (stereo + learned up-sampling): 10 263 390 and 10 265 550 parameters.
    "waveunet-stereo": {"architecture": "waveunet", "sources": WAVEUNET_VOICE_TASK, "audio_channels": 2},
    "waveunet-stereo-learned": {
        "architecture": "waveunet",
        "sources": WAVEUNET_VOICE_TASK,
        "audio_channels": 2,
        "upsampling": "learned",
    },
}
