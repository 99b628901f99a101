"""`dreamvid video`: dream a clip coherently; `dreamvid coherence`: measure how much one flickers."""

import json
import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SettingsError
from .common import (EXPRESSION_NAMES, RenderBar, default_output, dream_flags, handle_errors, interrupted,
                     keep_frames_option, ray_option, restart_option, with_dream_options, work_dir_option,
                     workers_option)

VIDEO_PANEL = "Video"
OUTPUT_PANEL = "Output and resume"
POSITION = "seconds (12, 1.5, 12s, 1:05.5) or a frame index (f30)"


def register(app: typer.Typer) -> None:
    app.command("video")(video)
    app.command("coherence")(coherence)


def _video_opt(*names: str, help: str, type_=Optional[float], panel: str = VIDEO_PANEL):
    return Annotated[type_, typer.Option(*names, help=help, rich_help_panel=panel, show_default=False)]


@handle_errors
@with_dream_options
def video(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="Clip to dream (mp4, mov, mkv, webm, avi, gif).", show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", show_default=False, rich_help_panel=OUTPUT_PANEL,
        help="Result: .mp4/.mov/.mkv (H.264 + the source's audio), .gif, or a folder for PNG frames "
             "(default: SOURCE.dream.mp4 beside the source).")] = None,
    flow: _video_opt("--flow", help="Optical flow: dis, farneback, or none (independent frames, flickers).",
                     type_=Optional[str]) = None,
    flow_quality: _video_opt("--flow-quality", help="DIS preset: ultrafast, fast or medium.",
                             type_=Optional[str]) = None,
    blend: _video_opt("--blend", help="How much of the propagated dream carries into the next frame, 0..1, or an "
                      f"expression of {EXPRESSION_NAMES} (the clip's own soundtrack), e.g. \"0.9-0.3*bass\".",
                      type_=Optional[str]) = None,
    frame_iterations: _video_opt("--frame-iterations", help="Iterations per octave for frames after the first "
                                 "(they start from the warped previous dream), or an expression.",
                                 type_=Optional[str]) = None,
    frame_num_octave: _video_opt("--frame-num-octave", help="Octaves for frames after the first.",
                                 type_=Optional[int]) = None,
    temporal_weight: _video_opt("--temporal-weight", help="0..1: how much less re-dreaming a reliably tracked, "
                                "already dreamed pixel gets (0: as much as new content; steadier toward 1).") = None,
    strength_hold: _video_opt("--strength-hold", help="0..1: how fully each region keeps its dream strength from "
                              "frame to frame (0: off; 1: no fading or growing).") = None,
    scene_cuts: _video_opt("--scene-cuts/--no-scene-cuts", help="Restart the dream at hard cuts.",
                           type_=Optional[bool]) = None,
    start: _video_opt("--start", help=f"First frame to dream: {POSITION}.", type_=Optional[str]) = None,
    end: _video_opt("--end", help=f"Stop before this frame: {POSITION}.", type_=Optional[str]) = None,
    fps: _video_opt("--fps", help="Output frame rate (24, 30000/1001) instead of the source's; drops the audio. "
                    "With --interpolate: the playback rate (below the source's x K: slow motion).",
                    type_=Optional[str], panel=OUTPUT_PANEL) = None,
    cadence: _video_opt("--cadence", help="N: dream every Nth frame and carry the dream along the flow through the "
                        "frames between (about N x faster; 1..12, default 1).", type_=Optional[int]) = None,
    interpolate: _video_opt("--interpolate", help="K: write K-1 flow-interpolated frames between output frames "
                            "(smooth at K x the frame rate, or slow motion with --fps; no model, 1..16).",
                            type_=Optional[int], panel=OUTPUT_PANEL) = None,
    crf: _video_opt("--crf", help="H.264 quality, 0 (lossless) .. 51; 18 looks lossless.", type_=Optional[int],
                    panel=OUTPUT_PANEL) = None,
    keep_audio: _video_opt("--keep-audio/--no-audio", help="Copy the source's audio, trimmed to the range "
                           "(default: keep).", type_=Optional[bool], panel=OUTPUT_PANEL) = None,
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
                                  strength_hold=strength_hold, scene_cuts=scene_cuts, fps=fps, crf=crf,
                                  keep_audio=keep_audio, interpolate=interpolate, cadence=cadence,
                                  workers=workers, ray=ray)
        except KeyboardInterrupt:
            bar.stop()
            interrupted(ctx, output, work_dir)
    typer.echo(str(result.output))


@handle_errors
def coherence(
    source: Annotated[Path, typer.Argument(help="The original clip.", show_default=False)],
    output: Annotated[Path, typer.Argument(help="The dreamed clip (a video or a folder of PNG frames).",
                                           show_default=False)],
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
    the floor that flow errors set.
    """
    from .. import media
    from ..render.measure import coherence as measure
    from ..render.video import frame_index

    if flow not in ("dis", "farneback"):
        raise SettingsError(f"--flow {flow!r} cannot measure: the warping error needs optical flow",
                            hint="use --flow dis (the default) or --flow farneback")
    first = frame_index(start, media.probe_video(source).fps, "--start") if start else None
    result = measure(source, output, flow=flow, max_frames=max_frames, start=first)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    errors, long = result["warping_error"], result["long_term"]
    table = Table(title=f"Warping error ({result['pairs']} frame pairs, {result['size'][0]}x{result['size'][1]})")
    table.add_column("clip")
    table.add_column("warping error (x1e-3)", justify="right")
    table.add_column("vs source", justify="right")
    table.add_column(f"t vs t-{long['k']} (x1e-3)", justify="right")
    table.add_column("vs source", justify="right")
    for key, path in (("output", result["output"]), ("source", result["source"])):
        ratio = errors[key] / errors["source"] if errors["source"] else math.inf
        lt = long["warping_error"][key]
        lt_ratio = lt / long["warping_error"]["source"] if long["warping_error"]["source"] else math.nan
        table.add_row(f"{key}: {Path(path).name}", f"{errors[key] * 1e3:.3f}", f"{ratio:.2f}x",
                      f"{lt * 1e3:.3f}" if math.isfinite(lt) else "-",
                      f"{lt_ratio:.2f}x" if math.isfinite(lt_ratio) else "-")
    s, b = result["strength"], result["brightness"]
    strength = Table(title="Dream strength, mean |output - source| (levels): shots' first frames, later frames; "
                           "brightness offset output - source (range, trend per 100 frames)")
    for col in ("first", "later", "later/first", "first/median", "p90/p10", "brightness (range, trend)"):
        strength.add_column(col, justify="right")
    strength.add_row(f"{s['first']:.2f}", f"{s['later']:.2f}", f"{s['later_over_first']:.2f}",
                     f"{s['first_over_median']:.2f}", f"{s['p90_over_p10']:.2f}",
                     f"{b['mean']:+.2f} ({b['range']:.2f}, {b['trend_per_100_frames']:+.2f})")
    console = Console()
    console.print(table)
    console.print(strength)
    notes = [n for n in (result["resized"], f"{result['skipped_cuts']} pairs across scene cuts skipped"
                         if result["skipped_cuts"] else None, *result["notes"]) if n]
    for note in notes:
        console.print(f"note: {note}")
