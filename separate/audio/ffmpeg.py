"""Inputs soundfile cannot read (m4a, mp4, aac, opus, wma...) decoded by the ``ffmpeg`` program.

:func:`probe` asks ``ffprobe`` for the first audio stream's rate, channels and length;
:func:`decode_blocks` streams float32 PCM from ``ffmpeg`` through a pipe, one block at a time, so
no file is ever decoded whole. The length comes from the container's duration, so the blocks are
cut or zero-padded to exactly that many frames (containers round it to a few milliseconds).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from separate.errors import SeparateError

#: Suffixes that need ffmpeg; a missing ffmpeg is named for these, other unreadable files are not audio.
FFMPEG_EXTENSIONS = (".m4a", ".mp4", ".aac", ".opus", ".wma", ".webm", ".mka", ".mkv", ".mov", ".ac3")
INSTALL_HINT = "install ffmpeg (apt-get install ffmpeg, brew install ffmpeg or conda install ffmpeg)"


@dataclass(frozen=True)
class Probed:
    sample_rate: int
    channels: int
    frames: int


def available() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def needs_ffmpeg(path: Path) -> bool:
    return path.suffix.lower() in FFMPEG_EXTENSIONS


def probe(path: Path, shown: str) -> Probed | None:
    """Rate, channels and frames of the first audio stream, or None when ffmpeg finds none."""
    if not available():
        if needs_ffmpeg(path):
            raise SeparateError(f"'{shown}' needs ffmpeg to be decoded; {INSTALL_HINT}")
        return None
    command = [
        "ffprobe", "-v", "error", "-select_streams", "a:0", "-of", "json",
        "-show_entries", "stream=sample_rate,channels,duration:format=duration", str(path),
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, timeout=60, check=False)
        answer = json.loads(result.stdout or b"{}")
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return None
    streams = answer.get("streams") or []
    if result.returncode != 0 or not streams:
        return None
    stream = streams[0]
    duration = stream.get("duration") or answer.get("format", {}).get("duration")
    try:
        rate, channels = int(stream["sample_rate"]), int(stream["channels"])
        frames = round(float(duration) * rate)
    except (KeyError, TypeError, ValueError):
        return None
    return Probed(rate, channels, frames)


def decode_blocks(path: Path, shown: str, info: Probed, block_frames: int) -> Iterator[np.ndarray]:
    """Yield ``[C, n]`` float32 blocks of ``path`` decoded by ffmpeg, ``info.frames`` frames in all."""
    command = [
        "ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-vn",
        "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(info.channels), "-ar", str(info.sample_rate),
        "pipe:1",
    ]  # fmt: skip
    frame_bytes = 4 * info.channels
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        assert process.stdout is not None
        produced = 0
        try:
            while produced < info.frames:
                want = min(block_frames, info.frames - produced) * frame_bytes
                data = process.stdout.read(want)
                if not data:
                    break
                data = data[: len(data) - len(data) % frame_bytes]
                block = np.frombuffer(data, np.float32).reshape(-1, info.channels).T
                produced += block.shape[1]
                yield np.ascontiguousarray(block)
        finally:
            process.stdout.close()
            process.kill()
            code = process.wait()
        if produced < info.frames and code not in (0, -9):  # -9: killed by us once done
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip().splitlines()
            raise SeparateError(f"ffmpeg cannot decode '{shown}': {message[-1] if message else code}")
    if produced < info.frames:
        yield np.zeros((info.channels, info.frames - produced), np.float32)
