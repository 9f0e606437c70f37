"""Scoring models or estimate folders on MUSDB18 (SiSEC 2018 protocol) and on speech corpora.

Music (:func:`evaluate_musdb`): BSSEval v4 images with 1 s windows and hop and 512-tap filters per
track (:mod:`separate.bsseval`, or museval itself with ``backend="museval"``), targets grouped as
museval groups them (vocals and accompaniment form their own pair), one museval-format JSON per
track (``out/<subset>/<track>.json``, readable by museval's ``EvalStore.add_eval_dir``), and both
aggregations of SPEC §10 item 52 (:func:`separate.metrics.aggregate_music`) in ``out/summary.json``.

Speech (:func:`evaluate_speech`): SI-SNR, SI-SNRi, SDR, SDRi per utterance with the Hungarian
assignment (:func:`separate.metrics.speech_scores`), ``out/utterances.csv`` and a summary.

Items are scored in ``jobs`` worker processes. Under ``torchrun`` (``WORLD_SIZE`` > 1) each rank
takes every WORLD_SIZE-th item and writes its own per-item files; after a barrier (gloo) rank 0
reads them all back and writes the summary, so the merge needs no extra step.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from separate.audio import AUDIO_EXTENSIONS
from separate.errors import SeparateError
from separate.metrics import (
    MUSDB_TARGETS,
    SPEECH_METRICS,
    aggregate_music,
    musdb_frames,
    musdb_json,
    museval_groups,
    read_musdb_json,
    summarize,
    track_medians,
)
from separate.parallel import Progress, run_items
from separate.runtime import atomic_write, atomic_write_text, barrier_is_rank0, rank_and_world, rank_device

SPEECH_LAYOUTS = ("wsj0mix", "wham", "lrs2mix", "librimix", "folder")
_DEFAULT_SPEECH_SPLIT = {"wsj0mix": "tt", "wham": "tt", "lrs2mix": "tt", "librimix": "test", "folder": None}
_SPEECH_COLUMNS = ("utterance", *SPEECH_METRICS, "input_si_snr", "input_sdr", "assignment")

#: Called after each item: (item name, items done, items in total).


@dataclass
class MusicReport:
    """Per-track medians (track -> target -> metric) and the two aggregations over tracks."""

    subset: str
    backend: str
    tracks: dict[str, dict[str, dict[str, float]]]
    aggregate: dict[str, dict[str, dict[str, float]]]
    complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": "BSSEval v4 images, 1 s windows and hop, 512-tap filters (SiSEC 2018)",
            "subset": self.subset,
            "backend": self.backend,
            "complete": self.complete,
            "sisec18": self.aggregate["sisec18"],
            "pooled": self.aggregate["pooled"],
            "tracks": self.tracks,
        }


@dataclass
class SpeechReport:
    """One row per utterance and a summary (metric -> mean, median, 95 % interval of the mean)."""

    rows: list[dict[str, Any]]
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"utterances": len(self.rows), "complete": self.complete, "summary": self.summary}


@dataclass(frozen=True)
class _Dataset:
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


_DATASETS: dict[_Dataset, Any] = {}


@dataclass(frozen=True)
class _Task:
    """One item to score: its place in the dataset, estimate files (or None: arrays are given)."""

    dataset: _Dataset
    index: int
    name: str
    sources: tuple[str, ...]
    estimate_files: tuple[str, ...] | None
    backend: str = "torch"
    device: str = "cpu"
    json_path: str | None = None
    with_sdr: bool = True


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
    progress: Progress | None = None,
    separator_options: dict[str, Any] | None = None,
) -> MusicReport:
    """Score a model (a :class:`SeparationModel`) or a folder of estimates on MUSDB18 / MUSDB18-HQ.

    ``root`` holds ``{train,test}/<track>/{mixture,drums,bass,other,vocals}.wav`` (HQ) or
    ``{train,test}/*.stem.mp4``; ``subset`` is ``test``, ``train`` or ``valid`` (musdb's split of
    the training tracks). Estimates: ``DIR/<test|train>/<track>/<target>.wav`` (museval's layout)
    or ``DIR/<track>/<target>.wav``, targets among :data:`MUSDB_TARGETS`, same length, rate and
    channels as the references.
    """
    from separate.bsseval import BACKENDS

    _DATASETS.clear()
    if backend not in BACKENDS:
        raise SeparateError(f"unknown BSSEval backend '{backend}' (known: {', '.join(BACKENDS)})")
    layout, root = _musdb_layout(root)
    folder = "test" if subset in ("test", "tt") else "train"
    names = _musdb_track_names(layout, root, subset)
    if model is not None:
        targets = _music_targets(model.sources, f"the model's sources {model.sources}")
        estimate_files: list[tuple[str, ...] | None] = [None] * len(names)
    else:
        targets, estimate_files = _music_estimate_files(_require_dir(estimates), folder, names)
    dataset = _Dataset(layout, root, subset, (("targets", tuple(targets)),))
    rank, world = rank_and_world()
    metrics_device = _metrics_device(device, jobs, rank)
    json_dir = Path(out, folder) if out is not None else None
    tasks = [
        _Task(dataset, i, name, tuple(targets), files, backend, metrics_device, _json_path(json_dir, name))
        for i, (name, files) in enumerate(zip(names, estimate_files, strict=True))
    ]
    produce = _separating(model, device, separator_options, rank) if model is not None else None
    frames = dict(run_items(tasks[rank::world], _score_music_task, produce, jobs, progress))
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
        _write_json(Path(out, "summary.json"), report.to_dict())
    return report


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
    progress: Progress | None = None,
    dataset_options: dict[str, Any] | None = None,
    separator_options: dict[str, Any] | None = None,
) -> SpeechReport:
    """Score a model or a folder of estimates on a speech corpus (wsj0mix, librimix, folder...).

    ``split`` defaults to the layout's test split (``tt`` / ``test``; the root itself for
    ``folder``). Estimates: ``DIR/<utterance>/<any name>.wav`` (one file per source, as
    ``separate audio`` writes them) or ``DIR/s1..sJ/<utterance>.wav``.
    """
    if layout not in SPEECH_LAYOUTS:
        raise SeparateError(f"unknown speech layout '{layout}' (known: {', '.join(SPEECH_LAYOUTS)})")
    _DATASETS.clear()
    root = str(_require_dir(root, "dataset root"))
    split = split if split is not None else _DEFAULT_SPEECH_SPLIT[layout]
    dataset = _Dataset(layout, root, split, tuple(sorted((dataset_options or {}).items())))
    references = dataset.build()
    names = [references.item_name(i) for i in range(len(references))]
    n_src = len(references.sources)
    if model is not None:
        if len(model.sources) != n_src:
            raise SeparateError(
                f"the model separates {len(model.sources)} sources but the {layout} mixtures in {root} "
                f"have {n_src}"
            )
        estimate_files: list[tuple[str, ...] | None] = [None] * len(names)
    else:
        estimate_files = list(_speech_estimate_files(_require_dir(estimates), names, n_src))
    rank, world = rank_and_world()
    metrics_device = _metrics_device(device, jobs, rank)
    tasks = [
        _Task(dataset, i, name, tuple(references.sources), files, device=metrics_device, with_sdr=with_sdr)
        for i, (name, files) in enumerate(zip(names, estimate_files, strict=True))
    ]
    produce = _separating(model, device, separator_options, rank) if model is not None else None
    rows = [row for _, row in run_items(tasks[rank::world], _score_speech_task, produce, jobs, progress)]
    complete = True
    if world > 1:
        if out is None:
            raise SeparateError(
                "under torchrun (WORLD_SIZE > 1) evaluation needs --out to merge per-rank files"
            )
        _write_csv(Path(out, f"utterances.rank{rank}-of-{world}.csv"), rows)
        complete = barrier_is_rank0()
        if complete:
            parts = [_read_csv(Path(out, f"utterances.rank{r}-of-{world}.csv")) for r in range(world)]
            order = {name: i for i, name in enumerate(names)}
            rows = sorted((row for part in parts for row in part), key=lambda row: order[row["utterance"]])
    report = SpeechReport(rows=rows, complete=complete)
    report.summary = {metric: summarize([row[metric] for row in rows]) for metric in SPEECH_METRICS}
    if out is not None and complete:
        _write_csv(Path(out, "utterances.csv"), rows)
        _write_json(Path(out, "summary.json"), report.to_dict())
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
    path = _require_dir(root, "MUSDB18 root")
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
    dataset = _Dataset(layout, root, subset, (("targets", ("vocals", "accompaniment")),)).build()
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
        found = _audio_files(track_dir)
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


def _speech_estimate_files(folder: Path, names: Sequence[str], n_src: int) -> list[tuple[str, ...]]:
    per_source = [folder / f"s{j + 1}" for j in range(n_src)]
    files = []
    for name in names:
        if (folder / name).is_dir():
            found = _audio_files(folder / name)
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


def _audio_files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in AUDIO_EXTENSIONS}


def _score_music_task(
    task: _Task, estimates: np.ndarray | None
) -> tuple[str, dict[str, dict[str, list[float]]]]:
    """Worker: BSSEval frames of one track; writes its JSON when asked."""
    dataset = task.dataset.build()
    _, references = dataset[task.index]
    references = references.numpy()
    if estimates is None:
        estimates = _read_estimates(task, references, dataset.sample_rate)
    try:
        frames = musdb_frames(
            references, estimates, task.sources, dataset.sample_rate, task.backend, task.device
        )
    except SeparateError as error:
        raise SeparateError(f"track '{task.name}': {error}") from error
    if task.json_path is not None:
        _write_json(Path(task.json_path), musdb_json(frames, _version_string(task.backend)))
    return task.name, frames


def _score_speech_task(task: _Task, estimates: np.ndarray | None) -> tuple[str, dict[str, Any]]:
    """Worker: SI-SNR(i) and SDR(i) of one utterance as a CSV row."""
    import torch

    from separate.metrics import speech_scores

    dataset = task.dataset.build()
    mixture, references = dataset[task.index]
    if estimates is None:
        estimates = _read_estimates(task, references.numpy(), dataset.sample_rate)
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
    row = {"utterance": task.name, **{m: getattr(scores, m) for m in _SPEECH_COLUMNS[1:-1]}}
    row["assignment"] = " ".join(str(i) for i in scores.assignment)
    return task.name, row


def _read_estimates(task: _Task, references: np.ndarray, rate: int) -> np.ndarray:
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


def _separating(
    model: Any, device: str, options: dict[str, Any] | None, rank: int
) -> Callable[[_Task], np.ndarray]:
    """The main process's step for model evaluation: separate the item's mixture with the engine."""
    from separate.engine import Separator

    separator = Separator(model, rank_device(device, rank), **(options or {}))

    def separate(task: _Task) -> np.ndarray:
        dataset = task.dataset.build()
        mixture, _ = dataset[task.index]
        return separator.separate_tensor(mixture, dataset.sample_rate).numpy()  # [S, C, T], model order

    return separate


def _metrics_device(device: str, jobs: int, rank: int) -> str:
    """Where BSSEval runs: the evaluation device when one process scores, the CPU for worker pools."""
    return "cpu" if jobs > 1 else rank_device(device, rank)


def _require_dir(path: str | os.PathLike[str] | None, what: str = "--estimates folder") -> Path:
    if path is None:
        raise SeparateError("give either a model or an estimates folder to evaluate")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise SeparateError(f"{what} {folder} is not a folder")
    return folder


def _json_path(folder: Path | None, name: str) -> str | None:
    return None if folder is None else str(folder / f"{name}.json")


def _version_string(backend: str) -> str:
    from separate import __version__

    if backend == "museval":
        from museval.version import _version

        return str(_version)
    return f"separate {__version__} (torch BSSEval v4, museval-compatible)"


def _write_json(path: Path, document: Any) -> None:
    atomic_write_text(path, json.dumps(document, indent=2, allow_nan=True) + "\n", encoding="utf-8")


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with atomic_write(path) as partial, open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=_SPEECH_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _read_csv(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for column in _SPEECH_COLUMNS[1:-1]:
            row[column] = float(row[column])
    return rows
