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
    bsseval: bool = typer.Option(
        False, "--bsseval", help="Our BSSEval v4 over museval: CPU time, difference."
    ),
    bsseval_seconds: float = typer.Option(
        None,
        "--bsseval-seconds",
        help="--bsseval excerpts' length (default: 30 s x 2 sources, 180 s x 4).",
    ),
    paths: bool = typer.Option(False, "--paths", help="Speed and quality of each inference path vs fp32."),
    path_list: str = typer.Option(
        None,
        "--path-list",
        help="Paths for --paths (default fp32,bf16,int8,compile,onnxruntime,onnxruntime-int8).",
    ),
    paths_seconds: float = typer.Option(30.0, "--paths-seconds", help="Input length for --paths."),
    against: str = typer.Option(None, "--against", help="demucs: our engine vs Demucs' apply_model."),
    against_seconds: float = typer.Option(60.0, "--against-seconds", help="Input length for --against."),
    path: str = typer.Option(None, "--path", help="Our path for --against (default: the model's)."),
    as_json: bool = json_option,
) -> None:
    """Measure models (parameters, MACs/s, RTF, memory) and the separation engine.

    --engine, --batching, --memory, --paths and --against use the models named, else a small Conv-TasNet
    (tiny for --memory).
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
    if "bsseval" in report:
        title, columns, cells = BSSEVAL_TABLE
        _table(title, columns, report["bsseval"], cells)


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
    "paths": (
        "Inference paths: engine seconds on eager fp32 over the path's (mean of runs F, P, P, F); quality "
        "on fixed mixtures (SI-SNRi: two speakers; SDR: vocals and accompaniment) and its change, "
        "SNR of the stems against fp32's",
        [
            "model",
            "path",
            "fp32 s",
            "path s",
            "speed-up",
            "quality dB",
            "delta dB",
            "SNR vs fp32",
            "first call s",
        ],
        lambda row: _path_cells(row),
    ),
    "against": (
        "Against Demucs: apply_model (eager fp32) and our engine, same model and chunks (mean of 2 runs)",
        [
            "model",
            "input s",
            "segment",
            "path",
            "demucs s",
            "ours fp32 s",
            "ours path s",
            "ratio fp32",
            "ratio",
        ],
        lambda row: [
            f"{row['input_seconds']:g}",
            f"{row['segment']:g}",
            row["path"],
            f"{row['demucs_seconds']:.2f}",
            f"{row['fp32_seconds']:.2f}",
            f"{row['path_seconds']:.2f}",
            f"{row['engine_ratio']:.2f}",
            f"{row['ratio']:.2f}",
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


BSSEVAL_TABLE = (
    "BSSEval v4 (1 s frames), ours over museval on stereo 44.1 kHz excerpts: CPU s, best of runs O, M, M, O",
    ["excerpt", "frames", "ours s", "museval s", "ratio", "max diff dB"],
    lambda row: [
        str(row["frames"]),
        f"{row['ours_cpu_seconds']:.3f}",
        f"{row['museval_cpu_seconds']:.2f}",
        f"{row['ratio_cpu']:.1f}",
        f"{row['max_abs_difference_db']:.1e}",
    ],
)


def _path_cells(row: dict[str, Any]) -> list[str]:
    """One row of the paths table; an unavailable path's reason is listed below the table."""
    if "reason" in row:
        return [row["path"], "-", "-", "n/a", "", "", "", ""]
    quality = row.get("quality")
    return [
        row["path"],
        f"{row['fp32_seconds']:.2f}",
        f"{row['path_seconds']:.2f}",
        f"{row['speedup']:.2f}",
        "-" if quality is None else f"{quality:.2f} {row['quality_metric']}",
        "-" if quality is None else f"{row['quality_delta']:+.3f}",
        _decibels(row["snr_vs_fp32"]),
        f"{row['warmup_seconds']:.1f}",
    ]


def _decibels(value: float | None) -> str:
    """dB with one decimal; identical signals (inf, or null in JSON) read ``exact``."""
    return "exact" if value is None or value == float("inf") else f"{value:.1f}"


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
        table.add_row(Text(_label(row)), *values)
    out = _wide_console()
    out.print(table)
    for row in rows:
        if "reason" in row:
            out.print(
                f"{row['model']} {row['path']}: unavailable: {row['reason']}", markup=False, soft_wrap=True
            )
        if "error" in row:
            message = " ".join(str(row["error"]).split())
            console.print(f"{_label(row)}: error: {message}", markup=False, soft_wrap=True)


def _label(row: dict[str, Any]) -> str:
    return str(row.get("model", row.get("excerpt")))


def _wide_console() -> Console:
    """The stdout console for tables; when it is not a terminal (a file, a pipe), one wide enough for
    whole rows."""
    return tables if tables.is_terminal else Console(highlight=False, width=240)


def _count(parameters: int) -> str:
    return f"{parameters / 1e6:.2f} M" if parameters >= 1e6 else f"{parameters / 1e3:.1f} k"


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
