"""Sound for the music corpus: GM soundfonts through fluidsynth, Hydrogen drum kits (recorded one-shots,
one WAV per velocity layer), a small additive synth used when no soundfont is installed, and the
mixing chain (pan, EQ, compression, reverb). Audio arrays are float32 ``[C, T]`` (C = 2 after panning).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from music_parts import Hit, Note
from scipy.signal import fftconvolve, lfilter, sosfilt

BLOCK = 64  # fluidsynth renders in 64-sample blocks; events on this grid keep renders reproducible
GM_DRUMS = {
    "kick": 36,
    "stick": 37,
    "snare": 38,
    "clap": 39,
    "tom_low": 43,
    "hat_closed": 42,
    "hat_pedal": 44,
    "tom_mid": 47,
    "hat_open": 46,
    "tom_hi": 50,
    "crash": 49,
    "ride": 51,
    "ride_bell": 53,
    "perc": 54,
}
GM_KITS = (0, 8, 16, 24, 25, 32, 40)  # standard, room, power, electronic, TR-808, jazz, brush
ROLE_PATTERNS = (
    ("hat_open", r"(hat|hh).*(open|op\b|opened|semi|swish)|open.*(hat|hh)"),
    ("hat_pedal", r"(hat|hh).*(pedal|foot|pd\b)|pedal.*(hat|hh)"),
    ("hat_closed", r"(hat|hh)"),
    ("ride_bell", r"ride.*(bell|cup)|bell"),
    ("ride", r"ride"),
    ("crash", r"crash|china|cymbal|splash"),
    ("tom_low", r"(tom).*(low|floor|lo\b)|floor"),
    ("tom_hi", r"(tom).*(hi|high)"),
    ("tom_mid", r"tom"),
    ("kick", r"kick|bass ?drum|\bbd\b"),
    ("stick", r"stick|rim"),
    ("clap", r"clap"),
    ("snare", r"snare|\bsd\b"),
    ("perc", r"tambourine|shaker|maraca|cowbell|cabasa"),
)
FALLBACK_ROLES = {
    "hat_pedal": "hat_closed",
    "hat_open": "hat_closed",
    "ride_bell": "ride",
    "ride": "hat_open",
    "stick": "snare",
    "clap": "snare",
    "tom_hi": "tom_mid",
    "tom_mid": "tom_low",
    "tom_low": "tom_mid",
}


# ----------------------------------------------------------------------------- soundfonts
class Soundfonts:
    """GM soundfonts rendered with pyfluidsynth, float output, no built-in reverb or chorus.

    fluidsynth keeps state between renders on one synth, so each part gets a fresh synth (the file
    stays in the OS cache; a load costs ~0.3 s) and events sit on its 64-sample block grid: a part
    renders to the same bytes whatever was rendered before.
    """

    def __init__(self, paths: list[str], rate: int) -> None:
        self.paths, self.rate = paths, rate

    def render(
        self, notes: list[Note], program: int, seconds: float, font: int = 0, bank: int = 0, channel: int = 0
    ) -> np.ndarray:
        """``notes`` played by ``program`` of soundfont ``font``: ``[2, T]`` with T = seconds * rate."""
        import fluidsynth

        total = int(round(seconds * self.rate))
        synth = fluidsynth.Synth(
            gain=0.4, samplerate=float(self.rate), **{"synth.reverb.active": 0, "synth.chorus.active": 0}
        )
        try:
            sfid = synth.sfload(self.paths[font % len(self.paths)])
            synth.program_select(channel, sfid, bank, program)
            events = sorted(
                [(self._tick(n.start), 1, n.pitch, n.velocity) for n in notes]
                + [(self._tick(max(n.end, n.start + 0.01)), 0, n.pitch, 0) for n in notes]
            )
            chunks, position = [], 0
            limit = -(-total // BLOCK) * BLOCK
            for tick, on, pitch, velocity in events:
                if tick >= limit:
                    break
                if tick > position:
                    chunks.append(_write_float(synth, tick - position))
                    position = tick
                if on:
                    synth.noteon(channel, int(pitch), int(np.clip(velocity, 1, 127)))
                else:
                    synth.noteoff(channel, int(pitch))
            chunks.append(_write_float(synth, limit - position))
        finally:
            synth.delete()
        return np.concatenate(chunks, axis=1)[:, :total]

    def render_drums(self, hits: list[Hit], kit: int, seconds: float, font: int = 0) -> np.ndarray:
        """Drum hits on the GM percussion channel with drum kit preset ``kit`` (bank 128)."""
        notes = [Note(GM_DRUMS[h.role], h.time, h.time + 0.2, h.velocity) for h in hits if h.role in GM_DRUMS]
        return self.render(notes, kit, seconds, font=font, bank=128, channel=9)

    def _tick(self, time: float) -> int:
        return int(round(max(time, 0.0) * self.rate / BLOCK)) * BLOCK


@lru_cache(maxsize=1)
def _float_writer():
    from ctypes import c_int, c_void_p

    import fluidsynth

    return fluidsynth.cfunc(
        "fluid_synth_write_float",
        c_int,
        ("synth", c_void_p, 1),
        ("len", c_int, 1),
        ("lout", c_void_p, 1),
        ("loff", c_int, 1),
        ("lincr", c_int, 1),
        ("rout", c_void_p, 1),
        ("roff", c_int, 1),
        ("rincr", c_int, 1),
    )


def _write_float(synth, frames: int) -> np.ndarray:
    left, right = np.zeros(frames, np.float32), np.zeros(frames, np.float32)
    if frames:
        _float_writer()(synth.synth, frames, left.ctypes.data, 0, 1, right.ctypes.data, 0, 1)
    return np.stack([left, right])


def synth_part(notes: list[Note], timbre: str, seconds: float, rate: int) -> np.ndarray:
    """Additive stand-in for a soundfont (tests, or no soundfont installed): ``[2, T]``."""
    total = int(round(seconds * rate))
    out = np.zeros(total, np.float32)
    power, decay, attack = {
        "bass": (1.2, 2.0, 0.005),
        "pad": (1.0, 0.2, 0.25),
        "pluck": (1.6, 5.0, 0.002),
        "lead": (0.8, 0.5, 0.02),
        "choir": (2.0, 0.3, 0.12),
    }.get(timbre, (1.4, 2.5, 0.005))
    for note in notes:
        start = int(note.start * rate)
        length = min(int((note.end - note.start + 0.08) * rate), total - start)
        if length <= 0:
            continue
        t = np.arange(length) / rate
        f0 = 440.0 * 2 ** ((note.pitch - 69) / 12)
        ks = np.arange(1, max(2, min(12, int(rate / 2 / f0))))
        wave = (np.sin(2 * np.pi * f0 * np.outer(ks, t)) / ks[:, None] ** power).sum(0)
        env = np.minimum(1.0, t / attack) * np.exp(-decay * t)
        fade = min(length, int(0.08 * rate))
        env[length - fade :] *= np.linspace(1, 0, fade)
        out[start : start + length] += (0.15 * note.velocity / 127 * wave * env).astype(np.float32)
    return np.stack([out, out])


# ----------------------------------------------------------------------------- hydrogen kits
@dataclass
class KitInstrument:
    name: str
    role: str | None
    gain: float
    layers: list[tuple[float, float, float, str]] = field(default_factory=list)  # (min, max, gain, path)


def role_of(name: str) -> str | None:
    lowered = name.lower()
    for role, pattern in ROLE_PATTERNS:
        if re.search(pattern, lowered):
            return role
    return None


def read_kit(folder: Path) -> list[KitInstrument]:
    """The instruments of a Hydrogen ``drumkit.xml`` (layered or single-file instruments)."""
    root = ET.parse(folder / "drumkit.xml").getroot()
    strip = re.compile(r"^\{.*\}")
    for element in root.iter():
        element.tag = strip.sub("", element.tag)
    instruments = []
    for node in root.iter("instrument"):
        name = (node.findtext("name") or "").strip()
        gain = float(node.findtext("volume") or 1.0) * float(node.findtext("gain") or 1.0)
        layers = [
            (
                float(layer.findtext("min") or 0),
                float(layer.findtext("max") or 1),
                float(layer.findtext("gain") or 1),
                str(folder / layer.findtext("filename")),
            )
            for layer in node.iter("layer")
            if layer.findtext("filename")
        ]
        if not layers and node.findtext("filename"):
            layers = [(0.0, 1.0, 1.0, str(folder / node.findtext("filename")))]
        layers = [layer for layer in layers if Path(layer[3]).is_file()]
        if layers and (node.findtext("isMuted") or "false") != "true":
            instruments.append(KitInstrument(name, role_of(name), gain, layers))
    return instruments


def is_drum_kit(instruments: list[KitInstrument]) -> bool:
    roles = {i.role for i in instruments}
    return {"kick", "snare", "hat_closed"} <= roles


@lru_cache(maxsize=256)
def load_sample(path: str, rate: int) -> np.ndarray:
    """A one-shot as float32 ``[2, T]`` at ``rate``."""
    audio, file_rate = sf.read(path, dtype="float32", always_2d=True)
    if file_rate != rate:
        audio = soxr.resample(audio, file_rate, rate)
    audio = audio[:, :2] if audio.shape[1] >= 2 else np.repeat(audio, 2, axis=1)
    return np.ascontiguousarray(audio.T)


def render_kit(
    instruments: list[KitInstrument], hits: list[Hit], seconds: float, rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Hits played on a Hydrogen kit: one instrument per role (drawn once), the velocity layer
    chosen by velocity, each role panned across the stereo image. Returns ``[2, T]``."""
    by_role: dict[str, list[KitInstrument]] = {}
    for instrument in instruments:
        if instrument.role:
            by_role.setdefault(instrument.role, []).append(instrument)
    chosen = {role: group[rng.integers(len(group))] for role, group in sorted(by_role.items())}
    pans = {role: float(np.clip(rng.normal(0, 0.35), -0.8, 0.8)) for role in GM_DRUMS}
    pans["kick"] = pans["snare"] = 0.0
    total = int(round(seconds * rate))
    out = np.zeros((2, total), np.float32)
    for hit in hits:
        role = hit.role if hit.role in chosen else FALLBACK_ROLES.get(hit.role)
        if role not in chosen:
            continue
        instrument = chosen[role]
        level = hit.velocity / 127
        layer = next((x for x in instrument.layers if x[0] <= level <= x[1]), instrument.layers[-1])
        sample = load_sample(layer[3], rate)
        start = int(round(hit.time * rate))
        if start >= total:
            continue
        piece = sample[:, : total - start] * (instrument.gain * layer[2] * (0.3 + 0.7 * level))
        out[:, start : start + piece.shape[1]] += pan(piece, pans.get(hit.role, 0.0))
    return out


# ----------------------------------------------------------------------------- mixing
def pan(audio: np.ndarray, position: float) -> np.ndarray:
    """Constant-power pan (position in [-1, 1]) of ``[C, T]``; mono becomes stereo."""
    angle = (position + 1) * np.pi / 4
    gains = np.array([[np.cos(angle)], [np.sin(angle)]], np.float32) * np.sqrt(2)
    if audio.shape[0] == 1:
        return gains * audio
    return audio * gains


def biquad(kind: str, freq: float, rate: int, gain_db: float = 0.0, q: float = 0.707) -> np.ndarray:
    """One RBJ-cookbook biquad as a second-order section ``[1, 6]``."""
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * min(freq, 0.45 * rate) / rate
    alpha, cos = np.sin(w) / (2 * q), np.cos(w)
    if kind == "highpass":
        b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
        den = [1 + alpha, -2 * cos, 1 - alpha]
    elif kind == "lowpass":
        b = [(1 - cos) / 2, 1 - cos, (1 - cos) / 2]
        den = [1 + alpha, -2 * cos, 1 - alpha]
    elif kind == "peak":
        b = [1 + alpha * a, -2 * cos, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cos, 1 - alpha / a]
    else:  # shelves
        sign = 1 if kind == "lowshelf" else -1
        root = 2 * np.sqrt(a) * alpha
        b = [
            a * ((a + 1) - sign * (a - 1) * cos + root),
            sign * 2 * a * ((a - 1) - sign * (a + 1) * cos),
            a * ((a + 1) - sign * (a - 1) * cos - root),
        ]
        den = [
            (a + 1) + sign * (a - 1) * cos + root,
            -sign * 2 * ((a - 1) + sign * (a + 1) * cos),
            (a + 1) + sign * (a - 1) * cos - root,
        ]
    return np.array([[*np.divide(b, den[0]), 1.0, den[1] / den[0], den[2] / den[0]]])


def random_eq(audio: np.ndarray, rate: int, rng: np.random.Generator, low_cut: float) -> np.ndarray:
    """High-pass at ``low_cut`` then random low/high shelves and one peak (+-4 dB)."""
    sections = [
        biquad("highpass", low_cut, rate),
        biquad("lowshelf", 200.0, rate, rng.uniform(-4, 4)),
        biquad("highshelf", 6000.0, rate, rng.uniform(-4, 4)),
        biquad("peak", float(np.exp(rng.uniform(np.log(300), np.log(5000)))), rate, rng.uniform(-4, 4), 1.0),
    ]
    return sosfilt(np.concatenate(sections), audio, axis=-1).astype(np.float32)


def compress(
    audio: np.ndarray, rate: int, threshold_db: float, ratio: float, time: float = 0.03
) -> np.ndarray:
    """Light feed-forward RMS compression of ``[C, T]`` (linked channels, one smoothing time)."""
    coeff = np.exp(-1.0 / (time * rate))
    power = lfilter([1 - coeff], [1, -coeff], (audio.astype(np.float64) ** 2).mean(0))
    level_db = 10 * np.log10(np.maximum(power, 1e-12))
    reduction = np.minimum(0.0, (threshold_db - level_db) * (1 - 1 / ratio))
    return (audio * 10 ** (reduction / 20)).astype(np.float32)


def room_impulse(rng: np.random.Generator, rate: int, rt60: float, predelay: float) -> np.ndarray:
    """A stereo room: sparse early reflections then decorrelated exponentially decaying noise whose
    highs decay faster; unit energy. Returns ``[2, L]``."""
    length = int((predelay + rt60 * 1.2) * rate)
    t = np.arange(length) / rate
    ir = rng.standard_normal((2, length)) * np.exp(-6.9 * np.maximum(t - predelay, 0) / rt60)
    ir[:, : int(predelay * rate)] = 0
    for _ in range(8):
        at = int(rng.uniform(0.002, predelay + 0.03) * rate)
        ir[:, min(at, length - 1)] += rng.uniform(-1.5, 1.5, 2)
    dark = lfilter([0.35], [1, -0.65], ir, axis=-1)
    fade = np.exp(-t / (rt60 / 3))
    ir = ir * fade + dark * (1 - fade)
    return (ir / np.sqrt((ir**2).sum() / 2)).astype(np.float32)


def reverb(audio: np.ndarray, impulse: np.ndarray) -> np.ndarray:
    """The wet signal of ``audio [C, T]`` (mono sum in) through the stereo ``impulse``: ``[2, T]``."""
    dry = audio.mean(0)
    return np.stack([fftconvolve(dry, impulse[c])[: audio.shape[1]] for c in range(2)]).astype(np.float32)


def active_rms(audio: np.ndarray, rate: int) -> float:
    """RMS over the 50 ms blocks louder than -50 dB of the loudest block (0 for silence)."""
    block = max(1, int(0.05 * rate))
    usable = audio[..., : audio.shape[-1] // block * block]
    if usable.shape[-1] == 0:
        return 0.0
    energy = (usable.astype(np.float64) ** 2).reshape(-1, usable.shape[-1] // block, block).mean(axis=(0, 2))
    if energy.max() <= 0:
        return 0.0
    return float(np.sqrt(energy[energy > energy.max() * 1e-5].mean()))
