"""The music corpus builder (examples/corpora/music.py) on fixtures laid out like the Debian packages'
folders: a Hydrogen kit of generated one-shots, a speech pool with its speakers.json, Frets on Fire
style guitar/backing oggs. No soundfont is needed (the additive stand-in plays the instruments);
the soundfont renderer has its own test, skipped when none is installed."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import voice

from separate.data import make_dataset
from separate.errors import SeparateError

pytest.importorskip("pyworld", reason="the corpus builder sings with the WORLD vocoder (pip install pyworld)")

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / "examples" / "corpora"
STEMS = ("drums", "bass", "other", "vocals")
VOICES = {
    "v-train-a": ("train", 110),
    "v-train-b": ("train", 210),
    "v-valid": ("valid", 150),
    "v-test": ("test", 190),
}
#: Richer voices with a noisy onset in each pause (the syllable finder's consonants).
VOICE = {"harmonics": 11, "voiced_above": -0.2, "onset_noise": 0.05}


def _load_builder():
    sys.path.insert(0, str(CORPORA))
    spec = importlib.util.spec_from_file_location("music_corpus", CORPORA / "music.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["music_corpus"] = module
    spec.loader.exec_module(module)
    return module


def _hit(rng: np.random.Generator, rate: int, kind: str) -> np.ndarray:
    t = np.arange(int(0.3 * rate)) / rate
    if kind == "kick":
        return (np.sin(2 * np.pi * (50 + 100 * np.exp(-30 * t)) * t) * np.exp(-12 * t)).astype(np.float32)
    return (rng.standard_normal(t.size) * np.exp(-(20 if kind == "hat" else 10) * t) * 0.5).astype(np.float32)


def _write_kit(folder: Path, rng: np.random.Generator, layered: bool) -> None:
    folder.mkdir(parents=True)
    instruments = []
    for name, kind in [
        ("Kick", "kick"),
        ("Snare", "snare"),
        ("Closed HH", "hat"),
        ("Open HH", "hat"),
        ("Crash", "hat"),
        ("Tom Hi", "kick"),
        ("Tom Low", "kick"),
    ]:
        files = []
        for layer in range(2 if layered else 1):
            file = f"{name.replace(' ', '_')}_{layer}.wav"
            sf.write(str(folder / file), _hit(rng, 44100, kind) * (0.5 + 0.5 * layer), 44100)
            files.append(file)
        if layered:
            body = "".join(
                f"<layer><filename>{f}</filename><min>{k / 2}</min><max>{(k + 1) / 2}</max>"
                f"<gain>1</gain></layer>"
                for k, f in enumerate(files)
            )
        else:
            body = f"<filename>{files[0]}</filename>"
        instruments.append(f"<instrument><name>{name}</name><volume>1</volume>{body}</instrument>")
    (folder / "drumkit.xml").write_text(
        '<?xml version="1.0"?><drumkit_info xmlns="http://www.hydrogen-music.org/drumkit"><name>k</name>'
        f"<instrumentList>{''.join(instruments)}</instrumentList></drumkit_info>"
    )


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("system")
    rng = np.random.default_rng(0)
    kits = root / "usr/share/hydrogen/data/drumkits"
    _write_kit(kits / "Layered Kit", rng, layered=True)
    _write_kit(kits / "Flat Kit", rng, layered=False)
    songs = root / "usr/share/games/fretsonfire/data/songs/pack"
    for name in ("One", "Two"):
        t = np.arange(8 * 44100) / 44100
        guitar = 0.2 * np.sign(np.sin(2 * np.pi * 196 * t)) * (np.sin(2 * np.pi * 2 * t) > 0)
        backing = 0.2 * np.sin(2 * np.pi * 98 * t) + 0.05 * rng.standard_normal(t.size)
        (songs / name).mkdir(parents=True)
        sf.write(str(songs / name / "guitar.ogg"), np.stack([guitar, guitar], 1), 44100)
        sf.write(str(songs / name / "song.ogg"), np.stack([backing, backing * 0.9], 1), 44100)
    speech = tmp_path_factory.mktemp("speech")
    pool = speech / "pool" / "16000"
    pool.mkdir(parents=True)
    speakers = {}
    for name, (split, f0) in VOICES.items():
        sf.write(str(pool / f"{name}.flac"), voice(rng, 16000, 6.0, f0, **VOICE), 16000)
        speakers[name] = {"split": split, "real": True, "parent": None}
    sf.write(str(pool / "synthetic.flac"), voice(rng, 16000, 6.0, 120, **VOICE), 16000)
    speakers["synthetic"] = {"split": "train", "real": False, "parent": None}
    (speech / "speakers.json").write_text(json.dumps({"speakers": speakers}))
    return root, pool


def _args(builder, out: Path, fixtures: tuple[Path, Path], *extra: str):
    root, pool = fixtures
    return builder.parse_args(
        [
            "--out",
            str(out),
            "--speech-pool",
            str(pool),
            "--system-root",
            str(root),
            "--soundfonts",
            "none",
            "--test-kits",
            "Flat Kit",
            "--real-test",
            "pack-two",
            "--rate",
            "16000",
            "--train-songs",
            "4",
            "--test-songs",
            "2",
            "--min-seconds",
            "3",
            "--max-seconds",
            "4",
            "--valid-fraction",
            "0.25",
            "--score-fraction",
            "0",
            "--no-festival",
            "--real-crops",
            "1",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def built(fixtures, tmp_path_factory) -> tuple[object, Path, dict]:
    builder = _load_builder()
    out = tmp_path_factory.mktemp("music")
    manifest = builder.build(_args(builder, out, fixtures))
    return builder, out, manifest


def _songs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def test_layout_and_exact_sum(built) -> None:
    _, out, manifest = built
    songs = (
        _songs(out / "train")
        + _songs(out / "test")
        + _songs(out / "real" / "train")
        + _songs(out / "real" / "test")
    )
    assert len(songs) == 4 + 2 + 1 + 1
    sounding = dict.fromkeys(STEMS, 0)
    for song in songs:
        stems = [sf.read(str(song / f"{s}.wav"), dtype="int16")[0].astype(np.int32) for s in STEMS]
        mixture, rate = sf.read(str(song / "mixture.wav"), dtype="int16")
        assert rate == 16000 and mixture.ndim == 2 and mixture.shape[1] == 2
        np.testing.assert_array_equal(sum(stems), mixture)
        assert np.abs(mixture).max() < 32767
        meta = json.loads((song / "song.json").read_text())
        assert np.abs(stems[3]).max() > 0, song.name  # every song sings (intros may lack bass or drums)
        if meta["kind"] != "fof":
            for name, stem in zip(STEMS, stems, strict=True):
                sounding[name] += int(np.abs(stem).max() > 0)
    assert min(sounding.values()) >= 4, sounding
    assert manifest["loader"]["validation"] == "corpus"
    assert not list(out.rglob(".*partial"))


def test_splits_are_disjoint_and_voices_follow_them(built) -> None:
    _, out, manifest = built
    splits = manifest["splits"]
    assert len(splits["valid"]) == 1 and len(splits["train"]) == 3 and len(splits["test"]) == 2
    assert not set(_p.name for _p in _songs(out / "train")) & set(_p.name for _p in _songs(out / "test"))
    for role, names in splits.items():
        for name in names:
            folder = out / ("test" if role == "test" else "train") / name
            meta = json.loads((folder / "song.json").read_text())
            assert meta["role"] == role
            assert VOICES[meta["lead_voice"]][0] == role  # test songs sing with unseen voices
    assert manifest["real"]["test"] == ["pack-two"] and manifest["real"]["train"] == ["pack-one"]
    held = _songs(out / "real" / "test")[0]
    other = sf.read(str(held / "other.wav"), dtype="int16")[0].astype(np.int32)
    parts = sum(
        sf.read(str(held / f"{s}.wav"), dtype="int16")[0].astype(np.int32) for s in ("guitar", "backing")
    )
    assert np.abs(other - parts).max() <= 2


def test_loader_reads_train_valid_test(built) -> None:
    _, out, manifest = built
    options = dict(validation="random", valid_fraction=0.25, targets=["vocals", "accompaniment"])
    for split, count in (("train", 3), ("valid", 1), ("test", 2)):
        dataset = make_dataset("musdbhq", out, split, **options)
        assert len(dataset.items) == count
        mix, sources = dataset[0]
        assert mix.shape[0] == 2 and sources.shape[:2] == (2, 2)
    valid = make_dataset("musdbhq", out, "valid", **options)
    assert [item.name for item in valid.items] == manifest["splits"]["valid"]
    listed = make_dataset("musdbhq", out, "valid", validation="corpus")
    assert [item.name for item in listed.items] == manifest["splits"]["valid"]
    default = make_dataset("musdbhq", out, "valid")  # a corpus root validates on its listed songs
    assert [item.name for item in default.items] == manifest["splits"]["valid"]
    four = make_dataset("musdbhq", out, "test", targets=list(STEMS))
    assert len(four.items) == 2


def test_corpus_validation_holds_out_the_listed_songs_of_a_partial_build(built, tmp_path) -> None:
    """A build still running holds some songs: ``validation="corpus"`` keeps the valid-voice ones
    out of training, where a random split of the songs built so far would mix them in."""
    _, out, manifest = built
    partial = tmp_path / "partial"
    (partial / "train").mkdir(parents=True)
    (partial / "test").symlink_to(out / "test")
    (partial / "corpus.json").write_text(json.dumps(manifest))
    valid_song = manifest["splits"]["valid"][0]
    kept = [valid_song, manifest["splits"]["train"][0]]
    for name in kept:
        (partial / "train" / name).symlink_to(out / "train" / name)
    train = make_dataset("musdbhq", partial, "train", validation="corpus")
    valid = make_dataset("musdbhq", partial, "valid", validation="corpus")
    assert [item.name for item in valid.items] == [valid_song]
    assert [item.name for item in train.items] == [kept[1]]
    (partial / "corpus.json").unlink()
    with pytest.raises(SeparateError, match="corpus.json"):
        make_dataset("musdbhq", partial, "valid", validation="corpus")
    with pytest.raises(SeparateError, match="valid split"):  # without a manifest: musdb's named tracks
        make_dataset("musdbhq", partial, "valid")


def test_deterministic_and_resumable(built, fixtures, tmp_path) -> None:
    builder, out, manifest = built
    args = _args(builder, tmp_path, fixtures)
    songs = [("test", "test-000"), (manifest["splits"]["train"][0][:5], manifest["splits"]["train"][0])]
    for role, name in songs:  # built alone, in another order: the same bytes
        builder.build_song((args, role, name))
        folder = ("test" if role == "test" else "train") + "/" + name
        for stem in ("mixture", *STEMS):
            assert (tmp_path / folder / f"{stem}.wav").read_bytes() == (
                out / folder / f"{stem}.wav"
            ).read_bytes()
    before = (tmp_path / "test/test-000/mixture.wav").stat().st_mtime_ns
    assert builder.build_song((args, "test", "test-000")).endswith("done")
    assert (tmp_path / "test/test-000/mixture.wav").stat().st_mtime_ns == before


def test_a_missing_soundfont_stops_the_build_before_it_starts(fixtures, tmp_path, capsys) -> None:
    builder = _load_builder()
    with pytest.raises(SystemExit) as stopped:
        _args(builder, tmp_path / "out", fixtures, "--soundfonts", "usr/share/sounds/sf2/TimGM6mb.sf2")
    assert stopped.value.code == 2
    assert "soundfont usr/share/sounds/sf2/TimGM6mb.sf2 not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_soundfont_renders_reproducibly() -> None:
    pytest.importorskip("fluidsynth", reason="pyfluidsynth is not installed")
    fonts = [
        p
        for p in ("/usr/share/sounds/sf2/TimGM6mb.sf2", "/usr/share/sounds/sf2/FluidR3_GM.sf2")
        if Path(p).is_file()
    ]
    if not fonts:
        pytest.skip("no GM soundfont installed (apt-get install fluid-soundfont-gm)")
    sys.path.insert(0, str(CORPORA))
    import music_parts
    import music_render

    renderer = music_render.Soundfonts(fonts[:1], 22050)
    notes = [music_parts.Note(48 + k % 12, 0.1 * k, 0.1 * k + 0.3, 100) for k in range(10)]
    first = renderer.render(notes, 30, 1.5)
    renderer.render(notes[:3], 0, 0.5)
    assert first.shape == (2, 33075) and np.abs(first).max() > 0.01
    np.testing.assert_array_equal(first, renderer.render(notes, 30, 1.5))
    hits = [music_parts.Hit(role, 0.2 * k, 100) for k, role in enumerate(("kick", "snare", "hat_closed"))]
    assert np.abs(renderer.render_drums(hits, 0, 1.0)).max() > 0.01
