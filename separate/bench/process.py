"""Child processes for measurements: one fresh interpreter per measurement, its peak memory read back.

The parent starts ``python -m separate.bench.process TASK RESULT_PATH`` and sends
``{"threads": n, "kwargs": {...}}`` on stdin; the child runs ``TASK`` from
:mod:`separate.bench.measure` (``bsseval``: :mod:`separate.bench.bsseval`) and writes its JSON result
to ``RESULT_PATH``. A failure in the child comes back as ``{"error": "one line"}`` (traceback on the
child's stderr). The parent reaps the child with ``os.wait4``, whose resource usage gives that one
process's peak resident memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from separate.errors import SeparateError
from separate.runtime import atomic_write_text

TASKS = ("model", "engine", "batching", "bsseval", "paths", "against")
MIB = 2**20


def rss_bytes(ru_maxrss: int) -> int:
    """``ru_maxrss`` (a peak resident set size) in bytes: it counts bytes on macOS, KiB on Linux."""
    return ru_maxrss * (1 if sys.platform == "darwin" else 1024)


@dataclass
class ChildRun:
    """How one child process ended: exit code, its stderr, its peak resident memory, its wall time."""

    returncode: int
    stderr: str
    peak_rss_bytes: int
    seconds: float

    def failure(self) -> str:
        """One line saying why the child failed (its last stderr line, or the signal that killed it)."""
        if self.returncode < 0:
            reason = f"killed by signal {-self.returncode}"
            if self.returncode == -9:
                reason += " (out of memory?)"
        else:
            reason = f"exited with code {self.returncode}"
        lines = [line for line in self.stderr.strip().splitlines() if line.strip()]
        return f"{reason}: {lines[-1].strip()}" if lines else reason


def child_env(threads: int | None) -> dict[str, str]:
    """The parent's environment, with the OpenMP/MKL pools capped at ``threads`` when given."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def run_measured(
    command: Sequence[str], env: dict[str, str] | None = None, stdin: bytes | None = None
) -> ChildRun:
    """Run ``command`` to completion; return its exit code, stderr and peak resident memory (bytes)."""
    if not hasattr(os, "wait4"):
        raise SeparateError("measuring a child process's memory needs a POSIX system (os.wait4)")
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=env,
        )
        if stdin is not None and process.stdin is not None:
            try:
                process.stdin.write(stdin)
            except BrokenPipeError:
                pass
            process.stdin.close()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    return ChildRun(process.returncode, stderr, rss_bytes(usage.ru_maxrss), seconds)


def run_task(task: str, kwargs: dict[str, Any], threads: int | None = None) -> dict[str, Any]:
    """Run measurement ``task`` with ``kwargs`` in a fresh child process and return its result dict.

    The result gains ``process_peak_rss_mb`` (the child's peak resident memory over its whole life).
    """
    if task not in TASKS:
        raise ValueError(f"unknown measurement task '{task}'")
    with tempfile.TemporaryDirectory(prefix="separate-bench-") as folder:
        result_path = Path(folder) / "result.json"
        request = json.dumps({"threads": threads, "kwargs": kwargs}).encode()
        run = run_measured(
            [sys.executable, "-m", "separate.bench.process", task, str(result_path)],
            env=child_env(threads),
            stdin=request,
        )
        if result_path.exists():
            result = json.loads(result_path.read_text())
        else:
            result = {"error": f"measurement process {run.failure()}"}
    result["process_peak_rss_mb"] = run.peak_rss_bytes / MIB
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Child side: read the request from stdin, run the task, write the JSON result."""
    task, result_path = list(sys.argv[1:] if argv is None else argv)
    request = json.loads(sys.stdin.read())
    import torch

    from separate.bench import bsseval, measure, paths

    if request.get("threads"):
        torch.set_num_threads(int(request["threads"]))
    functions = {
        "model": measure.measure_model,
        "engine": measure.measure_engine,
        "batching": measure.measure_batching,
        "bsseval": bsseval.measure_bsseval,
        "paths": paths.measure_paths,
        "against": paths.measure_against_demucs,
    }
    try:
        result = functions[task](**request["kwargs"])
    except SeparateError as problem:
        result = {"error": str(problem)}
    except Exception as problem:  # the row reports it; the traceback goes to the child's stderr
        traceback.print_exc()
        result = {"error": f"{type(problem).__name__}: {problem}"}
    atomic_write_text(result_path, json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
