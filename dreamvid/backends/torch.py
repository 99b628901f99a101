"""The PyTorch backend: the dream step in eager PyTorch, on CUDA, Apple's MPS or the CPU.

The network is the folded float32 network of models.folded (the same config and weights the
TensorFlow backend runs), walked op by op with `torch.nn.functional` in NCHW layout and the
channels-last memory format: no Keras layers in the loop. Keras's own layers on its torch
backend add a layout transpose around every convolution; plain NCHW ops avoid them, and
channels-last lets oneDNN's CPU kernels (and cuDNN's tensor cores) run without reordering
each activation. On a 2-core AVX-512 Xeon the EfficientNet-Lite0 step took 1.23 s in plain
NCHW and 0.062 s channels-last (bench/backends.py measures both backends side by side). A
network with a layer kind the runner does not do (models/plain.py's KINDS) runs as its Keras
model when Keras itself runs on torch (the torch-only install), and is refused otherwise.

The step does what the TensorFlow one does, in the same order: roll by the jitter, warp, the
loss and its input gradient tile by tile (or `batch` tiles per call), warp back, roll back,
blur, colour, Laplacian normalisation, mask, normalise by the mean |g| over the masked area,
update, clip. One step agrees with TensorFlow's to float rounding (tests/test_backends.py).

Precision "mixed": float16 on CUDA and MPS, bfloat16 on a CPU. Weights and the input are cast
once to that dtype (Keras's mixed policy computes the same way), activations come back in
float32, and the loss is scaled for the backward pass as in TensorFlow (float16 gradients of
big layers fall below its normal range otherwise).
"""
from __future__ import annotations

import functools
import logging
import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from . import BORDER, GRAD_EPS, LAP_EPS, LAP_KERNEL, Ascent, Backend, Step, Terms

log = logging.getLogger("dreamvid")

CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # ImageNet channel means (models.CAFFE_BGR_MEAN)
GOMP_SPINCOUNT = 1_000  # spins of an idle OpenMP thread before it sleeps (_before_import says why)


def _torch():
    if "torch" not in sys.modules:
        _before_import()
    import torch

    return torch


def _before_import() -> None:
    """OpenMP's idle threads spin GOMP_SPINCOUNT times before they sleep (libgomp's default is
    300,000 spins when cores are not oversubscribed). Between two of the thousand small parallel
    regions of a step that is fine on an idle machine, but beside dreamvid's own threads (the
    video's flow and PNG writer) or another process, spinning threads take the cores the work
    needs. On a 2-core Xeon shared with other work (load 4..5), the efficientnet_lite0 step at
    512x384 took 1.23 s with libgomp's default, 0.245 s with 10,000 spins, 0.193 s with 1,000
    and 0.188 s with none (OMP_WAIT_POLICY=PASSIVE; TensorFlow's step 0.08..0.10 s beside it);
    a few spins still catch the next region of a step running alone. A user's own
    OMP_WAIT_POLICY or GOMP_SPINCOUNT is kept."""
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", str(GOMP_SPINCOUNT))


@functools.lru_cache(maxsize=None)
def device():
    """CUDA where torch sees it, else Apple's MPS, else the CPU."""
    torch = _torch()
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def reduced_dtype(precision: str, dev=None):
    """The compute dtype of a precision on `dev` (default: the backend's device): None for
    float32; "mixed" is float16 on a GPU and bfloat16 on a CPU; the explicit Keras policy names
    are accepted too."""
    torch = _torch()
    if precision == "float32":
        return None
    if precision == "mixed_float16":
        return torch.float16
    if precision == "mixed_bfloat16":
        return torch.bfloat16
    if precision != "mixed":
        from ..errors import ModelError

        raise ModelError(f"unknown precision {precision!r}; use float32 or mixed")
    return torch.float16 if (dev or device()).type in ("cuda", "mps") else torch.bfloat16


# ---- the network ---------------------------------------------------------------------------

def _same(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding (before, after) along one axis: the extra pixel goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(a, kernel, strides, value: float = 0.0):
    (kh, kw), (sh, sw) = kernel, strides
    top, bottom = _same(a.shape[2], kh, sh)
    left, right = _same(a.shape[3], kw, sw)
    if not (top or bottom or left or right):
        return a
    return _torch().nn.functional.pad(a, (left, right, top, bottom), value=value)


def _activation(y, name: str):
    F = _torch().nn.functional
    if name == "relu":
        return F.relu(y)
    if name == "relu6":
        return F.relu6(y)
    return y  # "linear"


def _relu(a, cfg: dict):
    """keras.activations.relu(a, negative_slope, max_value, threshold)."""
    torch = _torch()
    F = torch.nn.functional
    slope, top, threshold = float(cfg["negative_slope"]), cfg["max_value"], float(cfg["threshold"])
    if slope == 0.0 and threshold == 0.0:  # relu and hardtanh: one fused kernel each way (clamp's backward is four)
        return F.relu(a) if top is None else F.hardtanh(a, 0.0, float(top))
    y = torch.where(a >= threshold, a, slope * (a - threshold))
    return y if top is None else torch.clamp(y, max=float(top))


class Network:
    """The folded network (a functional config and its weights by layer) as NCHW torch ops:
    (b, 3, h, w) dream-space float32 -> [one (b, c, h', w') float32 activation per tap]."""

    def __init__(self, config: dict, weights: dict[str, list[np.ndarray]], preprocessing: str, dtype, dev):
        from ..models import plain

        torch = _torch()
        self.layers = plain.check(config, weights)  # Unsupported (a kind it does not do) / ValueError (damage)
        self.input = config["layers"][0]["name"]
        self.outputs = plain.output_names(config)
        self.preprocessing = preprocessing
        self.dtype = dtype or torch.float32
        self.device = dev
        cl = torch.channels_last
        self.params: dict[str, tuple] = {}
        for kind, name, _, _ in self.layers:
            arrays = weights.get(name, [])
            if kind == "Conv2D":  # (kh, kw, in, out) -> (out, in, kh, kw)
                kernel = np.transpose(arrays[0], (3, 2, 0, 1))
            elif kind == "DepthwiseConv2D":  # (kh, kw, c, 1) -> (c, 1, kh, kw)
                kernel = np.transpose(arrays[0], (2, 3, 0, 1))
            else:
                continue
            k = torch.from_numpy(np.ascontiguousarray(kernel)).to(dev, self.dtype).contiguous(memory_format=cl)
            b = torch.from_numpy(np.asarray(arrays[1])).to(dev, self.dtype) if len(arrays) > 1 else None
            self.params[name] = (k, b)
        self.mean = torch.tensor(CAFFE_BGR_MEAN, dtype=torch.float32, device=dev).view(1, 3, 1, 1)

    def __call__(self, x):
        torch = _torch()
        F = torch.nn.functional
        if self.preprocessing == "caffe":
            x = torch.flip((x + 1.0) * 127.5, dims=[1]) - self.mean
        t = {self.input: x.to(self.dtype).contiguous(memory_format=torch.channels_last)}
        for kind, name, cfg, srcs in self.layers:
            a = t[srcs[0]]
            if kind in ("Conv2D", "DepthwiseConv2D"):
                k, b = self.params[name]
                kernel, strides = tuple(cfg["kernel_size"]), tuple(cfg["strides"])
                padding = 0
                if cfg["padding"] == "same":
                    if strides == (1, 1) and kernel[0] % 2 and kernel[1] % 2:
                        padding = (kernel[0] // 2, kernel[1] // 2)  # symmetric: F.conv2d pads it itself
                    else:
                        a = _pad_same(a, kernel, strides)
                groups = a.shape[1] if kind == "DepthwiseConv2D" else 1
                y = _activation(F.conv2d(a, k, b, stride=strides, padding=padding, groups=groups),
                                cfg["activation"])
            elif kind == "ReLU":
                y = _relu(a, cfg)
            elif kind == "Activation":
                y = _activation(a, cfg["activation"])
            elif kind == "Identity":
                y = a
            elif kind == "Add":
                y = a
                for s in srcs[1:]:
                    y = y + t[s]
            elif kind == "Concatenate":
                y = torch.cat([t[s] for s in srcs], dim=1)  # channels-last axis -1 is NCHW's 1
            elif kind in ("MaxPooling2D", "AveragePooling2D"):
                y = _pool(kind, a, cfg)
            else:  # ZeroPadding2D
                (top, bottom), (left, right) = cfg["padding"]
                y = F.pad(a, (left, right, top, bottom))
            t[name] = y
        return [t[n].float() for n in self.outputs]


def _pool(kind: str, a, cfg: dict):
    """Max or average pooling with TensorFlow's padding: "same" pads max pooling with -inf and
    leaves the padding out of an average's count."""
    F = _torch().nn.functional
    size = tuple(cfg["pool_size"])
    strides = tuple(cfg["strides"] or size)
    if kind == "MaxPooling2D":
        if cfg["padding"] == "same":
            a = _pad_same(a, size, strides, value=-math.inf)
        return F.max_pool2d(a, size, strides)
    if cfg["padding"] != "same":
        return F.avg_pool2d(a, size, strides)
    ones = _pad_same(_torch().ones_like(a[:1, :1]), size, strides)
    return F.avg_pool2d(_pad_same(a, size, strides), size, strides) / F.avg_pool2d(ones, size, strides)


class KerasNetwork:
    """A network outside the runner's layer kinds, as its Keras model on Keras's torch backend
    (the torch-only install): the same call, NHWC inside."""

    def __init__(self, model, preprocessing: str, dtype, dev):
        torch = _torch()
        self.model, self.preprocessing, self.dtype = model, preprocessing, dtype
        self.mean = torch.tensor(CAFFE_BGR_MEAN, dtype=torch.float32, device=dev).view(1, 3, 1, 1)

    def __call__(self, x):
        torch = _torch()
        if self.preprocessing == "caffe":
            x = torch.flip((x + 1.0) * 127.5, dims=[1]) - self.mean
        with torch.autocast(x.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            outs = self.model(x.permute(0, 2, 3, 1), training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return [o.permute(0, 3, 1, 2).float() for o in outs]


@dataclass(frozen=True, eq=False)
class TorchModel:
    """A tapped network on the torch backend (the attributes the octave loop and objectives
    read are those of models.DreamModel)."""

    name: str
    layers: tuple
    preprocessing: str
    min_size: int
    scales: tuple[float, ...]
    precision: str  # "float32" | "mixed_float16" | "mixed_bfloat16"
    network: object = field(repr=False)
    device: object = None  # the torch.device it runs on

    backend = "torch"

    @property
    def compute_dtype(self) -> str:
        return {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}.get(self.precision, "float32")

    def __call__(self, x):
        return self.network(x)


# ---- the objective -------------------------------------------------------------------------

def _crop(a):
    """Activations (b, c, h, w) without a BORDER at each edge (they see the padding)."""
    h, w = a.shape[2], a.shape[3]
    bh, bw = min(BORDER, (h - 1) // 2), min(BORDER, (w - 1) // 2)
    return a[:, :, bh:h - bh, bw:w - bw]


def _guide_match(a, guide):
    """backends.tensorflow._guide_match in NCHW: (b, c, h, w), (n, c) -> (b,)."""
    torch = _torch()
    b, c = a.shape[0], a.shape[1]
    flat = a.reshape(b, c, -1).transpose(1, 2)  # (b, positions, c)
    dots = torch.einsum("bpc,nc->bpn", flat, guide)
    return dots.max(dim=-1).values.mean(dim=1) / c


def terms_function(terms: Terms, dev):
    """(acts, gains) -> (losses, sizes): backends.tensorflow.terms_function in torch ops."""
    torch = _torch()
    g = float(terms.guide_weight) if terms.guide is not None else 0.0
    targets = ([None if t is None else torch.from_numpy(np.asarray(t, np.float32)).to(dev) for t in terms.guide]
               if g else [None] * len(terms.weights))

    def run(acts, gains):
        out, sizes = [], []
        for k, (w, a) in enumerate(zip(terms.weights, acts)):
            if terms.eased:
                a = a * gains[k]
            a = _crop(a)
            if terms.linear[k]:
                term = a.mean(dim=(1, 2, 3)) * (gains[k] if terms.eased else 1.0)
            else:
                term = a.square().mean(dim=(1, 2, 3))
                if targets[k] is not None:
                    term = (1.0 - g) * term + g * _guide_match(a, targets[k])
            out.append(w * term)
            sizes.append(float(a[0].numel()))
        return out, sizes

    return run


# ---- the step ------------------------------------------------------------------------------

def _blur(g, sigma: float):
    """A Gaussian blur of the (1, 3, h, w) gradient, sigma px: separable, the edges mirrored
    with the edge pixel repeated (TensorFlow's SYMMETRIC padding, as the TensorFlow step)."""
    torch = _torch()
    F = torch.nn.functional
    r = math.ceil(2.5 * sigma)
    t = torch.arange(-r, r + 1, dtype=torch.float32, device=g.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    g = torch.cat([g[:, :, :r].flip(2), g, g[:, :, g.shape[2] - r:].flip(2)], dim=2)
    g = torch.cat([g[:, :, :, :r].flip(3), g, g[:, :, :, g.shape[3] - r:].flip(3)], dim=3)
    g = F.conv2d(g, k.view(1, 1, 1, -1).repeat(3, 1, 1, 1), groups=3)
    return F.conv2d(g, k.view(1, 1, -1, 1).repeat(3, 1, 1, 1), groups=3)


def _sample(img, a, mirror: bool):
    """backends.tensorflow._sample on a (1, c, h, w) image, by grid_sample: pixel centres at
    (2x + 1) / w - 1 (align_corners=False), whose "reflection" padding mirrors about the
    picture's edge as TensorFlow's REFLECT does, and "zeros" reads 0 per corner as CONSTANT."""
    torch = _torch()
    _, _, h, w = img.shape
    gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=img.device),
                            torch.arange(w, dtype=torch.float32, device=img.device), indexing="ij")
    u = a[0, 0] * gx + a[0, 1] * gy + a[0, 2]
    v = a[1, 0] * gx + a[1, 1] * gy + a[1, 2]
    grid = torch.stack([(2 * u + 1) / w - 1, (2 * v + 1) / h - 1], dim=-1)[None]
    return torch.nn.functional.grid_sample(img, grid, mode="bilinear", padding_mode="reflection" if mirror else "zeros",
                                           align_corners=False)


def _lap_kernel(dev):
    """LAP_KERNEL's 5x5 outer product, one per channel (groups=3): (3, 1, 5, 5)."""
    torch = _torch()
    k = torch.tensor(np.outer(LAP_KERNEL, LAP_KERNEL), dtype=torch.float32, device=dev)
    return k.view(1, 1, 5, 5).repeat(3, 1, 1, 1)


def _lapnorm(g, levels: int, k):
    """backends.tensorflow._lapnorm on a (1, 3, h, w) gradient: TensorFlow's "same" padding,
    and its conv2d_transpose as torch's cropped to the padded input."""
    torch = _torch()
    F = torch.nn.functional

    def down(t):
        return F.conv2d(_pad_same(t, (5, 5), (2, 2)), k, stride=2, groups=3)

    def up(t, like):
        h, w = like.shape[2], like.shape[3]
        top, left = _same(h, 5, 2)[0], _same(w, 5, 2)[0]
        return F.conv_transpose2d(t, k * 4, stride=2, groups=3)[:, :, top:top + h, left:left + w]

    def norm(t):
        return t / torch.clamp(t.square().mean().sqrt(), min=LAP_EPS)

    bands = []
    for _ in range(levels):
        lo = down(g)
        bands.append(norm(g - up(lo, g)))
        g = lo
    g = norm(g)
    for hi in reversed(bands):
        g = up(g, hi) + hi
    return g


class TorchStep(Step):
    """The step of one network and objective (see the module docstring). Eager: nothing is
    traced, so `traces` is 1 from the start (the tests that pin a TensorFlow trace hold)."""

    def __init__(self, model: TorchModel, terms: Terms):
        self.model = model
        self.traces = 1
        self.device = model.device
        self.terms = terms_function(terms, self.device)
        self.reduced = model.compute_dtype != "float32"
        self.min_grad_scale = [float(np.sqrt(sc)) for sc in model.scales]
        self.lap_kernel = _lap_kernel(self.device)

    def gradient(self, t, gains):
        """Per-tile losses (b,) and d loss / d t of a batch of (b, 3, h, w) dream-space tiles."""
        torch = _torch()
        t = t.detach().requires_grad_(True)
        with torch.enable_grad():
            terms, sizes = self.terms(self.model(t), gains)
            losses = torch.stack(terms).sum(dim=0)
            total = losses.sum()
            scale = min(n * c for n, c in zip(sizes, self.min_grad_scale)) if self.reduced else 1.0
            (grad,) = torch.autograd.grad(total * scale if self.reduced else total, t)
        return losses.detach(), grad / scale if self.reduced else grad

    def tiled(self, x, ys, xs, gains):
        """Loss and gradient of the (1, 3, h, w) image, one tile per network call."""
        torch = _torch()
        grad = torch.empty_like(x)
        loss = torch.zeros((), device=x.device)
        area = float(x.shape[2] * x.shape[3])
        for y0, y1 in zip(ys[:-1], ys[1:]):
            for x0, x1 in zip(xs[:-1], xs[1:]):
                part_loss, part_grad = self.gradient(x[:, :, y0:y1, x0:x1], gains)
                grad[:, :, y0:y1, x0:x1] = part_grad
                loss = loss + part_loss[0] * ((y1 - y0) * (x1 - x0) / area)
        return loss, grad

    def batched(self, x, ys, xs, gains, batch: int):
        """Loss and gradient, `batch` tiles per network call: every tile cut at the largest
        part's size so that they stack (backends.tensorflow's batched step), only its own part
        of each tile's gradient kept."""
        torch = _torch()
        h, w = x.shape[2], x.shape[3]
        th, tw = max(b - a for a, b in zip(ys[:-1], ys[1:])), max(b - a for a, b in zip(xs[:-1], xs[1:]))
        parts = [(i, j) for i in range(len(ys) - 1) for j in range(len(xs) - 1)]
        grad = torch.empty_like(x)
        loss = torch.zeros((), device=x.device)
        for k0 in range(0, len(parts), batch):
            chunk = parts[k0:k0 + batch]
            origins = [(min(ys[i], h - th), min(xs[j], w - tw)) for i, j in chunk]
            tiles = torch.cat([x[:, :, oy:oy + th, ox:ox + tw] for oy, ox in origins])
            losses, grads = self.gradient(tiles, gains)
            for m, ((i, j), (oy, ox)) in enumerate(zip(chunk, origins)):
                y0, x0 = ys[i] - oy, xs[j] - ox
                grad[:, :, ys[i]:ys[i + 1], xs[j]:xs[j + 1]] = grads[m:m + 1, :, y0:y0 + ys[i + 1] - ys[i],
                                                                     x0:x0 + xs[j + 1] - xs[j]]
                loss = loss + losses[m] * ((ys[i + 1] - ys[i]) * (xs[j + 1] - xs[j]) / float(h * w))
        return loss, grad

    def run(self, x, shift, step: float, ys, xs, mask, smooth: float, gains=None, batch: int = 1, colour=None,
            levels: int = 0, warp=None):
        """One step: x (1, 3, h, w) float32 on the device; colour (3, 3) and warp (2, 2, 3)
        float32 tensors on it or None (backends.Step.start, Ascent); returns (loss, new x)."""
        torch = _torch()
        dy, dx = int(shift[0]), int(shift[1])
        rolled = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
        if warp is not None:
            rolled = _sample(rolled, warp[0], mirror=True)
        if batch > 1 and (len(ys) > 2 or len(xs) > 2):
            loss, grad = self.batched(rolled, ys, xs, gains, batch)
        else:
            loss, grad = self.tiled(rolled, ys, xs, gains)
        with torch.no_grad():
            if warp is not None:
                grad = _sample(grad, warp[1], mirror=False)
            grad = torch.roll(grad, shifts=(-dy, -dx), dims=(2, 3))
            if smooth > 0:
                grad = _blur(grad, smooth)
            if colour is not None:
                grad = torch.einsum("ij,bjhw->bihw", colour, grad)
            if levels > 0:
                grad = _lapnorm(grad, levels, self.lap_kernel)
            grad = grad * mask
            area = torch.clamp(mask.mean(), min=GRAD_EPS)  # on the device: no wait for it each step
            grad = grad / torch.clamp(grad.abs().mean() / area, min=GRAD_EPS)
            return loss, torch.clamp(x + step * grad, -1.0, 1.0)

    def start(self, x, *, step, ys, xs, mask, smooth, gains, colour=None, lapnorm=0):
        return _Ascent(self, x, step, ys, xs, mask, smooth, gains, colour, lapnorm)


class _Ascent(Ascent):
    def __init__(self, compiled: TorchStep, x, step, ys, xs, mask, smooth, gains, colour, lapnorm):
        torch = _torch()
        dev = compiled.device
        h, w = x.shape[:2]
        self.compiled, self.step, self.ys, self.xs, self.smooth = compiled, float(step), list(ys), list(xs), smooth
        self.x = to_device(x, dev)
        self.mask = (torch.ones((1, 1, h, w), device=dev) if mask is None
                     else torch.from_numpy(np.ascontiguousarray(mask, np.float32)).to(dev).view(1, 1, h, w))
        self.gains = None if gains is None else torch.from_numpy(np.asarray(gains, np.float32)).to(dev)
        self.colour = None if colour is None else _tensor(colour, (3, 3), dev)
        self.levels = int(lapnorm)

    def __call__(self, shift, batch, warp=None):
        warp = None if warp is None else _tensor(warp, (2, 2, 3), self.compiled.device)
        loss, self.x = self.compiled.run(self.x, shift, self.step, self.ys, self.xs, self.mask, self.smooth,
                                         self.gains, batch, self.colour, self.levels, warp)
        return loss

    def image(self):
        return self.x[0].permute(1, 2, 0).cpu().numpy()


def _tensor(a, shape: tuple, dev):
    """A small float32 array (a colour matrix, a warp) as a tensor of `shape` on `dev`."""
    return _torch().from_numpy(np.ascontiguousarray(a, np.float32).reshape(shape)).to(dev)


def to_device(image: np.ndarray, dev=None):
    """(H, W, 3) float32 -> (1, 3, H, W) on `dev` (default: the backend's device)."""
    torch = _torch()
    x = torch.from_numpy(np.ascontiguousarray(image, np.float32)).permute(2, 0, 1)[None].contiguous()
    return x.to(dev or device())


# ---- the backend ---------------------------------------------------------------------------

class Torch(Backend):
    name = "torch"

    def load(self, name, layers, weights, precision, on: str | None = None):
        """`on`: a torch device name ("cpu", "cuda:1"); default: CUDA, else MPS, else the CPU."""
        return _load(name, tuple(layers), weights, precision, on or str(device()))

    def activations(self, model, image):
        torch = _torch()
        with torch.no_grad():
            return [a.permute(0, 2, 3, 1)[0].cpu().numpy() for a in model(to_device(image, model.device))]

    def compile(self, model, terms):
        return TorchStep(model, terms)

    def out_of_memory(self, error):
        torch = _torch()
        oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", ())
        return isinstance(error, oom) or (isinstance(error, RuntimeError) and "out of memory" in str(error).lower())

    def gpu(self):
        torch = _torch()
        d = device()
        if d.type == "cuda":
            return torch.cuda.get_device_name(0)
        return "Apple MPS" if d.type == "mps" else None

    def version(self):
        return _torch().__version__

    def memory(self):
        torch = _torch()
        if device().type != "cuda":
            return None
        return {"peak": int(torch.cuda.max_memory_allocated()), "current": int(torch.cuda.memory_allocated())}

    def reset_memory(self):
        torch = _torch()
        if device().type == "cuda":
            torch.cuda.reset_peak_memory_stats()

    def empty_cache(self):
        torch = _torch()
        if device().type == "cuda":
            torch.cuda.empty_cache()


@functools.lru_cache(maxsize=8)
def _load(name: str, layers: tuple, weights: str | None, precision: str, on: str) -> TorchModel:
    from .. import models
    from ..errors import ModelError
    from ..models import plain

    f = models.folded(name, layers, weights)
    dev = _torch().device(on)
    dtype = reduced_dtype(precision, dev)
    policy = {None: "float32", _torch().float16: "mixed_float16", _torch().bfloat16: "mixed_bfloat16"}[dtype]
    try:
        network = Network(f.config, f.weights, f.preprocessing, dtype, dev)
    except plain.Unsupported as e:
        if models.keras_backend() != "torch" or f.keras is None:
            raise ModelError(f"{name} cannot run on the torch backend here: {e}",
                             hint="use --backend tensorflow for this network") from None
        log.info("%s runs as its Keras model on torch: %s", name, e)
        network = KerasNetwork(f.keras, f.preprocessing, dtype, dev)
    return TorchModel(f.name, f.layers, f.preprocessing, f.min_size, f.scales, policy, network, dev)


BACKEND = Torch()
