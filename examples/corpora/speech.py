"""Build the real-speech separation corpus from freely licensed Debian packages, deterministically.

    python examples/corpora/speech.py --out ../data/speech --jobs 2

Stages (each skipped when its output exists, so an interrupted build resumes):

1. **Speaker pools.** Every recorded voice of the speech packages becomes a speaker id: asterisk
   core sounds (one voice per folder; Allison's en and es are one id), tuxpaint stamp descriptions
   (one volunteer per language), fillets-ng dialogue (the file name codes the character), klettres
   letters and ktuberling words (one voice per language; Serbian script variants are one voice),
   and the acted dialogue of the talkie game *Flight of the Amazon Queen* (one voice per character,
   training only; see ``speech_games.py``).
   Clips are decoded, trimmed of silence, loudness-normalised and concatenated into
   ``pool/<rate>/<id>.flac`` (16-bit) at every ``--rates`` rate.
2. **More voices** for training only: WORLD-vocoder copies of each training voice with a warped
   spectral envelope (vocal-tract length) and scaled F0 (``pyworld``), and synthetic voices from
   espeak-ng (languages x variants x pitch/rate), flite and festival, reading the packages' own
   multilingual text (tuxpaint stamp descriptions). Each is its own speaker id.
3. **Fixed validation and test mixtures** of real recorded, speaker-disjoint voices, written in the
   WSJ0-2mix layout ``wav8k/min/{cv,tt}/{mix,s1,s2}`` (and ``wav16k``) with LibriMix CSVs in
   ``wav{8k,16k}/min/metadata``. Training mixes on the fly (``separate.data.DynamicMixDataset``).

``speakers.json`` lists every id with its split, origin, licence and duration. The
``asterisk-prompt-*`` packages are never read: they are reserved for independent evaluation.
Run with ``--system-root`` pointing at a folder laid out like ``/`` to build from fixtures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus_cli  # noqa: E402
from corpus_cli import log  # noqa: E402
from speech_games import QUEEN_DATA, find_queen_speakers, open_clip  # noqa: E402

WORK_RATE = 16000
TARGET_DBFS = -25.0
MAX_SECONDS = 20 * 60
MIN_SECONDS = 20.0
RESERVED = "asterisk-prompt"
#: Packages whose voices only train: one actor may voice several of their speaker ids.
TRAIN_ONLY_ORIGINS = ("klettres", "ktuberling", "fotaq")
#: Packages with enough voices of their own to skip WORLD-warped copies (which take CPU-hours).
UNWARPED_ORIGINS = ("fotaq",)

LICENCES = {
    "asterisk": "CC-BY-SA-3.0 (asterisk-core-sounds-*-wav)",
    "tuxpaint": "GPL-2 (tuxpaint-stamps-default)",
    "fillets": "GPL-2+ (fillets-ng-data-cs, fillets-ng-data-nl)",
    "klettres": "GPL-2+ (klettres-data)",
    "ktuberling": "GPL-2+ (ktuberling-data)",
    "fotaq": "Flight-of-the-Amazon-Queen-License: freeware, free redistribution (flight-of-the-amazon-queen)",
    "espeak": "GPL-3+ (espeak-ng), text GPL-2 (tuxpaint-stamps-default)",
    "flite": "BSD-like (flite)",
    "festival": "festival voice licences (festvox-*: free, see each package)",
}


@dataclass
class Speaker:
    """One voice: where its clips come from and which split it belongs to."""

    id: str
    origin: str
    real: bool
    files: list[str] = field(default_factory=list)
    split: str = "train"
    seconds: float = 0.0
    parent: str | None = None
    recipe: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- discovery
def _rooted(system_root: Path, path: str) -> Path:
    return system_root / path.lstrip("/")


def find_real_speakers(system_root: Path) -> list[Speaker]:
    """Every recorded voice of the allowed packages, with its clip files (sorted)."""
    speakers: dict[str, Speaker] = {}

    def add(speaker_id: str, origin: str, path: Path) -> None:
        if RESERVED in str(path):
            return
        speakers.setdefault(speaker_id, Speaker(speaker_id, origin, True)).files.append(str(path))

    asterisk = _rooted(system_root, "/usr/share/asterisk/sounds")
    if asterisk.is_dir():
        for folder in sorted(p for p in asterisk.iterdir() if p.is_dir() and not p.is_symlink()):
            match = re.match(r"^[a-z]{2}_[A-Z]{2}_[fm]_(\w+)$", folder.name)
            if match:
                for path in sorted(folder.rglob("*.wav")):
                    add(f"asterisk-{match.group(1).lower()}", "asterisk", path)
    stamps = _rooted(system_root, "/usr/share/tuxpaint/stamps")
    if stamps.is_dir():
        for path in sorted(stamps.rglob("*_desc_*.ogg")):
            lang = path.name.rsplit("_desc_", 1)[1].split(".")[0]
            add(f"tuxpaint-{lang}", "tuxpaint", path)
    fillets = _rooted(system_root, "/usr/share/games/fillets-ng/sound")
    if fillets.is_dir():
        for path in sorted(fillets.glob("*/*/*.ogg")):
            lang, parts = path.parent.name, path.stem.split("-")
            if lang not in ("cs", "nl") or len(parts) < 3 or not parts[1]:
                continue
            role = parts[1] if parts[1] in ("m", "v") else f"{parts[0]}.{parts[1]}"
            add(f"fillets-{lang}-{role}", "fillets", path)
    klettres = _rooted(system_root, "/usr/share/klettres")
    if klettres.is_dir():
        for path in sorted(klettres.glob("*/*/*.ogg")):
            add(f"klettres-{path.parent.parent.name}", "klettres", path)
    ktuberling = _rooted(system_root, "/usr/share/ktuberling/sounds")
    if ktuberling.is_dir():
        for path in sorted(ktuberling.glob("*/*.*")):
            if path.suffix in (".wav", ".ogg"):
                add(f"ktuberling-{path.parent.name.split('@')[0]}", "ktuberling", path)
    for speaker_id, clips in find_queen_speakers(_rooted(system_root, QUEEN_DATA)).items():
        speakers[speaker_id] = Speaker(speaker_id, "fotaq", True, files=clips)
    return sorted(speakers.values(), key=lambda s: s.id)


def is_minor(speaker: Speaker) -> bool:
    """Fillets' minor characters, klettres' letters, ktuberling's words and the game's characters:
    possibly voiced by an actor of another id, so never held out."""
    return speaker.origin in TRAIN_ONLY_ORIGINS or (
        speaker.origin == "fillets" and not re.search(r"-(m|v)$", speaker.id)
    )


def assign_splits(
    speakers: list[Speaker], seed: int, n_test: int, n_valid: int, min_seconds: float = 180.0
) -> None:
    """Speaker-disjoint splits: test and validation voices are drawn among the main recorded voices.

    Minor voices stay in training, except fillets' minor characters of a language whose main voice
    is held out (one actor may voice several characters) and are then dropped (split ``unused``).
    """
    candidates = sorted(s.id for s in speakers if not is_minor(s) and s.seconds >= min_seconds)
    order = np.random.default_rng([seed, 1]).permutation(len(candidates))
    chosen = [candidates[i] for i in order]
    held = {name: "test" for name in chosen[:n_test]}
    held.update({name: "valid" for name in chosen[n_test : n_test + n_valid]})
    held_fillets_langs = {name.split("-")[1] for name in held if name.startswith("fillets-")}
    for speaker in speakers:
        speaker.split = held.get(speaker.id, "train")
        if (
            speaker.origin == "fillets"
            and is_minor(speaker)
            and speaker.id.split("-")[1] in held_fillets_langs
        ):
            speaker.split = "unused"


# ----------------------------------------------------------------------------- signal shaping
def read_mono(path: str | Path, rate: int = WORK_RATE) -> np.ndarray:
    """``[T]`` float32 at ``rate`` of a file or an archive member (``speech_games.open_clip``);
    unreadable clips give an empty array."""
    try:
        audio, source_rate = sf.read(open_clip(str(path)), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError):
        return np.zeros(0, np.float32)
    audio = audio.mean(axis=1)
    if source_rate != rate and len(audio):
        audio = soxr.resample(audio, source_rate, rate, quality="HQ").astype(np.float32)
    return audio


def trim_silence(audio: np.ndarray, rate: int, max_pause: float = 0.25) -> np.ndarray:
    """Drop leading/trailing silence and shorten pauses longer than ``max_pause`` seconds.

    A 20 ms frame is speech when its level is within 40 dB of the clip's loudest frames
    (95th percentile) and above -55 dBFS.
    """
    hop = rate // 50
    frames = len(audio) // hop
    if frames < 3:
        return np.zeros(0, np.float32)
    power = (audio[: frames * hop].reshape(frames, hop) ** 2).mean(axis=1)
    level = 10 * np.log10(power + 1e-12)
    active = level > max(-55.0, np.percentile(level, 95) - 40.0)
    active = np.convolve(active.astype(float), np.ones(5), mode="same") > 0
    if not active.any():
        return np.zeros(0, np.float32)
    keep = np.zeros(frames, bool)
    run = 0
    allowed = int(max_pause * 50)
    for index in range(frames):
        run = 0 if active[index] else run + 1
        keep[index] = active[index] or run <= allowed
    first, last = np.flatnonzero(active)[[0, -1]]
    keep[:first] = keep[last + 1 :] = False
    return audio[: frames * hop].reshape(frames, hop)[keep].reshape(-1)


def normalise(audio: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Scale so the RMS of the louder half of 20 ms frames is ``target_dbfs``; peaks kept under 0.99."""
    if not len(audio):
        return audio
    hop = max(1, len(audio) // max(1, len(audio) // 320))
    frames = audio[: len(audio) // hop * hop].reshape(-1, hop)
    power = (frames**2).mean(axis=1)
    loud = power[power >= np.median(power)]
    rms = float(np.sqrt(loud.mean() + 1e-12))
    scaled = audio * (10 ** (target_dbfs / 20) / rms)
    peak = float(np.abs(scaled).max())
    return (scaled * (0.99 / peak) if peak > 0.99 else scaled).astype(np.float32)


def concatenate(clips: list[np.ndarray], rate: int, limit: float = MAX_SECONDS) -> np.ndarray:
    gap = np.zeros(int(0.1 * rate), np.float32)
    parts, total = [], 0
    for clip in clips:
        if not len(clip):
            continue
        parts += [clip, gap]
        total += len(clip) + len(gap)
        if total >= limit * rate:
            break
    return np.concatenate(parts)[: int(limit * rate)] if parts else np.zeros(0, np.float32)


def write_pool(out: Path, speaker_id: str, audio: np.ndarray, rates: list[int]) -> None:
    """``pool/<rate>/<id>.flac`` for every rate, each written to a temporary name and renamed."""
    for rate in rates:
        folder = out / "pool" / str(rate)
        folder.mkdir(parents=True, exist_ok=True)
        data = audio if rate == WORK_RATE else soxr.resample(audio, WORK_RATE, rate, quality="HQ")
        tmp = folder / f".{speaker_id}.partial.flac"
        sf.write(str(tmp), np.clip(data, -1, 1), rate, subtype="PCM_16")
        os.replace(tmp, folder / f"{speaker_id}.flac")


def pool_path(out: Path, speaker_id: str, rate: int = WORK_RATE) -> Path:
    return out / "pool" / str(rate) / f"{speaker_id}.flac"


def build_real(job: tuple[Speaker, str, list[int]]) -> Speaker:
    speaker, out, rates = job
    target = pool_path(Path(out), speaker.id)
    if not target.exists():
        clips = [normalise(trim_silence(read_mono(path), WORK_RATE)) for path in speaker.files]
        audio = concatenate(clips, WORK_RATE)
        if len(audio) < MIN_SECONDS * WORK_RATE:
            speaker.seconds = len(audio) / WORK_RATE
            return speaker
        write_pool(Path(out), speaker.id, audio, rates)
    speaker.seconds = sf.info(str(target)).duration
    return speaker


# ----------------------------------------------------------------------------- more voices
def world_analyse(audio: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WORLD's ``(f0, spectral envelope, aperiodicity)`` of a recording, 5 ms frames."""
    import pyworld

    x = audio.astype(np.float64)
    f0, times = pyworld.dio(x, rate, frame_period=5.0)
    f0 = pyworld.stonemask(x, f0, times, rate)
    return f0, pyworld.cheaptrick(x, f0, times, rate), pyworld.d4c(x, f0, times, rate)


def world_warp(
    analysis: tuple[np.ndarray, np.ndarray, np.ndarray], rate: int, formant: float, pitch: float
) -> np.ndarray:
    """The same words by a new voice: spectral envelope frequency axis scaled by ``formant``
    (vocal-tract length), F0 by ``pitch``; aperiodicity kept (WORLD vocoder)."""
    import pyworld

    f0, envelope, aperiodicity = analysis
    bins = envelope.shape[1]
    source_bins = np.clip(np.arange(bins) / formant, 0, bins - 1)
    warped = np.stack([np.interp(source_bins, np.arange(bins), row) for row in envelope])
    voice = pyworld.synthesize(f0 * pitch, np.ascontiguousarray(warped), aperiodicity, rate, 5.0)
    return normalise(voice.astype(np.float32))


def build_warps(job: tuple[list[Speaker], str, list[int]]) -> list[Speaker]:
    """All WORLD copies of one voice (they share the parent, analysed once per 30 s piece)."""
    warps, out, rates = job
    todo = [w for w in warps if not pool_path(Path(out), w.id).exists()]
    if todo:
        parent, _ = sf.read(str(pool_path(Path(out), todo[0].parent)), dtype="float32")
        parent = parent[: int(todo[0].recipe["seconds"] * WORK_RATE)]
        pieces: dict[str, list[np.ndarray]] = {w.id: [] for w in todo}
        for start in range(0, len(parent) - WORK_RATE, 30 * WORK_RATE):
            analysis = world_analyse(parent[start : start + 30 * WORK_RATE], WORK_RATE)
            for warp in todo:
                pieces[warp.id].append(world_warp(analysis, WORK_RATE, **warp.recipe["warp"]))
        for warp in todo:
            write_pool(Path(out), warp.id, np.concatenate(pieces[warp.id]), rates)
    for warp in warps:
        warp.seconds = sf.info(str(pool_path(Path(out), warp.id))).duration
    return warps


def warp_speakers(train: list[Speaker], per_voice: int, seed: int, seconds: float) -> list[Speaker]:
    """``per_voice`` WORLD copies of each training voice, (formant, pitch) factors spread over
    [0.82, 1.22] x [0.6, 1.7] so that one voice's copies differ from each other."""
    warps = []
    for speaker in (s for s in train if s.origin not in UNWARPED_ORIGINS):
        rng = np.random.default_rng([seed, zlib.crc32(speaker.id.encode())])
        formants = np.linspace(0.82, 1.22, per_voice) * rng.uniform(0.97, 1.03, per_voice)
        pitches = np.exp(rng.permutation(np.linspace(np.log(0.6), np.log(1.7), per_voice)))
        for k in range(per_voice):
            recipe = {
                "warp": {"formant": round(float(formants[k]), 3), "pitch": round(float(pitches[k]), 3)},
                "seconds": seconds,
            }
            warps.append(
                Speaker(
                    f"{speaker.id}~w{k}", "world-" + speaker.origin, False, parent=speaker.id, recipe=recipe
                )
            )
    return warps


def read_texts(system_root: Path) -> dict[str, list[str]]:
    """Sentences per language code from tuxpaint's stamp description files (``en`` = untagged)."""
    texts: dict[str, list[str]] = defaultdict(list)
    stamps = _rooted(system_root, "/usr/share/tuxpaint/stamps")
    for path in sorted(stamps.rglob("*.txt")) if stamps.is_dir() else []:
        for number, line in enumerate(path.read_text(errors="ignore").splitlines()):
            if number == 0 and "=" not in line:
                texts["en"].append(line.strip())
            elif ".utf8=" in line:
                lang, sentence = line.split(".utf8=", 1)
                texts[lang.split("_")[0].lower()].append(sentence.strip())
    return {lang: [s for s in lines if len(s) > 10] for lang, lines in texts.items() if lines}


ESPEAK_VARIANTS = (
    "m1 m2 m3 m4 m5 m6 m7 f1 f2 f3 f4 f5 croak klatt klatt2 klatt3 whisperf Andy Denis Mario Michael "
    "adam anika belinda benjamin boris david edward grandma linda"
).split()
ESPEAK_LANGS = "en fr es de it ru pt nl pl cs ca sv el fi hu ro da tr sk bg".split()
FLITE_VOICES = ["kal", "awb", "rms", "slt", "kal16"]
FESTIVAL_VOICES = {
    "kal_diphone": "en",
    "ked_diphone": "en",
    "cmu_us_slt_arctic_hts": "en",
    "lp_diphone": "it",
    "pc_diphone": "it",
    "czech_dita": "cs",
    "czech_krb": "cs",
    "czech_machac": "cs",
    "czech_ph": "cs",
    "msu_ru_nsh_clunits": "ru",
    "upc_ca_ona_hts": "ca",
    "hindi_NSK_diphone": "en",
    "marathi_NSK_diphone": "en",
    "telugu_NSK_diphone": "en",
    "suo_fi_lj_diphone": "fi",
    "hy_fi_mv_diphone": "fi",
}


def synthetic_speakers(count: int, seed: int) -> list[Speaker]:
    """espeak-ng (language, variant, pitch, rate) voices plus every flite and festival voice found."""
    rng = np.random.default_rng([seed, 2])
    voices = []
    for k in range(count):
        lang, variant = (
            ESPEAK_LANGS[k % len(ESPEAK_LANGS)],
            ESPEAK_VARIANTS[rng.integers(len(ESPEAK_VARIANTS))],
        )
        recipe = {
            "engine": "espeak",
            "voice": f"{lang}+{variant}",
            "lang": lang,
            "pitch": int(rng.integers(15, 90)),
            "rate": int(rng.integers(120, 200)),
        }
        voices.append(Speaker(f"espeak-{k:03d}-{lang}-{variant}", "espeak", False, recipe=recipe))
    if shutil.which("flite"):
        voices += [
            Speaker(f"flite-{v}", "flite", False, recipe={"engine": "flite", "voice": v, "lang": "en"})
            for v in FLITE_VOICES
        ]
    if shutil.which("text2wave"):
        for voice, lang in FESTIVAL_VOICES.items():
            if list(Path("/usr/share/festival/voices").glob(f"*/{voice}")):
                recipe = {"engine": "festival", "voice": voice, "lang": lang}
                voices.append(Speaker(f"festival-{voice}", "festival", False, recipe=recipe))
    return voices


def synthesise(recipe: dict, text: str, path: str) -> None:
    engine = recipe["engine"]
    if engine == "espeak":
        command = [
            "espeak-ng",
            "-v",
            recipe["voice"],
            "-p",
            str(recipe["pitch"]),
            "-s",
            str(recipe["rate"]),
            "-w",
            path,
            text,
        ]
    elif engine == "flite":
        command = ["flite", "-voice", recipe["voice"], "-t", text, "-o", path]
    else:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as handle:
            handle.write(text)
        command = ["text2wave", "-eval", f"(voice_{recipe['voice']})", handle.name, "-o", path]
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False)


def build_synthetic(job: tuple[Speaker, str, list[int], dict[str, list[str]], float]) -> Speaker:
    speaker, out, rates, texts, seconds = job
    target = pool_path(Path(out), speaker.id)
    if not target.exists():
        lines = texts.get(speaker.recipe["lang"]) or texts.get("en") or ["one two three four five six"]
        rng = np.random.default_rng(zlib.crc32(speaker.id.encode()))
        clips, total = [], 0.0
        with tempfile.TemporaryDirectory() as tmp:
            for attempt in range(400):
                text = " ".join(lines[i] for i in rng.integers(len(lines), size=3))
                wav = os.path.join(tmp, f"{attempt}.wav")
                synthesise(speaker.recipe, text, wav)
                clip = normalise(trim_silence(read_mono(wav), WORK_RATE)) if os.path.exists(wav) else []
                if len(clip):
                    clips.append(clip)
                    total += len(clip) / WORK_RATE
                if total >= seconds or (attempt >= 5 and not clips):
                    break
        audio = concatenate(clips, WORK_RATE)
        if len(audio) < MIN_SECONDS * WORK_RATE:
            return speaker
        write_pool(Path(out), speaker.id, audio, rates)
    speaker.seconds = sf.info(str(target)).duration
    return speaker


# ----------------------------------------------------------------------------- fixed mixtures
def mixture_name_key(voice: str) -> str:
    """A voice id as the fixed mixtures' file names spell it (letters, digits and dots)."""
    return re.sub(r"[^A-Za-z0-9.]", "", voice)


def write_mixtures(
    out: Path,
    speakers: list[Speaker],
    split: str,
    count: int,
    n_src: int,
    seed: int,
    seconds: tuple[float, float],
    rates: list[int],
    folder: str = "min",
) -> None:
    """``count`` mixtures of ``n_src`` distinct voices of ``split``: random crops, gains in [-5, 5] dB,
    in the WSJ0-mix layout under ``wav{8k,16k}/<folder>/{cv,tt}`` with LibriMix CSVs."""
    short = {"valid": "cv", "test": "tt"}[split]
    libri = {"valid": "dev", "test": "test"}[split]
    voices = sorted(s.id for s in speakers if s.split == split and s.seconds > 0)
    if len(voices) < n_src:
        raise SystemExit(f"the {split} split has {len(voices)} voices, fewer than {n_src}")
    rng = np.random.default_rng([seed, 3, n_src, {"valid": 0, "test": 1}[split]])
    specs = []
    lengths = {v: sf.info(str(pool_path(out, v, min(rates)))).duration for v in voices}
    for index in range(count):
        chosen = [voices[i] for i in rng.choice(len(voices), n_src, replace=False)]
        duration = float(rng.uniform(*seconds))
        starts = [float(rng.uniform(0, max(0.0, lengths[v] - duration))) for v in chosen]
        gains = [float(g) for g in rng.uniform(-5, 5, n_src)]
        name = f"{index:04d}_" + "_".join(mixture_name_key(v) for v in chosen)
        specs.append((name, chosen, starts, gains, duration))
    for rate in rates:
        root = out / f"wav{rate // 1000}k" / folder
        rows = []
        for name, chosen, starts, gains, duration in specs:
            length = int(duration * rate)
            sources = []
            for voice, start, gain in zip(chosen, starts, gains, strict=False):
                data, _ = sf.read(
                    str(pool_path(out, voice, rate)), start=int(start * rate), frames=length, dtype="float32"
                )
                data = np.pad(data, (0, length - len(data)))
                sources.append(data * 10 ** (gain / 20))
            sources = np.stack(sources)
            mix = sources.sum(axis=0)
            scale = min(1.0, 0.9 / max(1e-9, float(np.abs(mix).max())))
            paths = []
            for sub, signal in [("mix", mix)] + [(f"s{j + 1}", s) for j, s in enumerate(sources)]:
                target = root / short / sub / f"{name}.wav"
                target.parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(target), (signal * scale).astype(np.float32), rate, subtype="FLOAT")
                paths.append(os.path.relpath(target, root))
            rows.append([name, *paths, length])
        metadata = root / "metadata"
        metadata.mkdir(parents=True, exist_ok=True)
        header = ["mixture_ID", "mixture_path"] + [f"source_{j + 1}_path" for j in range(n_src)] + ["length"]
        with open(metadata / f"mixture_{libri}_mix_clean.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)


def write_noise(out: Path, system_root: Path, rates: list[int], seconds: float = 600.0) -> None:
    """Tuxpaint's sound effects (stamp sounds that are not descriptions) as one noise pool per rate."""
    stamps = _rooted(system_root, "/usr/share/tuxpaint/stamps")
    if pool_path(out, "noise").exists() or not stamps.is_dir():
        return
    files = sorted(p for p in stamps.rglob("*.ogg") if "_desc" not in p.name)
    clips = [normalise(read_mono(p)) for p in files]
    audio = concatenate([c for c in clips if len(c) > WORK_RATE // 4], WORK_RATE, seconds)
    if len(audio):
        write_pool(out, "noise", audio, rates)


# ----------------------------------------------------------------------------- main
def build(args: argparse.Namespace) -> dict:
    out, system_root, rates = Path(args.out), Path(args.system_root), sorted(set(args.rates) | {WORK_RATE})
    out.mkdir(parents=True, exist_ok=True)
    real = find_real_speakers(system_root)
    if not real:
        raise SystemExit(f"no speech packages found under {system_root} (see DATA.md for apt-get install)")
    with ProcessPoolExecutor(args.jobs) as pool:
        real = list(pool.map(build_real, [(s, str(out), rates) for s in real]))
        real = [s for s in real if s.seconds >= MIN_SECONDS]
        assign_splits(real, args.seed, args.test_voices, args.valid_voices, args.min_heldout_seconds)
        log(f"{len(real)} recorded voices: " + ", ".join(f"{s.id}={s.split}" for s in real))
        train = [s for s in real if s.split == "train"]
        extra = warp_speakers(train, args.warps, args.seed, args.warp_seconds)
        by_parent: dict[str, list[Speaker]] = defaultdict(list)
        for warp in extra:
            by_parent[warp.parent].append(warp)
        jobs = [(group, str(out), rates) for group in by_parent.values()]
        extra = [warp for group in pool.map(build_warps, jobs) for warp in group]
        log(f"{len(extra)} WORLD-warped voices")
        texts = read_texts(system_root)
        synthetic = synthetic_speakers(args.espeak_voices, args.seed) if args.synthetic else []
        synthetic = list(
            pool.map(
                build_synthetic, [(s, str(out), rates, texts, args.synthetic_seconds) for s in synthetic]
            )
        )
        synthetic = [s for s in synthetic if s.seconds >= MIN_SECONDS]
        log(f"{len(synthetic)} synthetic voices")
    write_noise(out, system_root, rates)
    speakers = real + extra + synthetic
    for split, count, seconds in (
        ("valid", args.valid_mixtures, (4.0, 4.0)),
        ("test", args.test_mixtures, (3.0, 6.0)),
    ):
        write_mixtures(out, speakers, split, count, 2, args.seed, seconds, rates)
    manifest = {
        "seed": args.seed,
        "rates": rates,
        "licences": LICENCES,
        "speakers": {
            s.id: {k: v for k, v in asdict(s).items() if k not in ("id", "files")} for s in speakers
        },
    }
    tmp = out / ".speakers.json.partial"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, out / "speakers.json")
    return manifest


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = corpus_cli.parser(__doc__)
    parser.add_argument("--rates", type=int, nargs="+", default=[8000, 16000])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--test-voices", type=int, default=5)
    parser.add_argument("--valid-voices", type=int, default=3)
    parser.add_argument(
        "--min-heldout-seconds", type=float, default=180.0, help="voices shorter than this stay in training"
    )
    parser.add_argument("--warps", type=int, default=6, help="WORLD-warped copies per training voice")
    parser.add_argument("--warp-seconds", type=float, default=90.0, help="seconds of each voice warped")
    parser.add_argument("--synthetic", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--espeak-voices", type=int, default=80)
    parser.add_argument("--synthetic-seconds", type=float, default=120.0)
    parser.add_argument("--valid-mixtures", type=int, default=200)
    parser.add_argument("--test-mixtures", type=int, default=400)
    return parser.parse_args(argv)


if __name__ == "__main__":
    manifest = build(parse_args())
    splits = defaultdict(int)
    for info in manifest["speakers"].values():
        splits[info["split"]] += 1
    log("speakers per split: " + ", ".join(f"{k}={v}" for k, v in sorted(splits.items())))
