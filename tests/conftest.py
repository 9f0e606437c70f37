"""Shared fixtures: a tiny Conv-TasNet checkpoint built in code, audio files, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from separate import checkpoints, models

TINY_CONVTASNET = dict(
    n_filters=16, kernel_size=8, stride=4, bottleneck=8, hidden=16, skip=8, blocks=2, repeats=1
)


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    torch.set_num_threads(1)


def tiny_model(sources: int = 2, sample_rate: int = 8000, seed: int = 0, **overrides: object):
    torch.manual_seed(seed)
    return models.build(
        "convtasnet", sources=sources, sample_rate=sample_rate, **{**TINY_CONVTASNET, **overrides}
    )


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    checkpoints.save(tiny_model(), path)
    return path


def registry_entry(name: str, checkpoint: Path, **extra: str) -> str:
    """A ``[models.NAME]`` table of ``checkpoint`` (a two-speaker 8 kHz Conv-TasNet) for a test
    registry; ``extra`` values are TOML literals."""
    lines = [
        f"[models.{name}]",
        'architecture = "convtasnet"',
        'task = "speech"',
        'sources = ["s1", "s2"]',
        "sample_rate = 8000",
        f'bundled = "{checkpoint}"',
        f'sha256 = "{checkpoints.file_sha256(checkpoint)}"',
        *(f"{key} = {value}" for key, value in extra.items()),
    ]
    return "\n".join(lines) + "\n"


def write_audio(
    path: Path, seconds: float, sample_rate: int = 8000, channels: int = 1, seed: int = 0
) -> Path:
    rng = np.random.default_rng(seed)
    data = (0.1 * rng.standard_normal((int(seconds * sample_rate), channels))).astype(np.float32)
    sf.write(path, data, sample_rate)
    return path


def voice(
    rng: np.random.Generator,
    rate: int,
    seconds: float,
    f0: float,
    harmonics: int = 7,
    voiced_above: float = -0.3,
    onset_noise: float = 0.0,
) -> np.ndarray:
    """Voiced syllables at pitch ``f0`` (three a second) with pauses: enough for silence trimming,
    syllable finding and WORLD analysis. ``onset_noise`` adds noise of that level in the pauses.
    Returns ``[seconds * rate]`` float32."""
    t = np.arange(int(seconds * rate)) / rate
    pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    tones = sum(np.sin(k * phase) / k for k in range(1, harmonics + 1))
    syllables = np.sin(2 * np.pi * 3 * t)
    audio = 0.2 * tones * (syllables > voiced_above)
    if onset_noise:
        audio = audio + onset_noise * rng.standard_normal(t.size) * (syllables < voiced_above)
    return audio.astype(np.float32)


def run_cli(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m separate ARGS`` in a child process, as a user would from the shell."""
    return subprocess.run(
        [sys.executable, "-m", "separate", *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        timeout=300,
    )
