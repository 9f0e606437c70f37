"""``separate models list|info|download``: the registry of named checkpoints and the architectures."""

from __future__ import annotations

import typer

from separate.cli.common import emit_json, json_option, tables

models_app = typer.Typer(help="Show and fetch registered models.", no_args_is_help=True)


@models_app.command("list")
def list_models(as_json: bool = json_option) -> None:
    """Registered checkpoints and buildable presets."""
    from separate.checkpoints import registry
    from separate.models import PRESETS

    entries = registry()
    if as_json:
        emit_json(
            {
                "checkpoints": {name: _entry_dict(entry) for name, entry in entries.items()},
                "presets": {name: dict(kwargs) for name, kwargs in PRESETS.items()},
            }
        )
        return
    from rich.table import Table

    table = Table(title="Registered checkpoints")
    for column in ("name", "architecture", "task", "sources", "rate", "measured", "from"):
        table.add_column(column)
    for entry in entries.values():
        table.add_row(
            entry.name
            + (f" (= {entry.same_as})" if entry.same_as else "")
            + (" (default)" if entry.default else ""),
            entry.architecture,
            entry.task,
            ",".join(entry.sources),
            str(entry.sample_rate),
            _headline(entry.metrics),
            entry.location,
        )
    tables.print(table if entries else "No checkpoints registered yet.")
    tables.print("Presets (separate.models.build): " + ", ".join(sorted(PRESETS)))


@models_app.command("info")
def info(
    name: str = typer.Argument(..., help="Registry name, .safetensors path or hf:// URL."),
    as_json: bool = json_option,
) -> None:
    """Details of one model: registry entry, or the header of a checkpoint file."""
    from separate.bench.complexity import count_parameters
    from separate.checkpoints import read_header, registry, resolve
    from separate.models import PRESETS

    entries = registry()
    if name not in entries and name in PRESETS:
        _preset_info(name, as_json)
        return
    result = _entry_dict(entries[name]) if name in entries else {}
    path = resolve(name) if name not in entries or _is_local(entries[name]) else None
    if path is not None:
        header = read_header(path)
        if result.get("metrics") and "metrics" in header:
            validation = header.pop("metrics")  # the registry's measured figures stay
            if validation:  # a state exported mid-epoch carries none
                header["validation_metrics"] = validation
        from separate.checkpoints import load

        result.update(header, path=str(path), parameters=count_parameters(load(path)))
    if as_json:
        emit_json(result)
        return
    _print_fields(result)


def _print_fields(fields: dict, indent: str = "") -> None:
    """``key: value`` lines; a nested table (metrics, card, training) as an indented block under its key."""
    from rich.markup import escape

    for key, value in fields.items():
        if isinstance(value, dict) and value:
            tables.print(f"{indent}[bold]{key}[/bold]:", highlight=False)
            _print_fields(value, indent + "  ")
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        tables.print(f"{indent}[bold]{key}[/bold]: {escape(str(shown))}", highlight=False)


def _preset_info(name: str, as_json: bool) -> None:
    """A buildable preset (random weights): architecture, parameters, sources, rate, options."""
    from separate.bench.complexity import count_parameters
    from separate.models import PRESETS, build

    model = build(name)
    result = {
        "preset": name,
        "architecture": type(model).architecture,
        "parameters": count_parameters(model),
        "sources": list(model.sources),
        "sample_rate": model.sample_rate,
        "options": dict(PRESETS[name]),
        "pretrained": False,
    }
    if as_json:
        emit_json(result)
        return
    _print_fields(result)


@models_app.command("download")
def download(
    name: str = typer.Argument(..., help="Registry name or hf:// URL."), as_json: bool = json_option
) -> None:
    """Fetch a model into the Hugging Face cache (checked against its sha256) and print its path."""
    from separate.checkpoints import resolve

    path = resolve(name)
    if as_json:
        emit_json({"name": name, "path": str(path)})
    else:
        print(path)


def _headline(metrics: dict) -> str:
    """The measured figures of a registry entry in one cell: ``SI-SNRi 7.1 dB (test split)``."""
    shown = [
        f"{label} {metrics[key]:.2f} dB"
        for key, label in (
            ("si_snri", "SI-SNRi"),
            ("sdri", "SDRi"),
            ("vocals_sdr", "vocals SDR"),
            ("accompaniment_sdr", "accompaniment SDR"),
        )
        if isinstance(metrics.get(key), (int, float))
    ]
    return ", ".join(shown) + (f" ({metrics['measured_on']})" if shown and metrics.get("measured_on") else "")


def _is_local(entry: object) -> bool:
    return bool(getattr(entry, "bundled", None))


def _entry_dict(entry: object) -> dict:
    from dataclasses import asdict

    data = asdict(entry)  # type: ignore[call-overload]
    data["location"] = entry.location  # type: ignore[attr-defined]
    return data


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
