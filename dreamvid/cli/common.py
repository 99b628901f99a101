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
import re
import shlex
import sys
import traceback
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from ..errors import DreamvidError, Terminated, interruption_exit_code
from ..signals import ignore_interrupts, stop_on_signals  # noqa: F401  (installed first by __main__)

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


def forgotten_output(sources: list[Path], output: Path | None, kinds: tuple[str, ...] = ("image", "frames")) -> None:
    """Before any work: `dreamvid image photo.jpg dream.png` meant `-o dream.png`. The last of
    several sources, when no -o is given, it does not exist, and it names an output of one of
    `kinds` (media.output_kind: a picture, or a folder for a batch), is refused with the -o
    that was forgotten, instead of dreaming the others and only then saying it is missing."""
    from ..errors import InputError
    from ..media.paths import output_kind

    if output is not None or len(sources) < 2 or sources[-1].exists():
        return
    last = sources[-1]
    try:
        if output_kind(last) not in kinds:
            return
    except DreamvidError:  # not a name dreamvid writes: an ordinary missing photo
        return
    raise InputError(f"photo {last} does not exist",
                     hint=f"to write the result there, did you mean `-o {shlex.quote(str(last))}`?")


def extra_argument_hint(message: str) -> str | None:
    """`dreamvid video clip.mp4 dream.mp4` (one source, one stray word): the -o it meant."""
    m = re.fullmatch(r"Got unexpected extra argument(?:\(s\)|s)? \((.+)\)", message)
    return f"did you mean `-o {shlex.quote(m.group(1))}`?" if m and " " not in m.group(1) else None


# ---- the dream options, shared by image, video, zoom, timelapse and sweep ----------------

PANEL = "Dream (defaults < --preset < these flags)"
EXPRESSION_NAMES = "t, f, fps, duration and the audio's rms, onset, bass, mid, treble"  # expr.py


_TYPES = {"int": Optional[int], "float": Optional[float], "bool": Optional[bool], "lines": Optional[list[str]],
          "layers": Optional[list[str]]}  # other kinds are text (a choice, a path, a pair, an fps)
SECTION_PANELS = {"dream": PANEL, "video": "Video", "zoom": "Camera path", "timelapse": "Timelapse", "sweep": "Sweep"}


def keyword_option(name: str, panel: str):
    """The option of a render keyword that is not a setting (video's --start, --end; params.KEYWORDS)."""
    from ..params import KEYWORDS

    p = next(k for k in KEYWORDS if k.name == name)
    return Annotated[Optional[str], typer.Option(*p.cli_flags(), help=p.help, rich_help_panel=panel,
                                                 show_default=False)]


@functools.lru_cache(maxsize=None)
def base_settings(mode: str):
    """The Settings a `mode` command starts from (its own preset's, for video and zoom): the
    defaults its --help shows."""
    from .. import presets
    from ..settings import Settings

    try:
        return presets.resolve_for(mode)
    except Exception:  # noqa: BLE001 - a broken preset file must not break --help
        return Settings()


def option(section: str, name: str, mode: str, panel: str, *, type_=None, base=None, **extra):
    """The Typer option of the catalogue's setting `section.name` (params.py) in a `mode`
    command: its flags and metavar, its help ending in the range and the default that command
    starts from. type_: instead of the kind's (a text the command parses itself)."""
    from ..params import get
    from ..settings import EXPRESSION_KEYS

    p = get(section, name)
    limits = p.range_text()
    type_ = type_ or _TYPES.get(p.kind, Optional[str])
    if (section, name) in EXPRESSION_KEYS.get(mode, ()):  # a number or an expression (expr.py)
        type_, limits = Optional[str], f"{limits or 'a number'}, or an expression of {EXPRESSION_NAMES}"
    if p.kind == "layers" and mode == "video":  # render/values.py: each entry's weight per frame
        limits = f"W a number or an expression of {EXPRESSION_NAMES}, e.g. block4c_out:0.5+0.5*onset"
    shown = _default_text(p, getattr(getattr(base or base_settings(mode), section), name), mode)
    metavar = p.metavar or {"int": "N", "float": "X"}.get(p.kind)
    return Annotated[type_, typer.Option(*p.cli_flags(), rich_help_panel=panel, show_default=False, metavar=metavar,
                                         help=f"{p.help}{f' Range: {limits}.' if limits else ''}{shown}", **extra)]


def _default_text(p, value, mode: str) -> str:
    """ [default: VALUE, the video preset's] for a setting's value in the settings a command starts
    from; a bool as the flag in effect, None as what it means; nothing for a path or no classes."""
    from .. import presets

    whose = f", the {presets.MODE_PRESET[mode]} preset's" if mode in presets.MODE_PRESET else ""
    if p.kind == "path" or (p.kind == "lines" and not value) or p.name == "vary":
        return ""
    if value is None or (p.kind == "layers" and not value):
        text, whose = p.none, ""
    elif p.kind == "bool":
        text = p.cli_flags()[0].split("/")[0 if value else 1]
    elif p.kind in ("layers", "lines"):  # ((name or class index, weight), ...)
        text = ", ".join(f"{n}:{w:g}" if not isinstance(w, str) else f"{n}:{w}" for n, w in value)
    elif isinstance(value, tuple):
        text = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    else:
        text = value
    return f" \\[default: {text}{whose}]" if text != "" else ""


def dream_options(mode: str, own: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """The options of a `mode` command that come from the catalogue by themselves: --preset,
    every dream setting, then any other setting the mode reads that the command does not
    declare itself (`own`: a new setting appears in its section's panel with no code here).
    Each help line ends in its range and the default that command starts from (its own
    preset's, for video and zoom)."""
    from .. import presets
    from ..params import of_mode

    base = base_settings(mode)
    whose = f", the {presets.MODE_PRESET[mode]} preset's" if mode in presets.MODE_PRESET else ""
    options = [inspect.Parameter("preset", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
        Optional[str], typer.Option("--preset", "-p", rich_help_panel=PANEL, show_default=False, metavar="NAME",
                                    help="Preset name (see `dreamvid presets`) or a .toml file"
                                         f"{f' (default: {presets.MODE_PRESET[mode]})' if whose else ''}.",
                                    autocompletion=complete_presets)])]
    settings = sorted(of_mode(mode).values(), key=lambda p: p.section != "dream")  # the dream panel first
    for p in settings:
        if p.section == "render" or p.name in own:
            continue
        extra = {"autocompletion": complete_models} if p.name == "model" else \
            {"autocompletion": complete_layers} if p.name == "layers" else {}
        options.append(inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=option(
            p.section, p.name, mode, SECTION_PANELS.get(p.section, PANEL), base=base, **extra)))
    return options


def complete_presets(incomplete: str) -> list[str]:
    from .. import presets

    return [n for n in presets.available() if n.startswith(incomplete)]


def complete_models(incomplete: str) -> list[str]:
    from ..models import MODELS

    return [n for n in MODELS if n.startswith(incomplete)]


def complete_layers(ctx: typer.Context, incomplete: str) -> list[str]:
    """Dreamable layers of the --model on the line (the default model otherwise): a registered
    model's from its table at once; a .keras file's are read by Keras (a few seconds)."""
    from ..models import dreamable_layers, is_user_model
    from ..settings import DEFAULT_MODEL

    model = (ctx.params or {}).get("model") or DEFAULT_MODEL
    try:
        if is_user_model(model):
            import_tensorflow_quietly()
        names = [n for n, _ in dreamable_layers(model)]
    except Exception:  # noqa: BLE001 - completion must never print a traceback into the shell
        return []
    return [n for n in names if n.startswith(incomplete)]


def with_dream_options(fn: Callable) -> Callable:
    """Add the catalogue's options to a command (named as its mode: image, video, zoom,
    timelapse, sweep; see dream_options); they reach it as `dream=` {field: value or None}
    plus `preset=`, and the command passes them on to the library as keywords."""
    sig = inspect.signature(fn)
    own = [p for p in sig.parameters.values() if p.name not in ("dream", "preset")]
    options = dream_options(fn.__name__.rstrip("_"), tuple(p.name.rstrip("_") for p in own))  # zoom_: --zoom

    @functools.wraps(fn)
    def wrapper(**kwargs):
        if State.debug or State.verbose:  # TensorFlow loads when a network is needed (not for --dry-run)
            os.environ.setdefault("DREAMVID_TF_LOGS", "1")
        flags = {p.name: kwargs.pop(p.name) for p in options}
        preset = flags.pop("preset")
        flags["layers"] = flags["layers"] or None
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

    console = console or Console(stderr=True)
    # A transient display in a pipe or a log has nothing to show at the end: rich would leave
    # an empty line there, before the result or the Error: line.
    disable = State.quiet or (transient and not console.is_terminal)

    return Progress(TextColumn("[bold]{task.description}", table_column=fixed(9)),
                    BarColumn(bar_width=16), MofNCompleteColumn(table_column=fixed(11)),
                    TimeElapsedColumn(table_column=fixed(7)), TextColumn("ETA", table_column=fixed(3)),
                    TimeRemainingColumn(table_column=fixed(7)),
                    TextColumn("{task.fields[info]}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
                    console=console, transient=transient, disable=disable, expand=True)


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

    return {k: number_or_text(v, k) for k, v in dream.items() if v is not None}


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
