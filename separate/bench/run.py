"""One ``separate bench`` run: the options checked, every requested section measured, one report.

:func:`run` takes a :class:`Request` (the command's options) and returns the report the command
prints (``machine``, ``settings`` and one list of rows per section: ``models``, ``engine``,
``batching``, ``memory``, ``losses``). A measurement that fails becomes a row with an ``error``, so
the others still run; :func:`check_failures` then turns them into one error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from separate.bench import api
from separate.bench.targets import ENGINE_TARGET, MEMORY_TARGET, select_targets
from separate.errors import SeparateError
from separate.fastpath import FastPath

SECTIONS = ("models", "engine", "batching", "memory", "bsseval", "paths", "against")


@dataclass
class Request:
    """What to measure and how (the options of ``separate bench``, same names and defaults)."""

    model: list[str] = field(default_factory=list)
    presets: str | None = None
    all_presets: bool = False
    shipped: bool = False
    device: str = "auto"
    seconds: float = 1.0
    batch: int | None = None
    sample_rate: int | None = None
    repeats: int = 5
    warmup: int = 1
    threads: int | None = None
    engine: bool = False
    engine_seconds: float = 600.0
    batching: bool = False
    batching_seconds: float = 120.0
    batching_size: int = 4
    memory: bool = False
    memory_seconds: float = 3600.0
    memory_base_seconds: float = 60.0
    segment: float | None = None
    batch_size: int = 4
    losses: bool = False
    bsseval: bool = False
    bsseval_seconds: float | None = None
    paths: bool = False
    path_list: str | None = None
    paths_seconds: float = 30.0
    against: str | None = None
    against_seconds: float = 60.0
    path: str | None = None


def run(request: Request, progress: Callable[[str], None]) -> dict[str, Any]:
    """Measure what ``request`` asks for; ``progress`` gets one line per measurement."""
    r = request
    preset_names = [name.strip() for name in (r.presets or "").split(",") if name.strip()]
    if r.presets is not None and not preset_names:
        raise SeparateError("--presets needs at least one preset name")
    api.check_positive(
        seconds=r.seconds,
        batch=r.batch,
        sample_rate=r.sample_rate,
        repeats=r.repeats,
        engine_seconds=r.engine_seconds,
        batching_seconds=r.batching_seconds,
        batching_size=r.batching_size,
        memory_seconds=r.memory_seconds,
        memory_base_seconds=r.memory_base_seconds,
        segment=r.segment,
        batch_size=r.batch_size,
        bsseval_seconds=r.bsseval_seconds,
        paths_seconds=r.paths_seconds,
        against_seconds=r.against_seconds,
    )
    path_labels = [name.strip() for name in (r.path_list or "").split(",") if name.strip()]
    for label in [*path_labels, *([r.path] if r.path else [])]:
        FastPath.parse(label)
    if r.against is not None and r.against != "demucs":
        raise SeparateError(f"--against knows only 'demucs', got '{r.against}'")
    if r.warmup < 0:
        raise SeparateError(f"warmup must be zero or more, got {r.warmup}")
    models = list(r.model or [])
    if r.shipped:
        from separate.checkpoints import registry

        models += [name for name in registry() if name not in models]
    targets = select_targets(models, preset_names, r.all_presets)
    if not targets and not (
        r.engine or r.batching or r.memory or r.losses or r.bsseval or r.paths or r.against
    ):
        raise SeparateError(
            "nothing to measure: name models with --model, --presets or --all, or add --engine, --batching, "
            "--memory, --paths, --against, --losses or --bsseval"
        )
    device = api.check_device(r.device)
    if r.bsseval:
        api.check_museval()
    report: dict[str, Any] = {"machine": api.machine_info(device, r.threads), "settings": _settings(r)}
    if targets and not (r.paths or r.against):
        report["models"] = api.benchmark_models(
            targets, device, r.seconds, r.batch or 1, r.sample_rate, r.repeats, r.warmup, r.threads, progress
        )
    engine_args = (device, r.engine_seconds, r.batch_size, r.segment)
    batching_args = (device, r.batching_seconds, r.batching_size, r.segment)
    memory_args = (device, r.memory_seconds, r.memory_base_seconds, r.batch_size)
    for key, wanted, function, args, default in (
        ("engine", r.engine, api.benchmark_engine, engine_args, ENGINE_TARGET),
        ("batching", r.batching, api.benchmark_batching, batching_args, ENGINE_TARGET),
        ("memory", r.memory, api.benchmark_memory, memory_args, MEMORY_TARGET),
    ):
        if wanted:
            report[key] = [
                _guarded(key, target.label, progress, function, target, *args, threads=r.threads)
                for target in targets or [default]
            ]
    if r.paths:
        report["paths"] = []
        for target in targets or [ENGINE_TARGET]:
            progress(f"paths: {target.label}...")
            report["paths"] += api.benchmark_paths(
                target, device, r.paths_seconds, r.batch_size, r.segment, path_labels, threads=r.threads
            )
    if r.against:
        against_args = (r.against, device, r.against_seconds, r.batch_size, r.segment, r.path)
        report["against"] = [
            _guarded(
                "against",
                target.label,
                progress,
                api.benchmark_against,
                target,
                *against_args,
                threads=r.threads,
            )
            for target in targets or [ENGINE_TARGET]
        ]
    if r.losses:
        progress("losses...")
        report["losses"] = api.benchmark_losses(
            device, r.seconds, r.batch or 8, r.sample_rate or 8000, r.repeats, r.threads
        )
    if r.bsseval:
        report["bsseval"] = api.benchmark_bsseval(r.bsseval_seconds, r.threads, progress)
    return report


def check_failures(report: dict[str, Any]) -> None:
    """Raise one :class:`SeparateError` counting the failed rows and naming the first."""
    failed = [row for key in SECTIONS for row in report.get(key, []) if "error" in row]
    if failed:
        first = " ".join(str(failed[0]["error"]).split())
        label = failed[0].get("model", failed[0].get("excerpt"))
        raise SeparateError(f"{len(failed)} measurement(s) failed; first: {label}: {first}")


def _settings(r: Request) -> dict[str, Any]:
    return {
        "seconds": r.seconds,
        "batch": r.batch or 1,
        "sample_rate": r.sample_rate,
        "repeats": r.repeats,
        "warmup": r.warmup,
        "threads": r.threads,
        "segment": r.segment,
        "batch_size": r.batch_size,
        "paths_seconds": r.paths_seconds,
        "against_seconds": r.against_seconds,
    }


def _guarded(
    what: str, label: str, progress: Callable[[str], None], function: Any, *args: Any, **kwargs: Any
) -> dict[str, Any]:
    """Run one engine benchmark; a user error becomes an error row so that the others still run."""
    progress(f"{what}: {label}...")
    try:
        return function(*args, **kwargs)
    except SeparateError as problem:
        return {"model": label, "error": str(problem)}
