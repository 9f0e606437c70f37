"""The real-speech corpus builder (examples/corpora/speech.py) and dynamic mixing, on fixtures laid
out like the Debian packages' folders."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import voice

from separate.data import DynamicMixDataset, make_dataset
from separate.data.dynamic import draw_probabilities, random_channel_response

ROOT = Path(__file__).resolve().parents[1]


def _load_example(module_name: str, file_name: str):
    """A script of ``examples/corpora`` imported as ``module_name``."""
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "examples" / "corpora" / file_name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _load_builder():
    return _load_example("speech_corpus", "speech.py")


def _write(path: Path, audio: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, rate)


@pytest.fixture(scope="module")
def system_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("system")
    rng = np.random.default_rng(0)
    sounds = root / "usr/share/asterisk/sounds"
    for _k, (folder, f0) in enumerate(
        [("en_US_f_Allison", 210), ("es_MX_f_Allison", 210), ("it_IT_m_Carlo", 110), ("fr_CA_f_June", 190)]
    ):
        for clip in range(6):
            _write(sounds / folder / f"prompt{clip}.wav", voice(rng, 8000, 5.0, f0), 8000)
    # What an asterisk-prompt-* package installs: plain language folders. Never read.
    _write(sounds / "fr" / "reserved.wav", voice(rng, 8000, 30.0, 150), 8000)
    stamps = root / "usr/share/tuxpaint/stamps/animals"
    for lang, f0 in [("ro", 120), ("el", 230), ("bg", 140), ("da", 170)]:
        for clip in range(6):
            _write(stamps / f"cat{clip}_desc_{lang}.ogg", voice(rng, 44100, 5.0, f0), 44100)
    (stamps / "cat0.txt").write_text("A cat sits on a mat.\nfr.utf8=Un chat est assis.\n")
    _write(stamps / "cat0.ogg", rng.standard_normal(44100).astype(np.float32) * 0.1, 44100)
    fillets = root / "usr/share/games/fillets-ng/sound/level1/cs"
    for role, f0 in [("m", 180), ("v", 100), ("0", 260)]:
        for clip in range(6):
            _write(fillets / f"lev-{role}-line{clip}.ogg", voice(rng, 22050, 5.0, f0), 22050)
    words = root / "usr/share/ktuberling/sounds"
    for folder, count, f0 in [("fr", 5, 150), ("sr", 3, 125), ("sr@latin", 3, 125)]:
        for clip in range(count):
            _write(words / folder / f"word{clip}.wav", voice(rng, 22050, 5.0, f0), 22050)
    (words / "fr.soundtheme").write_text("<theme/>")
    game = {
        "010000J1.SB": voice(rng, 11025, 12.0, 110),
        "JOE00001.SB": voice(rng, 11025, 12.0, 110),
        "020001P1.SB": voice(rng, 11025, 12.0, 200),
        "020002P1.SB": voice(rng, 11025, 12.0, 200),
        "C18A_001.SB": voice(rng, 11025, 25.0, 170),
        "C9B__001.SB": voice(rng, 11025, 25.0, 140),
        "1000SSSS.SB": voice(rng, 11025, 25.0, 110),
        "ROOM1.PCX": None,
    }
    _write_queen_data(root / "usr/share/scummvm/flight-of-the-amazon-queen/queen.1c", game)
    return root


def _write_queen_data(path: Path, members: dict[str, np.ndarray | None]) -> None:
    """A ``queen.1c`` as ScummVM's compression tool lays it out, its speech compressed as FLAC."""
    blobs = {}
    for name, audio in members.items():
        buffer = io.BytesIO()
        if audio is None:
            buffer.write(b"\x00" * 64)
        else:
            sf.write(buffer, audio, 11025, format="FLAC")
        blobs[name] = buffer.getvalue()
    offset = 15 + 21 * len(blobs)
    table = b""
    for name, blob in blobs.items():
        table += struct.pack(">12sBII", name.encode(), 1, offset, len(blob))
        offset += len(blob)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        struct.pack(">4s5sIH", b"QTBL", b"CEM10", 3, len(blobs)) + table + b"".join(blobs.values())
    )


@pytest.fixture(scope="module")
def corpus(system_root: Path, tmp_path_factory) -> tuple[Path, dict]:
    builder = _load_builder()
    out = tmp_path_factory.mktemp("corpus")
    args = builder.parse_args(
        [
            "--out",
            str(out),
            "--system-root",
            str(system_root),
            "--jobs",
            "1",
            "--test-voices",
            "2",
            "--valid-voices",
            "2",
            "--min-heldout-seconds",
            "20",
            "--warps",
            "2",
            "--warp-seconds",
            "20",
            "--no-synthetic",
            "--valid-mixtures",
            "4",
            "--test-mixtures",
            "6",
        ]
    )
    return out, builder.build(args)


def test_builder_splits_are_speaker_disjoint(corpus) -> None:
    out, manifest = corpus
    speakers = manifest["speakers"]
    assert "asterisk-allison" in speakers and not any("reserved" in s or s == "asterisk-fr" for s in speakers)
    by_split = {
        split: {k for k, v in speakers.items() if v["split"] == split} for split in ("train", "valid", "test")
    }
    assert len(by_split["test"]) == 2 and len(by_split["valid"]) == 2
    assert not (by_split["train"] & by_split["valid"] or by_split["train"] & by_split["test"])
    for _name, info in speakers.items():
        if info["parent"]:
            assert speakers[info["parent"]]["split"] == "train" and info["split"] == "train"
    for split, short in (("valid", "cv"), ("test", "tt")):
        for rate in ("wav8k", "wav16k"):
            names = os.listdir(out / rate / "min" / short / "mix")
            assert len(names) == {"cv": 4, "tt": 6}[short]
        assert all(speakers[v]["real"] for v in by_split[split])
    # ktuberling's word lists are training voices; a language's script variants are one voice.
    assert speakers["ktuberling-fr"]["split"] == speakers["ktuberling-sr"]["split"] == "train"
    assert not any("@" in name for name in speakers)
    held = {s for s in speakers if speakers[s]["split"] in ("valid", "test")}
    assert any(v["parent"] for v in speakers.values())
    assert not any(v["parent"] in held for v in speakers.values() if v["parent"])


def test_game_characters_are_training_voices_without_warps(corpus) -> None:
    out, manifest = corpus
    speakers = manifest["speakers"]
    game = {name: info for name, info in speakers.items() if info["origin"] == "fotaq"}
    assert set(game) == {"fotaq-joe", "fotaq-talk02", "fotaq-cut18a", "fotaq-cut09b"}
    assert all(info["real"] and info["split"] == "train" for info in game.values())
    # Joe's two clips (a dialogue line and a JOE file) are one voice; descriptions are left out.
    assert 20.0 <= game["fotaq-joe"]["seconds"] < 30.0
    assert not any(info["parent"] in game for info in speakers.values())
    pooled, rate = sf.read(str(out / "pool" / "8000" / "fotaq-cut18a.flac"))
    assert rate == 8000 and len(pooled) > 20 * rate


def test_fixed_mixtures_sum_and_csv(corpus) -> None:
    out, manifest = corpus
    root = out / "wav8k" / "min"
    with open(root / "metadata" / "mixture_test_mix_clean.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    test_voices = {k for k, v in manifest["speakers"].items() if v["split"] == "test"}
    for row in rows:
        mix, _ = sf.read(str(root / row["mixture_path"]))
        sources = [sf.read(str(root / row[f"source_{j}_path"]))[0] for j in (1, 2)]
        np.testing.assert_allclose(mix, sources[0] + sources[1], atol=1e-6)
        assert len(mix) == int(row["length"])
    for name in os.listdir(root / "tt" / "mix"):
        assert any(v.replace("-", "").replace("_", "") in name for v in test_voices)
    dataset = make_dataset("librimix", str(root), "test")
    assert len(dataset) == 6


def test_dynamic_mixing_never_repeats_and_is_deterministic(corpus) -> None:
    out, _ = corpus
    dataset = DynamicMixDataset(out, "train", segment=1.0, n_items=300, seed=3)
    seen = set()
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            recipe = dataset.draw(index)
            assert len(set(recipe["voices"])) == 2
            key = tuple(zip(recipe["voices"], recipe["starts"], strict=False))
            assert key not in seen
            seen.add(key)
    dataset.set_epoch(1)
    mix, sources = dataset[17]
    again_mix, again_sources = dataset[17]
    assert torch.equal(mix, again_mix) and torch.equal(sources, again_sources)
    assert mix.shape == (1, 8000) and sources.shape == (2, 1, 8000)
    torch.testing.assert_close(mix, sources.sum(0))
    dataset.set_epoch(2)
    assert not torch.equal(dataset[17][0], mix)


def test_channel_eq_colours_each_source_within_its_depth(corpus) -> None:
    out, _ = corpus
    plain = DynamicMixDataset(out, "train", segment=1.0, n_items=4, seed=5, speed=(1.0, 1.0))
    coloured = DynamicMixDataset(
        out, "train", segment=1.0, n_items=4, seed=5, speed=(1.0, 1.0), channel_eq=12.0
    )
    assert plain.draw(2)["starts"] == coloured.draw(2)["starts"]
    mix, sources = coloured[2]
    torch.testing.assert_close(mix, sources.sum(0))
    torch.testing.assert_close(coloured[2][1], sources)
    _, plain_sources = plain[2]
    for before, after in zip(plain_sources[:, 0].numpy(), sources[:, 0].numpy(), strict=True):
        ratio_db = 20 * np.log10(
            (np.abs(np.fft.rfft(after)) + 1e-6) / (np.abs(np.fft.rfft(before)) + 1e-6) + 1e-12
        )
        loud = np.abs(np.fft.rfft(before)) > 1e-2 * np.abs(np.fft.rfft(before)).max()
        spread = np.ptp(ratio_db[loud])
        assert 0.5 < spread < 3 * 12.0 + 6.0  # the colouring changed the spectrum, within tilt + 2 bumps
    curves = [random_channel_response(np.random.default_rng(k), 257, 6.0) for k in range(50)]
    assert all(c.shape == (257,) and np.isfinite(c).all() and (c > 0).all() for c in curves)
    assert max(np.abs(20 * np.log10(c)).max() for c in curves) <= 3 * 6.0
    with pytest.raises(Exception, match="channel_eq"):
        DynamicMixDataset(out, "train", channel_eq=-1.0)


def test_origin_weights_scale_a_package_within_its_kind() -> None:
    speakers = {
        "letters-a": {"origin": "klettres", "real": True},
        "letters-b": {"origin": "klettres", "real": True},
        "talk": {"origin": "tuxpaint", "real": True},
        "letters-a~w0": {"origin": "warp", "real": False, "parent": "letters-a"},
        "talk~w0": {"origin": "warp", "real": False, "parent": "talk"},
        "robot": {"origin": "espeak", "real": False},
    }
    voices = sorted(speakers)
    plain = dict(zip(voices, draw_probabilities(speakers, voices), strict=True))
    assert plain["letters-a"] == pytest.approx(0.45 / 3) and plain["robot"] == pytest.approx(0.2)
    weighted = dict(
        zip(voices, draw_probabilities(speakers, voices, origin_weights={"klettres": 0.25}), strict=True)
    )
    assert sum(weighted.values()) == pytest.approx(1.0)
    assert weighted["letters-a"] == pytest.approx(0.45 * 0.25 / 1.5) and weighted["talk"] == pytest.approx(
        0.45 / 1.5
    )
    assert weighted["letters-a~w0"] == pytest.approx(
        0.35 * 0.25 / 1.25
    )  # a warped copy counts as its parent's
    assert weighted["robot"] == pytest.approx(0.2)
    with pytest.raises(Exception, match="negative"):
        draw_probabilities(speakers, voices, origin_weights={"klettres": -1.0})


def test_dynamic_layout_validation_reads_fixed_lists(corpus) -> None:
    out, _ = corpus
    valid = make_dataset("dynamic", str(out), "valid", sample_rate=8000, n_src=2, segment=None)
    assert len(valid) == 4
    train = make_dataset(
        "dynamic", str(out), "train", sample_rate=16000, segment=0.5, n_items=5, noise=True, reverb=True
    )
    mix, sources = train[0]
    assert mix.shape == (1, 8000) and torch.isfinite(mix).all()
    json.dumps(train.voices)


def test_many_speaker_lists_hold_distinct_voices_of_their_split(corpus, tmp_path) -> None:
    out, manifest = corpus
    many = _load_example("speech_many", "speech_many.py")
    file_key = _load_builder().mixture_name_key
    relabelled = many.many_speaker_splits(
        {
            "fillets-nl-v": {"origin": "fillets", "real": True, "split": "valid"},
            "fillets-nl-rand.0": {"origin": "fillets", "real": True, "split": "unused"},
            "fillets-cs-m": {"origin": "fillets", "real": True, "split": "test"},
            "fillets-cs-rand.0": {"origin": "fillets", "real": True, "split": "unused"},
            "tuxpaint-da": {"origin": "tuxpaint", "real": True, "split": "train"},
        }
    )
    assert {k: v["split"] for k, v in relabelled.items()} == {
        "fillets-nl-v": "valid",
        "fillets-nl-rand.0": "valid",
        "fillets-cs-m": "test",
        "fillets-cs-rand.0": "unused",
        "tuxpaint-da": "train",
    }
    target = tmp_path / "speech-2spk-copy"
    written = many.build(out, target, n_src=2, seed=1, valid_count=3, test_count=4)
    speakers = written["speakers"]
    assert written["n_src"] == 2 and (target / "pool").resolve() == (out / "pool").resolve()
    for short, split, count in (("cv", "valid", 3), ("tt", "test", 4)):
        held = {file_key(v) for v, info in speakers.items() if info["split"] == split}
        names = sorted(os.listdir(target / "wav8k" / "min" / short / "mix"))
        assert len(names) == count
        for name in names:
            voices = name.removesuffix(".wav").split("_")[1:]
            assert len(set(voices)) == 2 and set(voices) <= held
            mix, _ = sf.read(str(target / "wav8k" / "min" / short / "mix" / name))
            parts = [sf.read(str(target / "wav8k" / "min" / short / f"s{j}" / name))[0] for j in (1, 2)]
            np.testing.assert_allclose(mix, parts[0] + parts[1], atol=1e-6)
    train = DynamicMixDataset(target, "train", n_src=2, segment=0.5, n_items=3)
    assert set(train.voices) == {k for k, v in manifest["speakers"].items() if v["split"] == "train"}
