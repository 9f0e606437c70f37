"""Measurements of the inference paths (run inside one child process, see :mod:`.process`).

* :func:`measure_paths`: per path of :data:`separate.fastpath.BENCH_PATHS`, the engine's speed over
  eager fp32 on the same input (runs fp32, path, path, fp32) and the quality change: SI-SNRi on fixed
  two-speaker mixtures (the demo and two remixes of its references) against eager fp32's, and the
  SNR of the path's stems against eager fp32's stems.
* :func:`measure_against_demucs`: the same model object and chunks through Demucs' ``apply_model``
  (eager fp32) and through our engine, eager fp32 and on a given path.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from separate.bench.measure import interleaved
from separate.bench.targets import build_target
from separate.errors import SeparateError
from separate.fastpath import BENCH_PATHS, FastPath, unavailable
from separate.models.base import SeparationModel

#: The demo mixture and its references, in a source checkout.
DEMO = Path(__file__).resolve().parents[2] / "examples" / "audio" / "two-speakers"


def quality_mixtures() -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed (mixture [1, T], references [2, 1, T]) pairs at 8 kHz: the demo, then its references
    remixed at -6 dB and with the second speaker shifted by 1 s. Empty outside a source checkout."""
    import soundfile as sf

    paths = [Path(f"{DEMO}{suffix}.flac") for suffix in ("", ".s1", ".s2")]
    if not all(path.exists() for path in paths):
        return []
    mix, s1, s2 = (sf.read(path, dtype="float32", always_2d=True)[0].T for path in paths)
    rate = sf.info(paths[0]).samplerate
    quiet = np.stack([s1, 0.5 * s2])
    shifted = np.stack([s1, np.roll(s2, rate, axis=-1)])
    return [(mix, np.stack([s1, s2])), (quiet.sum(0), quiet), (shifted.sum(0), shifted)]


def si_snri(estimates: np.ndarray, references: np.ndarray, mixture: np.ndarray) -> float:
    """Mean SI-SNR improvement in dB under the best speaker order. estimates, references: [2, C, T]."""
    from itertools import permutations

    from separate.measures import si_snr

    est, ref = torch.from_numpy(estimates).double(), torch.from_numpy(references).double()
    base = si_snr(torch.from_numpy(mixture).double().expand_as(ref), ref).mean()
    best = max(si_snr(est[list(order)], ref).mean() for order in permutations(range(len(ref))))
    return float(best - base)


def measure_paths(
    target: dict[str, Any],
    device: str = "cpu",
    input_seconds: float = 30.0,
    batch_size: int = 4,
    segment: float | None = None,
    overlap: float = 0.25,
    paths: list[str] | None = None,
) -> dict[str, Any]:
    """One row per path: ``speedup`` (eager fp32 seconds / path seconds on ``input_seconds`` of noise),
    ``si_snri`` and ``si_snri_delta`` (two-speaker models), ``snr_vs_fp32`` (dB), ``warmup_seconds``
    (first call: export or compilation); an unavailable path has ``reason`` instead."""
    from separate.engine import Separator

    model = build_target(target)
    base = Separator(model, device, segment, overlap, batch_size)
    rate = model.sample_rate
    noise = _noise(model, input_seconds)
    mixtures = quality_mixtures() if len(model.sources) == 2 else []

    def outputs(separator: Separator) -> list[np.ndarray]:
        return [separator.separate_tensor(torch.from_numpy(mix), 8000).numpy() for mix, _ in mixtures]

    reference = outputs(base) if mixtures else [base.separate_tensor(noise[:, : 4 * rate], rate).numpy()]
    base_quality = _mean_si_snri(reference, mixtures)
    rows = []
    for label in paths or list(BENCH_PATHS):
        path = FastPath.parse(label)
        row: dict[str, Any] = {"path": label}
        reason = unavailable(model, path, base.device)
        if reason is not None:
            rows.append({**row, "reason": reason})
            continue
        fast = Separator(model, device, segment, overlap, batch_size, path=path)
        start = time.perf_counter()
        try:
            fast.separate_tensor(noise, rate)
        except Exception as problem:  # a path that fails on this model is a row, the others still run
            rows.append(
                {**row, "error": f"path {label}: {type(problem).__name__}: {str(problem).splitlines()[0]}"}
            )
            continue
        row["warmup_seconds"] = time.perf_counter() - start
        failure = getattr(fast.run, "failure", None)
        if failure is not None:
            rows.append({**row, "reason": failure})
            continue
        got = outputs(fast) if mixtures else [fast.separate_tensor(noise[:, : 4 * rate], rate).numpy()]
        row["snr_vs_fp32"] = min(_snr(mine, theirs) for mine, theirs in zip(got, reference, strict=True))
        if mixtures:
            row["si_snri"] = _mean_si_snri(got, mixtures)
            row["si_snri_delta"] = row["si_snri"] - base_quality
        eager_run, path_run = (partial(sep.separate_tensor, noise, rate) for sep in (base, fast))
        runs = interleaved(eager_run, path_run, base.device)
        row["fp32_seconds"], row["path_seconds"] = statistics.mean(runs[0]), statistics.mean(runs[1])
        row["speedup"] = row["fp32_seconds"] / row["path_seconds"]
        rows.append(row)
    chunk, hop, n_chunks = base.plan(noise.shape[-1])
    return {
        "architecture": type(model).architecture,
        "device": str(base.device),
        "threads": torch.get_num_threads(),
        "input_seconds": noise.shape[-1] / rate,
        "chunk": chunk,
        "n_chunks": n_chunks,
        "batch_size": batch_size,
        "quality_mixtures": len(mixtures),
        "fp32_si_snri": base_quality,
        "paths": rows,
    }


class DemucsView(torch.nn.Module):
    """Our model with what Demucs' ``apply_model`` reads: ``samplerate``, ``segment``, ``sources``."""

    def __init__(self, model: SeparationModel, segment: float) -> None:
        super().__init__()
        self.model = model
        self.samplerate = model.sample_rate
        self.audio_channels = model.audio_channels
        self.sources = list(model.sources)
        self.segment = segment

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """mix: [B, C, T] -> [B, S, C, T]."""
        return self.model(mix)


def measure_against_demucs(
    target: dict[str, Any],
    device: str = "cpu",
    input_seconds: float = 60.0,
    batch_size: int = 4,
    segment: float | None = None,
    overlap: float = 0.25,
    path: str = "fp32",
) -> dict[str, Any]:
    """Seconds of Demucs' ``apply_model`` (eager fp32, shifts=0, one chunk per call) and of our engine
    (eager fp32, and on ``path``) on the same model object, input, segment and overlap.

    Runs in the order demucs, fp32, path, path, fp32, demucs; each time is the mean of its two runs.
    ``ratio`` is demucs seconds over ours on ``path``.
    """
    try:
        from demucs.apply import apply_model
    except ImportError as problem:
        raise SeparateError(
            f"demucs is not importable ({problem}); install it with "
            "pip install 'separate[demucs]' (demucs>=4.1, which needs no torchaudio)"
        ) from None
    from separate.engine import Separator

    model = build_target(target)
    fast_path = FastPath.parse(path)
    reason = unavailable(model, fast_path, torch.device(device))
    if reason is not None:
        raise SeparateError(f"path {path} is not available: {reason}")
    eager = Separator(model, device, segment, overlap, batch_size)
    fast = Separator(model, device, segment, overlap, batch_size, path=fast_path)
    view = DemucsView(eager.model, eager.segment).eval()
    rate = model.sample_rate
    noise = _noise(model, input_seconds)
    fast.separate_tensor(noise, rate)

    def demucs() -> None:
        apply_model(view, noise[None], shifts=0, split=True, overlap=overlap, progress=False, device=device)

    times: dict[str, list[float]] = {"demucs": [], "fp32": [], "path": []}
    steps: dict[str, Callable[[], object]] = {
        "demucs": demucs,
        "fp32": lambda: eager.separate_tensor(noise, rate),
        "path": lambda: fast.separate_tensor(noise, rate),
    }
    for name in ("demucs", "fp32", "path", "path", "fp32", "demucs"):
        start = time.perf_counter()
        steps[name]()
        times[name].append(time.perf_counter() - start)
    seconds = {name: statistics.mean(runs) for name, runs in times.items()}
    return {
        "architecture": type(model).architecture,
        "threads": torch.get_num_threads(),
        "input_seconds": noise.shape[-1] / rate,
        "segment": eager.segment,
        "overlap": overlap,
        "batch_size": batch_size,
        "path": fast_path.label,
        "demucs_seconds": seconds["demucs"],
        "fp32_seconds": seconds["fp32"],
        "path_seconds": seconds["path"],
        "runs": times,
        "engine_ratio": seconds["demucs"] / seconds["fp32"],
        "ratio": seconds["demucs"] / seconds["path"],
    }


def _noise(model: SeparationModel, seconds: float) -> torch.Tensor:
    """``[C, seconds * rate]`` of quiet Gaussian noise at the model's rate and channels (seed 0)."""
    generator = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(model.audio_channels, round(seconds * model.sample_rate), generator=generator)


def _mean_si_snri(outputs: list[np.ndarray], mixtures: list[tuple[np.ndarray, np.ndarray]]) -> float | None:
    if not mixtures:
        return None
    return float(
        np.mean([si_snri(out, refs, mix) for out, (mix, refs) in zip(outputs, mixtures, strict=True)])
    )


def _snr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """SNR in dB of ``estimate`` against ``reference`` (inf when identical)."""
    error = float(np.sum((estimate.astype(np.float64) - reference) ** 2))
    energy = float(np.sum(reference.astype(np.float64) ** 2))
    return float("inf") if error == 0 else 10 * np.log10(energy / error)
