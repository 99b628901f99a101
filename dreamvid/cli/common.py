"""What every command shares: error -> exit code, the dream options, progress on stderr.

A command is a thin adapter: it turns flags into Settings (defaults < preset < flags) and
calls the library. Expected failures (DreamvidError) become one `Error:` line with the way
out and the documented exit code; `--debug` shows the traceback and the tool's own words.
"""
from __future__ import annotations

import functools
import inspect
import logging
import os
import shlex
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from ..errors import DreamvidError, Terminated, interruption_exit_code

log = logging.getLogger("dreamvid")


class State:
    debug = False
    quiet = False
    verbose = False


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its native start-up chatter (CUDA probing, oneDNN notices) hidden.

    Those lines are written by C++ before Python logging exists, some even before absl reads
    TF_CPP_MIN_LOG_LEVEL, so the only way to hide them is to point fd 2 elsewhere for the
    import. The import goes through models.setup_tensorflow, which must set TensorFlow's
    environment (oneDNN on) BEFORE the first import: importing TensorFlow here directly
    turned oneDNN off for every command, 1.3-1.8x slower steps. --debug and --verbose show
    the chatter.
    """
    if "tensorflow" in sys.modules or State.debug or State.verbose:
        return
    from ..models import setup_tensorflow

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            setup_tensorflow()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def fail(message: str, code: int) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def handle_errors(fn: Callable) -> Callable:
    """Run a command; DreamvidError -> one line + its exit code, Ctrl-C -> 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DreamvidError as e:
            if State.debug:
                traceback.print_exc()
                if e.detail:
                    typer.echo(e.detail, err=True)
            hint = f" Hint: {e.hint}." if e.hint else ""
            fail(f"Error: {e.message}.{hint}".replace("..", "."), e.exit_code)
        except KeyboardInterrupt as e:
            fail("Terminated." if isinstance(e, Terminated) else "Interrupted.", interruption_exit_code(e))

    return wrapper


# ---- the dream options, shared by image, video, zoom, timelapse and sweep ----------------

PANEL = "Dream (defaults < --preset < these flags)"


def _opt(*names: str, help: str, type_=Optional[float]) -> Any:
    return Annotated[type_, typer.Option(*names, help=help, rich_help_panel=PANEL, show_default=False)]


DREAM_OPTIONS: list[inspect.Parameter] = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
    for name, annotation in [
        ("preset", _opt("--preset", "-p", help="Preset name (see `dreamvid presets`) or a .toml file.",
                        type_=Optional[str])),
        ("model", _opt("--model", "-m", help="Backbone (see `dreamvid models`) or a .keras file.",
                       type_=Optional[str])),
        ("layer", _opt("--layer", "-l", help="Layer to dream on, NAME or NAME:WEIGHT; repeat for several.",
                       type_=Optional[list[str]])),
        ("step", _opt("--step", help="Gradient-ascent step size (0.01 subtle .. 0.05 strong).")),
        ("num_octave", _opt("--num-octave", help="Number of scales dreamed at.", type_=Optional[int])),
        ("octave_scale", _opt("--octave-scale", help="Size ratio between octaves (> 1).")),
        ("iterations", _opt("--iterations", "-i", help="Gradient-ascent steps per octave.", type_=Optional[int])),
        ("max_loss", _opt("--max-loss", help="Stop an octave once the loss passes this.")),
        ("jitter", _opt("--jitter", help="Random roll in px applied before each step.", type_=Optional[int])),
        ("tile", _opt("--tile", help="Tile size in px for large images (bounds memory).", type_=Optional[int])),
        ("tile_batch", _opt("--tile-batch", help="Tiles per network call (default: up to 16 on a GPU, 1 on a "
                            "CPU; halved by itself if the GPU runs out of memory).", type_=Optional[int])),
        ("seed", _opt("--seed", help="Random seed of the jitter.", type_=Optional[int])),
        ("max_size", _opt("--max-size", help="Downscale so the longest side is at most this (px).",
                          type_=Optional[int])),
        ("weights", _opt("--weights", help="Local weights file for a downloadable model.", type_=Optional[str])),
        ("precision", _opt("--precision", help="float32, or mixed (float16 compute on a GPU).",
                           type_=Optional[str])),
    ]
]


def with_dream_options(fn: Callable) -> Callable:
    """Add the dream options to a command; they reach it as `dream=` {field: value or None}
    plus `preset=`. One definition for every command keeps the vocabulary identical."""
    sig = inspect.signature(fn)
    own = [p for p in sig.parameters.values() if p.name not in ("dream", "preset")]

    @functools.wraps(fn)
    def wrapper(**kwargs):
        import_tensorflow_quietly()
        flags = {p.name: kwargs.pop(p.name) for p in DREAM_OPTIONS}
        preset = flags.pop("preset")
        layer = flags.pop("layer")
        flags["layers"] = layer or None
        return fn(**kwargs, dream=flags, preset=preset)

    wrapper.__signature__ = sig.replace(parameters=own + DREAM_OPTIONS)
    return wrapper


# ---- interruption --------------------------------------------------------------------------

def resume_command(ctx: typer.Context, drop: tuple[str, ...] = ("restart",)) -> str:
    """The command line that repeats this command: the options the user gave, minus `drop`
    (a resume must not --restart and throw away the frames it is meant to continue)."""
    words = ["dreamvid", ctx.info_name or "video"]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if param.name in drop or getattr(source, "name", None) not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        value = ctx.params.get(param.name)
        if param.param_type_name == "argument":
            words += [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
            continue
        long = max(param.opts, key=len)
        if getattr(param, "is_flag", False):
            if param.secondary_opts and not value:
                words.append(max(param.secondary_opts, key=len))
            elif value:
                words.append(long)
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            words += [long, str(v)]
    return shlex.join(words)


CLUSTER_PANEL = "Cluster (Ray)"


def workers_option():
    """--workers N: render on a Ray cluster, N tasks at once (render/cluster.py)."""
    return Annotated[Optional[int], typer.Option(
        "--workers", "-w", show_default=False, rich_help_panel=CLUSTER_PANEL,
        help="Render on a Ray cluster with N workers (a local one unless --ray): one per GPU, or the CPU "
             "cores split between them. Needs: pip install 'dreamvid\\[ray]'.")]


def ray_option():
    """--ray ADDRESS|auto: join a running Ray cluster."""
    return Annotated[Optional[str], typer.Option(
        "--ray", show_default=False, rich_help_panel=CLUSTER_PANEL,
        help="Join a running Ray cluster: auto (the one `ray start` made here) or HOST:PORT.")]


def restart_option(panel: str, what: str = "frames"):
    """The --restart flag of the renders that resume from a work folder."""
    return Annotated[bool, typer.Option("--restart", rich_help_panel=panel,
                                        help=f"Discard {what} of an earlier, different render in the work folder.")]


def keep_frames_option(panel: str):
    """The --keep-frames flag of the renders that encode a work folder of frames."""
    return Annotated[bool, typer.Option("--keep-frames", rich_help_panel=panel,
                                        help="Keep the work folder of PNG frames after encoding.")]


def work_dir_option(panel: str, what: str = "frames"):
    """The --work-dir option of the renders that resume from a work folder."""
    return Annotated[Optional[Path], typer.Option(
        "--work-dir", show_default=False, rich_help_panel=panel,
        help=f"Folder for the finished {what} and render.json (default: OUTPUT.dreamvid-work beside the output).")]


def interrupted(ctx: typer.Context, output: Path, work_dir: Optional[Path], noun: str = "frame") -> None:
    """After Ctrl-C in a render with a work folder: say what was kept and how to resume;
    exit 130. noun: what the folder's frame_*.png are ("frame", "cell", "checkpoint")."""
    from ..render.workdir import default_work_dir

    why = sys.exc_info()[1]  # called while handling the KeyboardInterrupt (or Terminated)
    word = "Terminated" if isinstance(why, Terminated) else "Interrupted"
    folder = Path(work_dir).expanduser() if work_dir else default_work_dir(output)
    kept = len(list(folder.glob("frame_*.png"))) if folder.is_dir() else 0
    if kept == 0:  # nothing finished, nothing kept: the folder has been removed
        fail(f"{word} before the first {noun} was finished.", interruption_exit_code(why))
    typer.echo(f"{word}: {kept} finished {noun}{'s' * (kept != 1)} kept in {folder}. "
               f"Resume with: {resume_command(ctx)}", err=True)
    raise typer.Exit(interruption_exit_code(why))


def stop_on_sigterm() -> None:
    """Turn the first SIGTERM into `Terminated` in the main thread (a second one kills at once)."""
    import signal

    def terminate(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated()

    try:
        signal.signal(signal.SIGTERM, terminate)
    except (ValueError, OSError):  # not the main thread (an embedding program): leave it alone
        pass


# ---- progress ------------------------------------------------------------------------------

def progress_bar(transient: bool = False):
    """A rich progress display on stderr (frames or steps, rate, ETA); silent with --quiet."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=transient,
                    disable=State.quiet)


class RenderBar:
    """The progress display of every render, fed the engine's Progress events. It appears
    with the first report, so input refused before the work starts leaves just its one
    `Error:` line. Modes that count gradient steps (image, timelapse, sweep) show steps;
    clips (video, zoom) show frames. `on_item(progress)` also sees each finished item."""

    def __init__(self, description: str, on_item: Callable | None = None, transient: bool = False):
        self.description, self.on_item, self.transient = description, on_item, transient
        self.bar, self.task = None, None

    def __call__(self, p) -> None:
        if self.bar is None:
            self.bar = progress_bar(self.transient)
            self.bar.start()
            self.task = self.bar.add_task(self.description, total=None, info="")
        if p.total_steps:
            self.bar.update(self.task, total=p.total_steps, completed=p.steps, info=p.info)
        else:
            self.bar.update(self.task, total=p.total, completed=p.done, info=_frame_info(p))
        if p.stage == "item" and self.on_item is not None:
            self.on_item(p)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __enter__(self) -> "RenderBar":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _frame_info(p) -> str:
    if p.stage == "start":
        return "loading the model; the first frame is dreamed in full" if p.mode == "video" else "starting"
    if p.stage == "finish":
        return "encoding"
    if p.stage == "item":
        cut = " (new shot)" if p.restarted and p.rendered > 1 else ""
        return f"frame {p.index}{cut}, {p.fps:.2f} fps" + _rates(p)
    return p.info + _rates(p)


def _rates(p) -> str:
    """A cluster render's workers: ' · 2 workers 0.41+0.39/s'."""
    if not p.rates:
        return ""
    return f" · {len(p.rates)} worker{'s' * (len(p.rates) != 1)} " + "+".join(f"{r:.2f}" for r in p.rates) + "/s"


def dream_flags(dream: dict) -> dict:
    """The dream options as library keywords (unset ones left out: the preset decides)."""
    return {k: v for k, v in dream.items() if v is not None}


def default_output(source: Path, suffix: str) -> Path:
    """`photo.jpg` -> `photo.dream.png` beside the input (never the input itself)."""
    return source.with_name(f"{source.stem}.dream{suffix}")


def setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
