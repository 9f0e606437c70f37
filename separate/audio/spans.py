"""Spans of audio files at a model's sample rate, read without loading whole files (the datasets' reader).

Positions and lengths are given at the *target* rate; when a file has another rate the
matching file frames (plus a small margin for the resampling filter) are read and resampled
with soxr. The read always starts on a frame where file and target grids coincide, so crops
of the same file taken at different offsets line up exactly with the whole-file resampling.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from separate.audio.resample import resampled_length
from separate.errors import SeparateError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif")

#: ``reader(first_frame, stop_frame) -> [..., C, stop_frame - first_frame]`` float32.
FrameReader = Callable[[int, int], np.ndarray]

#: Extra file frames read on each side of a resampled span so the filter sees real context.
_RESAMPLE_MARGIN = 64


@dataclass(frozen=True)
class FileInfo:
    frames: int
    rate: int
    channels: int


def probe(path: str | os.PathLike[str]) -> FileInfo:
    """Frames, rate and channels of an audio file, with a clear error when it is missing or unreadable."""
    if not os.path.isfile(path):
        raise SeparateError(f"missing file: {path}")
    try:
        info = sf.info(str(path))
    except RuntimeError as error:
        raise SeparateError(f"cannot read audio file {path}: {error}") from error
    return FileInfo(frames=int(info.frames), rate=int(info.samplerate), channels=int(info.channels))


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Crop or zero-pad the last axis of ``audio`` to ``length``."""
    have = audio.shape[-1]
    if have >= length:
        return audio[..., :length]
    padding = [(0, 0)] * (audio.ndim - 1) + [(0, length - have)]
    return np.pad(audio, padding)


def read_span(
    path: str | os.PathLike[str],
    start: int,
    length: int,
    *,
    frames: int,
    file_rate: int,
    target_rate: int,
    reader: FrameReader | None = None,
) -> np.ndarray:
    """Read ``length`` samples from ``start`` (both at ``target_rate``) as float32 ``[..., C, length]``.

    ``frames`` is the file's length as indexed; samples past it are zeros (used for padding
    short items). A file shorter than its index says raises a :class:`SeparateError`.
    ``reader(first, stop)`` replaces the soundfile read of frames ``[first, stop)`` (stem files).
    """
    read = reader if reader is not None else functools.partial(_read_frames, path)
    if file_rate == target_rate:
        return fit_length(read(start, min(start + length, frames)), length)

    step = math.gcd(file_rate, target_rate)
    file_step, target_step = file_rate // step, target_rate // step
    # First file frame on a shared grid point at or before the span, minus the filter margin.
    grid = max(0, (start * file_rate // target_rate - _RESAMPLE_MARGIN) // file_step)
    skip = grid * target_step
    last_frame = min(frames, math.ceil((start + length) * file_rate / target_rate) + _RESAMPLE_MARGIN)
    audio = read(grid * file_step, last_frame)
    leading = audio.shape[:-1]
    flat = audio.reshape(-1, audio.shape[-1]).T
    resampled = soxr.resample(np.ascontiguousarray(flat), file_rate, target_rate).T
    resampled = resampled.reshape(*leading, resampled.shape[-1])
    available = resampled_length(frames, file_rate, target_rate) - start
    span = resampled[..., start - skip : start - skip + max(0, min(length, available))]
    return fit_length(np.ascontiguousarray(span, dtype=np.float32), length)


def _read_frames(path: str | os.PathLike[str], start: int, stop: int) -> np.ndarray:
    """Frames ``[start, stop)`` of a file as float32 ``[C, stop - start]``."""
    if stop <= start:
        info = probe(path)
        return np.zeros((info.channels, 0), dtype=np.float32)
    try:
        audio, _ = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as error:
        raise SeparateError(f"cannot read audio file {path}: {error}") from error
    if audio.shape[0] != stop - start:
        raise SeparateError(
            f"mismatched lengths: {path} ends at frame {start + audio.shape[0]} "
            f"but the dataset index expects at least {stop} frames"
        )
    return np.ascontiguousarray(audio.T)


def downmix(audio: np.ndarray) -> np.ndarray:
    """``[..., C, T] -> [..., 1, T]`` by averaging channels."""
    return audio.mean(axis=-2, keepdims=True)
