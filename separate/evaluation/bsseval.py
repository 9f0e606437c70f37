"""BSSEval v4 in torch: the metrics museval computes, vectorised over frames and sources.

What is computed (Vincent et al. 2006; Liutkus et al. 2018, SiSEC 2018), exactly as
``museval.metrics.bss_eval(..., compute_permutation=False, framewise_filters=False)``:

1. Distortion filters of ``filters_len`` taps are estimated once on the whole signals: each
   estimate channel is projected (least squares) onto the span of all delayed reference channels
   (``P_all``), and onto the delayed channels of its own reference only (``P_own``). The Gram
   matrix of the delayed references and the right-hand sides come from lagged cross-correlations,
   computed blockwise in the FFT domain and summed over blocks as one matrix product per frequency.
   The Gram matrix is block Toeplitz (one block per pair of taps), so a block Levinson recursion
   solves every estimate channel's system at once in O(L^2 P^3) for P reference channels instead
   of factorising the (L P)^2 matrix in O(L^3 P^3), the fixed cost that dominated short excerpts.
   Its normwise backward error is checked; where it is not at Cholesky's level (ill-posed systems,
   see below) the dense matrix is factorised instead (Cholesky, LU if that fails; museval solves
   once per source).
2. For every frame (``window`` samples every ``hop``) the frame's references are filtered with
   those filters (FFT convolution, a batch of frames and all sources at once), giving ``P_own`` and
   ``P_all`` of ``window + filters_len - 1`` samples, and the energy ratios follow:

   * images mode (BSSEval v4, SiSEC):   SDR = |s|^2 / |e - s|^2,  ISR = |s|^2 / |P_own - s|^2,
     SIR = |P_own|^2 / |P_all - P_own|^2,  SAR = |P_all|^2 / |e - P_all|^2
   * sources mode (``bss_eval_sources``): SDR = |P_own|^2 / |e - P_own|^2, no ISR, SIR and SAR as above.

   A frame where any reference or estimate is silent (its channel sum is zero throughout) is NaN
   for every source, and a zero denominator gives +inf, as in museval.

Everything runs in float64 on the device given (CPU or CUDA); inputs keep their own dtype and are
upcast chunk by chunk, so a 3-minute 4-stem track never needs float64 copies of itself.

Agreement with museval is ~1e-10 dB when the Gram matrix is reasonably conditioned, as it is for
recorded or 16-bit references (their noise floor fills every frequency band). References with exact
spectral holes at float precision (pure synthetic tones, a hard float32 low-pass) make the filters
ill-posed: ISR, SIR and SAR then depend on rounding, in museval as much as here, and differ between
any two implementations (SDR in images mode does not use the filters and is unaffected).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from scipy.fft import next_fast_len
from torch import Tensor

from separate.errors import SeparateError

#: museval's regulariser of the Gram matrix (``np.finfo(float).eps``).
_GRAM_EPS = float(np.finfo(np.float64).eps)

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
    filters = _distortion_filters(references, estimate_sets, filters_len)
    n_frames = frame_count(length, window, hop)
    if window is None or hop is None or window >= length:
        window, hop = length, length
    convolver = _FrameConvolver(filters, window)

    ref_frames = references.unfold(-1, window, hop)  # [J, C, frames, W]
    est_frames = estimate_sets.unfold(-1, window, hop)  # [E, J, C, frames, W]
    results = []
    for start in range(0, n_frames, frames_per_batch):
        batch = slice(start, min(start + frames_per_batch, n_frames))
        results.append(
            _frame_metrics(
                ref_frames[:, :, batch],
                est_frames[:, :, :, batch],
                convolver,
                images,
            )
        )
    return BSSEvalScores(*(torch.cat(parts, dim=-1).cpu() for parts in zip(*results, strict=True)))


def _distortion_filters(references: Tensor, estimate_sets: Tensor, filters_len: int) -> Tensor:
    """Least-squares distortion filters estimated on the whole signals.

    Args:
        references: ``[J, C, T]``.
        estimate_sets: ``[E, J, C, T]``.
        filters_len: taps L.

    Returns:
        ``[J*C, L, 2*E*J*C]``: (reference channel, tap, output). Output ``q = (e, j, o)`` in the first
        half rebuilds estimate channel q from all references (``P_all``), in the second half from
        source j's own reference channels only (``P_own``; zero taps on the other sources).
    """
    n_sets, n_src, n_chan, length = estimate_sets.shape
    basis = n_src * n_chan
    refs = references.reshape(basis, length)
    ests = estimate_sets.reshape(n_sets * basis, length)
    # corr[p, q, lags + k] = sum_n refs[p, n] * signal_q[n + k], signals = references then estimates.
    corr = _lagged_correlations(refs, [refs, ests], filters_len - 1)
    filters = _toeplitz_filters(corr, n_src, n_chan)
    if filters is None:
        filters = _dense_filters(corr, n_src, n_chan, filters_len)
    return filters


#: Largest normwise backward error (``|D - G X| / (|G| |X| + |D|)``) accepted from the block Levinson
#: solver; Cholesky reaches ~1e-16 on well-posed systems. Above it (ill-posed systems, see the module
#: docstring) the dense Cholesky solve runs instead.
_LEVINSON_TOLERANCE = 1e-13


def _toeplitz_filters(corr: Tensor, n_src: int, n_chan: int) -> Tensor | None:
    """The filters of :func:`_distortion_filters` by block Levinson recursion, or ``None`` if not accurate.

    The Gram matrix of the delayed references, ordered by tap then channel, is block Toeplitz:
    block ``(a, b)`` is ``R(a - b)``, ``R(k)[p, q] = corr[p, q, lags + k]``, ``R(-k) = R(k)^T``. Its
    systems are solved in O(L^2 P^3) on the CPU instead of factorising the (L P)^2 matrix (O(L^3 P^3)),
    which dominates short excerpts. The ``P_own`` systems (each source's channels alone) are the same
    recursion on the block-diagonal part of ``R`` with the same right-hand sides, batched with the
    ``P_all`` one; their solution is kept where the estimate's source is the reference's.
    """
    basis = n_src * n_chan
    lags = (corr.shape[-1] - 1) // 2
    values = corr.detach().to("cpu", torch.float64).numpy()
    blocks = values[:, :basis, lags:].transpose(2, 0, 1)  # [L, P, P]: R(k)
    rhs = np.ascontiguousarray(values[:, basis:, lags:].transpose(2, 0, 1))  # [L, P, Q]: D[(a, p), q]
    source = np.arange(basis) // n_chan
    same = source[:, None] == (np.arange(rhs.shape[-1]) % basis // n_chan)[None, :]  # [P, Q]
    systems = [blocks] if n_src == 1 else [blocks, blocks * (source[:, None] == source[None, :])]
    toeplitz = np.stack(systems)
    toeplitz[:, 0] += _GRAM_EPS * np.eye(basis)
    try:
        with np.errstate(all="ignore"):
            solution = _block_levinson(toeplitz, rhs)
            error = _backward_error(toeplitz, solution, rhs)
    except np.linalg.LinAlgError:
        return None
    if not np.isfinite(solution).all() or not error <= _LEVINSON_TOLERANCE:
        return None
    all_filters = solution[0].transpose(1, 0, 2)  # [P, L, Q]
    own_filters = all_filters if n_src == 1 else solution[-1].transpose(1, 0, 2) * same[:, None, :]
    filters = np.concatenate([all_filters, own_filters], axis=-1)
    return torch.from_numpy(filters).to(corr.device)


def _block_levinson(toeplitz: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve ``T X = D`` for symmetric block Toeplitz ``T`` (block Levinson recursion, Akaike 1973).

    Args:
        toeplitz: ``[S, L, P, P]``, S systems; ``toeplitz[s, k]`` is block ``R(k)`` (``T[a, b] = R(a - b)``,
            ``R(-k) = R(k)^T``).
        rhs: ``[L, P, Q]``, the same right-hand sides for every system.

    Returns:
        ``X: [S, L, P, Q]``.

    Step n keeps the forward and backward predictors ``A``, ``B`` of the leading (n + 1) blocks
    (``T_n A = [Vf; 0; ...]``, ``T_n B = [...; 0; Vb]``, first and last blocks the identity) and the
    solution of the leading (n + 1) block equations, and extends all three by one block:
    ``A <- [A; 0] - [0; B] Vb^-1 D``, ``B <- [0; B] - [A; 0] Vf^-1 D^T``, ``X <- [X; 0] + B Vb^-1 r``
    with D the mismatch of ``[A; 0]`` in the new last block row and r the new equations' residual.
    Everything is stored transposed (taps along the last axis), so that the updates run over long
    contiguous rows rather than rows of P numbers.
    """
    n_sys, length, size, _ = toeplitz.shape
    width = rhs.shape[-1]
    rhs_t = np.ascontiguousarray(rhs.transpose(2, 0, 1).reshape(width, length * size))  # [Q, L*P]
    # R(L-1)^T; ...; R(1)^T stacked: the last (n + 1) blocks are the last block row of T_{n+1}, transposed.
    column = np.ascontiguousarray(toeplitz[:, :0:-1].transpose(0, 1, 3, 2).reshape(n_sys, -1, size))
    both = np.zeros((n_sys, size + width, length * size))  # A^T and X^T: one product gives both mismatches
    forward, solution = both[:, :size], both[:, size:]
    # B^T in the last (n + 1) blocks; the block before them is still zero, so one block wider is [0; B]^T.
    backward = np.zeros((n_sys, size, length * size))
    forward[:, :, :size] = backward[:, :, -size:] = np.eye(size)
    errors = np.stack([toeplitz[:, 0], toeplitz[:, 0]])  # prediction errors Vf, Vb
    inverses = np.linalg.inv(errors)
    solution[:, :, :size] = rhs_t[:, :size] @ inverses[1].transpose(0, 2, 1)
    for n in range(length - 1):
        rows = (n + 1) * size
        products = both[:, :, :rows] @ column[:, (length - 2 - n) * size :]  # [S, P + Q, P]
        mismatch_t = products[:, :size]
        residual_t = rhs_t[:, rows : rows + size] - products[:, size:]
        mismatch = mismatch_t.transpose(0, 2, 1)
        to_forward = inverses[1] @ mismatch
        to_backward = inverses[0] @ mismatch_t
        window = backward[:, :, (length - 2 - n) * size :]  # [0; B]^T
        shifted = to_forward.transpose(0, 2, 1) @ window
        window[:, :, :rows] -= to_backward.transpose(0, 2, 1) @ forward[:, :, :rows]
        forward[:, :, : rows + size] -= shifted
        errors[0] -= mismatch_t @ to_forward
        errors[1] -= mismatch @ to_backward
        inverses = np.linalg.inv(errors)
        solution[:, :, : rows + size] += (residual_t @ inverses[1].transpose(0, 2, 1)) @ window
    return solution.reshape(n_sys, width, length, size).transpose(0, 2, 3, 1)


def _backward_error(toeplitz: np.ndarray, solution: np.ndarray, rhs: np.ndarray) -> float:
    """Largest normwise backward error ``|D - T X|_F / (|T|_F |X|_F + |D|_F)`` of the systems.

    ``T X`` is a block convolution along the taps, computed with FFTs.
    """
    n_sys, length, size, _ = toeplitz.shape
    lags = np.concatenate([toeplitz[:, :0:-1].transpose(0, 1, 3, 2), toeplitz], axis=1)  # R(-L+1..L-1)
    n_fft = next_fast_len(3 * length - 2, real=True)
    spectra = np.fft.rfft(lags, n_fft, axis=1) @ np.fft.rfft(solution, n_fft, axis=1)
    product = np.fft.irfft(spectra, n_fft, axis=1)[:, length - 1 : 2 * length - 1]
    weights = length - np.abs(np.arange(1 - length, length))
    t_norm = np.sqrt(np.einsum("k,skpq->s", weights, lags**2))
    x_norm = np.sqrt((solution**2).sum(axis=(1, 2, 3)))
    r_norm = np.sqrt(((rhs - product) ** 2).sum(axis=(1, 2, 3)))
    return float((r_norm / (t_norm * x_norm + np.sqrt((rhs**2).sum()))).max())


def _dense_filters(corr: Tensor, n_src: int, n_chan: int, filters_len: int) -> Tensor:
    """The filters of :func:`_distortion_filters` from the dense Gram matrix (Cholesky, as museval solves)."""
    basis = n_src * n_chan
    n_est = corr.shape[1] - basis
    n_sets = n_est // basis
    lags = filters_len - 1
    # Gram of delayed references: G[(p, a), (q, b)] = <refs_p shifted a, refs_q shifted b> = corr[p, q, a-b].
    taps = torch.arange(filters_len, device=corr.device)
    lag_index = lags + taps[:, None] - taps[None, :]
    gram = corr[:, :basis, lag_index].permute(0, 2, 1, 3).reshape(basis * filters_len, basis * filters_len)
    # Right-hand sides: D[(p, a), q] = <refs_p shifted a, ests_q> = corr[p, basis + q, lags + a].
    rhs = corr[:, basis:, lags:].permute(0, 2, 1).reshape(basis * filters_len, n_est)
    all_filters = _solve(gram, rhs).reshape(basis, filters_len, n_est)

    # Own filters: source j's estimate channels on source j's delayed channels only.
    block = n_chan * filters_len
    sources = torch.arange(n_src, device=corr.device)
    own_gram = gram.reshape(n_src, block, n_src, block)[sources, :, sources]  # [J, C*L, C*L]
    own_rhs = rhs.reshape(n_src, block, n_sets, n_src, n_chan)[sources, :, :, sources]  # [J, C*L, E, C]
    own = _solve(own_gram, own_rhs.reshape(n_src, block, n_sets * n_chan))
    own = own.reshape(n_src, n_chan, filters_len, n_sets, n_chan)
    own_filters = all_filters.new_zeros(n_src, n_chan, filters_len, n_sets, n_src, n_chan)
    own_filters[sources, :, :, :, sources] = own  # the indexed (source) dim comes first
    return torch.cat([all_filters, own_filters.reshape(basis, filters_len, n_est)], dim=-1)


def _solve(gram: Tensor, rhs: Tensor) -> Tensor:
    """``(gram + eps I)^-1 rhs`` (eps as museval); Cholesky, LU if that fails, least squares if singular."""
    size = gram.shape[-1]
    regularised = gram + _GRAM_EPS * torch.eye(size, dtype=gram.dtype, device=gram.device)
    factor, info = torch.linalg.cholesky_ex(regularised)
    if not bool((info != 0).any()):
        return torch.cholesky_solve(rhs, factor)
    solution, info = torch.linalg.solve_ex(regularised, rhs)
    if bool((info != 0).any()):
        solution = torch.linalg.lstsq(gram.cpu(), rhs.cpu(), driver="gelsd").solution.to(gram.device)
    return solution


def _lagged_correlations(
    x: Tensor, y_parts: Sequence[Tensor], max_lag: int, chunk_bytes: int = 1 << 23
) -> Tensor:
    """Linear cross-correlations at lags ``-max_lag..max_lag`` of every pair, blockwise in the FFT domain.

    Args:
        x: ``[P, N]`` signals (any float dtype; computed in float64).
        y_parts: ``[Q_i, N]`` signals, taken as one ``[Q, N]`` stack without copying them.
        max_lag: largest lag in samples.
        chunk_bytes: rough bound on the spectra held at once.

    Returns:
        ``[P, Q, 2 * max_lag + 1]`` with ``out[p, q, max_lag + k] = sum_n x[p, n] * y[q, n + k]``
        (signals are zero outside ``[0, N)``).
    """
    n_x, length = x.shape
    n_all = n_x + sum(part.shape[0] for part in y_parts)
    span = 2 * max_lag
    n_fft = next_fast_len(min(length, 16 * (max_lag + 1)) + span, real=True)
    block = n_fft - span
    n_blocks = math.ceil(length / block)
    bins = n_fft // 2 + 1
    blocks_per_step = max(1, min(n_blocks, chunk_bytes // (16 * bins * n_all)))
    total = torch.zeros(bins, n_x, n_all - n_x, dtype=torch.complex128, device=x.device)
    # x in plain blocks, zero-padded; y in blocks widened by max_lag on both sides (no lag wraps around).
    # Both in one buffer: one FFT call and one move of the bins to the front per tile.
    buffer = torch.empty(n_all, blocks_per_step, n_fft, dtype=torch.float64, device=x.device)
    buffer[:n_x, :, block:] = 0
    for first in range(0, n_blocks, blocks_per_step):
        count = min(blocks_per_step, n_blocks - first)
        start = first * block
        blocks = buffer[:, :count]
        _windows(x, start, count, block, block, out=blocks[:n_x, :, :block])
        row = n_x
        for part in y_parts:
            _windows(part, start - max_lag, count, n_fft, block, out=blocks[row : row + part.shape[0]])
            row += part.shape[0]
        spectra = torch.fft.rfft(blocks).reshape(n_all * count, bins)  # [(P + Q, b), F]
        for bins_slice in _bin_tiles(bins):
            tile = spectra[:, bins_slice].T.contiguous().view(-1, n_all, count)  # [f, P + Q, b]
            # sum_b conj(X) Y: [f, P, Q]
            total[bins_slice].baddbmm_(tile[:, :n_x].conj(), tile[:, n_x:].mT)
    corr = torch.fft.irfft(total.permute(1, 2, 0), n=n_fft)
    return corr[..., : span + 1]


#: Frequency bins moved to the front at once (a plain 2-D transpose per tile): tile by tile stays in
#: cache (about 2x faster).
_BIN_TILE = 256


def _bin_tiles(bins: int) -> list[slice]:
    return [slice(start, min(start + _BIN_TILE, bins)) for start in range(0, bins, _BIN_TILE)]


def _windows(signals: Tensor, start: int, count: int, size: int, step: int, out: Tensor) -> None:
    """Write ``count`` windows of ``size`` samples every ``step`` from ``start`` of ``signals: [K, N]``
    into ``out: [K, count, size]`` (float64); samples outside ``[0, N)`` are zeros."""
    n_signals, length = signals.shape
    stop = start + (count - 1) * step + size
    if start >= 0 and stop <= length:
        source = signals[:, start:stop]
    else:
        source = torch.zeros(n_signals, stop - start, dtype=signals.dtype, device=signals.device)
        first, last = max(start, 0), min(stop, length)
        if last > first:
            source[:, first - start : last - start] = signals[:, first:last]
    out.copy_(source.unfold(-1, size, step))


class _FrameConvolver:
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
        spectra = torch.fft.rfft(segments, n=self.n_fft)  # [P, B, n_blocks, F]
        bins = spectra.shape[-1]
        rows = n_frames * self.n_blocks
        spectra = spectra.view(n_inputs * rows, bins)  # [(P, M), F]
        out_spectra = spectra.new_empty(self.n_outputs * rows, bins)  # [(R, M), F]
        for bins_slice in _bin_tiles(bins):
            # Plain 2-D transposes (twice as fast as permuting three axes): [(P, M), f] -> [f, P, M].
            inputs = spectra[:, bins_slice].T.contiguous().view(-1, n_inputs, rows)
            product = torch.matmul(self.spectra[bins_slice], inputs)  # [f, R, M]
            out_spectra[:, bins_slice] = product.view(-1, self.n_outputs * rows).T
        pieces = torch.fft.irfft(out_spectra.view(self.n_outputs, rows, bins), n=self.n_fft)  # [R, M, n_fft]
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


def _frame_metrics(
    ref_frames: Tensor, est_frames: Tensor, convolver: _FrameConvolver, images: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Metrics of a batch of B frames.

    Args:
        ref_frames: ``[J, C, B, W]`` (any float dtype; computed in float64).
        est_frames: ``[E, J, C, B, W]``.
        convolver: the distortion filters (``P_all`` then ``P_own`` outputs, see :func:`_distortion_filters`).
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
