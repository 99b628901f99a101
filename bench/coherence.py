"""Item 6: coherence of `dreamvid video` (default preset) on every kind of footage (issues 8, 24).

For each clip kind of bench/clips.py: render it with the `video` preset, then measure with
`dreamvid coherence` (render/measure.py): short-term warping error over the source's,
long-term (t against t - k), dream strength (later frames over the first, each shot's first
over its median, p90/p10), brightness offset; and the same first frames dreamed
independently (`--flow none`, the full dream on every frame: slow, so fewer frames), whose
warping error is what coherence removes. Time per frame counts the frames after the first
(the first is a full still dream, the same with either method).

The file a user plays (issue 24): the frames are encoded as `dreamvid video` encodes them
(H.264 yuv420p, and GIF) and, side by side, as before issue 24 (`steady=False`); each file is
measured against the frames it was encoded from (`coherence(frames=)`), its size against the
old crf-18 encode's, its saturation against the frames', and the encode's extra time per frame
against the time a frame takes to dream. `zoom_files` does the same for a zoom, whose coherence
is its frames against the camera's known motion (`measure.motion_error`). Real footage
(clips.REAL_KINDS) is measured at its own size, without the --flow none comparison.

`python -m bench.coherence [--kinds a,b] [--frames N] [--json PATH]` runs it alone.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from . import clips

FRAMES = 30  # per clip (quick: 8)
INDEPENDENT_FRAMES = 6  # frames dreamed with --flow none for the output/independent ratio (quick: 3)
QUICK_KINDS = ("fast",)  # --quick: the worst kind against the source (a fast camera)
LONG_FRAMES = 300  # the brightness-trend clip (still scene), only without --quick
LONG_SIZE = (128, 80)  # px, for the 300-frame clip
PRESET = "video"
TARGETS = {"vs_source": 2.0, "vs_independent": 0.1, "later_over_first": 0.6, "first_over_median": 1.3,
           "p90_over_p10": 1.5, "brightness_levels": 3.0,
           "file_over_frames": 1.2, "file_size_vs_crf18": 2.0, "encode_cost": 0.10}
# What the frames are encoded as: name -> (extension, encode_video keywords). "before": issue 24's baseline.
ENCODES = {"mp4": (".mp4", {}), "before": (".mp4", {"steady": False}), "yuv444p": (".mkv", {"pix_fmt": "yuv444p"}),
           "gif": (".gif", {}), "gif_before": (".gif", {"steady": False})}
ZOOM_FRAMES = 24  # frames of the zoom measured by zoom_files, at ZOOM_SIZE px
ZOOM_SIZE = 192


def _render(src: Path, out: Path, settings) -> tuple[object, float]:
    """(VideoResult, seconds per frame after the first)."""
    from dreamvid.render import render_video

    marks = []

    def progress(p):
        if p.rendered in (1, ):
            marks.append(time.perf_counter())

    r = render_video(src, out, settings, progress=progress)
    later = (time.perf_counter() - marks[0]) / max(r.rendered - 1, 1) if marks else float("nan")
    return r, later


def _saturation(frames) -> float:
    """Mean HSV saturation (0..255) of the frames: a flattened colour shows here."""
    import cv2
    import numpy as np

    return float(np.mean([cv2.cvtColor(f, cv2.COLOR_RGB2HSV)[..., 1].mean() for f in frames]))


def _frames_of(path: Path) -> list:
    from contextlib import closing

    from dreamvid import media

    if path.is_dir():
        return [media.read_image(p) for p in sorted(path.glob("frame_*.png"))]
    with closing(media.read_frames(path)) as reader:
        return [f for _, f in reader]


def encode_files(frames: Path, folder: Path, name: str, n: int, fps, crf: int) -> dict:
    """The frames encoded every way of ENCODES: {encode: path}, and "encode_seconds": the median
    time of the mp4 and the before encode, alternated twice (one run, side by side)."""
    from statistics import median

    from dreamvid import media

    paths, times = {}, {"mp4": [], "before": []}
    for round_ in range(2):
        for key, (ext, kw) in ENCODES.items():
            if round_ and key not in times:
                continue
            paths[key] = folder / f"{name}.{key}{ext}"
            t = time.perf_counter()
            media.encode_video(frames, paths[key], fps=fps, n_frames=n, crf=crf, **kw)
            if key in times:
                times[key].append(time.perf_counter() - t)
    return {"paths": paths, "encode_seconds": {k: median(v) for k, v in times.items()}}


def _file_facts(path: Path, before: Path, frames_saturation: float) -> dict:
    """Size (and against the before encode's, for an H.264 file) and saturation over the frames'."""
    h264 = path.suffix != ".gif"
    return {"bytes": path.stat().st_size, "size_vs_before": path.stat().st_size / before.stat().st_size if h264 else None,
            "saturation_vs_frames": _saturation(_frames_of(path)) / frames_saturation}


def file_row(src: Path, frames: Path, files: dict, seconds_per_frame: float, n: int) -> dict:
    """What each encode of `frames` keeps of their steadiness, size and colour (see the module doc)."""
    from dreamvid.render.measure import coherence

    paths = files["paths"]
    png_saturation = _saturation(_frames_of(frames))
    row = {"frames_saturation": png_saturation}
    for key, path in paths.items():
        c = coherence(src, path, frames=frames)
        row[key] = {**_file_facts(path, paths["before"], png_saturation), "vs_source": c["ratio_to_source"],
                    "over_frames": c["output_over_frames"],
                    "long_term_over_frames": c["long_term_output_over_frames"],
                    "frames_vs_source": c["encoded_from"]["ratio_to_source"]}
    t = files["encode_seconds"]
    row["encode_seconds"] = t
    row["encode_cost"] = (t["mp4"] - t["before"]) / n / seconds_per_frame  # a fraction of a frame's dream
    return row


def measure_clip(kind: str, folder: Path, settings, n: int, n_ind: int, size=clips.SIZE) -> dict:
    from dreamvid import media
    from dreamvid.render.measure import coherence

    real = kind in clips.REAL_KINDS
    src = clips.write(kind, folder / f"{kind}.mp4", n, None if real else size)
    out = folder / f"{kind}_dream"  # a folder of PNG frames: no second lossy encode in the measurement
    _, per_frame = _render(src, out, settings)
    c = coherence(src, out)
    files = encode_files(out, folder, kind, n, media.probe_video(src).fps, settings.video.crf)
    row = {"kind": kind, "frames": n, "seconds_per_frame": round(per_frame, 4),
           "size": list(clips.size_of(kind, None if real else size)),
           "file": file_row(src, out, files, per_frame, n),
           "warping_error": c["warping_error"], "vs_source": c["ratio_to_source"],
           "long_term": c["long_term"]["ratio_to_source"], "long_term_error": c["long_term"]["warping_error"],
           "strength": {k: v for k, v in c["strength"].items() if k != "per_frame"},
           "strength_per_frame": c["strength"]["per_frame"], "brightness": c["brightness"]}
    if n_ind and not real:
        ind_settings = replace(settings, video=replace(settings.video, flow="none"))
        ind = folder / f"{kind}_independent"
        from dreamvid.render import render_video

        render_video(src, ind, ind_settings, end=n_ind)
        ci, cf = coherence(src, ind, max_frames=n_ind), coherence(src, out, max_frames=n_ind)
        row["vs_independent"] = cf["warping_error"]["output"] / ci["warping_error"]["output"]
        row["independent_vs_source"] = ci["ratio_to_source"]
        row["independent_strength"] = ci["strength"]["median"]
        if kind in clips.PHOTO_KINDS:
            row["oracle"] = oracle(kind, folder, settings, n, n_ind, size, ci["warping_error"]["output"],
                                   c["strength"]["median"])
    return row


def _dreamed_look(settings):
    """clips `look`: the photo dreamed once, at the scale the clip films it (one dream px per clip px)."""
    import cv2
    import numpy as np

    from dreamvid.dream import dream_image

    def look(photo: np.ndarray, px: float) -> np.ndarray:
        h, w = photo.shape[:2]
        small = cv2.resize(photo, (round(w / px), round(h / px)), interpolation=cv2.INTER_AREA)
        detail = dream_image(small, settings.dream).astype(np.float32) - small.astype(np.float32)
        detail = cv2.resize(detail, (w, h), interpolation=cv2.INTER_CUBIC)
        return np.clip(photo.astype(np.float32) + detail, 0, 255).round().astype(np.uint8)

    return look


def oracle(kind: str, folder: Path, settings, n: int, n_ind: int, size, independent_error: float,
           strength: float) -> dict:
    """A perfectly coherent dream: the clip's photo dreamed once and filmed along the clip's own
    camera path (clips.frames(look=), same noise draw), its dream detail (that film minus the
    plain one) added to the decoded source frames. No video method carries a dream more
    faithfully, so its warping error over independent dreaming's is the floor of the
    'output / independent' ratio on this clip for any output that keeps the source's pixels.
    Its detail is scaled to `strength` (levels, the render's median), so that both are dreams
    of one strength (a stronger dream has a larger warping error)."""
    from contextlib import closing

    import numpy as np

    from dreamvid import media
    from dreamvid.render.measure import coherence

    src = folder / f"{kind}.mp4"
    out = folder / f"{kind}_oracle"
    out.mkdir(parents=True, exist_ok=True)
    dreamed, plain = clips.frames(kind, n, size, look=_dreamed_look(settings)), clips.frames(kind, n, size)
    details = [d.astype(np.float32) - p.astype(np.float32) for d, p in zip(dreamed, plain)]
    gain = strength / max(float(np.median([np.abs(d).mean() for d in details])), 1e-6)
    with closing(media.read_frames(src, end=n)) as decoded:
        for i, frame in decoded:
            media.write_image(out / f"frame_{i:05d}.png",
                              np.clip(frame + gain * details[i], 0, 255).round().astype(np.uint8))
    c, first = coherence(src, out), coherence(src, out, max_frames=n_ind)
    return {"vs_independent": first["warping_error"]["output"] / independent_error, "vs_source": c["ratio_to_source"],
            "long_term": c["long_term"]["ratio_to_source"], "strength": c["strength"]["median"]}


def zoom_files(folder: Path, n: int = ZOOM_FRAMES, size: int = ZOOM_SIZE) -> dict:
    """`dreamvid zoom` (its preset) of chelsea.jpg: n frames to a PNG folder, encoded every way of
    ENCODES; each against the camera's known motion from frame to frame (`measure.motion_error`,
    frames i-1 -> i, mean over the clip), over the PNG frames' own."""
    import numpy as np

    from dreamvid import presets
    from dreamvid.render import render_zoom
    from dreamvid.render.measure import motion_error
    from dreamvid.render.zoom import ZoomPlan

    photo = clips.SAMPLES / "chelsea.jpg"
    settings = presets.resolve("zoom", dream={"max_size": size}, zoom={"frames": n})
    out = folder / "zoom_dream"
    t = time.perf_counter()
    render_zoom(photo, out, settings)
    per_frame = (time.perf_counter() - t) / n
    plan = ZoomPlan(photo, None, settings, read=True)
    affine = [plan.path.trajectory.affine(i) for i in range(n)]

    def error(frames) -> float:
        return float(np.mean([motion_error(a, b, affine[i + 1]) for i, (a, b) in enumerate(zip(frames, frames[1:]))]))

    frames = _frames_of(out)
    own = error(frames)
    files = encode_files(out, folder, "zoom", n, plan.fps, settings.video.crf)
    row = {"frames": n, "size": size, "frames_error": own, "seconds_per_frame": per_frame,
           "frames_saturation": _saturation(frames)}
    for key, path in files["paths"].items():
        row[key] = {**_file_facts(path, files["paths"]["before"], row["frames_saturation"]),
                    "over_frames": error(_frames_of(path)) / own}
    row["encode_cost"] = (files["encode_seconds"]["mp4"] - files["encode_seconds"]["before"]) / n / per_frame
    return row


def measure(quick: bool = False, kinds=clips.KINDS, frames: int | None = None, independent: int | None = None,
            long: bool | None = None, folder: Path | None = None, video: dict | None = None,
            dream: dict | None = None, zoom: bool = True) -> dict:
    from dreamvid import presets

    settings = presets.resolve(PRESET, dream=dream or {}, video=video or {})
    n = frames or (8 if quick else FRAMES)
    n_ind = (3 if quick else INDEPENDENT_FRAMES) if independent is None else independent
    kinds = QUICK_KINDS if quick and kinds == clips.KINDS else kinds
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(folder or tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        for kind in kinds:
            t = time.perf_counter()
            rows.append(measure_clip(kind, tmp, settings, n, n_ind))
            print(f"[bench] coherence {kind}: {_short(rows[-1])} ({time.perf_counter() - t:.0f} s)",
                  file=sys.stderr, flush=True)
        result = {"preset": PRESET, "size": list(clips.SIZE), "frames": n, "independent_frames": n_ind,
                  "rows": rows, "targets": TARGETS}
        if long if long is not None else not quick:
            from dreamvid.render import render_video
            from dreamvid.render.measure import coherence

            src = clips.write("still", tmp / "long.mp4", LONG_FRAMES, LONG_SIZE)
            render_video(src, tmp / "long_dream", settings)
            c = coherence(src, tmp / "long_dream")
            result["long_still"] = {"frames": LONG_FRAMES, "size": list(LONG_SIZE), "brightness": c["brightness"],
                                    "strength": {k: v for k, v in c["strength"].items() if k != "per_frame"},
                                    "vs_source": c["ratio_to_source"]}
        if zoom:
            result["zoom"] = zoom_files(tmp)
            print(f"[bench] coherence zoom: {_short_file(result['zoom'])}", file=sys.stderr, flush=True)
    result["hit"] = _hits(result)
    return result


def age_profile(settings, folder: Path, n: int = FRAMES, k: int = 6, size=clips.SIZE) -> list[dict]:
    """Where the long-term error of the `fast` clip comes from, by how long content has been in view.

    The clip pans exactly clips.FAST_PX px a frame, so the column x of frame t shows what column
    x + k * FAST_PX showed at t - k, and content there entered the frame (age@t-k) frames
    before t - k. Error: mean squared difference of that pair in levels^2 over the source's
    (its noise), for bands of 12 columns, from frames k + 8 on."""
    import numpy as np

    from dreamvid import media
    from dreamvid.render import render_video

    src = clips.write("fast", folder / "fast_age.mp4", n, size)
    out = folder / "fast_age_dream"
    render_video(src, out, settings)
    dreams = [media.read_image(p).astype(np.float32) for p in sorted(out.glob("frame_*.png"))]
    sources = [f.astype(np.float32) for f in clips.frames("fast", n, size)]
    shift, w = k * clips.FAST_PX, size[0]
    err = {"output": np.zeros(w - shift), "source": np.zeros(w - shift)}
    for t in range(k + 8, n):
        for name, frames in (("output", dreams), ("source", sources)):
            err[name] += ((frames[t][:, :w - shift] - frames[t - k][:, shift:]) ** 2).mean(axis=(0, 2))
    rows = []
    for x in range(0, w - shift, 12):
        band = slice(x, x + 12)
        rows.append({"columns": [x, min(x + 12, w - shift)],
                     "age_frames": round((w - 1 - (x + 6) - shift) / clips.FAST_PX, 1),
                     "ratio_to_source": round(float(err["output"][band].sum() / err["source"][band].sum()), 2)})
    return rows


def _short(row: dict) -> str:
    s = row["strength"]
    ind = f", vs independent {row['vs_independent']:.3f}" if "vs_independent" in row else ""
    if "oracle" in row:
        o = row["oracle"]
        ind += (f" (a perfectly coherent dream: {o['vs_independent']:.3f}, {o['vs_source']:.2f}x the source, "
                f"long-term {o['long_term']:.2f}x, strength {o['strength']:.1f})")
    return (f"vs source {row['vs_source']:.2f}x{ind}, long-term {row['long_term']:.2f}x, strength "
            f"{s['later_over_first']:.2f}, first/median {s['first_over_median']:.2f}, p90/p10 {s['p90_over_p10']:.2f}, "
            f"brightness range {row['brightness']['range']:.2f}, {row['seconds_per_frame']:.3f} s/frame; "
            f"{_short_file(row['file'])}")


def _short_file(f: dict) -> str:
    """The file rows of one clip: each encode's warping error over its frames', size, saturation."""
    size = f"{f['mp4']['size_vs_before']:.2f}x the crf-18 size, " if f["mp4"].get("size_vs_before") else ""
    return (f"file / frames: mp4 {f['mp4']['over_frames']:.2f}x (before {f['before']['over_frames']:.2f}x, "
            f"yuv444p {f['yuv444p']['over_frames']:.2f}x), gif {f['gif']['over_frames']:.2f}x (before "
            f"{f['gif_before']['over_frames']:.2f}x); {size}saturation {f['mp4']['saturation_vs_frames']:.2f} "
            f"(before {f['before']['saturation_vs_frames']:.2f}) of the frames'; encode cost "
            f"{100 * f['encode_cost']:+.1f}% of a frame's time")


def _hits(result: dict) -> dict:
    t = TARGETS
    rows = result["rows"]
    hit = {
        "vs_source": all(r["vs_source"] <= t["vs_source"] for r in rows),
        "vs_independent": all(r.get("vs_independent", 0) <= t["vs_independent"] for r in rows),
        "later_over_first": all(r["strength"]["later_over_first"] >= t["later_over_first"] for r in rows),
        "first_over_median": all(r["strength"]["first_over_median"] <= t["first_over_median"] for r in rows),
        "p90_over_p10": all(r["strength"]["p90_over_p10"] <= t["p90_over_p10"] for r in rows),
    }
    if "long_still" in result:
        b = result["long_still"]["brightness"]
        hit["brightness"] = b["max_abs"] <= t["brightness_levels"] and abs(b["trend_per_100_frames"]) <= 1.0
    files = [r["file"] for r in rows] + ([result["zoom"]] if "zoom" in result else [])
    for key in ("mp4", "yuv444p", "gif"):
        hit[f"{key}_over_frames"] = all(f[key]["over_frames"] <= t["file_over_frames"] for f in files)
    hit["file_size"] = all(f["mp4"]["bytes"] <= t["file_size_vs_crf18"] * f["before"]["bytes"] for f in files)
    hit["encode_cost"] = all(f["encode_cost"] <= t["encode_cost"] for f in files)
    return hit


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coherence", description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default=",".join(clips.KINDS))
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--independent", type=int, default=None, help="frames dreamed with --flow none (0: skip)")
    parser.add_argument("--long", action="store_true", help="also the 300-frame brightness clip")
    parser.add_argument("--no-zoom", action="store_true", help="skip the zoom's file measurement")
    parser.add_argument("--keep", type=Path, default=None, help="keep clips and renders in this folder")
    parser.add_argument("--age-profile", action="store_true",
                        help="only the fast clip's long-term error by the age of the content (age_profile)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a [video] (or dream.KEY) setting of the preset, for ablations")
    args = parser.parse_args(argv)
    from dreamvid.models import setup_tensorflow

    setup_tensorflow()
    video, dream = {}, {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            value = json.loads(value)
        except json.JSONDecodeError:  # a word: dis, medium, yuv444p
            pass
        (dream if key.startswith("dream.") else video)[key.removeprefix("dream.")] = value
    if args.age_profile:
        from dreamvid import presets

        settings = presets.resolve(PRESET, dream=dream, video=video)
        with tempfile.TemporaryDirectory() as tmp:
            for row in age_profile(settings, Path(args.keep or tmp)):
                print(f"columns {row['columns'][0]:3d}-{row['columns'][1]:3d}  in view {row['age_frames']:5.1f} frames "
                      f"at t-6: long-term error {row['ratio_to_source']:.2f}x the source's")
        return 0
    r = measure(kinds=[k for k in args.kinds.split(",") if k], frames=args.frames, independent=args.independent,
                long=args.long, folder=args.keep, video=video, dream=dream, zoom=not args.no_zoom)
    for row in r["rows"]:
        print(f"{row['kind']:10s} {_short(row)}")
    if "long_still" in r:
        print("long still:", json.dumps(r["long_still"]))
    if "zoom" in r:
        print(f"zoom       {_short_file(r['zoom'])}")
    print("hit:", r["hit"])
    if args.json:
        args.json.write_text(json.dumps(r, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
