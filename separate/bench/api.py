"""Benchmarks: model complexity and speed (the papers' efficiency tables) and the engine's own costs.

Every measurement runs in a fresh child process (:mod:`separate.bench.process`), so one model's
memory cannot inflate the next one's and the peak resident memory belongs to that measurement alone.

* :func:`benchmark_models`: per model, parameters, MACs per second of audio, forward and
  forward+backward time per second of audio (real-time factor), peak memory.
* :func:`benchmark_engine`: ``Separator.separate_file`` on a long generated file versus the model's
  forward passes alone on the same chunks; the ratio is the engine's overhead (goal <= 1.10).
* :func:`benchmark_batching`: engine time with one chunk per forward pass over time with N.
* :func:`benchmark_memory`: peak resident memory of ``separate audio`` on a long file over a short one
  (goal <= 1.2: memory must not grow with the input's length).
* :func:`benchmark_losses`: the permutation-invariant losses (:mod:`separate.bench.losses`).
* :func:`benchmark_bsseval`: our BSSEval v4 against museval's (:mod:`separate.bench.bsseval`).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from separate.bench.process import MIB, child_env, run_measured, run_task
from separate.bench.targets import ENGINE_TARGET, MEMORY_TARGET, Target, build_target
from separate.errors import SeparateError


def check_device(device: str) -> str:
    """The device string after checking it exists (``auto`` becomes ``cpu`` or ``cuda``)."""
    from separate.runtime import select_device

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
    """One row per target (see :func:`separate.bench.measure.measure_model`), each from its own process.

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
    """Run one of the Separator measurements of :mod:`separate.bench.measure` in a child process."""
    kwargs = dict(
        target=target.spec(),
        device=device,
        input_seconds=input_seconds,
        batch_size=batch_size,
        segment=segment,
        overlap=overlap,
    )
    return {"model": target.label, **run_task(task, kwargs, threads)}


def benchmark_paths(
    target: Target = ENGINE_TARGET,
    device: str = "cpu",
    input_seconds: float = 30.0,
    batch_size: int = 4,
    segment: float | None = None,
    paths: Sequence[str] | None = None,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """Per inference path, speed over eager fp32 and quality change (one child process, one row per path;
    see :func:`separate.bench.paths.measure_paths`)."""
    from separate.fastpath import FastPath

    check_positive(paths_seconds=input_seconds, batch_size=batch_size, segment=segment)
    labels = list(paths or [])
    for label in labels:
        FastPath.parse(label)
    kwargs = dict(
        target=target.spec(),
        device=device,
        input_seconds=input_seconds,
        batch_size=batch_size,
        segment=segment,
        paths=labels or None,
    )
    result = run_task("paths", kwargs, threads)
    if "error" in result:
        return [{"model": target.label, "error": result["error"]}]
    common = {key: value for key, value in result.items() if key != "paths"}
    return [{"model": target.label, **common, **row} for row in result["paths"]]


def benchmark_against(
    target: Target = ENGINE_TARGET,
    other: str = "demucs",
    device: str = "cpu",
    input_seconds: float = 60.0,
    batch_size: int = 4,
    segment: float | None = None,
    path: str | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Our engine against another project's on the same model and chunks (``other``: ``demucs``).

    ``path`` defaults to the registry entry's ``fast_path`` for a registry name, else eager fp32.
    """
    import importlib.util

    from separate.fastpath import FastPath

    if other != "demucs":
        raise SeparateError(f"--against knows only 'demucs', got '{other}'")
    check_positive(against_seconds=input_seconds, batch_size=batch_size, segment=segment)
    if path is None:
        path = _registry_path(target)
    FastPath.parse(path)
    if importlib.util.find_spec("demucs") is None:
        raise SeparateError(
            "demucs is not installed: pip install 'separate[demucs]' (demucs>=4.1, which needs no torchaudio)"
        )
    kwargs = dict(
        target=target.spec(),
        device=device,
        input_seconds=input_seconds,
        batch_size=batch_size,
        segment=segment,
        path=path,
    )
    return {"model": target.label, **run_task("against", kwargs, threads)}


def _registry_path(target: Target) -> str:
    """The label of a registry model's ``fast_path`` (``fp32`` for presets and files)."""
    from separate.checkpoints import default_fast_path

    path = default_fast_path(target.label) if target.kind == "checkpoint" else None
    return path.label if path is not None else "fp32"


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
    from separate.bench.measure import write_noise
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

    from separate.bench.losses import benchmark_pit_losses

    if threads:
        torch.set_num_threads(threads)
    return benchmark_pit_losses(
        batch=batch, seconds=seconds, sample_rate=sample_rate, repeats=repeats, device=device
    )


def check_museval() -> None:
    """Raise a :class:`SeparateError` when museval (the reference BSSEval) is not installed."""
    if importlib.util.find_spec("museval") is None:
        raise SeparateError(
            "--bsseval compares with museval, which is not installed: pip install 'separate[eval]'"
        )


#: ``--bsseval`` excerpts: (seconds, sources), stereo 44.1 kHz: a short excerpt and a 4-stem song.
BSSEVAL_CASES = ((30.0, 2), (180.0, 4))


def benchmark_bsseval(
    seconds: float | None = None,
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """CPU time of our BSSEval v4 and museval's on each of :data:`BSSEVAL_CASES`, each in its own process.

    ``seconds`` replaces every case's length. Rows: see :func:`separate.bench.bsseval.measure_bsseval`,
    plus ``excerpt`` (a label).
    """
    check_positive(bsseval_seconds=seconds)
    check_museval()
    rows = []
    for default_seconds, sources in BSSEVAL_CASES:
        length = seconds or default_seconds
        label = f"{length:g} s, {sources} sources"
        if progress is not None:
            progress(f"bsseval: {label}...")
        rows.append(
            {"excerpt": label, **run_task("bsseval", {"seconds": length, "sources": sources}, threads)}
        )
    return rows
