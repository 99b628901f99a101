"""The GPU check's measurements (issue 16), in a child process that bench/gpu.py starts:
`python -m bench.gpu_items --out FILE [--quick] [--deadline EPOCH_S]`.

Each item's result goes into FILE as soon as it is measured, so a crash or the end of the
time budget keeps the items before it. Without a GPU (`--allow-cpu`) the same code runs on
the CPU, at tiny sizes with `--quick`.

- matmul: the device's own ceiling, chained n x n matmuls in float32 (TF32 on Ampere and newer,
  TensorFlow's default there) and in the mixed-precision dtype.
- steps: seconds per gradient-ascent step (bench/steps.py's step: roll, loss and input gradient,
  normalise, update; one tile) per bundled model at 512x384 and 1280x720, float32 and mixed;
  GFLOP/s and the share of the datasheet peak (bench/peaks.py).
- video: `render_video`, preset `video`, end to end on the sample clip scaled to 720p and 1080p:
  frames/s, and each stage alone per frame (decode, flow, dream, PNG, final encode). Decode and
  flow run in the prefetch thread, PNG in the writer thread, the dream in the main thread, all
  at once; the final encode follows the loop. The slowest thread limits the pipeline. The
  GPU's idle share comes from nvidia-smi's utilisation, else from the dream's share of the time.
- still: one 3840x2160 still, preset `classic`.
- tile_batch: the 4K still's full-size step with one tile per network call against the GPU
  default (`AUTO_TILE_BATCH`).
Every case reports the device's peak memory (`PeakMemory`).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import common, peaks, steps
from . import video as video_bench

STILL_IMAGE = common.ROOT / "samples" / "astronaut.jpg"
STILL_PRESET = "classic"
PRECISIONS = ("float32", "mixed")
WARMUP_FRAMES = 2  # a short render at each size first: traces, cuDNN autotuning of that size's shapes
PNG_SAMPLE = 12  # dreamed frames written again to time the PNG writer
DREAM_SAMPLE = 6  # later frames dreamed again to time the main thread
UTIL_PERIOD_MS = 100  # nvidia-smi sampling period
MATMUL_CHAIN = 10  # matmuls per timed call, so one call's Python overhead is spread over them


@dataclass(frozen=True)
class Profile:
    """Sizes and counts of one run."""

    step_sizes: tuple[tuple[int, int], ...]  # (height, width) px of the step item
    step_models: tuple[str, ...]  # labels of bench/steps.py MODELS
    step_reps: int  # timed steps per case (interleaved)
    matmul_n: int
    videos: tuple[tuple[int, int, int], ...]  # (width, height, frames) of the video item
    still: tuple[int, int]  # (width, height) px of the still and tile-batch items
    tile: int  # px; the still's tile
    still_iterations: int | None  # per octave; None: the preset's
    batch_steps: int  # steps per tile-batch call
    batch_reps: int


FULL = Profile(step_sizes=((384, 512), (720, 1280)), step_models=("efficientnet_lite0", "vgg16_hed"), step_reps=10,
               matmul_n=8192, videos=((1280, 720, 48), (1920, 1080, 24)), still=(3840, 2160), tile=512,
               still_iterations=None, batch_steps=5, batch_reps=3)
# --quick: every item, at sizes a 2-core CPU dreams in seconds (a dry run of the code paths)
QUICK = Profile(step_sizes=((96, 128), (144, 256)), step_models=("efficientnet_lite0",), step_reps=2,
                matmul_n=512, videos=((160, 90, 4), (240, 136, 3)), still=(480, 270), tile=128,
                still_iterations=2, batch_steps=2, batch_reps=1)


@dataclass
class Context:
    profile: Profile
    gpu: bool
    peak: dict | None  # bench/peaks.py figures of the device, None: unknown
    memory: PeakMemory
    deadline: float  # time.time() after which the remaining cases are skipped

    def out_of_time(self) -> bool:
        return time.time() > self.deadline


class PeakMemory:
    """Peak memory between `reset()` and `peak_mb()`: TensorFlow's allocator statistics of GPU:0
    on a GPU; on a CPU the process's peak RSS (VmHWM, reset through /proc/self/clear_refs)."""

    def __init__(self, gpu: bool):
        self.gpu = gpu
        self.kind = "GPU:0 allocator peak" if gpu else "process peak RSS"

    def reset(self) -> None:
        if self.gpu:
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:  # not Linux: the peak is the process's so far
                pass

    def peak_mb(self) -> int:
        if self.gpu:
            import tensorflow as tf

            return round(tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20)
        return round(common.peak_rss_mb())


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


# ---- items ---------------------------------------------------------------------------------

def measure_matmul(ctx: Context) -> dict:
    """TFLOP/s of chained n x n matmuls on the device, float32 and the mixed dtype."""
    import tensorflow as tf

    n = ctx.profile.matmul_n
    out = {"n": n, "chain": MATMUL_CHAIN, "tflops": {}}
    for dtype in ("float32", "float16" if ctx.gpu else "bfloat16"):
        rng = tf.random.Generator.from_seed(0)
        a = tf.cast(rng.normal((n, n)), dtype)
        b = tf.cast(rng.normal((n, n)) / np.sqrt(n), dtype)  # keeps the chain's values of order one
        t = common.interleaved({dtype: _matmul_chain(a, b)}, 3 if ctx.gpu else 2, warmup=1, settle=0)[dtype]
        out["tflops"][dtype] = round(MATMUL_CHAIN * 2 * n**3 / common.median(t) / 1e12, 3)
    return out


def _matmul_chain(a, b):
    """A callable computing a @ b @ b ... (MATMUL_CHAIN matmuls) on the device; waits for the result."""
    import tensorflow as tf

    @tf.function
    def chain():
        x = a
        for _ in range(MATMUL_CHAIN):
            x = tf.matmul(x, b)
        return x[0, 0]

    return lambda: float(chain())


def _shares(gflops: float, precision: str, peak: dict | None) -> dict | None:
    """The step's rate as a share of the device's datasheet peaks for its precision."""
    if peak is None:
        return None
    units = ("fp16",) if precision == "mixed" else ("fp32", "tf32")
    return {u: round(gflops / 1000 / peak[u], 4) for u in units if peak.get(u)}


def measure_steps(ctx: Context) -> dict:
    p, rows = ctx.profile, []
    for label, name, layer, _ in steps.MODELS:
        if label not in p.step_models:
            continue
        nets = {precision: steps.load_model(name, layer, precision) for precision in PRECISIONS}
        for h, w in p.step_sizes:
            if ctx.out_of_time():
                rows.append({"model": label, "size": f"{w}x{h}", "skipped": "time budget"})
                continue
            gflop = 2 * steps.forward_gflop(nets["float32"], (h, w))
            calls, peak_mb = {}, {}
            for precision, model in nets.items():
                calls[precision] = steps.step_call(model, (h, w))
                ctx.memory.reset()
                calls[precision]()  # also the warm-up: trace, cuDNN autotuning at this size
                peak_mb[precision] = ctx.memory.peak_mb()
            times = common.interleaved(calls, p.step_reps, warmup=1, settle=0)
            for precision, model in nets.items():
                s = common.median(times[precision])
                rows.append({"model": label, "layer": layer, "size": f"{w}x{h}", "precision": precision,
                             "compute_dtype": model.compute_dtype, "seconds_per_step": round(s, 5),
                             "gflop_per_step": round(gflop, 2), "gflops": round(gflop / s, 1),
                             "share_of_peak": _shares(gflop / s, precision, ctx.peak),
                             "peak_memory_mb": peak_mb[precision], "reps": len(times[precision])})
    return {"rows": rows}


def measure_video(ctx: Context) -> dict:
    from dreamvid import presets

    settings = presets.resolve(video_bench.PRESET)
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
    threads = {"prefetch (decode + flow)": stage["decode"] + stage["flow"], "main (dream)": stage["dream"],
               "writer (PNG)": stage["png"]}
    limiting = max(threads, key=threads.get)
    if limiting.startswith("prefetch"):
        limiting_stage = "decode" if stage["decode"] > stage["flow"] else "flow"
    else:
        limiting_stage = "dream" if limiting.startswith("main") else "png"
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
            "thread_seconds_per_frame": {k: round(v, 4) for k, v in threads.items()},
            "limited_by": limiting_stage, "limiting_thread": limiting,
            # the limiting thread's time alone / the render's time per frame: 1.0 = the threads overlap fully
            "overlap": None if steady is None else round(threads[limiting] / steady, 3),
            "gpu_idle_share": idle, "chain_starts": len(r.chain_starts), "peak_memory_mb": peak_mb}


def _stage_costs(settings, clip: Path, r, folder: Path) -> dict:
    """Seconds per frame of each stage of the render `r` alone, through dreamvid's public API.

    dream: what the main thread does for a frame after the first, on the render's own frames:
    the previous dream (as stored) carried along the flow (flow.propagate), then dreamed
    with the per-frame settings and the frame's seed; the median of up to DREAM_SAMPLE frames."""
    from dreamvid import media
    from dreamvid.dream import get_dreamer
    from dreamvid.flow import FlowEstimator, is_scene_cut, motion_between, propagate

    v = settings.video
    t = time.perf_counter()
    frames = [f for _, f in media.read_frames(clip, start=r.start, end=r.end, max_size=settings.dream.max_size)]
    decode = (time.perf_counter() - t) / len(frames)
    estimator, motions = FlowEstimator(v.flow, v.flow_quality), []
    t = time.perf_counter()
    for prev, cur in zip(frames, frames[1:]):  # what the prefetch thread does per frame
        motions.append(None if is_scene_cut(prev, cur) else motion_between(prev, cur, estimator))
        is_scene_cut(prev, cur, motion=motions[-1])
    flow = (time.perf_counter() - t) / max(1, len(frames) - 1)
    dreamed = [media.read_image(media.frame_path(r.work_dir, i)) for i in range(r.start, r.end)]
    d = settings.dream
    later = replace(d, iterations=d.iterations if v.frame_iterations is None else v.frame_iterations,
                    num_octave=d.num_octave if v.frame_num_octave is None else v.frame_num_octave)
    dreamer, dream = get_dreamer(d), []
    for k in [k for k, m in enumerate(motions) if m is not None][-DREAM_SAMPLE:]:
        t = time.perf_counter()
        start = propagate(dreamed[k], frames[k], frames[k + 1], motions[k], v.blend)
        dreamer.dream(start, later, frame=r.start + k + 1)
        dream.append(time.perf_counter() - t)
    t = time.perf_counter()
    for i, image in enumerate(dreamed[-PNG_SAMPLE:]):
        media.write_image(folder / f"png-{i}.png", image)
    png = (time.perf_counter() - t) / len(dreamed[-PNG_SAMPLE:])
    t = time.perf_counter()
    media.encode_video(r.work_dir, folder / "encoded.mp4", fps=r.fps, n_frames=r.n_frames, start_number=r.start,
                       crf=v.crf)
    encode = (time.perf_counter() - t) / r.n_frames
    return {"decode": decode, "flow": flow, "dream": common.median(dream) if dream else r.dream_seconds / r.rendered,
            "png": png, "encode": encode}


def _still(ctx: Context):
    """(image (H, W, 3) uint8, the still's DreamSettings) of the still and tile-batch items."""
    import cv2

    from dreamvid import presets
    from dreamvid.media import read_image

    p = ctx.profile
    s = presets.resolve(STILL_PRESET).dream
    s = replace(s, tile=p.tile, iterations=p.still_iterations or s.iterations)
    return cv2.resize(read_image(STILL_IMAGE), p.still, interpolation=cv2.INTER_CUBIC), s


def _tiles(h: int, w: int, tile: int) -> int:
    from dreamvid.dream import tile_edges

    return (len(tile_edges(h, tile)) - 1) * (len(tile_edges(w, tile)) - 1)


def measure_still(ctx: Context) -> dict:
    from dreamvid.dream import dream_image, get_dreamer

    image, s = _still(ctx)
    h, w = image.shape[:2]
    dream_image(image, s, iterations=1)  # warm-up: the trace and every octave's shapes
    done = []
    ctx.memory.reset()
    t = time.perf_counter()
    dream_image(image, s, progress=done.append)
    seconds = time.perf_counter() - t
    n_tiles = _tiles(h, w, s.tile)
    return {"size": f"{w}x{h}", "preset": STILL_PRESET, "num_octave": s.num_octave, "iterations": s.iterations,
            "tile": s.tile, "tiles_at_full_size": n_tiles, "tile_batch": get_dreamer(s).tile_batch(s, n_tiles),
            "seconds": round(seconds, 3), "steps": len(done), "seconds_per_step": round(seconds / len(done), 4),
            "peak_memory_mb": ctx.memory.peak_mb()}


def measure_tile_batch(ctx: Context) -> dict:
    """The full-size step of the 4K still, one tile per network call vs the GPU default."""
    from dreamvid.dream import AUTO_TILE_BATCH, get_dreamer, to_dream_space

    image, s = _still(ctx)
    h, w = image.shape[:2]
    s = replace(s, num_octave=1, iterations=ctx.profile.batch_steps, max_loss=None)
    dreamer, n_tiles = get_dreamer(s), _tiles(h, w, s.tile)
    auto = dreamer.tile_batch(replace(s, tile_batch=None), n_tiles)
    # on a CPU "auto" is 1: the batched path is then measured at the GPU's default instead
    contenders = {"1": 1, "auto": None} if auto > 1 else {"1": 1, f"{AUTO_TILE_BATCH} (the GPU default)": AUTO_TILE_BATCH}
    x = to_dream_space(image.astype(np.float32))
    calls, peak_mb, used = {}, {}, {}
    for label, batch in contenders.items():
        sb = replace(s, tile_batch=batch)
        calls[label] = lambda sb=sb: dreamer.ascend(x, sb, np.random.default_rng(0))
        ctx.memory.reset()
        dreamer.ascend(x, replace(sb, iterations=1), np.random.default_rng(0))  # warm-up, and its peak
        peak_mb[label], used[label] = ctx.memory.peak_mb(), dreamer.tile_batch(sb, n_tiles)
    times = common.interleaved(calls, ctx.profile.batch_reps, warmup=0, settle=0)
    per_step = {k: common.median(v) / s.iterations for k, v in times.items()}
    one, other = per_step["1"], per_step[list(contenders)[1]]
    return {"size": f"{w}x{h}", "tile": s.tile, "tiles": n_tiles, "auto_resolves_to": auto,
            "rows": [{"tile_batch": k, "tiles_per_call": used[k], "seconds_per_step": round(v, 4),
                      "peak_memory_mb": peak_mb[k]} for k, v in per_step.items()],
            "speedup": round(one / other, 2), "batch_limit_after_oom": dreamer.batch_limit,
            "steps_per_call": s.iterations, "reps": ctx.profile.batch_reps}


ITEMS = {"matmul": measure_matmul, "steps": measure_steps, "video": measure_video, "still": measure_still,
         "tile_batch": measure_tile_batch}


def device(gpu: bool) -> dict:
    """What the dream runs on: {"kind", "name", "compute_capability"}."""
    import tensorflow as tf

    if not gpu:
        return {"kind": "CPU", "name": common.machine().get("cpu", "CPU")}
    details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
    return {"kind": "GPU", "name": details.get("device_name", "GPU"),
            "compute_capability": ".".join(map(str, details.get("compute_capability") or ()))}


def run(out: Path, quick: bool, deadline: float) -> dict:
    from dreamvid.models import setup_tensorflow

    tf = setup_tensorflow()
    gpu = bool(tf.config.list_physical_devices("GPU"))
    dev = device(gpu)
    peak = peaks.lookup(dev["name"]) if gpu else None
    profile = QUICK if quick else FULL
    ctx = Context(profile, gpu, peak, PeakMemory(gpu), deadline)
    results = {"device": dev, "peak": peak, "memory_kind": ctx.memory.kind, "machine": common.machine(),
               "tf32": bool(tf.config.experimental.tensor_float_32_execution_enabled()),
               "profile": dataclasses.asdict(profile), "item_seconds": {}}
    for name, fn in ITEMS.items():
        if ctx.out_of_time():
            results[name] = {"skipped": "the time budget ran out before this item"}
        else:
            print(f"[gpu-check] {name} ...", file=sys.stderr, flush=True)
            t = time.perf_counter()
            try:
                results[name] = fn(ctx)
            except Exception as e:  # the item is reported as failed; the others still run
                traceback.print_exc()
                results[name] = {"error": f"{type(e).__name__}: {e}"[:500]}
            results["item_seconds"][name] = round(time.perf_counter() - t, 1)
        out.write_text(json.dumps(results, indent=1) + "\n")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_items", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file, rewritten after each item")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repetitions")
    parser.add_argument("--deadline", type=float, default=float("inf"), help="time.time() to stop starting cases")
    args = parser.parse_args(argv)
    run(args.out, args.quick, args.deadline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
