"""Deterministic synthetic mixtures, generated on the fly, and writers of on-disk corpora made of them.

Speech-like sources are harmonic tones with a per-speaker pitch and vocal-tract size, a pitch
contour over syllables, vowel formants and syllable-rate envelopes with pauses. Music-like
stems (drums, bass, other, vocals) share tempo and key but differ in register and timbre: kick /
snare / hi-hat hits, a low plucked bass line, sustained sawtooth chords, and a sung melody with
vibrato and vowels. Item ``i`` depends only on ``(seed, i)``.

:func:`write_synthetic_corpus` writes such data in the WSJ0-2mix, LibriMix or MUSDB18-HQ layouts.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import Tensor
from torch.utils.data import Dataset

from separate.data._sounds import MUSIC_STEMS, background_noise, music_stems, pan, speakers, speech_like
from separate.errors import SeparateError
from separate.runtime import mix_seed

KINDS = ("speech", "music")


def split_seed(seed: int, split: str) -> int:
    """Seed of one split of a synthetic corpus, so that train, valid and test never share items."""
    number = {"train": 0, "valid": 1, "test": 2}.get(split)
    if number is None:
        raise SeparateError(f"unknown synthetic split '{split}' (known: train, valid, test)")
    return mix_seed(seed, number, bits=32)


class SyntheticMixDataset(Dataset):
    """Generated mixtures ``(mix: [C, T], sources: [S, C, T])`` float32, mix = sum of sources.

    Args:
        n_src: speakers (speech, any number) or 2 (vocals, accompaniment) / 4 (drums, bass,
            other, vocals) for music.
        sample_rate: Hz.
        segment: seconds per item, or a (min, max) range drawn per item.
        n_items: dataset length.
        seed: item ``i`` is a function of ``(seed, i)`` only.
        kind: ``speech`` or ``music``.
        channels: 1 (mono) or 2 (each source panned).
    """

    def __init__(
        self,
        n_src: int = 2,
        sample_rate: int = 8000,
        segment: float | tuple[float, float] = 4.0,
        n_items: int = 1000,
        seed: int = 0,
        kind: str = "speech",
        channels: int = 1,
    ) -> None:
        if kind not in KINDS:
            raise SeparateError(f"unknown synthetic kind '{kind}' (known: {', '.join(KINDS)})")
        if kind == "music" and n_src not in (2, 4):
            raise SeparateError(
                "synthetic music has 2 (vocals, accompaniment) or 4 (drums, bass, other, vocals) sources"
            )
        if n_src < 1 or n_items < 1 or channels not in (1, 2):
            raise SeparateError("synthetic data needs n_src >= 1, n_items >= 1 and 1 or 2 channels")
        low, high = (segment, segment) if isinstance(segment, (int, float)) else segment
        if not 0 < low <= high:
            raise SeparateError(f"segment must be positive seconds or a (min, max) range, got {segment}")
        self.n_src, self.sample_rate, self.n_items = n_src, int(sample_rate), n_items
        self.segment, self.seed, self.kind, self.channels = (float(low), float(high)), seed, kind, channels
        if kind == "speech":
            self.sources = [f"s{j + 1}" for j in range(n_src)]
        else:
            self.sources = list(MUSIC_STEMS) if n_src == 4 else ["vocals", "accompaniment"]

    def __len__(self) -> int:
        return self.n_items

    def item_name(self, index: int) -> str:
        return f"syn{self.seed}-{index:06d}"

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``index`` as float32 numpy arrays: (mix [C, T], sources [S, C, T])."""
        if not 0 <= index < self.n_items:
            raise IndexError(f"index {index} out of range for {self.n_items} items")
        rng = np.random.default_rng([self.seed, index])
        length = max(1, int(round(rng.uniform(*self.segment) * self.sample_rate)))
        if self.kind == "speech":
            voices = speakers(rng, self.n_src)
            signals = [speech_like(rng, length, self.sample_rate, f0, tract) for f0, tract in voices]
            gains = 10 ** (rng.uniform(-2.5, 2.5, self.n_src) / 20)
            signals = [signal * gain for signal, gain in zip(signals, gains, strict=True)]
        else:
            stems = music_stems(rng, length, self.sample_rate)
            levels_db = np.array([0.0, -3.0, -6.0, 0.0]) + rng.uniform(-3, 3, len(MUSIC_STEMS))
            for name, level in zip(MUSIC_STEMS, levels_db, strict=True):
                stems[name] = stems[name] * 10 ** (level / 20)
            if self.n_src == 2:
                signals = [stems["vocals"], stems["drums"] + stems["bass"] + stems["other"]]
            else:
                signals = [stems[name] for name in MUSIC_STEMS]
        positions = rng.uniform(-0.6, 0.6, len(signals))
        sources = np.stack([pan(s, p, self.channels) for s, p in zip(signals, positions, strict=True)])
        mix = sources.sum(axis=0)
        scale = rng.uniform(0.5, 0.9) / max(np.abs(mix).max(), np.abs(sources).max(), 1e-8)
        sources = (sources * scale).astype(np.float32)
        return sources.sum(axis=0), sources

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        mix, sources = self.render(index)
        return torch.from_numpy(mix), torch.from_numpy(sources)


LAYOUTS = ("wsj0mix", "librimix", "musdbhq")
_DEFAULTS = {
    "wsj0mix": {"kind": "speech", "n_src": 2, "sample_rate": 8000, "duration": (2.0, 4.0), "channels": 1},
    "librimix": {"kind": "speech", "n_src": 2, "sample_rate": 8000, "duration": (2.0, 4.0), "channels": 1},
    "musdbhq": {"kind": "music", "n_src": 4, "sample_rate": 44100, "duration": (4.0, 6.0), "channels": 2},
}
_SPLIT_FOLDERS = {
    "wsj0mix": {"train": "tr", "valid": "cv", "test": "tt"},
    "librimix": {"train": "train-360", "valid": "dev", "test": "test"},
    "musdbhq": {"train": "train", "test": "test"},
}


def write_synthetic_corpus(
    out: str | os.PathLike[str],
    layout: str,
    n_items: int = 8,
    seed: int = 0,
    *,
    n_src: int | None = None,
    sample_rate: int | None = None,
    duration: tuple[float, float] | None = None,
    channels: int | None = None,
    subtype: str = "FLOAT",
    relative_paths: bool = False,
) -> Path:
    """Write a synthetic corpus in ``layout`` (``wsj0mix``, ``librimix``, ``musdbhq``) under ``out``.

    The training split gets ``n_items`` mixtures, the others ``max(1, n_items // 4)`` each.
    ``wsj0mix``: ``out/{tr,cv,tt}/{mix,s1..sJ}/<id>.wav``. ``librimix``: ``out/{train-360,dev,test}/
    {mix_clean,mix_both,s1..sJ,noise}/<id>.wav`` plus ``out/metadata/mixture_<subset>_<mix_clean|
    mix_both>.csv`` (absolute paths unless ``relative_paths``). ``musdbhq``: ``out/{train,test}/
    <Artist - Title>/{mixture,drums,bass,other,vocals}.wav`` (4 stems). Float wav files by
    default, so mixtures are exact sums. Returns ``out``.
    """
    if layout not in LAYOUTS:
        raise SeparateError(f"unknown synthetic layout '{layout}' (known: {', '.join(LAYOUTS)})")
    settings = dict(_DEFAULTS[layout])
    for key, value in (
        ("n_src", n_src),
        ("sample_rate", sample_rate),
        ("duration", duration),
        ("channels", channels),
    ):
        if value is not None:
            settings[key] = value
    if layout == "musdbhq" and settings["n_src"] != 4:
        raise SeparateError("the MUSDB18-HQ layout has 4 stems; n_src must be 4")
    root = Path(out)
    for split, folder in _SPLIT_FOLDERS[layout].items():
        count = n_items if split == "train" else max(1, n_items // 4)
        data = SyntheticMixDataset(
            settings["n_src"],
            settings["sample_rate"],
            tuple(settings["duration"]),
            count,
            split_seed(seed, split),
            settings["kind"],
            settings["channels"],
        )
        if layout == "wsj0mix":
            _write_wsj0mix(root / folder, data, subtype)
        elif layout == "librimix":
            _write_librimix(root, folder, data, subtype, relative_paths)
        else:
            _write_musdbhq(root / folder, data, subtype)
    return root


def _write(path: Path, audio: np.ndarray, sample_rate: int, subtype: str) -> None:
    """audio: [C, T]."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio.T, sample_rate, subtype=subtype)


def _write_wsj0mix(split_dir: Path, data: SyntheticMixDataset, subtype: str) -> None:
    for index in range(len(data)):
        mix, sources = data.render(index)
        name = f"{data.item_name(index)}.wav"
        _write(split_dir / "mix" / name, mix, data.sample_rate, subtype)
        for j, source in enumerate(sources):
            _write(split_dir / f"s{j + 1}" / name, source, data.sample_rate, subtype)


def _write_librimix(root: Path, subset: str, data: SyntheticMixDataset, subtype: str, relative: bool) -> None:
    def shown(path: Path) -> str:
        return str(path.relative_to(root)) if relative else str(path.resolve())

    sources_header = [f"source_{j + 1}_path" for j in range(data.n_src)]
    clean_rows, noisy_rows = [], []
    for index in range(len(data)):
        mix, sources = data.render(index)
        rng = np.random.default_rng([data.seed, index, 1])
        snr_db = rng.uniform(-6, 3)
        noise = (
            background_noise(rng, mix.shape[-1], data.sample_rate)[None]
            * np.sqrt(np.mean(mix**2))
            * 10 ** (-snr_db / 20)
        )
        noise = noise.astype(np.float32)
        both = mix + noise
        peak = max(np.abs(both).max(), np.abs(mix).max(), 1e-8)
        scale = min(1.0, 0.9 / peak)
        name = data.item_name(index)
        paths = {
            folder: root / subset / folder / f"{name}.wav"
            for folder in ["mix_clean", "mix_both", "noise", *[f"s{j + 1}" for j in range(data.n_src)]]
        }
        _write(paths["mix_clean"], mix * scale, data.sample_rate, subtype)
        _write(paths["mix_both"], both * scale, data.sample_rate, subtype)
        _write(paths["noise"], noise * scale, data.sample_rate, subtype)
        for j, source in enumerate(sources):
            _write(paths[f"s{j + 1}"], source * scale, data.sample_rate, subtype)
        source_paths = [shown(paths[f"s{j + 1}"]) for j in range(data.n_src)]
        length = mix.shape[-1]
        clean_rows.append([name, shown(paths["mix_clean"]), *source_paths, length])
        noisy_rows.append([name, shown(paths["mix_both"]), *source_paths, shown(paths["noise"]), length])
    metadata = root / "metadata"
    metadata.mkdir(parents=True, exist_ok=True)
    for mixture_type, header_tail, rows in (
        ("mix_clean", ["length"], clean_rows),
        ("mix_both", ["noise_path", "length"], noisy_rows),
    ):
        with open(metadata / f"mixture_{subset}_{mixture_type}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["mixture_ID", "mixture_path", *sources_header, *header_tail])
            writer.writerows(rows)


def _write_musdbhq(subset_dir: Path, data: SyntheticMixDataset, subtype: str) -> None:
    for index in range(len(data)):
        mix, sources = data.render(index)
        track = subset_dir / f"Synthetic Band {data.seed % 1000:03d}-{index:03d} - Song {index:03d}"
        _write(track / "mixture.wav", mix, data.sample_rate, subtype)
        for name, source in zip(data.sources, sources, strict=True):
            _write(track / f"{name}.wav", source, data.sample_rate, subtype)
