"""Shared building blocks: norms, positional encoding, transformer layer, dual-path segmentation.

Shapes: ``x: [B, N, T]`` is channels-first (conv style); ``x: [B, T, N]`` is sequence style.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GlobalLayerNorm(nn.GroupNorm):
    """gLN: normalise over all non-batch axes, per-channel gain and bias (eps 1e-8).

    x: [B, N, ...] -> same shape.
    """

    def __init__(self, channels: int, eps: float = 1e-8) -> None:
        super().__init__(1, channels, eps=eps)


class ChannelLayerNorm(nn.LayerNorm):
    """cLN: normalise each frame over channels. x: [B, N, T] -> [B, N, T] (causal-safe)."""

    def __init__(self, channels: int, eps: float = 1e-8) -> None:
        super().__init__(channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.transpose(1, -1)).transpose(1, -1)


class CumulativeLayerNorm(nn.Module):
    """Causal cumulative LN: statistics over channels and all frames up to t. x: [B, N, T]."""

    def __init__(self, channels: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        count = torch.arange(1, x.shape[-1] + 1, device=x.device, dtype=x.dtype) * x.shape[1]
        mean = x.sum(1, keepdim=True).cumsum(-1) / count
        power = x.pow(2).sum(1, keepdim=True).cumsum(-1) / count
        var = (power - mean.pow(2)).clamp_min(0)
        return (x - mean) / (var + self.eps).sqrt() * self.weight + self.bias


def make_norm(kind: str, channels: int) -> nn.Module:
    """``"gLN" | "cLN" | "cgLN" (cumulative) | "BN" | "none"`` over ``[B, N, T]``."""
    kinds = {
        "gLN": GlobalLayerNorm,
        "cLN": ChannelLayerNorm,
        "cgLN": CumulativeLayerNorm,
        "BN": nn.BatchNorm1d,
    }
    if kind == "none":
        return nn.Identity()
    if kind not in kinds:
        raise ValueError(f"unknown norm '{kind}' (choose from {', '.join([*kinds, 'none'])})")
    return kinds[kind](channels)


def sinusoidal_encoding(length: int, dim: int, device: torch.device | None = None) -> Tensor:
    """Vaswani positional encoding ``PE[p, 2i] = sin(p / 10000^(2i/dim))``: returns [length, dim]."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal encoding along the sequence axis. x: [B, T, D] -> [B, T, D]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return x + sinusoidal_encoding(x.shape[1], self.dim, x.device).to(x.dtype)


INITIALISERS = {
    "kaiming_normal": nn.init.kaiming_normal_,
    "kaiming_uniform": nn.init.kaiming_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "xavier_uniform": nn.init.xavier_uniform_,
}


def init_transformer_weights(module: nn.Module, scheme: str) -> None:
    """Re-initialise every matrix of attention and FFN layers with ``scheme``, biases to zero.

    ``scheme``: kaiming_normal | kaiming_uniform | xavier_normal | xavier_uniform | default.
    """
    if scheme == "default":
        return
    if scheme not in INITIALISERS:
        raise ValueError(f"unknown init '{scheme}' (choose from {', '.join([*INITIALISERS, 'default'])})")
    init = INITIALISERS[scheme]
    for name, param in module.named_parameters():
        if "norm" in name:
            continue
        if param.dim() >= 2:
            init(param)
        elif name.endswith("bias"):
            nn.init.zeros_(param)


class TransformerEncoderLayer(nn.Module):
    """Post-LN transformer encoder layer: ``x = LN(x + MHA(x)); x = LN(x + FFN(x))``.

    x: [B, T, D] -> [B, T, D]. ``causal=True`` masks attention to past positions.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        ffn_dim: int,
        dropout: float = 0.1,
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, dim)
        )
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.causal = causal

    def forward(self, x: Tensor) -> Tensor:
        mask = None
        if self.causal:
            length = x.shape[1]
            mask = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
        attended, _ = self.attention(x, x, x, attn_mask=mask, need_weights=False)
        x = self.norm1(x + self.dropout1(attended))
        return self.norm2(x + self.dropout2(self.ffn(x)))


def segment(x: Tensor, chunk: int) -> tuple[Tensor, int]:
    """Dual-path segmentation into half-overlapping chunks.

    x: [B, D, I] -> (chunks: [B, D, K, S], padded length), K = ``chunk`` (even), hop K/2.
    Zero-pads K/2 at the front and enough at the back that S = ceil(2I/K) + 1 (GALR's count).
    """
    if chunk % 2:
        raise ValueError("dual-path chunk size must be even")
    hop = chunk // 2
    frames = x.shape[-1]
    n_chunks = math.ceil(frames / hop) + 1
    total = (n_chunks - 1) * hop + chunk
    padded = F.pad(x, (hop, total - frames - hop))
    halves = padded.reshape(*padded.shape[:-1], n_chunks + 1, hop)  # [B, D, S + 1, K/2]
    chunks = torch.cat([halves[..., :-1, :], halves[..., 1:, :]], dim=-1)  # chunk s = halves s and s + 1
    return chunks.transpose(-1, -2).contiguous(), frames


def overlap_add(chunks: Tensor, frames: int) -> Tensor:
    """Inverse of :func:`segment`: chunks [..., D, K, S] -> [..., D, frames] by overlap-add."""
    *lead, dim, chunk, n_chunks = chunks.shape
    hop = chunk // 2
    rows = chunks.transpose(-1, -2)  # [..., D, S, K]
    # Half-block s of the output is chunk s's first half plus chunk s - 1's second half.
    summed = F.pad(rows[..., :hop], (0, 0, 0, 1)) + F.pad(
        rows[..., hop:], (0, 0, 1, 0)
    )  # [..., D, S + 1, K/2]
    return summed.reshape(*lead, dim, (n_chunks + 1) * hop)[..., hop : hop + frames]


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, int]:
    """Right-pad the last axis with zeros to a multiple of ``multiple``; returns (padded, original length)."""
    length = x.shape[-1]
    extra = (-length) % multiple
    return (F.pad(x, (0, extra)) if extra else x), length
