"""Item 6: coherence of `dreamvid video` (default preset) on every kind of footage (issue 8).

For each clip kind of bench/clips.py: render it with the `video` preset, then measure with
`dreamvid coherence` (render/measure.py): short-term warping error over the source's,
long-term (t against t - k), dream strength (later frames over the first, each shot's first
over its median, p90/p10), brightness offset; and the same first frames dreamed
independently (`--flow none`, the full dream on every frame: slow, so fewer frames), whose
warping error is what coherence removes. Time per frame counts the frames after the first
(the first is a full still dream, the same with either method).

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
           "p90_over_p10": 1.5, "brightness_levels": 3.0}


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


def measure_clip(kind: str, folder: Path, settings, n: int, n_ind: int, size=clips.SIZE) -> dict:
    from dreamvid.render.measure import coherence

    src = clips.write(kind, folder / f"{kind}.mp4", n, size)
    out = folder / f"{kind}_dream"  # a folder of PNG frames: no second lossy encode in the measurement
    _, per_frame = _render(src, out, settings)
    c = coherence(src, out)
    row = {"kind": kind, "frames": n, "seconds_per_frame": round(per_frame, 4),
           "warping_error": c["warping_error"], "vs_source": c["ratio_to_source"],
           "long_term": c["long_term"]["ratio_to_source"], "long_term_error": c["long_term"]["warping_error"],
           "strength": {k: v for k, v in c["strength"].items() if k != "per_frame"},
           "strength_per_frame": c["strength"]["per_frame"], "brightness": c["brightness"]}
    if n_ind:
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


def measure(quick: bool = False, kinds=clips.KINDS, frames: int | None = None, independent: int | None = None,
            long: bool | None = None, folder: Path | None = None, video: dict | None = None,
            dream: dict | None = None) -> dict:
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
            f"brightness range {row['brightness']['range']:.2f}, {row['seconds_per_frame']:.3f} s/frame")


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
    return hit


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coherence", description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default=",".join(clips.KINDS))
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--independent", type=int, default=None, help="frames dreamed with --flow none (0: skip)")
    parser.add_argument("--long", action="store_true", help="also the 300-frame brightness clip")
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
        value = json.loads(value) if value not in ("dis", "farneback", "none", "fast", "medium", "ultrafast") else value
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
                long=args.long, folder=args.keep, video=video, dream=dream)
    for row in r["rows"]:
        print(f"{row['kind']:10s} {_short(row)}")
    if "long_still" in r:
        print("long still:", json.dumps(r["long_still"]))
    print("hit:", r["hit"])
    if args.json:
        args.json.write_text(json.dumps(r, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
