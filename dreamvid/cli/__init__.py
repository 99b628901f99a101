"""The `dreamvid` command: a Typer app whose commands are thin adapters over the library.

Each submodule registers its commands on `app`; only this package imports Typer and rich.
"""
from __future__ import annotations

import importlib
from typing import Annotated

import typer

from .. import __version__
from .common import State, setup_logging, stop_on_sigterm

app = typer.Typer(
    name="dreamvid",
    help="DeepDream for photos and video: stills, coherent dream clips, infinite zooms, timelapses, sweeps.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    add_completion=False,
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


for _name in COMMAND_MODULES:
    importlib.import_module(f".{_name}", __name__).register(app)


def main() -> None:
    stop_on_sigterm()
    app()
