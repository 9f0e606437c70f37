"""Stem outputs: soundfile formats, and writers that publish a stem only once it is complete.

A :class:`StemWriter` writes block by block to a hidden temporary file beside the target (for ``-``,
in the temporary folder); :func:`commit_stems` renames every stem of a track into place or none of
them, and :meth:`StemWriter.abort` removes the temporary file, so a failed separation leaves no
partial stem behind. Write errors become one-line :class:`SeparateError` s naming the target.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from separate.audio.inputs import STDIO
from separate.audio.ioerrors import write_error
from separate.errors import SeparateError
from separate.runtime import interrupts_deferred

SUBTYPES = {
    ("wav", 16): "PCM_16",
    ("wav", 24): "PCM_24",
    ("wav", 32): "FLOAT",
    ("flac", 16): "PCM_16",
    ("flac", 24): "PCM_24",
}
#: Lossy formats (soundfile >= 0.12 with libsndfile >= 1.1): ``--bits`` does not apply.
LOSSY_SUBTYPES = {"mp3": "MPEG_LAYER_III", "ogg": "VORBIS"}
FORMATS = ("wav", "flac", "mp3", "ogg")


def output_subtype(fmt: str, bits: int) -> str:
    """soundfile subtype for ``--format``/``--bits``."""
    if fmt not in FORMATS:
        raise SeparateError(f"unsupported --format '{fmt}' (choose {', '.join(FORMATS)})")
    if fmt in LOSSY_SUBTYPES:
        return LOSSY_SUBTYPES[fmt]
    if (fmt, bits) not in SUBTYPES:
        allowed = ", ".join(f"{f}/{b}" for f, b in SUBTYPES)
        raise SeparateError(f"unsupported output format {fmt} with {bits} bits (choose from {allowed})")
    return SUBTYPES[(fmt, bits)]


def has_full_scale(subtype: str) -> bool:
    """Whether the format cannot hold samples beyond [-1, 1] (integer PCM and the lossy codecs)."""
    return subtype not in ("FLOAT", "DOUBLE")


def file_mode() -> int:
    """Permissions of a new file under the process's umask (``0o666 & ~umask``)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


class StemWriter:
    """Writes one stem block by block to a hidden temporary file.

    ``path == "-"`` publishes the finished file on stdout (:meth:`publish`); other paths are renamed
    into place by :func:`commit_stems`. :meth:`abort` removes the partial file and the folders this
    writer made for it, where they are left empty.
    """

    def __init__(self, path: str, sample_rate: int, channels: int, fmt: str, subtype: str) -> None:
        self.to_stdout = path == STDIO
        self.target = None if self.to_stdout else Path(path)
        self.shown = "stdout" if self.target is None else str(self.target)
        self.clip = has_full_scale(subtype)
        self.committed = False
        self.created_folders: list[Path] = []
        try:
            if self.target is None:
                folder, prefix = tempfile.gettempdir(), "separate-stdout-"
            else:
                self.created_folders = missing_folders(self.target.parent)
                self.target.parent.mkdir(parents=True, exist_ok=True)
                folder, prefix = str(self.target.parent), f".{self.target.name}."
            handle, partial = tempfile.mkstemp(prefix=prefix, suffix=f".{fmt}.partial", dir=folder)
            self.partial = Path(partial)
            os.fchmod(handle, file_mode())
            os.close(handle)
            self.file = sf.SoundFile(
                partial, "w", samplerate=sample_rate, channels=channels, format=fmt.upper(), subtype=subtype
            )
        except (OSError, sf.LibsndfileError) as problem:
            if hasattr(self, "partial"):
                self.partial.unlink(missing_ok=True)
            remove_empty_folders(self.created_folders)
            raise write_error(problem, self.shown) from None

    def write(self, block: np.ndarray) -> None:
        """block: [C, n] float (clamped to [-1, 1] for formats with a full scale)."""
        if self.clip:
            block = np.clip(block, -1.0, 1.0)
        try:
            self.file.write(np.ascontiguousarray(block.T))
        except (OSError, sf.LibsndfileError) as problem:
            raise write_error(problem, self.shown) from None

    def close(self) -> None:
        """Finish the partial file (headers, encoder flush)."""
        try:
            self.file.close()
        except (OSError, sf.LibsndfileError) as problem:
            raise write_error(problem, self.shown) from None

    def publish(self) -> None:
        """Copy the finished partial file to stdout, then remove it."""
        try:
            with open(self.partial, "rb") as source:
                shutil.copyfileobj(source, sys.stdout.buffer, length=1 << 20)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            raise
        except OSError as problem:
            raise write_error(problem, "stdout") from None
        finally:
            self.partial.unlink(missing_ok=True)

    def abort(self) -> None:
        if not self.file.closed:
            try:
                self.file.close()
            except (OSError, sf.LibsndfileError):
                pass
        if not self.committed:
            self.partial.unlink(missing_ok=True)
            remove_empty_folders(self.created_folders)


def missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its ancestors that do not exist yet, deepest first."""
    return [path for path in (folder, *folder.parents) if not path.exists()]


def remove_empty_folders(folders: Sequence[Path]) -> None:
    """Remove ``folders`` in order; stop at the first that is not empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            return


def commit_stems(writers: Sequence[StemWriter]) -> None:
    """Publish every stem of a track or none: check every target, rename each finished file into
    place (an existing file is set aside first), and on any failure undo the renames already done."""
    for writer in writers:
        writer.close()
    files = [writer for writer in writers if writer.target is not None]
    for writer in files:
        assert writer.target is not None
        if writer.target.is_dir():
            raise SeparateError(f"cannot write {writer.target}: a folder of that name is in the way")
    with interrupts_deferred():
        done: list[tuple[StemWriter, Path | None]] = []
        current = files[0] if files else None
        try:
            for writer in files:
                assert writer.target is not None
                current = writer
                backup = None
                if writer.target.exists():
                    backup = writer.partial.with_suffix(".previous")
                    os.replace(writer.target, backup)
                done.append((writer, backup))
                os.replace(writer.partial, writer.target)
                writer.committed = True
        except OSError as problem:
            for writer, backup in reversed(done):
                assert writer.target is not None
                if writer.committed:
                    writer.target.unlink(missing_ok=True)
                    writer.committed = False
                if backup is not None:
                    os.replace(backup, writer.target)
            raise write_error(problem, current.shown if current else "") from None
        for _, backup in done:
            if backup is not None:
                backup.unlink(missing_ok=True)
    for writer in writers:
        if writer.to_stdout:
            writer.publish()
