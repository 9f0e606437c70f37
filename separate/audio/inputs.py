"""Audio inputs read in blocks: files, or a WAV/FLAC stream on stdin spooled to a temporary file.

Blocks are ``numpy.ndarray[C, n]`` float32 (channels first); nothing here holds a whole file. Inputs
are validated when opened (missing, empty, unreadable, truncated, too many channels) and samples
while read (NaN or infinite values), each as a one-line :class:`SeparateError`.
"""

from __future__ import annotations

import shutil
import struct
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from separate.errors import SeparateError

STDIO = "-"
BLOCK_FRAMES = 1 << 16
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
