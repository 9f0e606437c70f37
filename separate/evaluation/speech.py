"""Speech: SI-SNR(i) and SDR(i) per utterance with the best assignment, and the corpus evaluation.

Scores (SPEC §1.6): estimates are matched to references by the Hungarian algorithm on the pairwise
SI-SNR matrix (:mod:`separate.measures`), then per source

* SI-SNR (zero-mean, SPEC §1.1) and SI-SNRi = SI-SNR(estimate) - SI-SNR(mixture);
* SDR = BSSEval ``bss_eval_sources`` SDR (512-tap distortion filter, whole utterance, as mir_eval
  and museval compute it; see :mod:`separate.evaluation.bsseval`) and SDRi = SDR(estimate) - SDR(mixture
  used as the estimate of every source).

:func:`evaluate_speech` scores a model or a folder of estimates on a corpus (wsj0mix, librimix,
folder...): ``out/utterances.csv`` (one row per utterance) and ``out/summary.json`` (mean, median and
95 % interval of the mean per metric, and SI-SNRi per speaker pair where the mixture names code the
speakers: :func:`by_speaker_pair`). ``oracle="irm"|"ibm"`` scores the oracle masks of
:mod:`separate.evaluation.oracle` instead, through the same path. Without SDR (``with_sdr=False``)
the SDR columns and metrics are left out.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from separate.audio import AUDIO_EXTENSIONS
from separate.errors import SeparateError
from separate.evaluation import runner
from separate.evaluation.bsseval import bss_eval
from separate.evaluation.oracle import ORACLES, oracle_estimates
from separate.evaluation.reports import SpeechReport, read_csv, write_csv, write_json
from separate.measures import hungarian, pairwise_si_snr, si_snr
from separate.runtime import barrier_is_rank0, rank_and_world

SPEECH_METRICS = ("si_snr", "si_snri", "sdr", "sdri")
SDR_FIELDS = ("sdr", "sdri", "input_sdr")
SPEECH_LAYOUTS = ("wsj0mix", "wham", "lrs2mix", "librimix", "folder")
_DEFAULT_SPEECH_SPLIT = {"wsj0mix": "tt", "wham": "tt", "lrs2mix": "tt", "librimix": "test", "folder": None}
_SPEECH_COLUMNS = ("utterance", *SPEECH_METRICS, "input_si_snr", "input_sdr", "assignment")


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


def by_speaker_pair(
    rows: Sequence[dict[str, Any]], speakers: dict[str, tuple[str, ...] | None], metric: str = "si_snri"
) -> dict[str, Any]:
    """``metric`` per group of speakers (``a+b``, names sorted): mean and count per group, and the
    spread of the group means (lowest, highest, standard deviation). Empty when the corpus does not
    code its speakers.
    """
    groups: dict[str, list[float]] = {}
    for row in rows:
        voices = speakers.get(row["utterance"])
        if voices is None:
            return {}
        groups.setdefault("+".join(sorted(voices)), []).append(float(row[metric]))
    means = {
        group: {"mean": float(np.nanmean(values)), "count": len(values)}
        for group, values in sorted(groups.items())
        if not all(math.isnan(v) for v in values)
    }
    if not means:
        return {}
    ranked = sorted(means, key=lambda group: means[group]["mean"])
    values = [means[group]["mean"] for group in ranked]
    return {
        "metric": metric,
        "groups": means,
        "lowest": {"group": ranked[0], "mean": values[0]},
        "highest": {"group": ranked[-1], "mean": values[-1]},
        "std_of_means": float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"),
    }


def evaluate_speech(
    root: str | os.PathLike[str],
    layout: str,
    *,
    split: str | None = None,
    model: Any = None,
    estimates: str | os.PathLike[str] | None = None,
    device: str = "auto",
    jobs: int = 1,
    out: str | os.PathLike[str] | None = None,
    with_sdr: bool = True,
    progress: runner.Progress | None = None,
    dataset_options: dict[str, Any] | None = None,
    separator_options: dict[str, Any] | None = None,
    oracle: str | None = None,
) -> SpeechReport:
    """Score a model, a folder of estimates or an oracle mask on a speech corpus (wsj0mix, librimix...).

    ``split`` defaults to the layout's test split (``tt`` / ``test``; the root itself for
    ``folder``). Estimates: ``DIR/<utterance>/<any name>.wav`` (one file per source, as
    ``separate audio`` writes them) or ``DIR/s1..sJ/<utterance>.wav``. ``oracle``: ``irm`` or
    ``ibm`` (:func:`separate.evaluation.oracle.oracle_estimates`), instead of a model or estimates.
    """
    if layout not in SPEECH_LAYOUTS:
        raise SeparateError(f"unknown speech layout '{layout}' (known: {', '.join(SPEECH_LAYOUTS)})")
    if oracle is not None and oracle not in ORACLES:
        raise SeparateError(f"unknown oracle '{oracle}' (known: {', '.join(ORACLES)})")
    if sum(x is not None for x in (model, estimates, oracle)) != 1:
        raise SeparateError("give exactly one of a model, an estimates folder and an oracle to evaluate")
    columns = _columns(with_sdr)
    runner.clear_datasets()
    root = str(runner.require_dir(root, "dataset root"))
    split = split if split is not None else _DEFAULT_SPEECH_SPLIT[layout]
    dataset = runner.ReferenceSet(layout, root, split, tuple(sorted((dataset_options or {}).items())))
    references = dataset.build()
    names = [references.item_name(i) for i in range(len(references))]
    n_src = len(references.sources)
    if model is not None and len(model.sources) != n_src:
        raise SeparateError(
            f"the model separates {len(model.sources)} sources but the {layout} mixtures in {root} "
            f"have {n_src}"
        )
    if model is not None or oracle is not None:
        estimate_files: list[tuple[str, ...] | None] = [None] * len(names)
    else:
        estimate_files = list(_speech_estimate_files(runner.require_dir(estimates), names, n_src))
    rank, world = rank_and_world()
    metrics_device = runner.scoring_device(device, jobs, rank)
    tasks = [
        runner.Task(
            dataset,
            i,
            name,
            tuple(references.sources),
            files,
            device=metrics_device,
            with_sdr=with_sdr,
            oracle=oracle,
        )
        for i, (name, files) in enumerate(zip(names, estimate_files, strict=True))
    ]
    produce = runner.separating(model, device, separator_options, rank) if model is not None else None
    rows = [
        row for _, row in runner.run_items(tasks[rank::world], _score_speech_task, produce, jobs, progress)
    ]
    complete = True
    if world > 1:
        if out is None:
            raise SeparateError(
                "under torchrun (WORLD_SIZE > 1) evaluation needs --out to merge per-rank files"
            )
        write_csv(Path(out, f"utterances.rank{rank}-of-{world}.csv"), rows, columns)
        complete = barrier_is_rank0()
        if complete:
            parts = [
                read_csv(Path(out, f"utterances.rank{r}-of-{world}.csv"), columns[1:-1]) for r in range(world)
            ]
            order = {name: i for i, name in enumerate(names)}
            rows = sorted((row for part in parts for row in part), key=lambda row: order[row["utterance"]])
    report = SpeechReport(rows=rows, complete=complete)
    metrics = [metric for metric in SPEECH_METRICS if metric in columns]
    report.summary = {metric: summarize([row[metric] for row in rows]) for metric in metrics}
    speakers = {item.name: item.speakers for item in references.items}
    report.pairs = by_speaker_pair(rows, speakers)
    if out is not None and complete:
        write_csv(Path(out, "utterances.csv"), rows, columns)
        write_json(Path(out, "summary.json"), report.to_dict())
    return report


def _columns(with_sdr: bool) -> tuple[str, ...]:
    """Columns of the per-utterance CSV: name, the scores, the assignment."""
    return tuple(column for column in _SPEECH_COLUMNS if with_sdr or column not in SDR_FIELDS)


def _speech_estimate_files(folder: Path, names: Sequence[str], n_src: int) -> list[tuple[str, ...]]:
    per_source = [folder / f"s{j + 1}" for j in range(n_src)]
    files = []
    for name in names:
        if (folder / name).is_dir():
            found = runner.audio_files(folder / name)
            paths = tuple(str(found[stem]) for stem in sorted(found))
            where = str(folder / name)
        else:
            candidates = (d / f"{name}{extension}" for d in per_source for extension in AUDIO_EXTENSIONS)
            paths = tuple(str(path) for path in candidates if path.is_file())
            where = f"{folder}/s1..s{n_src}/{name}.wav"
            if not paths:
                raise SeparateError(f"no estimates for utterance '{name}' ({folder / name} or {where})")
        if len(paths) != n_src:
            raise SeparateError(
                f"{where} holds {len(paths)} estimate file(s) but the mixtures have {n_src} sources"
            )
        files.append(paths)
    return files


def _score_speech_task(task: runner.Task, estimates: np.ndarray | None) -> tuple[str, dict[str, Any]]:
    """Worker: SI-SNR(i) and SDR(i) of one utterance as a CSV row."""
    dataset = task.dataset.build()
    mixture, references = dataset[task.index]
    if task.oracle is not None:
        estimates = oracle_estimates(mixture, references, dataset.sample_rate, task.oracle).numpy()
    elif estimates is None:
        estimates = runner.read_estimates(task, references.numpy(), dataset.sample_rate)
    try:
        scores = speech_scores(
            torch.from_numpy(np.ascontiguousarray(estimates)),
            references,
            mixture,
            with_sdr=task.with_sdr,
            device=task.device,
        )
    except SeparateError as error:
        raise SeparateError(f"utterance '{task.name}': {error}") from error
    row = {"utterance": task.name, **{m: getattr(scores, m) for m in _columns(task.with_sdr)[1:-1]}}
    row["assignment"] = " ".join(str(i) for i in scores.assignment)
    return task.name, row
