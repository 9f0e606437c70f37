"""``separate export``: write a model in another format (ONNX) for other runtimes."""

from __future__ import annotations

import typer

from separate.cli.common import console, emit_json, json_option, segment_option


def export(
    model: str = typer.Argument(..., metavar="MODEL", help="Registry name, .safetensors path or hf:// URL."),
    onnx: str = typer.Option(..., "--onnx", metavar="OUT.onnx", help="Where to write the ONNX graph."),
    segment: float = segment_option,
    batch: int = typer.Option(None, "--batch", min=1, help="Fixed batch size (default: free)."),
    as_json: bool = json_option,
) -> None:
    """Export MODEL as ONNX: input mix [batch, channels, chunk] -> stems [batch, sources, channels, chunk].

    The chunk length is fixed (--segment seconds at the model's rate, default the model's own); the
    batch is free unless --batch fixes it. The export is checked against torch on noise before the
    command succeeds. The dual-path models (DPRNN, DPTNet, GALR) and TDANet do not export yet.
    """
    from separate.backends.onnx import check_export
    from separate.checkpoints import load_model
    from separate.engine import DEFAULT_SEGMENT
    from separate.errors import SeparateError
    from separate.fastpath import FastPath, unavailable
    from separate.runtime import select_device

    if not onnx.endswith(".onnx"):
        raise SeparateError(f"--onnx names an .onnx file, got '{onnx}'")
    if segment is not None and segment <= 0:
        raise SeparateError(f"segment must be positive, got {segment}")
    loaded = load_model(model)
    reason = unavailable(loaded, FastPath(backend="onnxruntime"), select_device("cpu"))
    if reason:
        raise SeparateError(reason)
    seconds = segment or loaded.default_segment or DEFAULT_SEGMENT
    result = {
        "model": model,
        "onnx": onnx,
        **check_export(loaded, onnx, round(seconds * loaded.sample_rate), batch),
    }
    if as_json:
        emit_json(result)
    else:
        console.print(
            f"[green]✓[/green] {onnx}: chunk {result['chunk']} samples ({seconds:g} s at "
            f"{loaded.sample_rate} Hz); largest difference from torch {result['max_abs_difference']:.2e}"
        )


def register(app: typer.Typer) -> None:
    app.command("export", no_args_is_help=True)(export)
