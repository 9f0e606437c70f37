"""Separation in one call, over the engine: :func:`separate` for a signal in memory (the functional
API, like Open-Unmix's ``predict.separate``) and :func:`separate_files` for what ``separate audio`` does.

    >>> import separate
    >>> stems = separate.separate(mix, 44100, model="runs/tiny/model.safetensors")   # mix: [C, T]
    >>> stems["vocals"].shape                                                       # [C, T]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from typing import TYPE_CHECKING, Any

from separate.checks import check_receptive_field
from separate.errors import SeparateError

if TYPE_CHECKING:
    from separate.audio import AudioInput
    from separate.engine import Separator
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
    consistency: bool | None = None,
    refine: bool | None = None,
    shifts: int = 1,
) -> dict[str, Any]:
    """Separate one signal held in memory into its stems.

    Args:
        audio: ``[C, T]`` or ``[T]`` samples (a numpy array or a torch tensor) at ``sample_rate``.
        model: a registry name, a ``.safetensors`` path, an ``hf://org/repo/file`` URL or a loaded
            model (default: the registry's default model).
        device, segment, overlap, batch_size, half, consistency: as for :class:`separate.Separator`.
        precision, backend, compile: the inference path (``fp32|bf16|int8``, ``torch|onnxruntime``,
            ``torch.compile``); unset options take the registry entry's ``fast_path``, else eager
            fp32 (see :func:`separate.fastpath.choose`); ``consistency=False`` leaves the stems as
            the model made them.
        refine: ratio-mask refinement of the stems (see :class:`separate.Separator`); None takes
            the registry entry's ``refine``.
        shifts: passes per chunk on delayed copies, averaged (see :class:`separate.Separator`).

    Raises:
        SeparateError: NaN or infinite samples, a bad option, an unknown model.

    Returns:
        ``{stem name: samples}`` in the model's order, each shaped like ``audio`` and at its rate:
        numpy arrays for a numpy input, else float32 CPU tensors.
    """
    import numpy as np
    import torch

    from separate.checkpoints import default_model_name, load_model

    if isinstance(model, torch.nn.Module):
        loaded = model
    else:
        model = default_model_name() if model is None else model
        loaded = load_model(model)
    mix = torch.as_tensor(audio)
    mono = mix.dim() == 1
    paths = (precision, backend, compile)
    separator = build_separator(
        loaded, model, device, segment, overlap, batch_size, half, consistency, paths, refine, shifts
    )
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
    consistency: bool | None = None,
    refine: bool | None = None,
    shifts: int = 1,
    clip_mode: str = "rescale",
    fail_fast: bool = False,
    progress: FileProgress | None = None,
    on_file: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Separate audio files (``-``: a stream on stdin) into stem files under ``out`` (``-``: stdout).

    Every option and output path is checked first (:func:`separate.audio.plan_outputs`), then every
    input is opened and validated, and only then are they separated. A file that fails is reported
    (``on_file`` gets each file's result as it is known) and the others still run, unless
    ``fail_fast``. Each file's stems appear only once all of them are complete. Under torchrun each
    rank takes every WORLD_SIZE-th input on its own device.

    Returns ``{"model", "device", "rank", "files": [...], "failed": n}``; each file is
    ``{"input", "track", "status": "ok" | "failed" | "skipped", "outputs", "levels" | "error"}``
    (a failed file has no outputs).
    """
    from separate.audio import CLIP_MODES, open_input, output_subtype, plan_outputs
    from separate.checkpoints import load_model
    from separate.fastpath import check_options
    from separate.runtime import rank_and_world, rank_device

    check_options(precision, backend)
    subtype = output_subtype(fmt, bits)
    if clip_mode not in CLIP_MODES:
        raise SeparateError(f"unknown --clip-mode '{clip_mode}' (choose {' or '.join(CLIP_MODES)})")
    if inputs.count("-") > 1:
        raise SeparateError("stdin ('-') can be read only once")
    if stems and two_stems:
        raise SeparateError("--stems and --two-stems cannot be combined")
    rank, world = rank_and_world()
    if world > 1:
        device = rank_device(device, rank)
    loaded = load_model(model)
    paths = (precision, backend, compile)
    separator = build_separator(
        loaded, model, device, segment, overlap, batch_size, half, consistency, paths, refine, shifts
    )
    names = select_stems(separator.sources, stems, two_stems)
    if out == "-" and len(names) != 1:
        raise SeparateError(
            f"'-o -' writes one stem to stdout; select one with --stems (got {', '.join(names)})"
        )
    if out == "-" and len(inputs) != 1:
        raise SeparateError("'-o -' takes exactly one input")
    plans = plan_outputs(inputs, names, out, template, fmt, model)[rank::world]
    files = [
        {"input": plan.spec, "track": plan.track, "status": "skipped", "outputs": plan.outputs}
        for plan in plans
    ]

    def report(index: int, **outcome: Any) -> bool:
        """Record one file's outcome; True when the run goes on."""
        files[index].update(outcome)
        if on_file is not None:
            on_file(files[index])
        return outcome["status"] == "ok" or not fail_fast

    with ExitStack() as opened:
        sources: list[AudioInput | None] = []
        for index, plan in enumerate(plans):
            try:
                sources.append(opened.enter_context(open_input(plan.spec, separator.max_channels)))
            except SeparateError as problem:
                sources.append(None)
                if not report(index, status="failed", error=str(problem), outputs={}):
                    break
        go_on = not fail_fast or all(file["status"] != "failed" for file in files)
        for index, (plan, source) in enumerate(zip(plans, sources, strict=False)):
            if not go_on or source is None:
                continue
            try:
                with progress(source.name) if progress else nullcontext() as advance:
                    done = separator.separate_file(source, plan.outputs, fmt, subtype, advance, clip_mode)
            except SeparateError as problem:
                go_on = report(index, status="failed", error=str(problem), outputs={})
            else:
                go_on = report(index, status="ok", levels=done["levels"], path=done["path"])
            source.close()
    failed = sum(file["status"] == "failed" for file in files)
    return {
        "model": model,
        "device": str(separator.device),
        "path": separator.path.label,
        "rank": rank,
        "files": files,
        "failed": failed,
    }


def build_separator(
    loaded: SeparationModel,
    name: Any,
    device: str,
    segment: float | None,
    overlap: float,
    batch_size: int,
    half: bool,
    consistency: bool | None,
    path_options: tuple[str | None, str | None, bool | None],
    refine: bool | None = None,
    shifts: int = 1,
) -> Separator:
    """A :class:`~separate.engine.Separator` for ``loaded`` after the segment check, on the inference
    path of ``path_options`` (precision, backend, compile), else the registry entry's ``fast_path``
    when ``name`` is a registry name, else eager fp32 (see :func:`separate.fastpath.choose`).
    ``refine=None`` takes the registry entry's ``refine`` (off for paths and URLs), ``segment=None`` its
    ``segment`` (else the model's own); ``shifts``: see :class:`~separate.engine.Separator`."""
    from separate.checkpoints import default_fast_path, separator_defaults
    from separate.engine import Separator
    from separate.fastpath import choose
    from separate.runtime import select_device

    refine, segment = separator_defaults(name, refine, segment)
    check_receptive_field(segment, loaded)
    default = default_fast_path(name) if isinstance(name, (str, os.PathLike)) else None
    path = choose(loaded, select_device(device), *path_options, default)
    return Separator(
        loaded,
        device,
        segment,
        overlap,
        batch_size,
        half,
        consistency,
        path=path,
        refine=refine,
        shifts=shifts,
    )
