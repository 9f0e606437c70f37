"""Build a multitrack music corpus with real instrument samples and real voices, deterministically.

    python examples/corpora/music.py --out ../data/music --speech-pool ../data/speech/pool/16000

Needs ``apt-get install -y fluidsynth fluid-soundfont-gm timgm6mb-soundfont hydrogen-drumkits
fretsonfire-songs-sectoid fretsonfire-songs-muldjord`` (festival for its singing mode, optional) and
``pip install 'separate[corpora]'`` (pyworld, pretty_midi, pyfluidsynth, music21), plus the speech
corpus of ``speech.py`` (its 16 kHz voice pools and ``speakers.json``). Every soundfont named by
``--soundfonts`` must be installed: the songs depend on the set.

Layout (MUSDB18-HQ, read by ``make_dataset("musdbhq", out, split)``): ``out/{train,test}/<song>/
{mixture,drums,bass,other,vocals}.wav``, 16-bit, stereo, ``--rate`` Hz; the mixture is the exact
integer sum of the four stems as written. Each song holds a ``song.json`` of how it was made.

Songs are rendered part by part: drums from Hydrogen's recorded kits or the soundfonts' kits, bass
and instruments (keys, guitars, pads, leads) from GM soundfonts through fluidsynth, on note material
from procedural songs (styles, grooves, chord progressions) or real compositions from the music21
corpus (Bach chorales, Monteverdi madrigals, Palestrina, folk tunes) re-voiced onto a band; each part
gets gain, pan, EQ, light compression and a shared room reverb. Vocals are recorded voices of the
speech corpus re-synthesised to sing (``music_vocals``), with backing harmonies by the same or a
second voice, festival's singing mode or the soundfonts' choir.

Splits: test songs use the speech corpus' ``test`` voices, held-out kits (``--test-kits``) and
held-out compositions; training songs use ``train`` voices and their warped copies. Validation: the
loader's ``validation="random"`` split (``select_tracks``) of all ``--train-songs`` names, with
``valid_fraction=--valid-fraction`` and ``split_seed=--split-seed``, picks a fixed subset of
``train/``, which the builder renders with the ``valid`` voices. ``corpus.json`` lists every split;
pass ``validation="corpus"`` to the loader to hold out exactly those songs, also while the build is
still running (a random split of the songs built so far would not match).

Real recordings (``out/real``, same layout): Frets on Fire songs, their lead guitar and backing band
recorded separately, with sung vocals on top: ``other`` holds guitar + backing (``guitar.wav`` and
``backing.wav`` are kept beside it), ``drums``/``bass`` are silent, so only vocals/accompaniment
targets apply. Muldjord's backing tracks hold a singer, so those songs keep only their guitar.
``real/test`` holds whole held-out songs never used for training (``--real-test``); ``real/train``
crops of the others (add it to a recipe with ``train_extra``).

The build resumes: finished songs are skipped, each song is written to a hidden folder then renamed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus_cli  # noqa: E402
import music_parts as mp  # noqa: E402
import music_real as real  # noqa: E402
import music_render as mr  # noqa: E402
from corpus_cli import log  # noqa: E402
from music_songs import Sources, make_song, mix_parts  # noqa: E402

VERSION = 2
STEMS = ("drums", "bass", "other", "vocals")
LICENCES = {
    "fluid-soundfont-gm": "MIT (FluidR3_GM.sf2)",
    "timgm6mb-soundfont": "GPL-2 (TimGM6mb.sf2)",
    "hydrogen-drumkits": "GPL-2+ / CC-BY-SA-3.0 / CC-BY-3.0 / CC0 (per kit, see drumkit.xml)",
    "fretsonfire-songs-sectoid": "MIT-style (Carlos Viola Iborra)",
    "fretsonfire-songs-muldjord": "CC-BY-SA-3.0 (El Senator, Muldjord)",
    "music21 corpus": "public-domain compositions; encodings BSD-3 / CC (music21 corpus licences)",
    "speech voices": "see the speech corpus' speakers.json (GPL-2 / CC-BY-SA-3.0)",
    "festival": "festival and festvox diphone voices: free licences (see each package)",
}


def song_names(args: argparse.Namespace) -> dict[str, list[str]]:
    """Song folder names per role: ``train``, ``valid`` (folders in ``train/``) and ``test``."""
    from separate.data.musdb import select_tracks

    train = [f"train-{i:04d}" for i in range(args.train_songs)]
    valid = select_tracks(train, "valid", "random", args.valid_fraction, args.split_seed) if train else []
    return {
        "train": [n for n in train if n not in set(valid)],
        "valid": valid,
        "test": [f"test-{i:03d}" for i in range(args.test_songs)],
    }


def song_rng(seed: int, role: str, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(role.encode()), zlib.crc32(name.encode())])


def is_done(folder: Path, role: str) -> bool:
    meta = folder / "song.json"
    if not (meta.is_file() and all((folder / f"{s}.wav").is_file() for s in ("mixture", *STEMS))):
        return False
    info = json.loads(meta.read_text())
    return info.get("role") == role and info.get("version") == VERSION


def quantise(stems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int16 stems ``[S, C, T]`` and their exact int16 sum (the caller keeps the sum's peak under 1)."""
    ints = np.clip(np.round(stems * 32767.0), -32767, 32767).astype(np.int32)
    total = ints.sum(0)
    if np.abs(total).max() > 32767:
        raise ValueError("mixture overflows 16 bits")
    return ints.astype(np.int16), total.astype(np.int16)


def write_song(
    folder: Path, stems: np.ndarray, rate: int, meta: dict, extra: dict[str, np.ndarray] | None = None
) -> None:
    """Write ``stems [4, 2, T]`` (float, mixture peak < 1) and the mixture atomically into ``folder``."""
    partial = folder.parent / f".{folder.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    ints, mixture = quantise(stems)
    for name, audio in [*zip(STEMS, ints, strict=True), ("mixture", mixture)]:
        sf.write(str(partial / f"{name}.wav"), audio.T, rate, subtype="PCM_16")
    for name, audio in (extra or {}).items():
        sf.write(str(partial / f"{name}.wav"), quantise(audio[None])[1].T, rate, subtype="PCM_16")
    (partial / "song.json").write_text(json.dumps({**meta, "version": VERSION}, indent=1, default=str))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)


def levels(stems: np.ndarray, rate: int) -> dict[str, float]:
    """Active RMS per stem in dBFS (-inf for silence)."""
    return {
        s: round(float(20 * np.log10(max(mr.active_rms(a, rate), 1e-10))), 1)
        for s, a in zip(STEMS, stems, strict=True)
    }


# ----------------------------------------------------------------------------- jobs
_SOURCES: Sources | None = None


def _sources(args: argparse.Namespace) -> Sources:
    global _SOURCES
    if _SOURCES is None:
        _SOURCES = Sources.load(args)
    return _SOURCES


def build_song(job: tuple[argparse.Namespace, str, str]) -> str:
    args, role, name = job
    folder = Path(args.out) / ("test" if role == "test" else "train") / name
    if is_done(folder, role):
        return f"{name}: done"
    started = time.time()
    rng = song_rng(args.seed, role, name)
    seconds = float(rng.uniform(args.min_seconds, args.max_seconds))
    parts, meta = make_song(_sources(args), rng, role, seconds)
    stems = mix_parts(parts, rng, args.rate, seconds)
    meta = {
        "name": name,
        "role": role,
        "seconds": round(seconds, 3),
        "rate": args.rate,
        **meta,
        "levels_dbfs": levels(stems, args.rate),
    }
    write_song(folder, stems, args.rate, meta)
    took = time.time() - started
    return (
        f"{name}: {meta['kind']} {meta.get('style', '')} {seconds:.1f}s in {took:.1f}s {meta['levels_dbfs']}"
    )


def build_real_song(job: tuple[argparse.Namespace, str, str, int, int]) -> str:
    """A Frets on Fire song (``frames`` from ``start``; whole song when ``frames`` is 0) with sung vocals."""
    args, role, song_name, start, frames = job
    sources = _sources(args)
    song = next(s for s in sources.fof if s.name == song_name)
    subset = "test" if role == "test" else "train"
    name = f"fof-{song_name}" + (f"-{start // 44100:04d}" if frames else "")
    folder = Path(args.out) / "real" / subset / name
    if is_done(folder, role):
        return f"{name}: done"
    started = time.time()
    rng = song_rng(args.seed, "real-" + role, name)
    guitar, backing = real.read_fof(song, start, frames or song.frames, args.rate)
    if not song.backing_usable:
        backing = np.zeros_like(backing)
    seconds = guitar.shape[1] / args.rate
    tonic, minor = real.estimate_key(guitar + backing, args.rate)
    form = mp.make_form(rng, seconds, real.fof_tempo(song), 4, tonic, minor)
    vocals, voice_meta = sources.vocals(rng, form, role, seconds, allow_festival=False)
    accompaniment = guitar + backing
    gain = mr.active_rms(accompaniment, args.rate) / max(mr.active_rms(vocals, args.rate), 1e-9)
    vocals = vocals * gain * 10 ** (rng.uniform(-5, 1) / 20)
    stems = np.stack([np.zeros_like(guitar), np.zeros_like(guitar), accompaniment, vocals])
    scale = min(
        1.0, 0.95 / max(np.abs(stems.sum(0)).max(), np.abs(guitar).max(), np.abs(backing).max(), 1e-9)
    )
    stems, guitar, backing = stems * scale, guitar * scale, backing * scale
    meta = {
        "name": name,
        "role": role,
        "kind": "fof",
        "source": str(song.folder.name),
        "start_frame": start,
        "fof_backing": "song.ogg" if song.backing_usable else "none (it holds vocals)",
        "seconds": round(seconds, 3),
        "rate": args.rate,
        "key": [tonic, minor],
        **voice_meta,
    }
    write_song(
        folder,
        stems,
        args.rate,
        {**meta, "levels_dbfs": levels(stems, args.rate)},
        extra={"guitar": guitar, **({"backing": backing} if song.backing_usable else {})},
    )
    return f"{name}: fof {seconds:.1f}s {time.time() - started:.1f}s"


def real_jobs(args: argparse.Namespace, sources: Sources) -> list[tuple]:
    """Whole held-out songs for ``real/test``; ``--real-crops`` random crops of the others for training."""
    jobs = []
    held = sources.fof_test
    for song in sources.fof:
        if song.name in held:
            jobs.append((args, "test", song.name, 0, 0))
            continue
        rng = np.random.default_rng([args.seed, zlib.crc32(song.name.encode())])
        for _ in range(args.real_crops):
            frames = int(rng.uniform(args.min_seconds, args.max_seconds) * 44100)
            start = int(rng.integers(0, max(1, song.frames - frames)))
            jobs.append((args, "train", song.name, start, frames))
    return jobs


def build(args: argparse.Namespace) -> dict:
    """Write ``corpus.json`` then every missing song: test, held-out real, train/valid, real train crops."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = song_names(args)
    sources = _sources(args)
    real_list = real_jobs(args, sources) if args.real else []
    manifest = {
        "version": VERSION,
        "seed": args.seed,
        "rate": args.rate,
        "splits": names,
        "loader": {
            "layout": "musdbhq",
            "validation": "corpus",
        },
        "real": {
            "test": sorted(sources.fof_test),
            "train": sorted({j[2] for j in real_list if j[1] == "train"}),
        },
        "licences": LICENCES,
        "sources": sources.summary(),
    }
    (out / "corpus.json").write_text(json.dumps(manifest, indent=1))
    train = [
        (args, "valid" if n in set(names["valid"]) else "train", n)
        for n in sorted(names["train"] + names["valid"])
    ]
    stages = [
        (build_song, [(args, "test", n) for n in names["test"]]),
        (build_real_song, [j for j in real_list if j[1] == "test"]),
        (build_song, train),
        (build_real_song, [j for j in real_list if j[1] == "train"]),
    ]
    count = sum(len(n) for n in names.values())
    log(f"{count} songs, {len(real_list)} real-recording songs; {sources.summary()}")
    with ProcessPoolExecutor(args.jobs) if args.jobs > 1 else nullcontext() as pool:
        for function, jobs in stages:
            for line in pool.map(function, jobs) if pool else map(function, jobs):
                log(line)
    return manifest


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = corpus_cli.parser(__doc__)
    parser.add_argument(
        "--speech-pool", required=True, help="folder of <voice>.flac pools (speech.py's pool/16000)"
    )
    parser.add_argument(
        "--speakers", help="speakers.json with each voice's split (default: <pool>/../../speakers.json)"
    )
    parser.add_argument(
        "--soundfonts",
        nargs="*",
        default=["usr/share/sounds/sf2/FluidR3_GM.sf2", "usr/share/sounds/sf2/TimGM6mb.sf2"],
        help="GM soundfonts (relative to --system-root); 'none' uses the additive stand-in",
    )
    parser.add_argument(
        "--test-kits",
        nargs="*",
        default=["The Black Pearl 1.0", "HardElectro1"],
        help="Hydrogen kits kept for test songs",
    )
    parser.add_argument(
        "--real-test",
        nargs="*",
        default=["muldjord-chaos_god", "sectoid-feelings"],
        help="Frets on Fire songs held out into real/test",
    )
    parser.add_argument("--rate", type=int, default=44100)
    parser.add_argument("--train-songs", type=int, default=300)
    parser.add_argument("--test-songs", type=int, default=40)
    parser.add_argument("--min-seconds", type=float, default=30.0)
    parser.add_argument("--max-seconds", type=float, default=40.0)
    parser.add_argument("--valid-fraction", type=float, default=0.1)
    parser.add_argument("--split-seed", type=int, default=42)
    parser.add_argument("--score-fraction", type=float, default=0.35, help="songs built on music21 scores")
    parser.add_argument("--festival", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--real", action=argparse.BooleanOptionalAction, default=True, help="build out/real")
    parser.add_argument("--real-crops", type=int, default=6, help="training crops per Frets on Fire song")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    missing = [f for f in args.soundfonts if f != "none" and not (Path(args.system_root) / f).is_file()]
    if missing:
        parser.error(
            f"soundfont {', '.join(missing)} not found under {args.system_root}: install it (apt-get install "
            "fluid-soundfont-gm timgm6mb-soundfont) or name the ones to use with --soundfonts; "
            "the songs depend on the set"
        )
    if args.speakers is None:
        args.speakers = str(Path(args.speech_pool).resolve().parent.parent / "speakers.json")
    return args


if __name__ == "__main__":
    result = build(parse_args())
    log(f"done: {sum(len(v) for v in result['splits'].values())} songs in {result['splits'].keys()}")
