"""Stem outputs: soundfile formats, and writers that publish a stem only once it is complete.

A :class:`StemWriter` writes block by block to a hidden temporary file beside the target and renames
it into place on :meth:`StemWriter.commit` (or copies it to stdout for ``-``); :meth:`StemWriter.abort`
removes it, so a failed separation leaves no partial stem behind.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from separate.audio.inputs import STDIO
from separate.errors import SeparateError

SUBTYPES = {
    ("wav", 16): "PCM_16",
    ("wav", 24): "PCM_24",
    ("wav", 32): "FLOAT",
    ("flac", 16): "PCM_16",
    ("flac", 24): "PCM_24",
}


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
