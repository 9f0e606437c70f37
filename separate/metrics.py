"""Evaluation metrics: speech scores with the best assignment, and MUSDB18's BSSEval v4 protocol.

Speech (SPEC §1.6): estimates are matched to references by the Hungarian algorithm on the
pairwise SI-SNR matrix, then per source

* SI-SNR (zero-mean, SPEC §1.1) and SI-SNRi = SI-SNR(estimate) - SI-SNR(mixture);
* SDR = BSSEval ``bss_eval_sources`` SDR (512-tap distortion filter, whole utterance, as mir_eval
  and museval compute it; see :mod:`separate.bsseval`) and SDRi = SDR(estimate) - SDR(mixture used
  as the estimate of every source).

Music (SPEC §1.6, §10 item 52): BSSEval v4 frames per track with museval's grouping of targets
(:func:`musdb_frames`), stored in museval's JSON format (:func:`musdb_json`), and aggregated two
ways (:func:`aggregate_music`): SiSEC 2018 (median over frames per track, then median over tracks)
and pooled (median over all frames of all tracks, as Wave-U-Net reports). NaN frames are skipped,
as museval's pandas medians skip them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from separate.bsseval import bss_eval
from separate.errors import SeparateError
from separate.measures import hungarian, pairwise_si_snr, si_snr

MUSIC_METRICS = ("SDR", "SIR", "ISR", "SAR")
MUSDB_TARGETS = ("vocals", "drums", "bass", "other", "accompaniment")
#: BSSEval v4 window and hop on MUSDB18 (museval's ``win=1.0, hop=1.0``).
WINDOW_SECONDS = 1.0
SPEECH_METRICS = ("si_snr", "si_snri", "sdr", "sdri")


@dataclass(frozen=True)
class SpeechScores:
    """Scores of one utterance, each averaged over its sources (dB).

    ``assignment[j]`` is the index of the estimate matched to reference ``j``. ``per_source`` holds
    the unaveraged values, metric name -> ``[J]`` list.
    """

    si_snr: float
    si_snri: float
    sdr: float
    sdri: float
    input_si_snr: float
    input_sdr: float
    assignment: tuple[int, ...]
    per_source: dict[str, list[float]]


def best_assignment(estimates: Tensor, references: Tensor) -> Tensor:
    """Hungarian assignment maximising the summed SI-SNR.

    Args:
        estimates: ``[J, T]``.
        references: ``[J, T]``.

    Returns:
        ``LongTensor [J]``: ``perm[j]`` = index of the estimate matched to reference ``j``.
    """
    scores = pairwise_si_snr(estimates.unsqueeze(0), references.unsqueeze(0))[0]  # [J_est, J_ref]
    costs = -scores.detach().T.to("cpu", torch.float64).numpy()
    return torch.from_numpy(hungarian(costs)).to(estimates.device)


def speech_scores(
    estimates: Tensor,
    references: Tensor,
    mixture: Tensor,
    *,
    with_sdr: bool = True,
    device: str | torch.device | None = None,
) -> SpeechScores:
    """SI-SNR(i) and SDR(i) of one utterance with the best assignment.

    Args:
        estimates: ``[J, C, T]`` separated sources in any order.
        references: ``[J, C, T]`` true sources.
        mixture: ``[C, T]`` the input mixture.
        with_sdr: also compute the BSSEval SDR and SDRi (NaN otherwise; SI-SNR is much cheaper).
        device: where BSSEval runs (default: the references' device).
    """
    if estimates.dim() != 3 or estimates.shape != references.shape:
        raise SeparateError(
            f"estimates {tuple(estimates.shape)} and references {tuple(references.shape)} must both be "
            "[sources, channels, samples] of one shape"
        )
    if mixture.shape != references.shape[1:]:
        raise SeparateError(
            f"the mixture {tuple(mixture.shape)} must be [channels, samples] like each reference "
            f"{tuple(references.shape[1:])}"
        )
    n_src = references.shape[0]
    # Channels are concatenated in time for SI-SNR, so a multichannel source is one signal.
    flat_est = estimates.reshape(n_src, -1).to(torch.float64)
    flat_ref = references.reshape(n_src, -1).to(torch.float64)
    flat_mix = mixture.reshape(1, -1).to(torch.float64).expand(n_src, -1)
    perm = best_assignment(flat_est, flat_ref)
    ordered = estimates[perm]
    est_si_snr = si_snr(flat_est[perm], flat_ref)
    mix_si_snr = si_snr(flat_mix, flat_ref)
    per_source = {
        "si_snr": est_si_snr.tolist(),
        "si_snri": (est_si_snr - mix_si_snr).tolist(),
        "input_si_snr": mix_si_snr.tolist(),
    }
    if with_sdr:
        as_estimates = torch.stack([ordered, mixture.expand_as(references)])  # [2, J, C, T]
        scores = bss_eval(references, as_estimates, window=None, hop=None, images=False, device=device)
        est_sdr, mix_sdr = scores.sdr[0, :, 0], scores.sdr[1, :, 0]
    else:
        est_sdr = mix_sdr = torch.full((n_src,), float("nan"), dtype=torch.float64)
    per_source.update(sdr=est_sdr.tolist(), sdri=(est_sdr - mix_sdr).tolist(), input_sdr=mix_sdr.tolist())
    means = {name: float(np.mean(values)) for name, values in per_source.items()}
    return SpeechScores(
        si_snr=means["si_snr"],
        si_snri=means["si_snri"],
        sdr=means["sdr"],
        sdri=means["sdri"],
        input_si_snr=means["input_si_snr"],
        input_sdr=means["input_sdr"],
        assignment=tuple(int(i) for i in perm.tolist()),
        per_source=per_source,
    )


def summarize(values: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """Mean, median, standard deviation and a t-interval of the mean over utterances (NaN skipped).

    Returns ``{"mean", "median", "std", "ci_low", "ci_high", "count"}``; with one value the interval is NaN.
    """
    from scipy import stats

    data = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    count = int(data.size)
    if count == 0:
        nan = float("nan")
        return {"mean": nan, "median": nan, "std": nan, "ci_low": nan, "ci_high": nan, "count": 0}
    mean = float(data.mean())
    std = float(data.std(ddof=1)) if count > 1 else float("nan")
    if count > 1:
        half = float(stats.t.ppf(0.5 + confidence / 2, count - 1)) * std / math.sqrt(count)
    else:
        half = float("nan")
    return {
        "mean": mean,
        "median": float(np.median(data)),
        "std": std,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "count": count,
    }


#: One track's BSSEval frames: target -> metric -> per-frame values (NaN for silent frames).
TrackFrames = Mapping[str, Mapping[str, Sequence[float]]]


def _nanmedian(values: Iterable[float]) -> float:
    data = np.asarray(list(values), dtype=np.float64)
    data = data[~np.isnan(data)]
    return float(np.median(data)) if data.size else float("nan")


def track_medians(frames: TrackFrames) -> dict[str, dict[str, float]]:
    """Median over the frames of one track: target -> metric -> dB."""
    return {
        target: {metric: _nanmedian(values) for metric, values in metrics.items()}
        for target, metrics in frames.items()
    }


def aggregate_music(tracks: Mapping[str, TrackFrames]) -> dict[str, dict[str, dict[str, float]]]:
    """Both MUSDB18 aggregations over tracks (track name -> frames).

    Returns ``{"sisec18": target -> metric -> median over tracks of the per-track medians,
    "pooled": target -> metric -> median over the frames of all tracks}``.
    """
    medians = {name: track_medians(frames) for name, frames in tracks.items()}
    targets: list[str] = []
    for frames in tracks.values():
        targets.extend(t for t in frames if t not in targets)
    sisec18: dict[str, dict[str, float]] = {}
    pooled: dict[str, dict[str, float]] = {}
    for target in targets:
        sisec18[target] = {}
        pooled[target] = {}
        for metric in MUSIC_METRICS:
            per_track = [m[target][metric] for m in medians.values() if target in m and metric in m[target]]
            sisec18[target][metric] = _nanmedian(per_track)
            every_frame = [
                value
                for frames in tracks.values()
                if target in frames and metric in frames[target]
                for value in frames[target][metric]
            ]
            pooled[target][metric] = _nanmedian(every_frame)
    return {"sisec18": sisec18, "pooled": pooled}


def musdb_frames(
    references: np.ndarray,
    estimates: np.ndarray,
    targets: Sequence[str],
    sample_rate: int,
    backend: str = "torch",
    device: str = "cpu",
) -> dict[str, dict[str, list[float]]]:
    """BSSEval v4 frames of one track, targets grouped as museval's ``eval_mus_track`` does.

    Args:
        references, estimates: ``[S, C, T]`` in the order of ``targets``.
        targets: MUSDB18 target names.

    Returns:
        target -> metric (SDR, SIR, ISR, SAR) -> per-frame dB, rounded to 5 decimals with +-inf
        and silent frames as NaN (what museval's JSON holds).
    """
    from separate.bsseval import bss_eval

    for kind, signals in (("reference", references), ("estimate", estimates)):
        for name, signal in zip(targets, signals, strict=True):
            if not np.any(signal.sum(axis=0)):
                raise SeparateError(f"the {name} {kind} is silent (all zeros); BSSEval is undefined for it")
    position = {name: i for i, name in enumerate(targets)}
    groups = museval_groups(list(targets))
    window = int(WINDOW_SECONDS * sample_rate)
    frames: dict[str, dict[str, list[float]]] = {}
    for group, reported in groups:
        rows = [position[name] for name in group]
        scores = bss_eval(
            references[rows], estimates[rows], window=window, hop=window, backend=backend, device=device
        )
        by_metric = {"SDR": scores.sdr, "SIR": scores.sir, "ISR": scores.isr, "SAR": scores.sar}
        for row, name in enumerate(group):
            if name in reported:
                frames[name] = {m: [_quantize(v) for v in by_metric[m][row].tolist()] for m in MUSIC_METRICS}
    return frames


def musdb_json(frames: dict[str, dict[str, list[float]]], version: str) -> dict[str, Any]:
    """One track's frames in museval's JSON schema (``museval/musdb.schema.json``)."""
    return {
        "targets": [
            {
                "name": target,
                "frames": [
                    {
                        "time": index * WINDOW_SECONDS,
                        "duration": WINDOW_SECONDS,
                        "metrics": {metric: values[metric][index] for metric in ("SDR", "SIR", "SAR", "ISR")},
                    }
                    for index in range(len(values["SDR"]))
                ],
            }
            for target, values in frames.items()
        ],
        "museval_version": version,
    }


def read_musdb_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A museval-format track JSON -> ``{"frames": target -> metric -> values, "version": str}``."""
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    frames = {
        target["name"]: {
            metric: [float(frame["metrics"][metric]) for frame in target["frames"]]
            for metric in MUSIC_METRICS
        }
        for target in document["targets"]
    }
    return {"frames": frames, "version": document.get("museval_version", "")}


def museval_groups(targets: list[str]) -> list[tuple[list[str], set[str]]]:
    """(targets evaluated together, targets reported from that run), as museval's eval_mus_track."""
    has_pair = "vocals" in targets and "accompaniment" in targets
    rest = [name for name in targets if name != "accompaniment"] if has_pair else list(targets)
    groups = []
    if len(rest) >= 2:
        groups.append((rest, set(rest) - ({"vocals"} if has_pair else set())))
    if has_pair:
        groups.append((["vocals", "accompaniment"], {"vocals", "accompaniment"}))
    return groups


def _quantize(value: float) -> float:
    """museval's JSON values: 5 decimals, infinities as NaN."""
    return round(value, 5) if math.isfinite(value) else float("nan")
