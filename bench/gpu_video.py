"""The GPU check's video item (bench/gpu_items.py runs it): `render_video`, preset `video`, end
to end on the sample clip scaled to each size, and each stage alone per frame.

Decode and flow run in the prefetch thread, carry, dream and hold in the main thread, PNG in
the engine's writer thread, all at once; the final encode follows the loop. The slowest
thread limits the pipeline, and within it the slowest stage is named. The GPU's idle share
comes from nvidia-smi's utilisation where there is one, else from the dream's share of the time.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import common
from . import video as video_bench

if TYPE_CHECKING:
    from .gpu_items import Context

WARMUP_FRAMES = 2  # a short render at each size first: traces, cuDNN autotuning of that size's shapes
PNG_SAMPLE = 12  # dreamed frames written again to time the PNG writer
DREAM_SAMPLE = 6  # later frames carried, dreamed and held again to time the main thread
UTIL_PERIOD_MS = 100  # nvidia-smi sampling period


class Utilization:
    """GPU utilisation (%) from `nvidia-smi --loop-ms`, read by a background thread while in the
    `with` block: [(time.perf_counter(), percent)]. Empty where there is no nvidia-smi."""

    def __init__(self, gpu: bool):
        self.exe = shutil.which("nvidia-smi") if gpu else None
        self.samples: list[tuple[float, float]] = []
        self._proc = self._thread = None

    def __enter__(self) -> Utilization:
        if self.exe:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()  # TensorFlow's GPU:0
            self._proc = subprocess.Popen(
                [self.exe, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                 f"--loop-ms={UTIL_PERIOD_MS}", f"--id={visible if visible.isdigit() else 0}"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self._thread = threading.Thread(target=self._read, name="gpu-utilization", daemon=True)
            self._thread.start()
        return self

    def _read(self) -> None:
        for line in self._proc.stdout:
            try:
                self.samples.append((time.perf_counter(), float(line.strip())))
            except ValueError:  # "[N/A]" or a warning line
                pass

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._thread.join(timeout=5)

    def mean(self, t0: float, t1: float) -> float | None:
        """Mean utilisation (%) of the samples between t0 and t1, None without samples."""
        window = [u for t, u in self.samples if t0 <= t <= t1]
        return float(np.mean(window)) if window else None



# ---- the item ----------------------------------------------------------------------------

def measure_video(ctx: Context) -> dict:
    from dreamvid import presets

    settings = presets.resolve(video_bench.PRESET)
    settings = replace(settings, dream=replace(settings.dream, backend=ctx.backend.name))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for w, h, n in ctx.profile.videos:
            if ctx.out_of_time():
                rows.append({"size": f"{w}x{h}", "frames": n, "skipped": "time budget"})
                continue
            folder = Path(tmp) / f"{w}x{h}"
            folder.mkdir()
            rows.append(_video_case(ctx, settings, video_bench.make_clip(folder, n, w, h), folder))
    v = settings.video
    return {"preset": video_bench.PRESET, "clip": f"{video_bench.CLIP.name}, scaled (bicubic)",
            "settings": {"iterations": settings.dream.iterations, "num_octave": settings.dream.num_octave,
                         "frame_iterations": v.frame_iterations, "frame_num_octave": v.frame_num_octave,
                         "flow": f"{v.flow} {v.flow_quality}"}, "rows": rows}


def _video_case(ctx: Context, settings, clip: Path, folder: Path) -> dict:
    from dreamvid.render import render_video

    render_video(clip, folder / "warm.mp4", settings, end=WARMUP_FRAMES, work_dir=folder / "warm-work")
    events: list[float] = []  # perf_counter at the start event, then after each frame
    ctx.memory.reset()
    with Utilization(ctx.gpu) as util:
        t0 = time.perf_counter()
        r = render_video(clip, folder / "out.mp4", settings, keep_frames=True, work_dir=folder / "work",
                         progress=lambda _: events.append(time.perf_counter()))
        t1 = time.perf_counter()
    peak_mb = ctx.memory.peak_mb()
    n, wall = r.rendered, t1 - t0
    stage = _stage_costs(settings, clip, r, folder)
    threads = {"prefetch (decode + flow)": ("decode", "flow"), "main (carry and hold + dream)": ("carry_hold", "dream"),
               "writer (PNG)": ("png",)}
    per_thread = {k: sum(stage[x] for x in v) for k, v in threads.items()}
    limiting = max(per_thread, key=per_thread.get)
    limiting_stage = max(threads[limiting], key=stage.get)
    # after the first frame (full settings), one frame per limiting-thread time if they overlap perfectly
    steady = (events[-1] - events[1]) / (n - 1) if n > 1 else None
    busy_steady, busy_all = util.mean(events[1], events[-1]), util.mean(t0, t1)
    if busy_all is not None:
        idle = {"source": f"nvidia-smi utilization.gpu every {UTIL_PERIOD_MS} ms", "samples": len(util.samples),
                "whole_render": round(1 - busy_all / 100, 3),
                "after_first_frame": None if busy_steady is None else round(1 - busy_steady / 100, 3)}
    else:
        idle = {"source": "derived: 1 - time in the dream calls / wall time (no nvidia-smi)",
                "whole_render": round(1 - r.dream_seconds / wall, 3),
                "after_first_frame": None if steady is None else round(max(0.0, 1 - stage["dream"] / steady), 3)}
    return {"size": f"{r.size[0]}x{r.size[1]}", "frames": n, "wall_seconds": round(wall, 2),
            "fps_end_to_end": round(n / wall, 2), "fps_frame_loop": round(n / r.seconds, 2),
            "seconds_per_frame_after_first": None if steady is None else round(steady, 4),
            "setup_seconds": round(events[0] - t0, 3),  # probe, work folder: before the first frame
            "after_loop_seconds": round(t1 - events[-1], 3),  # the last PNGs, the final encode, the audio
            "stage_seconds_per_frame": {k: round(v, 4) for k, v in stage.items()},
            "thread_seconds_per_frame": {k: round(v, 4) for k, v in per_thread.items()},
            "limited_by": limiting_stage, "limiting_thread": limiting,
            # the limiting thread's time alone / the render's time per frame: 1.0 = the threads overlap fully
            "overlap": None if steady is None else round(per_thread[limiting] / steady, 3),
            "dreamed_on": resolved(settings.dream, r.size),
            "gpu_idle_share": idle, "chain_starts": len(r.chain_starts), "peak_memory_mb": peak_mb}


def resolved(s, size) -> str:
    """"backend/precision" that settings `s` dream an image of `size` (w, h) with (auto resolved)."""
    from dreamvid.dream.auto import resolve

    r = resolve(s, (size[1], size[0]))
    return f"{r.backend}/{r.precision}"


def _stage_costs(settings, clip: Path, r, folder: Path) -> dict:
    """Seconds per frame of each stage of the render `r` alone, through dreamvid's public API.

    flow: what the prefetch thread does per frame (the scene-cut test, the flow both ways and
    its reliability, the long-term link to frame t-8). carry_hold and dream: what the main
    thread does for a frame after the first, on the render's own frames: the previous dream (as
    stored) carried along the flow (temporal.carry), dreamed with the per-frame settings and the
    frame's seed, held (temporal.hold); the medians of up to DREAM_SAMPLE frames."""
    from dreamvid import media
    from dreamvid.dream import get_dreamer, to_uint8
    from dreamvid.flow import FlowEstimator, cut_score, is_scene_cut, motion_between
    from dreamvid.temporal import RECALL_FRAMES, RECALL_QUALITY, carry, hold, recall_motion

    v = settings.video
    t = time.perf_counter()
    frames = [f for _, f in media.read_frames(clip, start=r.start, end=r.end, max_size=settings.dream.max_size)]
    decode = (time.perf_counter() - t) / len(frames)
    estimator, recall_estimator = FlowEstimator(v.flow, v.flow_quality), FlowEstimator(v.flow, RECALL_QUALITY)
    recalls = bool(v.temporal_weight or v.strength_hold) and v.cadence == 1
    motions, links = [None], [None]  # per frame: from the one before, and from RECALL_FRAMES before
    t = time.perf_counter()
    for i in range(1, len(frames)):
        prev, cur = frames[i - 1], frames[i]
        score = cut_score(prev, cur) if v.scene_cuts else None
        motion = None if v.scene_cuts and is_scene_cut(prev, cur, score=score) else motion_between(prev, cur, estimator)
        if motion is not None and v.scene_cuts and is_scene_cut(prev, cur, motion=motion, score=score):
            motion = None
        motions.append(motion)
        far = i >= RECALL_FRAMES and all(m is not None for m in motions[i - RECALL_FRAMES + 1:])
        links.append(recall_motion(frames[i - RECALL_FRAMES], cur, recall_estimator) if recalls and far else None)
    flow = (time.perf_counter() - t) / max(1, len(frames) - 1)
    dreamed = [media.read_image(media.frame_path(r.work_dir, i)) for i in range(r.start, r.end)]
    later = settings.frame_dream()
    dreamer, carried, dream = get_dreamer(later, size=frames[0].shape[:2]), [], []
    for i in [i for i, m in enumerate(motions) if m is not None][-DREAM_SAMPLE:]:
        recall = None if links[i] is None else (frames[i - RECALL_FRAMES], dreamed[i - RECALL_FRAMES], links[i])
        t = time.perf_counter()
        c = carry(dreamed[i - 1], frames[i - 1], frames[i], motions[i], v.blend, hold_strength=v.strength_hold > 0,
                  recall=recall)
        t_carry = time.perf_counter() - t
        out = dreamer.dream(c.start, later, frame=r.start + i)
        t_dream = time.perf_counter() - t - t_carry
        to_uint8(hold(c, out, v.temporal_weight, v.strength_hold))
        carried.append(time.perf_counter() - t - t_dream)
        dream.append(t_dream)
    t = time.perf_counter()
    for i, image in enumerate(dreamed[-PNG_SAMPLE:]):
        media.write_image(folder / f"png-{i}.png", image)
    png = (time.perf_counter() - t) / len(dreamed[-PNG_SAMPLE:])
    t = time.perf_counter()
    media.encode_video(r.work_dir, folder / "encoded.mp4", fps=r.fps, n_frames=r.n_frames, start_number=r.start,
                       crf=v.crf)
    encode = (time.perf_counter() - t) / r.n_frames
    return {"decode": decode, "flow": flow, "carry_hold": common.median(carried) if carried else 0.0,
            "dream": common.median(dream) if dream else r.dream_seconds / r.rendered, "png": png, "encode": encode}
