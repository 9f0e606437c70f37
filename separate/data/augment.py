"""Data augmentation on the components of one example.

Every augmentation is a callable ``augment(components: [K, C, T], generator) -> [K, C, T]``
drawing all its randomness from the ``torch.Generator`` it is given, so an example is
reproducible from its generator seed. The datasets recompute the mixture as the exact sum of
the augmented components. Augmentations compose with :class:`Compose`.

Music (SPEC §6.5): :class:`RandomGain` (uniform [0.7, 1.0] per source, Wave-U-Net's
``random_amplify``), :class:`ChannelSwap`, :class:`Remix` (each stem from a random other song).
Speech: :class:`RandomGain` in decibels per speaker and :class:`Remix` with ``any_slot=True``
(speakers taken from different mixtures).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from torch import Tensor

from separate.errors import SeparateError

Augmentation = Callable[[Tensor, torch.Generator], Tensor]


class ComponentBank(Protocol):
    """Where :class:`Remix` gets components of other items (every file-based dataset is one)."""

    n_components: int

    def random_components(
        self, components: Sequence[int], samples: int, generator: torch.Generator
    ) -> list[Tensor]: ...


def _uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator)


class RandomGain:
    """Multiply each component by its own random factor.

    Linear factors uniform in ``[low, high]`` (music default [0.7, 1.0]), or with
    ``decibels=True`` a gain uniform in ``[low, high]`` dB (speech).
    """

    def __init__(self, low: float = 0.7, high: float = 1.0, decibels: bool = False) -> None:
        if low > high:
            raise SeparateError(f"gain range must have low <= high, got [{low}, {high}]")
        if not decibels and low < 0:
            raise SeparateError(f"linear gains must be non-negative, got [{low}, {high}]")
        self.low, self.high, self.decibels = low, high, decibels

    def __call__(self, components: Tensor, generator: torch.Generator) -> Tensor:
        """components: [K, C, T] -> [K, C, T]."""
        draw = _uniform((components.shape[0], 1, 1), self.low, self.high, generator)
        factors = 10.0 ** (draw / 20.0) if self.decibels else draw
        return components * factors.to(components.dtype)


class ChannelSwap:
    """Swap left and right of each stereo component independently with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, components: Tensor, generator: torch.Generator) -> Tensor:
        """components: [K, C, T] -> [K, C, T]; mono components are returned unchanged."""
        if components.shape[1] != 2:
            return components
        swap = torch.rand(components.shape[0], generator=generator) < self.p
        out = components.clone()
        out[swap] = components[swap].flip(dims=[1])
        return out


class Remix:
    """Replace components by the same component of other items (a new mixture each time).

    With probability ``p`` per example, every component is taken from a different random item
    of ``bank`` (as many distinct items as there are components, when the bank has that many)
    with its own random span. ``any_slot=True`` (speech) also draws which component of that item
    is used, since speaker slots are interchangeable; for music the slot (the stem) is kept. Where
    the bank knows its items' speakers (WSJ0-mix, WHAM! and LibriMix names code them), the drawn
    components have distinct speakers, so a speaker is never mixed with itself.
    """

    def __init__(self, bank: ComponentBank, p: float = 1.0, any_slot: bool = False) -> None:
        self.bank, self.p, self.any_slot = bank, p, any_slot

    def __call__(self, components: Tensor, generator: torch.Generator) -> Tensor:
        """components: [K, C, T] -> [K, C, T] (same shape, new content)."""
        if torch.rand(1, generator=generator).item() >= self.p:
            return components
        count = components.shape[0]
        if self.any_slot:
            slots = torch.randint(0, self.bank.n_components, (count,), generator=generator).tolist()
        else:
            slots = list(range(count))
        drawn = self.bank.random_components(slots, components.shape[-1], generator)
        return torch.stack(drawn).to(components.dtype)


class Compose:
    """Apply augmentations in order."""

    def __init__(self, augmentations: Sequence[Augmentation]) -> None:
        self.augmentations = list(augmentations)

    def __call__(self, components: Tensor, generator: torch.Generator) -> Tensor:
        for augmentation in self.augmentations:
            components = augmentation(components, generator)
        return components


def music_augmentation(
    bank: ComponentBank | None = None,
    gain: tuple[float, float] = (0.7, 1.0),
    swap: float = 0.5,
    remix: float = 0.0,
) -> Compose:
    """Remix stems across songs with probability ``remix`` (needs ``bank``), then random gain per
    stem, then channel swap. The defaults are the lightweight Wave-U-Net recipe (gain only for
    mono data; swap applies to stereo)."""
    steps: list[Augmentation] = []
    if remix > 0:
        if bank is None:
            raise SeparateError("remixing stems across songs needs the dataset to draw them from")
        steps.append(Remix(bank, p=remix))
    steps += [RandomGain(*gain), ChannelSwap(swap)]
    return Compose(steps)


def speech_augmentation(
    bank: ComponentBank | None = None,
    gain_db: tuple[float, float] = (-2.5, 2.5),
    remix: float = 0.0,
) -> Compose:
    """Speaker remixing across mixtures with probability ``remix`` (needs ``bank``), then a random
    gain in dB per speaker."""
    steps: list[Augmentation] = []
    if remix > 0:
        if bank is None:
            raise SeparateError("remixing speakers across mixtures needs the dataset to draw them from")
        steps.append(Remix(bank, p=remix, any_slot=True))
    steps.append(RandomGain(*gain_db, decibels=True))
    return Compose(steps)


AUGMENTATION_PRESETS: dict[str, Callable[..., Compose]] = {
    "music": music_augmentation,
    "music-remix": lambda bank: music_augmentation(bank, remix=1.0),
    "speech": speech_augmentation,
    "speech-remix": lambda bank: speech_augmentation(bank, remix=1.0),
}


def build_augmentation(spec: str | Augmentation | None, bank: ComponentBank | None) -> Augmentation | None:
    """A preset name (``music``, ``music-remix``, ``speech``, ``speech-remix``), a callable, or None."""
    if spec is None or callable(spec):
        return spec
    if spec not in AUGMENTATION_PRESETS:
        known = ", ".join(AUGMENTATION_PRESETS)
        raise SeparateError(f"unknown augmentation '{spec}' (known: {known})")
    return AUGMENTATION_PRESETS[spec](bank)
