"""Music: MUSDB18's BSSEval v4 protocol (SiSEC 2018), and the MUSDB18 evaluation.

Scores (SPEC §1.6, §10 item 52): BSSEval v4 images with 1 s windows and hop and 512-tap filters per
track (:mod:`separate.evaluation.bsseval`, or museval itself with ``backend="museval"``), targets
grouped as museval's ``eval_mus_track`` groups them (vocals and accompaniment form their own pair,
:func:`museval_groups`), stored in museval's JSON format (:func:`musdb_json`), and aggregated two ways
(:func:`aggregate_music`): SiSEC 2018 (median over frames per track, then median over tracks) and
pooled (median over all frames of all tracks, as Wave-U-Net reports). NaN frames are skipped, as
museval's pandas medians skip them.

:func:`evaluate_musdb` scores a model or a folder of estimates: one museval-format JSON per track
(``out/<subset>/<track>.json``, readable by museval's ``EvalStore.add_eval_dir``) and both
aggregations in ``out/summary.json``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from separate.errors import SeparateError
from separate.evaluation import runner
from separate.evaluation.bsseval import BACKENDS, bss_eval
from separate.evaluation.reports import MusicReport, write_json
from separate.runtime import barrier_is_rank0, rank_and_world

MUSIC_METRICS = ("SDR", "SIR", "ISR", "SAR")
MUSDB_TARGETS = ("vocals", "drums", "bass", "other", "accompaniment")
#: BSSEval v4 window and hop on MUSDB18 (museval's ``win=1.0, hop=1.0``).
WINDOW_SECONDS = 1.0


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


def evaluate_musdb(
    root: str | os.PathLike[str],
    subset: str = "test",
    *,
    model: Any = None,
    estimates: str | os.PathLike[str] | None = None,
    backend: str = "torch",
    device: str = "auto",
    jobs: int = 1,
    out: str | os.PathLike[str] | None = None,
    progress: runner.Progress | None = None,
    separator_options: dict[str, Any] | None = None,
) -> MusicReport:
    """Score a model (a :class:`SeparationModel`) or a folder of estimates on MUSDB18 / MUSDB18-HQ.

    ``root`` holds ``{train,test}/<track>/{mixture,drums,bass,other,vocals}.wav`` (HQ) or
    ``{train,test}/*.stem.mp4``; ``subset`` is ``test``, ``train`` or ``valid`` (musdb's split of
    the training tracks). Estimates: ``DIR/<test|train>/<track>/<target>.wav`` (museval's layout)
    or ``DIR/<track>/<target>.wav``, targets among :data:`MUSDB_TARGETS`, same length, rate and
    channels as the references.
    """
    runner.clear_datasets()
    if backend not in BACKENDS:
        raise SeparateError(f"unknown BSSEval backend '{backend}' (known: {', '.join(BACKENDS)})")
    layout, root = _musdb_layout(root)
    folder = "test" if subset in ("test", "tt") else "train"
    names = _musdb_track_names(layout, root, subset)
    if model is not None:
        targets = _music_targets(model.sources, f"the model's sources {model.sources}")
        estimate_files: list[tuple[str, ...] | None] = [None] * len(names)
    else:
        targets, estimate_files = _music_estimate_files(runner.require_dir(estimates), folder, names)
    dataset = runner.ReferenceSet(layout, root, subset, (("targets", tuple(targets)),))
    rank, world = rank_and_world()
    metrics_device = runner.scoring_device(device, jobs, rank)
    json_dir = Path(out, folder) if out is not None else None
    tasks = [
        runner.Task(
            dataset, i, name, tuple(targets), files, backend, metrics_device, _json_path(json_dir, name)
        )
        for i, (name, files) in enumerate(zip(names, estimate_files, strict=True))
    ]
    produce = runner.separating(model, device, separator_options, rank) if model is not None else None
    frames = dict(runner.run_items(tasks[rank::world], _score_music_task, produce, jobs, progress))
    complete = True
    if world > 1:
        if json_dir is None:
            raise SeparateError(
                "under torchrun (WORLD_SIZE > 1) evaluation needs --out to merge per-track files"
            )
        complete = barrier_is_rank0()
        if complete:
            frames = {task.name: read_musdb_json(task.json_path)["frames"] for task in tasks}
    report = MusicReport(
        subset=subset,
        backend=backend,
        tracks={name: track_medians(track) for name, track in frames.items()},
        aggregate=aggregate_music(frames),
        complete=complete,
    )
    if out is not None and complete:
        write_json(Path(out, "summary.json"), report.to_dict())
    return report


def _music_targets(names: Sequence[str], what: str) -> list[str]:
    unknown = [name for name in names if name not in MUSDB_TARGETS]
    if unknown:
        raise SeparateError(f"{what} do not match the MUSDB18 targets ({', '.join(MUSDB_TARGETS)})")
    if not museval_groups(list(names)):
        raise SeparateError(
            f"{what} cannot be scored with BSSEval: it needs at least two targets other than "
            "accompaniment, or vocals and accompaniment"
        )
    return list(names)


def _musdb_layout(root: str | os.PathLike[str]) -> tuple[str, str]:
    path = runner.require_dir(root, "MUSDB18 root")
    for subset in ("test", "train"):
        folder = path / subset
        if not folder.is_dir():
            continue
        if any(entry.name.endswith(".stem.mp4") for entry in folder.iterdir()):
            return "musdb", str(path)
        if any((entry / "mixture.wav").is_file() for entry in folder.iterdir() if entry.is_dir()):
            return "musdbhq", str(path)
    raise SeparateError(
        f"{path} is not a MUSDB18 folder: expected {path}/{{train,test}}/<track>/"
        "{mixture,drums,bass,other,vocals}.wav (MUSDB18-HQ) or {train,test}/*.stem.mp4 (MUSDB18)"
    )


def _musdb_track_names(layout: str, root: str, subset: str) -> list[str]:
    dataset = runner.ReferenceSet(layout, root, subset, (("targets", ("vocals", "accompaniment")),)).build()
    return [dataset.item_name(i) for i in range(len(dataset))]


def _music_estimate_files(
    folder: Path, subset_folder: str, names: Sequence[str]
) -> tuple[list[str], list[tuple[str, ...]]]:
    base = folder / subset_folder if (folder / subset_folder).is_dir() else folder
    targets: list[str] | None = None
    files = []
    for name in names:
        track_dir = base / name
        if not track_dir.is_dir():
            raise SeparateError(f"no estimates for track '{name}': {track_dir} is not a folder")
        found = runner.audio_files(track_dir)
        if targets is None:
            targets = _music_targets(sorted(found), f"estimate files {sorted(found)} in {track_dir}")
        if sorted(found) != sorted(targets):
            raise SeparateError(
                f"{track_dir} holds estimates {sorted(found)} but other tracks hold {sorted(targets)}"
            )
        files.append(tuple(str(found[target]) for target in targets))
    if targets is None:
        raise SeparateError(f"no MUSDB18 tracks to evaluate under {base}")
    return targets, files


def _score_music_task(
    task: runner.Task, estimates: np.ndarray | None
) -> tuple[str, dict[str, dict[str, list[float]]]]:
    """Worker: BSSEval frames of one track; writes its JSON when asked."""
    dataset = task.dataset.build()
    _, references = dataset[task.index]
    references = references.numpy()
    if estimates is None:
        estimates = runner.read_estimates(task, references, dataset.sample_rate)
    try:
        frames = musdb_frames(
            references, estimates, task.sources, dataset.sample_rate, task.backend, task.device
        )
    except SeparateError as error:
        raise SeparateError(f"track '{task.name}': {error}") from error
    if task.json_path is not None:
        write_json(Path(task.json_path), musdb_json(frames, _version_string(task.backend)))
    return task.name, frames


def _json_path(folder: Path | None, name: str) -> str | None:
    return None if folder is None else str(folder / f"{name}.json")


def _version_string(backend: str) -> str:
    from separate import __version__

    if backend == "museval":
        from museval.version import _version

        return str(_version)
    return f"separate {__version__} (torch BSSEval v4, museval-compatible)"
