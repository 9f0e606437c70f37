"""``separate train RECIPE.toml``: train a model from a recipe; ``--resume`` continues a run;
``--export RUN -o MODEL.safetensors`` turns a run's state into a release checkpoint.

Several processes: ``torchrun --nproc_per_node N -m separate train RECIPE.toml`` (DDP; rank 0 prints
and writes). Ctrl-C or SIGTERM saves the state and exits with 130 or 143.
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

recipe_argument = typer.Argument(
    None, help="Recipe TOML (examples/recipes/*.toml) or a run's config.json (not with --export)."
)
overrides_option = typer.Option(
    None,
    "--set",
    help="Override a recipe value, KEY=VALUE with a dotted key (repeatable): --set train.lr=5e-4",
)
out_option = typer.Option(
    None, "--out", "-o", help="Run folder (default: runs/<recipe name>); with --export, the model file."
)
resume_option = typer.Option(
    False,
    "--resume",
    help="Continue the run in --out from its last saved state (starts it if there is none).",
)
check_option = typer.Option(
    False,
    "--check",
    help="Resolve the recipe, build its model and loss, check its data options; train nothing.",
)
export_option = typer.Option(
    None,
    "--export",
    metavar="RUN",
    help="Write the weights of a run folder's state to -o MODEL.safetensors as a release checkpoint.",
)
state_option = typer.Option(None, "--state", help="With --export: best (default) or last.")
half_option = typer.Option(False, "--half", help="With --export: store the weights as float16.")
progress_option = typer.Option(
    30.0,
    "--progress-every",
    min=0.0,
    metavar="SECONDS",
    help="Log a progress record every SECONDS (0: never); printed as a line when not on a terminal.",
)


def train(
    recipe: str = recipe_argument,
    overrides: list[str] = overrides_option,
    out: str = out_option,
    resume: bool = resume_option,
    check: bool = check_option,
    export: str = export_option,
    state: str = state_option,
    half: bool = half_option,
    progress_every: float = progress_option,
    device: str = device_option,
    threads: int = threads_option,
    as_json: bool = json_option,
) -> None:
    """Train a separation model from a recipe; writes config, log, states and model.safetensors to --out."""
    from separate.errors import SeparateError
    from separate.training import check_recipe

    set_threads(threads)
    overrides = list(overrides or [])
    if export is not None:
        if recipe is not None or overrides or resume or check:
            raise SeparateError("--export RUN takes no RECIPE, --set, --resume or --check")
        _export(export, out, state or "best", half, as_json)
        return
    if recipe is None:
        raise SeparateError("give a RECIPE to train (or --export RUN -o MODEL.safetensors)")
    if state is not None or half:
        raise SeparateError("--state and --half go with --export")
    if check:
        _show_check(check_recipe(recipe, overrides), device, as_json)
        return
    _train(recipe, overrides, out, resume, device, progress_every, as_json)


def _train(
    recipe: str,
    overrides: list[str],
    out: str | None,
    resume: bool,
    device: str,
    progress_every: float,
    as_json: bool,
) -> None:
    from separate.runtime import rank_and_world
    from separate.training import TrainingInterrupted
    from separate.training import train as run_training

    main_process = rank_and_world()[0] == 0
    reporter = RichReporter(main_process)
    try:
        summary = run_training(
            recipe,
            overrides,
            out=out,
            resume=resume,
            device=device,
            reporter=reporter,
            progress_every=progress_every,
        )
    except TrainingInterrupted as stopped:
        reporter.close()
        if main_process:
            console.print(str(stopped), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(stopped.exit_code) from None
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


def _export(run: str, out: str | None, state: str, half: bool, as_json: bool) -> None:
    from separate.errors import SeparateError
    from separate.training import export_run

    if out is None:
        raise SeparateError("--export needs -o MODEL.safetensors (the file to write)")
    summary = export_run(run, out, state=state, half=half)
    if as_json:
        emit_json(summary)
        return
    where = f"epoch {summary['epoch']}" + (
        f", step {summary['step_in_epoch']} of the next" if summary["step_in_epoch"] else ""
    )
    metrics = ", ".join(f"{key} {value:.3f}" for key, value in summary["metrics"].items())
    console.print(
        f"wrote {summary['model']}: {summary['architecture']}, {summary['parameters']:,} parameters"
        f"{' (float16)' if half else ''}, {state} state at {where}" + (f"; {metrics}" if metrics else ""),
        markup=False,
        highlight=False,
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _show_check(checked: dict[str, Any], device: str, as_json: bool) -> None:
    from separate.bench.complexity import count_parameters
    from separate.runtime import select_device

    model, config = checked["model"], checked["config"]
    parameters = count_parameters(model) + count_parameters(checked["loss"])
    train = config["train"]
    # Mixed precision runs only on CUDA (see separate.training.loop); say what this machine would do.
    cuda = select_device(device).type == "cuda"
    amp = f"{train['amp_dtype']} on CUDA" if train["amp"] and cuda else "off"
    if train["amp"] and not cuda:
        amp += " (train.amp is used only on CUDA; this run would use the CPU)"
    if as_json:
        architecture = type(model).architecture
        emit_json({"config": config, "parameters": parameters, "architecture": architecture, "amp": amp})
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
    lines.append(f"train: { {k: v for k, v in train.items() if k not in ('amp', 'amp_dtype')} }")
    lines.append(f"amp: {amp}")
    for line in lines:
        console.print(line, markup=False, highlight=False)


class RichReporter:
    """A :class:`separate.training.Reporter` for the terminal: a progress bar per epoch on a terminal,
    a progress line every few seconds otherwise, and one line per epoch; with ``enabled=False``
    (ranks other than 0) it shows nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Progress | None = None
        self.task: Any = None
        self.examples = 0
        self.started = 0.0

    def epoch_started(self, epoch: int, epochs: int, steps: int, done: int = 0) -> None:
        if not self.enabled or not console.is_terminal:
            return
        if self.bar is None:
            self.bar = progress_bar(
                "epoch {task.fields[epoch]}",
                counter="of",
                extra="loss {task.fields[loss]:.3f}  {task.fields[speed]:.1f} ex/s",
            )
            self.bar.start()
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(
            "train", total=steps, completed=done, epoch=f"{epoch}/{epochs}", loss=0.0, speed=0.0
        )
        self.examples, self.started = 0, time.perf_counter()

    def step_done(self, loss: float, examples: int) -> None:
        if self.bar is None or self.task is None:
            return
        self.examples += examples
        speed = self.examples / max(time.perf_counter() - self.started, 1e-9)
        self.bar.update(self.task, advance=1, loss=loss, speed=speed)

    def progress(self, record: dict[str, Any]) -> None:
        if self.enabled and not console.is_terminal:
            from separate.training.progress import progress_line

            console.print(progress_line(record), markup=False, highlight=False, soft_wrap=True)

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
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def register(app: typer.Typer) -> None:
    app.command("train", no_args_is_help=True)(train)
