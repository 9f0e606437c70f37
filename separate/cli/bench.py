"""``separate bench``: the efficiency table (parameters, MACs, real-time factors, memory) and engine costs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from separate.cli.common import (
    console,
    device_option,
    emit_json,
    json_option,
    set_threads,
    tables,
    threads_option,
)


def bench(
    ctx: typer.Context,
    model: list[str] = typer.Option(
        None, "--model", "-m", metavar="NAME", help="Registry name, checkpoint path or hf:// URL; repeatable."
    ),
    presets: str = typer.Option(None, "--presets", help="Comma-separated presets (random weights)."),
    all_presets: bool = typer.Option(False, "--all", help="Every preset in separate.models.PRESETS."),
    shipped: bool = typer.Option(False, "--shipped", help="Every pretrained model of the registry."),
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
    as_json: bool = json_option,
) -> None:
    """Measure models (parameters, MACs/s, RTF, memory) and the separation engine.

    --engine, --batching and --memory use the models named, else a small Conv-TasNet (tiny for --memory).
    """
    from separate import bench as core

    options = {name: value for name, value in ctx.params.items() if name != "as_json"}
    set_threads(threads)
    report = core.run(core.Request(**options), progress=_progress)
    if as_json:
        emit_json(report)
    else:
        _print_report(report)
    core.check_failures(report)


def _progress(line: str) -> None:
    """A progress line on stderr (also with --json: long runs show where they are)."""
    console.print(line, markup=False, soft_wrap=True)


def _print_report(report: dict[str, Any]) -> None:
    _print_machine(report["machine"])
    if "models" in report:
        _print_models(report)
    for key, (title, columns, cells) in ENGINE_TABLES.items():
        if key in report:
            _table(title, columns, report[key], cells)
    if "losses" in report:
        _print_losses(report["losses"], report["machine"]["device"])


def _print_machine(machine: dict[str, Any]) -> None:
    load = machine.get("load_average")
    _wide_console().print(
        f"Machine: {machine['cpu']} ({machine['cpu_count']} cores), {machine.get('gpu', machine['device'])}, "
        f"{machine['threads']} thread(s), torch {machine['torch']}"
        + (f", load average {' '.join(str(v) for v in load)} at start" if load else ""),
        markup=False,
    )


def _print_models(report: dict[str, Any]) -> None:
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
        _wide_console().print("Peak MB (CPU): peak resident memory of the measuring process, torch included.")


#: Section -> (title, columns, cells of one row after the model name).
ENGINE_TABLES: dict[str, tuple[str, list[str], Callable[[dict[str, Any]], list[str]]]] = {
    "engine": (
        "Engine overhead: separate_file over bare forward passes, same chunks (mean of runs F, E, E, F)",
        ["model", "input s", "chunk/hop", "chunks", "batch", "forward s", "engine s", "ratio", "x RT"],
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
    ),
    "batching": (
        "Batching: engine seconds with one chunk per forward pass and with N (mean of runs 1, N, N, 1)",
        ["model", "input s", "chunks", "N", "batch 1 s", "batch N s", "speed-up"],
        lambda row: [
            f"{row['input_seconds']:g}",
            str(row["n_chunks"]),
            str(row["batch_size"]),
            f"{row['batch1_seconds']:.2f}",
            f"{row['batched_seconds']:.2f}",
            f"{row['speedup']:.2f}",
        ],
    ),
    "memory": (
        "Memory: peak resident memory of 'separate audio', long input over short input",
        ["model", "short s", "long s", "peak MB short", "peak MB long", "growth MB", "ratio"],
        lambda row: [
            f"{row['short_seconds']:g}",
            f"{row['long_seconds']:g}",
            f"{row['short_peak_rss_mb']:.0f}",
            f"{row['long_peak_rss_mb']:.0f}",
            f"{row['growth_mb']:.1f}",
            f"{row['ratio']:.3f}",
        ],
    ),
}


def _print_losses(rows: list[dict[str, Any]], device: str) -> None:
    from separate.bench.losses import format_table

    out = _wide_console()
    if rows:
        out.print(
            f"PIT losses alone, forward+backward iterations/s: batch {rows[0]['batch']}, "
            f"{rows[0]['samples']} samples, {device}"
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
    _wide_console().print(table)
    for row in rows:
        if "error" in row:
            message = " ".join(str(row["error"]).split())
            console.print(f"{row['model']}: error: {message}", markup=False, soft_wrap=True)


def _wide_console() -> Console:
    """The stdout console for tables; when it is not a terminal (a file, a pipe), one wide enough for
    whole rows."""
    return tables if tables.is_terminal else Console(highlight=False, width=240)


def _count(parameters: int) -> str:
    return f"{parameters / 1e6:.2f} M" if parameters >= 1e6 else f"{parameters / 1e3:.1f} k"


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
