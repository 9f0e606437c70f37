"""Running items over worker processes and torchrun ranks.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each rank takes every WORLD_SIZE-th item and uses its own
device (``LOCAL_RANK``); within a rank, ``run_items`` spreads CPU-bound scoring over ``jobs``
spawned worker processes while the main process produces the inputs in order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from separate.errors import SeparateError

#: ``progress(item name, done, total)``.
Progress = Callable[[str, int, int], None]
Item = TypeVar("Item")


def run_items(
    tasks: Sequence[Item],
    score: Callable[[Item, Any], tuple[str, Any]],
    produce: Callable[[Item], Any] | None,
    jobs: int,
    progress: Progress | None,
) -> list[tuple[str, Any]]:
    """Score tasks in order; ``produce`` (model separation) runs here, scoring in ``jobs`` processes."""
    if jobs < 1:
        raise SeparateError(f"--jobs must be at least 1, got {jobs}")
    results: list[tuple[str, Any] | None] = [None] * len(tasks)

    def finished(index: int, result: tuple[str, Any]) -> None:
        results[index] = result
        if progress is not None:
            progress(result[0], sum(r is not None for r in results), len(tasks))

    if jobs == 1 or len(tasks) <= 1:
        for index, task in enumerate(tasks):
            finished(index, score(task, produce(task) if produce else None))
        return [r for r in results if r is not None]

    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_set_worker_threads, initargs=(threads,)
    ) as pool:
        pending: dict[Any, int] = {}
        queue = iter(enumerate(tasks))
        for index, task in queue:
            pending[pool.submit(score, task, produce(task) if produce else None)] = index
            # Keep a few items in flight: separated stems wait in memory until scored.
            while len(pending) >= 2 * jobs:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    finished(pending.pop(future), future.result())
        for future in wait(pending).done:
            finished(pending[future], future.result())
    return [r for r in results if r is not None]


def _set_worker_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
