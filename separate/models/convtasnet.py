"""Conv-TasNet (Luo & Mesgarani 2019) in the asteroid LibriMix recipe configuration (SPEC §4.1, §9.5).

Learned encoder (N filters of L samples, hop L/2) -> temporal convolutional network masker
(bottleneck B, hidden H, skip Sc, X blocks x R repeats, kernel P) -> masks (ReLU) on the encoder
output -> learned decoder. Any number of sources J; the AttentionPIT paper uses J = 5..20.

Decisions: no encoder activation, mask ReLU, gLN (asteroid defaults; SPEC §4.1). ``causal=True``
pads the depthwise convolutions on the left only and switches to cumulative layer norm.
``encoder="gated" | "mpgtf"`` swaps the learned encoder for TasNet's gated one or the fixed
multi-phase gammatone filterbank (SPEC §2.4); the decoder stays learned.
Parameter count 4 984 881 + 66 048 (J - 2): SPEC §9.5's 5 050 545 includes the residual 1x1 conv
of the last block (65 664 weights), whose output nothing reads; it is left out so that every
parameter trains.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from separate.models.filterbanks import ConvDecoder, make_encoder
from separate.models.layers import make_norm
from separate.models.masking import MaskingSeparator


class TemporalBlock(nn.Module):
    """1x1 conv -> PReLU -> norm -> dilated depthwise conv -> PReLU -> norm -> (residual, skip) 1x1 convs.

    x: [B, Bn, T] -> (residual: [B, Bn, T] or None, skip: [B, Sc, T]). The last block of the stack
    has no residual conv: nothing reads its residual output.
    """

    def __init__(
        self,
        channels: int,
        hidden: int,
        skip: int,
        kernel: int,
        dilation: int,
        norm: str,
        causal: bool,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.left_pad = (kernel - 1) * dilation if causal else (kernel - 1) * dilation // 2
        self.right_pad = 0 if causal else (kernel - 1) * dilation - self.left_pad
        self.body = nn.Sequential(
            nn.Conv1d(channels, hidden, 1),
            nn.PReLU(),
            make_norm(norm, hidden),
        )
        self.depthwise = nn.Conv1d(hidden, hidden, kernel, dilation=dilation, groups=hidden)
        self.post = nn.Sequential(nn.PReLU(), make_norm(norm, hidden))
        self.residual = nn.Conv1d(hidden, channels, 1) if residual else None
        self.skip = nn.Conv1d(hidden, skip, 1)

    def forward(self, x: Tensor) -> tuple[Tensor | None, Tensor]:
        hidden = self.body(x)
        hidden = self.post(self.depthwise(F.pad(hidden, (self.left_pad, self.right_pad))))
        return (self.residual(hidden) if self.residual is not None else None), self.skip(hidden)


class TemporalConvNet(nn.Module):
    """TCN masker: frames [B, N, T'] -> masks [B, J, N, T']."""

    def __init__(
        self,
        in_channels: int,
        n_src: int,
        bottleneck: int,
        hidden: int,
        skip: int,
        blocks: int,
        repeats: int,
        kernel: int,
        norm: str,
        causal: bool,
    ) -> None:
        super().__init__()
        self.n_src = n_src
        self.bottleneck = nn.Sequential(make_norm(norm, in_channels), nn.Conv1d(in_channels, bottleneck, 1))
        count = repeats * blocks
        self.blocks = nn.ModuleList(
            TemporalBlock(bottleneck, hidden, skip, kernel, 2 ** (i % blocks), norm, causal, i < count - 1)
            for i in range(count)
        )
        self.mask = nn.Sequential(nn.PReLU(), nn.Conv1d(skip, n_src * in_channels, 1))

    def forward(self, frames: Tensor) -> Tensor:
        x = self.bottleneck(frames)
        skip_sum = 0.0
        for block in self.blocks:
            residual, skip = block(x)
            skip_sum = skip_sum + skip
            if residual is not None:
                x = x + residual
        masks = self.mask(skip_sum)
        return F.relu(masks).view(frames.shape[0], self.n_src, frames.shape[1], frames.shape[2])


class ConvTasNet(MaskingSeparator):
    """Conv-TasNet: learned (or gated, MP-GTF) encoder -> TCN masker -> learned decoder.

    mix: [B, 1, T] -> [B, J, 1, T].
    """

    architecture = "convtasnet"
    permutation_invariant = True

    def __init__(
        self,
        sources: int | Sequence[str] = 2,
        sample_rate: int = 8000,
        n_filters: int = 512,
        kernel_size: int = 16,
        stride: int = 8,
        bottleneck: int = 128,
        hidden: int = 512,
        skip: int = 128,
        blocks: int = 8,
        repeats: int = 3,
        conv_kernel: int = 3,
        norm: str = "gLN",
        causal: bool = False,
        encoder: str = "free",
    ) -> None:
        super().__init__(sample_rate=sample_rate, sources=sources, causal=causal)
        if causal and norm == "gLN":
            norm = "cgLN"
        self.encoder = make_encoder(encoder, n_filters, kernel_size, stride, sample_rate)
        self.masker = TemporalConvNet(
            n_filters, self.n_src, bottleneck, hidden, skip, blocks, repeats, conv_kernel, norm, causal
        )
        self.decoder = ConvDecoder(n_filters, kernel_size, stride)
        context_frames = 1 + repeats * sum((conv_kernel - 1) * 2**b for b in range(blocks))
        self.receptive_field = (context_frames - 1) * stride + kernel_size
        self.default_segment = 4.0


ARCHITECTURES = {"convtasnet": ConvTasNet}
PRESETS = {"convtasnet": {"architecture": "convtasnet"}}
