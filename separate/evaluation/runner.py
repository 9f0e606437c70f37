"""What both evaluations run on: items scored over worker processes and torchrun ranks.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each rank takes every WORLD_SIZE-th item and uses its own
device (``LOCAL_RANK``); within a rank, :func:`run_items` spreads CPU-bound scoring over ``jobs``
spawned worker processes while the main process produces the inputs in order (model separation,
:func:`separating`). A :class:`Task` names one item of a :class:`ReferenceSet` (rebuilt, and cached,
in every worker) and, when a folder of estimates is scored, its estimate files (:func:`read_estimates`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from separate.audio import AUDIO_EXTENSIONS
from separate.errors import SeparateError
from separate.runtime import rank_device

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


@dataclass(frozen=True)
class ReferenceSet:
    """How to rebuild the reference dataset in a worker process (kept picklable)."""

    layout: str
    root: str
    split: str | None
    options: tuple[tuple[str, Any], ...] = ()

    def build(self) -> Any:
        if self not in _DATASETS:
            from separate.data import make_dataset

            options = {"segment": None, "random_crops": False, **dict(self.options)}
            _DATASETS[self] = make_dataset(self.layout, self.root, self.split, **options)
        return _DATASETS[self]


_DATASETS: dict[ReferenceSet, Any] = {}


def clear_datasets() -> None:
    """Forget the reference sets built so far (each evaluation starts afresh)."""
    _DATASETS.clear()


@dataclass(frozen=True)
class Task:
    """One item to score: its place in the dataset, estimate files (or None: arrays are given, or
    ``oracle`` names the oracle mask that makes them from the references)."""

    dataset: ReferenceSet
    index: int
    name: str
    sources: tuple[str, ...]
    estimate_files: tuple[str, ...] | None
    backend: str = "torch"
    device: str = "cpu"
    json_path: str | None = None
    with_sdr: bool = True
    oracle: str | None = None


def read_estimates(task: Task, references: np.ndarray, rate: int) -> np.ndarray:
    """Estimate files of one item as ``[S, C, T]``, checked against the references ``[S, C, T]``."""
    import soundfile as sf

    assert task.estimate_files is not None
    stems = []
    for path in task.estimate_files:
        try:
            audio, file_rate = sf.read(path, dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError) as error:
            raise SeparateError(f"cannot read estimate {path}: {error}") from error
        if file_rate != rate:
            raise SeparateError(f"estimate {path} is at {file_rate} Hz but the references are at {rate} Hz")
        if audio.shape[1] != references.shape[1]:
            raise SeparateError(
                f"estimate {path} has {audio.shape[1]} channel(s) but the references have "
                f"{references.shape[1]}"
            )
        if audio.shape[0] != references.shape[-1]:
            raise SeparateError(
                f"estimate {path} has {audio.shape[0]} samples but the reference has {references.shape[-1]}"
            )
        stems.append(audio.T)
    return np.stack(stems)


def separating(
    model: Any, device: str, options: dict[str, Any] | None, rank: int
) -> Callable[[Task], np.ndarray]:
    """The main process's step for model evaluation: separate the item's mixture with the engine."""
    from separate.engine import Separator

    separator = Separator(model, rank_device(device, rank), **(options or {}))

    def separate(task: Task) -> np.ndarray:
        dataset = task.dataset.build()
        mixture, _ = dataset[task.index]
        return separator.separate_tensor(mixture, dataset.sample_rate).numpy()  # [S, C, T], model order

    return separate


def scoring_device(device: str, jobs: int, rank: int) -> str:
    """Where BSSEval runs: the evaluation device when one process scores, the CPU for worker pools."""
    return "cpu" if jobs > 1 else rank_device(device, rank)


def require_dir(path: str | os.PathLike[str] | None, what: str = "--estimates folder") -> Path:
    if path is None:
        raise SeparateError("give either a model or an estimates folder to evaluate")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise SeparateError(f"{what} {folder} is not a folder")
    return folder


def audio_files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in AUDIO_EXTENSIONS}
