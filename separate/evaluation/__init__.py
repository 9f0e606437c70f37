"""Scoring separation quality: the pipeline behind ``separate eval``.

* :mod:`.bsseval`: BSSEval v4 in torch (vectorised over frames and sources), museval as a reference;
* :mod:`.music`: MUSDB18's SiSEC 2018 protocol and :func:`evaluate_musdb`;
* :mod:`.speech`: SI-SNR(i), SDR(i) with the best assignment and :func:`evaluate_speech`;
* :mod:`.runner`: items over worker processes and torchrun ranks, references, estimate folders;
* :mod:`.reports`: the reports and their files.
"""

from separate.evaluation.music import aggregate_music, evaluate_musdb, musdb_frames
from separate.evaluation.reports import MusicReport, SpeechReport
from separate.evaluation.speech import evaluate_speech, speech_scores, summarize

__all__ = [
    "MusicReport",
    "SpeechReport",
    "aggregate_music",
    "evaluate_musdb",
    "evaluate_speech",
    "musdb_frames",
    "speech_scores",
    "summarize",
]
