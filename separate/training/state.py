"""Training state on disk: one safetensors file per state, written atomically.

A training state (weights, loss-module weights, optimizer moments, RNG states, schedule and
early-stopping counters) is a nested structure of dicts, lists, tuples, numbers and tensors.
:func:`save_state` stores every tensor in the safetensors payload and the rest of the structure as
one JSON document in the file's header, with tagged nodes for tuples, non-string dict keys, numpy
arrays and tensor references, so :func:`load_state` rebuilds exactly what was saved (Python
``random`` needs real tuples, optimizer states need integer keys).

Why not ``torch.save``: it pickles, and unpickling a file can run code. The run folder holds files
users pass around (``--resume`` a run someone sent, ``train.init`` from a downloaded state), so
nothing in it is loaded through pickle. One file per state also makes the write atomic: a temporary
file in the same folder, then ``os.replace``; a run killed mid-write leaves the previous state intact.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from separate.errors import SeparateError
from separate.runtime import atomic_write

HEADER_KEY = "separate-training-state"
FORMAT_VERSION = 1
_TAGS = ("__tensor__", "__tuple__", "__items__", "__ndarray__")


class RunPaths:
    """Where a run keeps its files."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.config = self.root / "config.json"
        self.log = self.root / "log.jsonl"
        self.last = self.root / "state" / "last.safetensors"
        self.best = self.root / "state" / "best.safetensors"
        self.model = self.root / "model.safetensors"


def _encode(value: Any, tensors: dict[str, Tensor], path: str) -> Any:
    """JSON-able form of ``value``; tensors move into ``tensors`` under their dotted ``path``."""
    if isinstance(value, Tensor):
        tensors[path] = value.detach().to("cpu").contiguous().clone()
        return {"__tensor__": path}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors, f"{path}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, tensors, f"{path}.{i}") for i, v in enumerate(value)]
    if isinstance(value, dict):
        plain = all(isinstance(k, str) and k not in _TAGS for k in value)
        if plain:
            return {k: _encode(v, tensors, f"{path}.{k}") for k, v in value.items()}
        return {
            "__items__": [
                [_encode(k, tensors, f"{path}.key{i}"), _encode(v, tensors, f"{path}.{k}")]
                for i, (k, v) in enumerate(value.items())
            ]
        }
    raise TypeError(f"cannot store a {type(value).__name__} in a training state (at '{path}')")


def _decode(node: Any, tensors: dict[str, Tensor]) -> Any:
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    if not isinstance(node, dict):
        return node
    if "__tensor__" in node:
        return tensors[node["__tensor__"]]
    if "__tuple__" in node:
        return tuple(_decode(v, tensors) for v in node["__tuple__"])
    if "__items__" in node:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in node["__items__"]}
    if "__ndarray__" in node:
        return np.asarray(node["__ndarray__"], dtype=node["dtype"])
    return {k: _decode(v, tensors) for k, v in node.items()}


def save_state(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` (nested dicts/lists/tuples/numbers/tensors/numpy arrays) to ``path`` atomically."""
    path = Path(path)
    tensors: dict[str, Tensor] = {}
    document = {"format": FORMAT_VERSION, "state": _encode(state, tensors, "s")}
    with atomic_write(path) as partial:
        save_file(tensors, str(partial), metadata={HEADER_KEY: json.dumps(document)})
    return path


def is_training_state(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a safetensors file written by :func:`save_state`."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return HEADER_KEY in (handle.metadata() or {})
    except (SafetensorError, OSError, ValueError):
        return False


def load_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read back what :func:`save_state` wrote (tensors on the CPU)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get(HEADER_KEY)
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as problem:
        raise SeparateError(f"cannot read the training state '{path}' ({problem})") from None
    if raw is None:
        raise SeparateError(f"'{path}' is not a training state (no '{HEADER_KEY}' header)")
    document = json.loads(raw)
    if document.get("format") != FORMAT_VERSION:
        raise SeparateError(
            f"'{path}' has training-state format {document.get('format')}, expected {FORMAT_VERSION}"
        )
    return _decode(document["state"], tensors)


def capture_rng() -> dict[str, Any]:
    """The global RNG states of Python, numpy, torch (CPU) and every initialised CUDA device."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def append_jsonl(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one JSON line (flushed and fsynced, so a killed run keeps every finished epoch)."""
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records of a JSON-lines file; a torn last line (killed mid-write) is ignored."""
    records = []
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
