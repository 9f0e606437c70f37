"""Resampling with soxr: the one rule for resampled lengths, and a streaming resampler of blocks.

:func:`resampled_length` is what soxr produces for a whole signal: ``frames * rate_out / rate_in``
rounded half up. The engine (streaming) and the datasets (spans of files) both use it, so an input
has one length at the model's rate wherever it is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import soxr


def resampled_length(frames: int, rate_in: int, rate_out: int) -> int:
    """Samples that ``frames`` samples at ``rate_in`` make at ``rate_out`` (soxr's rounding: half up)."""
    if rate_in == rate_out:
        return frames
    return (frames * rate_out + rate_in // 2) // rate_in


def resample_blocks(
    blocks: Iterable[np.ndarray], rate_in: int, rate_out: int, frames_out: int
) -> Iterator[np.ndarray]:
    """Stream-resample ``[C, n]`` blocks, cut or zero-padded to exactly ``frames_out`` frames."""
    if rate_in == rate_out:
        yield from blocks
        return
    expected = frames_out
    produced = 0
    stream: soxr.ResampleStream | None = None
    channels = 0
    for block in blocks:
        if stream is None:
            channels = block.shape[0]
            stream = soxr.ResampleStream(rate_in, rate_out, channels, dtype="float32")
        out = stream.resample_chunk(np.ascontiguousarray(block.T)).T[:, : expected - produced]
        produced += out.shape[1]
        if out.shape[1]:
            yield np.ascontiguousarray(out)
    if stream is not None:
        tail = stream.resample_chunk(np.zeros((0, channels), np.float32), last=True).T
        tail = tail[:, : expected - produced]
        produced += tail.shape[1]
        if produced < expected:
            tail = np.concatenate([tail, np.zeros((tail.shape[0], expected - produced), np.float32)], axis=1)
        if tail.shape[1]:
            yield np.ascontiguousarray(tail)
