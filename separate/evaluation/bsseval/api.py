"""``bss_eval``: input checks, framing of the signals, the museval backend (see the package docstring)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from separate.errors import SeparateError
from separate.evaluation.bsseval.framing import FrameConvolver, frame_metrics
from separate.evaluation.bsseval.projection import distortion_filters

BACKENDS = ("torch", "museval")


class BSSEvalScores(NamedTuple):
    """Per-source, per-frame metrics in dB, each ``[J, frames]`` (``[E, J, frames]`` for estimate
    sets) float64 on the CPU. ISR is NaN in sources mode; a frame with a silent reference or
    estimate is NaN throughout."""

    sdr: Tensor
    isr: Tensor
    sir: Tensor
    sar: Tensor


def frame_count(length: int, window: int | None, hop: int | None) -> int:
    """Frames museval's framing yields: whole windows only, or one frame when the window covers it all."""
    if window is None or hop is None or window >= length:
        return 1
    return (length - window + hop) // hop


def bss_eval(
    references: Tensor | np.ndarray,
    estimates: Tensor | np.ndarray,
    *,
    window: int | None = 44100,
    hop: int | None = 44100,
    filters_len: int = 512,
    images: bool = True,
    backend: str = "torch",
    device: str | torch.device | None = None,
    frames_per_batch: int | None = None,
) -> BSSEvalScores:
    """BSSEval v4 (museval's ``bss_eval`` without permutation search, time-invariant filters).

    Args:
        references: ``[J, C, T]`` true sources (images), every source non-silent.
        estimates: ``[J, C, T]`` estimates in the same source order, or ``[E, J, C, T]``: E sets of
            estimates scored against the same references (the references' work is shared).
        window: frame length in samples (museval: 1 s); ``None`` = one frame over the whole signal.
        hop: frame hop in samples (museval: 1 s).
        filters_len: taps of the distortion filters (512 in BSSEval v3/v4).
        images: ``True`` for ``bss_eval_images`` (SiSEC, music), ``False`` for ``bss_eval_sources``.
        backend: ``"torch"`` (this module) or ``"museval"`` (the reference implementation, CPU).
        device: where the torch backend computes (default: the references' device).
        frames_per_batch: frames projected at once (bounds memory; results do not depend on it).
            Default: 2 on the CPU (small batches stay in cache, which is faster), 64 on CUDA.

    Returns:
        :class:`BSSEvalScores` with ``sdr, isr, sir, sar: [J, frames]`` (``[E, J, frames]``).
    """
    references = torch.as_tensor(references)
    estimates = torch.as_tensor(estimates)
    single = estimates.dim() == 3
    estimate_sets = estimates.unsqueeze(0) if single else estimates
    _validate(references, estimate_sets, filters_len)
    if window is not None and (window < 1 or hop is None or hop < 1):
        raise SeparateError(f"BSSEval needs a positive window and hop in samples, got {window} and {hop}")
    if backend == "museval":
        sets = [_museval_bss_eval(references, e, window, hop, filters_len, images) for e in estimate_sets]
        scores = BSSEvalScores(*(torch.stack(metric) for metric in zip(*sets, strict=True)))
    elif backend == "torch":
        device = torch.device(device) if device is not None else references.device
        if frames_per_batch is None:
            frames_per_batch = 64 if device.type == "cuda" else 2
        with torch.no_grad():
            scores = _torch_bss_eval(
                references.to(device),
                estimate_sets.to(device),
                window,
                hop,
                filters_len,
                images,
                frames_per_batch,
            )
    else:
        raise SeparateError(f"unknown BSSEval backend '{backend}' (known: {', '.join(BACKENDS)})")
    return BSSEvalScores(*(metric[0] for metric in scores)) if single else scores


def _validate(references: Tensor, estimate_sets: Tensor, filters_len: int) -> None:
    if references.dim() != 3 or estimate_sets.dim() != 4 or references.shape != estimate_sets.shape[1:]:
        raise SeparateError(
            "BSSEval needs references [sources, channels, samples] and estimates of the same shape, got "
            f"{tuple(references.shape)} and {tuple(estimate_sets.shape[-references.dim() :])}"
        )
    if references.numel() == 0:
        raise SeparateError("BSSEval needs at least one source, one channel and one sample")
    if filters_len < 1:
        raise SeparateError(f"filters_len must be positive, got {filters_len}")
    for name, signals in (("reference", references), ("estimate", estimate_sets)):
        silent = _silent(signals)
        if bool(silent.any()):
            index = int(silent.nonzero()[0][-1])
            raise SeparateError(
                f"{name} source {index} is silent (all zeros); BSSEval is undefined for a silent source"
            )


def _silent(signals: Tensor) -> Tensor:
    """``[..., J, C, T] -> [..., J]``: the channel sum is zero at every sample (museval's test)."""
    # Two float32 channels sum exactly; more are summed in float64 as museval does.
    wide = torch.float64 if signals.shape[-2] > 2 else None
    return (signals.sum(dim=-2, dtype=wide) == 0).all(dim=-1)


def _torch_bss_eval(
    references: Tensor,
    estimate_sets: Tensor,
    window: int | None,
    hop: int | None,
    filters_len: int,
    images: bool,
    frames_per_batch: int,
) -> BSSEvalScores:
    """``references: [J, C, T]``, ``estimate_sets: [E, J, C, T]`` -> scores ``[E, J, frames]``."""
    length = references.shape[-1]
    filters = distortion_filters(references, estimate_sets, filters_len)
    n_frames = frame_count(length, window, hop)
    if window is None or hop is None or window >= length:
        window, hop = length, length
    convolver = FrameConvolver(filters, window)

    ref_frames = references.unfold(-1, window, hop)  # [J, C, frames, W]
    est_frames = estimate_sets.unfold(-1, window, hop)  # [E, J, C, frames, W]
    results = []
    for start in range(0, n_frames, frames_per_batch):
        batch = slice(start, min(start + frames_per_batch, n_frames))
        results.append(
            frame_metrics(
                ref_frames[:, :, batch],
                est_frames[:, :, :, batch],
                convolver,
                images,
            )
        )
    return BSSEvalScores(*(torch.cat(parts, dim=-1).cpu() for parts in zip(*results, strict=True)))


def _museval_bss_eval(
    references: Tensor,
    estimates: Tensor,
    window: int | None,
    hop: int | None,
    filters_len: int,
    images: bool,
) -> BSSEvalScores:
    """The reference implementation (museval.metrics.bss_eval) on float64 ``[J, T, C]`` arrays."""
    try:
        from museval import metrics as museval_metrics
    except ImportError as error:
        raise SeparateError("the museval backend needs museval: pip install 'separate[eval]'") from error
    refs = references.detach().cpu().to(torch.float64).permute(0, 2, 1).numpy()
    ests = estimates.detach().cpu().to(torch.float64).permute(0, 2, 1).numpy()
    sdr, isr, sir, sar, _ = museval_metrics.bss_eval(
        refs,
        ests,
        window=np.inf if window is None else window,
        hop=np.inf if hop is None else hop,
        compute_permutation=False,
        filters_len=filters_len,
        framewise_filters=False,
        bsseval_sources_version=not images,
    )
    return BSSEvalScores(*(torch.from_numpy(np.asarray(m, dtype=np.float64)) for m in (sdr, isr, sir, sar)))
