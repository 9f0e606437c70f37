"""Every benchmark behind one API: model complexity and speed, the engine, memory, the PIT losses.

Every measurement runs in a fresh child process (:mod:`.process`), so one model's memory cannot
inflate the next one's and the peak resident memory belongs to that measurement alone.

* :mod:`.run`: :func:`run` a :class:`Request` (what ``separate bench`` does) into one report;
* :mod:`.api`: the measurements one by one, :func:`benchmark_models`, :func:`benchmark_engine`,
  :func:`benchmark_batching`, :func:`benchmark_memory`, :func:`benchmark_losses`;
* :mod:`.targets`: what is measured (a preset or a checkpoint);
* :mod:`.process`: child processes and their peak memory; :mod:`.measure` and :mod:`.paths`
  (inference paths, Demucs' ``apply_model``): what runs in a child;
* :mod:`.complexity`: parameter and MAC counts; :mod:`.losses`: the PIT loss timings.
"""

from separate.bench.api import (
    benchmark_against,
    benchmark_batching,
    benchmark_engine,
    benchmark_losses,
    benchmark_memory,
    benchmark_models,
    benchmark_paths,
    check_device,
    check_positive,
    machine_info,
)
from separate.bench.run import Request, check_failures, run
from separate.bench.targets import ENGINE_TARGET, MEMORY_TARGET, Target, select_targets

__all__ = [
    "ENGINE_TARGET",
    "MEMORY_TARGET",
    "Request",
    "Target",
    "benchmark_against",
    "benchmark_batching",
    "benchmark_engine",
    "benchmark_losses",
    "benchmark_memory",
    "benchmark_models",
    "benchmark_paths",
    "check_device",
    "check_failures",
    "check_positive",
    "machine_info",
    "run",
    "select_targets",
]
