"""The `ltc` command: a thin typer app. All logic lives in the packages; imports are lazy
so that `ltc --help` stays fast."""

from __future__ import annotations

import functools
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="ltc",
    help="ltc-edge: train liquid time-constant (LTC) networks, export them to ONNX, TFLite "
         "and C, benchmark them against LSTMs, and run them in control loops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def unwrap(doc: str | None) -> str | None:
    """A docstring as help text: paragraphs (blank-line separated) kept, the hard wraps inside
    each joined, so the terminal wraps it cleanly at its own width."""
    if not doc:
        return doc
    import inspect

    return "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(doc).split("\n\n") if p.strip())


def _no_flag_metavar():
    """typer's rich help shows `<bool>` beside on/off flags (--resume, --compile/--no-compile,
    --help), which take no value: show nothing there."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "ltc_flag_aware", False):
        return

    def display_type_rich(self, ctx):
        return None if getattr(self, "is_flag", False) else shown(self, ctx)

    display_type_rich.ltc_flag_aware = True
    TyperOption.display_type_rich = display_type_rich


_no_flag_metavar()


class UserError(Exception):
    """An error the user can fix: printed as one line, exit status 1."""


def _fail(message: str, code: int = 1):
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def command(*args, **kwargs):
    """app.command, with known errors turned into one red line and exit status 1
    (set LTC_DEBUG=1 to see the traceback instead)."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            debug = bool(os.environ.get("LTC_DEBUG"))
            try:
                with warnings.catch_warnings():
                    if not debug:  # library chatter (numpy, torch) would bury the one line that matters
                        warnings.simplefilter("ignore")
                    return fn(*a, **k)
            except (UserError, ValueError, FileNotFoundError, OSError) as e:
                if debug:
                    raise
                _fail(str(e) or type(e).__name__)
            except MemoryError:
                if debug:
                    raise
                _fail("out of memory; use a smaller model, batch, sequence length or data file")

        kwargs.setdefault("help", unwrap(fn.__doc__))
        return app.command(*args, **kwargs)(wrapper)

    return deco


def _version(value: bool):
    if value:
        from . import __version__

        typer.echo(f"ltc-edge {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                        help="Print the version and exit.")):
    pass


@command()
def info(model: Path = typer.Argument(..., help="A model file (.safetensors) written by ltc-edge, or an export "
                                                "folder (or its manifest.json)."),
         as_json: bool = typer.Option(False, "--json", help="Print the facts as JSON.")):
    """Print a model file's cell, wiring, neurons, synapses, parameters, inputs, outputs and size, and
    what it remembers of its training: task, columns, data file and dt. For an export folder: its
    manifest's facts."""
    import json

    facts = model_facts(model)
    if as_json:
        typer.echo(json.dumps(facts))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(model), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in facts.items():
        if key == "files":  # an export folder's files: name and size (sha256 in --json)
            value = ", ".join(f"{role} {e['name']} ({e['size_bytes']} bytes)" for role, e in value.items())
        if key != "file" and value is not None:
            table.add_row(key.replace("_", " "), _show(value))
    Console().print(table)


def model_facts(path: Path) -> dict:
    """`ltc info`'s facts: a model file's (nn.modelfile.describe) or an export folder's
    (artifact.describe)."""
    from . import artifact

    in_export = path.suffix != ".safetensors" and (path.parent / artifact.MANIFEST).is_file()
    if path.is_dir() or path.name == artifact.MANIFEST or in_export:  # a folder, its manifest or one of its files
        return artifact.describe(path)
    from .nn.modelfile import describe

    return describe(path)


def _show(value) -> str:
    """A fact as one table cell: dicts as key=value pairs, lists comma separated."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _model_reference(model, spec, precision):
    """`ltc export --calibration SPEC` (a task name, a CSV, an NPZ, or None: the model's stored
    task) -> the export drift check's reference data and a note (export never imports train)."""
    from .train.reference import model_reference

    return model_reference(model, spec, precision)


# Each package owns its commands (ltc_edge/<pkg>/commands.py defines register(command));
# those modules import nothing heavy at import time, so `ltc --help` stays fast.
for _pkg in ("demo", "train", "export", "runtime", "bench", "analyze"):
    try:
        _mod = __import__(f"ltc_edge.{_pkg}.commands", fromlist=["register"])
    except ModuleNotFoundError as _e:
        if _e.name != f"ltc_edge.{_pkg}.commands":
            raise
        continue
    if _pkg == "export":  # export never imports train: the CLI hands it the task loader
        _mod.register(command, load_reference=_model_reference)
    else:
        _mod.register(command)


def main():
    """`ltc`: usage errors (a bad option value, an unknown option, a missing argument) are one
    `error:` line and exit status 2, like every other error (1)."""
    from typer.main import get_command

    args = sys.argv[1:]
    if not args:
        app()  # no arguments: the help text
    try:
        rc = get_command(app).main(args=args, prog_name="ltc", standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        typer.secho("interrupted", fg=typer.colors.RED, err=True)
        sys.exit(130)
    except typer.TyperException as e:  # click's UsageError / BadParameter
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        hint = f" (see: ltc {args[0]} --help)" if args[0] in _command_names() else " (see: ltc --help)"
        typer.secho(f"error: {' '.join(message.split())}{hint}", fg=typer.colors.RED, err=True)
        sys.exit(getattr(e, "exit_code", 2))
    sys.exit(rc if isinstance(rc, int) else 0)


def _command_names() -> set:
    from typer.main import get_command

    return set(getattr(get_command(app), "commands", {}))


if __name__ == "__main__":
    main()
