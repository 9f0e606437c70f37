"""Dataset loaders, augmentation and synthetic data (separate/data)."""

from __future__ import annotations

import csv
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from torch.utils.data import DataLoader

from separate.data import (
    VALIDATION_TRACKS,
    ChannelSwap,
    Compose,
    FolderDataset,
    LibriMixDataset,
    MusdbHQDataset,
    RandomGain,
    Remix,
    SyntheticMixDataset,
    WsjMixDataset,
    make_dataset,
    pad_collate,
    select_tracks,
    write_synthetic_corpus,
)
from separate.errors import SeparateError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wsj_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wsj") / "2speakers"
    return write_synthetic_corpus(root, "wsj0mix", n_items=4, seed=1, duration=(0.3, 0.6))


@pytest.fixture(scope="module")
def libri_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("libri") / "Libri2Mix" / "wav8k" / "min"
    return write_synthetic_corpus(root, "librimix", n_items=4, seed=2, duration=(0.3, 0.6))


@pytest.fixture(scope="module")
def musdb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("musdb") / "musdb18hq"
    return write_synthetic_corpus(root, "musdbhq", n_items=4, seed=3, sample_rate=8000, duration=(0.5, 0.8))


def _write(path: Path, audio: np.ndarray, rate: int = 8000) -> None:
    """audio: [C, T] or [T]."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio.T if audio.ndim == 2 else audio, rate, subtype="FLOAT")


def _frames(path: Path) -> int:
    return sf.info(str(path)).frames


# ----------------------------------------------------------------------------------- WSJ0-2mix


def test_wsj0mix_whole_items_match_files(wsj_root: Path) -> None:
    data = make_dataset("wsj0mix", wsj_root, "train")
    assert len(data) == 4 and data.sources == ["s1", "s2"] and data.sample_rate == 8000
    names = sorted(os.listdir(wsj_root / "tr" / "mix"))
    for index, name in enumerate(names):
        mix, sources = data[index]
        expected_mix = sf.read(str(wsj_root / "tr" / "mix" / name), dtype="float32")[0]
        expected_s2 = sf.read(str(wsj_root / "tr" / "s2" / name), dtype="float32")[0]
        assert mix.dtype == torch.float32 and sources.dtype == torch.float32
        assert mix.shape == (1, len(expected_mix)) and sources.shape == (2, 1, len(expected_mix))
        assert np.array_equal(mix[0].numpy(), expected_mix)
        assert np.array_equal(sources[1, 0].numpy(), expected_s2)
        assert torch.allclose(mix, sources.sum(0), atol=1e-6)
        assert data.item_name(index) == name[:-4]


def test_split_aliases_and_lrs2_layout(wsj_root: Path) -> None:
    assert (
        len(make_dataset("wsj0mix", wsj_root, "valid")) == len(make_dataset("wsj0mix", wsj_root, "cv")) == 1
    )
    assert len(make_dataset("lrs2mix", wsj_root, "tt")) == 1
    assert make_dataset("wsj0mix", wsj_root, "train").random_crops
    assert not make_dataset("wsj0mix", wsj_root, "test").random_crops


def test_random_crops_read_the_right_span(wsj_root: Path) -> None:
    whole = WsjMixDataset(wsj_root, "tr")
    cropped = WsjMixDataset(wsj_root, "tr", segment=0.2)
    starts = set()
    for _ in range(6):
        mix, sources = cropped[0]
        assert mix.shape == (1, 1600) and sources.shape == (2, 1, 1600)
        full_mix, full_sources = whole[0]
        windows = full_mix[0].unfold(0, 1600, 1)
        start = int(torch.nonzero((windows == mix[0]).all(dim=1))[0])
        assert torch.equal(full_sources[..., start : start + 1600], sources)
        starts.add(start)
    assert len(starts) > 1


def test_random_crops_leave_the_global_rng_alone(wsj_root: Path) -> None:
    data = WsjMixDataset(wsj_root, "tr", segment=0.1)
    state = torch.get_rng_state()
    first_epoch = [data[0][0] for _ in range(4)]
    assert torch.equal(torch.get_rng_state(), state)
    assert len({tuple(crop[0, :8].tolist()) for crop in first_epoch}) > 1
    data.set_epoch(0)
    assert all(torch.equal(data[0][0], crop) for crop in first_epoch)
    workers = DataLoader(data, batch_size=4, num_workers=1, generator=torch.Generator().manual_seed(1))
    again = DataLoader(data, batch_size=4, num_workers=1, generator=torch.Generator().manual_seed(1))
    assert torch.equal(next(iter(workers))[0], next(iter(again))[0])


def test_validation_crops_are_deterministic(wsj_root: Path) -> None:
    first = WsjMixDataset(wsj_root, "tr", segment=0.2, random_crops=False)
    second = WsjMixDataset(wsj_root, "tr", segment=0.2, random_crops=False)
    other_seed = WsjMixDataset(wsj_root, "tr", segment=0.2, random_crops=False, seed=5)
    offsets = [first.crop(first.lengths[i], first.generator(i))[0] for i in range(len(first))]
    offsets_other = [other_seed.crop(first.lengths[i], other_seed.generator(i))[0] for i in range(len(first))]
    for index in range(len(first)):
        assert torch.equal(first[index][0], second[index][0])
        assert torch.equal(first[index][1], second[index][1])
        assert torch.equal(first[index][0], first[index][0])
    assert offsets != offsets_other


def test_short_items_dropped_or_padded(wsj_root: Path) -> None:
    lengths = sorted(_frames(p) for p in (wsj_root / "tr" / "mix").iterdir())
    segment = (lengths[1] + 1) / 8000
    dropped = WsjMixDataset(wsj_root, "tr", segment=segment)
    assert len(dropped) == sum(length >= round(segment * 8000) for length in lengths) == 2
    padded = WsjMixDataset(wsj_root, "tr", segment=segment, short="pad", random_crops=False)
    assert len(padded) == 4
    shortest = int(np.argmin(padded.lengths))
    mix, sources = padded[shortest]
    assert mix.shape[-1] == round(segment * 8000)
    assert torch.all(mix[..., lengths[0] :] == 0) and torch.all(sources[..., lengths[0] :] == 0)
    assert mix[..., : lengths[0]].abs().sum() > 0


def test_resampling_matches_whole_file_soxr(wsj_root: Path) -> None:
    name = sorted(os.listdir(wsj_root / "tr" / "mix"))[0]
    audio = sf.read(str(wsj_root / "tr" / "s1" / name), dtype="float32")[0]
    reference = soxr.resample(audio, 8000, 16000)
    whole = WsjMixDataset(wsj_root, "tr", sample_rate=16000)
    _, sources = whole[0]
    assert sources.shape[-1] == len(reference)
    assert np.allclose(sources[0, 0].numpy(), reference, atol=1e-6)
    cropped = WsjMixDataset(wsj_root, "tr", sample_rate=16000, segment=0.1, random_crops=False)
    offset, samples = cropped.crop(cropped.lengths[0], cropped.generator(0))
    _, crop = cropped[0]
    assert crop.shape == (2, 1, 1600) and samples == 1600
    assert np.allclose(crop[0, 0, 32:-32].numpy(), reference[offset + 32 : offset + 1568], atol=2e-3)


def test_dataloader_batches_fixed_and_variable_lengths(wsj_root: Path) -> None:
    fixed = DataLoader(WsjMixDataset(wsj_root, "tr", segment=0.25), batch_size=2)
    mix, sources = next(iter(fixed))
    assert mix.shape == (2, 1, 2000) and sources.shape == (2, 2, 1, 2000)
    whole = WsjMixDataset(wsj_root, "tr")
    mix, sources, lengths = pad_collate([whole[0], whole[1]])
    assert lengths.tolist() == whole.lengths[:2]
    assert mix.shape == (2, 1, max(whole.lengths[:2])) and sources.shape[:3] == (2, 2, 1)
    shorter = int(torch.argmin(lengths))
    assert torch.all(mix[shorter, :, lengths[shorter] :] == 0)


# ----------------------------------------------------------------------------------- WHAM!


@pytest.fixture
def wham_root(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, count in (("tr", 2), ("cv", 1), ("tt", 1)):
        for index in range(count):
            s1, s2, noise = (rng.standard_normal(800).astype(np.float32) * 0.1 for _ in range(3))
            files = {"s1": s1, "s2": s2, "noise": noise, "mix_clean": s1 + s2, "mix_both": s1 + s2 + noise}
            files["mix_single"] = s1 + noise
            for folder, audio in files.items():
                _write(tmp_path / split / folder / f"utt{index}.wav", audio)
    return tmp_path


def test_wham_tasks_pick_their_folders(wham_root: Path) -> None:
    def read(folder: str) -> np.ndarray:
        return sf.read(str(wham_root / "tr" / folder / "utt0.wav"), dtype="float32")[0]

    noisy = make_dataset("wham", wham_root, "train")
    mix, sources = noisy[0]
    assert np.array_equal(mix[0].numpy(), read("mix_both")) and sources.shape == (2, 1, 800)
    clean_mix, _ = make_dataset("wham", wham_root, "train", task="sep_clean")[0]
    assert np.array_equal(clean_mix[0].numpy(), read("mix_clean"))
    single = make_dataset("wham", wham_root, "train", task="enh_single")
    assert single.sources == ["s1"] and np.array_equal(single[0][0][0].numpy(), read("mix_single"))
    both = make_dataset("wham", wham_root, "train", task="enh_both")
    assert np.array_equal(both[0][1][0, 0].numpy(), read("mix_clean"))


def test_noisy_augmentation_keeps_the_noise(wham_root: Path) -> None:
    data = make_dataset("wham", wham_root, "train", augment=RandomGain(0.5, 0.5))
    noise = sf.read(str(wham_root / "tr" / "noise" / "utt0.wav"), dtype="float32")[0]
    mix, sources = data[0]
    s1 = sf.read(str(wham_root / "tr" / "s1" / "utt0.wav"), dtype="float32")[0]
    assert np.allclose(sources[0, 0].numpy(), 0.5 * s1, atol=1e-7)
    assert np.allclose((mix - sources.sum(0))[0].numpy(), noise, atol=1e-6)


# ----------------------------------------------------------------------------------- LibriMix


def test_librimix_csv_and_tasks(libri_root: Path) -> None:
    clean = make_dataset("librimix", libri_root, "train")
    assert len(clean) == 4 and clean.sources == ["s1", "s2"] and not clean.noisy
    with open(libri_root / "metadata" / "mixture_train-360_mix_clean.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert os.path.isabs(rows[0]["mixture_path"])
    mix, sources = clean[0]
    assert mix.shape[-1] == int(rows[0]["length"]) and torch.allclose(mix, sources.sum(0), atol=1e-6)
    noisy = LibriMixDataset(libri_root, "dev", task="sep_noisy")
    assert noisy.noisy and len(noisy) == 1
    mix, sources = noisy[0]
    noise = sf.read(rows_noise_path(libri_root, "dev"), dtype="float32")[0]
    assert np.allclose((mix - sources.sum(0))[0].numpy(), noise, atol=1e-6)
    assert len(make_dataset("librimix", libri_root / "metadata", "test")) == 1
    cropped = LibriMixDataset(libri_root, "train-360", segment=0.4)
    assert len(cropped) == sum(int(row["length"]) >= 3200 for row in rows)


def rows_noise_path(root: Path, subset: str) -> str:
    with open(root / "metadata" / f"mixture_{subset}_mix_both.csv") as handle:
        return next(csv.DictReader(handle))["noise_path"]


def test_librimix_relative_and_moved_paths(tmp_path: Path) -> None:
    original = write_synthetic_corpus(
        tmp_path / "original", "librimix", n_items=1, seed=4, duration=(0.2, 0.3)
    )
    moved = tmp_path / "elsewhere" / "Libri2Mix" / "wav8k" / "min"
    moved.parent.mkdir(parents=True)
    original.rename(moved)
    stale = LibriMixDataset(moved, "dev")
    assert stale.items[0].mixture.startswith(str(moved))
    mix, sources = stale[0]
    assert torch.allclose(mix, sources.sum(0), atol=1e-6)
    relative = write_synthetic_corpus(
        tmp_path / "rel", "librimix", n_items=1, seed=4, duration=(0.2, 0.3), relative_paths=True
    )
    with open(relative / "metadata" / "mixture_test_mix_clean.csv") as handle:
        assert not os.path.isabs(next(csv.DictReader(handle))["source_1_path"])
    mix, sources = LibriMixDataset(relative, "test")[0]
    assert torch.allclose(mix, sources.sum(0), atol=1e-6)


def test_many_speaker_librijmix(tmp_path: Path) -> None:
    root = write_synthetic_corpus(tmp_path, "librimix", n_items=1, seed=5, n_src=5, duration=(0.2, 0.2))
    data = LibriMixDataset(root, "train", n_src=5)
    mix, sources = data[0]
    assert data.sources == ["s1", "s2", "s3", "s4", "s5"] and sources.shape == (5, 1, 1600)
    with pytest.raises(SeparateError, match="n_src=3 but .* lists 5 sources"):
        LibriMixDataset(root, "train", n_src=3)


# ----------------------------------------------------------------------------------- MUSDB18


def test_musdbhq_targets_and_mono(musdb_root: Path) -> None:
    names = sorted(os.listdir(musdb_root / "test"))
    two = make_dataset("musdbhq", musdb_root, "test")
    four = make_dataset("musdbhq", musdb_root, "test", targets=["drums", "bass", "other", "vocals"])
    assert two.sources == ["vocals", "accompaniment"] and two.channels == 2
    mix, sources = two[0]
    _, stems = four[0]
    track = musdb_root / "test" / names[0]
    assert np.array_equal(mix.numpy(), sf.read(str(track / "mixture.wav"), dtype="float32")[0].T)
    assert torch.equal(sources[0], stems[3])
    assert torch.allclose(sources[1], stems[0] + stems[1] + stems[2], atol=1e-6)
    mono_mix, mono_sources = make_dataset("musdbhq", musdb_root, "test", mono=True)[0]
    assert mono_mix.shape == (1, mix.shape[-1]) and mono_sources.shape == (2, 1, mix.shape[-1])
    assert torch.allclose(mono_mix[0], mix.mean(0), atol=1e-6)


def test_musdb_default_validation_tracks(musdb_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "hq"
    shutil.copytree(musdb_root, root)
    first = sorted(os.listdir(root / "train"))[0]
    os.rename(root / "train" / first, root / "train" / VALIDATION_TRACKS[7])
    valid = MusdbHQDataset(root, "valid")
    train = MusdbHQDataset(root, "train")
    assert [item.name for item in valid.items] == ["Leaf - Summerghost"]
    assert len(train) == 3 and "Leaf - Summerghost" not in [item.name for item in train.items]
    assert len(MusdbHQDataset(root, "train", validation="none")) == 4
    assert len(VALIDATION_TRACKS) == 14


def test_random_track_split_is_seeded_and_disjoint() -> None:
    names = [f"Artist {i:03d} - Song" for i in range(100)]
    train = select_tracks(names, "train", "random", 0.25, split_seed=7)
    valid = select_tracks(names, "valid", "random", 0.25, split_seed=7)
    assert len(train) == 75 and len(valid) == 25 and not set(train) & set(valid)
    assert valid == select_tracks(names, "valid", "random", 0.25, split_seed=7)
    assert valid != select_tracks(names, "valid", "random", 0.25, split_seed=8)
    assert len(select_tracks(names, "valid", "random", 0.2)) == 20


def test_music_crops_per_track_and_augmentation(musdb_root: Path) -> None:
    data = MusdbHQDataset(
        musdb_root, "train", validation="none", segment=0.25, examples_per_item=3, augment="music"
    )
    assert len(data) == 12 and data.item_name(5) == data.items[1].name
    for index in (0, 7):
        mix, sources = data[index]
        assert mix.shape == (2, 2000) and sources.shape == (2, 2, 2000)
        assert torch.allclose(mix, sources.sum(0), atol=1e-6)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg to write a stem file")
def test_musdb_stem_mp4_through_musdb_package(tmp_path: Path) -> None:
    pytest.importorskip("musdb")
    rate, seconds = 44100, 1.0
    t = np.arange(int(rate * seconds)) / rate
    frequencies = {"drums": 300.0, "bass": 600.0, "other": 1200.0, "vocals": 2400.0}
    stems = [0.2 * np.stack([np.sin(2 * np.pi * f * t)] * 2) for f in frequencies.values()]
    inputs = [sum(stems), *stems]
    command = ["ffmpeg", "-y", "-loglevel", "error"]
    for index, audio in enumerate(inputs):
        _write(tmp_path / f"stream{index}.wav", audio.astype(np.float32), rate)
        command += ["-i", str(tmp_path / f"stream{index}.wav")]
    (tmp_path / "train").mkdir()
    command += [arg for index in range(5) for arg in ("-map", str(index))]
    command += ["-c:a", "aac", "-b:a", "192k", str(tmp_path / "train" / "Some Artist - Some Song.stem.mp4")]
    subprocess.run(command, check=True)
    data = make_dataset(
        "musdb",
        tmp_path,
        "train",
        validation="none",
        targets=list(frequencies),
        sample_rate=16000,
        segment=0.5,
        random_crops=False,
    )
    mix, sources = data[0]
    assert mix.shape == (2, 8000) and sources.shape == (4, 2, 8000)
    spectrum_bins = np.fft.rfftfreq(8000, 1 / 16000)
    for source, frequency in zip(sources, frequencies.values(), strict=True):
        peak = spectrum_bins[np.argmax(np.abs(np.fft.rfft(source[0].numpy())))]
        assert abs(peak - frequency) < 5
    residual = (mix - sources.sum(0)).pow(2).mean() / mix.pow(2).mean()
    assert residual < 0.05


# ----------------------------------------------------------------------------------- folder


def _constant_folder(root: Path, items: int, names: tuple[str, ...] = ("guitar", "voice")) -> None:
    """Item i, source k is the constant (10 i + k + 1) / 100 over 400 samples."""
    for i in range(items):
        parts = [np.full(400, (10 * i + k + 1) / 100, dtype=np.float32) for k in range(len(names))]
        for name, part in zip(names, parts, strict=True):
            _write(root / f"item{i}" / f"{name}.wav", part)
        _write(root / f"item{i}" / "mixture.wav", sum(parts))


def test_folder_sources_discovered_or_given(tmp_path: Path) -> None:
    _constant_folder(tmp_path / "train", 3)
    found = make_dataset("folder", tmp_path, "train")
    assert found.sources == ["guitar", "voice"] and len(found) == 3
    given = FolderDataset(tmp_path, "train", sources=["voice", "guitar"])
    mix, sources = given[1]
    assert torch.allclose(sources[:, 0, 0], torch.tensor([0.12, 0.11])) and torch.allclose(
        mix, sources.sum(0)
    )
    summed = FolderDataset(tmp_path / "train", mixture=None)
    assert torch.allclose(summed[0][0], summed[0][1].sum(0))
    (tmp_path / "train" / "item2" / "voice.wav").rename(tmp_path / "train" / "item2" / "vox.wav")
    with pytest.raises(SeparateError, match="every item needs the same source files"):
        FolderDataset(tmp_path, "train")
    with pytest.raises(SeparateError, match="missing file: .*item2.*voice"):
        FolderDataset(tmp_path, "train", sources=["guitar", "voice"])


# ----------------------------------------------------------------------------------- augmentation


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_random_gain_ranges() -> None:
    ones = torch.ones(50, 2, 10)
    gains = RandomGain(0.7, 1.0)(ones, _generator(0))[:, 0, 0]
    assert gains.min() >= 0.7 and gains.max() <= 1.0 and gains.std() > 0.05
    assert torch.all(RandomGain(0.7, 1.0)(ones, _generator(0)) == gains[:, None, None])
    decibels = 20 * torch.log10(RandomGain(-3.0, 3.0, decibels=True)(ones, _generator(1))[:, 0, 0])
    assert decibels.min() >= -3.0 - 1e-4 and decibels.max() <= 3.0 + 1e-4 and decibels.min() < -1
    with pytest.raises(SeparateError):
        RandomGain(1.0, 0.5)


def test_channel_swap() -> None:
    stereo = torch.stack([torch.zeros(3, 5), torch.ones(3, 5)], dim=1)
    assert torch.equal(ChannelSwap(1.0)(stereo, _generator(0)), stereo.flip(1))
    assert torch.equal(ChannelSwap(0.0)(stereo, _generator(0)), stereo)
    mono = torch.randn(3, 1, 5)
    assert torch.equal(ChannelSwap(1.0)(mono, _generator(0)), mono)


def test_remix_draws_components_from_other_items(tmp_path: Path) -> None:
    _constant_folder(tmp_path, 6)
    data = FolderDataset(tmp_path, segment=0.02)
    own = torch.from_numpy(data.read(0, 0, 160, [0, 1])[1])
    drawn_items = set()
    for seed in range(8):
        remixed = Remix(data)(own, _generator(seed))
        assert remixed.shape == own.shape
        codes = torch.round(remixed[:, 0, 0] * 100).int().tolist()
        items, slots = [code // 10 for code in codes], [code % 10 - 1 for code in codes]
        assert slots == [0, 1] and items[0] != items[1]
        drawn_items.update(items)
        assert torch.equal(remixed, Remix(data)(own, _generator(seed)))
    assert drawn_items - {0}
    speech_slots = set()
    for seed in range(8):
        codes = torch.round(Remix(data, any_slot=True)(own, _generator(seed))[:, 0, 0] * 100).int()
        speech_slots.update((codes % 10 - 1).tolist())
    assert speech_slots == {0, 1}


def test_dataset_augmentation_recomputes_the_mixture(tmp_path: Path) -> None:
    _constant_folder(tmp_path, 4)
    plain = FolderDataset(tmp_path, random_crops=False)
    augmented = FolderDataset(tmp_path, random_crops=False, augment="speech-remix")
    again = FolderDataset(tmp_path, random_crops=False, augment="speech-remix")
    for index in range(4):
        mix, sources = augmented[index]
        assert torch.allclose(mix, sources.sum(0), atol=1e-7)
        assert torch.equal(mix, again[index][0])
    assert not torch.equal(plain[0][1], augmented[0][1])
    composed = FolderDataset(tmp_path, augment=Compose([RandomGain(0.7, 1.0), ChannelSwap()]))
    mix, sources = composed[2]
    ratio = sources[:, 0, 0] / plain[2][1][:, 0, 0]
    assert torch.all((ratio >= 0.7 - 1e-6) & (ratio <= 1.0 + 1e-6))
    with pytest.raises(SeparateError, match="unknown augmentation"):
        FolderDataset(tmp_path, augment="reverb")


# ----------------------------------------------------------------------------------- errors


def test_error_messages(wsj_root: Path, tmp_path: Path) -> None:
    with pytest.raises(SeparateError, match=f"no tr/cv/tt folders under {tmp_path}"):
        make_dataset("wsj0mix", tmp_path, "train")
    with pytest.raises(SeparateError, match="is not a folder"):
        make_dataset("wsj0mix", tmp_path / "nothing", "train")
    with pytest.raises(SeparateError, match="unknown dataset layout 'wsj'"):
        make_dataset("wsj", wsj_root, "train")
    with pytest.raises(SeparateError, match="unknown split 'training'"):
        make_dataset("wsj0mix", wsj_root, "training")
    with pytest.raises(SeparateError, match="do not take that option"):
        make_dataset("wsj0mix", wsj_root, "train", validation="none")
    with pytest.raises(SeparateError, match="no mixture in .* is at least 5.0 s long"):
        make_dataset("wsj0mix", wsj_root, "train", segment=5.0)

    root = tmp_path / "corpus"
    shutil.copytree(wsj_root, root)
    name = sorted(os.listdir(root / "tr" / "mix"))[0]
    (root / "tr" / "s2" / name).unlink()
    with pytest.raises(SeparateError, match=f"missing file: .*s2/{name}"):
        make_dataset("wsj0mix", root, "train")
    _write(root / "tr" / "s2" / name, np.zeros(10, dtype=np.float32))
    with pytest.raises(SeparateError, match="mismatched lengths in .* has 10"):
        make_dataset("wsj0mix", root, "train")
    for path in (root / "cv" / "mix").iterdir():
        path.unlink()
    with pytest.raises(SeparateError, match="no mixtures found in .*cv"):
        make_dataset("wsj0mix", root, "valid")
    shutil.rmtree(root / "tt" / "s2")
    with pytest.raises(SeparateError, match="n_src=2 but .* has 1 source folders"):
        WsjMixDataset(root, "test", n_src=2)


def test_channel_mismatch_error(tmp_path: Path) -> None:
    _write(tmp_path / "a" / "mixture.wav", np.zeros((2, 100), dtype=np.float32))
    _write(tmp_path / "a" / "voice.wav", np.zeros(100, dtype=np.float32))
    with pytest.raises(SeparateError, match="pass mono=True"):
        FolderDataset(tmp_path)[0]
    assert FolderDataset(tmp_path, mono=True)[0][0].shape == (1, 100)


def test_file_shorter_than_index_is_reported(libri_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "libri"
    shutil.copytree(libri_root, root)
    data = LibriMixDataset(root, "dev", task="sep_noisy")
    _write(Path(data.items[0].components[1]), np.zeros(10, dtype=np.float32))
    with pytest.raises(SeparateError, match="mismatched lengths"):
        data[0]


# ----------------------------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_and_sums() -> None:
    first = SyntheticMixDataset(n_src=3, sample_rate=8000, segment=0.5, n_items=4, seed=11)
    second = SyntheticMixDataset(n_src=3, sample_rate=8000, segment=0.5, n_items=4, seed=11)
    other = SyntheticMixDataset(n_src=3, sample_rate=8000, segment=0.5, n_items=4, seed=12)
    mix, sources = first[2]
    assert mix.shape == (1, 4000) and sources.shape == (3, 1, 4000) and mix.dtype == torch.float32
    assert torch.equal(mix, second[2][0]) and torch.equal(sources, second[2][1])
    assert not torch.equal(mix, first[1][0]) and not torch.equal(mix, other[2][0])
    assert torch.allclose(mix, sources.sum(0), atol=1e-6) and mix.abs().max() <= 0.9
    short = SyntheticMixDataset(n_src=2, sample_rate=8000, segment=0.05, n_items=20, seed=0)
    assert all(torch.all(short[i][1].pow(2).mean(dim=(1, 2)) > 0) for i in range(20))
    correlation = torch.corrcoef(sources[:, 0])
    assert (correlation - torch.eye(3)).abs().max() < 0.3


def test_synthetic_music_and_variable_lengths() -> None:
    four = SyntheticMixDataset(4, 8000, (0.3, 0.6), 5, seed=0, kind="music", channels=2)
    assert four.sources == ["drums", "bass", "other", "vocals"]
    lengths = set()
    for index in range(5):
        mix, sources = four[index]
        assert sources.shape[:2] == (4, 2) and 2400 <= mix.shape[-1] <= 4800
        assert torch.all(sources.pow(2).mean(dim=(1, 2)) > 0)
        lengths.add(mix.shape[-1])
    assert len(lengths) > 1
    two = SyntheticMixDataset(2, 8000, 0.3, 1, kind="music")
    assert two.sources == ["vocals", "accompaniment"] and two[0][1].shape == (2, 1, 2400)
    with pytest.raises(SeparateError, match="2 .* or 4"):
        SyntheticMixDataset(3, 8000, 0.3, 1, kind="music")
    train = make_dataset("synthetic", None, "train", n_items=2, segment=0.2)
    valid = make_dataset("synthetic", None, "valid", n_items=2, segment=0.2)
    assert not torch.equal(train[0][0], valid[0][0])


def test_make_synthetic_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = REPO / "examples" / "corpora" / "make_synthetic.py"
    out = tmp_path / "synth"
    argv = [
        str(script),
        "--layout",
        "wsj0mix",
        "--out",
        str(out),
        "--n",
        "2",
        "--seed",
        "3",
        "--n-src",
        "3",
        "--duration",
        "0.2",
        "0.3",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_info.value.code == 0
    assert sorted(os.listdir(out / "tr")) == ["mix", "s1", "s2", "s3"]
    data = make_dataset("wsj0mix", out, "train")
    assert len(data) == 2 and data.sources == ["s1", "s2", "s3"]
    again = write_synthetic_corpus(
        tmp_path / "again", "wsj0mix", n_items=2, seed=3, n_src=3, duration=(0.2, 0.3)
    )
    name = sorted(os.listdir(out / "tr" / "mix"))[0]
    assert np.array_equal(
        sf.read(str(out / "tr" / "s3" / name))[0], sf.read(str(again / "tr" / "s3" / name))[0]
    )
