"""BSSEval speed, measured in a child process: our torch BSSEval v4 against museval's on one excerpt.

* :func:`music_excerpt`: references and estimates that behave like separated music;
* :func:`measure_bsseval`: CPU and wall time of both on it, their ratio and largest difference
  (:func:`largest_difference`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor


def music_excerpt(
    seconds: float, sources: int = 2, channels: int = 2, sample_rate: int = 44100, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """References and estimates ``[J, C, T]`` float32 that behave like separated music.

    References: coloured noise with a different spectrum and a slow loudness envelope per source,
    quantised to 16 bits. Estimates: the references with leakage, a short filter and added noise.
    """
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    length = max(1, round(seconds * sample_rate))
    time_axis = np.arange(length) / sample_rate
    refs = np.empty((sources, channels, length), dtype=np.float32)
    for j in range(sources):
        audio = lfilter([1.0], [1.0, -0.3 * j], rng.standard_normal((channels, length)), axis=-1)
        envelope = 0.6 + 0.4 * np.sin(2 * np.pi * (0.2 + 0.1 * j) * time_axis)
        refs[j] = np.round(0.1 * envelope * audio / audio.std() * 32767) / 32767
    leakage = np.eye(sources) + 0.1 * rng.standard_normal((sources, sources))
    ests = lfilter([1.0, 0.2], [1.0], np.einsum("ij,jct->ict", leakage, refs), axis=-1)
    ests += 0.005 * rng.standard_normal(ests.shape)
    return refs, ests.astype(np.float32)


def measure_bsseval(
    seconds: float = 30.0, sources: int = 2, channels: int = 2, sample_rate: int = 44100
) -> dict[str, Any]:
    """CPU and wall seconds of our BSSEval v4 and museval's on one excerpt (1 s windows and hop).

    After one untimed run of ours, runs in the order ours, museval, museval, ours so that a drift in
    machine load weighs on both equally; each side keeps its fastest run. CPU time is
    ``time.process_time`` (all threads of this process). Also reports the largest per-frame
    difference in dB between the two (:func:`largest_difference`).
    """
    from separate.evaluation.bsseval import bss_eval

    refs, ests = music_excerpt(seconds, sources, channels, sample_rate)

    def ours() -> Any:
        return bss_eval(refs, ests, window=sample_rate, hop=sample_rate)

    def museval() -> Any:
        return bss_eval(refs, ests, window=sample_rate, hop=sample_rate, backend="museval")

    ours()
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "museval": []}
    scores = {}
    for name, function in (("ours", ours), ("museval", museval), ("museval", museval), ("ours", ours)):
        wall, cpu = time.perf_counter(), time.process_time()
        scores[name] = function()
        runs[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    difference = largest_difference(scores["ours"], scores["museval"])
    result: dict[str, Any] = {
        "seconds": seconds,
        "sources": sources,
        "channels": channels,
        "sample_rate": sample_rate,
        "frames": int(scores["ours"].sdr.shape[-1]),
        "threads": torch.get_num_threads(),
        "max_abs_difference_db": difference,
    }
    for name, timings in runs.items():
        result[f"{name}_wall_seconds"] = min(wall for wall, _ in timings)
        result[f"{name}_cpu_seconds"] = min(cpu for _, cpu in timings)
        result[f"{name}_runs"] = timings
    result["ratio_cpu"] = result["museval_cpu_seconds"] / result["ours_cpu_seconds"]
    result["ratio_wall"] = result["museval_wall_seconds"] / result["ours_wall_seconds"]
    return result


def largest_difference(ours: Sequence[Tensor], theirs: Sequence[Tensor]) -> float:
    """Largest absolute difference between paired metrics (e.g. ``[J, frames]`` in dB).

    Equal values count as no difference, infinities and NaNs included; a NaN or an infinity on one
    side only counts as an infinite difference.
    """
    difference = 0.0
    for mine, other in zip(ours, theirs, strict=True):
        same = (torch.isnan(mine) & torch.isnan(other)) | (mine == other)
        gap = torch.where(same, 0.0, (mine - other).abs()).nan_to_num(nan=math.inf)
        difference = max(difference, float(gap.max()))
    return difference
