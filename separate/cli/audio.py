"""``separate audio``: separate files (or stdin) into stems."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

from separate.cli.common import (
    batch_size_option,
    console,
    device_option,
    emit_json,
    error,
    json_option,
    model_option,
    overlap_option,
    progress_bar,
    refine_option,
    segment_option,
    set_threads,
    shifts_option,
    threads_option,
    warning,
)
from separate.inference import DEFAULT_TEMPLATE

#: Options of ``separate audio`` beyond the shared ones of :mod:`separate.cli.common`.
OUT = typer.Option("separated", "--out", "-o", help="Output folder, or '-' for stdout (one stem).")
FILENAME = typer.Option(
    DEFAULT_TEMPLATE,
    "--filename",
    help="Template: {track} {name} {parent} {stem} {stem_index} {ext} {model}.",
)
STEMS = typer.Option(None, "--stems", help="Comma-separated stems to write (default: all).")
TWO_STEMS = typer.Option(None, "--two-stems", help="Write STEM and no_STEM (mixture minus STEM).")
FORMAT = typer.Option("wav", "--format", help="wav | flac | mp3 | ogg")
BITS = typer.Option(24, "--bits", help="16 | 24 | 32 (32 = float, wav only; not for mp3/ogg)")
CLIP_MODE = typer.Option(
    "rescale", "--clip-mode", help="Integer/lossy output over full scale: rescale (per track) | clamp."
)
NO_CONSISTENCY = typer.Option(
    False, "--no-consistency", help="Keep the model's stems as they are (do not make them add up)."
)
FAIL_FAST = typer.Option(False, "--fail-fast", help="Stop at the first file that fails.")
HALF = typer.Option(False, "--half", help="float16 inference (CUDA only).")
PRECISION = typer.Option(None, "--precision", help="fp32 | bf16 | int8 (default: the model's).")
BACKEND = typer.Option(None, "--backend", help="torch | onnxruntime (default: the model's).")
COMPILE = typer.Option(None, "--compile/--no-compile", help="torch.compile (default: the model's).")


def audio(
    inputs: list[str] = typer.Argument(..., metavar="IN...", help="Audio files, or '-' for stdin."),
    model: str = model_option,
    out: str = OUT,
    filename: str = FILENAME,
    stems: str = STEMS,
    two_stems: str = TWO_STEMS,
    fmt: str = FORMAT,
    bits: int = BITS,
    clip_mode: str = CLIP_MODE,
    no_consistency: bool = NO_CONSISTENCY,
    refine: bool = refine_option,
    shifts: int = shifts_option,
    fail_fast: bool = FAIL_FAST,
    segment: float = segment_option,
    overlap: float = overlap_option,
    batch_size: int = batch_size_option,
    device: str = device_option,
    half: bool = HALF,
    precision: str = PRECISION,
    backend: str = BACKEND,
    compile: bool = COMPILE,
    threads: int = threads_option,
    as_json: bool = json_option,
) -> None:
    """Separate audio files into stems."""
    from separate.checkpoints import default_model_name
    from separate.inference import separate_files

    if model is None:
        model = default_model_name()
    set_threads(threads)
    show = _FileLines(checks=out != "-" and not as_json)
    try:
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
            consistency=False if no_consistency else None,
            refine=refine,
            shifts=shifts,
            precision=precision,
            backend=backend,
            compile=compile,
            clip_mode=clip_mode,
            fail_fast=fail_fast,
            progress=None if as_json or not console.is_terminal else _progress,
            on_file=show,
        )
    except KeyboardInterrupt:
        error("interrupted; no partial output left")
        raise typer.Exit(130) from None
    _finish(result, as_json)


def _finish(result: dict[str, Any], as_json: bool) -> None:
    """Print the JSON result when asked; exit 1 (with a count when there were several) if any file failed."""
    if as_json:
        emit_json(result)
    if result["failed"]:
        if len(result["files"]) > 1:
            error(f"{result['failed']} of {len(result['files'])} files failed")
        raise typer.Exit(1)


class _FileLines:
    """Prints each file's outcome as it is known: a check mark, a warning when its levels were fitted
    to the format, or its error (one line each, on stderr)."""

    def __init__(self, checks: bool) -> None:
        self.checks = checks

    def __call__(self, done: dict[str, Any]) -> None:
        if done["status"] == "failed":
            error(done["error"])
            return
        levels = done.get("levels") or {}
        if levels.get("gain_db", 0.0) < 0.0:
            warning(
                f"{done['track']}: stems peak at {levels['peak']:.3g} (over full scale); all stems scaled "
                f"down by {-levels['gain_db']:.2f} dB to fit (--clip-mode clamp clips instead)"
            )
        elif levels.get("clipped", 0):
            warning(
                f"{done['track']}: {levels['clipped']} samples clipped at full scale "
                f"(peak {levels['peak']:.3g}; --clip-mode rescale scales the track down instead)"
            )
        if self.checks:
            console.print(f"[green]✓[/green] {done['track']}: " + ", ".join(done["outputs"].values()))


@contextmanager
def _progress(name: str) -> Iterator[Callable[[float], None]]:
    """A transient progress bar for one file; yields its update callback."""
    with progress_bar() as bar:
        task = bar.add_task(name, total=1.0)
        yield lambda fraction: bar.update(task, completed=fraction)


def register(app: typer.Typer) -> None:
    app.command("audio", no_args_is_help=True)(audio)
