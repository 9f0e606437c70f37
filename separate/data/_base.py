"""The dataset machinery every file-based loader shares: cropping, resampling, augmentation.

A loader only builds a list of :class:`Item` (paths and lengths, never audio) and says how its
files ("components": speakers or stems) combine into the output sources. Everything else
(random or deterministic crops, dropping or padding short items, resampling, mono downmix,
augmentation with the mixture recomputed as the sum of the augmented components) lives here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, get_worker_info

from separate.audio import downmix, probe, read_span, resampled_length
from separate.data.augment import Augmentation, build_augmentation
from separate.errors import SeparateError
from separate.runtime import mix_seed

SHORT_POLICIES = ("drop", "pad")
#: Names of the train / valid / test splits of layouts that have exactly these three (MUSDB18, synthetic).
STANDARD_SPLITS = {
    "train": "train",
    "tr": "train",
    "valid": "valid",
    "validation": "valid",
    "val": "valid",
    "cv": "valid",
    "dev": "valid",
    "test": "test",
    "tt": "test",
}


@dataclass(frozen=True)
class Item:
    """One mixture on disk: where its files are and how long they are (at the files' own rate);
    ``speakers``: the speaker id of each component, where the corpus codes them (else None)."""

    name: str
    components: tuple[str, ...]
    mixture: str | None
    frames: int
    rate: int
    speakers: tuple[str, ...] | None = None


def numbered_speakers(name: str, count: int) -> tuple[str, ...] | None:
    """Speakers coded in a mixture name ``<number>_<voice>_<voice>...`` with ``count`` voices (the names
    ``examples/corpora/speech.py`` writes, e.g. ``0002_tuxpaintbg_asteriskallison``); None otherwise."""
    parts = name.split("_")
    if len(parts) != count + 1 or not parts[0].isdigit() or not all(parts[1:]):
        return None
    return tuple(parts[1:])


def check_lengths(item_name: str, paths: Sequence[str]) -> tuple[int, int]:
    """Probe every file of an item; all must exist and share length and rate. Returns (frames, rate)."""
    infos = [probe(path) for path in paths]
    first = infos[0]
    for path, info in zip(paths[1:], infos[1:], strict=True):
        if info.rate != first.rate:
            raise SeparateError(
                f"mismatched sample rates in {item_name}: {paths[0]} is {first.rate} Hz "
                f"but {path} is {info.rate} Hz"
            )
        if info.frames != first.frames:
            raise SeparateError(
                f"mismatched lengths in {item_name}: {paths[0]} has {first.frames} samples "
                f"but {path} has {info.frames}"
            )
    return first.frames, first.rate


class SeparationDataset(Dataset):
    """Items of ``(mix: [C, T], sources: [S, C, T])`` float32, read lazily from disk.

    Args:
        items: the indexed mixtures.
        sources: names of the S outputs.
        targets: for each output, the indices of the components summed into it
            (default: output s is component s).
        where: a description of the data (folder, CSV) used in error messages.
        sample_rate: rate of the returned audio; files at another rate are resampled with soxr.
            None keeps the files' rate (they must all share one).
        segment: seconds per example; None returns whole items.
        short: what to do with items shorter than ``segment``: ``"drop"`` them or zero-``"pad"`` them.
        random_crops: random crop offsets (training); False gives each item a fixed offset
            derived from ``seed`` (validation, test).
        mono: average the channels of every file.
        augment: callable on the components ``[K, C, T]`` or a preset name of
            :func:`separate.data.augment.build_augmentation` (drawing remixes from this dataset);
            the mixture is then their sum (plus, for noisy data, the original mixture's residual).
        noisy: the mixture holds more than the sum of the components (noise).
        seed: seed of the deterministic crops, and of the random crops drawn in the main process.
        examples_per_item: how many examples each item yields per epoch (music: crops per track).
    """

    def __init__(
        self,
        items: Sequence[Item],
        sources: Sequence[str],
        *,
        targets: Sequence[Sequence[int]] | None = None,
        where: str = "the dataset",
        sample_rate: int | None = None,
        segment: float | None = None,
        short: str = "drop",
        random_crops: bool = True,
        mono: bool = False,
        augment: str | Augmentation | None = None,
        noisy: bool = False,
        seed: int = 0,
        examples_per_item: int = 1,
    ) -> None:
        if not items:
            raise SeparateError(f"no mixtures found in {where}")
        if short not in SHORT_POLICIES:
            raise SeparateError(f"short must be 'drop' or 'pad', got '{short}'")
        if segment is not None and segment <= 0:
            raise SeparateError(f"segment must be positive seconds or None, got {segment}")
        if examples_per_item < 1:
            raise SeparateError(f"examples_per_item must be at least 1, got {examples_per_item}")
        self.items = list(items)
        self.sources = [str(name) for name in sources]
        self.n_components = len(self.items[0].components)
        self.targets = (
            [list(t) for t in targets] if targets is not None else [[s] for s in range(len(sources))]
        )
        if len(self.targets) != len(self.sources):
            raise ValueError("one target (list of component indices) is needed per source")
        self.where = where
        rates = sorted({item.rate for item in self.items})
        if sample_rate is None and len(rates) > 1:
            raise SeparateError(f"files in {where} have different sample rates {rates}; pass sample_rate")
        self.sample_rate = int(sample_rate) if sample_rate is not None else rates[0]
        self.segment = segment
        self.short = short
        self.random_crops = random_crops
        self.mono = mono
        self.noisy = noisy
        self.seed = seed
        self.examples_per_item = examples_per_item
        self.lengths = [resampled_length(item.frames, item.rate, self.sample_rate) for item in self.items]
        self.kept = self._select_items()
        self.channels = 1 if mono else self._probe_channels(self.items[0])
        self.knows_speakers = all(
            item.speakers is not None and len(item.speakers) == self.n_components for item in self.items
        )
        self.augment = build_augmentation(augment, self)
        self.set_epoch(0)

    @property
    def segment_samples(self) -> int | None:
        return None if self.segment is None else int(round(self.segment * self.sample_rate))

    def _select_items(self) -> list[int]:
        needed = self.segment_samples
        if needed is None or self.short == "pad":
            return list(range(len(self.items)))
        kept = [i for i, length in enumerate(self.lengths) if length >= needed]
        if not kept:
            longest = max(self.lengths) / self.sample_rate
            raise SeparateError(
                f"no mixture in {self.where} is at least {self.segment} s long (the longest is "
                f"{longest:.2f} s); use a shorter segment or short='pad'"
            )
        return kept

    def _probe_channels(self, item: Item) -> int:
        return probe(item.mixture or item.components[0]).channels

    def __len__(self) -> int:
        return len(self.kept) * self.examples_per_item

    def item_name(self, index: int) -> str:
        """Name (mixture ID, track name) of the item behind example ``index``."""
        return self.items[self.kept[index // self.examples_per_item]].name

    def set_epoch(self, epoch: int) -> None:
        """Restart the main-process stream of random crops at ``epoch`` (see :meth:`generator`)."""
        self._stream = torch.Generator().manual_seed(mix_seed(self.seed, epoch, 1))

    def generator(self, index: int) -> torch.Generator:
        """Randomness for example ``index``.

        Deterministic crops: a fixed stream per index. Random crops: a fresh seed drawn from torch's
        RNG inside DataLoader workers (seeded per worker and epoch by the loader), and from this
        dataset's own stream in the main process, so loading never touches the global RNG there.
        """
        generator = torch.Generator()
        if not self.random_crops:
            return generator.manual_seed(mix_seed(self.seed, index))
        source = None if get_worker_info() is not None else self._stream
        return generator.manual_seed(int(torch.randint(0, 2**62, (1,), generator=source).item()))

    def crop(self, length: int, generator: torch.Generator) -> tuple[int, int]:
        """(offset, samples) of the span to read from an item of ``length`` samples."""
        needed = self.segment_samples
        if needed is None:
            return 0, length
        if length <= needed:
            return 0, needed
        offset = int(torch.randint(0, length - needed + 1, (1,), generator=generator).item())
        return offset, needed

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} examples")
        item_index = self.kept[index // self.examples_per_item]
        generator = self.generator(index)
        offset, samples = self.crop(self.lengths[item_index], generator)
        if self.augment is None:
            # Only the components some output uses, unless the mixture must be summed from all.
            used = sorted({c for target in self.targets for c in target})
            if self.items[item_index].mixture is None:
                used = list(range(self.n_components))
            mixture, components = self.read(item_index, offset, samples, used, need_mixture=True)
            parts = torch.from_numpy(components)
            position = {component: row for row, component in enumerate(used)}
            sources = torch.stack(
                [parts[[position[c] for c in target]].sum(dim=0) for target in self.targets]
            )
            mix = torch.from_numpy(mixture) if mixture is not None else parts.sum(dim=0)
            return mix.float(), sources.float()
        everything = list(range(self.n_components))
        mixture, components = self.read(item_index, offset, samples, everything, need_mixture=self.noisy)
        original = torch.from_numpy(components)
        augmented = self.augment(original, generator)
        mix = augmented.sum(dim=0)
        if self.noisy and mixture is not None:
            mix = mix + (torch.from_numpy(mixture) - original.sum(dim=0))
        sources = torch.stack([augmented[target].sum(dim=0) for target in self.targets])
        return mix.float(), sources.float()

    def read(
        self,
        item_index: int,
        offset: int,
        samples: int,
        components: Sequence[int],
        *,
        need_mixture: bool = True,
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """(mixture ``[C, T]`` or None, the requested components ``[K', C, T]``) of one item's span.

        The mixture is None when not needed or when the item has no mixture file."""
        item = self.items[item_index]
        parts = [self.read_file(item, item.components[c], offset, samples) for c in components]
        mixture = None
        if need_mixture and item.mixture is not None:
            mixture = self.read_file(item, item.mixture, offset, samples)
        return mixture, self.check_channels(item, parts, mixture)

    def read_file(self, item: Item, path: str, offset: int, samples: int) -> np.ndarray:
        audio = read_span(
            path, offset, samples, frames=item.frames, file_rate=item.rate, target_rate=self.sample_rate
        )
        return downmix(audio) if self.mono else audio

    def check_channels(
        self, item: Item, components: list[np.ndarray], mixture: np.ndarray | None
    ) -> np.ndarray:
        """Stack the components ``[K, C, T]`` after checking every file has the dataset's channels."""
        for audio in [*components, *([] if mixture is None else [mixture])]:
            if audio.shape[0] != self.channels:
                raise SeparateError(
                    f"{item.name} in {self.where} has files with {audio.shape[0]} channel(s) where "
                    f"{self.channels} were expected; pass mono=True to downmix"
                )
        return np.stack(components)

    def random_components(
        self, components: Sequence[int], samples: int, generator: torch.Generator
    ) -> list[Tensor]:
        """For each requested component, that component of a different random item where there are
        enough items (one item per slot), each with its own random span: ``[C, samples]`` each.
        When the items' speakers are known, the drawn components have distinct speakers."""
        count = len(self.kept)
        if self.knows_speakers:
            picks = self._distinct_speakers(components, generator)
        elif count >= len(components):
            picks = torch.randperm(count, generator=generator)[: len(components)].tolist()
        else:
            picks = torch.randint(0, count, (len(components),), generator=generator).tolist()
        spans = []
        for component, pick in zip(components, picks, strict=True):
            item_index = self.kept[pick]
            length = self.lengths[item_index]
            offset = 0
            if length > samples:
                offset = int(torch.randint(0, length - samples + 1, (1,), generator=generator).item())
            _, audio = self.read(item_index, offset, samples, [component], need_mixture=False)
            spans.append(torch.from_numpy(audio[0]))
        return spans

    def _distinct_speakers(self, components: Sequence[int], generator: torch.Generator) -> list[int]:
        """Random picks (positions in ``kept``), one per component, whose speakers all differ."""
        count, picks, taken = len(self.kept), [], set()

        def speaker(pick: int, component: int) -> str:
            speakers = self.items[self.kept[pick]].speakers
            assert speakers is not None
            return speakers[component]

        for component in components:
            tries = torch.randint(0, count, (8,), generator=generator).tolist()
            free = [pick for pick in tries if speaker(pick, component) not in taken]
            if not free:  # a crowded draw: look at every item, in random order
                order = torch.randperm(count, generator=generator).tolist()
                free = [pick for pick in order if speaker(pick, component) not in taken]
            if not free:
                raise SeparateError(
                    f"cannot draw {len(components)} distinct speakers from {self.where}: it has fewer"
                )
            picks.append(free[0])
            taken.add(speaker(free[0], component))
        return picks


def resolve_options(options: dict[str, Any], training: bool) -> dict[str, Any]:
    """Fill the split-dependent defaults of the shared options (random crops only when training)."""
    options = dict(options)
    if options.get("random_crops") is None:
        options["random_crops"] = training
    return options


def split_name(split: str, aliases: dict[str, str], where: str) -> str:
    """Map a split alias (``train``, ``valid``, ``test``...) to the layout's own folder name."""
    if split not in aliases:
        known = ", ".join(sorted(aliases))
        raise SeparateError(f"unknown split '{split}' for {where} (known: {known})")
    return aliases[split]


def resolve_root(root: str | os.PathLike[str] | None, layout: str) -> str:
    if root is None:
        raise SeparateError(f"the {layout} layout needs a dataset root folder")
    path = os.path.expanduser(os.fspath(root))
    if not os.path.isdir(path):
        raise SeparateError(f"dataset root {path} is not a folder")
    return path
