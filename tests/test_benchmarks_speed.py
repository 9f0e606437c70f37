"""Engine versus bare forward passes on a tiny model (pytest-benchmark).

The suite runs these once as smoke tests (``--benchmark-disable`` in the default options); for timings:

    pytest tests/test_benchmarks_speed.py --benchmark-enable
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import soundfile as sf
from conftest import tiny_model

from separate.bench.measure import bare_forward_passes, separate_to_files, write_noise
from separate.engine import Separator

SECONDS = 8.0
RATE = 8000
BATCH = 4


@pytest.fixture(scope="module")
def separator() -> Separator:
    return Separator(tiny_model(sample_rate=RATE), "cpu", segment=0.5, overlap=0.25, batch_size=BATCH)


@pytest.fixture(scope="module")
def noise_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("speed") / "noise.wav"
    write_noise(path, SECONDS, RATE, 1)
    return path


@pytest.mark.benchmark(group="engine-vs-forward")
def test_engine_separate_file(benchmark, separator: Separator, noise_file: Path, tmp_path: Path) -> None:
    result = benchmark(separate_to_files, separator, noise_file, tmp_path)
    assert set(result["outputs"]) == {"s1", "s2"}
    for path in result["outputs"].values():
        info = sf.info(path)
        assert (info.frames, info.samplerate, info.channels) == (int(SECONDS * RATE), RATE, 1)


@pytest.mark.benchmark(group="engine-vs-forward")
def test_bare_forward_same_chunks(benchmark, separator: Separator) -> None:
    chunk, hop, n_chunks = separator.plan(int(SECONDS * RATE))
    assert (chunk, hop, n_chunks) == (4000, 3000, 21)
    calls = benchmark(bare_forward_passes, separator.model, chunk, n_chunks, BATCH, separator.device)
    assert calls == math.ceil(n_chunks / BATCH) == 6
