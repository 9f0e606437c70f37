"""Generic folder layout: ``root/[<split>/]<item>/{mixture.wav, <source>.wav, ...}``.

Source names are given, or discovered as the audio files next to the mixture (the same set in
every item). Any extension soundfile reads works (wav, flac, ogg). With ``mixture=None`` no
mixture file is needed: the mixture is the sum of the sources.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from separate.audio import AUDIO_EXTENSIONS
from separate.data._base import Item, SeparationDataset, check_lengths, resolve_options, resolve_root
from separate.errors import SeparateError


def _audio_stems(folder: str) -> dict[str, str]:
    """Audio files of a folder by name without extension."""
    stems: dict[str, str] = {}
    for name in sorted(os.listdir(folder)):
        stem, extension = os.path.splitext(name)
        if extension.lower() in AUDIO_EXTENSIONS:
            if stem in stems:
                raise SeparateError(f"{folder} has two audio files named '{stem}' ({stems[stem]}, {name})")
            stems[stem] = name
    return stems


class FolderDataset(SeparationDataset):
    """One folder per item holding the mixture and one file per source.

    Args:
        root: the dataset folder.
        split: a sub-folder of ``root`` holding the items (``train``, ``valid``...); None uses ``root``.
        sources: source file names without extension, in output order; None discovers them
            (sorted) from the first item.
        mixture: the mixture's file name without extension; None sums the sources instead.
        **options: shared options of :class:`SeparationDataset` (random crops default on for
            ``split`` None or ``train``).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str | None = None,
        *,
        sources: Sequence[str] | None = None,
        mixture: str | None = "mixture",
        **options: Any,
    ) -> None:
        base = resolve_root(root, "folder")
        if split is not None:
            base = os.path.join(base, split)
            if not os.path.isdir(base):
                raise SeparateError(f"split '{split}' has no folder {base}")
        folders = sorted(name for name in os.listdir(base) if os.path.isdir(os.path.join(base, name)))
        names = list(sources) if sources is not None else None
        items = []
        for folder in folders:
            path = os.path.join(base, folder)
            stems = _audio_stems(path)
            found = sorted(stem for stem in stems if stem != mixture)
            if names is None:
                if not found:
                    raise SeparateError(f"no source files next to the mixture in {path}")
                names = found
            elif sources is None and found != names:
                raise SeparateError(
                    f"{path} has sources {found} but {os.path.join(base, folders[0])} has {names}; "
                    "every item needs the same source files"
                )
            missing = [name for name in [*names, *([mixture] if mixture else [])] if name not in stems]
            if missing:
                raise SeparateError(f"missing file: {os.path.join(path, missing[0])}.* (item {folder})")
            components = tuple(os.path.join(path, stems[name]) for name in names)
            mixture_path = os.path.join(path, stems[mixture]) if mixture else None
            frames, rate = check_lengths(folder, [*([mixture_path] if mixture_path else []), *components])
            items.append(Item(folder, components, mixture_path, frames, rate))
        super().__init__(
            items,
            names or [],
            where=base,
            **resolve_options(options, training=split in (None, "train", "tr")),
        )
