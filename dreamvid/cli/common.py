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
    """Import TensorFlow (through models.setup_tensorflow, which sets oneDNN on BEFORE the
    first import and hides TensorFlow's native start-up chatter; --debug and --verbose show
    it). Importing TensorFlow here directly once turned oneDNN off for every command."""
    if "keras" in sys.modules and not State.debug:
        return
    from ..models import setup_keras

    if State.debug or State.verbose:
        os.environ.setdefault("DREAMVID_TF_LOGS", "1")
    setup_keras()  # TensorFlow's Keras in the default install, Keras on PyTorch in the torch-only one


def fail(message: str, code: int) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def sentence(text: str) -> str:
    """`text` ending with one full stop: added unless it ends with . ! or ? already. Nothing
    inside is touched: `../x.jpg` and `25..13` stay as they are (the printer used to collapse
    every `..`, to hide the doubled stop of a message that ends with one)."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."


def error_text(message: str, hint: str | None = None, note: str = "") -> str:
    """The one `Error:` line: the problem, then the way out. note: words added to the problem."""
    return f"Error: {sentence(message + note)}" + (f" Hint: {sentence(hint)}" if hint else "")


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
            fail(error_text(e.message, e.hint), e.exit_code)
        except KeyboardInterrupt as e:
            fail("Terminated." if isinstance(e, Terminated) else "Interrupted.", interruption_exit_code(e))

    return wrapper


# ---- the dream options, shared by image, video, zoom, timelapse and sweep ----------------

PANEL = "Dream (defaults < --preset < these flags)"
EXPRESSION_NAMES = "t, f, fps, duration and the audio's rms, onset, bass, mid, treble"  # expr.py


# (parameter, flags, type, help, range): one definition for every command keeps the vocabulary
# identical; the range is what settings.validate accepts, the default is shown per command.
DREAM_FIELDS: list[tuple[str, tuple[str, ...], Any, str, str]] = [
    ("model", ("--model", "-m"), Optional[str], "Backbone (see `dreamvid models`) or a .keras file.", ""),
    ("layer", ("--layer", "-l"), Optional[list[str]],
     "Layer to dream on: NAME, one channel NAME/CHANNEL, with :WEIGHT (a negative one suppresses it); repeat for "
     "several (see `dreamvid layers MODEL --channels`).", ""),
    ("classes", ("--class",), Optional[list[str]], "ImageNet class to dream, NAME[:W] or its index (a negative "
     "weight suppresses it); repeat for several (see `dreamvid classes`). Needs a model with its classifier.", ""),
    ("guide", ("--guide",), Optional[str], "An image whose features the dream grows toward.", ""),
    ("guide_weight", ("--guide-weight",), Optional[float], "How much of the dream follows the guide (1: only the "
     "guide).", "0..1"),
    ("mask", ("--mask",), Optional[str], "Where to dream: a mask image (white dreams, black keeps the picture, grey "
     "between); for a video also a mask clip, motion (what moves) or still (what stands).", ""),
    ("step", ("--step",), Optional[float], "Gradient-ascent step size (0.01 subtle .. 0.05 strong).", "> 0"),
    ("num_octave", ("--num-octave",), Optional[int], "Number of scales dreamed at.", "1..20"),
    ("octave_scale", ("--octave-scale",), Optional[float], "Size ratio between octaves.", "> 1"),
    ("iterations", ("--iterations", "-i"), Optional[int], "Gradient-ascent steps per octave.", "0..10000"),
    ("max_loss", ("--max-loss",), Optional[float], "Stop an octave once the loss passes this.", "> 0"),
    ("jitter", ("--jitter",), Optional[int], "Random roll in px applied before each step.", "0..4096"),
    ("smooth", ("--smooth",), Optional[float], "Blur of each step's gradient, in % of the shorter side: calmer, "
     "larger shapes (0: none).", "0..10"),
    ("lapnorm", ("--lapnorm",), Optional[int], "Laplacian-pyramid levels the gradient is normalised over, band by "
     "band: larger shapes grow as fast as fine texture (0: off).", "0..8"),
    ("decorrelate", ("--decorrelate",), Optional[float], "How fully the step works in ImageNet's decorrelated colour "
     "space: less rainbow pixel noise (0: off, 1: fully).", "0..1"),
    ("transform", ("--transform",), Optional[float], "Random scale (up to 10%) and rotation (up to 5 degrees) of the "
     "picture each step, times this: creatures instead of pixel patterns (0: off).", "0..3"),
    ("tile", ("--tile",), Optional[int], "Tile size in px for large images (bounds memory).", ">= 64"),
    ("tile_batch", ("--tile-batch",), Optional[int], "Tiles per network call (default: up to 16 on a GPU, 1 on "
     "a CPU; halved by itself if the GPU runs out of memory).", "1..64"),
    ("seed", ("--seed",), Optional[int], "Random seed of the jitter.", "0..4294967295"),
    ("max_size", ("--max-size",), Optional[int], "Downscale so the longest side is at most this (px).", ">= 32"),
    ("weights", ("--weights",), Optional[str], "Local weights file for a downloadable model.", ""),
    ("precision", ("--precision",), Optional[str], "auto (the faster of the two on this machine and network, "
     "measured once; see `dreamvid doctor`), float32, or mixed (float16 compute on a GPU, bfloat16 on a CPU).",
     "auto|float32|mixed"),
    ("backend", ("--backend",), Optional[str], "What runs the dream: auto (the faster here, measured once per network; "
     "see `dreamvid doctor`), tensorflow, or torch (CUDA, Apple MPS or the CPU; pip install 'dreamvid[torch]').",
     "auto|tensorflow|torch"),
]


def dream_options(mode: str) -> list[inspect.Parameter]:
    """The dream options of a `mode` command, each help line ending in its range and the
    default that command starts from (its own preset's, for video and zoom)."""
    from .. import presets
    from ..settings import DreamSettings

    try:
        base = presets.resolve_for(mode).dream
    except Exception:  # noqa: BLE001 - a broken preset file must not break --help
        base = DreamSettings()
    whose = f", the {presets.MODE_PRESET[mode]} preset's" if mode in presets.MODE_PRESET else ""
    params = [inspect.Parameter("preset", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
        Optional[str], typer.Option("--preset", "-p", rich_help_panel=PANEL, show_default=False, metavar="NAME",
                                    help="Preset name (see `dreamvid presets`) or a .toml file"
                                         f"{f' (default: {presets.MODE_PRESET[mode]})' if whose else ''}.",
                                    autocompletion=complete_presets)])]
    from ..settings import EXPRESSION_KEYS

    for name, flags, type_, text, limits in DREAM_FIELDS:
        if ("dream", name) in EXPRESSION_KEYS.get(mode, ()):  # a number or an expression (expr.py)
            type_, limits = Optional[str], f"{limits}, or an expression of {EXPRESSION_NAMES}"
        value = getattr(base, "layers" if name == "layer" else name)
        if name == "layer":
            if mode == "video":  # render/values.py: each entry's weight per frame
                limits = f"W a number or an expression of {EXPRESSION_NAMES}, e.g. block4c_out:0.5+0.5*onset"
            value = ", ".join(f"{n}:{w:g}" if not isinstance(w, str) else f"{n}:{w}" for n, w in value) or \
                "the model's default layers"
        elif name == "classes":
            value = ", ".join(f"{k}:{w:g}" for k, w in value) or None
        shown = f" \\[default: {value}{whose}]" if value is not None else ""
        extra = {"autocompletion": complete_models} if name == "model" else \
            {"autocompletion": complete_layers} if name == "layer" else {}
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            type_, typer.Option(*flags, rich_help_panel=PANEL, show_default=False, metavar=_metavar(name, type_),
                                help=f"{text}{f' Range: {limits}.' if limits else ''}{shown}", **extra)]))
    return params


def _metavar(name: str, type_) -> str:
    return {"model": "NAME", "layer": "NAME[/C][:W]", "weights": "FILE", "precision": "MODE", "backend": "NAME", "classes": "NAME[:W]",
            "guide": "IMAGE", "mask": "MASK"}.get(
        name, "N" if type_ == Optional[int] else "X")


def complete_presets(incomplete: str) -> list[str]:
    from .. import presets

    return [n for n in presets.available() if n.startswith(incomplete)]


def complete_models(incomplete: str) -> list[str]:
    from ..models import MODELS

    return [n for n in MODELS if n.startswith(incomplete)]


def complete_layers(ctx: typer.Context, incomplete: str) -> list[str]:
    """Dreamable layers of the --model on the line (the default model otherwise). The network
    is built without weights, so nothing is downloaded (a few seconds for TensorFlow)."""
    from ..models import dreamable_layers
    from ..settings import DEFAULT_MODEL

    try:
        import_tensorflow_quietly()
        names = [n for n, _ in dreamable_layers((ctx.params or {}).get("model") or DEFAULT_MODEL)]
    except Exception:  # noqa: BLE001 - completion must never print a traceback into the shell
        return []
    return [n for n in names if n.startswith(incomplete)]


def with_dream_options(fn: Callable) -> Callable:
    """Add the dream options to a command (named as its mode: image, video, zoom, timelapse,
    sweep); they reach it as `dream=` {field: value or None} plus `preset=`."""
    sig = inspect.signature(fn)
    own = [p for p in sig.parameters.values() if p.name not in ("dream", "preset")]
    options = dream_options(fn.__name__.rstrip("_"))

    @functools.wraps(fn)
    def wrapper(**kwargs):
        if State.debug or State.verbose:  # TensorFlow loads when a network is needed (not for --dry-run)
            os.environ.setdefault("DREAMVID_TF_LOGS", "1")
        flags = {p.name: kwargs.pop(p.name) for p in options}
        preset = flags.pop("preset")
        layer = flags.pop("layer")
        flags["layers"] = layer or None
        flags["classes"] = flags["classes"] or None
        return fn(**kwargs, dream=flags, preset=preset)

    wrapper.__signature__ = sig.replace(parameters=own + options)
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


def stop_on_signals() -> None:
    """Ctrl-C raises KeyboardInterrupt and SIGTERM raises `Terminated` in the main thread,
    once: the clean-up that follows (finished frames kept, worker threads joined, ffmpeg
    reaped, the resume command printed) then runs to its end, and the exit code is 130/143.

    Later Ctrl-Cs are ignored (SIG_IGN). With Python's own handler a second Ctrl-C 10 ms
    after the first raised a second KeyboardInterrupt inside that clean-up (a thread join,
    ffmpeg's reaping), or arrived while the interpreter shut down, when Python has put
    SIGINT back to its default action: dreamvid died by the signal (no exit code), or, with
    a worker thread still inside OpenCV or TensorFlow, C++ aborted it ("terminate called
    without an active exception", exit 134). SIG_IGN, unlike a Python handler, survives the
    shutdown. A second SIGTERM still kills at once, as `kill` twice means; Ctrl-\ (SIGQUIT)
    always does. Ctrl-C stays ignored where it was ignored at start (nohup, a background job).
    """
    import signal

    def interrupt(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    def terminate(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise Terminated()

    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, terminate)
    except (ValueError, OSError):  # not the main thread (an embedding program): leave it alone
        pass


def ignore_interrupts() -> None:
    """Once the command has its result and exit code: a Ctrl-C while the interpreter shuts
    down (TensorFlow's teardown takes a moment) must not turn them into death by SIGINT."""
    import signal

    try:
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):
        pass


def quiet_opencv() -> None:
    """Silence OpenCV's own log lines (`[ WARN:0@0.1] global loadsave.cpp ...`, `[ERROR:...]`):
    they came before our `Error:` line, which says the same in words. An OPENCV_LOG_LEVEL
    set by the user wins; --debug and --verbose leave OpenCV alone."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")  # read when cv2 is first imported
    cv2 = sys.modules.get("cv2")  # imported already (in-process use, tests): tell it directly
    if cv2 is not None and os.environ["OPENCV_LOG_LEVEL"].upper() == "SILENT":
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


# ---- progress ------------------------------------------------------------------------------

def progress_bar(transient: bool = False, console=None):
    """A rich progress display on stderr (frames or steps, rate, ETA); silent with --quiet.

    On a narrow terminal the status text gives way (cut with an ellipsis), never the
    counters, the elapsed time or the ETA."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)
    from rich.table import Column

    def fixed(width: int) -> Column:
        return Column(no_wrap=True, min_width=width)

    return Progress(TextColumn("[bold]{task.description}", table_column=fixed(9)),
                    BarColumn(bar_width=16), MofNCompleteColumn(table_column=fixed(11)),
                    TimeElapsedColumn(table_column=fixed(7)), TextColumn("ETA", table_column=fixed(3)),
                    TimeRemainingColumn(table_column=fixed(7)),
                    TextColumn("{task.fields[info]}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
                    console=console or Console(stderr=True), transient=transient, disable=State.quiet, expand=True)


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
    """The dream options as library keywords (unset ones left out: the preset decides; a
    number given to an option that takes expressions as a number)."""
    from ..expr import number_or_text

    return {k: number_or_text(v) for k, v in dream.items() if v is not None}


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
