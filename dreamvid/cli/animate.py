"""`dreamvid zoom | timelapse | sweep`: animations and grids made from one photo."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SettingsError
from ..numeric import literal
from .common import (RenderBar, dream_flags, handle_errors, interrupted, keep_frames_option, ray_option,
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
    zoom_: _opt("--zoom", help="Zoom factor per second: 1 still, 1.25 flies in (default), 0.8 flies out; or an "
                "expression of t, f, fps, duration (and rms, onset, bass, mid, treble with --audio), e.g. "
                "'1.02+0.01*sin(2*pi*t/4)'.", type_=Optional[str], panel=MOTION_PANEL) = None,
    rotate: _opt("--rotate", help="Rotation in degrees per second, + counter-clockwise (default 0); or an "
                 "expression, e.g. '3*t'.", type_=Optional[str], panel=MOTION_PANEL) = None,
    pan: _opt("--pan", help="Pan in pixels per second, X,Y (right, down), e.g. 12,-4 (default 0,0).",
              type_=Optional[str], panel=MOTION_PANEL) = None,
    center: _opt("--center", help="Zoom/rotation centre as fractions of width,height (default 0.5,0.5).",
                 type_=Optional[str], panel=MOTION_PANEL) = None,
    duration: _opt("--duration", "-d", help="Length in seconds (default: the keyframes' last time, else 10).",
                   panel=MOTION_PANEL) = None,
    frames: _opt("--frames", help="Length in frames, instead of --duration.", type_=Optional[int],
                 panel=MOTION_PANEL) = None,
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
    fps: _opt("--fps", help="Frames per second (24 default, 30000/1001); the path does not depend on it.",
              type_=Optional[str], panel=MOTION_PANEL) = None,
    keyframes: _opt("--keyframes", "-k", help="TOML file of keyframe tables easing zoom, rotate, pan, "
                    "center and step, iterations, num_octave, octave_scale, max_loss, jitter, layers over time.",
                    type_=Optional[Path], panel=MOTION_PANEL) = None,
    frame_iterations: _opt("--frame-iterations", help="Iterations per octave of each frame after the first "
                           "(it starts from the moved previous dream).", type_=Optional[int],
                           panel=FRAME_PANEL) = None,
    frame_num_octave: _opt("--frame-num-octave", help="Octaves of each frame after the first.",
                           type_=Optional[int], panel=FRAME_PANEL) = None,
    interpolation: _opt("--interpolation", help="Warp kernel: lanczos (default, sharpest), cubic, linear, "
                        "nearest.", type_=Optional[str], panel=FRAME_PANEL) = None,
    interpolate: _opt("--interpolate", help="K: write K-1 flow-interpolated frames between dreamed frames, played "
                      "K times faster (smoother at the same speed; no model, 1..16).", type_=Optional[int],
                      panel=FRAME_PANEL) = None,
    edges: _opt("--edges", help="What fills the border a zoom-out, rotation or pan uncovers: inpaint (default: "
                "grown from the picture, then dreamed) or reflect (mirrored).", type_=Optional[str],
                panel=FRAME_PANEL) = None,
    color_hold: _opt("--color-hold", "--colour-hold", help="0..1: how firmly colours are held to the first "
                     "frame's (0 lets them run to a saturated rainbow; default 0.5).", panel=FRAME_PANEL) = None,
    crf: _opt("--crf", help="H.264 quality, 0 (lossless) .. 51; 18 looks lossless.", type_=Optional[int],
              panel=OUTPUT_PANEL) = None,
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
              "frame_num_octave": frame_num_octave, "crf": crf}
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
    checkpoints: _opt("--checkpoints", "-c", help="Iteration counts (per octave) rendered independently, "
                      "increasing: 40,80,120,160,200,240 (the default).", type_=Optional[str],
                      panel=LAPSE_PANEL) = None,
    every: _opt("--every", help="Instead: ONE run of --iterations, a snapshot every K steps (over all octaves) "
                "and of the result.", type_=Optional[int], panel=LAPSE_PANEL) = None,
    fps: _opt("--fps", help="Video frame rate (default 25).", type_=Optional[str], panel=LAPSE_PANEL) = None,
    hold: _opt("--hold", help="Seconds each snapshot is shown in a video (default 1).", panel=LAPSE_PANEL) = None,
    fade: _opt("--fade", help="Seconds of crossfade between snapshots (default 0.5; 0 cuts).",
               panel=LAPSE_PANEL) = None,
    labels: Annotated[bool, typer.Option("--labels/--no-labels", rich_help_panel=LAPSE_PANEL,
                                         help="Write the iteration count on video frames.")] = True,
    cell_size: _opt("--cell-size", help="Longest side of each picture in a contact sheet, px (default 384).",
                    type_=Optional[int], panel=LAPSE_PANEL) = None,
    columns: _opt("--columns", help="Pictures per row of a contact sheet (default: about 16:9).",
                  type_=Optional[int], panel=LAPSE_PANEL) = None,
    crf: _opt("--crf", help="H.264 quality, 0 (lossless) .. 51.", type_=Optional[int], panel=LAPSE_PANEL) = None,
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
    vary: Annotated[list[str], typer.Option(
        "--vary", show_default=False, rich_help_panel=SWEEP_PANEL,
        help="KEY=V1,V2,... a setting and its values; repeat for more axes (the first runs along the columns). "
             "Any setting: step, num_octave, octave_scale, iterations, max_loss, layers (join with +), model, "
             "seed, ...")],
    output: _output_opt("The labelled grid: .png/.jpg/.webp (default: SOURCE.sweep.png beside the source).") = None,
    save_cells: _opt("--save-cells", help="Also save every cell at full size into this folder.",
                     type_=Optional[Path], panel=SWEEP_PANEL) = None,
    cell_size: _opt("--cell-size", help="Longest side of each picture in the grid, px (default 384).",
                    type_=Optional[int], panel=SWEEP_PANEL) = None,
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
