"""Measurements of the inference paths (run inside one child process, see :mod:`.process`).

* :func:`measure_paths`: per path of :data:`separate.fastpath.BENCH_PATHS`, the engine's speed over
  eager fp32 on the same input (runs fp32, path, path, fp32) and the quality change against eager
  fp32's on fixed mixtures (:func:`quality_set`: SI-SNRi for two-speaker models, SDR for music
  models), and the SNR of the path's stems against eager fp32's stems.
* :func:`measure_against_demucs`: the same model object and chunks through Demucs' ``apply_model``
  (eager fp32) and through our engine, eager fp32 and on a given path.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from separate.bench.measure import interleaved
from separate.bench.targets import build_target
from separate.errors import SeparateError
from separate.fastpath import BENCH_PATHS, FastPath, require, unavailable
from separate.models.base import SeparationModel

#: The demo mixtures and their references, in a source checkout.
DEMO = Path(__file__).resolve().parents[2] / "examples" / "audio" / "two-speakers"
MUSIC_DEMO = DEMO.with_name("song-excerpt")


class QualitySet(NamedTuple):
    """Fixed mixtures (``[1, T]`` each) with references, at ``rate``, and how a path's stems are scored:
    ``metric`` names it and ``score(stems [S, 1, T], item)`` gives dB for item ``item``."""

    metric: str
    rate: int
    mixtures: list[np.ndarray]
    score: Callable[[np.ndarray, int], float]


def _read(paths: list[Path]) -> tuple[list[np.ndarray], int] | None:
    """The files' ``[C, T]`` samples and the first one's rate; None when one is missing."""
    import soundfile as sf

    if not all(path.exists() for path in paths):
        return None
    signals = [sf.read(path, dtype="float32", always_2d=True)[0].T for path in paths]
    return signals, sf.info(paths[0]).samplerate


def _variants(first: np.ndarray, second: np.ndarray, rate: int) -> list[np.ndarray]:
    """``[2, 1, T]`` reference pairs: as given, the second at -6 dB, the second shifted by 1 s."""
    return [
        np.stack([first, second]),
        np.stack([first, 0.5 * second]),
        np.stack([first, np.roll(second, rate, -1)]),
    ]


def si_snri(estimates: np.ndarray, references: np.ndarray, mixture: np.ndarray) -> float:
    """Mean SI-SNR improvement in dB under the best speaker order. estimates, references: [2, C, T]."""
    from itertools import permutations

    from separate.measures import si_snr

    est, ref = torch.from_numpy(estimates).double(), torch.from_numpy(references).double()
    base = si_snr(torch.from_numpy(mixture).double().expand_as(ref), ref).mean()
    best = max(si_snr(est[list(order)], ref).mean() for order in permutations(range(len(ref))))
    return float(best - base)


def quality_set(model: SeparationModel) -> QualitySet | None:
    """The fixed mixtures a path's quality is measured on, for a model they fit (None otherwise; and
    outside a source checkout). Two-speaker models: the speech demo and two remixes of its references,
    SI-SNRi under the best speaker order. Models with a ``vocals`` stem: the song excerpt and two
    remixes of its vocals and accompaniment, BSSEval v4 SDR (median of 1 s frames) of vocals and of
    accompaniment (the other stems summed), averaged."""
    if "vocals" in model.sources:
        read = _read([Path(f"{MUSIC_DEMO}{suffix}.flac") for suffix in ("", ".vocals")])
        if read is None:
            return None
        (mix, vocals), rate = read
        references = _variants(vocals, mix - vocals, rate)
        index = list(model.sources).index("vocals")

        def sdr(stems: np.ndarray, item: int) -> float:
            from separate.evaluation.bsseval.api import bss_eval

            estimates = np.stack([stems[index], np.delete(stems, index, axis=0).sum(0)])
            scores = bss_eval(
                torch.from_numpy(references[item]).double(),
                torch.from_numpy(estimates).double(),
                window=rate,
                hop=rate,
            )
            return float(scores.sdr.nanmedian(dim=1).values.mean())

        return QualitySet("SDR", rate, [ref.sum(0) for ref in references], sdr)
    if len(model.sources) != 2:
        return None
    read = _read([Path(f"{DEMO}{suffix}.flac") for suffix in ("", ".s1", ".s2")])
    if read is None:
        return None
    (_, first, second), rate = read
    references = _variants(first, second, rate)
    mixtures = [ref.sum(0) for ref in references]
    return QualitySet(
        "SI-SNRi", rate, mixtures, lambda stems, item: si_snri(stems, references[item], mixtures[item])
    )


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
    ``quality`` and ``quality_delta`` in dB (metric ``quality_metric`` of :func:`quality_set`),
    ``snr_vs_fp32`` (dB), ``warmup_seconds``
    (first call: export or compilation); an unavailable path has ``reason`` instead."""
    from separate.engine import Separator

    model = build_target(target)
    base = Separator(model, device, segment, overlap, batch_size)
    rate = model.sample_rate
    noise = _noise(model, input_seconds)
    quality = quality_set(model)

    probe_seconds = 4.0 if quality is None else min(mix.shape[-1] for mix in quality.mixtures) / quality.rate
    # Chunks shorter than the probes, so that every chunk has the length a path runs on (a whole input
    # shorter than one chunk runs eager on the onnxruntime paths).
    probe_segment = min(base.segment, 0.75 * probe_seconds)

    def outputs(path: FastPath) -> tuple[list[np.ndarray], str | None]:
        """The stems of the probes on ``path``, and why the path fell back to eager, if it did."""
        separator = Separator(model, device, probe_segment, overlap, batch_size, path=path)
        if quality is None:
            stems = [separator.separate_tensor(noise[:, : round(probe_seconds * rate)], rate).numpy()]
        else:
            stems = [
                separator.separate_tensor(torch.from_numpy(mix), quality.rate).numpy()
                for mix in quality.mixtures
            ]
        return stems, separator.failure

    def score(stems: list[np.ndarray]) -> float | None:
        if quality is None:
            return None
        return float(np.mean([quality.score(item_stems, item) for item, item_stems in enumerate(stems)]))

    reference, _ = outputs(FastPath())
    base_quality = score(reference)
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
        failure = fast.failure
        if failure is not None:
            rows.append({**row, "reason": failure})
            continue
        got, failure = outputs(path)
        if failure is not None:
            rows.append({**row, "reason": f"on {probe_segment:.2f} s chunks: {failure}"})
            continue
        row["snr_vs_fp32"] = min(_snr(mine, theirs) for mine, theirs in zip(got, reference, strict=True))
        if base_quality is not None:
            row["quality"] = score(got)
            row["quality_delta"] = row["quality"] - base_quality
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
        "quality_metric": None if quality is None else quality.metric,
        "quality_mixtures": 0 if quality is None else len(quality.mixtures),
        "quality_segment": probe_segment,
        "fp32_quality": base_quality,
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
    fast_path = require(model, path, torch.device(device))
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


def _snr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """SNR in dB of ``estimate`` against ``reference`` (inf when identical)."""
    error = float(np.sum((estimate.astype(np.float64) - reference) ** 2))
    energy = float(np.sum(reference.astype(np.float64) ** 2))
    return float("inf") if error == 0 else 10 * np.log10(energy / error)
