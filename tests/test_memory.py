"""Memory does not grow with the input's length: 60 minutes peak within 1.2x of 1 minute."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

PEAK_RSS = (
    "import resource, sys; from separate.cli import main; code = main(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(code)"
)


def _long_file(path: Path, minutes: float, rate: int = 8000) -> Path:
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as handle:
        for _ in range(int(minutes * 60)):
            handle.write((0.1 * rng.standard_normal(rate)).astype(np.float32))
    return path


def _peak_kib(song: Path, model: Path, out: Path) -> int:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PEAK_RSS,
            "audio",
            str(song),
            "-m",
            str(model),
            "-o",
            str(out),
            "--json",
            "--threads",
            "1",
            "--segment",
            "4",
            "--batch-size",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stderr.strip().splitlines()[-1])


@pytest.mark.slow
def test_sixty_minutes_peak_memory_close_to_one_minute(tmp_path: Path, tiny_checkpoint: Path) -> None:
    one = _peak_kib(_long_file(tmp_path / "one.wav", 1), tiny_checkpoint, tmp_path / "o1")
    sixty = _peak_kib(_long_file(tmp_path / "sixty.wav", 60), tiny_checkpoint, tmp_path / "o60")
    print(f"peak RSS: 1 min {one / 1024:.1f} MiB, 60 min {sixty / 1024:.1f} MiB, ratio {sixty / one:.3f}")
    assert sixty <= 1.2 * one
    assert sf.info(tmp_path / "o60" / "sixty" / "s1.wav").frames == 60 * 60 * 8000
