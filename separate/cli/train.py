"""``separate train RECIPE.toml``: train a model from a recipe; ``--resume`` continues a run.

Several processes: ``torchrun --nproc_per_node N -m separate train RECIPE.toml`` (DDP; rank 0 prints
and writes).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import typer

from separate.cli.common import (
    console,
    device_option,
    emit_json,
    json_option,
    progress_bar,
    set_threads,
    threads_option,
)

if TYPE_CHECKING:
    from rich.progress import Progress


def train(
    recipe: str = typer.Argument(..., help="Recipe TOML (examples/recipes/*.toml) or a run's config.json."),
    overrides: list[str] = typer.Option(
        None,
        "--set",
        help="Override a recipe value, KEY=VALUE with a dotted key (repeatable): --set train.lr=5e-4",
    ),
    out: str = typer.Option(None, "--out", "-o", help="Run folder (default: runs/<recipe name>)."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run in --out from its last saved state (starts it if there is none).",
    ),
    check: bool = typer.Option(
        False,
        "--check",
        help="Resolve the recipe, build its model and loss, check its data options; train nothing.",
    ),
    device: str = device_option,
    threads: int = threads_option,
    as_json: bool = json_option,
) -> None:
    """Train a separation model from a recipe; writes config, log, states and model.safetensors to --out."""
    from separate.runtime import rank_and_world
    from separate.training import check_recipe
    from separate.training import train as run_training

    set_threads(threads)
    overrides = list(overrides or [])
    if check:
        _show_check(check_recipe(recipe, overrides), as_json)
        return
    main_process = rank_and_world()[0] == 0
    reporter = RichReporter(main_process)
    try:
        summary = run_training(recipe, overrides, out=out, resume=resume, device=device, reporter=reporter)
    finally:
        reporter.close()
    if not main_process:
        return
    if as_json:
        emit_json(summary)
        return
    from rich.markup import escape

    best = summary["best"]
    console.print(
        f"[bold]done[/bold]: {summary['epochs']} epochs ({summary['stopped'].replace('_', ' ')}), "
        f"best epoch {summary['best_epoch']}: valid loss {_fmt(best['valid_loss'])}, "
        f"SI-SNRi {_fmt(best['valid_si_snri'])} dB; model: {escape(summary['model'])}"
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _show_check(checked: dict[str, Any], as_json: bool) -> None:
    from separate.bench.complexity import count_parameters

    model, config = checked["model"], checked["config"]
    parameters = count_parameters(model) + count_parameters(checked["loss"])
    if as_json:
        emit_json({"config": config, "parameters": parameters, "architecture": type(model).architecture})
        return
    paper = config["paper"]
    lines = [f"{config['recipe']['name']}: {type(model).architecture}, {parameters:,} parameters"]
    if paper:
        lines.append(
            f"paper: {paper.get('name', '?')}, table {paper.get('table', '?')}, row {paper.get('row', '?')}"
        )
        lines.append(f"expected: {paper.get('expected', {})}")
    data = config["data"]
    lines.append(f"data: {data['layout']} at {data['root'] or '(generated)'}, batch {data['batch_size']}")
    lines.append(f"loss: {config['loss']}")
    lines.append(f"train: {config['train']}")
    for line in lines:
        console.print(line, markup=False, highlight=False)


class RichReporter:
    """A :class:`separate.training.Reporter` for the terminal: a progress bar per epoch (on a terminal
    only) and one line per epoch; with ``enabled=False`` (ranks other than 0) it shows nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.progress: Progress | None = None
        self.task: Any = None
        self.examples = 0
        self.started = 0.0

    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None:
        if not self.enabled or not console.is_terminal:
            return
        if self.progress is None:
            self.progress = progress_bar(
                "epoch {task.fields[epoch]}",
                counter="of",
                extra="loss {task.fields[loss]:.3f}  {task.fields[speed]:.1f} ex/s",
            )
            self.progress.start()
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(
            "train", total=steps, epoch=f"{epoch}/{epochs}", loss=0.0, speed=0.0
        )
        self.examples, self.started = 0, time.perf_counter()

    def step_done(self, loss: float, examples: int) -> None:
        if self.progress is None or self.task is None:
            return
        self.examples += examples
        speed = self.examples / max(time.perf_counter() - self.started, 1e-9)
        self.progress.update(self.task, advance=1, loss=loss, speed=speed)

    def epoch_done(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        mark = " [green]best[/green]" if record["best"] else ""
        console.print(
            f"epoch {record['epoch']}: train {record['train_loss']:.3f}, "
            f"valid {record['valid_loss']:.3f}, SI-SNRi {record['valid_si_snri']:.2f} dB, "
            f"lr {record['lr']:.3g}, {record['seconds']:.1f} s{mark}"
        )

    def message(self, text: str) -> None:
        if self.enabled:
            console.print(text, markup=False)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def register(app: typer.Typer) -> None:
    app.command("train", no_args_is_help=True)(train)
