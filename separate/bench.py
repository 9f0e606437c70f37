"""Benchmarks: model complexity and speed (the papers' efficiency tables) and the engine's own costs.

Every measurement runs in a fresh child process (:mod:`separate.benchmarks.process`), so one model's
memory cannot inflate the next one's and the peak resident memory belongs to that measurement alone.

* :func:`benchmark_models`: per model, parameters, MACs per second of audio, forward and
  forward+backward time per second of audio (real-time factor), peak memory.
* :func:`benchmark_engine`: ``Separator.separate_file`` on a long generated file versus the model's
  forward passes alone on the same chunks; the ratio is the engine's overhead (goal <= 1.10).
* :func:`benchmark_batching`: engine time with one chunk per forward pass over time with N.
* :func:`benchmark_memory`: peak resident memory of ``separate audio`` on a long file over a short one
  (goal <= 1.2: memory must not grow with the input's length).
* :func:`benchmark_losses`: the permutation-invariant losses (:mod:`separate.losses.benchmark`).
* :func:`benchmark_bsseval`: our torch BSSEval v4 over museval's on a music-like excerpt (CPU time ratio).
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from separate.benchmarks.process import child_env, run_measured, run_task
from separate.errors import SeparateError

MIB = 2**20
#: Conv-TasNet reduced to 0.34 M parameters (0.34 GMAC/s): the default model of the engine and batching
#: benchmarks, light enough for a 10-minute input on one CPU core yet not so light that I/O dominates.
SMALL_CONVTASNET = {"n_filters": 128, "bottleneck": 64, "hidden": 128, "skip": 64, "blocks": 6, "repeats": 2}
#: Conv-TasNet reduced to 10 k parameters: the default model of the memory benchmark (60 minutes of audio).
TINY_CONVTASNET = {"n_filters": 32, "bottleneck": 16, "hidden": 32, "skip": 16, "blocks": 4, "repeats": 1}


@dataclass
class Target:
    """A model to measure: a preset built with random weights, or a checkpoint file.

    ``name`` is the preset name (``kind="preset"``) or the checkpoint path (``kind="checkpoint"``);
    ``label`` is what tables show.
    """

    label: str
    kind: Literal["preset", "checkpoint"]
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        """The JSON form a child process rebuilds the model from."""
        if self.kind == "checkpoint":
            return {"kind": "checkpoint", "path": self.name}
        return {"kind": "preset", "name": self.name, "overrides": dict(self.overrides)}


ENGINE_TARGET = Target("convtasnet-small", "preset", "convtasnet", SMALL_CONVTASNET)
MEMORY_TARGET = Target("convtasnet-tiny", "preset", "convtasnet", TINY_CONVTASNET)


def select_targets(
    models: Sequence[str] = (), presets: Sequence[str] = (), all_presets: bool = False
) -> list[Target]:
    """Targets named by ``--model`` (registry name, path, ``hf://``), ``--presets`` and ``--all``, no repeats.

    Checkpoints are resolved (downloaded when needed) and their headers read here, so a bad name or file
    fails before any measurement.
    """
    from separate.checkpoints import read_header, resolve
    from separate.models import PRESETS

    targets: list[Target] = []
    for name in models:
        path = resolve(name)
        read_header(path)
        targets.append(Target(name, "checkpoint", str(path)))
    unknown = [name for name in presets if name not in PRESETS]
    if unknown:
        raise SeparateError(f"unknown preset(s) {', '.join(unknown)} (known: {', '.join(sorted(PRESETS))})")
    for name in [*presets, *(PRESETS if all_presets else ())]:
        targets.append(Target(name, "preset", name))
    unique: dict[tuple[str, str], Target] = {}
    for target in targets:
        unique.setdefault((target.kind, target.name), target)
    return list(unique.values())


def check_device(device: str) -> str:
    """The device string after checking it exists (``auto`` becomes ``cpu`` or ``cuda``)."""
    from separate.engine import select_device

    return str(select_device(device))


def machine_info(device: str, threads: int | None) -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, threads, torch, GPU, load average at the start."""
    import torch

    info: dict[str, Any] = {
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "threads": threads or torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(value, 2) for value in os.getloadavg()]
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def check_positive(**values: float | None) -> None:
    """Raise a :class:`SeparateError` naming the first option (``batch_size`` as ``batch-size``) <= 0."""
    for name, value in values.items():
        if value is not None and value <= 0:
            raise SeparateError(f"{name.replace('_', '-')} must be positive, got {value}")


def benchmark_models(
    targets: Sequence[Target],
    device: str = "cpu",
    seconds: float = 1.0,
    batch: int = 1,
    sample_rate: int | None = None,
    repeats: int = 5,
    warmup: int = 1,
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per target (see :func:`separate.benchmarks.measure.measure_model`), each from its own process.

    A target whose measurement fails gets a row with ``error`` instead of numbers.
    """
    check_positive(seconds=seconds, batch=batch, sample_rate=sample_rate, repeats=repeats)
    if warmup < 0:
        raise SeparateError(f"warmup must be zero or more, got {warmup}")
    rows = []
    for index, target in enumerate(targets, 1):
        start = time.perf_counter()
        kwargs = dict(
            target=target.spec(),
            device=device,
            seconds=seconds,
            batch=batch,
            sample_rate=sample_rate,
            repeats=repeats,
            warmup=warmup,
        )
        rows.append({"model": target.label, **run_task("model", kwargs, threads)})
        if progress is not None:
            outcome = "failed" if "error" in rows[-1] else f"{time.perf_counter() - start:.1f} s"
            progress(f"[{index}/{len(targets)}] {target.label}: {outcome}")
    return rows


def benchmark_engine(
    target: Target = ENGINE_TARGET,
    device: str = "cpu",
    input_seconds: float = 600.0,
    batch_size: int = 4,
    segment: float | None = None,
    overlap: float = 0.25,
    threads: int | None = None,
) -> dict[str, Any]:
    """Engine seconds, bare-forward seconds and their ratio on ``input_seconds`` of audio (one child)."""
    check_positive(engine_seconds=input_seconds, batch_size=batch_size, segment=segment)
    return _engine_task("engine", target, device, input_seconds, batch_size, segment, overlap, threads)


def benchmark_batching(
    target: Target = ENGINE_TARGET,
    device: str = "cpu",
    input_seconds: float = 120.0,
    batch_size: int = 4,
    segment: float | None = None,
    overlap: float = 0.25,
    threads: int | None = None,
) -> dict[str, Any]:
    """Speed-up of ``batch_size`` chunks per forward pass over one chunk at a time (one child process)."""
    check_positive(batching_seconds=input_seconds, batching_size=batch_size, segment=segment)
    return _engine_task("batching", target, device, input_seconds, batch_size, segment, overlap, threads)


def _engine_task(
    task: str,
    target: Target,
    device: str,
    input_seconds: float,
    batch_size: int,
    segment: float | None,
    overlap: float,
    threads: int | None,
) -> dict[str, Any]:
    """Run one of the Separator measurements of ``separate.benchmarks.measure`` in a child process."""
    kwargs = dict(
        target=target.spec(),
        device=device,
        input_seconds=input_seconds,
        batch_size=batch_size,
        segment=segment,
        overlap=overlap,
    )
    return {"model": target.label, **run_task(task, kwargs, threads)}


def benchmark_memory(
    target: Target = MEMORY_TARGET,
    device: str = "cpu",
    long_seconds: float = 3600.0,
    short_seconds: float = 60.0,
    batch_size: int = 4,
    threads: int | None = None,
) -> dict[str, Any]:
    """Peak resident memory of ``python -m separate audio`` on a long and a short generated file.

    Each run is its own child process; its peak comes from ``os.wait4``. ``ratio`` = long / short;
    ``growth_mb`` = long - short (the interpreter and torch, a few hundred MB, are in both).
    """
    check_positive(memory_seconds=long_seconds, memory_base_seconds=short_seconds, batch_size=batch_size)
    from separate.benchmarks.measure import build_target, write_noise
    from separate.checkpoints import read_header, save

    result: dict[str, Any] = {"model": target.label, "device": device, "batch_size": batch_size}
    with tempfile.TemporaryDirectory(prefix="separate-bench-") as folder_name:
        folder = Path(folder_name)
        if target.kind == "checkpoint":
            checkpoint = Path(target.name)
            header = read_header(checkpoint)
            rate, channels = int(header["sample_rate"]), int(header["audio_channels"])
        else:
            model = build_target(target.spec())
            rate, channels = model.sample_rate, model.audio_channels
            checkpoint = save(model, folder / "model.safetensors")
        for key, seconds in (("short", short_seconds), ("long", long_seconds)):
            audio = folder / f"{key}.wav"
            frames = write_noise(audio, seconds, rate, channels)
            command = [
                sys.executable,
                "-m",
                "separate",
                "audio",
                str(audio),
                "--model",
                str(checkpoint),
                "--out",
                str(folder / f"out-{key}"),
                "--device",
                device,
                "--batch-size",
                str(batch_size),
                "--json",
            ]
            if threads:
                command += ["--threads", str(threads)]
            run = run_measured(command, env=child_env(threads))
            if run.returncode != 0:
                raise SeparateError(f"separate audio failed on the {seconds:g} s input: {run.failure()}")
            result[f"{key}_seconds"] = frames / rate
            result[f"{key}_peak_rss_mb"] = run.peak_rss_bytes / MIB
            result[f"{key}_wall_seconds"] = run.seconds
            audio.unlink()
    result["growth_mb"] = result["long_peak_rss_mb"] - result["short_peak_rss_mb"]
    result["ratio"] = result["long_peak_rss_mb"] / result["short_peak_rss_mb"]
    return result


def benchmark_bsseval(
    seconds: float = 30.0, sources: int = 2, channels: int = 2, threads: int | None = None
) -> dict[str, Any]:
    """Our BSSEval v4 and museval's on one ``seconds`` excerpt at 44.1 kHz, 1 s frames (one child).

    See :func:`separate.benchmarks.measure.measure_bsseval`; ``ratio_cpu`` is museval's CPU seconds
    over ours. Needs museval (``pip install 'separate[eval]'``).
    """
    check_positive(bsseval_seconds=seconds, bsseval_sources=sources, bsseval_channels=channels)
    kwargs = dict(seconds=seconds, sources=sources, channels=channels)
    label = f"{seconds:g} s, {sources} sources x {channels} ch"
    return {"model": label, **run_task("bsseval", kwargs, threads)}


def benchmark_losses(
    device: str = "cpu",
    seconds: float = 1.0,
    batch: int = 8,
    sample_rate: int = 8000,
    repeats: int = 5,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """Forward+backward speed of the PIT losses alone (``benchmark_pit_losses``).

    Rows: ``method, n_src, batch, samples, seconds_per_iter, iters_per_s``.
    """
    check_positive(seconds=seconds, batch=batch, sample_rate=sample_rate, repeats=repeats)
    import torch

    from separate.losses.benchmark import benchmark_pit_losses

    if threads:
        torch.set_num_threads(threads)
    return benchmark_pit_losses(
        batch=batch, seconds=seconds, sample_rate=sample_rate, repeats=repeats, device=device
    )
