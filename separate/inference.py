"""Separation in one call, over the engine: :func:`separate` for a signal in memory (the functional
API, like Open-Unmix's ``predict.separate``) and :func:`separate_files` for what ``separate audio`` does.

    >>> import separate
    >>> stems = separate.separate(mix, 44100, model="runs/tiny/model.safetensors")   # mix: [C, T]
    >>> stems["vocals"].shape                                                       # [C, T]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from separate.errors import SeparateError

if TYPE_CHECKING:
    from separate.models.base import SeparationModel

DEFAULT_TEMPLATE = "{track}/{stem}.{ext}"
#: ``progress(track name)`` -> a context yielding the per-file callback ``(fraction done) -> None``, or None.
FileProgress = Callable[[str], AbstractContextManager[Callable[[float], None] | None]]


def separate(
    audio: Any,
    sample_rate: int,
    model: str | os.PathLike[str] | SeparationModel | None = None,
    *,
    device: str = "auto",
    segment: float | None = None,
    overlap: float = 0.25,
    batch_size: int = 4,
    half: bool = False,
    precision: str | None = None,
    backend: str | None = None,
    compile: bool | None = None,
) -> dict[str, Any]:
    """Separate one signal held in memory into its stems.

    Args:
        audio: ``[C, T]`` or ``[T]`` samples (a numpy array or a torch tensor) at ``sample_rate``.
        model: a registry name, a ``.safetensors`` path, an ``hf://org/repo/file`` URL or a loaded
            model (default: the registry's default model).
        device, segment, overlap, batch_size, half: as for :class:`separate.Separator`.
        precision, backend, compile: the inference path (``fp32|bf16|int8``, ``torch|onnxruntime``,
            ``torch.compile``); unset options take the registry entry's ``fast_path``, else eager
            fp32 (see :func:`separate.fastpath.choose`).

    Returns:
        ``{stem name: samples}`` in the model's order, each shaped like ``audio`` and at its rate:
        numpy arrays for a numpy input, else float32 CPU tensors.
    """
    import numpy as np
    import torch

    from separate.checkpoints import default_model_name, load_model
    from separate.engine import Separator

    if isinstance(model, torch.nn.Module):
        loaded = model
    else:
        model = default_model_name() if model is None else model
        loaded = load_model(model)
    mix = torch.as_tensor(audio)
    mono = mix.dim() == 1
    path = inference_path(loaded, model, device, precision, backend, compile)
    separator = Separator(loaded, device, segment, overlap, batch_size, half, path=path)
    stems = separator.separate_tensor(mix.unsqueeze(0) if mono else mix, sample_rate)  # [S, C, T]
    as_numpy = isinstance(audio, np.ndarray)
    return {
        name: (stem[0] if mono else stem).numpy() if as_numpy else (stem[0] if mono else stem)
        for name, stem in zip(separator.sources, stems, strict=True)
    }


def select_stems(sources: Sequence[str], stems: str | None, two_stems: str | None) -> list[str]:
    """The stems to write: ``--stems a,b`` (a subset), ``--two-stems X`` (X and ``no_X``), or all."""
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


def separate_files(
    inputs: Sequence[str],
    model: str,
    *,
    out: str = "separated",
    template: str = DEFAULT_TEMPLATE,
    stems: str | None = None,
    two_stems: str | None = None,
    fmt: str = "wav",
    bits: int = 24,
    device: str = "auto",
    segment: float | None = None,
    overlap: float = 0.25,
    batch_size: int = 4,
    half: bool = False,
    precision: str | None = None,
    backend: str | None = None,
    compile: bool | None = None,
    progress: FileProgress | None = None,
) -> dict[str, Any]:
    """Separate audio files (``-``: a stream on stdin) into stem files under ``out`` (``-``: stdout).

    Under torchrun each rank takes every WORLD_SIZE-th input on its own device. Every option is
    checked before the first file is read; each file's stems appear only once all of them are
    complete. Returns ``{"model", "device", "rank", "files": [one result per file]}``.
    """
    from separate.audio import open_input, output_subtype
    from separate.checkpoints import load_model
    from separate.engine import Separator
    from separate.fastpath import check_options
    from separate.runtime import rank_and_world, rank_device

    if fmt not in ("wav", "flac"):
        raise SeparateError(f"unsupported --format '{fmt}' (choose wav or flac)")
    check_options(precision, backend)
    subtype = output_subtype(fmt, bits)
    if inputs.count("-") > 1:
        raise SeparateError("stdin ('-') can be read only once")
    if stems and two_stems:
        raise SeparateError("--stems and --two-stems cannot be combined")
    rank, world = rank_and_world()
    if world > 1:
        device = rank_device(device, rank)
    loaded = load_model(model)
    path = inference_path(loaded, model, device, precision, backend, compile)
    separator = Separator(loaded, device, segment, overlap, batch_size, half, path=path)
    names = select_stems(separator.sources, stems, two_stems)
    if out == "-" and len(names) != 1:
        raise SeparateError(
            f"'-o -' writes one stem to stdout; select one with --stems (got {', '.join(names)})"
        )
    if out == "-" and len(inputs) != 1:
        raise SeparateError("'-o -' takes exactly one input")
    input_paths = {Path(p).resolve() for p in inputs if p != "-"}
    results = []
    for spec in inputs[rank::world]:
        with open_input(spec, separator.max_channels) as source:
            outputs = {name: output_path(out, template, source.name, name, fmt, model) for name in names}
            check_outputs(outputs.values(), input_paths)
            with progress(source.name) if progress else nullcontext() as advance:
                results.append(separator.separate_file(source, outputs, fmt, subtype, advance))
    return {
        "model": model,
        "device": str(separator.device),
        "path": separator.path.label,
        "rank": rank,
        "files": results,
    }


def inference_path(
    model: SeparationModel,
    name: Any,
    device: str,
    precision: str | None,
    backend: str | None,
    compile: bool | None,
) -> Any:
    """The :class:`~separate.fastpath.FastPath` to run: the options, else the registry entry's
    ``fast_path`` when ``name`` is a registry name, else eager fp32; unavailable -> fp32, one warning."""
    from separate.checkpoints import default_fast_path
    from separate.fastpath import check_options, choose
    from separate.runtime import select_device

    check_options(precision, backend)
    default = default_fast_path(name) if isinstance(name, (str, os.PathLike)) else None
    return choose(model, select_device(device), precision, backend, compile, default)


def output_path(out: str, template: str, track: str, stem: str, ext: str, model: str) -> str:
    """Where one stem goes: ``out/template`` filled in (``-`` when ``out`` is stdout)."""
    if out == "-":
        return "-"
    try:
        relative = template.format(track=track, stem=stem, ext=ext, model=Path(model).stem)
    except (KeyError, IndexError, ValueError) as problem:
        raise SeparateError(f"bad --filename template '{template}': {problem}") from None
    return str(Path(out) / relative)


def check_outputs(paths: Collection[str], inputs: set[Path]) -> None:
    """Fail before any work when an output would overwrite an input or its folder cannot be written."""
    clashes = [path for path in paths if path != "-" and Path(path).resolve() in inputs]
    if clashes:
        raise SeparateError(f"output '{clashes[0]}' would overwrite an input; choose another -o/--filename")
    for path in paths:
        if path == "-":
            continue
        folder = Path(path).parent
        existing = folder
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise SeparateError(f"cannot write to output folder '{folder}'")
