"""Measurements that run inside one process (a child started by :mod:`separate.bench.process`).

* :func:`measure_model`: parameters, MACs per second of audio, forward and forward+backward time per
  second of audio (warm-up, then the median of repeated runs), peak memory of each phase.
* :func:`measure_engine`: :class:`~separate.engine.Separator` on a long generated file versus the
  model's forward passes alone on the same chunks (same length, batch size and count).
* :func:`measure_batching`: the same file through the engine with one chunk per forward pass and with N.

Timings on CUDA synchronise the device before every clock read.
"""

from __future__ import annotations

import contextlib
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from separate.bench.process import MIB, rss_bytes
from separate.bench.targets import build_target
from separate.models.base import SeparationModel

NOISE_BLOCK = 1 << 16


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakMemory:
    """Peak memory of one phase of this process.

    CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``. CPU: the peak
    resident set (VmHWM), reset at the start of the phase through ``/proc/self/clear_refs``; where
    that is not possible the peak since the process started (``ru_maxrss``).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = "cuda_max_memory_allocated" if device.type == "cuda" else "cpu_peak_rss"
        self.baseline_bytes = 0

    def reset(self) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline_bytes = torch.cuda.memory_allocated(self.device)
            return
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
        except OSError:
            self.kind = "cpu_peak_rss_since_start"
        self.baseline_bytes = _proc_status_bytes("VmRSS") or 0

    def peak_bytes(self) -> int:
        if self.device.type == "cuda":
            synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device)
        if self.kind == "cpu_peak_rss":
            peak = _proc_status_bytes("VmHWM")
            if peak is not None:
                return peak
        return rss_bytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _proc_status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def timed_runs(step: Callable[[], None], repeats: int, warmup: int, device: torch.device) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``step`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def measure_model(
    target: dict[str, Any],
    device: str = "cpu",
    seconds: float = 1.0,
    batch: int = 1,
    sample_rate: int | None = None,
    repeats: int = 5,
    warmup: int = 1,
) -> dict[str, Any]:
    """Complexity, speed and memory of one model on ``mix: [batch, C, seconds * rate]`` of noise.

    ``sample_rate`` sets how many samples make one second (default: the model's own rate). RTFs are
    seconds of compute per second of audio: the median time of one call over ``batch * seconds``.
    """
    from separate.bench.complexity import count_macs, count_parameters
    from separate.runtime import select_device

    torch_device = select_device(device)
    model = build_target(target)
    rate = sample_rate or model.sample_rate
    length = max(1, round(seconds * rate))
    parameters = count_parameters(model)
    model = model.to(torch_device)
    generator = torch.Generator().manual_seed(0)
    mix = (0.1 * torch.randn(batch, model.audio_channels, length, generator=generator)).to(torch_device)
    audio_seconds = batch * length / rate
    memory = PeakMemory(torch_device)

    model.eval()
    memory.reset()
    forward_baseline = memory.baseline_bytes

    def forward() -> None:
        with torch.inference_mode():
            model(mix)

    forward_times = timed_runs(forward, repeats, warmup, torch_device)
    forward_peak = memory.peak_bytes()

    model.train()
    memory.reset()

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        model(mix).square().mean().backward()

    train_times = timed_runs(forward_backward, repeats, warmup, torch_device)
    train_peak = memory.peak_bytes()
    forward_seconds, train_seconds = statistics.median(forward_times), statistics.median(train_times)
    try:  # last, so that its own forward pass leaves nothing behind in the memory phases above
        macs: int | None = count_macs(model.cpu(), length / rate, rate)
    except ImportError:  # ptflops is an optional (test) dependency
        macs = None
    return {
        "architecture": type(model).architecture,
        "model_sample_rate": model.sample_rate,
        "audio_channels": model.audio_channels,
        "sources": list(model.sources),
        "parameters": parameters,
        "macs_per_second": None if macs is None else macs * rate / length,
        "sample_rate": rate,
        "samples": length,
        "batch": batch,
        "device": str(torch_device),
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "warmup": warmup,
        "forward_seconds": forward_seconds,
        "forward_rtf": forward_seconds / audio_seconds,
        "train_seconds": train_seconds,
        "train_rtf": train_seconds / audio_seconds,
        "memory_kind": memory.kind,
        "forward_baseline_mb": forward_baseline / MIB,
        "forward_peak_mb": forward_peak / MIB,
        "train_peak_mb": train_peak / MIB,
    }


def write_noise(path: Path, seconds: float, sample_rate: int, channels: int, seed: int = 0) -> int:
    """Write ``seconds`` of quiet Gaussian noise as 16-bit WAV, block by block; return its frame count."""
    frames = max(1, round(seconds * sample_rate))
    rng = np.random.default_rng(seed)
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=channels, subtype="PCM_16") as handle:
        for start in range(0, frames, NOISE_BLOCK):
            size = min(NOISE_BLOCK, frames - start)
            handle.write(np.clip(0.1 * rng.standard_normal((size, channels)), -1.0, 1.0).astype(np.float32))
    return frames


def bare_forward_passes(
    model: SeparationModel, chunk: int, n_chunks: int, batch_size: int, device: torch.device
) -> int:
    """The model's forward passes alone: ``n_chunks`` chunks of ``chunk`` samples, ``batch_size`` at a time.

    Mirrors the engine's grouping (full batches, then the remainder) on one reused noise batch
    ``[batch_size, C, chunk]``. Returns the number of forward calls.
    """
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    generator = torch.Generator().manual_seed(1)
    noise = 0.1 * torch.randn(batch_size, model.audio_channels, chunk, generator=generator)
    batch = noise.to(device, dtype)
    calls = 0
    with torch.inference_mode():
        for first in range(0, n_chunks, batch_size):
            model(batch[: min(batch_size, n_chunks - first)])
            calls += 1
    synchronize(device)
    return calls


def separate_to_files(separator: Any, input_path: Path, folder: Path) -> dict[str, Any]:
    """Separate ``input_path`` into every stem, 24-bit WAV files under ``folder`` (as ``separate audio``)."""
    from separate.audio import open_input

    with open_input(str(input_path), separator.max_channels) as audio:
        outputs = {stem: str(folder / f"{stem}.wav") for stem in separator.sources}
        return separator.separate_file(audio, outputs, "wav", "PCM_24")


@contextlib.contextmanager
def _noise_input(model: SeparationModel, seconds: float) -> Iterator[tuple[Path, Path, int]]:
    """A temporary folder holding ``input.wav``, ``seconds`` of noise at the model's rate and channels:
    yields ``(folder, input path, frames)``."""
    with tempfile.TemporaryDirectory(prefix="separate-bench-") as name:
        folder = Path(name)
        frames = write_noise(folder / "input.wav", seconds, model.sample_rate, model.audio_channels)
        yield folder, folder / "input.wav", frames


def _seconds(action: Callable[[], object], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    action()
    synchronize(device)
    return time.perf_counter() - start


def interleaved(
    first: Callable[[], object], second: Callable[[], object], device: torch.device
) -> tuple[list[float], list[float]]:
    """Seconds of two runs each, in the order first, second, second, first, so that a drift in
    machine load weighs on both sides equally."""
    first_runs, second_runs = [_seconds(first, device)], [_seconds(second, device)]
    second_runs.append(_seconds(second, device))
    first_runs.append(_seconds(first, device))
    return first_runs, second_runs


def measure_engine(
    target: dict[str, Any],
    device: str = "cpu",
    input_seconds: float = 600.0,
    batch_size: int = 4,
    segment: float | None = None,
    overlap: float = 0.25,
) -> dict[str, Any]:
    """Engine (read, chunk, batch, forward, overlap-add, write) versus bare forward passes, in one process.

    Runs in the order forward, engine, engine, forward so that a drift in machine load weighs on both
    equally; each time is the mean of its two runs.
    """
    from separate.engine import Separator

    model = build_target(target)
    separator = Separator(model, device, segment, overlap, batch_size)
    rate = model.sample_rate
    with _noise_input(model, input_seconds) as (folder, input_path, frames):
        chunk, hop, n_chunks = separator.plan(frames)
        bare_forward_passes(separator.model, chunk, min(n_chunks, batch_size), batch_size, separator.device)
        calls = 0

        def forward_only() -> None:
            nonlocal calls
            calls = bare_forward_passes(separator.model, chunk, n_chunks, batch_size, separator.device)

        def engine() -> None:
            separate_to_files(separator, input_path, folder)

        runs = interleaved(forward_only, engine, separator.device)
    forward_seconds, engine_seconds = statistics.mean(runs[0]), statistics.mean(runs[1])
    return {
        "architecture": type(model).architecture,
        "device": str(separator.device),
        "threads": torch.get_num_threads(),
        "input_seconds": frames / rate,
        "sample_rate": rate,
        "segment": separator.segment,
        "overlap": overlap,
        "chunk": chunk,
        "hop": hop,
        "n_chunks": n_chunks,
        "batch_size": batch_size,
        "forward_calls": calls,
        "forward_seconds": forward_seconds,
        "engine_seconds": engine_seconds,
        "forward_runs": runs[0],
        "engine_runs": runs[1],
        "ratio": engine_seconds / forward_seconds,
        "engine_rtf": engine_seconds / (frames / rate),
    }


def measure_batching(
    target: dict[str, Any],
    device: str = "cpu",
    input_seconds: float = 120.0,
    batch_size: int = 4,
    segment: float | None = None,
    overlap: float = 0.25,
) -> dict[str, Any]:
    """The same file through the engine one chunk at a time and ``batch_size`` chunks at a time.

    Runs in the order 1, N, N, 1 so that a drift in machine load weighs on both equally; each time
    is the mean of its two runs.
    """
    from separate.engine import Separator

    model = build_target(target)
    one = Separator(model, device, segment, overlap, 1)
    many = Separator(model, device, segment, overlap, batch_size)
    rate = model.sample_rate
    with _noise_input(model, input_seconds) as (folder, input_path, frames):
        chunk, hop, n_chunks = many.plan(frames)
        bare_forward_passes(many.model, chunk, batch_size, batch_size, many.device)
        runs = interleaved(
            lambda: separate_to_files(one, input_path, folder),
            lambda: separate_to_files(many, input_path, folder),
            many.device,
        )
    single, batched = statistics.mean(runs[0]), statistics.mean(runs[1])
    return {
        "architecture": type(model).architecture,
        "device": str(many.device),
        "threads": torch.get_num_threads(),
        "input_seconds": frames / rate,
        "segment": many.segment,
        "chunk": chunk,
        "n_chunks": n_chunks,
        "batch_size": batch_size,
        "batch1_seconds": single,
        "batched_seconds": batched,
        "batch1_runs": runs[0],
        "batched_runs": runs[1],
        "speedup": single / batched,
    }
