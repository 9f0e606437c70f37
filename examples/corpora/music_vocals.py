"""Vocals for the music corpus: recorded speech re-synthesised to sing with the WORLD vocoder, and
festival's singing mode.

WORLD splits a voice into F0, spectral envelope and aperiodicity (5 ms frames). Singing keeps the
envelope and aperiodicity of each syllable (a voiced run of the speech), stretches the vowel to the
note's length and replaces F0 by the melody with portamento, delayed vibrato and the speech's own
micro-prosody. Speech pools are 16 kHz: the envelope above the voice's bandwidth (4 kHz for
telephone voices) is continued with a falling slope and the aperiodicity rises toward noise, then
synthesis runs at the corpus rate, so the vocals stem has a full-band spectrum.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from music_parts import Note

PERIOD = 5.0  # WORLD frame period, ms
FRAME = PERIOD / 1000
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
LYRICS = (
    "love",
    "night",
    "heart",
    "fire",
    "home",
    "rain",
    "light",
    "way",
    "time",
    "free",
    "dream",
    "fly",
    "run",
    "stay",
    "you",
    "me",
    "oh",
    "we",
    "go",
    "sun",
    "sky",
    "blue",
    "soul",
    "day",
)


def _world():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pyworld
    return pyworld


def read_voices(pool: Path, speakers: Path) -> dict[str, list[str]]:
    """Voice ids per split from the speech corpus' ``speakers.json``: recorded voices and their
    WORLD-warped copies (``~w``, training only), each with a ``<pool>/<id>.flac``."""
    info = json.loads(speakers.read_text())["speakers"]
    out: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for voice, meta in sorted(info.items()):
        parent = meta.get("parent")
        recorded = meta.get("real") or (parent is not None and info.get(parent, {}).get("real"))
        if recorded and meta.get("split") in out and (pool / f"{voice}.flac").is_file():
            out[meta["split"]].append(voice)
    return out


@dataclass
class Analysis:
    """WORLD analysis of a speech crop: ``f0 [N]``, ``sp [N, F]``, ``ap [N, F]`` at ``rate``, and
    syllables as ``(onset, vowel_start, vowel_end)`` frame indices."""

    f0: np.ndarray
    sp: np.ndarray
    ap: np.ndarray
    rate: int
    syllables: list[tuple[int, int, int]]
    cutoff: float


def read_crop(path: Path, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A random ``seconds`` of a pool file as float64 mono."""
    info = sf.info(str(path))
    frames = min(int(seconds * info.samplerate), info.frames)
    start = int(rng.integers(0, max(1, info.frames - frames)))
    audio, rate = sf.read(str(path), start=start, frames=frames, dtype="float64", always_2d=True)
    return np.ascontiguousarray(audio.mean(1)), rate


def analyse(audio: np.ndarray, rate: int) -> Analysis:
    pw = _world()
    f0, times = pw.dio(audio, rate, frame_period=PERIOD)
    f0 = pw.stonemask(audio, f0, times, rate)
    sp = pw.cheaptrick(audio, f0, times, rate)
    ap = pw.d4c(audio, f0, times, rate)
    return Analysis(f0, sp, ap, rate, syllables(f0, sp, ap, rate), bandwidth(sp, f0, rate))


def syllables(f0: np.ndarray, sp: np.ndarray, ap: np.ndarray, rate: int) -> list[tuple[int, int, int]]:
    """Voiced runs (gaps under 30 ms bridged, runs under 60 ms or mostly aperiodic below 2 kHz dropped),
    long runs split at energy dips; each with up to 100 ms of the unvoiced onset before it."""
    voiced = f0 > 0
    edges = np.flatnonzero(np.diff(np.r_[0, voiced.astype(int), 0]))
    runs = [[a, b] for a, b in zip(edges[::2], edges[1::2], strict=True)]
    merged: list[list[int]] = []
    for run in runs:
        if merged and run[0] - merged[-1][1] < 6:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    bins = slice(int(300 / rate * 2 * (sp.shape[1] - 1)), int(3000 / rate * 2 * (sp.shape[1] - 1)))
    energy = np.log(sp[:, bins].sum(1) + 1e-12)
    low = slice(1, int(2000 / rate * 2 * (ap.shape[1] - 1)))
    pieces: list[tuple[int, int]] = []
    stack = [tuple(r) for r in merged if r[1] - r[0] >= 12 and ap[r[0] : r[1], low].mean() < 0.5]
    while stack:
        a, b = stack.pop()
        if b - a <= 70:
            pieces.append((a, b))
            continue
        middle = a + 16 + int(np.argmin(energy[a + 16 : b - 16]))
        stack += [(a, middle), (middle, b)]
    pieces.sort()
    out, previous_end = [], 0
    for a, b in pieces:
        out.append((max(previous_end, a - 20), a, b))
        previous_end = b
    return out


def bandwidth(sp: np.ndarray, f0: np.ndarray, rate: int) -> float:
    """Where the voice's mean envelope falls 30 dB under its 2-3.5 kHz level (capped at 0.9 Nyquist)."""
    frames = sp[f0 > 0] if (f0 > 0).any() else sp
    level = 10 * np.log10(frames.mean(0) + 1e-20)
    freqs = np.linspace(0, rate / 2, sp.shape[1])
    reference = np.median(level[(freqs >= 2000) & (freqs <= 3500)])
    below = np.flatnonzero((freqs > 3000) & (level < reference - 30))
    return float(min(freqs[below[0]] if below.size else rate / 2, 0.9 * rate / 2))


def extend(
    sp: np.ndarray, ap: np.ndarray, rate: int, cutoff: float, out_rate: int, slope_db: float
) -> tuple[np.ndarray, np.ndarray]:
    """Envelope and aperiodicity ``[N, F]`` on the output rate's frequency grid, continued above
    ``cutoff`` with ``slope_db`` per octave and aperiodicity rising to noise."""
    size = _world().get_cheaptrick_fft_size(out_rate) // 2 + 1
    source = np.linspace(0, rate / 2, sp.shape[1])
    target = np.linspace(0, out_rate / 2, size)
    inside = target <= cutoff
    log_sp = np.empty((sp.shape[0], size))
    ap_out = np.empty((sp.shape[0], size))
    position = np.interp(target[inside], source, np.arange(source.size))
    low = np.minimum(position.astype(int), source.size - 2)
    weight = position - low
    for table, values in ((log_sp, np.log(sp + 1e-20)), (ap_out, ap)):
        table[:, inside] = values[:, low] * (1 - weight) + values[:, low + 1] * weight
    band = (source > cutoff * 0.9) & (source <= cutoff)
    edge_level = np.log(sp[:, band] + 1e-20).mean(1)[:, None]
    edge_ap = ap[:, band].mean(1)[:, None]
    octaves = np.log2(target[~inside] / cutoff)[None, :]
    log_sp[:, ~inside] = edge_level + slope_db / 10 * np.log(10) * octaves
    ap_out[:, ~inside] = 1 - (1 - edge_ap) * np.exp(-octaves * 2)
    return np.exp(log_sp), np.clip(ap_out, 0.001, 0.999)


def _stretch_indices(first: int, last: int, length: int) -> np.ndarray:
    """Source frames for a vowel ``[first, last)`` stretched to ``length``: onset and release at natural
    speed, the steady middle stretched."""
    count = last - first
    if length <= count:
        return np.linspace(first, last - 1, length)
    head, tail = int(0.3 * count), int(0.2 * count)
    middle = np.linspace(first + head, last - 1 - tail, length - head - tail)
    return np.r_[np.arange(first, first + head), middle, np.arange(last - tail, last)].astype(float)


def _frames(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    low = np.floor(index).astype(int)
    high = np.minimum(low + 1, table.shape[0] - 1)
    weight = (index - low)[:, None]
    return table[low] * (1 - weight) + table[high] * weight


def phrases(notes: list[Note], gap: float = 0.25) -> list[list[Note]]:
    """Notes grouped into phrases split at rests longer than ``gap`` seconds."""
    out: list[list[Note]] = []
    for note in sorted(notes, key=lambda n: n.start):
        if out and note.start - out[-1][-1].end < gap:
            out[-1].append(note)
        else:
            out.append([note])
    return out


def sing(
    analysis: Analysis, notes: list[Note], seconds: float, out_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """The analysed voice singing ``notes`` (MIDI pitches, seconds): mono ``[T]`` at ``out_rate``."""
    pw = _world()
    out = np.zeros(int(round(seconds * out_rate)), np.float32)
    if not analysis.syllables:
        return out
    sp_all, ap_all = extend(
        analysis.sp, analysis.ap, analysis.rate, analysis.cutoff, out_rate, rng.uniform(-20, -12)
    )
    log_f0 = np.log(np.maximum(analysis.f0, 1.0))
    prosody = log_f0 - np.convolve(log_f0, np.ones(21) / 21, mode="same")
    depth, speed = rng.uniform(0.15, 0.45), rng.uniform(4.8, 6.5)
    glide = int(rng.integers(6, 16))
    periodic = int(4000 / (out_rate / 2) * (sp_all.shape[1] - 1))  # vowels stay periodic below 4 kHz
    syllable = int(rng.integers(len(analysis.syllables)))
    for phrase in phrases(notes):
        start = phrase[0].start
        # Notes are legato inside a phrase: each lasts until the next one starts.
        bounds = [int(round((n.start - start) / FRAME)) for n in phrase] + [
            int(round((phrase[-1].end - start) / FRAME))
        ]
        index, target, gains, vowels = [], [], [], []
        for note, a, b in zip(phrase, bounds[:-1], bounds[1:], strict=True):
            if b <= a:
                continue
            onset, first, last = analysis.syllables[syllable % len(analysis.syllables)]
            syllable += 1
            length = b - a
            consonant = min(first - onset, int(0.3 * length))
            vowel = length - consonant
            index.append(np.r_[np.arange(first - consonant, first), _stretch_indices(first, last, vowel)])
            vowels.append(np.arange(length) >= consonant)
            pitch = np.full(length, note.pitch, float)
            since = np.arange(length) * FRAME
            onset_vibrato = np.clip((since - 0.25) / 0.2, 0, 1)
            pitch += depth * onset_vibrato * np.sin(2 * np.pi * speed * since + rng.uniform(0, 6.3))
            target.append(pitch)
            gains.append(np.full(length, (note.velocity / 100) ** 2))
        if not index:
            continue
        source = np.concatenate(index)
        pitch = np.convolve(np.concatenate(target), np.ones(glide) / glide, mode="same")
        pitch[: glide // 2] = target[0][0]
        pitch[-(glide // 2) :] = target[-1][-1]
        sp = _frames(sp_all, source) * np.concatenate(gains)[:, None]
        ap = _frames(ap_all, source)
        vowel = np.concatenate(vowels)
        ap[vowel, :periodic] = np.minimum(ap[vowel, :periodic], 0.25)
        voiced = vowel | (analysis.f0[np.round(source).astype(int)] > 0)
        jitter = np.clip(prosody[np.round(source).astype(int)] * 0.5, -0.03, 0.03)
        f0 = np.where(voiced, 440.0 * 2 ** ((pitch - 69) / 12) * np.exp(jitter), 0.0)
        audio = pw.synthesize(
            np.ascontiguousarray(f0), np.ascontiguousarray(sp), np.ascontiguousarray(ap), out_rate, PERIOD
        ).astype(np.float32)
        at = int(round(start * out_rate))
        audio = audio[: max(0, out.size - at)]
        fade = min(audio.size, int(0.01 * out_rate))
        audio[audio.size - fade :] *= np.linspace(1, 0, fade, dtype=np.float32)
        out[at : at + audio.size] += audio
    return out


def register(analysis: Analysis) -> float:
    """A comfortable singing centre (MIDI) for this voice: a few semitones above its speaking pitch."""
    voiced = analysis.f0[analysis.f0 > 0]
    speaking = 69 + 12 * np.log2(np.median(voiced) / 440) if voiced.size else 57.0
    return float(np.clip(speaking + 5, 50, 70))


def festival_available() -> bool:
    return shutil.which("text2wave") is not None


def festival_sing(
    notes: list[Note], seconds: float, out_rate: int, rng: np.random.Generator, voice: str = "kal_diphone"
) -> np.ndarray:
    """``notes`` sung by festival's singing mode (English words from LYRICS), phrase by phrase,
    re-synthesised by WORLD at ``out_rate`` with the band extended; a phrase festival fails on is
    left silent. Mono ``[T]``."""
    pw = _world()
    out = np.zeros(int(round(seconds * out_rate)), np.float32)
    bpm = 100.0  # festival: one beat lasts 50 / BPM seconds; its C4 is MIDI 48
    with tempfile.TemporaryDirectory() as work:
        for k, phrase in enumerate(phrases(notes)):
            body = []
            for note in phrase:
                beats = (note.end - note.start) * bpm / 50
                name = f"{NOTE_NAMES[note.pitch % 12]}{note.pitch // 12}"
                word = LYRICS[int(rng.integers(len(LYRICS)))]
                body.append(f'<PITCH NOTE="{name}"><DURATION BEATS="{beats:.3f}">{word}</DURATION></PITCH>')
            xml = Path(work, f"p{k}.xml")
            xml.write_text(
                '<?xml version="1.0"?>\n<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING mark up//EN" '
                f'"Singing.v0_1.dtd" []>\n<SINGING BPM="{bpm:.0f}">\n' + "\n".join(body) + "\n</SINGING>\n"
            )
            wav = Path(work, f"p{k}.wav")
            sang = subprocess.run(
                ["text2wave", "-mode", "singing", "-eval", f"(voice_{voice})", str(xml), "-o", str(wav)],
                capture_output=True,
                env={**os.environ, "LC_ALL": "C"},
            )
            if sang.returncode != 0:  # festival's singing mode crashes on some phrases: they stay silent
                continue
            audio, rate = sf.read(str(wav), dtype="float64")
            if audio.ndim > 1:
                audio = audio.mean(1)
            if rate < 16000:  # WORLD's aperiodicity estimate fails on 8 kHz audio
                audio, rate = soxr.resample(audio, rate, 16000), 16000
            f0, times = pw.dio(audio, rate, frame_period=PERIOD)
            f0 = pw.stonemask(audio, f0, times, rate)
            sp, ap = pw.cheaptrick(audio, f0, times, rate), pw.d4c(audio, f0, times, rate)
            sp, ap = extend(sp, ap, rate, bandwidth(sp, f0, rate), out_rate, rng.uniform(-20, -12))
            sung = pw.synthesize(f0, sp, ap, out_rate, PERIOD).astype(np.float32)
            at = int(round(phrase[0].start * out_rate))
            sung = sung[: max(0, out.size - at)]
            out[at : at + sung.size] += sung
    return out
