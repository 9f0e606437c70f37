"""LibriMix (Libri2Mix, Libri3Mix) and the many-speaker LibriJMix, read from their CSV metadata.

``root`` is a ``Libri{J}Mix/wav{8k,16k}/{min,max}`` folder (holding ``metadata/``) or the metadata
folder itself. The CSV ``metadata/mixture_<subset>_<mix_clean|mix_both|mix_single>.csv`` has the
columns ``mixture_ID, mixture_path, source_1_path .. source_J_path, [noise_path,] length``
(SPEC §8.3). Paths may be absolute or relative to the dataset root; an absolute path that no
longer exists (the corpus was moved) is looked up as ``<subset>/<folder>/<file>`` under ``root``.
Mixture IDs code the speakers (:func:`librimix_speakers`), so speaker remixing never pairs a speaker
with itself.
"""

from __future__ import annotations

import csv
import os
import re
from typing import Any

from separate.data._base import (
    Item,
    SeparationDataset,
    check_lengths,
    numbered_speakers,
    resolve_options,
    resolve_root,
    split_name,
)
from separate.errors import SeparateError

#: Task -> mixture type in the CSV name (asteroid's task names, SPEC §8.2).
TASKS = {
    "sep_clean": "mix_clean",
    "sep_noisy": "mix_both",
    "enh_single": "mix_single",
    "mix_clean": "mix_clean",
    "mix_both": "mix_both",
    "mix_single": "mix_single",
}
SPLIT_ALIASES = {
    "train-100": "train-100",
    "train-360": "train-360",
    "dev": "dev",
    "valid": "dev",
    "validation": "dev",
    "val": "dev",
    "cv": "dev",
    "test": "test",
    "tt": "test",
}
_SOURCE_COLUMN = re.compile(r"^source_(\d+)_path$")


def _metadata_dir(root: str) -> str:
    nested = os.path.join(root, "metadata")
    if os.path.isdir(nested):
        return nested
    if any(name.startswith("mixture_") and name.endswith(".csv") for name in os.listdir(root)):
        return root
    raise SeparateError(f"no LibriMix metadata under {root} (expected metadata/mixture_<subset>_<type>.csv)")


def _subset(split: str, metadata: str, mixture_type: str) -> str:
    if split == "train":
        found = sorted(
            name[len("mixture_") : -len(f"_{mixture_type}.csv")]
            for name in os.listdir(metadata)
            if name.startswith("mixture_train") and name.endswith(f"_{mixture_type}.csv")
        )
        if not found:
            raise SeparateError(f"no training subset (mixture_train-*_{mixture_type}.csv) in {metadata}")
        if len(found) > 1:
            raise SeparateError(f"split 'train' is ambiguous in {metadata} ({', '.join(found)}); name one")
        return found[0]
    return split_name(split, SPLIT_ALIASES, metadata)


def librimix_speakers(name: str) -> tuple[str, ...] | None:
    """Speakers coded in a LibriMix mixture ID ``<spk>-<chapter>-<utt>_<spk>-<chapter>-<utt>[...]``;
    None for IDs that do not follow that pattern."""
    fields = [part.split("-") for part in name.split("_")]
    if len(fields) < 2 or any(len(f) != 3 or not all(x.isdigit() for x in f) for f in fields):
        return None
    return tuple(f[0] for f in fields)


class _PathResolver:
    """Turns CSV paths into existing files: absolute, relative to one of the candidate bases, or
    re-rooted by their last three components."""

    def __init__(self, root: str, wav_dir: str) -> None:
        corpus_dir = os.path.dirname(os.path.dirname(wav_dir))
        self.wav_dir = wav_dir
        self.bases = list(dict.fromkeys([root, wav_dir, corpus_dir, os.path.dirname(corpus_dir)]))

    def __call__(self, path: str) -> str:
        if os.path.isabs(path):
            if os.path.exists(path):
                return path
            moved = os.path.join(self.wav_dir, *path.replace("\\", "/").split("/")[-3:])
            if os.path.exists(moved):
                return moved
            raise SeparateError(f"missing file: {path} (also not found as {moved})")
        for base in self.bases:
            candidate = os.path.join(base, path)
            if os.path.exists(candidate):
                return candidate
        raise SeparateError(f"missing file: {path} (looked under {', '.join(self.bases)})")


class LibriMixDataset(SeparationDataset):
    """LibriMix mixtures listed in a ``mixture_<subset>_<type>.csv``.

    Args:
        root: ``Libri{J}Mix/wav8k/min``-like folder (with ``metadata/``) or the metadata folder.
        split: ``train-100``, ``train-360``, ``dev``, ``test``; ``train`` when only one training
            subset exists; ``valid``/``cv`` mean ``dev``.
        task: ``sep_clean`` (mix_clean), ``sep_noisy`` (mix_both) or ``enh_single`` (mix_single).
        n_src: expected number of speakers; None takes it from the ``source_<j>_path`` columns.
        **options: shared options of :class:`SeparationDataset`.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        task: str = "sep_clean",
        n_src: int | None = None,
        **options: Any,
    ) -> None:
        root = resolve_root(root, "LibriMix")
        if task not in TASKS:
            raise SeparateError(f"unknown LibriMix task '{task}' (known: {', '.join(TASKS)})")
        mixture_type = TASKS[task]
        metadata = _metadata_dir(root)
        subset = _subset(split, metadata, mixture_type)
        csv_path = os.path.join(metadata, f"mixture_{subset}_{mixture_type}.csv")
        if not os.path.isfile(csv_path):
            raise SeparateError(f"missing file: {csv_path}")
        with open(csv_path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows:
            raise SeparateError(f"no mixtures found in {csv_path}")
        columns = sorted(
            (int(match.group(1)), name) for name in rows[0] if (match := _SOURCE_COLUMN.match(name))
        )
        if [number for number, _ in columns] != list(
            range(1, len(columns) + 1)
        ) or "mixture_path" not in rows[0]:
            raise SeparateError(f"{csv_path} needs columns mixture_path, source_1_path .. source_J_path")
        if n_src is not None and n_src != len(columns):
            raise SeparateError(f"n_src={n_src} but {csv_path} lists {len(columns)} sources")
        wav_dir = os.path.dirname(os.path.abspath(metadata))
        resolve = _PathResolver(root, wav_dir)
        items = []
        rate = None
        for number, row in enumerate(rows):
            mixture = resolve(row["mixture_path"])
            components = tuple(resolve(row[name]) for _, name in columns)
            name = row.get("mixture_ID") or os.path.splitext(os.path.basename(mixture))[0]
            if rate is None or not row.get("length"):
                frames, rate = check_lengths(name, [mixture, *components])
                if row.get("length") and int(float(row["length"])) != frames:
                    raise SeparateError(
                        f"mismatched lengths: {csv_path} row {number + 1} says {row['length']} samples "
                        f"but {mixture} has {frames}"
                    )
            else:
                frames = int(float(row["length"]))
            speakers = librimix_speakers(name) or numbered_speakers(name, len(components))
            items.append(Item(name, components, mixture, frames, rate, speakers))
        super().__init__(
            items,
            [f"s{j + 1}" for j in range(len(columns))],
            where=csv_path,
            noisy=mixture_type != "mix_clean",
            **resolve_options(options, training=subset.startswith("train")),
        )
