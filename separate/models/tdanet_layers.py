"""TDANet's building blocks (SPEC §5.2): conv + gLN, stochastic depth, the GA module's transformer layer
(MHSA + convolutional FFN) and the LA layers. The block and the model are in :mod:`.tdanet`, which also
records the decisions taken on the SPEC's ambiguities (§10.29-§10.38).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from separate.models.layers import GlobalLayerNorm, PositionalEncoding


def adaptive_average(x: Tensor, size: int) -> Tensor:
    """``F.adaptive_avg_pool1d(x, size)``, in a form the ONNX exporter can write while it exports.

    x: [B, C, T] -> [B, C, size]. Window i averages ``x[..., floor(i T / size) : ceil((i + 1) T / size)]``;
    the export form takes each window's sum from a cumulative sum (the same windows, float rounding aside).
    """
    if not torch.onnx.is_in_onnx_export():
        return F.adaptive_avg_pool1d(x, size)
    length = int(x.shape[-1])
    starts = [(i * length) // size for i in range(size)]
    ends = [-((-(i + 1) * length) // size) for i in range(size)]
    totals = torch.cumsum(F.pad(x, (1, 0)), dim=-1)
    start_index, end_index = (torch.tensor(index, device=x.device) for index in (starts, ends))
    counts = torch.tensor([end - start for start, end in zip(starts, ends, strict=True)], dtype=x.dtype)
    return (totals.index_select(-1, end_index) - totals.index_select(-1, start_index)) / counts.to(x.device)


def upsample(x: Tensor, length: int) -> Tensor:
    """Nearest-neighbour interpolation along time. x: [B, N, T] -> [B, N, length]."""
    return F.interpolate(x, size=length, mode="nearest")


def conv_norm(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    bias: bool = True,
) -> nn.Sequential:
    """Conv1d ("same" padding for odd kernels) followed by gLN. x: [B, in, T] -> [B, out, ceil(T/stride)]."""
    return nn.Sequential(
        nn.Conv1d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=(kernel_size - 1) // 2,
            groups=groups,
            bias=bias,
        ),
        GlobalLayerNorm(out_channels),
    )


class DropPath(nn.Module):
    """Stochastic depth: zero a whole residual branch per batch item with probability ``p`` (training only).

    x: [B, ...] -> [B, ...].
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty(x.shape[0], *([1] * (x.dim() - 1))).bernoulli_(keep)
        return x * mask / keep


class SelfAttention(nn.Module):
    """GA's MHSA branch: LN over channels, + sinusoidal PE, batch-first MHA, then ``LN(a + Dropout(a))``.

    x: [B, N, T] -> [B, N, T] (the branch only; the caller adds the residual).
    """

    def __init__(self, channels: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.input_norm = nn.LayerNorm(channels)
        self.position = PositionalEncoding(channels)
        self.attention = nn.MultiheadAttention(channels, n_heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.output_norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        sequence = self.position(self.input_norm(x.transpose(1, 2)))
        attended, _ = self.attention(sequence, sequence, sequence, need_weights=False)
        return self.output_norm(attended + self.dropout(attended)).transpose(1, 2)


class FeedForward(nn.Module):
    """GA's convolutional FFN (channels N, 2N, N; kernels 1, k, 1; bias False, True, False).

    x: [B, N, T] -> [B, N, T] (the branch only).
    """

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            conv_norm(channels, hidden_channels, 1, bias=False),
            nn.Conv1d(
                hidden_channels,
                hidden_channels,
                kernel_size,
                padding=(kernel_size - 1) // 2,
                groups=hidden_channels,
            ),
            nn.ReLU(),
            nn.Dropout(dropout),
            conv_norm(hidden_channels, channels, 1, bias=False),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class GlobalTransformer(nn.Module):
    """The GA module's transformer layer: ``G += DropPath(MHSA(G)); G += DropPath(FFN(G))``.

    Either part may be switched off (Table 7 ablation). g: [B, N, T_coarse] -> [B, N, T_coarse].
    """

    def __init__(
        self,
        channels: int,
        n_heads: int,
        ffn_channels: int,
        kernel_size: int,
        dropout: float,
        drop_path: float,
        self_attention: bool,
        feed_forward: bool,
    ) -> None:
        super().__init__()
        self.attention = SelfAttention(channels, n_heads, dropout) if self_attention else None
        self.ffn = FeedForward(channels, ffn_channels, kernel_size, dropout) if feed_forward else None
        self.drop_path = DropPath(drop_path)

    def forward(self, g: Tensor) -> Tensor:
        if self.attention is not None:
            g = g + self.drop_path(self.attention(g))
        if self.ffn is not None:
            g = g + self.drop_path(self.ffn(g))
        return g


class LocalAttention(nn.Module):
    """LA layer (eqs. 5-7): a sigmoid gate and a shift computed from coarser features modulate finer ones.

    ``order="code"``: ``h0(x_local) * sigmoid(up(h1(x_global))) + up(h2(x_global))``, h at each input's rate.
    ``order="paper"``: ``x_local * sigmoid(h1(up(x_global))) + h2(up(x_global))``.
    Each h is a depthwise conv (no bias) + gLN.
    x_local: [B, N, T_l], x_global: [B, N, T_g] -> [B, N, T_l].
    """

    def __init__(self, channels: int, kernel_size: int, order: str = "code") -> None:
        super().__init__()
        self.order = order
        if order == "code":
            self.local_embedding = conv_norm(channels, channels, kernel_size, groups=channels, bias=False)
        self.gate = conv_norm(channels, channels, kernel_size, groups=channels, bias=False)
        self.shift = conv_norm(channels, channels, kernel_size, groups=channels, bias=False)

    def forward(self, x_local: Tensor, x_global: Tensor) -> Tensor:
        length = x_local.shape[-1]
        if self.order == "paper":
            x_global = upsample(x_global, length)
            return x_local * torch.sigmoid(self.gate(x_global)) + self.shift(x_global)
        gate = upsample(torch.sigmoid(self.gate(x_global)), length)
        return self.local_embedding(x_local) * gate + upsample(self.shift(x_global), length)
