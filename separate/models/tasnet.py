"""TasNet (Luo & Mesgarani 2018) and LTL, its LSTM-Transformer-LSTM separator (Alaoui Abdellaoui &
Souviraà-Labastie 2020), for mono music separation (vocals / accompaniment at 44.1 kHz by default).

Pipeline (SPEC §2.1): pad to a multiple of L and cut into non-overlapping segments -> per-segment L2
normalisation -> gated encoder (or fixed MP-GTF) -> LayerNorm over N -> separator -> Linear d -> J·N ->
softmax over the J sources -> masks ⊙ encoder weights -> Linear N -> L decoder (no bias) -> times the
segment norm -> concatenate segments -> crop. The separator is X LSTM layers -> k post-LN transformer encoder
layers -> Y LSTM layers: the TasNet baseline is X = 4, k = Y = 0; LTL's "X_trans_Y" has k >= 1.

Decisions on ambiguities:

* §2.1, §10 item 6: per-segment normalisation on (eps 1e-8); skip connections between LSTMs off by default,
  when on they are identity residuals around every LSTM layer whose input and output widths match.
* §2.1 steps 7-8: the Linear N -> L decoder is :class:`ConvDecoder` with stride L (the same map on
  non-overlapping segments); the segment norm multiplies the masked weights before decoding, which equals
  multiplying the decoded segment because the decoder is linear without bias.
* §2.2: the transformer works on the segment axis with the width of what precedes it (LSTM output: hidden,
  or 2·hidden when bidirectional; N when X = 0); no projection, no positional encoding (§10 item 3).
* §10 items 1-2: ``n_transformer_layers`` is a parameter; presets use 4 (causal, d 500, FFN 256) and 2
  (bidirectional, d 1000, FFN 2048), the only counts that reproduce the paper's "-11 %" and "33 M" (§9.1).
* §10 item 3: heads default to the largest of 8, 4, 2, 1 dividing d (4 for d 500, 8 for d 1000: head size
  125), dropout 0.1 (transformer only), softmax masks over sources.
* §2.3: transformer init default Xavier uniform (the paper's choice for 2_trans_0 and the bidirectional
  3_trans_0), biases zero; Kaiming/Xavier normal/uniform selectable.
* §2.4, §10 item 4: ``encoder="mpgtf"`` replaces the gated encoder by the fixed ReLU(MP-GTF) bank, keeping
  the normalisation and the learned decoder; its centres default to every 1-ERB step below Nyquist.
* causal = not bidirectional; causal transformer layers mask attention to future segments.
* §7.1, §10 item 5: the model is mono; the engine folds stereo channels into the batch.
* §10 item 6b: "w ∈ R^{L×C}" in the paper is one N-vector per segment here (``[B, N, K]``).
* ``window`` (not in the paper): an encoder/decoder window longer than the segment hop (a multiple of
  it), e.g. 32 ms every 8 ms, so the masker sees frames fine enough in frequency to resolve voice
  harmonics. The window is centred on its hop (the input is padded by half the difference on each side),
  and the normalisation then divides the whole input by its RMS instead of each segment by its norm.
* ``default_segment`` 10 s: half the 20-s training excerpt still gives the recurrent and attention layers
  ~2 000 segments of context while halving inference memory (attention is quadratic in segments).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from separate.errors import SeparateError
from separate.models.filterbanks import ConvDecoder, make_encoder, normalise_segments
from separate.models.layers import (
    INITIALISERS,
    TransformerEncoderLayer,
    init_transformer_weights,
    pad_to_multiple,
)
from separate.models.masking import MaskingSeparator

MASK_ACTIVATIONS = ("softmax", "sigmoid", "relu")
TASNET_ENCODERS = ("gated", "mpgtf")
_LAYOUT = re.compile(r"^(\d+)[_-]trans[_-](\d+)$")


def parse_layout(layout: str) -> tuple[int, int]:
    """``"X_trans_Y"`` (or ``"X-trans-Y"``) -> (X LSTM layers before, Y LSTM layers after the transformer)."""
    match = _LAYOUT.match(layout.strip())
    if match is None:
        raise SeparateError(f"LTL layout '{layout}' is not of the form X_trans_Y, e.g. 1_trans_0.")
    return int(match.group(1)), int(match.group(2))


def default_heads(dim: int) -> int:
    """Largest of 8, 4, 2, 1 that divides ``dim`` (4 for 500, 8 for 1000)."""
    return next(heads for heads in (8, 4, 2, 1) if dim % heads == 0)


class LSTMStack(nn.Module):
    """``layers`` single-layer LSTMs. x: [B, K, D_in] -> [B, K, H·directions]; optional identity skips."""

    def __init__(self, input_size: int, hidden: int, layers: int, bidirectional: bool, skip: bool) -> None:
        super().__init__()
        self.output_size = input_size if layers == 0 else hidden * (2 if bidirectional else 1)
        sizes = [input_size] + [self.output_size] * layers
        self.lstms = nn.ModuleList(
            nn.LSTM(size, hidden, batch_first=True, bidirectional=bidirectional) for size in sizes[:-1]
        )
        self.residual = [skip and sizes[index] == sizes[index + 1] for index in range(layers)]

    def forward(self, x: Tensor) -> Tensor:
        for lstm, residual in zip(self.lstms, self.residual, strict=True):
            out, _ = lstm(x)
            x = x + out if residual else out
        return x


class TasNetSeparator(nn.Module):
    """X LSTM layers -> k transformer encoder layers -> Y LSTM layers. x: [B, K, N] -> [B, K, d_out]."""

    def __init__(
        self,
        input_size: int,
        hidden: int,
        layers_before: int,
        n_transformer_layers: int,
        layers_after: int,
        bidirectional: bool,
        skip_connections: bool,
        ffn_dim: int,
        heads: int | None,
        dropout: float,
        init: str,
    ) -> None:
        super().__init__()
        if min(layers_before, n_transformer_layers, layers_after) < 0:
            raise SeparateError("LSTM and transformer layer counts cannot be negative.")
        if layers_before + n_transformer_layers + layers_after == 0:
            raise SeparateError("the TasNet separator needs at least one LSTM or transformer layer.")
        if init not in (*INITIALISERS, "default"):
            raise SeparateError(f"unknown transformer init '{init}' (choose from {', '.join(INITIALISERS)}).")
        self.before = LSTMStack(input_size, hidden, layers_before, bidirectional, skip_connections)
        dim = self.before.output_size
        self.heads = default_heads(dim) if heads is None else heads
        if n_transformer_layers and (self.heads < 1 or dim % self.heads):
            raise SeparateError(f"{self.heads} attention heads do not divide the transformer width {dim}.")
        self.transformer = nn.Sequential(
            *(
                TransformerEncoderLayer(dim, self.heads, ffn_dim, dropout, causal=not bidirectional)
                for _ in range(n_transformer_layers)
            )
        )
        init_transformer_weights(self.transformer, init)
        self.after = LSTMStack(dim, hidden, layers_after, bidirectional, skip_connections)
        self.output_size = self.after.output_size

    def forward(self, x: Tensor) -> Tensor:
        return self.after(self.transformer(self.before(x)))


class TasNet(MaskingSeparator):
    """TasNet with an LSTM (optionally LSTM-transformer-LSTM) separator. mix: [B, 1, T] -> [B, J, 1, T].

    ``lstm_layers`` LSTMs -> ``n_transformer_layers`` transformer layers -> ``lstm_layers_after`` LSTMs;
    the defaults are the causal 4-LSTM TasNet baseline (8 848 000 parameters).
    """

    architecture = "tasnet"

    def __init__(
        self,
        sources: int | Sequence[str] = ("vocals", "accompaniment"),
        sample_rate: int = 44100,
        n_filters: int = 500,
        segment_length: int = 220,
        lstm_hidden: int = 500,
        lstm_layers: int = 4,
        n_transformer_layers: int = 0,
        lstm_layers_after: int = 0,
        bidirectional: bool = False,
        skip_connections: bool = False,
        ffn_dim: int = 256,
        heads: int | None = None,
        dropout: float = 0.1,
        init: str = "xavier_uniform",
        encoder: str = "gated",
        n_center_freqs: int | None = None,
        normalise: bool = True,
        mask_activation: str = "softmax",
        window: int | None = None,
    ) -> None:
        super().__init__(sample_rate=sample_rate, sources=sources, audio_channels=1, causal=not bidirectional)
        window = segment_length if window is None else int(window)
        if segment_length < 1 or window < segment_length or window % segment_length:
            raise SeparateError(
                f"the TasNet window ({window}) must be a positive multiple of "
                f"segment_length ({segment_length})."
            )
        if encoder not in TASNET_ENCODERS:
            choices = ", ".join(TASNET_ENCODERS)
            raise SeparateError(f"unknown TasNet encoder '{encoder}' (choose from {choices}).")
        if mask_activation not in MASK_ACTIVATIONS:
            raise SeparateError(
                f"unknown mask activation '{mask_activation}' (choose from {', '.join(MASK_ACTIVATIONS)})."
            )
        self.n_filters = n_filters
        self.segment_length = segment_length
        self.window = window
        self.normalise = normalise
        self.mask_activation = mask_activation
        self.encoder = make_encoder(
            encoder, n_filters, window, segment_length, sample_rate, n_center_freqs=n_center_freqs
        )
        self.norm = nn.LayerNorm(n_filters)
        self.separator = TasNetSeparator(
            n_filters,
            lstm_hidden,
            lstm_layers,
            n_transformer_layers,
            lstm_layers_after,
            bidirectional,
            skip_connections,
            ffn_dim,
            heads,
            dropout,
            init,
        )
        self.mask_head = nn.Linear(self.separator.output_size, self.n_src * n_filters)
        self.decoder = ConvDecoder(n_filters, window, segment_length)
        self.receptive_field = None
        self.default_segment = 10.0

    def masks(self, logits: Tensor) -> Tensor:
        """logits: [B, K, J, N] -> masks of the same shape."""
        if self.mask_activation == "softmax":
            return torch.softmax(logits, dim=2)
        if self.mask_activation == "sigmoid":
            return torch.sigmoid(logits)
        return torch.relu(logits)

    def pad(self, mix: Tensor) -> tuple[Tensor, int]:
        """Zeros up to a whole number of segments (one segment for an empty input), then half the window's
        overhang on each side: [B, 1, K·L + W - L], the input starting at (W - L) / 2."""
        padded, _ = pad_to_multiple(mix, self.segment_length)
        if padded.shape[-1] == 0:
            padded = mix.new_zeros(mix.shape[0], 1, self.segment_length)
        overhang = self.window - self.segment_length
        if not overhang:
            return padded, 0
        left = overhang // 2
        return nn.functional.pad(padded, (left, overhang - left)), left

    def encode(self, wav: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder weights of the (normalised) segments, and the same scaled back by the segment norms."""
        if not self.normalise:
            weights = self.encoder(wav)
            return weights, weights
        if self.window != self.segment_length:
            rms = wav.pow(2).mean(dim=-1, keepdim=True).sqrt()  # [B, 1, 1]
            weights = self.encoder(wav / (rms + 1e-8))
            return weights, weights * rms
        normalised, norms = normalise_segments(wav, self.segment_length)  # norms: [B, 1, K]
        weights = self.encoder(normalised)  # [B, N, K]
        return weights, weights * norms

    def estimate_masks(self, features: Tensor) -> Tensor:
        """LayerNorm -> separator -> Linear -> activation: weights [B, N, K] -> masks [B, J, N, K]."""
        hidden = self.separator(self.norm(features.transpose(1, 2)))  # [B, K, d]
        batch, segments = hidden.shape[:2]
        logits = self.mask_head(hidden).view(batch, segments, self.n_src, self.n_filters)
        return self.masks(logits).permute(0, 2, 3, 1)


class LTL(TasNet):
    """LTL: TasNet whose separator is given by its "X_trans_Y" layout (X LSTMs, transformer, Y LSTMs).

    ``kwargs`` are the remaining :class:`TasNet` options (bidirectional, lstm_hidden, encoder, ...).
    """

    architecture = "ltl"

    def __init__(
        self,
        layout: str = "1_trans_0",
        n_transformer_layers: int = 4,
        ffn_dim: int = 256,
        init: str = "xavier_uniform",
        **kwargs: Any,
    ) -> None:
        clashing = {"lstm_layers", "lstm_layers_after"} & set(kwargs)
        if clashing:
            raise SeparateError(f"LTL takes its LSTM layer counts from the layout, not {sorted(clashing)}.")
        if n_transformer_layers < 1:
            raise SeparateError("an LTL separator needs at least one transformer layer.")
        before, after = parse_layout(layout)
        super().__init__(
            lstm_layers=before,
            n_transformer_layers=n_transformer_layers,
            lstm_layers_after=after,
            ffn_dim=ffn_dim,
            init=init,
            **kwargs,
        )


ARCHITECTURES = {"tasnet": TasNet, "ltl": LTL}

PRESETS: dict[str, dict[str, Any]] = {
    "tasnet": {"architecture": "tasnet"},
    "tasnet-bi": {"architecture": "tasnet", "bidirectional": True},
    "ltl-1-trans-0": {
        "architecture": "ltl",
        "layout": "1_trans_0",
        "n_transformer_layers": 4,
        "ffn_dim": 256,
    },
    "ltl-2-trans-0": {
        "architecture": "ltl",
        "layout": "2_trans_0",
        "n_transformer_layers": 4,
        "ffn_dim": 256,
    },
    "ltl-3-trans-0-bi": {
        "architecture": "ltl",
        "layout": "3_trans_0",
        "bidirectional": True,
        "n_transformer_layers": 2,
        "ffn_dim": 2048,
    },
}
