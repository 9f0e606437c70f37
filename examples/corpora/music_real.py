"""Real recorded stems for the music corpus: the Frets on Fire song packs (guitar.ogg and song.ogg,
separate recordings of the lead guitar and the rest of the band), plus their tempo and key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

FOF_DIR = "usr/share/games/fretsonfire/data/songs"
# Muldjord's backing tracks show a singer's formant sweeps (harsh metal vocals): only their guitar is used.
VOCAL_BACKING_PACKS = ("muldjord",)
# Krumhansl-Kessler key profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass
class FofSong:
    name: str  # "<pack>-<folder>", file-system safe
    folder: Path

    @property
    def backing_usable(self) -> bool:
        """Whether song.ogg is free of vocals, so it can count as accompaniment."""
        return self.folder.parent.name not in VOCAL_BACKING_PACKS

    @property
    def frames(self) -> int:
        return sf.info(str(self.folder / "song.ogg")).frames


def find_fof(system_root: Path) -> list[FofSong]:
    """Every song folder holding both guitar.ogg and song.ogg, sorted by name."""
    root = system_root / FOF_DIR
    songs = []
    for guitar in sorted(root.glob("*/*/guitar.ogg")):
        folder = guitar.parent
        if (folder / "song.ogg").is_file():
            name = f"{folder.parent.name}-{folder.name}".lower().replace(" ", "_")
            songs.append(FofSong(name, folder))
    return songs


def read_fof(song: FofSong, start: int, frames: int, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Guitar and backing ``[2, T]`` float32 for file frames ``[start, start + frames)``, at ``rate``."""
    out = []
    for stem in ("guitar", "song"):
        audio, file_rate = sf.read(
            str(song.folder / f"{stem}.ogg"), start=start, frames=frames, dtype="float32", always_2d=True
        )
        if audio.shape[1] == 1:
            audio = np.repeat(audio, 2, axis=1)
        if file_rate != rate:
            audio = soxr.resample(audio, file_rate, rate)
        out.append(np.ascontiguousarray(audio[:, :2].T))
    length = min(a.shape[1] for a in out)
    return out[0][:, :length], out[1][:, :length]


def fof_tempo(song: FofSong) -> float:
    """The first tempo of the song's notes.mid (the game chart follows the recording), else 120."""
    try:
        import pretty_midi

        tempi = pretty_midi.PrettyMIDI(str(song.folder / "notes.mid")).get_tempo_changes()[1]
        return float(tempi[0]) if len(tempi) else 120.0
    except Exception:  # noqa: BLE001 - a missing or unreadable chart just means "unknown tempo"
        return 120.0


def estimate_key(audio: np.ndarray, rate: int) -> tuple[int, bool]:
    """(tonic pitch class, minor) of ``[C, T]`` audio: chroma of 55-2000 Hz correlated with key profiles."""
    mono = audio.mean(0)
    size = 8192
    frames = max(1, (mono.size - size) // size)
    spectrum = np.zeros(size // 2 + 1)
    window = np.hanning(size)
    for k in range(min(frames, 400)):
        spectrum += np.abs(np.fft.rfft(mono[k * size : (k + 1) * size] * window))
    freqs = np.fft.rfftfreq(size, 1 / rate)
    use = (freqs >= 55) & (freqs <= 2000)
    classes = np.round(12 * np.log2(freqs[use] / 440.0) + 69).astype(int) % 12
    chroma = np.bincount(classes, weights=spectrum[use], minlength=12)
    scores = [
        (np.corrcoef(chroma, np.roll(profile, tonic))[0, 1], tonic, minor)
        for minor, profile in ((False, MAJOR_PROFILE), (True, MINOR_PROFILE))
        for tonic in range(12)
    ]
    _, tonic, minor = max(scores)
    return int(tonic), bool(minor)
