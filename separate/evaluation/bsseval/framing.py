"""Per-frame metrics: the frames' references filtered with the distortion filters, then energy ratios."""

from __future__ import annotations

import math

import torch
from scipy.fft import next_fast_len
from torch import Tensor

from separate.evaluation.bsseval.spectra import bin_tiles, irfft, rfft


class FrameConvolver:
    """Filters frames, each zero outside itself, with fixed FIR filters (overlap-save in short FFTs).

    A frame's ``W + L - 1`` output samples are cut into ``n_blocks`` blocks of ``block`` samples;
    per frequency bin one matrix product maps the P input channels of every block of every frame to
    the R outputs. Signals are handled in this block form, ``[..., B, n_blocks, block]``, zero past
    the frame's end, so energies are sums over the last two axes.
    """

    def __init__(self, filters: Tensor, window: int) -> None:
        n_inputs, filters_len, self.n_outputs = filters.shape
        self.lead = filters_len - 1
        out_len = window + self.lead
        self.n_fft = next_fast_len(min(out_len, 9 * filters_len), real=True)
        self.block = self.n_fft - self.lead
        self.n_blocks = math.ceil(out_len / self.block)
        self.span = self.n_blocks * self.block
        self.spectra = torch.fft.rfft(filters, n=self.n_fft, dim=1).permute(1, 2, 0).contiguous()  # [F, R, P]

    def to_blocks(self, signals: Tensor) -> Tensor:
        """``[..., span] -> [..., n_blocks, block]`` (a view)."""
        return signals.unflatten(-1, (self.n_blocks, self.block))

    def __call__(self, padded: Tensor) -> Tensor:
        """``padded: [P, B, lead + span]`` frames after ``lead`` zeros -> ``[R, B, n_blocks, block]``."""
        n_inputs, n_frames, _ = padded.shape
        segments = padded.unfold(-1, self.n_fft, self.block)  # [P, B, n_blocks, n_fft]
        spectra = rfft(segments, self.n_fft)  # [P, B, n_blocks, F]
        bins = spectra.shape[-1]
        rows = n_frames * self.n_blocks
        spectra = spectra.reshape(n_inputs * rows, bins)  # [(P, M), F]
        out_spectra = spectra.new_empty(self.n_outputs * rows, bins)  # [(R, M), F]
        for bins_slice in bin_tiles(bins):
            # Plain 2-D transposes (twice as fast as permuting three axes): [(P, M), f] -> [f, P, M].
            inputs = spectra[:, bins_slice].T.contiguous().view(-1, n_inputs, rows)
            product = torch.matmul(self.spectra[bins_slice], inputs)  # [f, R, M]
            out_spectra[:, bins_slice] = product.view(-1, self.n_outputs * rows).T
        pieces = irfft(out_spectra.view(self.n_outputs, rows, bins), self.n_fft)  # [R, M, n_fft]
        # The first L - 1 samples of each piece wrapped around; the rest is the linear convolution.
        return pieces[..., self.lead :].unflatten(1, (n_frames, self.n_blocks))


def _zero_padded(frames: Tensor, lead: int, total: int) -> Tensor:
    """A float64 copy of ``frames: [..., W]`` after ``lead`` zeros, zero-filled up to ``total`` samples."""
    width = frames.shape[-1]
    out = torch.empty(*frames.shape[:-1], total, dtype=torch.float64, device=frames.device)
    out[..., :lead].zero_()
    out[..., lead : lead + width].copy_(frames)
    out[..., lead + width :].zero_()
    return out


def frame_metrics(
    ref_frames: Tensor, est_frames: Tensor, convolver: FrameConvolver, images: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Metrics of a batch of B frames.

    Args:
        ref_frames: ``[J, C, B, W]`` (any float dtype; computed in float64).
        est_frames: ``[E, J, C, B, W]``.
        convolver: the distortion filters (``P_all`` then ``P_own`` outputs, see :func:`distortion_filters`).
        images: images (v4) or sources criteria.

    Returns:
        ``sdr, isr, sir, sar: [E, J, B]``.
    """
    n_sets, n_src, n_chan, n_frames, window = est_frames.shape
    lead = convolver.lead
    ref_padded = _zero_padded(ref_frames, lead, lead + convolver.span)
    est_padded = _zero_padded(est_frames, 0, convolver.span)
    ref_frames = ref_padded[..., lead : lead + window]
    est_frames = est_padded[..., :window]
    ests = convolver.to_blocks(est_padded)

    projections = convolver(ref_padded.reshape(n_src * n_chan, n_frames, -1))
    projections = projections.reshape(2, n_sets, n_src, n_chan, *projections.shape[1:])
    proj_all, proj_own = projections[0], projections[1]  # [E, J, C, B, n_blocks, block]

    def energy(blocks: Tensor) -> Tensor:
        # Channels and time -> [.., B]; reducing the contiguous last axis first is much faster.
        return torch.linalg.vector_norm(blocks, dim=-1).square().sum(dim=(-3, -1))

    own_energy = energy(proj_own)
    all_energy = energy(proj_all)
    if images:
        ref_energy = torch.linalg.vector_norm(ref_frames, dim=(1, 3)).square()
        sdr = _db(ref_energy, torch.linalg.vector_norm(est_frames - ref_frames, dim=(2, 4)).square())
        isr = _db(ref_energy, energy(proj_own - convolver.to_blocks(ref_padded[..., lead:])))
    else:
        sdr = _db(own_energy, energy(ests - proj_own))
        isr = torch.full_like(sdr, float("nan"))
    sir = _db(own_energy, energy(proj_all - proj_own))
    sar = _db(all_energy, energy(ests - proj_all))

    ref_silent = (ref_frames.sum(dim=1) == 0).all(dim=-1).any(dim=0)  # [B]
    est_silent = (est_frames.sum(dim=2) == 0).all(dim=-1).any(dim=1)  # [E, B]
    silent = (ref_silent | est_silent).unsqueeze(1)  # [E, 1, B]
    nan = torch.tensor(float("nan"), dtype=sdr.dtype, device=sdr.device)
    sdr, isr, sir, sar = (torch.where(silent, nan, m) for m in (sdr, isr, sir, sar))
    return sdr, isr, sir, sar


def _db(numerator: Tensor, denominator: Tensor) -> Tensor:
    """``10 log10(num / den)``, +inf where the denominator is exactly zero (museval's ``_safe_db``)."""
    ratio = 10 * torch.log10(numerator / denominator.clamp_min(torch.finfo(denominator.dtype).tiny))
    return torch.where(denominator == 0, torch.full_like(ratio, float("inf")), ratio)
