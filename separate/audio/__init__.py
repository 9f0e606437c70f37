"""All audio I/O: inputs in blocks, stems out, resampling, and spans of files for the datasets.

* :mod:`.inputs`: :func:`open_input` (a file, or ``-`` for stdin) -> :class:`AudioInput` blocks.
* :mod:`.outputs`: :class:`StemWriter` (atomic stems, or stdout) and :func:`output_subtype`.
* :mod:`.resample`: :func:`resampled_length` (the one length rule) and :func:`resample_blocks`.
* :mod:`.spans`: :func:`probe` and :func:`read_span` (a span of a file at another rate).
"""

from separate.audio.inputs import BLOCK_FRAMES, STDIO, AudioInput, open_input
from separate.audio.outputs import SUBTYPES, StemWriter, output_subtype
from separate.audio.resample import resample_blocks, resampled_length
from separate.audio.spans import AUDIO_EXTENSIONS, FileInfo, downmix, fit_length, probe, read_span

__all__ = [
    "AUDIO_EXTENSIONS",
    "BLOCK_FRAMES",
    "STDIO",
    "SUBTYPES",
    "AudioInput",
    "FileInfo",
    "StemWriter",
    "downmix",
    "fit_length",
    "open_input",
    "output_subtype",
    "probe",
    "read_span",
    "resample_blocks",
    "resampled_length",
]
