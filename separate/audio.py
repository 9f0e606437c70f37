"""Audio I/O in blocks: reading files or stdin, atomic stem writers, streaming resampling.

Blocks are ``numpy.ndarray[C, n]`` float32 (channels first). Nothing here holds a whole file:
stdin is spooled to a temporary file, outputs are written block by block to a hidden temporary
name and renamed into place only when complete.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from separate.errors import SeparateError

STDIO = "-"
BLOCK_FRAMES = 1 << 16
SUBTYPES = {
    ("wav", 16): "PCM_16",
    ("wav", 24): "PCM_24",
    ("wav", 32): "FLOAT",
    ("flac", 16): "PCM_16",
    ("flac", 24): "PCM_24",
}
UNKNOWN_SIZES = {0, 0xFFFFFFFF}


@dataclass
class AudioInput:
    """An opened, validated audio input. ``name`` is the track name used in output templates."""

    path: Path
    name: str
    sample_rate: int
    channels: int
    frames: int
    _spooled: bool = False

    def blocks(self, block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """Yield ``[C, n]`` float32 blocks; raise on NaN or infinite samples."""
        position = 0
        with sf.SoundFile(self.path) as handle:
            for block in handle.blocks(blocksize=block_frames, dtype="float32", always_2d=True):
                if not np.isfinite(block).all():
                    bad = position + int(np.argwhere(~np.isfinite(block))[0, 0])
                    raise SeparateError(
                        f"'{self.name}' contains NaN or infinite samples "
                        f"(first at {bad / self.sample_rate:.3f} s)"
                    )
                position += len(block)
                yield np.ascontiguousarray(block.T)

    def close(self) -> None:
        if self._spooled:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> AudioInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_input(spec: str, max_channels: int | None = None) -> AudioInput:
    """Open and validate ``spec`` (a path, or ``-`` for a WAV/FLAC stream on stdin)."""
    if spec == STDIO:
        return _open_stdin(max_channels)
    path = Path(spec)
    if not path.exists():
        raise SeparateError(f"input '{spec}' does not exist")
    if path.is_dir():
        raise SeparateError(f"input '{spec}' is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise SeparateError(f"input '{spec}' is an empty file")
    return _validated(path, path.name.split(".")[0] or path.stem, max_channels, spooled=False)


def _open_stdin(max_channels: int | None) -> AudioInput:
    if sys.stdin is None or sys.stdin.isatty():
        raise SeparateError("input '-' needs a WAV or FLAC stream on stdin")
    handle = tempfile.NamedTemporaryFile(prefix="separate-stdin-", suffix=".audio", delete=False)
    with handle:
        shutil.copyfileobj(sys.stdin.buffer, handle, length=1 << 20)
    path = Path(handle.name)
    if path.stat().st_size == 0:
        path.unlink()
        raise SeparateError("stdin is empty: expected a WAV or FLAC stream")
    try:
        return _validated(path, "stdin", max_channels, spooled=True)
    except SeparateError:
        path.unlink(missing_ok=True)
        raise


def _validated(path: Path, name: str, max_channels: int | None, spooled: bool) -> AudioInput:
    shown = "stdin" if spooled else str(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError):
        raise SeparateError(f"'{shown}' is not a readable audio file (WAV, FLAC, OGG...)") from None
    _check_wav_complete(path, info, shown)
    if info.frames == 0:
        raise SeparateError(f"'{shown}' holds no audio (zero samples)")
    if max_channels is not None and info.channels > max_channels:
        raise SeparateError(
            f"'{shown}' has {info.channels} channels; this model takes at most {max_channels}"
        )
    return AudioInput(path, name, info.samplerate, info.channels, info.frames, spooled)


def _check_wav_complete(path: Path, info: sf._SoundFileInfo, shown: str) -> None:
    """A WAV whose data chunk is shorter than its header declares was cut off.

    libsndfile reads such a file silently, so the RIFF header is checked here.
    """
    if info.format not in ("WAV", "WAVEX"):
        return
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    offset = 12
    while offset + 8 <= len(head):
        chunk_id, size = head[offset : offset + 4], struct.unpack("<I", head[offset + 4 : offset + 8])[0]
        if chunk_id == b"data":
            available = path.stat().st_size - (offset + 8)
            if size not in UNKNOWN_SIZES and size > available:
                raise SeparateError(
                    f"'{shown}' is truncated: its header declares {size} bytes of audio, "
                    f"the file holds {available}"
                )
            return
        offset += 8 + size + (size & 1)


def output_subtype(fmt: str, bits: int) -> str:
    """soundfile subtype for ``--format``/``--bits``."""
    if (fmt, bits) not in SUBTYPES:
        allowed = ", ".join(f"{f}/{b}" for f, b in SUBTYPES)
        raise SeparateError(f"unsupported output format {fmt} with {bits} bits (choose from {allowed})")
    return SUBTYPES[(fmt, bits)]


class StemWriter:
    """Writes one stem block by block to a hidden temporary file; :meth:`commit` renames it into place.

    ``path == "-"`` writes the finished file to stdout instead. :meth:`abort` removes the partial file.
    """

    def __init__(self, path: str, sample_rate: int, channels: int, fmt: str, subtype: str) -> None:
        self.to_stdout = path == STDIO
        self.clip = subtype.startswith("PCM")
        if self.to_stdout:
            self.target = None
            handle, partial = tempfile.mkstemp(prefix="separate-stdout-", suffix=f".{fmt}")
            os.close(handle)
        else:
            self.target = Path(path)
            self.target.parent.mkdir(parents=True, exist_ok=True)
            handle, partial = tempfile.mkstemp(
                prefix=f".{self.target.name}.", suffix=".partial", dir=self.target.parent
            )
            os.close(handle)
        self.partial = Path(partial)
        self.file = sf.SoundFile(
            partial, "w", samplerate=sample_rate, channels=channels, format=fmt.upper(), subtype=subtype
        )

    def write(self, block: np.ndarray) -> None:
        """block: [C, n] float."""
        if self.clip:
            block = np.clip(block, -1.0, 1.0)
        self.file.write(np.ascontiguousarray(block.T))

    def commit(self) -> None:
        self.file.close()
        if self.target is None:
            with open(self.partial, "rb") as source:
                shutil.copyfileobj(source, sys.stdout.buffer, length=1 << 20)
            sys.stdout.buffer.flush()
            self.partial.unlink()
        else:
            os.replace(self.partial, self.target)

    def abort(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.partial.unlink(missing_ok=True)


def resampled_length(frames: int, rate_in: int, rate_out: int) -> int:
    return round(frames * rate_out / rate_in)


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
