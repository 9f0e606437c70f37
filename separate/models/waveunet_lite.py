"""The lightweight Wave-U-Net (Wang et al.) with ASPP, RFPD and temporal attention (SPEC §6.2).

``"waveunet-lite"``: 4 encoder blocks (feature conv, skip, strided conv; block 4's feature conv
depthwise-separable), ASPP (1x1, separable atrous k3 with rates 2/4/8, image pooling), the receptive-field
preserving decoder (skips brought down to the bottleneck rate by time-to-depth, fused by k5 convs), then
per explicit source temporal attention -> k1 conv -> depth-to-time. 892 847 parameters (2 sources), 894 189
(4 sources), 644 537 with ``decoder="upsample"`` (SPEC §9.6; paper 0.85 M). The explicit sources, the
difference output and the initialisation are Wave-U-Net's (:mod:`.waveunet`).

Decisions:

* Lightweight widths, kernels, ASPP rates and decoder widths follow SPEC §6.2, all constructor options
  (§10 items 44, 45); both decoders are built, default RFPD + temporal attention (§10 item 46).
  ``temporal_attention=False`` gives Table 1 row (a).
* Temporal attention (SPEC §6.2 "TA"): CBAM's spatial branch along time on the shared decoder features, one
  block per explicit source, applied before that source's k1 head conv [O]. ASPP branches and its projection
  are followed by LeakyReLU [O].
* The lightweight model takes any T (right-padded to a multiple of 16). Its ASPP image pooling averages the
  whole input, so ``receptive_field`` is None; ``default_segment`` is its native 16 384-sample window
  (0.743 s), the window it is trained and evaluated on (SPEC §6.2 inference). Mono only (§10 item 50).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from separate.errors import SeparateError
from separate.models.base import SeparationModel
from separate.models.layers import pad_to_multiple
from separate.models.waveunet import (
    Upsample,
    check_choice,
    check_mix,
    check_odd,
    conv_act,
    crop_and_concat,
    depth_to_time,
    finish_outputs,
    init_like_tensorflow,
    separable_conv_act,
    time_to_depth,
)

NATIVE_LITE_WINDOW = 16384


class EncoderBlock(nn.Module):
    """Feature conv (its output is the skip), then strided conv.

    x: [B, in, T] -> (skip: [B, out, T], down: [B, out, T/2]).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, stride_kernel: int, separable: bool
    ) -> None:
        super().__init__()
        if separable:
            self.feature = separable_conv_act(in_channels, out_channels, kernel)
        else:
            self.feature = conv_act(in_channels, out_channels, kernel, padding=kernel // 2)
        self.down = conv_act(
            out_channels, out_channels, stride_kernel, stride=2, padding=(stride_kernel - 1) // 2
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        skip = self.feature(x)
        return skip, self.down(skip)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, separable atrous convs, image pooling; concat -> 1x1.

    x: [B, C, T] -> [B, out_channels, T].
    """

    def __init__(
        self, channels: int, branch_channels: int, out_channels: int, rates: Sequence[int], kernel: int
    ):
        super().__init__()
        self.branches = nn.ModuleList(
            [conv_act(channels, branch_channels, 1)]
            + [separable_conv_act(channels, branch_channels, kernel, dilation=rate) for rate in rates]
        )
        self.pooled = conv_act(channels, branch_channels, 1)
        self.project = conv_act(branch_channels * (len(rates) + 2), out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.pooled(x.mean(-1, keepdim=True)).expand(-1, -1, x.shape[-1])
        return self.project(torch.cat([branch(x) for branch in self.branches] + [pooled], dim=1))


class TemporalAttention(nn.Module):
    """CBAM's attention map along time: x * sigmoid(conv([mean over C, max over C])). x: [B, C, T] -> same."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 1, kernel, padding=kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class WaveUNetLite(SeparationModel):
    """Lightweight Wave-U-Net with ASPP, RFPD and temporal attention (SPEC §6.2).

    mix: [B, 1, T] -> [B, S, 1, T].
    """

    architecture = "waveunet-lite"
    levels = 4

    def __init__(
        self,
        *,
        sources: int | Sequence[str] = ("vocals", "accompaniment"),
        sample_rate: int = 22050,
        base_filters: int = 24,
        kernel: int = 15,
        stride_kernel: int = 15,
        aspp_rates: Sequence[int] = (2, 4, 8),
        aspp_kernel: int = 3,
        aspp_channels: int | None = None,
        aspp_out_channels: int | None = None,
        decoder: str = "rfpd",
        decoder_kernel: int = 5,
        temporal_attention: bool = True,
        attention_kernel: int = 7,
        output_activation: str = "tanh",
    ) -> None:
        super().__init__(sample_rate=sample_rate, sources=sources, audio_channels=1)
        check_choice("decoder", decoder, ("rfpd", "upsample"))
        check_choice("output_activation", output_activation, ("tanh", "linear"))
        check_odd(
            kernel=kernel,
            aspp_kernel=aspp_kernel,
            decoder_kernel=decoder_kernel,
            attention_kernel=attention_kernel,
        )
        if base_filters < 1 or stride_kernel < 2:
            raise SeparateError("the lightweight Wave-U-Net needs base_filters >= 1 and stride_kernel >= 2.")
        if self.n_src < 2:
            raise SeparateError("the lightweight Wave-U-Net separates at least two sources.")
        self.rfpd = decoder == "rfpd"
        self.output_activation = output_activation
        self.factor = 2**self.levels
        widths = [1] + [base_filters * (i + 1) for i in range(self.levels)]

        self.encoder = nn.ModuleList(
            EncoderBlock(widths[i], widths[i + 1], kernel, stride_kernel, separable=i + 1 == self.levels)
            for i in range(self.levels)
        )
        aspp_channels = aspp_channels or widths[-1]
        current = aspp_out_channels or base_filters * (self.levels + 1)
        self.aspp = ASPP(widths[-1], aspp_channels, current, aspp_rates, aspp_kernel)
        self.upsample = None if self.rfpd else Upsample(same=True)
        decoder_blocks = []
        for level in range(self.levels, 0, -1):
            skip_channels = widths[level] * (2 ** (self.levels + 1 - level) if self.rfpd else 1)
            decoder_blocks.append(
                conv_act(skip_channels + current, widths[level], decoder_kernel, padding=decoder_kernel // 2)
            )
            current = widths[level]
        self.decoder = nn.ModuleList(decoder_blocks)

        mix_channels = self.factor if self.rfpd else 1
        self.attention = nn.ModuleList(
            TemporalAttention(attention_kernel) if temporal_attention else nn.Identity()
            for _ in range(self.n_src - 1)
        )
        self.heads = nn.ModuleList(
            nn.Conv1d(current + mix_channels, mix_channels, 1) for _ in range(self.n_src - 1)
        )
        init_like_tensorflow(self)
        self.receptive_field = None
        self.default_segment = NATIVE_LITE_WINDOW / sample_rate

    def forward(self, mix: Tensor) -> Tensor:
        """mix: [B, 1, T] -> [B, S, 1, T]."""
        check_mix(mix, 1, "The lightweight Wave-U-Net")
        padded, length = pad_to_multiple(mix, self.factor)
        x = padded
        skips = []
        for block in self.encoder:
            skip, x = block(x)
            skips.append(skip)
        x = self.aspp(x)
        for block, skip in zip(self.decoder, reversed(skips), strict=True):
            if self.rfpd:
                x = block(torch.cat([time_to_depth(skip, skip.shape[-1] // x.shape[-1]), x], dim=1))
            else:
                x = block(crop_and_concat(skip, self.upsample(x)))
        mix_features = time_to_depth(padded, self.factor) if self.rfpd else padded
        features = torch.cat([mix_features, x], dim=1)

        outputs = []
        for attention, head in zip(self.attention, self.heads, strict=True):
            out = head(attention(features))
            outputs.append(depth_to_time(out, self.factor) if self.rfpd else out)
        explicit = torch.stack(outputs, dim=1)
        est = finish_outputs(explicit, padded, self.output_activation, True, self.training)
        return est[..., :length]


ARCHITECTURES = {"waveunet-lite": WaveUNetLite}

VOICE_TASK = ["vocals", "accompaniment"]
PRESETS = {
    # Lightweight model, RFPD + temporal attention: 892 847 (voice) and 894 189 (4 stems) parameters.
    "waveunet-lite": {"architecture": "waveunet-lite", "sources": VOICE_TASK},
    "waveunet-lite-4stem": {"architecture": "waveunet-lite", "sources": ["vocals", "bass", "drums", "other"]},
    # Table 1 row (c): Wave-U-Net up-sampling decoder instead of RFPD: 644 537 parameters.
    "waveunet-lite-upsample": {"architecture": "waveunet-lite", "sources": VOICE_TASK, "decoder": "upsample"},
}
