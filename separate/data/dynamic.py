"""Dynamic mixing: fresh speech mixtures drawn from per-speaker pools at every step.

A corpus built by ``examples/corpora/speech.py`` holds one concatenated recording per voice
(``pool/<rate>/<voice>.flac``) and ``speakers.json`` with each voice's split. Training item ``i`` of
epoch ``e`` is a function of ``(seed, e, i)`` only: ``n_src`` distinct voices, a random crop of each,
a random gain in ``[-gain_db, gain_db]`` dB, optionally a random speed change (pitch and formants
move together), a random microphone/channel colouring per source, room reverberation and background
noise. Validation and test splits are the fixed mixture lists of the same corpus
(``wav<rate/1000>k/min/{cv,tt}``, read as WSJ0-mix folders).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import soundfile as sf
import torch
from torch import Tensor
from torch.utils.data import Dataset

from separate.errors import SeparateError

#: Share of draws per kind of voice: recorded voices, their WORLD-warped copies, synthesisers.
DEFAULT_WEIGHTS = {"real": 0.45, "warped": 0.35, "synthetic": 0.2}


def voice_origin(name: str, speakers: dict[str, dict[str, Any]]) -> str:
    """The package a voice comes from; a warped copy has its parent's."""
    info = speakers[name]
    parent = info.get("parent")
    return speakers[parent]["origin"] if parent in speakers else str(info.get("origin", ""))


def voice_kind(info: dict[str, Any]) -> str:
    if info.get("real"):
        return "real"
    return "warped" if info.get("parent") else "synthetic"


def draw_probabilities(
    speakers: dict[str, dict[str, Any]],
    voices: list[str],
    weights: dict[str, float] | None = None,
    origin_weights: dict[str, float] | None = None,
) -> np.ndarray:
    """Probability of drawing each of ``voices``: each kind gets its share (``weights``), split over its
    voices in proportion to their origin's factor (``origin_weights``, 1 for unnamed origins)."""
    shares = {**DEFAULT_WEIGHTS, **(weights or {})}
    factors = origin_weights or {}
    if any(value < 0 for value in (*shares.values(), *factors.values())):
        raise SeparateError("dynamic mixing weights and origin_weights must not be negative")
    kinds = [voice_kind(speakers[name]) for name in voices]
    relative = np.array([float(factors.get(voice_origin(name, speakers), 1.0)) for name in voices])
    probabilities = np.zeros(len(voices))
    for kind in set(kinds):
        members = np.array([k == kind for k in kinds])
        if relative[members].sum() > 0:
            probabilities[members] = shares[kind] * relative[members] / relative[members].sum()
    if probabilities.sum() <= 0:
        raise SeparateError("dynamic mixing weights leave no voice to draw")
    return probabilities / probabilities.sum()


class DynamicMixDataset(Dataset):
    """``(mix: [1, T], sources: [S, 1, T])`` float32 mixtures drawn on the fly; mix = sum of sources.

    Args:
        root: corpus folder holding ``speakers.json`` and ``pool/<rate>/``.
        split: the voices drawn from (``train``; ``valid``/``test`` also work for spot checks).
        n_src: voices per mixture (distinct speaker ids).
        sample_rate: Hz; the pool at that rate must exist.
        segment: seconds per mixture.
        n_items: items per epoch.
        seed: item ``i`` of epoch ``e`` depends only on ``(seed, e, i)``.
        gain_db: each source's gain is uniform in ``[-gain_db, gain_db]`` dB.
        speed: range of the resampling factor applied to each crop (``[1, 1]`` turns it off).
        weights: share of draws per voice kind (``real``, ``warped``, ``synthetic``).
        origin_weights: factor on the draws of the voices of a source package (``origin`` in
            ``speakers.json``; warped copies count as their parent's), e.g. ``{"klettres": 0.25}`` for
            voices that only say isolated letters; the kind shares are kept.
        noise: add the corpus's noise pool to the mixture at an SNR uniform in ``noise_snr`` dB.
        reverb: convolve every source with a random exponentially decaying room response
            (RT60 uniform in ``rt60`` seconds); the targets are the reverberant sources.
        channel_eq: colour every source with its own random smooth frequency response (tilt and
            bumps up to ``channel_eq`` dB, see :func:`random_channel_response`), so that a model
            cannot tell voices apart by the microphone each corpus voice was recorded with;
            0 turns it off. The targets are the coloured sources.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        n_src: int = 2,
        sample_rate: int = 8000,
        segment: float = 4.0,
        n_items: int = 10000,
        seed: int = 0,
        gain_db: float = 5.0,
        speed: tuple[float, float] = (0.9, 1.1),
        weights: dict[str, float] | None = None,
        origin_weights: dict[str, float] | None = None,
        noise: bool = False,
        noise_snr: tuple[float, float] = (5.0, 25.0),
        reverb: bool = False,
        rt60: tuple[float, float] = (0.15, 0.6),
        channel_eq: float = 0.0,
    ) -> None:
        manifest_path = os.path.join(root, "speakers.json")
        if not os.path.isfile(manifest_path):
            raise SeparateError(f"no speakers.json in {root} (build it with examples/corpora/speech.py)")
        with open(manifest_path) as handle:
            manifest = json.load(handle)
        folder = os.path.join(root, "pool", str(sample_rate))
        voices = sorted(
            name
            for name, info in manifest["speakers"].items()
            if info["split"] == split and os.path.isfile(os.path.join(folder, f"{name}.flac"))
        )
        if len(voices) < n_src:
            raise SeparateError(
                f"the {split} split of {root} has {len(voices)} voices at {sample_rate} Hz, "
                f"fewer than n_src={n_src}"
            )
        if segment <= 0 or n_items < 1 or not 0 < speed[0] <= speed[1] or channel_eq < 0:
            raise SeparateError(
                "dynamic mixing needs segment > 0, n_items >= 1, 0 < speed[0] <= speed[1] and channel_eq >= 0"
            )
        self.root, self.split, self.voices = str(root), split, voices
        self.n_src, self.sample_rate, self.segment, self.n_items = (
            n_src,
            int(sample_rate),
            float(segment),
            n_items,
        )
        self.seed, self.gain_db, self.speed = seed, float(gain_db), (float(speed[0]), float(speed[1]))
        self.noise, self.noise_snr, self.reverb, self.rt60 = noise, tuple(noise_snr), reverb, tuple(rt60)
        self.channel_eq = float(channel_eq)
        self.sources = [f"s{j + 1}" for j in range(n_src)]
        self.epoch = 0
        self.pools = [self._load(os.path.join(folder, f"{name}.flac")) for name in voices]
        self.probabilities = draw_probabilities(manifest["speakers"], voices, weights, origin_weights)
        noise_file = os.path.join(folder, "noise.flac")
        if noise and not os.path.isfile(noise_file):
            raise SeparateError(f"noise=true but the corpus has no noise pool {noise_file}")
        self.noise_pool = self._load(noise_file) if noise else None

    @staticmethod
    def _load(path: str) -> np.ndarray:
        """The whole pool as int16 (half the memory of float32; pools are 16-bit FLAC)."""
        audio, _ = sf.read(path, dtype="int16", always_2d=True)
        return np.ascontiguousarray(audio[:, 0])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_items

    def draw(self, index: int) -> dict[str, Any]:
        """The recipe of item ``index`` in the current epoch: voices, crop starts, speeds, gains."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        chosen = rng.choice(len(self.voices), self.n_src, replace=False, p=self.probabilities)
        length = int(round(self.segment * self.sample_rate))
        speeds = rng.uniform(*self.speed, self.n_src)
        starts = []
        for voice, speed in zip(chosen, speeds, strict=False):
            needed = int(np.ceil(length * speed)) + 1
            starts.append(int(rng.integers(0, max(1, len(self.pools[voice]) - needed))))
        return {
            "voices": [self.voices[v] for v in chosen],
            "indices": [int(v) for v in chosen],
            "starts": starts,
            "speeds": [float(s) for s in speeds],
            "gains_db": [float(g) for g in rng.uniform(-self.gain_db, self.gain_db, self.n_src)],
            "rng": rng,
        }

    def _crop(self, voice: int, start: int, speed: float, length: int) -> np.ndarray:
        needed = int(np.ceil(length * speed)) + 1
        raw = self.pools[voice][start : start + needed].astype(np.float32) / 32768.0
        raw = np.pad(raw, (0, needed - len(raw)))
        if speed == 1.0:
            return raw[:length]
        return np.interp(np.arange(length) * speed, np.arange(needed), raw).astype(np.float32)

    def _room(self, rng: np.random.Generator) -> np.ndarray:
        rt60 = rng.uniform(*self.rt60)
        taps = int(rt60 * self.sample_rate)
        decay = np.exp(-6.9 * np.arange(taps) / taps)
        response = rng.standard_normal(taps) * decay
        response[0] = 1.0 / max(1e-3, rng.uniform(0.3, 1.0))
        return (response / np.sqrt((response**2).sum())).astype(np.float32)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        recipe = self.draw(index)
        rng = recipe.pop("rng")
        length = int(round(self.segment * self.sample_rate))
        sources = []
        for voice, start, speed, gain in zip(
            recipe["indices"], recipe["starts"], recipe["speeds"], recipe["gains_db"], strict=False
        ):
            signal = self._crop(voice, start, speed, length)
            if self.channel_eq > 0:
                response = random_channel_response(rng, length // 2 + 1, self.channel_eq)
                signal = np.fft.irfft(np.fft.rfft(signal) * response, n=length).astype(np.float32)
            if self.reverb:
                signal = np.convolve(signal, self._room(rng))[:length].astype(np.float32)
            signal = signal / max(1e-4, float(np.sqrt((signal**2).mean())))
            sources.append(signal * np.float32(0.05 * 10 ** (gain / 20)))
        stacked = np.stack(sources)
        mix = stacked.sum(axis=0)
        if self.noise_pool is not None:
            start = int(rng.integers(0, max(1, len(self.noise_pool) - length)))
            noise = self.noise_pool[start : start + length].astype(np.float32) / 32768.0
            noise = np.pad(noise, (0, length - len(noise)))
            snr = rng.uniform(*self.noise_snr)
            scale = np.sqrt((mix**2).mean() / max(1e-10, (noise**2).mean()) / 10 ** (snr / 10))
            mix = mix + noise * np.float32(scale)
        return torch.from_numpy(mix[None].copy()), torch.from_numpy(stacked[:, None].copy())


def random_channel_response(rng: np.random.Generator, n_bins: int, depth_db: float) -> np.ndarray:
    """A random smooth magnitude response ``[n_bins]`` (linear gain) over ``0..Nyquist``.

    On a log-frequency axis: a tilt of up to ``depth_db`` dB between the lowest and highest bins,
    plus two bell-shaped bumps or dips of up to ``depth_db`` dB at random centres (widths of a third
    of an octave to two octaves).
    """
    octaves = np.log2(np.maximum(np.arange(n_bins), 1) / max(1, n_bins - 1))  # [-log2(n), 0]
    lowest = octaves[1] if n_bins > 1 else 0.0
    position = (octaves - lowest) / max(1e-9, -lowest)  # 0 at the first bin, 1 at Nyquist
    curve_db = rng.uniform(-depth_db, depth_db) * (position - 0.5)
    for _ in range(2):
        centre = rng.uniform(lowest * 0.8, 0.0)
        width = rng.uniform(1 / 3, 2.0)
        curve_db += rng.uniform(-depth_db, depth_db) * np.exp(-0.5 * ((octaves - centre) / width) ** 2)
    return (10 ** (curve_db / 20)).astype(np.float32)


def fixed_mixtures_root(root: str | os.PathLike[str], sample_rate: int) -> str:
    """The WSJ0-mix folder of a speech corpus's fixed validation/test mixtures at ``sample_rate``."""
    return os.path.join(str(root), f"wav{int(sample_rate) // 1000}k", "min")
