"""``separate eval``: score a model or a folder of estimates on MUSDB18 or a speech corpus."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

from separate.cli.common import (
    batch_size_option,
    console,
    device_option,
    emit_json,
    json_option,
    progress_bar,
    refine_option,
    segment_option,
    set_threads,
    shifts_option,
    tables,
    threads_option,
)

eval_app = typer.Typer(
    name="eval",
    help="Score separation quality: BSSEval v4 on MUSDB18 (SiSEC 2018), SI-SNRi/SDRi on speech.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

_MODEL_HELP = "Model to evaluate: registry name, .safetensors path or hf://org/repo/file."
_PATH_HELP = (
    "Inference path whose output is scored: fp32 | bf16 | int8 | compile | onnxruntime | onnxruntime-int8 "
    "(default fp32, eager)."
)
_JOBS_HELP = "Worker processes scoring items in parallel (each gets CPU threads / jobs torch threads)."


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


@eval_app.command("musdb")
def musdb(
    root: str = typer.Option(..., "--root", help="MUSDB18 (.stem.mp4) or MUSDB18-HQ (wav folders) root."),
    subset: str = typer.Option(
        "test",
        "--subset",
        help="test | train | valid (musdb's validation tracks, or the songs a corpus.json lists).",
    ),
    model: str = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    estimates: str = typer.Option(
        None,
        "--estimates",
        help="Folder of estimates: <subset>/<track>/<target>.wav or <track>/<target>.wav.",
    ),
    backend: str = typer.Option("torch", "--backend", help="torch (ours, vectorised) | museval (reference)."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help=_JOBS_HELP),
    out: str = typer.Option(None, "--out", "-o", help="Write <out>/<subset>/<track>.json and summary.json."),
    path: str = typer.Option("fp32", "--path", help=_PATH_HELP),
    segment: float = segment_option,
    batch_size: int = batch_size_option,
    refine: bool = refine_option,
    shifts: int = shifts_option,
    device: str = device_option,
    threads: int = threads_option,
    as_json: bool = json_option,
) -> None:
    """MUSDB18: BSSEval v4, median over 1 s frames per track, then median over tracks (and pooled)."""
    from separate.evaluation import evaluate_musdb

    set_threads(threads)
    options = {"root": root, "subset": subset, "backend": backend, "device": device, "jobs": jobs, "out": out}
    engine = {"segment": segment, "batch_size": batch_size, "path": path, "refine": refine, "shifts": shifts}
    report = _run(evaluate_musdb, "tracks", model, estimates, engine, options)
    _show(report, as_json, _music_table)


@eval_app.command("speech")
def speech(
    root: str = typer.Option(
        ..., "--root", help="Dataset root (the folder holding tr/cv/tt, or LibriMix wav*/min)."
    ),
    layout: str = typer.Option(..., "--layout", help="wsj0mix | wham | lrs2mix | librimix | folder"),
    split: str = typer.Option(None, "--split", help="Split to score (default: the layout's test split)."),
    task: str = typer.Option(None, "--task", help="WHAM!/LibriMix task, e.g. sep_clean, sep_noisy."),
    model: str = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    estimates: str = typer.Option(
        None, "--estimates", help="Folder of estimates: <utterance>/<any>.wav or s1..sJ/<utterance>.wav."
    ),
    oracle: str = typer.Option(
        None, "--oracle", help="Score an oracle mask instead of a model: irm (ideal ratio) | ibm (binary)."
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help=_JOBS_HELP),
    out: str = typer.Option(None, "--out", "-o", help="Write <out>/utterances.csv and summary.json."),
    no_sdr: bool = typer.Option(False, "--no-sdr", help="Skip BSSEval SDR/SDRi (SI-SNR only, much faster)."),
    path: str = typer.Option("fp32", "--path", help=_PATH_HELP),
    segment: float = segment_option,
    batch_size: int = batch_size_option,
    refine: bool = refine_option,
    shifts: int = shifts_option,
    device: str = device_option,
    threads: int = threads_option,
    as_json: bool = json_option,
) -> None:
    """Speech: SI-SNR, SI-SNRi, SDR, SDRi per utterance (best assignment), mean/median/95 % CI; with
    --oracle, the same scores of an oracle mask (how far a model is from it on the same data)."""
    from separate.evaluation import evaluate_speech

    set_threads(threads)
    options = {
        "root": root,
        "layout": layout,
        "split": split,
        "device": device,
        "jobs": jobs,
        "out": out,
        "with_sdr": not no_sdr,
        "dataset_options": {"task": task} if task else None,
        "oracle": oracle,
    }
    engine = {"segment": segment, "batch_size": batch_size, "path": path, "refine": refine, "shifts": shifts}
    report = _run(evaluate_speech, "utterances", model, estimates, engine, options)
    _show(report, as_json, lambda shown: _speech_table(shown, oracle))


def _run(
    evaluate: Callable[..., Any],
    unit: str,
    model: str | None,
    estimates: str | None,
    engine: dict[str, Any],
    options: dict[str, Any],
) -> Any:
    """Score a model or a folder of estimates with ``evaluate``, showing a progress bar over ``unit``.

    ``engine``: the separator's ``segment``, ``batch_size``, ``path`` (a label, checked here),
    ``refine`` and ``segment`` (None: the registry entry's) and ``shifts``."""
    from separate.checkpoints import separator_defaults

    loaded = _load_model(model, estimates, options)
    refine, segment = separator_defaults(model, engine["refine"], engine["segment"])
    separator_options = {
        **engine,
        "path": _path(loaded, engine["path"], options["device"]),
        "refine": refine,
        "segment": segment,
    }
    with _progress(unit) as progress:
        return evaluate(
            **options,
            model=loaded,
            estimates=estimates,
            progress=progress,
            separator_options=separator_options,
        )


def _path(model: Any, label: str, device: str) -> Any:
    """The :class:`~separate.fastpath.FastPath` of ``label``; one that cannot run here is an error."""
    from separate.fastpath import FastPath, require
    from separate.runtime import select_device

    return FastPath.parse(label) if model is None else require(model, label, select_device(device))


def _show(report: Any, as_json: bool, table: Callable[[dict[str, Any]], None]) -> None:
    """Print a finished report as JSON or a table; ranks other than 0 (incomplete reports) stay quiet."""
    if not report.complete:
        return
    if as_json:
        emit_json(report.to_dict())
    else:
        table(report.to_dict())


def _load_model(model: str | None, estimates: str | None, options: dict[str, Any]) -> Any:
    """The model to evaluate (None for estimates or an oracle); exactly one of them must be given."""
    from separate.errors import SeparateError

    inputs = {"--model": model, "--estimates": estimates}
    if "oracle" in options:
        inputs["--oracle"] = options["oracle"]
    given = [name for name, value in inputs.items() if value is not None]
    if len(given) != 1:
        names = list(inputs)
        got = f" (got {' and '.join(given)})" if given else ""
        raise SeparateError(f"give exactly one of {', '.join(names[:-1])} and {names[-1]}{got}")
    if model is None:
        return None
    from separate.checkpoints import load_model

    return load_model(model)


@contextmanager
def _progress(unit: str) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar on stderr, advanced by the evaluation's per-item callback."""
    with progress_bar(counter="of", disable=not console.is_terminal) as bar:
        task_id = bar.add_task(f"scoring {unit}", total=None)

        def advance(name: str, done: int, total: int) -> None:
            bar.update(task_id, completed=done, total=total, description=f"scoring {unit}: {name[:40]}")

        yield advance


def _music_table(report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"MUSDB18 {report['subset']} ({len(report['tracks'])} tracks, {report['backend']})")
    table.add_column("target")
    for metric in ("SDR", "SIR", "ISR", "SAR"):
        table.add_column(metric, justify="right")
    table.add_column("SDR pooled", justify="right")
    for target, values in report["sisec18"].items():
        cells = [f"{values[m]:.2f}" for m in ("SDR", "SIR", "ISR", "SAR")]
        table.add_row(target, *cells, f"{report['pooled'][target]['SDR']:.2f}")
    tables.print(table)
    tables.print("median over 1 s frames per track, then over tracks (SiSEC 2018); pooled: over all frames")


def _speech_table(report: dict[str, Any], oracle: str | None = None) -> None:
    from rich.table import Table

    kind = {"irm": "oracle ideal ratio mask, ", "ibm": "oracle ideal binary mask, "}.get(oracle or "", "")
    table = Table(title=f"{kind}{report['utterances']} utterances")
    for column in ("metric", "mean", "median", "95 % CI of the mean"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for metric, stats in report["summary"].items():
        interval = f"[{_db(stats['ci_low'])}, {_db(stats['ci_high'])}]" if stats["count"] > 1 else "n/a"
        table.add_row(metric, _db(stats["mean"]), _db(stats["median"]), interval)
    tables.print(table)
    pairs = report.get("speaker_pairs")
    if pairs:
        low, high = pairs["lowest"], pairs["highest"]
        tables.print(
            f"per speaker pair ({len(pairs['groups'])} pairs): {pairs['metric']} means from "
            f"{_db(low['mean'])} ({low['group']}) to {_db(high['mean'])} ({high['group']}), "
            f"standard deviation {_db(pairs['std_of_means'])}",
            highlight=False,
        )


def _db(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "n/a"
