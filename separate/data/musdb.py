"""MUSDB18 (``.stem.mp4`` through the ``musdb`` package) and MUSDB18-HQ (wav folders) (SPEC §8.5).

MUSDB18-HQ: ``root/{train,test}/<Artist - Title>/{mixture,drums,bass,other,vocals}.wav``, read
directly with soundfile. MUSDB18: ``root/{train,test}/<Artist - Title>.stem.mp4`` (stream ids
mixture 0, drums 1, bass 2, other 3, vocals 4), indexed with ``musdb`` and decoded with its
``stempeg`` (ffmpeg); imported only when used.

Targets are stems or sums of stems (``accompaniment = drums + bass + other``). Splits of the 100
training tracks: musdb's 14 named validation tracks (``validation="musdb"``), a seeded random
split (``validation="random"``, ``valid_fraction=0.25`` is the lightweight Wave-U-Net's 75/25,
0.2 LTL's 80/20), the songs a built corpus lists (``validation="corpus"``), or none
(``validation="none"``: all 100 train). The default, ``validation="auto"``, is ``corpus`` for a root
that holds a corpus manifest and ``musdb`` otherwise. ``test`` is the 50 test tracks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from separate.audio import read_span
from separate.data._base import (
    STANDARD_SPLITS,
    Item,
    SeparationDataset,
    check_lengths,
    resolve_options,
    resolve_root,
    split_name,
)
from separate.errors import SeparateError

#: The four stems in MUSDB18's stream order (stream ids 1..4; 0 is the mixture).
STEMS = ("drums", "bass", "other", "vocals")
TARGET_STEMS: dict[str, tuple[str, ...]] = {
    "drums": ("drums",),
    "bass": ("bass",),
    "other": ("other",),
    "vocals": ("vocals",),
    "accompaniment": ("drums", "bass", "other"),
}
#: musdb's default validation subset of the training tracks [R: sigsep-mus-db musdb/configs/mus.yaml].
VALIDATION_TRACKS = (
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
)
VALIDATION_MODES = ("musdb", "random", "corpus", "none")
#: The default mode: ``corpus`` where the root holds a manifest, else ``musdb``.
AUTO_VALIDATION = "auto"
#: What ``examples/corpora/music.py`` writes beside ``train/`` and ``test/``: its ``splits`` name the
#: songs it rendered with validation voices.
CORPUS_MANIFEST = "corpus.json"


def corpus_validation_tracks(root: str | os.PathLike[str]) -> list[str]:
    """The ``valid`` songs that a corpus manifest (``root/corpus.json``) lists."""
    path = os.path.join(root, CORPUS_MANIFEST)
    try:
        with open(path) as handle:
            listed = json.load(handle)["splits"]["valid"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SeparateError(
            f"validation='corpus' needs {path} with splits.valid (from examples/corpora/music.py): {error}"
        ) from None
    return [str(name) for name in listed]


def resolved_validation(root: str | os.PathLike[str], validation: str) -> str:
    """``validation`` with ``auto`` resolved: ``corpus`` where ``root`` holds a manifest, else ``musdb``."""
    if validation != AUTO_VALIDATION:
        return validation
    return "corpus" if os.path.isfile(os.path.join(root, CORPUS_MANIFEST)) else "musdb"


def select_tracks(
    names: Sequence[str],
    split: str,
    validation: str = "musdb",
    valid_fraction: float = 0.25,
    split_seed: int = 42,
    listed: Collection[str] = (),
) -> list[str]:
    """Track names of ``split`` (``train`` or ``valid``) out of the training subset's ``names``.

    ``validation="random"`` shuffles the sorted names with ``numpy.random.default_rng(split_seed)``
    and puts the first ``round(valid_fraction * len(names))`` in validation. ``validation="corpus"``
    holds out the ``listed`` names (:func:`corpus_validation_tracks`), which stay put however many
    songs of a corpus are built.
    """
    if validation not in VALIDATION_MODES:
        known = ", ".join((*VALIDATION_MODES, AUTO_VALIDATION))
        raise SeparateError(f"unknown validation split '{validation}' (known: {known})")
    ordered = sorted(names)
    if validation == "none":
        if split == "valid":
            raise SeparateError("validation='none' keeps every training track; there is no validation split")
        return ordered
    if validation == "musdb":
        held_out = set(VALIDATION_TRACKS)
    elif validation == "corpus":
        held_out = set(listed)
        if split == "valid" and not held_out.intersection(ordered):
            raise SeparateError("none of the corpus' validation songs is built yet")
    else:
        if not 0.0 < valid_fraction < 1.0:
            raise SeparateError(f"valid_fraction must be between 0 and 1, got {valid_fraction}")
        order = np.random.default_rng(split_seed).permutation(len(ordered))
        count = int(round(valid_fraction * len(ordered)))
        held_out = {ordered[i] for i in order[:count]}
    return [name for name in ordered if (name in held_out) == (split == "valid")]


def _target_indices(targets: Sequence[str]) -> list[list[int]]:
    unknown = [t for t in targets if t not in TARGET_STEMS]
    if unknown or not targets:
        raise SeparateError(f"unknown MUSDB18 target(s) {unknown} (known: {', '.join(TARGET_STEMS)})")
    return [[STEMS.index(stem) for stem in TARGET_STEMS[target]] for target in targets]


class _MusdbTracks(SeparationDataset):
    """What MUSDB18 and MUSDB18-HQ share: the ``train``/``valid``/``test`` splits of the tracks and the
    targets as sums of stems. A subclass lists the tracks of a subset and indexes one track."""

    #: The format's name and the files expected under ``root/{train,test}``, for error messages.
    label = ""
    expected = ""

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        targets: Sequence[str] = ("vocals", "accompaniment"),
        validation: str = AUTO_VALIDATION,
        valid_fraction: float = 0.25,
        split_seed: int = 42,
        **options: Any,
    ) -> None:
        root = resolve_root(root, self.label)
        split = split_name(split, STANDARD_SPLITS, root)
        subset = "test" if split == "test" else "train"
        subset_dir = os.path.join(root, subset)
        if not os.path.isdir(subset_dir):
            raise SeparateError(
                f"no {subset} folder under {root} (expected {root}/{{train,test}}/{self.expected})"
            )
        names = self._track_names(root, subset)
        if subset == "train":
            validation = resolved_validation(root, validation)
            listed = corpus_validation_tracks(root) if validation == "corpus" else ()
            names = select_tracks(names, split, validation, valid_fraction, split_seed, listed)
        super().__init__(
            [self._item(subset_dir, name) for name in names],
            list(targets),
            targets=_target_indices(targets),
            where=f"{subset_dir} ({split} split)",
            **resolve_options(options, training=split == "train"),
        )

    def _track_names(self, root: str, subset: str) -> list[str]:
        """Names of the tracks of ``subset`` (``train`` or ``test``), sorted."""
        raise NotImplementedError

    def _item(self, subset_dir: str, name: str) -> Item:
        """The indexed files of one track."""
        raise NotImplementedError


class MusdbHQDataset(_MusdbTracks):
    """MUSDB18-HQ wav folders.

    Args:
        root: folder holding ``train`` and ``test``.
        split: ``train``, ``valid`` (both from the training tracks) or ``test``.
        targets: output sources, stems or ``accompaniment`` (default vocals + accompaniment).
        validation: ``musdb`` (14 named tracks), ``random``, ``corpus`` (the songs ``corpus.json``
            lists as validation), ``none`` or ``auto`` (``corpus`` where ``corpus.json`` exists, else
            ``musdb``); see :func:`select_tracks`.
        valid_fraction, split_seed: the random split's size and seed.
        **options: shared options of :class:`SeparationDataset` (music usually wants
            ``segment``, ``examples_per_item`` crops per track, ``augment="music"``).
    """

    label = "MUSDB18-HQ"
    expected = "<track>/*.wav"

    def _track_names(self, root: str, subset: str) -> list[str]:
        subset_dir = os.path.join(root, subset)
        return sorted(n for n in os.listdir(subset_dir) if os.path.isdir(os.path.join(subset_dir, n)))

    def _item(self, subset_dir: str, name: str) -> Item:
        folder = os.path.join(subset_dir, name)
        mixture = os.path.join(folder, "mixture.wav")
        components = tuple(os.path.join(folder, f"{stem}.wav") for stem in STEMS)
        frames, rate = check_lengths(name, [mixture, *components])
        return Item(name, components, mixture, frames, rate)


def _import_musdb() -> Any:
    try:
        import musdb
    except ImportError as error:
        raise SeparateError(
            "reading MUSDB18 .stem.mp4 files needs the musdb package and ffmpeg (pip install musdb); "
            "MUSDB18-HQ wav folders need neither (layout 'musdbhq')"
        ) from error
    return musdb


class MusdbDataset(_MusdbTracks):
    """MUSDB18 ``.stem.mp4`` files, indexed by ``musdb.DB`` and decoded with ``stempeg``.

    Same arguments as :class:`MusdbHQDataset`. Each read decodes only the needed span (ffmpeg
    seeks), at the file's rate; resampling to ``sample_rate`` is done here with soxr.
    """

    label = "MUSDB18"
    expected = "*.stem.mp4"

    def _track_names(self, root: str, subset: str) -> list[str]:
        musdb = _import_musdb()
        self._tracks = {
            track.name: track for track in musdb.DB(root=root, subsets=subset, is_wav=False).tracks
        }
        self._infos: dict[str, Any] = {}
        return sorted(self._tracks)

    def _item(self, subset_dir: str, name: str) -> Item:
        track = self._tracks[name]
        self._infos[track.path] = track.info
        channels = set(track.info.channels_streams)
        if track.info.nb_audio_streams < 1 + len(STEMS) or len(channels) != 1:
            raise SeparateError(f"{track.path} is not a MUSDB18 stem file (5 streams of equal channels)")
        return Item(name, (track.path,) * len(STEMS), track.path, int(track.samples), int(track.rate))

    def _probe_channels(self, item: Item) -> int:
        return int(self._infos[item.mixture].channels_streams[0])

    def read(
        self,
        item_index: int,
        offset: int,
        samples: int,
        components: Sequence[int],
        *,
        need_mixture: bool = True,
    ) -> tuple[np.ndarray | None, np.ndarray]:
        item = self.items[item_index]
        streams = [1 + c for c in components] + ([0] if need_mixture else [])

        def decode(first: int, stop: int) -> np.ndarray:
            return self._decode(item, streams, first, stop)

        audio = read_span(
            item.mixture,
            offset,
            samples,
            frames=item.frames,
            file_rate=item.rate,
            target_rate=self.sample_rate,
            reader=decode,
        )
        if self.mono:
            audio = audio.mean(axis=-2, keepdims=True)
        parts = list(audio[: len(components)])
        mixture = audio[-1] if need_mixture else None
        return mixture, self.check_channels(item, parts, mixture)

    def _decode(self, item: Item, streams: list[int], first: int, stop: int) -> np.ndarray:
        """Frames ``[first, stop)`` of the given streams: ``[len(streams), C, stop - first]``."""
        import stempeg

        info = self._infos[item.mixture]
        channels = int(info.channels_streams[0])
        if stop <= first:
            return np.zeros((len(streams), channels, 0), dtype=np.float32)
        audio, _ = stempeg.read_stems(
            item.mixture,
            start=first / item.rate,
            duration=(stop - first) / item.rate,
            stem_id=streams,
            always_3d=True,
            dtype=np.float32,
            info=info,
        )
        # ffmpeg may return a frame more or less than asked; the grid is the start time.
        audio = np.transpose(audio, (0, 2, 1))
        have = audio.shape[-1]
        if have < stop - first:
            audio = np.pad(audio, ((0, 0), (0, 0), (0, stop - first - have)))
        return np.ascontiguousarray(audio[..., : stop - first])
