"""Datasets, samplers and loaders of a training run, and fitting their batches to the model.

The datasets are built with :func:`separate.data.make_dataset` from the ``[data]`` table, with the
model's facts as defaults (sample rate; speakers and channels of synthetic data; MUSDB targets), so a
recipe rarely repeats them. :class:`EpochSampler` is a :class:`DistributedSampler` (shuffled with
``seed + epoch``, padded to a multiple of the world size, strided by rank) that can also draw a
fixed number of examples per epoch (an "epoch" of N iterations, as in Wave-U-Net) and start part-way
through an epoch (resuming from a mid-epoch state).
"""

from __future__ import annotations

import inspect
import math
import signal
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler

from separate.data import (
    LAYOUTS,
    DynamicMixDataset,
    SeparationDataset,
    SyntheticMixDataset,
    WsjMixDataset,
    make_dataset,
    pad_collate,
)
from separate.errors import SeparateError

MUSIC_TARGETS = {"vocals", "accompaniment", "drums", "bass", "other"}
#: Arguments of SeparationDataset that its subclasses fill in (``targets`` there are component indices).
_INTERNAL = {"self", "items", "sources", "targets", "where", "noisy"}
#: Seed of the ``data.fraction`` subset: fixed, so runs with different seeds see the same items.
FRACTION_SEED = 20201102


def accepted_options(layout: str) -> set[str]:
    """Keyword options a dataset of ``layout`` takes (its own, and the shared ones of file layouts)."""
    if layout not in LAYOUTS:
        raise SeparateError(f"unknown dataset layout '{layout}' (known: {', '.join(LAYOUTS)})")
    if layout == "synthetic":
        return set(inspect.signature(SyntheticMixDataset.__init__).parameters) - {"self"}
    if layout == "dynamic":
        return set(inspect.signature(DynamicMixDataset.__init__).parameters) - {"self", "root", "split"}
    factory = LAYOUTS[layout]
    cls = factory if isinstance(factory, type) else WsjMixDataset
    own = set(inspect.signature(cls.__init__).parameters) - {"self", "root", "split", "options", "kwargs"}
    shared = set(inspect.signature(SeparationDataset.__init__).parameters) - _INTERNAL
    return own | shared


def check_options(layout: str, options: dict[str, Any], where: str) -> None:
    """Raise a one-line error for options the layout does not take."""
    unknown = sorted(set(options) - accepted_options(layout))
    if unknown:
        raise SeparateError(
            f"{where}: the {layout} layout does not take {', '.join(unknown)} "
            f"(it takes: {', '.join(sorted(accepted_options(layout)))})"
        )


def _without_unset(layout: str, options: dict[str, Any]) -> dict[str, Any]:
    """Drop options set to None that ``layout`` does not take (``--set data.train.n_items=null`` unsets
    a synthetic-only option when switching layouts); None stays for options it takes (``segment``)."""
    accepted = accepted_options(layout)
    return {key: value for key, value in options.items() if value is not None or key in accepted}


def dataset_specs(
    data: dict[str, Any],
) -> dict[str, list[tuple[str, str | None, str | None, dict[str, Any]]]]:
    """``{"train": [(layout, root, split, options), ...], "valid": [...]}`` from the ``[data]`` table.

    ``train_extra`` corpora take only their own options (not ``data.options``); their split defaults
    to None (a folder layout without split subfolders, such as CCMixter).
    """
    specs: dict[str, list[tuple[str, str | None, str | None, dict[str, Any]]]] = {}
    for split in ("train", "valid"):
        options = {**data["options"], **data[split]}
        split_name = options.pop("split")
        specs[split] = [(data["layout"], data["root"], split_name, _without_unset(data["layout"], options))]
    for extra in data["train_extra"]:
        options = dict(extra)
        layout, root, split = options.pop("layout"), options.pop("root", None), options.pop("split", None)
        specs["train"].append((layout, root, split, _without_unset(layout, options)))
    return specs


def check_data_config(data: dict[str, Any]) -> None:
    """Validate the ``[data]`` table without touching any corpus: layouts, option names, roots given."""
    for split, specs in dataset_specs(data).items():
        for index, (layout, root, _, options) in enumerate(specs):
            where = f"data.{split}" if index == 0 else f"data.train_extra[{index - 1}]"
            check_options(layout, options, where)
            if layout != "synthetic" and not root:
                raise SeparateError(f"{where}: the {layout} layout needs data.root (the corpus folder)")


def _model_defaults(layout: str, options: dict[str, Any], model: Any) -> dict[str, Any]:
    options = dict(options)
    music = set(model.sources) <= MUSIC_TARGETS
    options.setdefault("sample_rate", model.sample_rate)
    if layout == "dynamic":
        options.setdefault("n_src", model.n_src)
    elif layout == "synthetic":
        options.setdefault("n_src", model.n_src)
        options.setdefault("channels", model.audio_channels)
        options.setdefault("kind", "music" if music else "speech")
    elif layout in ("musdb", "musdbhq") and music:
        options.setdefault("targets", list(model.sources))
    return options


def _fraction(dataset: Dataset, fraction: float) -> Dataset:
    """A fixed subset of ``fraction`` of the items (all examples of each chosen item)."""
    if fraction >= 1.0:
        return dataset
    per_item = getattr(dataset, "examples_per_item", 1)
    items = len(dataset) // per_item
    keep = max(1, math.ceil(fraction * items))
    generator = torch.Generator().manual_seed(FRACTION_SEED)
    chosen = sorted(torch.randperm(items, generator=generator)[:keep].tolist())
    return Subset(dataset, [item * per_item + k for item in chosen for k in range(per_item)])


def build_datasets(data: dict[str, Any], model: Any) -> tuple[Dataset, Dataset, list[str]]:
    """``(train, valid, source names)``; several training corpora are concatenated."""
    built: dict[str, list[Dataset]] = {}
    names: list[str] = []
    for split, specs in dataset_specs(data).items():
        built[split] = []
        for layout, root, split_name, options in specs:
            dataset = make_dataset(layout, root, split_name, **_model_defaults(layout, options, model))
            rate = getattr(dataset, "sample_rate", model.sample_rate)
            if rate != model.sample_rate:
                raise SeparateError(
                    f"the {layout} {split_name} data is at {rate} Hz but the model runs at "
                    f"{model.sample_rate} Hz"
                )
            names = names or list(getattr(dataset, "sources", model.sources))
            built[split].append(_fraction(dataset, data["fraction"]))
    train = built["train"][0] if len(built["train"]) == 1 else ConcatDataset(built["train"])
    return train, built["valid"][0], names


def source_order(data_sources: Sequence[str], model_sources: Sequence[str]) -> list[int] | None:
    """Indices that put the dataset's sources in the model's order; None when already aligned.

    Names that are a permutation of the model's are reordered by name; otherwise sources are taken
    in order (``s1, s2`` speakers; folders whose file names differ from the model's source names)."""
    if len(data_sources) != len(model_sources):
        raise SeparateError(
            f"the data has {len(data_sources)} sources ({', '.join(data_sources)}) but the model separates "
            f"{len(model_sources)} ({', '.join(model_sources)})"
        )
    if list(data_sources) == list(model_sources) or sorted(data_sources) != sorted(model_sources):
        return None
    return [list(data_sources).index(name) for name in model_sources]


def fit_channels(
    mix: Tensor, sources: Tensor, lengths: Tensor, channels: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Match a batch to the model's audio channels.

    ``mix: [B, C, T]``, ``sources: [B, S, C, T]``, ``lengths: [B]``. A mono model given C-channel
    data sees every channel as its own example: ``[B*C, 1, T]``, ``[B*C, S, 1, T]``.
    """
    data_channels = mix.shape[1]
    if data_channels == channels:
        return mix, sources, lengths
    if channels != 1:
        raise SeparateError(
            f"the model takes {channels}-channel audio but the data has {data_channels} channel(s)"
        )
    batch, n_src, _, length = sources.shape
    mix = mix.reshape(batch * data_channels, 1, length)
    sources = sources.transpose(1, 2).reshape(batch * data_channels, n_src, 1, length)
    return mix, sources, lengths.repeat_interleave(data_channels)


class EpochSampler(DistributedSampler):
    """This rank's shuffled indices of one epoch; optionally a fixed count and a starting offset.

    Args:
        dataset: what is sampled.
        num_replicas, rank: the world size and this process's rank (1 and 0 without DDP).
        seed: base seed; epoch ``e`` is shuffled with ``seed + e`` (:meth:`set_epoch`).
        examples_per_epoch: examples this rank draws per epoch (successive reshuffles of the whole
            dataset); None for one pass (DistributedSampler's padding to the world size).
    """

    def __init__(
        self, dataset: Dataset, num_replicas: int, rank: int, seed: int, examples_per_epoch: int | None = None
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.examples_per_epoch = examples_per_epoch
        self.start = 0

    def indices(self) -> list[int]:
        if self.examples_per_epoch is None:
            return list(super().__iter__())
        total = self.examples_per_epoch * self.num_replicas
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        drawn: list[int] = []
        while len(drawn) < total:
            drawn += torch.randperm(len(self.dataset), generator=generator).tolist()
        return drawn[self.rank : total : self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start :])

    def __len__(self) -> int:
        count = self.num_samples if self.examples_per_epoch is None else self.examples_per_epoch
        return max(0, count - self.start)


def loader(
    dataset: Dataset,
    sampler: Any,
    batch_size: int,
    num_workers: int,
    seed: int,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader whose worker seeds come from its own generator (seeded with ``seed``), never from
    the global RNG, so iterating it draws nothing from the RNG streams the run saves. Its workers
    ignore SIGINT: Ctrl-C reaches the whole process group, and the main process, which stops the run
    after saving its state, still needs them for that step."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=pad_collate,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=pin_memory,
        persistent_workers=False,
        worker_init_fn=_ignore_interrupts if num_workers else None,
    )


def _ignore_interrupts(worker_id: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def valid_indices(dataset: Dataset, rank: int, world: int) -> list[int]:
    """This rank's share of the validation set: every ``world``-th item, no padding or duplicates."""
    return list(range(rank, len(dataset), world))
