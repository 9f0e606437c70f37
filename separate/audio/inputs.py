"""Audio inputs read in blocks: files, or a WAV/FLAC stream on stdin spooled to a temporary file.

What soundfile cannot read (m4a, opus, wma...) is decoded by ffmpeg in blocks (:mod:`.ffmpeg`).
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

from separate.audio import ffmpeg
from separate.audio.ioerrors import write_error
from separate.errors import SeparateError
from separate.runtime import interrupts_deferred

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
    decoded: ffmpeg.Probed | None = None

    @property
    def shown(self) -> str:
        """How errors name this input: its path, or ``stdin``."""
        return _shown(self.path, self._spooled)

    def blocks(self, block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """Yield ``[C, n]`` float32 blocks; raise on NaN or infinite samples."""
        position = 0
        for block in self._raw_blocks(block_frames):
            if not np.isfinite(block).all():
                bad = position + int(np.argmax(~np.isfinite(block).all(axis=0)))
                raise SeparateError(
                    f"'{self.shown}' contains NaN or infinite samples "
                    f"(first at {bad / self.sample_rate:.3f} s)"
                )
            position += block.shape[1]
            yield block

    def _raw_blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        if self.decoded is not None:
            yield from ffmpeg.decode_blocks(self.path, self.name, self.decoded, block_frames)
            return
        with sf.SoundFile(self.path) as handle:
            for block in handle.blocks(blocksize=block_frames, dtype="float32", always_2d=True):
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
    return _validated(path, track_name(spec), max_channels, spooled=False)


def track_name(spec: str) -> str:
    """The name of a track in output templates: the file name up to its first dot (``stdin`` for ``-``)."""
    if spec == STDIO:
        return "stdin"
    path = Path(spec)
    return path.name.split(".")[0] or path.stem


def _open_stdin(max_channels: int | None) -> AudioInput:
    if sys.stdin is None or sys.stdin.isatty():
        raise SeparateError("input '-' needs a WAV or FLAC stream on stdin")
    path: Path | None = None
    try:  # outside the deferral: a Ctrl-C held during it is raised as the deferral ends
        with interrupts_deferred():
            handle = tempfile.NamedTemporaryFile(prefix="separate-stdin-", suffix=".audio", delete=False)
            path = Path(handle.name)
        with handle:
            shutil.copyfileobj(sys.stdin.buffer, handle, length=1 << 20)
    except OSError as problem:
        if path is not None:
            path.unlink(missing_ok=True)
        raise write_error(problem, path or tempfile.gettempdir()) from None
    except BaseException:  # Ctrl-C while spooling: no spool file left behind
        if path is not None:
            path.unlink(missing_ok=True)
        raise
    if path.stat().st_size == 0:
        path.unlink()
        raise SeparateError("stdin is empty: expected a WAV or FLAC stream")
    try:
        return _validated(path, "stdin", max_channels, spooled=True)
    except BaseException:  # refused, or Ctrl-C while checking: the spool goes either way
        path.unlink(missing_ok=True)
        raise


def _shown(path: Path, spooled: bool) -> str:
    return "stdin" if spooled else str(path)


def _validated(path: Path, name: str, max_channels: int | None, spooled: bool) -> AudioInput:
    shown = _shown(path, spooled)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError):
        decoded = ffmpeg.probe(path, shown)
        if decoded is None:
            raise SeparateError(
                f"'{shown}' is not a readable audio file (WAV, FLAC, OGG, MP3, or what ffmpeg decodes)"
            ) from None
        rate, channels, frames = decoded.sample_rate, decoded.channels, decoded.frames
    else:
        _check_wav_complete(path, info, shown)
        decoded, rate, channels, frames = None, info.samplerate, info.channels, info.frames
    if frames == 0:
        raise SeparateError(f"'{shown}' holds no audio (zero samples)")
    if max_channels is not None and channels > max_channels:
        raise SeparateError(f"'{shown}' has {channels} channels; this model takes at most {max_channels}")
    return AudioInput(path, name, rate, channels, frames, spooled, decoded)


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
