"""ONNX export and the onnxruntime backend.

:func:`export` writes a model as ONNX for one chunk length (the batch axis free, or fixed): the
models' forward passes compute paddings from the input's length in Python, which tracing fixes as
constants, so one graph serves exactly one length. :class:`OnnxRunner` exports lazily, once per
chunk length, into the user cache (keyed by the model's config and weights) and runs the graphs with
onnxruntime; a model that does not export (the dual-path models' ``unfold`` and TDANet's adaptive
pooling, which the exporter cannot size) runs eager instead, after one warning line.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from separate.errors import SeparateError
from separate.fastpath import cache_dir, warn_line
from separate.runtime import atomic_write

if TYPE_CHECKING:
    import torch

    from separate.models.base import SeparationModel

OPSET = 17
#: Operators that :func:`quantize_int8` quantizes (``Conv`` only when pointwise and ungrouped).
INT8_OPS = ("LSTM", "MatMul", "Gemm", "Conv")


def export(
    model: SeparationModel, path: str | os.PathLike[str], length: int, batch: int | None = None
) -> Path:
    """Write ``model`` as ONNX to ``path``: ``mix [B, C, length]`` -> ``stems [B, S, C, length]``, with
    ``B = batch``, or free when ``batch`` is None.

    The file's metadata holds the sample rate, the sources and the chunk length.
    """
    import onnx
    import torch

    path = Path(path)
    if length < 1:
        raise SeparateError(f"ONNX export needs a positive chunk length, got {length}")
    example = torch.zeros(batch or 1, model.audio_channels, length)
    free = {"mix": {0: "batch"}, "stems": {0: "batch"}} if batch is None else None
    model = with_leaky_relus(model).eval()
    fastpath_was = torch.backends.mha.get_fastpath_enabled()
    # Under inference mode, transformer layers take fused kernels that have no ONNX form.
    torch.backends.mha.set_fastpath_enabled(False)
    with (
        atomic_write(path) as partial,
        warnings.catch_warnings(),
        torch.inference_mode(False),
        torch.no_grad(),
    ):
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model,
                (example,),
                str(partial),
                dynamo=False,
                input_names=["mix"],
                output_names=["stems"],
                dynamic_axes=free,
                opset_version=OPSET,
            )
        except Exception as problem:  # the exporter raises many types; one line says which op failed
            raise SeparateError(f"ONNX export failed: {str(problem).splitlines()[0]}") from None
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath_was)
        graph = onnx.load(str(partial))
        for key, value in (
            ("sample_rate", model.sample_rate),
            ("sources", ",".join(model.sources)),
            ("audio_channels", model.audio_channels),
            ("chunk", length),
        ):
            entry = graph.metadata_props.add()
            entry.key, entry.value = key, str(value)
        onnx.save(graph, str(partial))
    return path


def with_leaky_relus(model: SeparationModel) -> SeparationModel:
    """A copy of ``model`` with each one-slope ``PReLU`` replaced by ``LeakyReLU`` of that slope."""
    import copy

    import torch

    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, torch.nn.PReLU) and child.num_parameters == 1:
                setattr(parent, name, torch.nn.LeakyReLU(child.weight.item()))
    return model


def quantize_int8(source: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Write ``source``'s graph to ``path`` with :data:`INT8_OPS` dynamically quantized to 8 bits.

    Weights are uint8: on CPUs without VNNI, onnxruntime's u8 x u8 kernels are the fast ones."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = Path(path)
    wide_convs = [node.name for node in onnx.load(str(source)).graph.node if _wide_conv(node)]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice about pre-processing on every call
    try:
        with atomic_write(path) as partial:
            quantize_dynamic(
                str(source),
                str(partial),
                op_types_to_quantize=list(INT8_OPS),
                nodes_to_exclude=wide_convs,
                weight_type=QuantType.QUInt8,
            )
    except Exception as problem:  # as for export: one line naming the failure
        raise SeparateError(
            f"int8 quantization of the ONNX graph failed: {str(problem).splitlines()[0]}"
        ) from None
    finally:
        root.setLevel(level)
    return path


def _wide_conv(node: Any) -> bool:
    """Whether an ONNX node is a ``Conv`` other than pointwise (kernel 1) over all channels (group 1)."""
    if node.op_type != "Conv":
        return False
    attributes = {attribute.name: attribute for attribute in node.attribute}
    kernel = list(attributes["kernel_shape"].ints) if "kernel_shape" in attributes else None
    group = attributes["group"].i if "group" in attributes else 1
    return kernel != [1] or group != 1


def model_digest(model: SeparationModel) -> str:
    """A short hash of the model's architecture, config and weights (the export cache's key)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([type(model).architecture, model.config], sort_keys=True).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def session(path: str | os.PathLike[str], threads: int) -> Any:
    """An onnxruntime CPU session on ``threads`` intra-op threads, one inter-op thread."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxRunner:
    """Runs ``model`` through onnxruntime; mix: [B, C, T] -> stems [B, S, C, T] (float32 CPU tensors).

    With ``chunk``, only inputs of that length (the engine's chunks) go through onnxruntime: any other
    length (an input shorter than one chunk) runs the model eagerly rather than exporting a graph
    for one file. Each chunk of the batch is one single-threaded run; with ``threads`` > 1 (default:
    torch's thread count) the runs go to that many worker threads at once (onnxruntime releases the
    GIL; each worker has its own session), which spreads a batch of chunks over the cores better
    than splitting each operator over them.

    Graphs live in ``cache/onnx/DIGEST-LENGTH.onnx`` (``DIGEST-LENGTH-int8.onnx`` with ``int8``, see
    :func:`quantize_int8`; ``cache`` defaults to :func:`separate.fastpath.cache_dir`). ``failure``
    says why the model runs eager, if it does.
    """

    def __init__(
        self,
        model: SeparationModel,
        cache: Path | None = None,
        threads: int | None = None,
        int8: bool = False,
        chunk: int | None = None,
    ) -> None:
        self.model = model
        self.int8 = int8
        self.chunk = chunk
        self.folder = (cache or cache_dir()) / "onnx"
        self.threads = threads
        self.digest = model_digest(model)
        self.graphs: dict[int, Path] = {}
        # Each worker thread's sessions: concurrent runs of one session contend.
        self.local = threading.local()
        self.pool: ThreadPoolExecutor | None = None
        self.failure: str | None = None

    def __call__(self, mix: torch.Tensor) -> torch.Tensor:
        import torch

        length = mix.shape[-1]
        if self.chunk is not None and length != self.chunk:
            return self.model(mix)
        if self.failure is None and length not in self.graphs:
            try:
                self.graphs[length] = self._graph(length)
            except SeparateError as problem:
                self.failure = str(problem)
                warn_line(f"onnxruntime is not available ({self.failure[:160]}); running eager fp32")
        if self.failure is not None:
            return self.model(mix)
        items = list(mix.detach().cpu().float().numpy()[:, None])  # [1, C, T] each

        def one(item: Any) -> Any:
            return self._session(length).run(None, {"mix": item})[0]

        threads = self.threads or torch.get_num_threads()
        if threads > 1 and len(items) > 1:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="onnxruntime")
            stems = list(self.pool.map(one, items))
        else:
            stems = [one(item) for item in items]
        return torch.from_numpy(np.concatenate(stems))

    def _session(self, length: int) -> Any:
        """The calling thread's single-threaded session on the graph for ``length`` samples."""
        sessions = self.local.__dict__.setdefault("sessions", {})
        if length not in sessions:
            sessions[length] = session(self.graphs[length], 1)
        return sessions[length]

    def _graph(self, length: int) -> Path:
        path = self.folder / f"{self.digest}-{length}.onnx"
        if not path.exists():
            export(self.model, path, length)
        if not self.int8:
            return path
        quantized = path.with_name(f"{path.stem}-int8.onnx")
        if not quantized.exists():
            quantize_int8(path, quantized)
        return quantized


def check_export(
    model: SeparationModel, path: str | os.PathLike[str], length: int, batch: int | None = None
) -> dict[str, Any]:
    """:func:`export`, then run the graph and torch on the same noise ``[batch or 2, C, length]``.

    Returns ``{"chunk", "max_abs_difference"}``; raises when they disagree beyond float tolerance.
    """
    import torch

    export(model, path, length, batch)
    generator = torch.Generator().manual_seed(0)
    mix = 0.1 * torch.randn(batch or 2, model.audio_channels, length, generator=generator)
    with torch.inference_mode():
        expected = model(mix)
    got = torch.from_numpy(session(path, torch.get_num_threads()).run(None, {"mix": mix.numpy()})[0])
    difference = float((got - expected).abs().max())
    scale = float(expected.abs().max()) or 1.0
    if not difference <= 1e-3 * scale:
        Path(path).unlink(missing_ok=True)
        raise SeparateError(f"the ONNX graph disagrees with torch (largest difference {difference:.3g})")
    return {"chunk": length, "max_abs_difference": difference}
