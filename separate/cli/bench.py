"""``separate bench``: the efficiency table (parameters, MACs, real-time factors, memory) and engine costs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from separate.cli.common import console, device_option, emit_json, json_option, set_threads, threads_option


def bench(
    model: list[str] = typer.Option(
        None, "--model", "-m", metavar="NAME", help="Registry name, checkpoint path or hf:// URL; repeatable."
    ),
    presets: str = typer.Option(None, "--presets", help="Comma-separated presets (random weights)."),
    all_presets: bool = typer.Option(False, "--all", help="Every preset in separate.models.PRESETS."),
    device: str = device_option,
    seconds: float = typer.Option(1.0, "--seconds", help="Seconds of audio per forward pass."),
    batch: int = typer.Option(None, "--batch", help="Clips per forward pass (default 1; 8 for --losses)."),
    sample_rate: int = typer.Option(
        None, "--sample-rate", help="Samples per second of audio (default: the model's; 8000 for --losses)."
    ),
    repeats: int = typer.Option(5, "--repeats", help="Timed runs; the median is reported."),
    warmup: int = typer.Option(1, "--warmup", help="Untimed runs before the timed ones."),
    threads: int = threads_option,
    engine: bool = typer.Option(False, "--engine", help="Engine time over bare forward passes."),
    engine_seconds: float = typer.Option(600.0, "--engine-seconds", help="Input length for --engine."),
    batching: bool = typer.Option(False, "--batching", help="Engine speed-up of N chunks per pass over one."),
    batching_seconds: float = typer.Option(120.0, "--batching-seconds", help="Input length for --batching."),
    batching_size: int = typer.Option(4, "--batching-size", help="N for --batching."),
    memory: bool = typer.Option(False, "--memory", help="Peak memory of 'separate audio', long/short."),
    memory_seconds: float = typer.Option(3600.0, "--memory-seconds", help="Long input for --memory."),
    memory_base_seconds: float = typer.Option(60.0, "--memory-base-seconds", help="Short input, --memory."),
    segment: float = typer.Option(None, "--segment", help="Chunk seconds for the engine benchmarks."),
    batch_size: int = typer.Option(4, "--batch-size", help="Chunks per pass, --engine/--memory."),
    losses: bool = typer.Option(False, "--losses", help="Speed of the PIT losses alone."),
    bsseval: bool = typer.Option(False, "--bsseval", help="Our BSSEval v4 over museval's (CPU time ratio)."),
    bsseval_seconds: float = typer.Option(30.0, "--bsseval-seconds", help="Excerpt length for --bsseval."),
    bsseval_sources: int = typer.Option(2, "--bsseval-sources", help="Sources for --bsseval."),
    bsseval_channels: int = typer.Option(2, "--bsseval-channels", help="Channels for --bsseval."),
    as_json: bool = json_option,
) -> None:
    """Measure models (parameters, MACs/s, RTF, memory) and the separation engine.

    --engine, --batching and --memory use the models named, else a small Conv-TasNet (tiny for --memory).
    """
    from separate import bench as core
    from separate.errors import SeparateError

    preset_names = [name.strip() for name in (presets or "").split(",") if name.strip()]
    if presets is not None and not preset_names:
        raise SeparateError("--presets needs at least one preset name")
    core.check_positive(
        seconds=seconds,
        batch=batch,
        sample_rate=sample_rate,
        repeats=repeats,
        engine_seconds=engine_seconds,
        batching_seconds=batching_seconds,
        batching_size=batching_size,
        memory_seconds=memory_seconds,
        memory_base_seconds=memory_base_seconds,
        segment=segment,
        batch_size=batch_size,
        bsseval_seconds=bsseval_seconds,
        bsseval_sources=bsseval_sources,
        bsseval_channels=bsseval_channels,
    )
    if warmup < 0:
        raise SeparateError(f"warmup must be zero or more, got {warmup}")
    targets = core.select_targets(model or [], preset_names, all_presets)
    if not targets and not (engine or batching or memory or losses or bsseval):
        raise SeparateError(
            "nothing to measure: name models with --model, --presets or --all, or add --engine, --batching, "
            "--memory, --losses or --bsseval"
        )
    resolved_device = core.check_device(device)
    set_threads(threads)
    report: dict[str, Any] = {
        "machine": core.machine_info(resolved_device, threads),
        "settings": {
            "seconds": seconds,
            "batch": batch or 1,
            "sample_rate": sample_rate,
            "repeats": repeats,
            "warmup": warmup,
            "threads": threads,
            "segment": segment,
            "batch_size": batch_size,
        },
    }
    if targets:
        report["models"] = core.benchmark_models(
            targets, resolved_device, seconds, batch or 1, sample_rate, repeats, warmup, threads, _progress
        )
    if engine:
        report["engine"] = [
            _guarded(
                "engine",
                target.label,
                core.benchmark_engine,
                target,
                resolved_device,
                engine_seconds,
                batch_size,
                segment,
                threads=threads,
            )
            for target in targets or [core.ENGINE_TARGET]
        ]
    if batching:
        report["batching"] = [
            _guarded(
                "batching",
                target.label,
                core.benchmark_batching,
                target,
                resolved_device,
                batching_seconds,
                batching_size,
                segment,
                threads=threads,
            )
            for target in targets or [core.ENGINE_TARGET]
        ]
    if memory:
        report["memory"] = [
            _guarded(
                "memory",
                target.label,
                core.benchmark_memory,
                target,
                resolved_device,
                memory_seconds,
                memory_base_seconds,
                batch_size,
                threads,
            )
            for target in targets or [core.MEMORY_TARGET]
        ]
    if losses:
        _progress("losses...")
        report["losses"] = core.benchmark_losses(
            resolved_device, seconds, batch or 8, sample_rate or 8000, repeats, threads
        )
    if bsseval:
        report["bsseval"] = [
            _guarded(
                "bsseval",
                f"{bsseval_seconds:g} s, {bsseval_sources} sources x {bsseval_channels} ch",
                core.benchmark_bsseval,
                bsseval_seconds,
                bsseval_sources,
                bsseval_channels,
                threads=threads,
            )
        ]
    if as_json:
        emit_json(report)
    else:
        _print_report(report)
    sections = ("models", "engine", "batching", "memory", "bsseval")
    failed = [row for key in sections for row in report.get(key, []) if "error" in row]
    if failed:
        first = " ".join(str(failed[0]["error"]).split())
        raise SeparateError(f"{len(failed)} measurement(s) failed; first: {failed[0]['model']}: {first}")


def _progress(line: str) -> None:
    """A progress line on stderr (also with --json: long runs show where they are)."""
    console.print(line, markup=False, soft_wrap=True)


def _guarded(what: str, label: str, function: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run one engine benchmark; a user error becomes an error row so that the others still run."""
    from separate.errors import SeparateError

    _progress(f"{what}: {label}...")
    try:
        return function(*args, **kwargs)
    except SeparateError as problem:
        return {"model": label, "error": str(problem)}


def _print_report(report: dict[str, Any]) -> None:
    out = _wide_console()
    machine = report["machine"]
    load = machine.get("load_average")
    out.print(
        f"Machine: {machine['cpu']} ({machine['cpu_count']} cores), {machine.get('gpu', machine['device'])}, "
        f"{machine['threads']} thread(s), torch {machine['torch']}"
        + (f", load average {' '.join(str(v) for v in load)} at start" if load else ""),
        markup=False,
    )
    if "models" in report:
        settings = report["settings"]
        _table(
            f"Models: {settings['seconds']:g} s of audio x batch {settings['batch']}, median of "
            f"{settings['repeats']} runs",
            ["model", "params", "GMAC/s", "RTF fwd", "RTF fwd+bwd", "peak MB fwd", "peak MB train"],
            report["models"],
            lambda row: [
                _count(row["parameters"]),
                "-" if row["macs_per_second"] is None else f"{row['macs_per_second'] / 1e9:.3g}",
                f"{row['forward_rtf']:.3g}",
                f"{row['train_rtf']:.3g}",
                f"{row['forward_peak_mb']:.0f}",
                f"{row['train_peak_mb']:.0f}",
            ],
        )
        if any(str(row.get("memory_kind", "")).startswith("cpu") for row in report["models"]):
            out.print("Peak MB (CPU): peak resident memory of the measuring process, torch included.")
    if "engine" in report:
        _table(
            "Engine overhead: separate_file over bare forward passes, same chunks (mean of runs F, E, E, F)",
            ["model", "input s", "chunk/hop", "chunks", "batch", "forward s", "engine s", "ratio", "x RT"],
            report["engine"],
            lambda row: [
                f"{row['input_seconds']:g}",
                f"{row['chunk']}/{row['hop']}",
                str(row["n_chunks"]),
                str(row["batch_size"]),
                f"{row['forward_seconds']:.2f}",
                f"{row['engine_seconds']:.2f}",
                f"{row['ratio']:.3f}",
                f"{1 / row['engine_rtf']:.1f}",
            ],
        )
    if "batching" in report:
        _table(
            "Batching: engine seconds with one chunk per forward pass and with N (mean of runs 1, N, N, 1)",
            ["model", "input s", "chunks", "N", "batch 1 s", "batch N s", "speed-up"],
            report["batching"],
            lambda row: [
                f"{row['input_seconds']:g}",
                str(row["n_chunks"]),
                str(row["batch_size"]),
                f"{row['batch1_seconds']:.2f}",
                f"{row['batched_seconds']:.2f}",
                f"{row['speedup']:.2f}",
            ],
        )
    if "memory" in report:
        _table(
            "Memory: peak resident memory of 'separate audio', long input over short input",
            ["model", "short s", "long s", "peak MB short", "peak MB long", "growth MB", "ratio"],
            report["memory"],
            lambda row: [
                f"{row['short_seconds']:g}",
                f"{row['long_seconds']:g}",
                f"{row['short_peak_rss_mb']:.0f}",
                f"{row['long_peak_rss_mb']:.0f}",
                f"{row['growth_mb']:.1f}",
                f"{row['ratio']:.3f}",
            ],
        )
    if "bsseval" in report:
        _table(
            "BSSEval v4, 1 s frames: museval's time over ours (fastest of runs O, M, M, O)",
            ["excerpt", "frames", "ours cpu s", "museval cpu s", "ratio cpu", "ratio wall", "max diff dB"],
            report["bsseval"],
            lambda row: [
                str(row["frames"]),
                f"{row['ours_cpu_seconds']:.3f}",
                f"{row['museval_cpu_seconds']:.2f}",
                f"{row['ratio_cpu']:.1f}",
                f"{row['ratio_wall']:.1f}",
                f"{row['max_abs_difference_db']:.1e}",
            ],
        )
    if "losses" in report:
        from separate.losses.benchmark import format_table

        rows = report["losses"]
        if rows:
            out.print(
                f"PIT losses alone, forward+backward iterations/s: batch {rows[0]['batch']}, "
                f"{rows[0]['samples']} samples, {machine['device']}"
            )
        out.print(format_table(rows), markup=False)


def _table(
    title: str, columns: list[str], rows: list[dict[str, Any]], cells: Callable[[dict[str, Any]], list[str]]
) -> None:
    """A markdown-style table (pasteable): the model, then ``cells(row)``; failed rows are listed below it."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.MARKDOWN, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right", no_wrap=True)
    for row in rows:
        values = ["failed", *[""] * (len(columns) - 2)] if "error" in row else cells(row)
        table.add_row(Text(row["model"]), *values)
    out = _wide_console()
    out.print(table)
    for row in rows:
        if "error" in row:
            message = " ".join(str(row["error"]).split())
            out.print(f"{row['model']}: error: {message}", markup=False, soft_wrap=True)


def _wide_console() -> Console:
    """The shared stderr console; when it is not a terminal (a log file), one wide enough for whole rows."""
    return console if console.is_terminal else Console(stderr=True, highlight=False, width=240)


def _count(parameters: int) -> str:
    return f"{parameters / 1e6:.2f} M" if parameters >= 1e6 else f"{parameters / 1e3:.1f} k"


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
