"""Process-group plumbing for DDP runs launched by ``torchrun`` (one process per device).

Without ``WORLD_SIZE > 1`` in the environment everything here is a no-op on one process, so the
training loop has one code path. CUDA processes use NCCL on ``cuda:LOCAL_RANK``; CPU processes use
gloo (that is how the test suite runs two processes on one machine).
"""

from __future__ import annotations

import datetime
from typing import Any

import torch
import torch.distributed as dist

from separate.errors import SeparateError
from separate.runtime import local_rank, rank_and_world, select_device


class Distributed:
    """Rank, world size and device of this process, with the few collectives the loop needs."""

    def __init__(self, rank: int, world: int, device: torch.device) -> None:
        self.rank, self.world, self.device = rank, world, device

    @classmethod
    def setup(cls, device: str = "auto", timeout_s: float = 1800.0) -> Distributed:
        """Join the process group that ``torchrun`` describes in the environment, if any."""
        rank, world = rank_and_world()
        if world <= 1:
            return cls(0, 1, select_device(device))
        use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        if use_cuda:
            if not torch.cuda.is_available():
                raise SeparateError(f"device '{device}' requested but CUDA is not available on this machine")
            chosen = torch.device("cuda", local_rank(rank) % torch.cuda.device_count())
            torch.cuda.set_device(chosen)
            backend = "nccl"
        elif device in ("auto", "cpu"):
            chosen, backend = torch.device("cpu"), "gloo"
        else:
            raise SeparateError(
                f"unsupported device '{device}' for distributed training (use auto, cpu or cuda)"
            )
        if not dist.is_initialized():
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
        return cls(rank, world, chosen)

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over processes (on the CPU for gloo, on the device for NCCL)."""
        if not self.active:
            return values
        values = values.to(self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def max(self, values: list[float]) -> list[float]:
        """Element-wise maximum over processes (flags and signal numbers every process must agree on)."""
        if not self.active:
            return list(values)
        device = self.device if self.device.type == "cuda" else "cpu"
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor.tolist()

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order (pickled in memory between our own processes)."""
        if not self.active:
            return [obj]
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, obj)
        return gathered

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()
