"""All stems of one track: fitted to the output format's range, then committed together.

Float output keeps its values. Formats with a full scale (integer PCM, mp3, ogg) never clip
silently: ``clip_mode="rescale"`` (the default) stages every stem as raw float32 beside its target
and, when any sample of the track exceeds full scale, scales all its stems by one gain so that the
loudest fits (their sum stays the mixture times that gain); ``"clamp"`` writes directly and clamps,
counting the samples it changed. Either way :attr:`TrackWriter.levels` reports what happened.
"""

from __future__ import annotations

import math
import os
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from separate.audio.ioerrors import write_error
from separate.audio.outputs import StemWriter, commit_stems, file_mode, has_full_scale
from separate.errors import SeparateError
from separate.runtime import interrupts_deferred

CLIP_MODES = ("rescale", "clamp")
_STAGE_BLOCK = 1 << 16


class _Stage:
    """A raw float32 file of ``[n, C]`` frames: a stem kept at full precision until its gain is known."""

    def __init__(self, target: StemWriter, channels: int) -> None:
        folder = tempfile.gettempdir() if target.target is None else str(target.target.parent)
        handle, name = tempfile.mkstemp(prefix=".separate-stage-", suffix=".f32", dir=folder)
        os.fchmod(handle, file_mode())
        self.path = Path(name)
        self.file = os.fdopen(handle, "w+b")
        self.channels = channels
        self.shown = target.shown

    def write(self, block: np.ndarray) -> None:
        try:
            self.file.write(np.ascontiguousarray(block.T, dtype=np.float32).tobytes())
        except OSError as problem:
            raise write_error(problem, self.shown) from None

    def replay(self, writer: StemWriter, gain: float) -> None:
        """Write the staged samples, times ``gain``, to ``writer``."""
        self.file.flush()
        self.file.seek(0)
        while chunk := self.file.read(_STAGE_BLOCK * self.channels * 4):
            frames = np.frombuffer(chunk, np.float32).reshape(-1, self.channels).T
            writer.write(frames * np.float32(gain))

    def remove(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


class TrackWriter:
    """Writes the stems of one track (``outputs``: stem -> path or ``-``) and commits them together.

    Use as a context manager: leaving it without :meth:`commit` (an error, Ctrl-C) removes every
    temporary file and leaves the targets as they were.
    """

    def __init__(
        self,
        outputs: dict[str, str],
        sample_rate: int,
        channels: int,
        fmt: str,
        subtype: str,
        clip_mode: str = "rescale",
    ) -> None:
        if clip_mode not in CLIP_MODES:
            raise SeparateError(f"unknown --clip-mode '{clip_mode}' (choose {' or '.join(CLIP_MODES)})")
        self.mode = clip_mode if has_full_scale(subtype) else "none"
        self.peak = 0.0
        self.clipped = 0
        self.gain = 1.0
        self._cleanup = ExitStack()
        self.writers: dict[str, StemWriter] = {}
        self.stages: dict[str, _Stage] = {}
        try:  # outside the deferral: a Ctrl-C held during it is raised as the deferral ends
            with interrupts_deferred():
                for name, path in outputs.items():
                    writer = StemWriter(path, sample_rate, channels, fmt, subtype)
                    self._cleanup.callback(writer.abort)
                    self.writers[name] = writer
                    if self.mode == "rescale":
                        self.stages[name] = _Stage(writer, channels)
                        self._cleanup.callback(self.stages[name].remove)
        except BaseException:
            self._cleanup.close()
            raise

    def write(self, name: str, block: np.ndarray) -> None:
        """block: [C, n] float samples of stem ``name``."""
        if block.size:
            self.peak = max(self.peak, float(np.abs(block).max()))
        if self.mode == "rescale":
            self.stages[name].write(block)
            return
        if self.mode == "clamp":
            self.clipped += int(np.count_nonzero(np.abs(block) > 1.0))
        self.writers[name].write(block)

    def commit(self) -> None:
        """Apply the track's gain (rescale), then publish every stem or none."""
        if self.mode == "rescale":
            self.gain = 1.0 / self.peak if self.peak > 1.0 else 1.0
            for name, stage in self.stages.items():
                stage.replay(self.writers[name], self.gain)
        commit_stems(list(self.writers.values()))

    @property
    def levels(self) -> dict[str, Any]:
        """``{"mode", "peak", "gain_db", "clipped"}``: what fitting the format did to this track."""
        gain_db = 20 * math.log10(self.gain) if self.gain < 1.0 else 0.0
        return {"mode": self.mode, "peak": self.peak, "gain_db": gain_db, "clipped": self.clipped}

    def __enter__(self) -> TrackWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cleanup.close()
