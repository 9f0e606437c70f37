"""TDANet: encoder-decoder separator with top-down global and local attention (Li, Yang, Hu; ICLR 2023).

Pipeline (SPEC §5.1): zero-pad -> learned conv encoder (F = L//2 + 1 filters, stride L/4) -> gLN + 1x1
bottleneck -> B unfoldings of ONE shared block with the summation connection (§5.3) -> PReLU + 1x1 conv +
ReLU masks -> masked encoder frames -> transposed-conv decoder -> crop to the input length.

One block (§5.2): 1x1 up-projection, a bottom-up pyramid of depthwise convs (S down-samplings, S + 1 scales),
the GA module (average-pool all scales to the coarsest length, sum, one transformer layer: MHSA + conv FFN),
top-down modulation of every scale by the GA output, then LA layers fusing adjacent scales from coarse to
fine, and a 1x1 down-projection with a residual connection.

Decisions on the SPEC's ambiguities (defaults; alternatives are keyword options):

* §10.27 S = 4 down-samplings (5 scales), ``n_downsamples``.
* §10.28 widths follow the reference code: encoder F = L//2 + 1, block I/O 128, hidden 512.
* §10.29 down-sampling = depthwise conv k5 stride 2 + gLN, no activation.
* §10.30 the GA input sums all S + 1 pooled scales.
* §10.31 top-down fusion ``td_fusion="gate"`` (eq. 4, sigmoid gate); ``"add"`` (released code), ``"la"``
  (``TDANet_best``: a kernel-1 LA layer per scale, +23 040 params), ``"none"`` (Table 4: no top-down
  projection; the transformer output replaces the coarsest scale as the decoder's top input).
* §10.32 ``la_order="code"`` (h0/h1/h2 at each input's own rate, then upsample); ``"paper"`` = eqs. 5-7
  (upsample, then h1/h2; no h0 on the local input).
* §10.33 the first LA layer fuses scales S and S + 1 (paper), not S and S - 1.
* §10.34 the MHSA is batch-first (the released code attends across the batch axis).
  The MHSA keeps the reference residual form ``G + DropPath(LN(a + Dropout(a)))`` (§5.2 step 3), whose
  LayerNorms (input and output) reproduce the SPEC §9.3 counts.
* §10.35 ``decoder="shared"``: one ConvTranspose1d(F, 1) applied per source (paper Fig. 2);
  ``"mixing"``: ConvTranspose1d(J*F, J) as in the reference code (+6 336 params at F = 33, J = 2; this is
  the variant the §9.3 counts 2 330 439 / 2 316 391 refer to).
* §10.36 FFN = 1x1 conv + gLN, depthwise k5 conv (bias) + ReLU + dropout, 1x1 conv + gLN + dropout.
* §10.37 encoder stride is always L/4.
* §10.38 ablations: ``global_attention`` / ``local_attention`` (Table 1; LA off = summation of the
  upsampled coarser output), ``self_attention`` / ``feed_forward`` (Table 7). With both transformer parts
  off but GA on, the pooled sum itself is the top-down signal.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from separate.errors import SeparateError
from separate.models.filterbanks import ConvDecoder, ConvEncoder
from separate.models.layers import GlobalLayerNorm
from separate.models.masking import MaskingSeparator
from separate.models.tdanet_layers import (
    GlobalTransformer,
    LocalAttention,
    adaptive_average,
    conv_norm,
    upsample,
)

TD_FUSIONS = ("gate", "add", "la", "none")
LA_ORDERS = ("code", "paper")
DECODERS = ("shared", "mixing")


class TDABlock(nn.Module):
    """One TDANet cycle (SPEC §5.2). x: [B, io_channels, T'] -> [B, io_channels, T'] (residual inside)."""

    def __init__(
        self,
        io_channels: int,
        hidden_channels: int,
        n_downsamples: int,
        kernel_size: int,
        n_heads: int,
        ffn_channels: int,
        dropout: float,
        drop_path: float,
        td_fusion: str,
        la_order: str,
        global_attention: bool,
        local_attention: bool,
        self_attention: bool,
        feed_forward: bool,
    ) -> None:
        super().__init__()
        n_scales = n_downsamples + 1
        self.project_in = nn.Sequential(conv_norm(io_channels, hidden_channels, 1), nn.PReLU())
        self.pyramid = nn.ModuleList(
            conv_norm(
                hidden_channels,
                hidden_channels,
                kernel_size,
                stride=1 if i == 0 else 2,
                groups=hidden_channels,
            )
            for i in range(n_scales)
        )
        self.td_fusion = td_fusion
        self.transformer = None
        if global_attention:
            self.transformer = GlobalTransformer(
                hidden_channels,
                n_heads,
                ffn_channels,
                kernel_size,
                dropout,
                drop_path,
                self_attention,
                feed_forward,
            )
        self.fusion = None
        if global_attention and td_fusion == "la":
            self.fusion = nn.ModuleList(LocalAttention(hidden_channels, 1, la_order) for _ in range(n_scales))
        self.local_attention = None
        if local_attention:
            self.local_attention = nn.ModuleList(
                LocalAttention(hidden_channels, kernel_size, la_order) for _ in range(n_downsamples)
            )
        self.project_out = nn.Conv1d(hidden_channels, io_channels, 1)

    def top_down(self, scales: list[Tensor], g: Tensor) -> list[Tensor]:
        """GA step 2: modulate every scale [B, N, T_i] with the global signal g: [B, N, T_coarse]."""
        if self.td_fusion == "gate":
            return [torch.sigmoid(upsample(g, f.shape[-1])) * f for f in scales]
        if self.td_fusion == "add":
            return [f + upsample(g, f.shape[-1]) for f in scales]
        if self.td_fusion == "la":
            return [fuse(f, g) for fuse, f in zip(self.fusion, scales, strict=True)]
        return [*scales[:-1], g]

    def forward(self, x: Tensor) -> Tensor:
        scales = [self.pyramid[0](self.project_in(x))]
        for down in self.pyramid[1:]:
            scales.append(down(scales[-1]))
        if self.transformer is not None:
            coarse = scales[-1].shape[-1]
            pooled = torch.stack([adaptive_average(f, coarse) for f in scales]).sum(0)
            scales = self.top_down(scales, self.transformer(pooled))
        y = scales[-1]
        for i in range(len(scales) - 2, -1, -1):
            if self.local_attention is None:
                y = scales[i] + upsample(y, scales[i].shape[-1])
            else:
                y = self.local_attention[i](scales[i], y)
        return self.project_out(y) + x


class TDANet(MaskingSeparator):
    """TDANet speech separator (mono). mix: [B, 1, T] -> [B, J, 1, T].

    ``kernel_ms``: encoder kernel L in milliseconds (4 = base, 2 = "Large"); stride L/4.
    ``n_filters``: encoder filters F (default L//2 + 1). ``n_unfoldings``: B applications of the shared block.
    """

    architecture = "tdanet"
    permutation_invariant = True

    def __init__(
        self,
        sample_rate: int = 16000,
        sources: int | Sequence[str] = 2,
        kernel_ms: float = 4.0,
        n_filters: int | None = None,
        bottleneck_channels: int = 128,
        hidden_channels: int = 512,
        n_downsamples: int = 4,
        n_unfoldings: int = 16,
        kernel_size: int = 5,
        n_heads: int = 8,
        ffn_channels: int = 1024,
        dropout: float = 0.1,
        drop_path: float = 0.1,
        td_fusion: str = "gate",
        la_order: str = "code",
        global_attention: bool = True,
        local_attention: bool = True,
        self_attention: bool = True,
        feed_forward: bool = True,
        decoder: str = "shared",
    ) -> None:
        super().__init__(sample_rate=sample_rate, sources=sources, audio_channels=1, causal=False)
        self.kernel = int(round(kernel_ms * sample_rate / 1000))
        if self.kernel < 4 or self.kernel % 4:
            raise SeparateError(
                f"TDANet needs an encoder kernel of a multiple of 4 samples, got {kernel_ms} ms = "
                f"{kernel_ms * sample_rate / 1000:g} samples at {sample_rate} Hz."
            )
        for name, value, choices in (
            ("td_fusion", td_fusion, TD_FUSIONS),
            ("la_order", la_order, LA_ORDERS),
            ("decoder", decoder, DECODERS),
        ):
            if value not in choices:
                raise SeparateError(f"TDANet {name} must be one of {', '.join(choices)}, got '{value}'.")
        if self_attention and global_attention and hidden_channels % n_heads:
            raise SeparateError(
                f"TDANet hidden_channels ({hidden_channels}) must be divisible by n_heads ({n_heads})."
            )
        if n_downsamples < 1 or n_unfoldings < 1:
            raise SeparateError("TDANet needs n_downsamples >= 1 and n_unfoldings >= 1.")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise SeparateError(
                f"TDANet kernel_size (of its depthwise convolutions, not the encoder: see kernel_ms) must be "
                f"odd, got {kernel_size}."
            )
        self.stride = self.kernel // 4
        self.n_filters = n_filters or self.kernel // 2 + 1
        self.n_unfoldings = n_unfoldings
        self.decoder_kind = decoder

        self.encoder = ConvEncoder(self.n_filters, self.kernel, self.stride)
        self.norm = GlobalLayerNorm(self.n_filters)
        self.bottleneck = nn.Conv1d(self.n_filters, bottleneck_channels, 1)
        self.block = TDABlock(
            bottleneck_channels,
            hidden_channels,
            n_downsamples,
            kernel_size,
            n_heads,
            ffn_channels,
            dropout,
            drop_path,
            td_fusion,
            la_order,
            global_attention,
            local_attention,
            self_attention,
            feed_forward,
        )
        self.feedback = nn.Sequential(
            nn.Conv1d(bottleneck_channels, bottleneck_channels, 1, groups=bottleneck_channels), nn.PReLU()
        )
        self.mask_head = nn.Sequential(
            nn.PReLU(), nn.Conv1d(bottleneck_channels, self.n_src * self.n_filters, 1)
        )
        if decoder == "shared":
            self.decoder = ConvDecoder(self.n_filters, self.kernel, self.stride)
            decoder_weight = self.decoder.deconv.weight
        else:
            self.decoder = nn.ConvTranspose1d(
                self.n_src * self.n_filters, self.n_src, self.kernel, stride=self.stride, bias=False
            )
            decoder_weight = self.decoder.weight
        nn.init.xavier_uniform_(self.encoder.conv.weight)
        nn.init.xavier_uniform_(decoder_weight)

        self.receptive_field = None
        self.default_segment = 4.0

    def separator(self, x: Tensor) -> Tensor:
        """B unfoldings with the summation connection (§5.3). x: [B, bottleneck, T'] -> same shape."""
        mixture = x
        x = self.block(mixture)
        for _ in range(self.n_unfoldings - 1):
            x = self.block(self.feedback(mixture + x))
        return x

    def pad_amounts(self, length: int) -> tuple[int, int]:
        """Zero-padding (left, right) of the reference code plus the encoder's own L/2 on both sides.

        The tail pad ``L - (L/4 + T mod L) mod L`` makes ``T + tail + L/4`` a multiple of L (§5.1).
        """
        tail = self.kernel - (self.stride + length % self.kernel) % self.kernel
        side = self.kernel - self.stride + self.kernel // 2
        return side, tail + side

    def pad(self, mix: Tensor) -> tuple[Tensor, int]:
        left, right = self.pad_amounts(mix.shape[-1])
        return F.pad(mix, (left, right)), left

    def estimate_masks(self, features: Tensor) -> Tensor:
        """gLN -> bottleneck -> B unfoldings -> PReLU, 1x1 conv, ReLU: [B, F, T'] -> [B, J, F, T']."""
        x = self.separator(self.bottleneck(self.norm(features)))
        return F.relu(self.mask_head(x)).view(features.shape[0], self.n_src, self.n_filters, -1)

    def decode(self, masked: Tensor, length: int) -> Tensor:
        """Shared decoder per source, or the reference code's mixing decoder over all J x F maps."""
        if self.decoder_kind == "shared":
            return self.decoder(masked, length)
        batch = masked.shape[0]
        return self.decoder(masked.reshape(batch, self.n_src * self.n_filters, -1))


ARCHITECTURES = {"tdanet": TDANet}

PRESETS = {
    "tdanet": {"architecture": "tdanet", "sample_rate": 16000, "sources": 2, "kernel_ms": 4.0},
    "tdanet-large": {"architecture": "tdanet", "sample_rate": 16000, "sources": 2, "kernel_ms": 2.0},
}
