"""The `dreamvid` command: a Typer app whose commands are thin adapters over the library.

Each submodule registers its commands on `app`; only this package imports Typer and rich.
"""
from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer
from typer.core import TyperGroup

try:  # newer Typer vendors click as typer._click (Abort and Exit live in typer.exceptions there)
    from typer._click import exceptions as click
    from typer.exceptions import Abort
except ImportError:  # pragma: no cover - older Typer uses the click package
    from click import exceptions as click
    from click.exceptions import Abort

from .. import __version__
from ..errors import EXIT_USAGE, interruption_exit_code
from ..signals import stopped_line
from . import help as _help
from .common import (State, error_text, extra_argument_hint, ignore_interrupts, quiet_opencv, setup_logging,
                     stop_on_signals)


class _Stopped(Exception):
    """Ctrl-C or SIGTERM (`cause`) outside a command's own handling (parsing its options,
    the root callback), carried past Typer, which turns a KeyboardInterrupt into a silent
    exit 130 (for SIGTERM too, whose documented code is 143)."""

    def __init__(self, cause: KeyboardInterrupt):
        super().__init__()
        self.cause = cause


class OneLineErrors(TyperGroup):
    """The app's group: a usage error (unknown flag or command, a value that does not parse,
    a missing argument) is one `Error:` line with the way out and exit 2, like every other
    error, instead of Typer's usage text and box; a stop anywhere is one line and 130 / 143."""

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt as e:
            raise _Stopped(e) from e

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:
            raise _Stopped(e) from e

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.NoArgsIsHelpError as e:  # `dreamvid` alone: the help, as before
            e.show()
            code = e.exit_code
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else "dreamvid"
            message = " ".join(e.format_message().split())
            output = extra_argument_hint(message) if _takes_output(e.ctx) else None
            typer.echo(error_text(message, output or f"see `{where} --help` for the options"), err=True)
            code = EXIT_USAGE
        except click.ClickException as e:
            typer.echo(error_text(" ".join(e.format_message().split())), err=True)
            code = e.exit_code
        except Abort:  # end of input at a prompt (dreamvid asks none)
            typer.echo("Aborted.", err=True)
            code = 1
        except _Stopped as e:
            typer.echo(stopped_line(e.cause), err=True)
            code = interruption_exit_code(e.cause)
        sys.exit(code if isinstance(code, int) else 0)


def _takes_output(ctx) -> bool:
    return ctx is not None and any("-o" in getattr(p, "opts", ()) for p in ctx.command.params)


_help.install()  # click-style metavars in --help (cli/help.py)

app = typer.Typer(
    name="dreamvid",
    cls=OneLineErrors,
    help="DeepDream for photos and video: stills, coherent dream clips, infinite zooms, timelapses, sweeps.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
)

COMMAND_MODULES = ("still", "info", "video", "animate", "serve")  # each has register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dreamvid {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and ffmpeg's own output on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display, warnings only.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """DeepDream for photos and video."""
    State.debug, State.quiet, State.verbose = debug, quiet, verbose
    setup_logging(verbose, quiet)
    if not (debug or verbose):
        quiet_opencv()


for _name in COMMAND_MODULES:
    importlib.import_module(f".{_name}", __name__).register(app)


def main() -> None:
    stop_on_signals()
    try:
        app()
    finally:
        ignore_interrupts()
