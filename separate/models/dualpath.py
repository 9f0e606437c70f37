"""Dual-path masking networks: DPRNN, DPTNet and GALR (Lam et al. 2021), sharing all but the block (SPEC §3).

Shared pipeline, ``mix: [B, 1, T] -> [B, J, 1, T]``:

1. encoder Conv1d(1, D, M, stride M/2, no bias) + ReLU -> ``frames: [B, D, I]`` (eq. 1); ``encoder=
   "gated" | "mpgtf"`` swaps in the other filterbanks.make_encoder kinds (same frame layout);
2. optional gLN + 1x1 Conv1d(D, D) bottleneck;
3. segmentation into half-overlapping chunks of K frames -> ``[B, D, K, S]``, ``S = ceil(2I/K) + 1``;
4. N blocks (the only part that differs between the three models);
5. mask head: PReLU, 2-D 1x1 conv D -> J*D, overlap-add per source, ``tanh(U_t x) * sigmoid(U_s x)``
   gate, 1x1 mask conv D -> D (no bias), ReLU (eqs. 14-15);
6. masks multiply the encoder output (not the bottleneck output), ConvTranspose1d(D, 1, M, M/2)
   decoder, crop to T (eq. 16).

Decisions on ambiguities:

* Encoder is a plain ReLU conv although the paper calls it "gated" (SPEC §3.1, §10.15).
* Bottleneck gLN + 1x1 conv is on by default for all three models (§3.1 step 2, §3.5, §10.20), with a
  bias: the DPRNN row of §9.2 (2 609 857) and its "+16 768 at D = 128" need the bias; the "+4 224 at
  D = 64" note of §9.2 is D² + 2D, i.e. the bias forgotten. ``bottleneck=False`` gives the §9.2 GALR and
  DPTNet rows exactly (they leave it out).
* Mask head biases and the PReLU follow asteroid's DPRNN head (§3.3, §10.21); ReLU masks for DPRNN too
  (§3.5); DPTNet drops the final 1x1 mask conv and applies the ReLU to the gated output (§3.5).
* GALR: gLN after the local BiLSTM (§10.17); LN_D = LayerNorm over D at every position; one
  ``nn.MultiheadAttention(D, 8, dropout=0.1)`` in-projection, not the two-stage eqs. 5-7 (§10.16);
  residual ``LN(G + Dropout(Attn(G)))`` as eq. 10, not the author code's (§10.19); block output
  ``C_inv(Ĝ) + L̂`` (§10.18); no FFN (§3.2); learned initial LSTM states left out (§3.2, optional there).
  The sinusoidal PE runs over the S axis; all Q (or K) columns attend as one batch.
* DPTNet: 4 heads, ff_hid 128 (§3.5, §10.26); dropout 0.1 [O] (asteroid's default is 0); its norms are
  LayerNorm over D at every position [O] (asteroid uses gLN per chunk sequence; same parameter count);
  no positional encoding (the LSTM carries order).
* MACs (ptflops) vs §9.2: segmentation is layers.segment (S = ceil(2I/K) + 1, §1.7), so 1 s with M = 16,
  K = 100 gives I = 999, S = 21 where §9.2 assumes S = 22 (-4.5 %); ptflops also counts the LSTM gate
  element-wise ops and both bias vectors (+2.3 %). Net: -2.4 % (M16 presets), +2.4 % (GALR M8).
* Causal DPRNN (``causal=True``): inter-chunk LSTM unidirectional, cLN everywhere. The intra-chunk
  BiLSTM still sees its whole chunk, so the model is causal only up to a look-ahead of
  ``(K - 1) * M/2 + M - 1`` samples (:attr:`DPRNN.lookahead`); a strictly causal dual-path model would
  need a unidirectional intra path as well. DPTNet and GALR are non-causal only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from separate.errors import SeparateError
from separate.models.filterbanks import ConvDecoder, make_encoder
from separate.models.layers import PositionalEncoding, make_norm, overlap_add, segment
from separate.models.masking import MaskingSeparator


def to_sequences(chunks: Tensor, path: str) -> Tensor:
    """chunks [B, D, K, S] -> "intra": [B*S, K, D] (one sequence per chunk) | "inter": [B*K, S, D]."""
    batch, dim, chunk, n_chunks = chunks.shape
    if path == "intra":
        return chunks.permute(0, 3, 2, 1).reshape(batch * n_chunks, chunk, dim)
    return chunks.permute(0, 2, 3, 1).reshape(batch * chunk, n_chunks, dim)


def from_sequences(sequences: Tensor, shape: torch.Size, path: str) -> Tensor:
    """Inverse of :func:`to_sequences`: sequences -> [B, D, K, S] with ``shape = (B, D, K, S)``."""
    batch, dim, chunk, n_chunks = shape
    if path == "intra":
        return sequences.reshape(batch, n_chunks, chunk, dim).permute(0, 3, 2, 1)
    return sequences.reshape(batch, chunk, n_chunks, dim).permute(0, 3, 1, 2)


class RecurrentPath(nn.Module):
    """LSTM along one dual-path axis + Linear + norm + residual (DPRNN paths, GALR local path; eqs. 2-3).

    chunks: [B, D, K, S] -> [B, D, K, S]. ``path``: "intra" (along K) or "inter" (along S).
    """

    def __init__(
        self, dim: int, hidden: int, path: str, bidirectional: bool = True, norm: str = "gLN"
    ) -> None:
        super().__init__()
        self.path = path
        self.rnn = nn.LSTM(dim, hidden, batch_first=True, bidirectional=bidirectional)
        self.linear = nn.Linear(hidden * (2 if bidirectional else 1), dim)
        self.norm = make_norm(norm, dim)

    def forward(self, chunks: Tensor) -> Tensor:
        sequences = self.rnn(to_sequences(chunks, self.path))[0]
        return chunks + self.norm(from_sequences(self.linear(sequences), chunks.shape, self.path))


class DPRNNBlock(nn.Sequential):
    """Intra-chunk BiLSTM path then inter-chunk (Bi)LSTM path (SPEC §3.5). chunks: [B, D, K, S] -> same."""

    def __init__(self, dim: int, hidden: int, causal: bool = False) -> None:
        norm = "cLN" if causal else "gLN"
        super().__init__(
            RecurrentPath(dim, hidden, "intra", bidirectional=True, norm=norm),
            RecurrentPath(dim, hidden, "inter", bidirectional=not causal, norm=norm),
        )


class ImprovedTransformerLayer(nn.Module):
    """DPTNet layer along one axis: ``x = LN(x + Drop(MHA(x)))``, then
    ``x = LN(x + Drop(Linear(Drop(ReLU(BiLSTM(x))))))``.

    chunks: [B, D, K, S] -> [B, D, K, S]; no positional encoding (the LSTM carries order).
    """

    def __init__(self, dim: int, heads: int, ff_hidden: int, dropout: float, path: str) -> None:
        super().__init__()
        self.path = path
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_attention = nn.LayerNorm(dim)
        self.rnn = nn.LSTM(dim, ff_hidden, batch_first=True, bidirectional=True)
        self.linear = nn.Linear(2 * ff_hidden, dim)
        self.norm_ff = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, chunks: Tensor) -> Tensor:
        x = to_sequences(chunks, self.path)  # [N, L, D]
        attended = self.attention(x, x, x, need_weights=False)[0]
        x = self.norm_attention(x + self.dropout(attended))
        inner = self.dropout(F.relu(self.rnn(x)[0]))
        x = self.norm_ff(x + self.dropout(self.linear(inner)))
        return from_sequences(x, chunks.shape, self.path)


class DPTNetBlock(nn.Sequential):
    """Intra-chunk then inter-chunk improved transformer layer (SPEC §3.5). chunks: [B, D, K, S] -> same."""

    def __init__(self, dim: int, heads: int, ff_hidden: int, dropout: float) -> None:
        super().__init__(
            ImprovedTransformerLayer(dim, heads, ff_hidden, dropout, "intra"),
            ImprovedTransformerLayer(dim, heads, ff_hidden, dropout, "inter"),
        )


class GlobalAttentionPath(nn.Module):
    """GALR globally attentive path (eqs. 4-10, 12-13), without the final residual to L̂.

    chunks: [B, D, K, S] -> C_inv(Ĝ): [B, D, K, S]. With ``low_dim_size = Q`` the K axis is first mapped
    to Q columns by C_map (Linear K -> Q) and back by C_inv (Linear Q -> K); with ``None`` every one of
    the K columns attends (ablation). All columns attend along S as one batch: [B*Q, S, D].
    """

    def __init__(
        self, dim: int, chunk_size: int, low_dim_size: int | None, heads: int, dropout: float
    ) -> None:
        super().__init__()
        self.c_map = nn.Linear(chunk_size, low_dim_size) if low_dim_size else None
        self.c_inv = nn.Linear(low_dim_size, chunk_size) if low_dim_size else None
        self.norm_in = nn.LayerNorm(dim)
        self.positional = PositionalEncoding(dim)
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, chunks: Tensor) -> Tensor:
        batch, dim, _, n_chunks = chunks.shape
        if self.c_map is not None:
            columns = self.c_map(chunks.transpose(2, 3)).permute(0, 3, 2, 1)  # [B, Q, S, D]
        else:
            columns = chunks.permute(0, 2, 3, 1)  # [B, K, S, D]
        n_columns = columns.shape[1]
        g = self.positional(self.norm_in(columns.reshape(batch * n_columns, n_chunks, dim)))
        attended = self.attention(g, g, g, need_weights=False)[0]
        g_hat = self.norm_out(g + self.dropout(attended)).reshape(batch, n_columns, n_chunks, dim)
        if self.c_inv is not None:
            return self.c_inv(g_hat.permute(0, 3, 2, 1)).transpose(2, 3)  # [B, D, S, Q] -> [B, D, K, S]
        return g_hat.permute(0, 3, 1, 2)


class GALRBlock(nn.Module):
    """Locally recurrent then globally attentive: ``L̂ = gLN(BiLSTM-Linear(T)) + T``, ``T' = C_inv(Ĝ) + L̂``.

    chunks: [B, D, K, S] -> [B, D, K, S] (SPEC §3.2).
    """

    def __init__(
        self, dim: int, hidden: int, chunk_size: int, low_dim_size: int | None, heads: int, dropout: float
    ) -> None:
        super().__init__()
        self.local = RecurrentPath(dim, hidden, "intra", bidirectional=True, norm="gLN")
        self.globally = GlobalAttentionPath(dim, chunk_size, low_dim_size, heads, dropout)

    def forward(self, chunks: Tensor) -> Tensor:
        local = self.local(chunks)
        return local + self.globally(local)


class MaskHead(nn.Module):
    """PReLU + 2-D 1x1 conv to J maps, overlap-add, tanh/sigmoid gate, optional 1x1 mask conv, ReLU.

    chunks: [B, D, K, S] -> masks: [B, J, D, I] (SPEC §3.3).
    """

    def __init__(self, dim: int, n_src: int, mask_conv: bool = True) -> None:
        super().__init__()
        self.n_src = n_src
        self.prelu = nn.PReLU()
        self.expand = nn.Conv2d(dim, n_src * dim, 1)
        self.gate_tanh = nn.Conv1d(dim, dim, 1)
        self.gate_sigmoid = nn.Conv1d(dim, dim, 1)
        self.mask_conv = nn.Conv1d(dim, dim, 1, bias=False) if mask_conv else None

    def forward(self, chunks: Tensor, frames: int) -> Tensor:
        batch, dim, chunk, n_chunks = chunks.shape
        per_source = self.expand(self.prelu(chunks)).reshape(batch * self.n_src, dim, chunk, n_chunks)
        folded = overlap_add(per_source, frames)  # [B*J, D, I]
        gated = torch.tanh(self.gate_tanh(folded)) * torch.sigmoid(self.gate_sigmoid(folded))
        if self.mask_conv is not None:
            gated = self.mask_conv(gated)
        return F.relu(gated).reshape(batch, self.n_src, dim, frames)


class DualPathSeparator(MaskingSeparator):
    """Encoder -> [bottleneck] -> segmentation -> blocks -> mask head -> decoder.

    mix: [B, 1, T] -> [B, J, 1, T].

    Subclasses pass ``make_block`` (called ``n_blocks`` times, no weight sharing).
    """

    permutation_invariant = True

    def __init__(
        self,
        *,
        make_block: Callable[[], nn.Module],
        sources: int | Sequence[str],
        sample_rate: int,
        n_filters: int,
        kernel_size: int,
        chunk_size: int,
        n_blocks: int,
        bottleneck: bool,
        encoder: str = "free",
        mask_conv: bool = True,
        causal: bool = False,
    ) -> None:
        super().__init__(sample_rate=sample_rate, sources=sources, causal=causal)
        if kernel_size < 2 or kernel_size % 2:
            raise SeparateError(f"kernel_size must be an even number of samples >= 2, got {kernel_size}.")
        if chunk_size < 2 or chunk_size % 2:
            raise SeparateError(f"chunk_size must be an even number of frames >= 2, got {chunk_size}.")
        self.chunk_size = chunk_size
        self.encoder = make_encoder(encoder, n_filters, kernel_size, kernel_size // 2, sample_rate, relu=True)
        if bottleneck:
            norm = "cLN" if causal else "gLN"
            self.bottleneck = nn.Sequential(make_norm(norm, n_filters), nn.Conv1d(n_filters, n_filters, 1))
        else:
            self.bottleneck = nn.Identity()
        self.blocks = nn.ModuleList(make_block() for _ in range(n_blocks))
        self.mask_head = MaskHead(n_filters, self.n_src, mask_conv)
        self.decoder = ConvDecoder(n_filters, kernel_size, kernel_size // 2)
        self.receptive_field = None  # recurrence / attention across all chunks
        self.default_segment = 4.0

    def estimate_masks(self, features: Tensor) -> Tensor:
        """frames [B, D, I] -> [bottleneck] -> chunks [B, D, K, S] -> blocks -> masks [B, J, D, I]."""
        chunks, n_frames = segment(self.bottleneck(features), self.chunk_size)
        for block in self.blocks:
            chunks = block(chunks)
        return self.mask_head(chunks, n_frames)


def _check_heads(dim: int, heads: int) -> None:
    if heads < 1 or dim % heads:
        raise SeparateError(f"n_filters ({dim}) must be a multiple of n_heads ({heads}).")


class DPRNN(DualPathSeparator):
    """Dual-path RNN (Luo et al. 2020) as the GALR paper's baseline (SPEC §3.5)."""

    architecture = "dprnn"

    def __init__(
        self,
        sources: int | Sequence[str] = 2,
        sample_rate: int = 8000,
        n_filters: int = 64,
        kernel_size: int = 16,
        chunk_size: int = 100,
        n_blocks: int = 6,
        hidden_size: int = 128,
        bottleneck: bool = True,
        encoder: str = "free",
        causal: bool = False,
    ) -> None:
        super().__init__(
            make_block=lambda: DPRNNBlock(n_filters, hidden_size, causal),
            sources=sources,
            sample_rate=sample_rate,
            n_filters=n_filters,
            kernel_size=kernel_size,
            chunk_size=chunk_size,
            n_blocks=n_blocks,
            bottleneck=bottleneck,
            encoder=encoder,
            causal=causal,
        )
        #: Samples of future input one output sample can see when ``causal`` (None: non-causal).
        self.lookahead = (chunk_size - 1) * (kernel_size // 2) + kernel_size - 1 if causal else None


class DPTNet(DualPathSeparator):
    """Dual-path transformer network (Chen et al. 2020) as the GALR paper's baseline (SPEC §3.5)."""

    architecture = "dptnet"

    def __init__(
        self,
        sources: int | Sequence[str] = 2,
        sample_rate: int = 8000,
        n_filters: int = 64,
        kernel_size: int = 16,
        chunk_size: int = 100,
        n_blocks: int = 6,
        n_heads: int = 4,
        ff_hidden: int = 128,
        dropout: float = 0.1,
        bottleneck: bool = True,
        encoder: str = "free",
    ) -> None:
        _check_heads(n_filters, n_heads)
        super().__init__(
            make_block=lambda: DPTNetBlock(n_filters, n_heads, ff_hidden, dropout),
            sources=sources,
            sample_rate=sample_rate,
            n_filters=n_filters,
            kernel_size=kernel_size,
            chunk_size=chunk_size,
            n_blocks=n_blocks,
            bottleneck=bottleneck,
            encoder=encoder,
            mask_conv=False,
        )


class GALR(DualPathSeparator):
    """Globally attentive, locally recurrent network (Lam et al. 2021; SPEC §3.1-3.3)."""

    architecture = "galr"

    def __init__(
        self,
        sources: int | Sequence[str] = 2,
        sample_rate: int = 8000,
        n_filters: int = 64,
        kernel_size: int = 8,
        chunk_size: int = 150,
        n_blocks: int = 6,
        hidden_size: int = 128,
        n_heads: int = 8,
        dropout: float = 0.1,
        low_dim: bool = True,
        low_dim_size: int = 16,
        bottleneck: bool = True,
        encoder: str = "free",
    ) -> None:
        _check_heads(n_filters, n_heads)
        if low_dim and not 1 <= low_dim_size <= chunk_size:
            raise SeparateError(f"low_dim_size must lie in 1..chunk_size ({chunk_size}), got {low_dim_size}.")
        columns = low_dim_size if low_dim else None
        super().__init__(
            make_block=lambda: GALRBlock(n_filters, hidden_size, chunk_size, columns, n_heads, dropout),
            sources=sources,
            sample_rate=sample_rate,
            n_filters=n_filters,
            kernel_size=kernel_size,
            chunk_size=chunk_size,
            n_blocks=n_blocks,
            bottleneck=bottleneck,
            encoder=encoder,
        )


ARCHITECTURES = {"dprnn": DPRNN, "dptnet": DPTNet, "galr": GALR}
PRESETS = {
    "dprnn": {"architecture": "dprnn", "n_filters": 64, "kernel_size": 16, "chunk_size": 100},
    "dptnet": {
        "architecture": "dptnet",
        "n_filters": 64,
        "kernel_size": 16,
        "chunk_size": 100,
        "ff_hidden": 128,
    },
    "galr": {
        "architecture": "galr",
        "n_filters": 64,
        "kernel_size": 8,
        "chunk_size": 150,
        "low_dim_size": 16,
    },
    "galr-large": {
        "architecture": "galr",
        "n_filters": 128,
        "kernel_size": 8,
        "chunk_size": 150,
        "low_dim_size": 16,
    },
}
