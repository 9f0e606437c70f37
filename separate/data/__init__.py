"""Datasets of ``(mix: [C, T], sources: [S, C, T])`` float32 for training and evaluation.

    >>> from separate.data import make_dataset
    >>> train = make_dataset("wsj0mix", "wsj0-mix/2speakers/wav8k/min", "train", segment=4.0)
    >>> valid = make_dataset("musdbhq", "musdb18hq", "valid", targets=["vocals", "accompaniment"])

Layouts: ``wsj0mix``, ``wham``, ``lrs2mix`` (:mod:`.wsjmix`), ``librimix`` (:mod:`.librimix`),
``musdb`` and ``musdbhq`` (:mod:`.musdb`), ``folder`` (:mod:`.folder`), ``synthetic``
(:mod:`.synthetic`). File-based datasets share the options of :class:`SeparationDataset`:
``sample_rate``, ``segment``, ``short``, ``random_crops``, ``mono``, ``augment``, ``seed``,
``examples_per_item``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from separate.data._base import STANDARD_SPLITS, Item, SeparationDataset
from separate.data.augment import (
    ChannelSwap,
    Compose,
    RandomGain,
    Remix,
    build_augmentation,
    music_augmentation,
    speech_augmentation,
)
from separate.data.dynamic import DynamicMixDataset, fixed_mixtures_root
from separate.data.folder import FolderDataset
from separate.data.librimix import LibriMixDataset
from separate.data.musdb import VALIDATION_TRACKS, MusdbDataset, MusdbHQDataset, select_tracks
from separate.data.synthetic import SyntheticMixDataset, split_seed, write_synthetic_corpus
from separate.data.wsjmix import WsjMixDataset
from separate.errors import SeparateError

__all__ = [
    "LAYOUTS",
    "ChannelSwap",
    "DynamicMixDataset",
    "Compose",
    "FolderDataset",
    "Item",
    "LibriMixDataset",
    "MusdbDataset",
    "MusdbHQDataset",
    "RandomGain",
    "Remix",
    "SeparationDataset",
    "SyntheticMixDataset",
    "VALIDATION_TRACKS",
    "WsjMixDataset",
    "build_augmentation",
    "make_dataset",
    "music_augmentation",
    "pad_collate",
    "select_tracks",
    "speech_augmentation",
    "write_synthetic_corpus",
]


def _wham(root: Any, split: str, **kwargs: Any) -> WsjMixDataset:
    kwargs.setdefault("task", "sep_noisy")
    return WsjMixDataset(root, split, **kwargs)


def _synthetic(root: Any, split: str, **kwargs: Any) -> SyntheticMixDataset:
    if split not in STANDARD_SPLITS:
        raise SeparateError(
            f"unknown split '{split}' for synthetic data (known: {', '.join(STANDARD_SPLITS)})"
        )
    kwargs["seed"] = split_seed(kwargs.get("seed", 0), STANDARD_SPLITS[split])
    return SyntheticMixDataset(**kwargs)


_TRAIN_SPLITS = {"train", "tr"}
#: Options of the fixed validation/test lists of a dynamic-mixing corpus (read as WSJ0-mix folders).
_FIXED_OPTIONS = {"sample_rate", "segment", "n_src", "short", "mono", "seed"}


def _dynamic(root: Any, split: str, **kwargs: Any) -> Dataset:
    """Training draws fresh mixtures; validation and test read the corpus's fixed mixture lists."""
    if split in _TRAIN_SPLITS:
        return DynamicMixDataset(root, "train", **kwargs)
    rate = kwargs.get("sample_rate", 8000)
    fixed = {key: value for key, value in kwargs.items() if key in _FIXED_OPTIONS}
    return WsjMixDataset(fixed_mixtures_root(root, rate), split, **fixed)


LAYOUTS: dict[str, Callable[..., Dataset]] = {
    "wsj0mix": WsjMixDataset,
    "wham": _wham,
    "lrs2mix": WsjMixDataset,
    "librimix": LibriMixDataset,
    "musdb": MusdbDataset,
    "musdbhq": MusdbHQDataset,
    "folder": FolderDataset,
    "synthetic": _synthetic,
    "dynamic": _dynamic,
}


def make_dataset(layout: str, root: str | os.PathLike[str] | None, split: str, **kwargs: Any) -> Dataset:
    """Build the dataset of ``split`` of a corpus stored in ``layout`` under ``root``.

    ``wham`` defaults to ``task="sep_noisy"`` (mix_both -> s1, s2, as TDANet). ``synthetic``
    ignores ``root`` and takes :class:`SyntheticMixDataset` arguments; each split gets its own
    seed derived from ``seed``. Unknown keyword arguments raise a :class:`SeparateError`.
    """
    if layout not in LAYOUTS:
        raise SeparateError(f"unknown dataset layout '{layout}' (known: {', '.join(LAYOUTS)})")
    if layout != "synthetic" and root is None:
        raise SeparateError(f"the {layout} layout needs a dataset root folder")
    try:
        return LAYOUTS[layout](root, split, **kwargs)
    except TypeError as error:
        if "unexpected keyword argument" in str(error):
            raise SeparateError(f"{layout} datasets do not take that option: {error}") from error
        raise


def pad_collate(batch: Sequence[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
    """Batch examples of different lengths (``segment=None``) by zero-padding at the end.

    Returns ``(mix: [B, C, T_max], sources: [B, S, C, T_max], lengths: [B])``.
    """
    lengths = torch.tensor([mix.shape[-1] for mix, _ in batch])
    longest = int(lengths.max())
    mixes = torch.stack([torch.nn.functional.pad(mix, (0, longest - mix.shape[-1])) for mix, _ in batch])
    sources = torch.stack([torch.nn.functional.pad(src, (0, longest - src.shape[-1])) for _, src in batch])
    return mixes, sources, lengths
