"""Item 8 (cluster): the video on a local Ray cluster against one process on the same cores (issue 13).

- seams: samples/bunny.mp4 at --max-size 160, frames [0, FRAMES), preset `video`, split into
  CHUNKS chunks on 2 workers, for each overlap in OVERLAPS, the overlap frames dropped
  (warm-up) or crossfaded into the chunk before (fade); for each: the warping error of the
  whole clip (render.measure.coherence), of the pairs at each chunk boundary, the dream
  strength (mean |dream - source|) and the mean difference from the one-process render.
- default: the same clip the way `--workers 2` splits it (one chunk per worker, OVERLAP).
- overhead: wall seconds per frame, clusters warm (workers started, network loaded and
  traced), repetitions interleaved with the one-process render: 1 worker with both cores
  against one process (the same work: the cost of the distributed path itself; the median
  of the repetitions, each one's ratio to the one-process run beside it, and the load), and
  2 workers with a core each (--workers 2 here). CPU seconds (this process and every Ray
  worker, from /proc) are kept too; they are not the overhead: one TensorFlow thread spends
  less CPU per frame than two at these sizes. The driver's scene-cut scan (a serial decode
  of the clip before any worker starts) is timed on its own.
- paper: the wall time of a 5-minute 1080p clip on 1, 4 and 16 GPUs, from the per-frame costs
  measured here (the overlap work, the driver's PNG write per 1080p frame) and an assumed
  GPU frame time (stated in the result: no GPU has measured one yet).
"""
from __future__ import annotations

import os
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import common

CLIP = common.ROOT / "samples" / "bunny.mp4"  # 320x180, 25 fps, 75 frames
MAX_SIZE = 160  # px
FRAMES = 48  # quick: 32
CHUNKS = 4  # for the seam measurement: 3 boundaries
OVERLAPS = (0, 4, 8)
REPS = 5  # timed repetitions of each contender, interleaved (quick: 3)
TARGETS = {"boundary_over_mean": 1.5, "clip_vs_single": 1.1, "overhead": 0.10}
PAPER = {"minutes": 5, "fps": 25, "gpu_seconds_per_frame": 0.25,  # assumed: 1080p, video preset, one GPU
         "driver_writer_threads": 8,  # the driver machine's threads writing PNGs (cluster.WRITERS, up to 8)
         "first_frame_equivalents": 90 / 8}  # a chain start dreams 30 x 3 steps, a later frame 4 x 2


def available() -> str | None:
    try:
        import ray  # noqa: F401
    except ImportError:
        return 'Ray is not installed (pip install "dreamvid[ray]")'
    return None


def measure(quick: bool = False) -> dict:
    from dreamvid import presets

    n = 32 if quick else FRAMES
    base = presets.resolve("video")
    settings = replace(base, dream=replace(base.dream, max_size=MAX_SIZE))
    with tempfile.TemporaryDirectory() as tmp:
        return _measure(Path(tmp), settings, n, 3 if quick else REPS)


def _measure(tmp: Path, settings, n: int, reps: int) -> dict:
    import ray

    from dreamvid.render import cluster
    from dreamvid.render.video import VideoPlan, render_video

    def plan(name):
        return VideoPlan(CLIP, tmp / name, settings, end=n)

    def dist(name, workers=2, **split):
        t, c = time.perf_counter(), _cpu_seconds()
        cluster.render(plan(name), workers=workers, restart=True, **split)
        cpu[name].append(_cpu_seconds() - c)
        return time.perf_counter() - t

    def single(name):
        t, c = time.perf_counter(), _cpu_seconds()
        render_video(CLIP, tmp / name, settings, end=n, restart=True)
        cpu[name].append(_cpu_seconds() - c)
        return time.perf_counter() - t

    cpu: dict[str, list[float]] = defaultdict(list)
    single("warm")  # this process's network loaded and traced at this size
    times: dict[str, list[float]] = {"single": [], "one_worker": [], "two_workers": []}
    paired: dict[str, list[float]] = {"one_worker": [], "two_workers": []}  # each repetition / the single run beside it
    loads: list[float] = []
    # Each cluster on its own (Ray stops idle workers of another configuration): warmed first,
    # then timed interleaved with the one-process render.
    for workers, name, out_name in ((1, "one_worker", "one"), (2, "two_workers", "two_workers")):
        cluster.connect(workers)
        try:
            dist("warm", workers=workers, chunks=workers, min_chunk=4, overlap=2)
            for _ in range(reps):
                times["single"].append(single("single"))
                times[name].append(dist(out_name, workers=workers, chunks=1 if workers == 1 else None))
                paired[name].append(round(times[name][-1] / times["single"][-1] - 1, 3))
                loads.append(round(os.getloadavg()[0], 2))
            if workers == 2:
                out = _quality_runs(tmp, plan, dist)
        finally:
            ray.shutdown()
    s1, s2, sw = (common.median(times[k]) / n for k in ("single", "one_worker", "two_workers"))
    c1, c2, cw = (common.median(cpu[k]) / n for k in ("single", "one", "two_workers"))
    encode_s, write_s = _png_seconds_1080p()
    scan = _scan_seconds(plan("x"))
    out = {
        "clip": f"{CLIP.name}, frames 0..{n - 1}, --max-size {MAX_SIZE}, preset video",
        "seconds_per_frame": {"single_process": round(s1, 4), "one_worker_2_cores": round(s2, 4),
                              "two_workers_1_core_each": round(sw, 4)},
        "cpu_seconds_per_frame": {"single_process": round(c1, 4), "one_worker_2_cores": round(c2, 4),
                                  "two_workers_1_core_each": round(cw, 4)},
        "overhead": round(s2 / s1 - 1, 3), "overhead_per_repetition": paired["one_worker"],
        "two_workers_per_repetition": paired["two_workers"], "load_per_repetition": loads,
        "scene_cut_scan_seconds_per_frame": round(scan / n, 4),
        "two_workers_vs_single": round(sw / s1, 3), "cpu_overhead": round(c2 / c1 - 1, 3),
        "cpu_two_workers_vs_single": round(cw / c1, 3), **out,
        "png_encode_seconds_1080p": round(encode_s, 4), "png_write_seconds_1080p": round(write_s, 4),
        "paper": _paper(encode_s, write_s),
    }
    default = out["default"]
    out["hit"] = {"overhead": out["overhead"] <= TARGETS["overhead"],
                  # a clip too short to split (--quick) has no boundary to judge
                  "boundary": (default.get("boundary_over_mean") or 0.0) <= TARGETS["boundary_over_mean"],
                  "coherence": default["vs_single"]["warping_error"] <= TARGETS["clip_vs_single"]
                  and 1 / TARGETS["clip_vs_single"] <= default["vs_single"]["strength"] <= TARGETS["clip_vs_single"]}
    return out


def _quality_runs(tmp: Path, plan, dist) -> dict:
    """The one-process render against the default split and against each overlap choice."""
    from dreamvid.render import cluster

    ref = _quality(CLIP, tmp / "single", None)
    split = cluster._Split(cluster.OVERLAP, True, cluster.MIN_CHUNK, 2)
    default = _quality(CLIP, tmp / "two_workers", ref, _boundaries(plan("x"), split))
    seams = {}
    for overlap in OVERLAPS:
        for fade in ((False,) if overlap == 0 else (False, True)):
            name = f"w{overlap}{'fade' if fade else 'drop'}"
            split = cluster._Split(overlap, fade, 8, CHUNKS)
            seconds = dist(name, overlap=overlap, fade=fade, min_chunk=8, chunks=CHUNKS)
            seams[name] = {**_quality(CLIP, tmp / name, ref, _boundaries(plan("x"), split)),
                           "overlap": overlap, "fade": fade, "seconds": round(seconds, 1)}
    return {"single": ref, "default": default, "seams": seams}


def _scan_seconds(plan) -> float:
    """The driver's scene-cut scan of the clip (before any task starts), median of 3."""
    from dreamvid.render import cluster

    todo = list(range(plan.start, plan.end))
    times = []
    for _ in range(3):
        t = time.perf_counter()
        cluster._scene_cuts(plan, todo)
        times.append(time.perf_counter() - t)
    return common.median(times)


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and every Ray worker process on this machine
    (/proc): the work of a render whatever else the shared machine runs meanwhile."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if not f.read().startswith(b"ray::"):
                    continue
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        except (OSError, IndexError, ValueError):
            continue
    return total


def _boundaries(plan, split) -> list[tuple[int, int]]:
    """(fade start, boundary frame) of each chunk boundary inside a shot, as the render splits it."""
    from dreamvid.render import cluster, engine

    todo = list(range(plan.start, plan.end))
    cuts = cluster._scene_cuts(plan, todo)
    chains = cluster._video_chunks(plan, engine._NoStore({}), todo, split)
    firsts = sorted(c.first for c in chains)
    starts = {c.first: c.start for c in chains}
    return [(starts[b] if split.fade else b, b) for b in firsts if b != plan.start and b not in cuts]


def _quality(clip: Path, frames: Path, ref: dict | None, bounds=()) -> dict:
    from dreamvid.render.measure import coherence

    c = coherence(clip, frames)
    pairs = dict((int(t), e) for t, e in c["pair_errors"])
    mean = c["warping_error"]["output"]
    strength = float(np.mean(c["strength"]["per_frame"]))  # levels, mean |dream - source|
    out = {"warping_error": mean, "strength": strength, "pairs": c["pairs"]}
    if bounds:
        at = [pairs[b] for _, b in bounds if b in pairs]
        zone = [pairs[t] for z, b in bounds for t in range(z, b + 1) if t in pairs]
        out["boundaries"] = [b for _, b in bounds]
        out["boundary_errors"] = at
        out["boundary_over_mean"] = round(max(at) / mean, 3) if at else None
        out["fade_zone_over_mean"] = round(max(zone) / mean, 3) if zone else None
    if ref is not None:
        out["vs_single"] = {"warping_error": round(mean / ref["warping_error"], 3),
                            "strength": round(strength / ref["strength"], 3),
                            "mean_abs_difference": round(_difference(frames, ref["frames"]), 3)}
    out["frames"] = str(frames)
    return out


def _difference(a: Path, b: str) -> float:
    """Mean absolute difference of two renders (folders of PNG frames), 0..255."""
    from dreamvid import media

    pairs = zip(sorted(Path(a).glob("frame_*.png")), sorted(Path(b).glob("frame_*.png")))
    return float(np.mean([np.mean(np.abs(media.read_image(x).astype(np.float32) - media.read_image(y)))
                          for x, y in pairs]))


def _png_seconds_1080p() -> tuple[float, float]:
    """(encode, write) seconds of one 1080p frame's PNG on one thread: the encode is the
    worker's (cluster.ENCODE_ON_WORKERS), the atomic write of its bytes the driver's. A dreamed
    sample frame scaled up (noise would compress slower, flat colour faster than a dream)."""
    import cv2

    from dreamvid import media
    from dreamvid.media.images import encode_image, write_encoded

    first = next(iter(sorted(Path(common.ROOT / "samples").glob("*.jpg"))), None)
    frame = cv2.resize(media.read_image(first), (1920, 1080), interpolation=cv2.INTER_CUBIC)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        data = [encode_image(frame) for _ in range(3)]
        encode = (time.perf_counter() - t) / 3
        t = time.perf_counter()
        for i, d in enumerate(data):
            write_encoded(Path(tmp) / f"f{i}.png", d)
        return encode, (time.perf_counter() - t) / 3


def _paper(encode_s: float, write_s: float) -> dict:
    """Wall time of a 5-minute 1080p clip on N GPUs, one worker each, one chunk per worker."""
    from dreamvid.render import cluster

    p = PAPER
    frames = p["minutes"] * 60 * p["fps"]
    t = p["gpu_seconds_per_frame"]
    overlap_frames = p["first_frame_equivalents"] + cluster.OVERLAP - 1  # each chunk after the first
    rows = {}
    for gpus in (1, 4, 16):
        # each worker encodes its frames' PNGs in threads while its GPU dreams the next ones
        encode = encode_s / cluster.ENCODE_THREADS if cluster.ENCODE_ON_WORKERS else 0.0
        work = (frames + (gpus - 1) * overlap_frames) * max(t, encode) / gpus
        png_s = write_s if cluster.ENCODE_ON_WORKERS else encode_s + write_s
        driver = frames * png_s / p["driver_writer_threads"]  # overlapped with the work
        rows[f"{gpus}_gpus"] = {"minutes": round(max(work, driver) / 60, 1),
                                "limited_by": "the driver's PNG writes" if driver > work else
                                "the workers' PNG encode" if encode > t else "the GPUs",
                                "overlap_share": round((gpus - 1) * overlap_frames / frames, 4)}
    return {"assumptions": {**p, "frames": frames, "overlap": cluster.OVERLAP,
                            "worker_png_threads": cluster.ENCODE_THREADS, "png_on_workers": cluster.ENCODE_ON_WORKERS,
                            "note": "gpu_seconds_per_frame is assumed (no GPU measured yet); start-up (Ray, "
                                    "TensorFlow, the network: ~10-20 s per worker, in parallel) and the "
                                    "final encode are left out"},
            **rows}
