"""Evaluation reports and their files, written atomically (a killed run leaves none half-written).

A report's ``to_dict()`` is what ``--json`` prints and ``summary.json`` holds; ``complete`` is False on
torchrun ranks other than 0, which only write their own per-item files.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from separate.runtime import atomic_write, atomic_write_text


@dataclass
class MusicReport:
    """Per-track medians (track -> target -> metric) and the two aggregations over tracks."""

    subset: str
    backend: str
    tracks: dict[str, dict[str, dict[str, float]]]
    aggregate: dict[str, dict[str, dict[str, float]]]
    complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": "BSSEval v4 images, 1 s windows and hop, 512-tap filters (SiSEC 2018)",
            "subset": self.subset,
            "backend": self.backend,
            "complete": self.complete,
            "sisec18": self.aggregate["sisec18"],
            "pooled": self.aggregate["pooled"],
            "tracks": self.tracks,
        }


@dataclass
class SpeechReport:
    """One row per utterance, a summary (metric -> mean, median, 95 % interval of the mean) and the
    spread over speaker pairs."""

    rows: list[dict[str, Any]]
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    complete: bool = True
    #: SI-SNRi per speaker pair (:func:`separate.evaluation.speech.by_speaker_pair`); empty when unknown.
    pairs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        document = {"utterances": len(self.rows), "complete": self.complete, "summary": self.summary}
        return {**document, "speaker_pairs": self.pairs} if self.pairs else document


def write_json(path: Path, document: Any) -> None:
    atomic_write_text(path, json.dumps(document, indent=2, allow_nan=True) + "\n", encoding="utf-8")


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    with atomic_write(path) as partial, open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: Path, numeric: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of a CSV written by :func:`write_csv`, the ``numeric`` columns as floats."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for column in numeric:
            row[column] = float(row[column])
    return rows
