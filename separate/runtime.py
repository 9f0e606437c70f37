"""What every pipeline needs from the machine it runs on, defined once.

* Devices: :func:`select_device` checks ``auto | cpu | cuda | cuda:N`` against what exists.
* torchrun: :func:`rank_and_world` and :func:`local_rank` read the launcher's environment;
  :func:`rank_device` picks this rank's device; :func:`barrier_is_rank0` waits for every rank.
* CPU memory: :func:`keep_large_blocks` tunes glibc's allocator for inference (see below).
* Files: :func:`atomic_write` / :func:`atomic_write_text` write through a temporary file and rename;
  :func:`check_writable_folder` fails early, in one line, on a folder that cannot be written.
* Seeds: :func:`mix_seed` turns several integers (seed, epoch, rank, item...) into one seed.

glibc serves every block above its mmap threshold (at most 32 MiB by default) with a fresh
``mmap`` and unmaps it on free, so a model whose activations exceed that size page-faults all of
them again on every forward pass; on a 4-s Conv-TasNet chunk this doubled the run time. Raising
the mmap and trim thresholds keeps those blocks in the heap for reuse. The heap still shrinks and
grows with the working set, so memory stays bounded by the largest chunk batch.

Nothing here imports torch or numpy at module level: the command line reads ranks before it
loads any model.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from separate.errors import SeparateError

if TYPE_CHECKING:
    import torch

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 1 << 30

_tuned = False


def select_device(spec: str = "auto") -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``, checked against what exists."""
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise SeparateError(f"unknown device '{spec}' (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SeparateError(f"device '{spec}' requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SeparateError(f"device '{spec}' does not exist ({torch.cuda.device_count()} CUDA devices)")
    elif device.type != "cpu":
        raise SeparateError(f"unsupported device '{spec}' (use auto, cpu, cuda or cuda:N)")
    return device


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    if world > 1 and not 0 <= rank < world:
        raise SeparateError(f"RANK={rank} is outside WORLD_SIZE={world}")
    return rank, world


def local_rank(rank: int) -> int:
    """This process's index on its machine (``LOCAL_RANK`` under torchrun, else ``rank``)."""
    return int(os.environ.get("LOCAL_RANK", rank))


def rank_device(device: str, rank: int) -> str:
    """``auto`` -> this rank's CUDA device (``LOCAL_RANK`` under torchrun) or ``cpu``; others as given."""
    import torch

    if device != "auto":
        return device
    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{local_rank(rank) % torch.cuda.device_count()}"


def barrier_is_rank0() -> bool:
    """Wait (gloo barrier, no time limit in practice) until every rank has written its files."""
    from datetime import timedelta

    import torch.distributed as dist

    created = not dist.is_initialized()
    if created:
        dist.init_process_group("gloo", timeout=timedelta(days=1))
    try:
        dist.barrier()
        return dist.get_rank() == 0
    finally:
        if created:
            dist.destroy_process_group()


def keep_large_blocks() -> bool:
    """Raise glibc's mmap/trim thresholds once per process; returns whether it applied (glibc only)."""
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    _tuned = bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, THRESHOLD_BYTES)
    )
    return _tuned


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (``.NAME.partial``) to write; rename it onto ``path`` once
    the block succeeds. A failure, or a process killed mid-write, leaves ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, so that creating a file and registering its
    removal (or renaming a set of files and recording it) is one step that Ctrl-C cannot split."""
    import signal
    import threading

    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def check_writable_folder(folder: str | os.PathLike[str], what: str = "output folder") -> None:
    """Raise a one-line :class:`SeparateError` unless ``folder`` exists as a writable folder or can be
    created (its nearest existing ancestor is a writable folder)."""
    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        reason = "not a folder" if not existing.is_dir() else "permission denied"
        raise SeparateError(f"cannot write to {what} '{folder}' ({reason}: '{existing}')")


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str | None = None) -> None:
    """Write a text file through :func:`atomic_write`."""
    with atomic_write(path) as partial:
        partial.write_text(text, encoding=encoding)


def mix_seed(*numbers: int, bits: int = 63) -> int:
    """A well-mixed seed of ``bits`` (63 or 32) bits from several integers (seed, epoch, rank, item...).

    numpy's ``SeedSequence`` hashes the numbers, each first reduced to 32 bits; the 32-bit seed is the
    first word of the 63-bit one's hash.
    """
    import numpy as np

    words = np.random.SeedSequence([n & 0xFFFFFFFF for n in numbers]).generate_state(2, dtype=np.uint32)
    if bits == 32:
        return int(words[0])
    if bits != 63:
        raise ValueError(f"mix_seed makes 32- or 63-bit seeds, not {bits}")
    return (int(words[0]) << 31) ^ int(words[1])
