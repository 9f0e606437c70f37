"""Signal generators for the synthetic corpora: speech-like talkers, music stems, background noise.

Everything is numpy float64 drawn from a ``numpy.random.Generator``, so the same generator state
gives the same audio. Used by :mod:`separate.data.synthetic`.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

MUSIC_STEMS = ("drums", "bass", "other", "vocals")
#: (F1, F2) of a few vowels, Hz (adult male averages).
VOWELS = (
    (730, 1090),
    (270, 2290),
    (300, 870),
    (530, 1840),
    (570, 840),
    (660, 1720),
    (440, 1020),
    (390, 1990),
)
MAJOR, MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)
_MAX_HARMONICS = 40


def _midi_hz(midi: np.ndarray | float) -> np.ndarray | float:
    return 440.0 * 2.0 ** ((np.asarray(midi) - 69.0) / 12.0)


_TABLE_SIZE = 2048


def _periodic(phase: np.ndarray, amplitudes: np.ndarray) -> np.ndarray:
    """``sum_k amplitudes[k-1] * sin(k * phase)`` by wavetable lookup (cost independent of k).

    phase: [T] radians -> [T]."""
    grid = np.linspace(0, 2 * np.pi, _TABLE_SIZE + 1)
    harmonics = np.arange(1, len(amplitudes) + 1)[:, None]
    table = (amplitudes[:, None] * np.sin(harmonics * grid[None])).sum(axis=0)
    position = np.mod(phase, 2 * np.pi) * (_TABLE_SIZE / (2 * np.pi))
    index = np.minimum(position.astype(np.intp), _TABLE_SIZE - 1)
    below = table.take(index)
    return below + (position - index) * (table.take(index + 1) - below)


def _harmonic_count(f0_max: float, sample_rate: int, limit: int) -> int:
    """Harmonics that stay below 0.45 * sample_rate at the highest pitch (at least 1)."""
    return int(max(1, min(limit, 0.45 * sample_rate // max(f0_max, 1.0))))


def _voiced_excitation(f0: np.ndarray, tilt: float, sample_rate: int) -> np.ndarray:
    """Band-limited glottal-like pulse train following ``f0: [T]`` Hz -> [T]."""
    count = _harmonic_count(float(f0.max()), sample_rate, _MAX_HARMONICS)
    amplitudes = np.arange(1, count + 1, dtype=float) ** -tilt
    return _periodic(2 * np.pi * np.cumsum(f0) / sample_rate, amplitudes)


def _formant_filter(x: np.ndarray, formants: tuple[float, ...], sample_rate: int) -> np.ndarray:
    """Cascade of two-pole resonators at ``formants`` Hz (unit gain at DC). x: [T] -> [T]."""
    numerator, denominator = 1.0, np.array([1.0])
    for frequency, bandwidth in zip(formants, (90.0, 120.0, 180.0), strict=False):
        frequency = min(frequency, 0.45 * sample_rate)
        radius = np.exp(-np.pi * bandwidth / sample_rate)
        pole = np.array([1.0, -2 * radius * np.cos(2 * np.pi * frequency / sample_rate), radius**2])
        numerator *= pole.sum()
        denominator = np.convolve(denominator, pole)
    return lfilter([numerator], denominator, x)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / (np.sqrt(np.mean(x**2)) + 1e-8)


def speech_like(
    rng: np.random.Generator, length: int, sample_rate: int, f0: float, tract: float
) -> np.ndarray:
    """One talker: [length] at unit RMS. ``f0`` is the speaker's mean pitch, ``tract`` scales formants.

    Syllables of 0.1-0.28 s (with occasional pauses) each carry a vowel (formant filter) and a
    pitch target; the pitch glides between syllable targets and declines over the utterance."""
    bounds, t = [], min(int(rng.uniform(0, 0.2) * sample_rate), length // 4)
    while t < length:
        duration = int(rng.uniform(0.1, 0.28) * sample_rate)
        bounds.append((t, min(t + duration, length)))
        pause = rng.uniform(0.15, 0.45) if rng.random() < 0.2 else rng.uniform(0.01, 0.05)
        t += duration + int(pause * sample_rate)
    samples = np.arange(length)
    centres = np.array([(a + b) / 2 for a, b in bounds] or [length / 2])
    contour = np.interp(samples, centres, np.exp(rng.normal(0, 0.1, len(centres))))
    declination = 1.0 - 0.15 * samples / max(length, 1)
    jitter = 1.0 + 0.01 * np.sin(2 * np.pi * rng.uniform(4, 6) * samples / sample_rate)
    excitation = _voiced_excitation(f0 * contour * declination * jitter, 0.8, sample_rate)
    excitation += lfilter([1.0, -0.9], [1.0], rng.standard_normal(length)) * 0.05
    out = np.zeros(length)
    for start, stop in bounds:
        first, second = VOWELS[int(rng.integers(0, len(VOWELS)))]
        formants = (
            first * tract * rng.uniform(0.92, 1.08),
            second * tract * rng.uniform(0.92, 1.08),
            2500 * tract,
        )
        envelope = np.sin(np.linspace(0, np.pi, stop - start)) ** 0.6
        out[start:stop] = _formant_filter(excitation[start:stop], formants, sample_rate) * envelope
    return _normalise(out)


def speakers(rng: np.random.Generator, count: int) -> list[tuple[float, float]]:
    """(mean f0, tract scale) per speaker, pitches at least ~4 semitones apart when possible."""
    chosen: list[tuple[float, float]] = []
    for _ in range(count):
        for _attempt in range(50):
            f0 = float(np.exp(rng.uniform(np.log(85), np.log(300))))
            if all(abs(np.log(f0 / other)) > 0.23 for other, _ in chosen):
                break
        tract = float(np.clip(1.35 - f0 / 400 + rng.normal(0, 0.05), 0.85, 1.25))
        chosen.append((f0, tract))
    return chosen


def _hit_positions(pattern: list[float], bars: int, step: float, rng: np.random.Generator) -> list[int]:
    return [
        int((bar * 16 + s) * step) for bar in range(bars) for s, p in enumerate(pattern) if rng.random() < p
    ]


def _drums(rng: np.random.Generator, length: int, sr: int, step: float) -> np.ndarray:
    out, bars = np.zeros(length), int(length / (16 * step)) + 1
    kick_pattern = [1.0 if s in (0, 8) else 0.2 if s in (6, 10, 14) else 0.0 for s in range(16)]
    snare_pattern = [1.0 if s in (4, 12) else 0.05 for s in range(16)]
    hat_pattern = [0.9 if s % 2 == 0 else 0.3 for s in range(16)]
    t = np.arange(int(0.3 * sr)) / sr
    sweep = 2 * np.pi * np.cumsum(45 + 110 * np.exp(-t / 0.03)) / sr
    kick = np.sin(sweep) * np.exp(-t / 0.12)
    snare_noise = rng.standard_normal(len(t)) * np.exp(-t / 0.07)
    snare = 0.6 * snare_noise + 0.5 * np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.05)
    hat = np.diff(rng.standard_normal(len(t) + 1)) * np.exp(-t / 0.015) * 0.25
    for sound, pattern, level in (
        (kick, kick_pattern, 1.0),
        (snare, snare_pattern, 0.7),
        (hat, hat_pattern, 0.5),
    ):
        for start in _hit_positions(pattern, bars, step, rng):
            if start < length:
                stop = min(length, start + len(sound))
                out[start:stop] += level * rng.uniform(0.8, 1.0) * sound[: stop - start]
    return out


def _note_sequence(
    rng: np.random.Generator,
    length: int,
    step: float,
    pitches: np.ndarray,
    steps: tuple[int, ...],
    rest: float,
) -> list[tuple[int, int, float]]:
    notes, position = [], 0
    while position * step < length:
        count = int(rng.choice(steps))
        if position == 0 or rng.random() >= rest:
            notes.append(
                (
                    int(position * step),
                    min(length, int((position + count) * step)),
                    float(rng.choice(pitches)),
                )
            )
        position += count
    return notes


def _scale_pitches(root: int, scale: tuple[int, ...], low: int, high: int) -> np.ndarray:
    return np.array([m for m in range(low, high + 1) if (m - root) % 12 in scale], dtype=float)


def _bass(
    rng: np.random.Generator, length: int, sr: int, step: float, root: int, scale: tuple[int, ...]
) -> np.ndarray:
    """Plucked low notes (MIDI 28-45) on eighths and quarters."""
    out = np.zeros(length)
    for start, stop, midi in _note_sequence(
        rng, length, step, _scale_pitches(root, scale, 28, 45), (2, 4, 4), 0.1
    ):
        t = np.arange(stop - start) / sr
        freq = float(_midi_hz(midi))
        amplitudes = np.arange(1, _harmonic_count(freq, sr, 8) + 1, dtype=float) ** -1.5
        envelope = np.minimum(1.0, t / 0.005) * np.exp(-t / 0.3) * np.minimum(1.0, (t[-1] - t + 1e-9) / 0.01)
        out[start:stop] += _periodic(2 * np.pi * freq * t, amplitudes) * envelope
    return out


def _chords(
    rng: np.random.Generator, length: int, sr: int, step: float, root: int, scale: tuple[int, ...]
) -> np.ndarray:
    """One sustained sawtooth triad (MIDI ~57-83) per bar, each note a slightly detuned pair."""
    out, bar = np.zeros(length), int(16 * step)
    for start in range(0, length, bar):
        stop = min(length, start + bar)
        t = np.arange(stop - start) / sr
        degree = int(rng.integers(0, 7))
        envelope = np.minimum(1.0, t / 0.06) * np.minimum(1.0, (t[-1] - t + 1e-9) / 0.08)
        for offset in (0, 2, 4):
            index = degree + offset
            midi = root + 24 + 12 * (index // 7) + scale[index % 7]
            for detune in (-0.004, 0.004):
                freq = float(_midi_hz(midi)) * (1 + detune)
                amplitudes = 1.0 / np.arange(1, _harmonic_count(freq, sr, 10) + 1, dtype=float)
                out[start:stop] += envelope * _periodic(2 * np.pi * freq * t, amplitudes)
    return out


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average over ``width`` samples with edge padding (same length)."""
    width = max(1, width)
    padded = np.pad(x, (width // 2, width - 1 - width // 2), mode="edge")
    running = np.concatenate([[0.0], np.cumsum(padded)])
    return (running[width:] - running[:-width]) / width


def _vocals(
    rng: np.random.Generator, length: int, sr: int, step: float, root: int, scale: tuple[int, ...]
) -> np.ndarray:
    """A sung melody (MIDI 60-76) with vibrato and one vowel per note."""
    notes = _note_sequence(rng, length, step, _scale_pitches(root, scale, 60, 76), (2, 4, 4, 8), 0.15)
    f0 = np.full(length, float(_midi_hz(root + 36)))
    for start, stop, midi in notes:
        t = np.arange(stop - start) / sr
        f0[start:stop] = _midi_hz(midi) * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t) * np.minimum(1, t / 0.3))
    excitation = _voiced_excitation(_smooth(f0, int(0.02 * sr)), 0.6, sr)
    out = np.zeros(length)
    for start, stop, _ in notes:
        t = np.arange(stop - start) / sr
        envelope = np.minimum(1.0, t / 0.03) * np.minimum(1.0, (t[-1] - t + 1e-9) / 0.05)
        formants = (*VOWELS[int(rng.integers(0, len(VOWELS)))], 2800.0)
        out[start:stop] = _formant_filter(excitation[start:stop], formants, sr) * envelope
    return out


def music_stems(rng: np.random.Generator, length: int, sample_rate: int) -> dict[str, np.ndarray]:
    """Drums, bass, other (chords) and vocals of one song excerpt, each [length] at unit RMS."""
    step = 60.0 / rng.uniform(90, 140) / 4 * sample_rate
    root = int(rng.integers(33, 45))
    scale = MAJOR if rng.random() < 0.5 else MINOR
    makers = {"drums": _drums, "bass": _bass, "other": _chords, "vocals": _vocals}
    stems = {}
    for name in MUSIC_STEMS:
        args = (
            (rng, length, sample_rate, step)
            if name == "drums"
            else (rng, length, sample_rate, step, root, scale)
        )
        stems[name] = _normalise(makers[name](*args))
    return stems


def pan(signal: np.ndarray, position: float, channels: int) -> np.ndarray:
    """[T] -> [channels, T] with constant-power panning at ``position`` in [-1, 1]."""
    if channels == 1:
        return signal[None]
    angle = (position + 1) * np.pi / 4
    return np.stack([np.cos(angle) * signal, np.sin(angle) * signal]) * np.sqrt(2)


def background_noise(rng: np.random.Generator, length: int, sample_rate: int) -> np.ndarray:
    """Coloured, slowly modulated background noise at unit RMS: [length]."""
    pole = rng.uniform(0.5, 0.97)
    coloured = lfilter([1.0], [1.0, -pole], rng.standard_normal(length))
    t = np.arange(length) / sample_rate
    modulation = 1.0 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 2.0) * t + rng.uniform(0, 2 * np.pi))
    return _normalise(coloured * modulation)
