"""``separate audio``: separate files (or stdin) into stems."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from separate.cli.common import (
    batch_size_option,
    console,
    device_option,
    emit_json,
    json_option,
    model_option,
    overlap_option,
    segment_option,
    set_threads,
    threads_option,
)

DEFAULT_TEMPLATE = "{track}/{stem}.{ext}"


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
    threads: int = threads_option,
    as_json: bool = json_option,
) -> None:
    """Separate audio files into stems."""
    from separate import audio as audio_io
    from separate.checkpoints import load_model
    from separate.engine import Separator
    from separate.errors import SeparateError

    if model is None:
        from separate.checkpoints import default_model_name

        model = default_model_name()
    if fmt not in ("wav", "flac"):
        raise SeparateError(f"unsupported --format '{fmt}' (choose wav or flac)")
    subtype = audio_io.output_subtype(fmt, bits)
    if inputs.count("-") > 1:
        raise SeparateError("stdin ('-') can be read only once")
    if stems and two_stems:
        raise SeparateError("--stems and --two-stems cannot be combined")
    set_threads(threads)
    from separate.runtime import rank_and_world, rank_device

    rank, world = rank_and_world()
    if world > 1:
        device = rank_device(device, rank)
    separator = Separator(load_model(model), device, segment, overlap, batch_size, half)
    names = _selected_stems(separator.sources, stems, two_stems)
    if out == "-" and len(names) != 1:
        raise SeparateError(
            f"'-o -' writes one stem to stdout; select one with --stems (got {', '.join(names)})"
        )
    if out == "-" and len(inputs) != 1:
        raise SeparateError("'-o -' takes exactly one input")
    mine = inputs[rank::world]
    input_paths = {Path(p).resolve() for p in inputs if p != "-"}
    results = []
    for spec in mine:
        with audio_io.open_input(spec, separator.max_channels) as source:
            outputs = {
                name: "-" if out == "-" else _output_path(out, filename, source.name, name, fmt, model)
                for name in names
            }
            clashes = [
                path for path in outputs.values() if path != "-" and Path(path).resolve() in input_paths
            ]
            if clashes:
                raise SeparateError(
                    f"output '{clashes[0]}' would overwrite an input; choose another -o/--filename"
                )
            _check_writable(outputs.values())
            with _progress(source.name, as_json or not console.is_terminal) as advance:
                results.append(separator.separate_file(source, outputs, fmt, subtype, advance))
    if as_json:
        emit_json({"model": model, "device": str(separator.device), "rank": rank, "files": results})
    elif out != "-":
        for result in results:
            console.print(f"[green]✓[/green] {result['track']}: " + ", ".join(result["outputs"].values()))


def _selected_stems(sources: list[str], stems: str | None, two_stems: str | None) -> list[str]:
    from separate.errors import SeparateError

    if two_stems:
        if two_stems not in sources:
            raise SeparateError(
                f"--two-stems '{two_stems}' is not a stem of this model ({', '.join(sources)})"
            )
        return [two_stems, f"no_{two_stems}"]
    if not stems:
        return list(sources)
    names = [name.strip() for name in stems.split(",") if name.strip()]
    unknown = [name for name in names if name not in sources]
    if unknown or not names:
        raise SeparateError(f"unknown stem(s) '{', '.join(unknown)}' (this model has {', '.join(sources)})")
    return names


def _output_path(out: str, template: str, track: str, stem: str, ext: str, model: str) -> str:
    from separate.errors import SeparateError

    try:
        relative = template.format(track=track, stem=stem, ext=ext, model=Path(model).stem)
    except (KeyError, IndexError, ValueError) as problem:
        raise SeparateError(f"bad --filename template '{template}': {problem}") from None
    return str(Path(out) / relative)


def _check_writable(paths: object) -> None:
    """Fail before any work when an output folder cannot be created or written."""
    from separate.errors import SeparateError

    for path in paths:  # type: ignore[attr-defined]
        if path == "-":
            continue
        folder = Path(path).parent
        existing = folder
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise SeparateError(f"cannot write to output folder '{folder}'")


@contextmanager
def _progress(name: str, quiet: bool) -> Iterator[Callable[[float], None] | None]:
    """A transient rich progress bar on stderr for one file; yields its update callback (None when quiet)."""
    if quiet:
        yield None
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(name, total=1.0)
        yield lambda fraction: bar.update(task, completed=fraction)


def register(app: typer.Typer) -> None:
    app.command("audio", no_args_is_help=True)(audio)
