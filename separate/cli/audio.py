"""``separate audio``: separate files (or stdin) into stems."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer

from separate.cli.common import (
    batch_size_option,
    console,
    device_option,
    emit_json,
    json_option,
    model_option,
    overlap_option,
    progress_bar,
    segment_option,
    set_threads,
    threads_option,
)
from separate.inference import DEFAULT_TEMPLATE


def audio(
    inputs: list[str] = typer.Argument(..., metavar="IN...", help="Audio files, or '-' for stdin."),
    model: str = model_option,
    out: str = typer.Option("separated", "--out", "-o", help="Output folder, or '-' for stdout (one stem)."),
    filename: str = typer.Option(
        DEFAULT_TEMPLATE, "--filename", help="Template: {track} {stem} {ext} {model}."
    ),
    stems: str = typer.Option(None, "--stems", help="Comma-separated stems to write (default: all)."),
    two_stems: str = typer.Option(None, "--two-stems", help="Write STEM and no_STEM (mixture minus STEM)."),
    fmt: str = typer.Option("wav", "--format", help="wav | flac"),
    bits: int = typer.Option(24, "--bits", help="16 | 24 | 32 (32 = float, wav only)"),
    segment: float = segment_option,
    overlap: float = overlap_option,
    batch_size: int = batch_size_option,
    device: str = device_option,
    half: bool = typer.Option(False, "--half", help="float16 inference (CUDA only)."),
    precision: str = typer.Option(None, "--precision", help="fp32 | bf16 | int8 (default: the model's)."),
    backend: str = typer.Option(None, "--backend", help="torch | onnxruntime (default: the model's)."),
    compile: bool = typer.Option(
        None, "--compile/--no-compile", help="torch.compile (default: the model's)."
    ),
    threads: int = threads_option,
    as_json: bool = json_option,
) -> None:
    """Separate audio files into stems."""
    from separate.checkpoints import default_model_name
    from separate.inference import separate_files

    if model is None:
        model = default_model_name()
    set_threads(threads)
    result = separate_files(
        inputs,
        model,
        out=out,
        template=filename,
        stems=stems,
        two_stems=two_stems,
        fmt=fmt,
        bits=bits,
        device=device,
        segment=segment,
        overlap=overlap,
        batch_size=batch_size,
        half=half,
        precision=precision,
        backend=backend,
        compile=compile,
        progress=None if as_json or not console.is_terminal else _progress,
    )
    if as_json:
        emit_json(result)
    elif out != "-":
        for done in result["files"]:
            console.print(f"[green]✓[/green] {done['track']}: " + ", ".join(done["outputs"].values()))


@contextmanager
def _progress(name: str) -> Iterator[Callable[[float], None]]:
    """A transient progress bar for one file; yields its update callback."""
    with progress_bar() as bar:
        task = bar.add_task(name, total=1.0)
        yield lambda fraction: bar.update(task, completed=fraction)


def register(app: typer.Typer) -> None:
    app.command("audio", no_args_is_help=True)(audio)
