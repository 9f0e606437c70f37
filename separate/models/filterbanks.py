"""Encoders (waveform -> frames) and decoders (frames -> waveform) of TasNet-style models.

Encoders map ``wav: [B, 1, T]`` to ``frames: [B, N, T']`` and pad the input themselves
(:meth:`FrameEncoder.pad`), so ``T' = (T_pad - L) / stride + 1``; decoders map ``[B, ..., N, T']`` back to
``[B, ..., T_out]``. Three analysis filterbanks share that interface (:func:`make_encoder`):

* ``"free"``: learned Conv1d, optional ReLU (:class:`ConvEncoder`);
* ``"gated"``: TasNet's gated encoder ``ReLU(x Uᵀ) ⊙ σ(x Vᵀ)``, no bias (:class:`GatedEncoder`); TasNet feeds
  it L2-normalised non-overlapping segments (:func:`normalise_segments`, SPEC §2.1 steps 1-2);
* ``"mpgtf"``: the fixed multi-phase gammatone filterbank of Ditter & Gerkmann (2020),
  ``ReLU(conv(x, MPGTF))`` (:class:`MultiPhaseGammatoneEncoder`, SPEC §2.4, §10 item 4).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from separate.errors import SeparateError

LOWEST_CENTRE_HZ = 100.0
GAMMATONE_ORDER = 2


def frame_padding(length: int, kernel_size: int, stride: int) -> int:
    """Zeros to append so that frames of ``kernel_size`` samples every ``stride`` cover ``length`` samples."""
    if length < kernel_size:
        return kernel_size - length
    return (-(length - kernel_size)) % stride


class FrameEncoder(nn.Module):
    """Base of the encoders: ``n_filters`` outputs per frame of ``kernel_size`` samples every ``stride``."""

    def __init__(self, n_filters: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        if n_filters < 1 or kernel_size < 1 or stride < 1:
            raise SeparateError("encoder filters, kernel size and stride must all be positive integers.")
        self.n_filters = n_filters
        self.kernel_size = kernel_size
        self.stride = stride

    def pad(self, wav: Tensor) -> Tensor:
        """Right-pad so that the frames cover every sample: wav [..., T] -> [..., T_pad]."""
        extra = frame_padding(wav.shape[-1], self.kernel_size, self.stride)
        return F.pad(wav, (0, extra)) if extra else wav


class ConvEncoder(FrameEncoder):
    """Learned ("free") filterbank: Conv1d(1, N, L, stride, no bias), optional ReLU."""

    def __init__(self, n_filters: int, kernel_size: int, stride: int, relu: bool = False) -> None:
        super().__init__(n_filters, kernel_size, stride)
        self.conv = nn.Conv1d(1, n_filters, kernel_size, stride=stride, bias=False)
        self.relu = relu

    def forward(self, wav: Tensor) -> Tensor:
        """wav: [B, 1, T] -> frames: [B, N, T']."""
        frames = self.conv(self.pad(wav))
        return F.relu(frames) if self.relu else frames


class GatedEncoder(FrameEncoder):
    """TasNet's gated encoder ``w = ReLU(x Uᵀ) ⊙ σ(x Vᵀ)`` with U, V ∈ R^{N×L}, no bias.

    Both bases live in one Conv1d(1, 2N) (rows ``:N`` are U, rows ``N:`` are V). ``stride`` defaults to
    ``kernel_size``: non-overlapping segments as in TasNet. wav: [B, 1, T] -> frames: [B, N, T'].
    """

    def __init__(self, n_filters: int, kernel_size: int, stride: int | None = None) -> None:
        super().__init__(n_filters, kernel_size, kernel_size if stride is None else stride)
        self.conv = nn.Conv1d(1, 2 * n_filters, kernel_size, stride=self.stride, bias=False)

    def forward(self, wav: Tensor) -> Tensor:
        content, gate = self.conv(self.pad(wav)).chunk(2, dim=1)
        return F.relu(content) * torch.sigmoid(gate)


def normalise_segments(wav: Tensor, segment_length: int, eps: float = 1e-8) -> tuple[Tensor, Tensor]:
    """TasNet's per-segment L2 normalisation ``x̄_k = x_k / (||x_k||₂ + eps)`` (SPEC §2.1 step 1).

    wav: [B, 1, K·L] -> (normalised: [B, 1, K·L], norms: [B, 1, K]); the length must be a multiple of L.
    """
    batch, channels, length = wav.shape
    if length % segment_length:
        raise ValueError(f"length {length} is not a multiple of the segment length {segment_length}")
    segments = wav.reshape(batch, channels, length // segment_length, segment_length)
    norms = torch.linalg.vector_norm(segments, dim=-1)
    normalised = segments / (norms.unsqueeze(-1) + eps)
    return normalised.reshape(batch, channels, length), norms


def hz_to_erb_number(freq_hz: float) -> float:
    """ERB-number of a frequency: ``9.265 · ln(1 + f / (24.7 · 9.265))``."""
    return 9.265 * math.log1p(freq_hz / (24.7 * 9.265))


def erb_number_to_hz(erb_number: float) -> float:
    """Inverse of :func:`hz_to_erb_number`."""
    return math.expm1(erb_number / 9.265) * 24.7 * 9.265


def gammatone_centre_frequencies(sample_rate: float, n_center_freqs: int | None = None) -> list[float]:
    """Centre frequencies from 100 Hz upward in steps of one ERB number.

    ``n_center_freqs=None`` takes every step below ``sample_rate / 2`` (24 at 8 kHz, 40 at 44.1 kHz);
    24 is the reference (speech) setting. Centres at or above Nyquist are refused.
    """
    nyquist = sample_rate / 2
    start = hz_to_erb_number(LOWEST_CENTRE_HZ)
    if n_center_freqs is None:
        n_center_freqs = 0
        while erb_number_to_hz(start + n_center_freqs) < nyquist:
            n_center_freqs += 1
    if n_center_freqs < 1:
        raise SeparateError("the gammatone filterbank needs at least one centre frequency.")
    centres = [erb_number_to_hz(start + index) for index in range(n_center_freqs)]
    if centres[-1] >= nyquist:
        raise SeparateError(
            f"{n_center_freqs} gammatone centre frequencies reach {centres[-1]:.0f} Hz, "
            f"above the Nyquist frequency {nyquist:.0f} Hz; use fewer centres or leave n_center_freqs unset."
        )
    return centres


def phase_pairs_per_centre(n_filters: int, n_center_freqs: int) -> list[int]:
    """How many (φ, φ + π) filter pairs each centre frequency gets; the lowest centres take the remainder."""
    if n_filters % 2:
        raise SeparateError(f"the multi-phase gammatone bank needs an even filter count, got {n_filters}.")
    base, extra = divmod(n_filters // 2, n_center_freqs)
    return [base + 1 if index < extra else base for index in range(n_center_freqs)]


def gammatone_impulse_response(
    centre_hz: float, phase: float, kernel_size: int, sample_rate: float
) -> Tensor:
    """Order-2 gammatone ``t^{p-1} · exp(-2π b t) · cos(2π f_c t + φ)`` at t = 1/fs .. L/fs: [L] float64.

    ``b = ERB(f_c) / (π (2p-2)! 2^{-(2p-2)} / ((p-1)!)²)`` with ``ERB(f_c) = 24.7 + 0.108 f_c``.
    """
    order = GAMMATONE_ORDER
    erb = 24.7 + 0.108 * centre_hz
    divisor = math.pi * math.factorial(2 * order - 2) * 2.0 ** (2 - 2 * order)
    divisor /= math.factorial(order - 1) ** 2
    bandwidth = erb / divisor
    t = torch.arange(1, kernel_size + 1, dtype=torch.float64) / sample_rate
    envelope = t ** (order - 1) * torch.exp(-2 * math.pi * bandwidth * t)
    return envelope * torch.cos(2 * math.pi * centre_hz * t + phase)


def multiphase_gammatone_filters(
    n_filters: int, kernel_size: int, sample_rate: float, n_center_freqs: int | None = None
) -> Tensor:
    """The MP-GTF bank: [N, L] (float64), all filters scaled to the largest filter RMS.

    Per centre frequency (ascending), ``p`` filters with phases ``k·π/p`` (k = 0..p-1) followed by their
    negatives, ``p`` from :func:`phase_pairs_per_centre`.
    """
    centres = gammatone_centre_frequencies(sample_rate, n_center_freqs)
    rows = []
    for centre, pairs in zip(centres, phase_pairs_per_centre(n_filters, len(centres)), strict=True):
        positive = [
            gammatone_impulse_response(centre, index * math.pi / pairs, kernel_size, sample_rate)
            for index in range(pairs)
        ]
        rows.extend(positive)
        rows.extend(-row for row in positive)
    bank = torch.stack(rows)
    rms = bank.pow(2).mean(dim=1, keepdim=True).sqrt()
    return bank * (rms.max() / rms)


class MultiPhaseGammatoneEncoder(FrameEncoder):
    """Fixed MP-GTF analysis ``ReLU(conv1d(x, MPGTF))``; the bank is a buffer, nothing is trained.

    wav: [B, 1, T] -> frames: [B, N, T']. ``n_center_freqs=None``: every 1-ERB step from 100 Hz below Nyquist.
    """

    def __init__(
        self,
        n_filters: int,
        kernel_size: int,
        stride: int,
        sample_rate: float,
        n_center_freqs: int | None = None,
    ) -> None:
        super().__init__(n_filters, kernel_size, stride)
        bank = multiphase_gammatone_filters(n_filters, kernel_size, sample_rate, n_center_freqs)
        self.register_buffer("filters", bank.float().unsqueeze(1))  # [N, 1, L]
        self.sample_rate = sample_rate

    def forward(self, wav: Tensor) -> Tensor:
        return F.relu(F.conv1d(self.pad(wav), self.filters, stride=self.stride))


ENCODER_KINDS = ("free", "gated", "mpgtf")


def make_encoder(
    kind: str,
    n_filters: int,
    kernel_size: int,
    stride: int,
    sample_rate: float,
    *,
    relu: bool = False,
    n_center_freqs: int | None = None,
) -> FrameEncoder:
    """Build an encoder by name: ``"free" | "gated" | "mpgtf"``; all map wav [B, 1, T] -> frames [B, N, T'].

    ``relu`` applies to ``"free"`` only (the other two are non-negative by construction);
    ``n_center_freqs`` to ``"mpgtf"`` only.
    """
    if kind == "free":
        return ConvEncoder(n_filters, kernel_size, stride, relu=relu)
    if kind == "gated":
        return GatedEncoder(n_filters, kernel_size, stride)
    if kind == "mpgtf":
        return MultiPhaseGammatoneEncoder(n_filters, kernel_size, stride, sample_rate, n_center_freqs)
    raise SeparateError(f"unknown encoder '{kind}' (choose from {', '.join(ENCODER_KINDS)}).")


class ConvDecoder(nn.Module):
    """Learned synthesis: ConvTranspose1d(N, 1, L, stride, no bias). frames [B, ..., N, T'] -> [B, ..., T]."""

    def __init__(self, n_filters: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose1d(n_filters, 1, kernel_size, stride=stride, bias=False)

    def forward(self, frames: Tensor, length: int) -> Tensor:
        lead = frames.shape[:-2]
        wav = self.deconv(frames.reshape(-1, *frames.shape[-2:]))
        return wav.reshape(*lead, wav.shape[-1])[..., :length]
