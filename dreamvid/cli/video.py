"""`dreamvid video`: dream a clip coherently; `dreamvid coherence`: measure how much one flickers."""

import json
import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SettingsError
from ..params import POSITION
from .common import (RenderBar, default_output, dream_flags, handle_errors, interrupted, keep_frames_option,
                     keyword_option, option, ray_option, restart_option, with_dream_options, work_dir_option,
                     workers_option)

VIDEO_PANEL = "Video"
OUTPUT_PANEL = "Output and resume"


def register(app: typer.Typer) -> None:
    app.command("video")(video)
    app.command("coherence")(coherence)


def _video_opt(name: str, panel: str = VIDEO_PANEL):
    """A video setting's option, from the catalogue (params.py)."""
    return option("video", name, "video", panel)


@handle_errors
@with_dream_options
def video(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="Clip to dream (mp4, mov, mkv, webm, avi, gif).", show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", show_default=False, rich_help_panel=OUTPUT_PANEL,
        help="Result: .mp4/.mov/.mkv (H.264 + the source's audio), .gif, or a folder for PNG frames "
             "(default: SOURCE.dream.mp4 beside the source).")] = None,
    flow: _video_opt("flow") = None,
    flow_quality: _video_opt("flow_quality") = None,
    blend: _video_opt("blend") = None,
    frame_iterations: _video_opt("frame_iterations") = None,
    frame_num_octave: _video_opt("frame_num_octave") = None,
    temporal_weight: _video_opt("temporal_weight") = None,
    strength_hold: _video_opt("strength_hold") = None,
    scene_cuts: _video_opt("scene_cuts") = None,
    start: keyword_option("start", VIDEO_PANEL) = None,
    end: keyword_option("end", VIDEO_PANEL) = None,
    fps: _video_opt("fps", OUTPUT_PANEL) = None,
    cadence: _video_opt("cadence") = None,
    interpolate: _video_opt("interpolate", OUTPUT_PANEL) = None,
    crf: _video_opt("crf", OUTPUT_PANEL) = None,
    pix_fmt: _video_opt("pix_fmt", OUTPUT_PANEL) = None,
    keep_audio: _video_opt("keep_audio", OUTPUT_PANEL) = None,
    restart: restart_option(OUTPUT_PANEL) = False,
    keep_frames: keep_frames_option(OUTPUT_PANEL) = False,
    work_dir: work_dir_option(OUTPUT_PANEL) = None,
    workers: workers_option() = None,
    ray: ray_option() = None,
    dream: dict = None,
    preset: Optional[str] = None,
) -> None:
    """Dream a video clip; optical flow carries the dream along with the motion.

    Interrupted renders (Ctrl-C) keep their frames: run the same command again to resume.
    The preset defaults to `video`.
    """
    from ..expr import number_or_text
    from ..render.video import render_video

    output = output or default_output(source, ".mp4")
    with RenderBar("dreaming") as bar:
        try:
            result = render_video(source, output, preset=preset, progress=bar, start=start, end=end,
                                  restart=restart, keep_frames=keep_frames, work_dir=work_dir, **dream_flags(dream),
                                  flow=flow, flow_quality=flow_quality, blend=number_or_text(blend, "blend"),
                                  frame_iterations=number_or_text(frame_iterations, "frame_iterations"),
                                  frame_num_octave=frame_num_octave, temporal_weight=temporal_weight,
                                  strength_hold=strength_hold, scene_cuts=scene_cuts, fps=fps, crf=crf, pix_fmt=pix_fmt,
                                  keep_audio=keep_audio, interpolate=interpolate, cadence=cadence,
                                  workers=workers, ray=ray)
        except KeyboardInterrupt:
            bar.stop()
            interrupted(ctx, output, work_dir)
    typer.echo(str(result.output))


@handle_errors
def coherence(
    source: Annotated[Path, typer.Argument(help="The original clip.", show_default=False)],
    output: Annotated[Optional[Path], typer.Argument(
        help="The dreamed clip: a video, or a folder of PNG frames (optional with --frames).",
        show_default=False)] = None,
    frames: Annotated[Optional[Path], typer.Option(
        "--frames", show_default=False, help="The PNG frames OUTPUT was encoded from (a work folder kept with "
                                             "--keep-frames, or a folder of frame_NNNNN.png): measured too, with "
                                             "the file's loss against them. Alone: measure this folder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
    flow: Annotated[str, typer.Option("--flow", help="Flow used for measuring: dis or farneback.")] = "dis",
    start: Annotated[Optional[str], typer.Option(
        "--start", show_default=False, help=f"Where in SOURCE the output begins: {POSITION} (default: what the "
                                            "output says, for a dreamvid render of a range; else 0).")] = None,
    max_frames: Annotated[Optional[int], typer.Option("--max-frames", show_default=False,
                                                      help="Compare at most this many frames.")] = None,
) -> None:
    """Measure flicker: the warping error (Lai et al. 2018) of OUTPUT and of SOURCE.

    Each output frame is compared with the previous one warped by the SOURCE's optical flow,
    on the pixels that flow can be trusted on. Lower is steadier; the source's own number is
    the floor that flow errors set. With --frames, the frames a file was encoded from are
    measured in the same pass: "vs frames" is what the encode added.
    """
    from .. import media
    from ..render.measure import coherence as measure
    from ..render.video import frame_index

    if flow not in ("dis", "farneback"):
        raise SettingsError(f"--flow {flow!r} cannot measure: the warping error needs optical flow",
                            hint="use --flow dis (the default) or --flow farneback")
    if output is None and frames is None:
        raise SettingsError("nothing to measure: give OUTPUT, --frames DIR, or both",
                            hint="e.g. dreamvid coherence clip.mp4 clip.dream.mp4 --frames work_folder")
    if output is None:
        output, frames = frames, None
    first = frame_index(start, media.probe_video(source).fps, "--start") if start else None
    result = measure(source, output, flow=flow, max_frames=max_frames, start=first, frames=frames)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(_error_table(result))
    s, b = result["strength"], result["brightness"]
    strength = Table(title="Dream strength, mean |output - source| (levels): shots' first frames, later frames; "
                           "brightness offset output - source (range, trend per 100 frames)")
    for col in ("first", "later", "later/first", "first/median", "p90/p10", "brightness (range, trend)"):
        strength.add_column(col, justify="right")
    strength.add_row(f"{s['first']:.2f}", f"{s['later']:.2f}", f"{s['later_over_first']:.2f}",
                     f"{s['first_over_median']:.2f}", f"{s['p90_over_p10']:.2f}",
                     f"{b['mean']:+.2f} ({b['range']:.2f}, {b['trend_per_100_frames']:+.2f})")
    console.print(strength)
    notes = [n for n in (result["resized"], f"{result['skipped_cuts']} pairs across scene cuts skipped"
                         if result["skipped_cuts"] else None, *result["notes"]) if n]
    for note in notes:
        console.print(f"note: {note}")


def _ratio_text(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b and math.isfinite(a) and math.isfinite(b) else "-"


def _error_table(result: dict):
    """Short- and long-term warping error of the output, its frames (with --frames) and the source."""
    from rich.table import Table

    long, png = result["long_term"], result.get("encoded_from")
    rows = [("output", result["output"], result["warping_error"]["output"], long["warping_error"]["output"])]
    if png:
        rows.append(("frames", png["path"], png["warping_error"], png["long_term_error"]))
    rows.append(("source", result["source"], result["warping_error"]["source"], long["warping_error"]["source"]))
    by_frames = ["/frames"] if png else []
    from rich import box

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=f"Warping error x1e-3 ({result['pairs']} frame pairs, {result['size'][0]}x{result['size'][1]}), "
                        f"frame t vs t-1 and vs t-{long['k']}")
    table.add_column("clip", no_wrap=True, overflow="ellipsis", max_width=18)
    for col in ("t-1", "/source", *by_frames, f"t-{long['k']}", "/source", *by_frames):
        table.add_column(col, justify="right", no_wrap=True, min_width=7)
    src, long_src = result["warping_error"]["source"], long["warping_error"]["source"]
    for key, path, short, lt in rows:
        cells = [f"{key}: {Path(path).name}", f"{short * 1e3:.3f}", _ratio_text(short, src)]
        cells += [_ratio_text(short, png["warping_error"])] if png else []
        cells += [f"{lt * 1e3:.3f}" if math.isfinite(lt) else "-", _ratio_text(lt, long_src)]
        cells += [_ratio_text(lt, png["long_term_error"])] if png else []
        table.add_row(*cells)
    return table
