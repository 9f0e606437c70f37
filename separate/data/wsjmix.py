"""WSJ0-2mix / WSJ0-3mix, WHAM! and LRS2-2Mix: folder layouts ``root/{tr,cv,tt}/{mix*,s1..sJ}/*.wav``.

``root`` is the folder holding ``tr``, ``cv`` and ``tt`` (for WSJ0-mix e.g.
``wsj0-mix/2speakers/wav8k/min``). Every file in the mixture folder must have a file of the same
name in each source folder, of the same length (SPEC §8.1, §8.2, §8.4). WSJ0-mix and WHAM! file
names code the speakers (:func:`wsj0_speakers`), as do the names of ``examples/corpora/speech.py``
(:func:`~separate.data._base.numbered_speakers`), so speaker remixing never pairs a speaker with itself.
"""

from __future__ import annotations

import os
import re
from typing import Any

from separate.audio import AUDIO_EXTENSIONS
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

SPLITS = ("tr", "cv", "tt")
SPLIT_ALIASES = {
    "tr": "tr",
    "train": "tr",
    "cv": "cv",
    "valid": "cv",
    "validation": "cv",
    "val": "cv",
    "dev": "cv",
    "tt": "tt",
    "test": "tt",
}

#: WHAM! task -> (mixture folder, source folders or None for s1..sJ, mixture holds noise) [SPEC §8.2].
WHAM_TASKS: dict[str, tuple[str, tuple[str, ...] | None, bool]] = {
    "sep_clean": ("mix_clean", None, False),
    "sep_noisy": ("mix_both", None, True),
    "enh_single": ("mix_single", ("s1",), True),
    "enh_both": ("mix_both", ("mix_clean",), True),
}

_SOURCE_FOLDER = re.compile(r"^s(\d+)$")
#: A WSJ0 utterance id: 8 lowercase letters and digits, not all digits (``01aa010k``, ``011c0201``).
_WSJ0_UTTERANCE = re.compile(r"^(?![0-9]{8}$)[0-9a-z]{8}$")


def source_folders(split_dir: str) -> list[str]:
    """The ``s1 .. sJ`` folders of a split, in numeric order; they must be consecutive from s1."""
    numbers = sorted(
        int(match.group(1))
        for name in os.listdir(split_dir)
        if (match := _SOURCE_FOLDER.match(name)) and os.path.isdir(os.path.join(split_dir, name))
    )
    if not numbers:
        raise SeparateError(f"no source folders s1, s2, ... under {split_dir}")
    if numbers != list(range(1, len(numbers) + 1)):
        found = ", ".join(f"s{n}" for n in numbers)
        raise SeparateError(f"source folders under {split_dir} must be s1..sJ without gaps, found {found}")
    return [f"s{n}" for n in numbers]


def wsj0_speakers(name: str) -> tuple[str, ...] | None:
    """Speakers coded in a WSJ0-mix (and WHAM!) mixture name ``<utt1>_<snr1>_<utt2>_<snr2>[...]``:
    the first three characters of each WSJ0 utterance id (``01aa010k`` -> ``01a``); None for names
    that do not follow that pattern."""
    parts = name.split("_")
    if len(parts) < 4 or len(parts) % 2:
        return None
    utterances, gains = parts[0::2], parts[1::2]
    if not all(_is_number(gain) for gain in gains) or not all(map(_WSJ0_UTTERANCE.match, utterances)):
        return None
    return tuple(utterance[:3] for utterance in utterances)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _audio_files(folder: str) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.lower().endswith(AUDIO_EXTENSIONS))


class WsjMixDataset(SeparationDataset):
    """Mixtures in ``root/<split>/<mixture folder>`` with sources in ``root/<split>/s1..sJ``.

    Args:
        root: folder holding ``tr``, ``cv``, ``tt``.
        split: ``tr``/``cv``/``tt`` or ``train``/``valid``/``test``.
        task: None for WSJ0-2mix and LRS2-2Mix (mixtures in ``mix``); a WHAM! task
            (``sep_clean``, ``sep_noisy``, ``enh_single``, ``enh_both``) picks the folders of SPEC §8.2.
        n_src: expected number of speakers; None takes it from the ``s*`` folders.
        **options: shared options of :class:`SeparationDataset` (sample_rate, segment, short,
            random_crops (default: only for ``tr``), mono, augment, seed, examples_per_item).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "tr",
        *,
        task: str | None = None,
        n_src: int | None = None,
        **options: Any,
    ) -> None:
        root = resolve_root(root, "WSJ0-mix")
        if not any(os.path.isdir(os.path.join(root, name)) for name in SPLITS):
            raise SeparateError(f"no tr/cv/tt folders under {root}")
        folder = split_name(split, SPLIT_ALIASES, root)
        split_dir = os.path.join(root, folder)
        if not os.path.isdir(split_dir):
            raise SeparateError(f"split '{split}' has no folder {split_dir}")
        if task is None:
            mixture_folder, sources, noisy = "mix", None, False
        elif task in WHAM_TASKS:
            mixture_folder, sources, noisy = WHAM_TASKS[task]
        else:
            raise SeparateError(f"unknown WHAM! task '{task}' (known: {', '.join(WHAM_TASKS)})")
        folders = list(sources) if sources is not None else source_folders(split_dir)
        if n_src is not None and sources is None and n_src != len(folders):
            raise SeparateError(f"n_src={n_src} but {split_dir} has {len(folders)} source folders")
        mixture_dir = os.path.join(split_dir, mixture_folder)
        if not os.path.isdir(mixture_dir):
            raise SeparateError(f"no mixture folder {mixture_dir}")
        items = []
        for name in _audio_files(mixture_dir):
            mixture = os.path.join(mixture_dir, name)
            components = tuple(os.path.join(split_dir, source, name) for source in folders)
            frames, rate = check_lengths(name, [mixture, *components])
            stem = os.path.splitext(name)[0]
            speakers = None
            if sources is None:
                speakers = wsj0_speakers(stem) or numbered_speakers(stem, len(components))
            items.append(Item(stem, components, mixture, frames, rate, speakers))
        super().__init__(
            items,
            [f"s{j + 1}" for j in range(len(folders))] if sources is None else list(folders),
            where=mixture_dir,
            noisy=noisy,
            **resolve_options(options, training=folder == "tr"),
        )
