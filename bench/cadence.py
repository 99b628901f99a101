"""`video --cadence N` (issue 15): time, warping error and dream strength for N = 1, 2, 3, 4.

For each clip (samples/bunny.mp4, and bench/clips.py kinds made at the same size) and each
cadence, the `video` preset renders the clip into a folder of PNG frames (no second lossy
encode in the measurement) and `render.measure.coherence` measures it: warping error over
the source's, long-term error, strength (mean |output - source|) of the later frames. Time:
the whole render (first frame, flow, every frame, PNGs) in a process that has loaded the
network and traced its steps already (a warm-up render first), wall and CPU seconds, and per
frame after the first. A command line adds ~3 s of start-up to every cadence alike.

`python -m bench.cadence [--kinds bunny,pan_zoom,still] [--cadences 1,2,3,4] [--frames 75] [--json PATH]`
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from . import clips

SIZE = (320, 180)  # px: bunny's own size, so every clip costs the same per frame
FRAMES = 75  # bunny's length (3 s at 25 fps)
KINDS = ("bunny", "pan_zoom", "still", "traffic")


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _source(kind: str, folder: Path, n: int) -> Path:
    if kind == "bunny":
        return clips.SAMPLES / "bunny.mp4"
    return clips.write(kind, folder / f"{kind}.mp4", n, SIZE)


def render_one(src: Path, out: Path, cadence: int, n: int) -> dict:
    from dreamvid.render import render_video
    from dreamvid.render.measure import coherence

    marks = []

    def progress(p):
        if p.stage == "item":
            marks.append(time.perf_counter())

    t0, c0 = time.perf_counter(), _cpu()
    r = render_video(src, out, preset="video", cadence=cadence, end=n, progress=progress, restart=True)
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    c = coherence(src, out, max_frames=n)
    return {"cadence": cadence, "frames": r.items, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "ms_per_frame_after_first": round((marks[-1] - marks[0]) / max(len(marks) - 1, 1) * 1e3, 1),
            "vs_source": round(c["ratio_to_source"], 3), "long_term": round(c["long_term"]["ratio_to_source"], 3),
            "strength_later": round(c["strength"]["later"], 2), "strength_first": round(c["strength"]["first"], 2)}


def measure(kinds=KINDS, cadences=(1, 2, 3, 4), n: int = FRAMES) -> dict:
    out: dict = {"size": list(SIZE), "frames": n, "clips": {}}
    with tempfile.TemporaryDirectory(prefix="dreamvid-cadence-") as tmp:
        folder = Path(tmp)
        warm = _source("still", folder, 4)
        render_one(warm, folder / "warm", 1, 4)  # load the network, trace the step sizes
        for kind in kinds:
            src = _source(kind, folder, n)
            rows = [render_one(src, folder / f"{kind}_c{c}", c, n) for c in cadences]
            base = rows[0]
            for row in rows:
                row["speedup"] = round(base["seconds"] / row["seconds"], 2)
                row["cpu_speedup"] = round(base["cpu_seconds"] / row["cpu_seconds"], 2)
                row["strength_vs_cadence_1"] = round(row["strength_later"] / base["strength_later"], 3)
            out["clips"][kind] = rows
            print(kind, json.dumps(rows), file=sys.stderr, flush=True)
    return out


def table(result: dict) -> str:
    """The README's table (markdown)."""
    head = ("| clip | cadence | time (s) | speed-up (wall / CPU) | per frame (ms) | warping error vs source "
            "| long-term | strength (levels, vs cadence 1) |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for kind, rows in result["clips"].items():
        for r in rows:
            lines.append(f"| {kind} | {r['cadence']} | {r['seconds']:.1f} | {r['speedup']:.2f}x / "
                         f"{r['cpu_speedup']:.2f}x | {r['ms_per_frame_after_first']:.0f} | {r['vs_source']:.2f}x | "
                         f"{r['long_term']:.2f}x | {r['strength_later']:.2f} ({r['strength_vs_cadence_1']:.2f}) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cadence", description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--cadences", default="1,2,3,4")
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = measure([k for k in args.kinds.split(",") if k], [int(c) for c in args.cadences.split(",")], args.frames)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
