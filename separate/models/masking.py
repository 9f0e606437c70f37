"""The masking separator that Conv-TasNet, TasNet/LTL, the dual-path models and TDANet share.

Every one of them is an encoder, a masker and a decoder (Asteroid's ``BaseEncoderMaskerDecoder``):

    wav, start = pad(mix)                         # [B, 1, T_pad]; the input starts at sample `start`
    features, frames = encode(wav)                # [B, N, T']: what the masker reads, what it masks
    masks = estimate_masks(features)              # [B, J, N, T']
    est = decode(masks * frames[:, None], start + T)   # [B, J, >= start + T]
    return est[..., start : start + T]            # as [B, J, 1, T]

A model keeps its own sub-modules (their attribute names are the parameter names its checkpoints
store) and overrides only the steps that differ: :meth:`MaskingSeparator.pad` (TasNet's segments,
TDANet's reference padding), :meth:`~MaskingSeparator.encode` (TasNet's segment normalisation),
:meth:`~MaskingSeparator.estimate_masks` (every model's own masker) and
:meth:`~MaskingSeparator.decode` (TDANet's mixing decoder).
"""

from __future__ import annotations

from torch import Tensor

from separate.errors import SeparateError
from separate.models.base import SeparationModel


class MaskingSeparator(SeparationModel):
    """Encoder -> masker -> decoder on mono audio: ``mix: [B, 1, T] -> est: [B, J, 1, T]``.

    The default steps use the sub-modules ``encoder`` (``wav -> frames``), ``masker``
    (``frames -> masks``) and ``decoder`` (``(masked frames, length) -> wav``).
    """

    def forward(self, mix: Tensor) -> Tensor:
        """mix: [B, 1, T] -> est: [B, J, 1, T]."""
        if mix.dim() != 3 or mix.shape[1] != 1:
            raise SeparateError(
                f"{type(self).__name__} takes mono audio shaped [batch, 1, samples], got {list(mix.shape)}."
            )
        length = mix.shape[-1]
        wav, start = self.pad(mix)
        features, frames = self.encode(wav)
        masks = self.estimate_masks(features)
        est = self.decode(masks * frames.unsqueeze(1), start + length)
        return est[..., start : start + length].unsqueeze(2)

    def pad(self, mix: Tensor) -> tuple[Tensor, int]:
        """What the encoder reads, and where the input starts in it: [B, 1, T] -> ([B, 1, T_pad], start)."""
        return mix, 0

    def encode(self, wav: Tensor) -> tuple[Tensor, Tensor]:
        """wav [B, 1, T_pad] -> (features the masker reads, frames the masks multiply), both [B, N, T']."""
        frames = self.encoder(wav)
        return frames, frames

    def estimate_masks(self, features: Tensor) -> Tensor:
        """features [B, N, T'] -> masks [B, J, N, T']."""
        return self.masker(features)

    def decode(self, masked: Tensor, length: int) -> Tensor:
        """masked frames [B, J, N, T'] -> waveforms [B, J, >= length] (the first ``length`` samples kept)."""
        return self.decoder(masked, length)
