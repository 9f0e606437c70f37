"""Distortion filters: least-squares projections of the estimates onto the delayed references.

Lagged correlations blockwise in the FFT domain, then a block Levinson solve of the block Toeplitz
normal equations (a dense Cholesky solve where its backward error is not at Cholesky's level).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.fft import next_fast_len
from torch import Tensor

from separate.evaluation.bsseval.spectra import bin_tiles, irfft, rfft

#: museval's regulariser of the Gram matrix (``np.finfo(float).eps``).
GRAM_EPS = float(np.finfo(np.float64).eps)


def distortion_filters(references: Tensor, estimate_sets: Tensor, filters_len: int) -> Tensor:
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
    corr = lagged_correlations(refs, [refs, ests], filters_len - 1)
    filters = toeplitz_filters(corr, n_src, n_chan)
    if filters is None:
        filters = dense_filters(corr, n_src, n_chan, filters_len)
    return filters


#: Largest normwise backward error (``|D - G X| / (|G| |X| + |D|)``) accepted from the block Levinson
#: solver; Cholesky reaches ~1e-16 on well-posed systems. Above it (ill-posed systems, see the module
#: docstring) the dense Cholesky solve runs instead.
LEVINSON_TOLERANCE = 1e-13


def toeplitz_filters(corr: Tensor, n_src: int, n_chan: int) -> Tensor | None:
    """The filters of :func:`distortion_filters` by block Levinson recursion, or ``None`` if not accurate.

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
    toeplitz[:, 0] += GRAM_EPS * np.eye(basis)
    try:
        with np.errstate(all="ignore"):
            solution = _block_levinson(toeplitz, rhs)
            error = _backward_error(toeplitz, solution, rhs)
    except np.linalg.LinAlgError:
        return None
    if not np.isfinite(solution).all() or not error <= LEVINSON_TOLERANCE:
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


def dense_filters(corr: Tensor, n_src: int, n_chan: int, filters_len: int) -> Tensor:
    """The filters of :func:`distortion_filters` from the dense Gram matrix (Cholesky, as museval solves)."""
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
    regularised = gram + GRAM_EPS * torch.eye(size, dtype=gram.dtype, device=gram.device)
    factor, info = torch.linalg.cholesky_ex(regularised)
    if not bool((info != 0).any()):
        return torch.cholesky_solve(rhs, factor)
    solution, info = torch.linalg.solve_ex(regularised, rhs)
    if bool((info != 0).any()):
        solution = torch.linalg.lstsq(gram.cpu(), rhs.cpu(), driver="gelsd").solution.to(gram.device)
    return solution


def lagged_correlations(
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
        spectra = rfft(blocks, n_fft).reshape(n_all * count, bins)  # [(P + Q, b), F]
        for bins_slice in bin_tiles(bins):
            tile = spectra[:, bins_slice].T.contiguous().view(-1, n_all, count)  # [f, P + Q, b]
            # sum_b conj(X) Y: [f, P, Q]
            total[bins_slice].baddbmm_(tile[:, :n_x].conj(), tile[:, n_x:].mT)
    corr = irfft(total.permute(1, 2, 0), n_fft)
    return corr[..., : span + 1]


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
