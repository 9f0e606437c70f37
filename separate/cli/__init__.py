"""The ``separate`` command line: a thin Typer app; every subcommand lives in its own module.

Heavy imports (torch) happen inside commands so ``separate --help`` answers at once.
"""

from __future__ import annotations

import importlib
import sys

import typer

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer on top of click
    from click import exceptions as click_errors

app = typer.Typer(
    name="separate",
    help="Audio source separation: music stems and speakers, on CPU or CUDA.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_SUBCOMMANDS = ("audio", "models", "train", "eval", "bench", "export")

for _name in _SUBCOMMANDS:
    importlib.import_module(f"separate.cli.{_name}").register(app)


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        from separate import __version__

        typer.echo(__version__)
        raise typer.Exit()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; user errors become one line on stderr and exit code 1 (usage errors 2)."""
    from separate.errors import SeparateError

    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="separate", standalone_mode=False)
    except (typer.Exit, getattr(click_errors, "Exit", typer.Exit)) as done:
        return done.exit_code
    except getattr(click_errors, "NoArgsIsHelpError", ()) as shown:
        sys.stderr.write(shown.format_message() + "\n")
        return 2
    except (typer.Abort, getattr(click_errors, "Abort", typer.Abort)):
        _error("aborted")
        return 130
    except click_errors.UsageError as problem:
        _error(problem.format_message())
        return 2
    except click_errors.ClickException as problem:
        _error(problem.format_message())
        return problem.exit_code
    except SeparateError as problem:
        _error(str(problem))
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 141
    except OSError as problem:  # an I/O failure outside the writers (e.g. a full disk under stdout)
        from separate.audio.ioerrors import write_error

        _quiet_stdout()
        _error(str(write_error(problem, problem.filename or "stdout")))
        return 1
    return result if isinstance(result, int) else 0


def _quiet_stdout() -> None:
    """The reader of stdout went away (``| head``): send what is still buffered to /dev/null, so the
    interpreter's final flush does not print a second BrokenPipeError."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _error(message: str) -> None:
    first_line = " ".join(str(message).split())
    sys.stderr.write(f"separate: error: {first_line}\n")
    sys.stderr.flush()
