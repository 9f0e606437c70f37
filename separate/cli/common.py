"""Options and output helpers shared by every subcommand (defined once, reused)."""

from __future__ import annotations

import json
import math
import os
import sys
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress

#: Line width when the output is a file or a pipe: whole table rows, never wrapped at 80 columns.
WIDE = 1000


def _console() -> Console:
    """Human-facing output (tables, progress) goes to stderr so stdout stays clean for audio and JSON."""
    out = Console(stderr=True, highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = WIDE
    return out


console = _console()


def _tables() -> Console:
    """What a command produces for the user to read or pipe (tables, model cards) goes to stdout."""
    out = Console(highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = WIDE
    return out


#: Tables and cards on stdout; progress, messages, warnings and errors stay on :data:`console`.
tables = _tables()


def error(message: str) -> None:
    """One ``separate: error:`` line on stderr."""
    _line("error", message)


def warning(message: str) -> None:
    """One ``separate: warning:`` line on stderr."""
    _line("warning", message)


def _line(kind: str, message: str) -> None:
    sys.stderr.write(f"separate: {kind}: {' '.join(str(message).split())}\n")
    sys.stderr.flush()


json_option = typer.Option(False, "--json", help="Print a machine-readable JSON result on stdout.")
device_option = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N")
model_option = typer.Option(
    None, "--model", "-m", help="Registry name, .safetensors path or hf://org/repo/file[@rev]."
)
segment_option = typer.Option(None, "--segment", help="Seconds per chunk (default: the model's own).")
overlap_option = typer.Option(0.25, "--overlap", help="Overlap between chunks, in [0, 1).")
batch_size_option = typer.Option(4, "--batch-size", help="Chunks per forward pass.")
refine_option = typer.Option(
    None,
    "--refine/--no-refine",
    help=(
        "Re-estimate stems from the mixture's spectrogram: multichannel Wiener filter on stereo,"
        " ratio masks on mono (default: the model's)."
    ),
)
shifts_option = typer.Option(
    1,
    "--shifts",
    min=1,
    help="Passes on copies delayed by 0.1 s steps, averaged: better stems, N times the time.",
)
threads_option = typer.Option(
    None, "--threads", min=1, help="CPU threads for torch (default: torch's choice)."
)


def emit_json(obj: Any) -> None:
    """Write ``obj`` as one JSON document on stdout (NaN and infinities as null: strict JSON)."""
    sys.stdout.write(json.dumps(_finite(obj), indent=2, default=_json_default, allow_nan=False) + "\n")
    sys.stdout.flush()


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(value) for value in obj]
    return obj


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return _finite(value.item())
    if hasattr(value, "__fspath__"):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def set_threads(threads: int | None) -> None:
    """Apply ``--threads`` to torch's intra-op pool."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def progress_bar(
    label: str = "{task.description}",
    counter: str = "percent",
    extra: str | None = None,
    disable: bool = False,
) -> Progress:
    """A transient rich progress bar on stderr: ``label``, the bar, the count (``percent``, or ``of``:
    done/total), an ``extra`` text column, the time left."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    count = TaskProgressColumn() if counter == "percent" else MofNCompleteColumn()
    columns = [TextColumn(label), BarColumn(), count, *([TextColumn(extra)] if extra else [])]
    return Progress(*columns, TimeRemainingColumn(), console=console, transient=True, disable=disable)
