"""Inference paths: how a model's forward pass runs (precision, backend, compilation).

A :class:`FastPath` names one:

* ``precision``: ``fp32``; ``bf16`` (autocast, on CUDA or on CPUs with BF16 instructions);
  ``int8`` (dynamic quantization of the LSTM and Linear layers, CPU only).
* ``backend``: ``torch``, or ``onnxruntime`` (the model exported to ONNX once per chunk length and
  cached, :mod:`separate.backends.onnx`); with ``int8``, the graph's LSTM and matrix products are
  quantized dynamically (label ``onnxruntime-int8``).
* ``compile``: ``torch.compile`` with inductor; its cache lies under the user cache
  (:func:`cache_dir`), so the compilation is paid once per machine.

:func:`choose` resolves the path to run (options, else the registry's ``fast_path``, else eager fp32)
and falls back to eager fp32 with one warning line when this machine or model cannot take it;
:func:`prepare` turns a model and a path into a runner ``mix: [B, C, T] -> stems [B, S, C, T]``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from separate.errors import SeparateError

if TYPE_CHECKING:
    import torch

    from separate.models.base import SeparationModel

PRECISIONS = ("fp32", "bf16", "int8")
BACKENDS = ("torch", "onnxruntime")
#: The paths ``separate bench --paths`` compares, by label.
BENCH_PATHS = ("fp32", "bf16", "int8", "compile", "onnxruntime", "onnxruntime-int8")

Runner = Callable[["torch.Tensor"], "torch.Tensor"]


@dataclass(frozen=True)
class FastPath:
    """One way to run a model's forward pass; the default is eager fp32 in torch."""

    precision: str = "fp32"
    backend: str = "torch"
    compile: bool = False

    def __post_init__(self) -> None:
        check_options(self.precision, self.backend)

    @property
    def label(self) -> str:
        """``fp32``, ``bf16``, ``int8``, ``onnxruntime``, ``onnxruntime-int8``, with ``+compile`` when
        compiled."""
        base = self.precision
        if self.backend != "torch":
            base = self.backend if self.precision == "fp32" else f"{self.backend}-{self.precision}"
        if not self.compile:
            return base
        return "compile" if base == "fp32" else f"{base}+compile"

    @property
    def eager_fp32(self) -> bool:
        return self == FastPath()

    @classmethod
    def parse(cls, label: str) -> FastPath:
        """A path from a label of :data:`BENCH_PATHS` (``bf16+compile`` also works)."""
        base, _, extra = label.partition("+")
        backend, _, precision = base.partition("-")
        if backend in BACKENDS and precision in PRECISIONS:
            return cls(precision=precision, backend=backend, compile=extra == "compile")
        if extra not in ("", "compile") or base not in (*PRECISIONS, *BACKENDS, "compile"):
            raise SeparateError(f"unknown path '{label}' (choose from {', '.join(BENCH_PATHS)})")
        compiled = base == "compile" or extra == "compile"
        if base in BACKENDS:
            return cls(backend=base, compile=compiled)
        return cls(precision="fp32" if base == "compile" else base, compile=compiled)


def check_options(precision: str | None, backend: str | None) -> None:
    """Raise one clear :class:`SeparateError` for an unknown precision or backend."""
    if precision is not None and precision not in PRECISIONS:
        raise SeparateError(f"unknown precision '{precision}' (choose {' | '.join(PRECISIONS)})")
    if backend is not None and backend not in BACKENDS:
        raise SeparateError(f"unknown backend '{backend}' (choose {' | '.join(BACKENDS)})")


def from_table(table: Mapping[str, Any], where: str = "fast_path") -> FastPath:
    """A path from a registry ``fast_path = {precision, backend, compile}`` table (all keys optional)."""
    if not isinstance(table, Mapping):
        raise SeparateError(f"{where}: expected a table {{precision, backend, compile}}")
    unknown = sorted(set(table) - {"precision", "backend", "compile"})
    if unknown:
        raise SeparateError(f"{where}: unknown key(s) {', '.join(unknown)} (precision, backend, compile)")
    if not isinstance(table.get("compile", False), bool):
        raise SeparateError(f"{where}: compile must be true or false")
    try:
        return FastPath(**table)
    except SeparateError as problem:
        raise SeparateError(f"{where}: {problem}") from None


def choose(
    model: SeparationModel,
    device: torch.device,
    precision: str | None = None,
    backend: str | None = None,
    compile: bool | None = None,
    default: FastPath | None = None,
    warn: Callable[[str], None] | None = None,
) -> FastPath:
    """The path to run: each option given, else ``default``'s (the registry entry's), else eager fp32.

    A path the user asked for that this machine or model cannot take becomes eager fp32, with one
    warning line (``warn``, default stderr) saying why; a registry default that cannot run here
    (e.g. onnxruntime not installed) falls back quietly.
    """
    check_options(precision, backend)
    base = default or FastPath()
    asked = {
        key: value
        for key, value in (("precision", precision), ("backend", backend), ("compile", compile))
        if value is not None
    }
    wanted = replace(base, **asked)
    reason = unavailable(model, wanted, device)
    if reason is None:
        return wanted
    if asked:
        (warn or warn_line)(f"{wanted.label} is not available ({reason}); running eager fp32")
    return FastPath()


def unavailable(model: SeparationModel, path: FastPath, device: torch.device) -> str | None:
    """Why ``path`` cannot run ``model`` on ``device`` here, or None when it can."""
    if path.backend == "onnxruntime":
        if path.precision == "bf16" or path.compile:
            return "the onnxruntime backend runs the fp32 or int8 export, uncompiled"
        if device.type != "cpu":
            return "the onnxruntime backend runs on CPU"
        if not _importable("onnxruntime") or not _importable("onnx"):
            return "onnxruntime is not installed: pip install onnxruntime onnx"
    if path.precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        return "this CPU has no BF16 instructions (avx512_bf16 or amx_bf16)"
    if path.precision == "int8" and path.backend == "torch":
        if device.type != "cpu":
            return "int8 dynamic quantization runs on CPU"
        if path.compile:
            return "int8 layers are not compiled"
        if not _quantizable(model):
            return "the model has no LSTM or Linear layers to quantize"
    if path.compile:
        import torch

        if not hasattr(torch, "compile") or sys.platform == "win32":
            return "torch.compile is not supported on this platform"
        if device.type == "cpu" and c_compiler() is None:
            return "torch.compile needs a C++ compiler on PATH (e.g. apt-get install g++)"
    return None


def require(model: SeparationModel, label: str, device: torch.device) -> FastPath:
    """The path of ``label``, which must run ``model`` on ``device`` here: where a fallback would
    measure or score another path than the one asked for (``bench --against``, ``eval --path``)."""
    path = FastPath.parse(label)
    reason = unavailable(model, path, device)
    if reason is not None:
        raise SeparateError(f"path {label} is not available: {reason}")
    return path


def prepare(
    model: SeparationModel,
    path: FastPath,
    device: torch.device,
    batch_size: int = 1,
    chunk: int | None = None,
) -> Runner:
    """A runner ``mix: [B, C, T] -> stems [B, S, C, T]`` (float32) for ``model`` on ``path``; a compiled
    one pads every batch to at least ``batch_size``, so that it keeps one shape; an onnxruntime one
    exports a graph for inputs of ``chunk`` samples only (any length when None) and runs others eager.

    Call :func:`unavailable` (or :func:`choose`) first: this does not check the machine.
    """
    if path.backend == "onnxruntime":
        from separate.backends.onnx import OnnxRunner

        return OnnxRunner(model, int8=path.precision == "int8", chunk=chunk)
    run: Runner = model
    if path.precision == "int8":
        run = quantize_int8(model)
    if path.compile:
        run = FixedBatch(compiled(run), batch_size)
    if path.precision == "bf16":
        run = Autocast(run, device.type)
    return run


def cache_dir() -> Path:
    """``$SEPARATE_CACHE``, else ``$XDG_CACHE_HOME/separate``, else ``~/.cache/separate``."""
    if os.environ.get("SEPARATE_CACHE"):
        return Path(os.environ["SEPARATE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "separate"


@cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes in BF16 natively (AVX-512 BF16 or AMX); emulated BF16 is slower than fp32."""
    import torch

    if torch.backends.cpu.get_cpu_capability() in ("AVX512_BF16", "AMX"):
        return True
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def c_compiler() -> str | None:
    """The C++ compiler inductor would use (``$CXX``, else ``g++``, ``c++``, ``clang++``), if any."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def quantize_int8(model: SeparationModel) -> torch.nn.Module:
    """A copy of ``model`` with its LSTM and Linear layers quantized to int8 (weights; activations
    quantized on the fly)."""
    import copy
    import warnings

    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices, about its own future
        quantized = quantize_dynamic(
            copy.deepcopy(model), {torch.nn.LSTM, torch.nn.Linear}, dtype=torch.qint8
        )
    return Quiet(quantized)


def compiled(run: Runner) -> Runner:
    """``torch.compile(run)`` (inductor, static shapes) with its caches under :func:`cache_dir`."""
    import torch

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir() / "inductor"))
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = True
    return torch.compile(run, dynamic=False)


class FixedBatch:
    """Pads every batch to the largest batch seen so far (at least ``size``), so that a compiled model
    keeps one shape: a smaller group of chunks would compile again. mix: [B, C, T] -> [B, S, C, T]."""

    def __init__(self, run: Runner, size: int = 1) -> None:
        self.run = run
        self.size = size

    def __call__(self, mix: torch.Tensor) -> torch.Tensor:
        import torch

        batch = mix.shape[0]
        self.size = max(self.size, batch)
        if batch < self.size:
            padding = mix.new_zeros((self.size - batch, *mix.shape[1:]))
            return self.run(torch.cat([mix, padding]))[:batch]
        return self.run(mix)


class Quiet:
    """Runs without Python warnings (int8 LSTMs warn about torch's deprecations on every new shape)."""

    def __init__(self, run: Runner) -> None:
        self.run = run

    def __call__(self, mix: torch.Tensor) -> torch.Tensor:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.run(mix)


class Autocast:
    """Runs under ``torch.autocast(bfloat16)`` and returns float32. mix: [B, C, T] -> [B, S, C, T]."""

    def __init__(self, run: Runner, device_type: str) -> None:
        self.run = run
        self.device_type = device_type

    def __call__(self, mix: torch.Tensor) -> torch.Tensor:
        import torch

        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            return self.run(mix).float()


def _quantizable(model: SeparationModel) -> bool:
    import torch

    return any(isinstance(module, (torch.nn.LSTM, torch.nn.Linear)) for module in model.modules())


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def warn_line(message: str) -> None:
    """One warning line on stderr."""
    sys.stderr.write(f"separate: warning: {message}\n")
    sys.stderr.flush()
