"""Speed of our BSSEval v4 against museval on a 3-minute stereo 4-stem 44.1 kHz track (CPU).

Run as a script (prints wall and CPU times, their ratios and the largest per-frame difference)::

    python tests/bench_bsseval.py                 # 180 s, torch's default threads
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python tests/bench_bsseval.py  # 1 thread
    python tests/bench_bsseval.py --seconds 30    # a quicker look

or through pytest (not collected by default; ``BENCH_SECONDS`` sets the length)::

    python -m pytest tests/bench_bsseval.py -s

CPU time is ``time.process_time`` (all threads of this process), which is less sensitive than wall
time to other work on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from scipy.signal import lfilter

from separate.evaluation.bsseval import bss_eval

RATE = 44100


def track(seconds: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """References ``[4, 2, T]`` (coloured noise with loudness envelopes, 16-bit quantised) and
    estimates (references with leakage, a short filter and noise), float32."""
    rng = np.random.default_rng(seed)
    length = int(seconds * RATE)
    time_axis = np.arange(length) / RATE
    refs = np.empty((4, 2, length), dtype=np.float32)
    for j in range(4):
        audio = lfilter([1.0], [1.0, -0.3 * j], rng.standard_normal((2, length)), axis=-1)
        envelope = 0.6 + 0.4 * np.sin(2 * np.pi * (0.2 + 0.1 * j) * time_axis)
        refs[j] = np.round(0.1 * envelope * audio / audio.std() * 32767) / 32767
    leakage = (np.eye(4) + 0.1 * rng.standard_normal((4, 4))).astype(np.float32)
    ests = np.einsum("ij,jct->ict", leakage, refs)
    ests = lfilter([1.0, 0.2], [1.0], ests, axis=-1).astype(np.float32)
    ests += 0.005 * rng.standard_normal(ests.shape).astype(np.float32)
    return refs, ests


def timed(function, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def compare(seconds: float = 180.0, repeat: int = 2) -> dict[str, float]:
    refs, ests = track(seconds)
    runs = [timed(bss_eval, refs, ests, window=RATE, hop=RATE) for _ in range(repeat)]
    ours, ours_wall, ours_cpu = min(runs, key=lambda run: run[1])
    ours_cpu = min(run[2] for run in runs)
    theirs, theirs_wall, theirs_cpu = timed(bss_eval, refs, ests, window=RATE, hop=RATE, backend="museval")
    difference = max(
        float(np.nanmax(np.abs(np.nan_to_num(a.numpy(), posinf=0) - np.nan_to_num(b.numpy(), posinf=0))))
        for a, b in zip(ours, theirs, strict=True)
    )
    return {
        "seconds": seconds,
        "torch_threads": torch.get_num_threads(),
        "torch_wall_s": ours_wall,
        "torch_cpu_s": ours_cpu,
        "museval_wall_s": theirs_wall,
        "museval_cpu_s": theirs_cpu,
        "speedup_wall": theirs_wall / ours_wall,
        "speedup_cpu": theirs_cpu / ours_cpu,
        "max_abs_difference_db": difference,
    }


def report(result: dict[str, float]) -> None:
    print(
        f"{result['seconds']:.0f} s stereo 4-stem track, torch threads {result['torch_threads']}\n"
        f"  ours    : wall {result['torch_wall_s']:7.2f} s   cpu {result['torch_cpu_s']:7.2f} s\n"
        f"  museval : wall {result['museval_wall_s']:7.2f} s   cpu {result['museval_cpu_s']:7.2f} s\n"
        f"  speed-up: wall {result['speedup_wall']:6.1f}x     cpu {result['speedup_cpu']:6.1f}x\n"
        f"  largest per-frame difference: {result['max_abs_difference_db']:.2e} dB"
    )


def test_torch_bsseval_is_ten_times_faster_than_museval() -> None:
    result = compare(float(os.environ.get("BENCH_SECONDS", 180)), repeat=1)
    report(result)
    assert result["max_abs_difference_db"] < 0.01
    assert result["speedup_cpu"] >= 10


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--repeat", type=int, default=2, help="runs of ours (the fastest is kept)")
    options = parser.parse_args()
    report(compare(options.seconds, options.repeat))
