"""All audio I/O: inputs in blocks, stems out, resampling, and spans of files for the datasets.

* :mod:`.inputs`: :func:`open_input` (a file, or ``-`` for stdin) -> :class:`AudioInput` blocks.
* :mod:`.outputs`: :class:`StemWriter` (atomic stems, or stdout), :func:`commit_stems` (all or none)
  and :func:`output_subtype`; :mod:`.tracks`: :class:`TrackWriter` (one track's stems, fitted to the
  format's range); :mod:`.plan`: :func:`plan_outputs` (every path, checked before any work).
* :mod:`.ffmpeg`: m4a, opus, wma... decoded by the ffmpeg program in blocks.
* :mod:`.resample`: :func:`resampled_length` (the one length rule) and :func:`resample_blocks`.
* :mod:`.spans`: :func:`probe` and :func:`read_span` (a span of a file at another rate).
"""

from separate.audio.inputs import BLOCK_FRAMES, STDIO, AudioInput, open_input
from separate.audio.outputs import FORMATS, SUBTYPES, StemWriter, commit_stems, output_subtype
from separate.audio.plan import TrackPlan, plan_outputs
from separate.audio.resample import resample_blocks, resampled_length
from separate.audio.spans import AUDIO_EXTENSIONS, FileInfo, downmix, fit_length, probe, read_span
from separate.audio.tracks import CLIP_MODES, TrackWriter

__all__ = [
    "AUDIO_EXTENSIONS",
    "CLIP_MODES",
    "FORMATS",
    "BLOCK_FRAMES",
    "STDIO",
    "SUBTYPES",
    "AudioInput",
    "FileInfo",
    "StemWriter",
    "TrackPlan",
    "TrackWriter",
    "commit_stems",
    "downmix",
    "fit_length",
    "open_input",
    "output_subtype",
    "plan_outputs",
    "probe",
    "read_span",
    "resample_blocks",
    "resampled_length",
]
