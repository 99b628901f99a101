"""`dreamvid zoom | timelapse | sweep`: animations and grids made from one photo."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SettingsError
from ..numeric import literal
from .common import (RenderBar, dream_flags, handle_errors, interrupted, keep_frames_option, option, ray_option,
                     restart_option, with_dream_options, work_dir_option, workers_option)

MOTION_PANEL = "Camera path"
FRAME_PANEL = "Frames"
OUTPUT_PANEL = "Output and resume"
LAPSE_PANEL = "Timelapse"
SWEEP_PANEL = "Sweep"


def register(app: typer.Typer) -> None:
    app.command("zoom")(zoom)
    app.command("timelapse")(timelapse)
    app.command("sweep")(sweep)


def _opt(*names: str, help: str, type_=Optional[float], panel: str):
    return Annotated[type_, typer.Option(*names, help=help, rich_help_panel=panel, show_default=False)]


def _zoom_opt(name: str, panel: str, section: str = "zoom"):
    """A zoom's setting as its option, from the catalogue (params.py)."""
    return option(section, name, "zoom", panel)


def _lapse_opt(name: str, type_=None):
    return option("timelapse", name, "timelapse", LAPSE_PANEL, type_=type_)


def _output_opt(what: str):
    return Annotated[Optional[Path], typer.Option("--output", "-o", show_default=False, help=what)]


def _source_arg():
    return Annotated[Path, typer.Argument(help="Photo to start from (JPEG, PNG, WebP, BMP, TIFF).",
                                          show_default=False)]


def _beside(source: Path, tag: str, suffix: str) -> Path:
    """photo.jpg -> photo.zoom.mp4 beside it."""
    return source.with_name(f"{source.stem}.{tag}{suffix}")


def parse_value(text: Optional[str], key: str = "value"):
    """'1.25' -> 1.25; '1.02+0.01*sin(t)' stays text (an expression, checked by the settings); None stays None.
    A number too long to be meant is SettingsError naming `key` (numeric.literal)."""
    if text is None:
        return None
    number = literal(text, key)
    return text.strip() if number is None else float(number)


def parse_pair(text: Optional[str], flag: str, example: str) -> Optional[tuple]:
    """'12,-4' -> (12.0, -4.0); '10*sin(t), 0' -> ('10*sin(t)', 0.0): split at the comma outside
    parentheses; None stays None; SettingsError otherwise."""
    if text is None:
        return None
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise SettingsError(f"{flag} must be two numbers X,Y (got {text!r})", hint=f"e.g. {flag} {example}")
    return parse_value(parts[0], flag), parse_value(parts[1], flag)


# ---- zoom ----------------------------------------------------------------------------------------------

@handle_errors
@with_dream_options
def zoom(
    ctx: typer.Context,
    source: _source_arg(),
    output: _output_opt("Result: .mp4/.mov/.mkv, .gif, or a folder for PNG frames "
                        "(default: SOURCE.zoom.mp4 beside the source).") = None,
    zoom_: _zoom_opt("zoom", MOTION_PANEL) = None,
    rotate: _zoom_opt("rotate", MOTION_PANEL) = None,
    pan: _zoom_opt("pan", MOTION_PANEL) = None,
    center: _zoom_opt("center", MOTION_PANEL) = None,
    duration: _zoom_opt("duration", MOTION_PANEL) = None,
    frames: _zoom_opt("frames", MOTION_PANEL) = None,
    audio: _opt("--audio", help="A song the zoom follows: the length is the song's unless given, expressions may "
                "use its envelopes (rms, onset, bass, mid, treble, each 0..1), and the output carries it.",
                type_=Optional[Path], panel=MOTION_PANEL) = None,
    preview: Annotated[bool, typer.Option("--preview", rich_help_panel=MOTION_PANEL,
                                          help="Render the camera path on the undreamed photo at low resolution, "
                                               "in seconds, instead of dreaming.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", rich_help_panel=MOTION_PANEL,
                                          help="Print every frame's parameters (a table; JSON with --json) and "
                                               "stop.")] = False,
    as_json: Annotated[bool, typer.Option("--json", rich_help_panel=MOTION_PANEL,
                                          help="With --dry-run: JSON instead of a table.")] = False,
    fps: _zoom_opt("fps", MOTION_PANEL) = None,
    keyframes: _opt("--keyframes", "-k", help="TOML file of keyframe tables easing zoom, rotate, pan, "
                    "center and step, iterations, num_octave, octave_scale, max_loss, jitter, layers over time.",
                    type_=Optional[Path], panel=MOTION_PANEL) = None,
    frame_iterations: _zoom_opt("frame_iterations", FRAME_PANEL, "video") = None,
    frame_num_octave: _zoom_opt("frame_num_octave", FRAME_PANEL, "video") = None,
    interpolation: _zoom_opt("interpolation", FRAME_PANEL) = None,
    interpolate: _zoom_opt("interpolate", FRAME_PANEL) = None,
    edges: _zoom_opt("edges", FRAME_PANEL) = None,
    color_hold: _zoom_opt("color_hold", FRAME_PANEL) = None,
    crf: _zoom_opt("crf", OUTPUT_PANEL, "video") = None,
    pix_fmt: _zoom_opt("pix_fmt", OUTPUT_PANEL, "video") = None,
    restart: restart_option(OUTPUT_PANEL) = False,
    keep_frames: keep_frames_option(OUTPUT_PANEL) = False,
    work_dir: work_dir_option(OUTPUT_PANEL) = None,
    workers: workers_option() = None,
    ray: ray_option() = None,
    dream: dict = None,
    preset: Optional[str] = None,
) -> None:
    """Infinite dream zoom: each frame is the last one moved along the camera path and dreamed a little more.

    Interrupted renders (Ctrl-C) keep their frames: run the same command again to resume.
    The preset defaults to `zoom`; another preset keeps zoom's short per-frame dream unless it sets its own.
    """
    from ..render import zoom as zooming

    output = output or _beside(source, "zoom", ".mp4" if not preview else ".preview.mp4")
    motion = {"zoom": parse_value(zoom_, "zoom"), "rotate": parse_value(rotate, "rotate"),
              "pan": parse_pair(pan, "--pan", "12,-4"),
              "center": parse_pair(center, "--center", "0.5,0.4"), "duration": duration, "frames": frames, "fps": fps,
              "interpolation": interpolation, "edges": edges, "color_hold": color_hold, "interpolate": interpolate,
              "frame_iterations": frame_iterations,
              "frame_num_octave": frame_num_octave, "crf": crf, "pix_fmt": pix_fmt}
    if dry_run:
        rows = zooming.zoom_schedule(source, preset=preset, keyframes=keyframes, audio=audio, **dream_flags(dream),
                                     **motion)
        _print_schedule(rows, as_json)
        return
    if preview:
        result = zooming.render_zoom_preview(source, output, preset=preset, keyframes=keyframes, audio=audio,
                                             **dream_flags(dream), **motion)
        typer.echo(str(result.output))
        return
    with RenderBar("zooming") as bar:
        try:
            result = zooming.render_zoom(source, output, preset=preset, progress=bar, keyframes=keyframes, audio=audio,
                                         restart=restart, keep_frames=keep_frames, work_dir=work_dir,
                                         **dream_flags(dream), **motion, workers=workers,
                                         ray=ray)
        except KeyboardInterrupt:
            bar.stop()
            interrupted(ctx, output, work_dir)
    typer.echo(str(result.output))


def _print_schedule(rows: list, as_json: bool) -> None:
    import json

    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for c in ("frame", "t", "zoom", "rotate", "pan", "center", "step", "iterations", "layers"):
        table.add_column(c, justify="right" if c not in ("pan", "center", "layers") else "left")
    for r in rows:
        layers = r["layers"] if isinstance(r["layers"], str) else " ".join(f"{k}:{v:.3g}" for k, v in r["layers"].items())
        table.add_row(str(r["frame"]), f"{r['t']:.3f}", f"{r['zoom']:.4f}", f"{r['rotate']:.2f}",
                      f"{r['pan'][0]:.1f},{r['pan'][1]:.1f}", f"{r['center'][0]:.2f},{r['center'][1]:.2f}",
                      f"{r['step']:.4g}", str(r["iterations"]), layers)
    Console(width=160).print(table)


# ---- timelapse -----------------------------------------------------------------------------------------

@handle_errors
@with_dream_options
def timelapse(
    ctx: typer.Context,
    source: _source_arg(),
    output: _output_opt("Result: .mp4/.mov/.mkv or .gif (crossfaded snapshots), .png/.jpg (a labelled "
                        "contact sheet), or a folder (the snapshots as PNG) "
                        "(default: SOURCE.timelapse.mp4 beside the source).") = None,
    checkpoints: _lapse_opt("checkpoints") = None,
    every: _lapse_opt("every") = None,
    fps: _lapse_opt("fps", type_=Optional[str]) = None,  # 30000/1001 too: parsed by settings.parse_fps
    hold: _lapse_opt("hold") = None,
    fade: _lapse_opt("fade") = None,
    labels: _lapse_opt("labels", type_=bool) = True,
    cell_size: _lapse_opt("cell_size") = None,
    columns: _lapse_opt("columns") = None,
    crf: _lapse_opt("crf") = None,
    restart: restart_option(LAPSE_PANEL, "checkpoints") = False,
    work_dir: work_dir_option(LAPSE_PANEL, "checkpoints") = None,
    workers: workers_option() = None,
    ray: ray_option() = None,
    dream: dict = None,
    preset: Optional[str] = None,
) -> None:
    """The dream as iterations grow: independent renders at --checkpoints, or one run sampled --every K steps.

    Interrupted checkpoint renders (Ctrl-C) keep the finished checkpoints: run the same command again to resume.
    """
    from ..render import timelapse as lapse

    counts = lapse.parse_checkpoints(checkpoints) if checkpoints is not None else None
    output = output or _beside(source, "timelapse", ".mp4")
    with RenderBar("dreaming") as bar:
        try:
            result = lapse.render_timelapse(
                source, output, preset=preset, progress=bar, restart=restart, work_dir=work_dir, **dream_flags(dream),
                checkpoints=counts, every=every, fps=None if fps is None else float(_fps(fps)), hold=hold, fade=fade,
                labels=labels, cell_size=cell_size, columns=columns, crf=crf, workers=workers, ray=ray)
        except KeyboardInterrupt:
            bar.stop()
            if every is not None:  # one continuous run: nothing to resume from
                raise
            interrupted(ctx, output, work_dir, "checkpoint")
    typer.echo(str(result.output))


def _fps(text: str):
    from ..settings import parse_fps

    return parse_fps(text)


# ---- sweep ---------------------------------------------------------------------------------------------

@handle_errors
@with_dream_options
def sweep(
    ctx: typer.Context,
    source: _source_arg(),
    vary: option("sweep", "vary", "sweep", SWEEP_PANEL, type_=list[str]),
    output: _output_opt("The labelled grid: .png/.jpg/.webp (default: SOURCE.sweep.png beside the source).") = None,
    save_cells: option("sweep", "save_cells", "sweep", SWEEP_PANEL, type_=Optional[Path]) = None,
    cell_size: option("sweep", "cell_size", "sweep", SWEEP_PANEL) = None,
    restart: restart_option(SWEEP_PANEL, "cells") = False,
    work_dir: work_dir_option(SWEEP_PANEL, "cells") = None,
    workers: workers_option() = None,
    ray: ray_option() = None,
    dream: dict = None,
    preset: Optional[str] = None,
) -> None:
    """A labelled grid of one photo dreamed with each combination of the --vary values.

    Interrupted sweeps (Ctrl-C) keep their finished cells: run the same command again to resume.
    """
    from ..render.sweep import parse_vary, render_sweep

    axes = [parse_vary(v) for v in vary]  # bad axes are refused before any model loads
    output = output or _beside(source, "sweep", ".png")
    with RenderBar("dreaming") as bar:
        try:
            result = render_sweep(source, output, preset=preset, progress=bar, restart=restart, work_dir=work_dir,
                                  **dream_flags(dream), vary=axes,
                                  save_cells=None if save_cells is None else str(save_cells), cell_size=cell_size,
                                  workers=workers, ray=ray)
        except KeyboardInterrupt:
            bar.stop()
            interrupted(ctx, output, work_dir, "cell")
    typer.echo(str(result.output))
