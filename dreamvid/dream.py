"""One image in, one dreamed image out: octaves, gradient ascent, jitter, tiling, max_loss.

The algorithm (Mordvintsev et al. 2015, in the Keras DeepDream example's vocabulary):
build a pyramid of `num_octave` sizes with ratio `octave_scale`; at each size run
`iterations` gradient-ascent steps on loss = sum over layers of weight * mean(activation²)
(a 2-activation border excluded, as in the Keras example); divide the gradient by its mean
absolute value; stop an octave early once the loss passes `max_loss`; carry the dreamed
detail (image minus the source at that size) up to the next size, so detail lost by
downscaling is re-injected from the source.

Images enter as float32 0..255 RGB and are dreamed in "dream space", RGB scaled to [-1, 1];
each model converts that to its own preprocessing (models.DreamModel). Every step rolls the
image by a random (seeded) offset, which hides tile seams and the network's stride grid.
Images larger than `tile` are cut into near-equal tiles; gradients are computed per tile and
normalised over the whole image, so memory is bounded while the result matches an untiled
run closely. On a GPU, tiles go through the network `tile_batch` at a time (all cut at the
largest tile's size so that they stack; a batch that runs out of memory is halved and the
step run again). A whole step (roll, tiles, normalisation, update, clip) is ONE `tf.function`
with a `TensorSpec([None, None, 3])` image and tensor arguments for the rest: traced once
per model and reused for every octave, tile, frame and call (Dreamer explains the choices;
bench/ measures them).
"""
from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field, replace
from typing import Callable

import cv2
import numpy as np

from .errors import InputError, SettingsError
from .settings import DreamSettings, validate

log = logging.getLogger("dreamvid")

BORDER = 2  # activations excluded at each edge of the loss (Keras example), they see padding
AUTO_TILE_BATCH = 16  # tiles per network call on a GPU when tile_batch is not set (halved on OOM)
GRAD_EPS = 1e-8  # floor of the gradient's mean |g| when normalising


@dataclass(frozen=True)
class Progress:
    """Reported after every gradient-ascent step."""

    octave: int  # 0-based, smallest first
    num_octave: int
    iteration: int  # 1-based within the octave
    iterations: int
    loss: float
    size: tuple[int, int]  # (height, width) of this octave


ProgressFn = Callable[[Progress], None]
SnapshotFn = Callable[[int, np.ndarray], None]  # (steps done so far, full-size float32 0..255 image)


def to_dream_space(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, np.float32) / 127.5 - 1.0


def from_dream_space(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, np.float32) + 1.0) * 127.5


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W, C) float32 to size=(height, width): area filter down, bicubic up."""
    h, w = size
    if (h, w) == image.shape[:2]:
        return image
    shrinking = h * w < image.shape[0] * image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def fit_max_size(image: np.ndarray, max_size: int | None) -> np.ndarray:
    """Downscale so the longest side is at most `max_size` px (never upscales)."""
    if not max_size or max(image.shape[:2]) <= max_size:
        return image
    scale = max_size / max(image.shape[:2])
    h, w = (max(1, round(d * scale)) for d in image.shape[:2])
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def octave_sizes(height: int, width: int, num_octave: int, octave_scale: float, min_size: int) -> list[tuple[int, int]]:
    """Pyramid sizes, smallest first, as the Keras example computes them; sizes whose shorter
    side would fall below `min_size` px are dropped (the network cannot see them)."""
    sizes = []
    for i in range(num_octave - 1, -1, -1):
        h, w = int(height / octave_scale**i), int(width / octave_scale**i)
        if min(h, w) >= min_size:
            sizes.append((h, w))
    return sizes


def check_size(height: int, width: int, s: DreamSettings, min_size: int | None = None) -> list[tuple[int, int]]:
    """The octave sizes for an image of this size, or InputError if it is too small to dream."""
    if min_size is None:
        from .models import get_spec

        min_size = get_spec(s.model).min_size
    sizes = octave_sizes(height, width, s.num_octave, s.octave_scale, min_size)
    if not sizes:
        raise InputError(f"the image is {width}x{height} px, too small to dream: {s.model} needs at least "
                         f"{min_size} px on the shorter side",
                         hint=f"use an image at least {min_size} px on each side")
    return sizes


def tile_edges(length: int, tile: int) -> list[int]:
    """Edges of the fewest near-equal parts of [0, length) no longer than `tile`: [0, ..., length]."""
    n = max(1, math.ceil(length / tile))
    return [round(i * length / n) for i in range(n + 1)]


def tile_slices(length: int, tile: int) -> list[slice]:
    """Split [0, length) into the fewest near-equal parts no longer than `tile`."""
    edges = tile_edges(length, tile)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


# ---- objectives: what the gradient ascent maximises -----------------------------------------

def _crop(a):
    """Activations (b, h, w, c) without a BORDER at each edge (they see the padding)."""
    import tensorflow as tf

    h, wd = tf.shape(a)[1], tf.shape(a)[2]
    bh, bw = tf.minimum(BORDER, (h - 1) // 2), tf.minimum(BORDER, (wd - 1) // 2)
    return a[:, bh:h - bh, bw:wd - bw, :]


class Objective:
    """What the dream maximises, as a function of the tapped network's activations.

    `bind(model)` is called once per Dreamer and returns `terms(acts) -> (terms, sizes)`:
    one (b,) loss tensor per layer (one value per tile of the batch; the loss is their sum)
    and each layer's element count per tile (for the reduced-precision gradient scale). It
    runs inside the traced step, so it must be TensorFlow ops on `acts` only. An objective
    is a frozen, hashable value: get_dreamer caches one compiled step per (network, objective).

    The tapped entries (models.DreamModel.layers) are whole layers, single channels
    ("block5c_out/17") or ImageNet classes ("logits/207": that class's logit at every position,
    the classifier applied as a 1x1 convolution); models.load builds each into the network,
    so an objective sees one activation tensor per entry. A class entry is linear (its logit
    is raised, or lowered with a negative weight); the others are excited (mean of squares).
    """

    def bind(self, model) -> Callable:
        raise NotImplementedError


@dataclass(frozen=True)
class Guide:
    """A guide image (--guide) as a hashable value: (h, w, 3) uint8 RGB pixels and a digest."""

    pixels: bytes
    shape: tuple[int, int, int]
    digest: str

    @classmethod
    def of(cls, image: np.ndarray) -> Guide:
        import hashlib

        image = np.ascontiguousarray(image, np.uint8)
        return cls(image.tobytes(), image.shape, hashlib.sha256(image.tobytes()).hexdigest()[:16])

    def image(self) -> np.ndarray:
        return np.frombuffer(self.pixels, np.uint8).reshape(self.shape)

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"Guide({self.shape[1]}x{self.shape[0]}, {self.digest})"


GUIDE_SIZE = 320  # px, longest side the guide is seen at (its features: a few hundred vectors per layer)


def is_class_entry(name: str) -> bool:
    return name.startswith("logits/")


@dataclass(frozen=True)
class MeanSquares(Objective):
    """The DeepDream objective (the default): sum over entries of weight * mean(a²), each
    entry's mean square divided by its reference level (models.DreamModel.scales); a class
    entry adds weight * its mean logit / its reference level instead.

    With a `guide` (Mordvintsev's guided objective, the original notebook's): each position's
    activation vector is matched to the guide's most similar one (largest dot product) and the
    match is raised, so the dream grows the guide's features; `guide_weight` mixes it with
    the plain objective (1: only the guide, 0: only the plain one).
    """

    guide: Guide | None = field(default=None, kw_only=True)
    guide_weight: float = field(default=1.0, kw_only=True)

    def _gains(self, model):
        return None

    def bind(self, model) -> Callable:
        import tensorflow as tf

        names = [n for n, _ in model.layers]
        weights = [self._weight(n, w) / sc for (n, w), sc in zip(model.layers, model.scales)]
        linear = [is_class_entry(n) for n in names]
        gains = self._gains(model)
        g = float(self.guide_weight) if self.guide is not None else 0.0
        targets = self._guide_features(model) if g else [None] * len(names)

        def terms(acts):
            out, sizes = [], []
            for k, (w, a) in enumerate(zip(weights, acts)):
                if gains is not None:
                    a = a * tf.cast(gains[k], a.dtype)
                a = _crop(a)
                if linear[k]:
                    gain2 = 1.0 if gains is None else gains[k]  # linear: the gain squared, as a² would get
                    term = tf.reduce_mean(a, axis=[1, 2, 3]) * gain2
                else:
                    term = tf.reduce_mean(tf.square(a), axis=[1, 2, 3])
                    if targets[k] is not None:
                        term = (1.0 - g) * term + g * _guide_match(a, targets[k])
                out.append(w * term)
                sizes.append(tf.cast(tf.size(a[0]), tf.float32))
            return out, sizes

        return terms

    def _weight(self, name: str, weight: float) -> float:
        return weight

    def _guide_features(self, model) -> list:
        """Per entry: the guide's activation vectors (n, c) at that entry, or None (class entries)."""
        import tensorflow as tf

        guide = fit_max_size(self.guide.image().astype(np.float32), GUIDE_SIZE)
        if min(guide.shape[:2]) < model.min_size:
            guide = resize(guide, tuple(max(model.min_size, d) for d in guide.shape[:2]))
        acts = model(tf.constant(to_dream_space(guide)[None]))
        out = []
        for (name, _), a in zip(model.layers, acts):
            if is_class_entry(name):
                out.append(None)
                continue
            a = _crop(a)
            out.append(tf.constant(tf.reshape(a, [-1, a.shape[-1]]).numpy()))
        return out


def _guide_match(a, guide):
    """Mean over positions of each activation vector's best dot product with a guide vector,
    per channel (so it is in the units of mean(a²)): (b, h, w, c), (n, c) -> (b,)."""
    import tensorflow as tf

    b, c = tf.shape(a)[0], tf.shape(a)[-1]
    flat = tf.reshape(a, [b, -1, c])
    dots = tf.einsum("bpc,nc->bpn", flat, tf.cast(guide, flat.dtype))
    return tf.reduce_mean(tf.reduce_max(dots, axis=-1), axis=1) / tf.cast(c, a.dtype)


@dataclass(frozen=True)
class EasedMeanSquares(MeanSquares):
    """MeanSquares whose entry weights change during a render without a new trace (zoom
    keyframes easing `layers`): each entry's activations are scaled by a gain held in a
    tf.Variable, loss = sum sign_l / scale_l * mean((gain_l a_l)²), gain_l = sqrt(|w_l|)
    (a class entry: sign_l / scale_l * gain_l² * mean(logit)). The sign of each entry is fixed
    for the render (`signs`, by name; a weight that crosses 0 between keyframes is refused by
    the zoom plan). The network's own layer weights must be 1."""

    signs: tuple[tuple[str, float], ...] = ()

    def _weight(self, name: str, weight: float) -> float:
        return dict(self.signs).get(name, 1.0)

    def _gains(self, model):
        import tensorflow as tf

        names = [n for n, _ in model.layers]
        gains = tf.Variable(tf.ones([len(names)]), trainable=False, name="layer_gains")
        object.__setattr__(self, "_gain_var", gains)  # the bound state of this (frozen) value
        object.__setattr__(self, "_names", tuple(names))
        return gains

    def set_weights(self, layers: dict[str, float]) -> None:
        """The weights for the next frames (layers not named get 0)."""
        self._gain_var.assign([math.sqrt(abs(layers.get(n, 0.0))) for n in self._names])


class Dreamer:
    """Compiled gradient ascent for one tapped network (models.DreamModel).

    One gradient-ascent step is ONE call of one `tf.function`: roll by the jitter, loss and
    gradient, roll back, normalise by the whole image's mean |g|, update, clip. An image that
    fits one tile takes `_single_step`; a larger one `_ascent_step` (tile by tile in a graph
    loop) or, on a GPU, `_batched_ascent_step`. The image stays a tensor on the device for a
    whole octave; only the scalar loss comes back per step (for `max_loss` and progress).
    Every input has a shape-free signature, so each step is traced at most once per model
    (when first needed) and reused for every octave, tile count, frame and call.
    """

    def __init__(self, model, objective: Objective | None = None):
        from .models import setup_tensorflow

        tf = setup_tensorflow()
        self.model = model
        self.objective = objective = objective or MeanSquares()
        self.traces = 0  # how often the step was traced (tests pin it at 1)
        terms_of = objective.bind(model)
        # Reduced precision: the gradient reaching the activations is ~a / (scale * N), below
        # float16's normal range for big layers. Backpropagate loss * grad_scale, with the
        # largest activation gradient of order one, and divide the float32 input gradient by it.
        reduced = getattr(model, "compute_dtype", "float32") != "float32"
        min_grad_scale = [float(np.sqrt(sc)) for sc in model.scales]

        def batch_gradient(t):
            """Per-tile losses (b,) and d loss / d t of a batch of (b, h, w, 3) dream-space tiles.

            Every layer here works on each image of a batch alone (batch norms are folded or in
            inference mode), so tile k's gradient is that of its own loss."""
            with tf.GradientTape() as tape:
                tape.watch(t)
                terms, sizes = terms_of(model(t))
                losses = tf.add_n(terms)
                total = tf.reduce_sum(losses)
                if reduced:
                    grad_scale = tf.reduce_min(tf.stack([n * c for n, c in zip(sizes, min_grad_scale)]))
                    total = total * grad_scale
            grad = tape.gradient(total, t)
            return losses, grad / grad_scale if reduced else grad

        def tile_gradient(x):
            """Loss and d loss / d x of one (h, w, 3) dream-space tile."""
            losses, grad = batch_gradient(x[tf.newaxis])
            return losses[0], grad[0]

        def tiled_gradient(x, ys, xs):
            """Loss and gradient of the whole image, tile by tile; memory is one tile's."""
            ny, nx = tf.size(ys) - 1, tf.size(xs) - 1
            area = tf.cast(tf.size(x) // 3, tf.float32)

            # Rows of tiles; within a row the (w, h, 3) transposed tile gradients concatenate
            # along axis 0 (TensorArray.concat's axis), and the rows along the height.
            def row(i, rows, loss):
                y0, y1 = ys[i], ys[i + 1]

                def col(j, cols, loss):
                    part_loss, part_grad = tile_gradient(x[y0:y1, xs[j]:xs[j + 1]])
                    frac = tf.cast((y1 - y0) * (xs[j + 1] - xs[j]), tf.float32) / area
                    return j + 1, cols.write(j, tf.transpose(part_grad, [1, 0, 2])), loss + part_loss * frac

                cols = tf.TensorArray(tf.float32, size=nx, infer_shape=False)
                # parallel_iterations=1: one tile in flight, or memory grows with the tile count
                _, cols, loss = tf.while_loop(lambda j, *_: j < nx, col, (0, cols, loss), parallel_iterations=1)
                return i + 1, rows.write(i, tf.transpose(cols.concat(), [1, 0, 2])), loss

            rows = tf.TensorArray(tf.float32, size=ny, infer_shape=False)
            _, rows, loss = tf.while_loop(lambda i, *_: i < ny, row, (0, rows, tf.constant(0.0)),
                                          parallel_iterations=1)
            return loss, rows.concat()

        def batched_gradient(x, ys, xs, batch):
            """Loss and gradient of the whole image, `batch` tiles per network call (GPU).

            The tiles' own parts are the same near-equal parts as `tiled_gradient`'s, but every
            tile is cut at the largest part's size (th, tw), so that they stack: a tile near the
            far edge starts early enough to fit, and sees up to a pixel of its neighbour as
            context. Only the own part of each tile's gradient is kept."""
            h, w = tf.shape(x)[0], tf.shape(x)[1]
            ny, nx = tf.size(ys) - 1, tf.size(xs) - 1
            th, tw = tf.reduce_max(ys[1:] - ys[:-1]), tf.reduce_max(xs[1:] - xs[:-1])
            oy, ox = tf.minimum(ys[:-1], h - th), tf.minimum(xs[:-1], w - tw)  # tile origins
            n, area = ny * nx, tf.cast(h * w, tf.float32)

            def chunk(k0, parts, loss):
                b = tf.minimum(batch, n - k0)
                tiles = tf.map_fn(lambda k: x[oy[k // nx]:oy[k // nx] + th, ox[k % nx]:ox[k % nx] + tw],
                                  tf.range(k0, k0 + b), fn_output_signature=tf.TensorSpec([None, None, 3], x.dtype))
                losses, grads = batch_gradient(tiles)

                def keep(m, parts, loss):
                    k = k0 + m
                    i, j = k // nx, k % nx
                    y0, x0 = ys[i] - oy[i], xs[j] - ox[j]
                    own = grads[m, y0:y0 + ys[i + 1] - ys[i], x0:x0 + xs[j + 1] - xs[j]]
                    frac = tf.cast((ys[i + 1] - ys[i]) * (xs[j + 1] - xs[j]), tf.float32) / area
                    return m + 1, parts.write(k, tf.transpose(own, [1, 0, 2])), loss + losses[m] * frac

                _, parts, loss = tf.while_loop(lambda m, *_: m < b, keep, (0, parts, loss))
                return k0 + b, parts, loss

            parts = tf.TensorArray(tf.float32, size=n, infer_shape=False)
            # parallel_iterations=1: one batch in flight, so memory is `batch` tiles' worth
            _, parts, loss = tf.while_loop(lambda k0, *_: k0 < n, chunk, (0, parts, tf.constant(0.0)),
                                           parallel_iterations=1)

            def row(i, rows):
                cat = tf.TensorArray(tf.float32, size=nx, infer_shape=False)
                cat = tf.while_loop(lambda j, _: j < nx, lambda j, c: (j + 1, c.write(j, parts.read(i * nx + j))),
                                    (0, cat))[1]
                return i + 1, rows.write(i, tf.transpose(cat.concat(), [1, 0, 2]))

            rows = tf.TensorArray(tf.float32, size=ny, infer_shape=False)
            _, rows = tf.while_loop(lambda i, _: i < ny, row, (0, rows))
            return loss, rows.concat()

        def blur(g, sigma):
            """A Gaussian blur of the (h, w, 3) gradient, sigma px (separable, edges replicated)."""
            r = tf.cast(tf.math.ceil(2.5 * sigma), tf.int32)
            t = tf.cast(tf.range(-r, r + 1), tf.float32)
            k = tf.exp(-0.5 * tf.square(t / sigma))
            k /= tf.reduce_sum(k)
            g = tf.pad(g[tf.newaxis], [[0, 0], [r, r], [r, r], [0, 0]], mode="SYMMETRIC")
            g = tf.nn.depthwise_conv2d(g, tf.tile(tf.reshape(k, [1, -1, 1, 1]), [1, 1, 3, 1]), [1, 1, 1, 1], "VALID")
            g = tf.nn.depthwise_conv2d(g, tf.tile(tf.reshape(k, [-1, 1, 1, 1]), [1, 1, 3, 1]), [1, 1, 1, 1], "VALID")
            return g[0]

        def update(x, loss, grad, shift, step, mask, smooth):
            # `smooth` > 0 blurs the gradient (larger, calmer shapes; tf.cond: the network is not
            # traced twice). The mask (h, w, 1; ones without --mask) weighs the update: black keeps
            # the picture. Normalised over the masked area: what is dreamed, as hard as unmasked.
            grad = tf.roll(grad, -shift, axis=[0, 1])
            grad = tf.cond(smooth > 0, lambda: blur(grad, smooth), lambda: grad) * mask
            area = tf.maximum(tf.reduce_mean(mask), GRAD_EPS)
            grad /= tf.maximum(tf.reduce_mean(tf.abs(grad)) / area, GRAD_EPS)
            return loss, tf.clip_by_value(x + step * grad, -1.0, 1.0)

        signature = [
            tf.TensorSpec([None, None, 3], tf.float32),  # x: dream-space image
            tf.TensorSpec([2], tf.int32),  # shift: jitter roll (dy, dx) in px
            tf.TensorSpec([], tf.float32),  # step size
            tf.TensorSpec([None], tf.int32),  # ys: tile edges along the height, [0, ..., h]
            tf.TensorSpec([None], tf.int32),  # xs: tile edges along the width
            tf.TensorSpec([None, None, 1], tf.float32),  # mask: weight of each pixel's update, 0..1
            tf.TensorSpec([], tf.float32),  # smooth: gradient blur sigma in px (0: none)
        ]

        # autograph=False: the steps hold no Python control flow on tensors (tf.cond and
        # tf.while_loop are written out), so AutoGraph would trace the same graph
        # (tests/test_dream.py), and converting their source was 0.4 s of a first trace.
        @tf.function(input_signature=signature, reduce_retracing=True, autograph=False)
        def ascent_step(x, shift, step, ys, xs, mask, smooth):
            self.traces += 1  # Python side effect: runs only while tracing
            # An image within one tile is a loop of one iteration: as fast as a direct call
            # (bench/), and a tf.cond between the two would trace the network twice.
            loss, grad = tiled_gradient(tf.roll(x, shift, axis=[0, 1]), ys, xs)
            return update(x, loss, grad, shift, step, mask, smooth)

        @tf.function(input_signature=[signature[0], signature[1], signature[2], signature[5], signature[6]],
                     reduce_retracing=True, autograph=False)
        def single_step(x, shift, step, mask, smooth):
            """The step of an image that is one tile (most stills and frames): no tile loop, so it
            traces in about half the time of `ascent_step` and its first call is faster too
            (bench/startup.py); the same arithmetic, so the same result."""
            self.traces += 1
            loss, grad = tile_gradient(tf.roll(x, shift, axis=[0, 1]))
            return update(x, loss, grad, shift, step, mask, smooth)

        @tf.function(input_signature=[*signature, tf.TensorSpec([], tf.int32)], reduce_retracing=True,
                     autograph=False)
        def batched_ascent_step(x, shift, step, ys, xs, mask, smooth, batch):
            self.traces += 1
            loss, grad = batched_gradient(tf.roll(x, shift, axis=[0, 1]), ys, xs, batch)
            return update(x, loss, grad, shift, step, mask, smooth)

        self._ascent_step = ascent_step
        self._single_step = single_step
        self._batched_ascent_step = batched_ascent_step
        self.batch_limit: int | None = None  # set by a batch that ran out of GPU memory

    @property
    def min_size(self) -> int:
        return self.model.min_size

    def tile_batch(self, s: DreamSettings, n_tiles: int) -> int:
        """Tiles per network call for an image of `n_tiles` tiles: s.tile_batch, or on a GPU
        AUTO_TILE_BATCH, never more than a batch that has run out of memory before."""
        from .models import gpu_available

        want = s.tile_batch if s.tile_batch is not None else AUTO_TILE_BATCH if gpu_available() else 1
        return max(1, min(want, n_tiles, self.batch_limit or want))

    def ascend(self, x: np.ndarray, s: DreamSettings, rng: np.random.Generator, *, octave: int = 0,
               num_octave: int = 1, progress: ProgressFn | None = None,
               on_step: Callable[[np.ndarray], None] | None = None, mask: np.ndarray | None = None) -> np.ndarray:
        """Run up to s.iterations steps on dream-space `x` (H, W, 3) float32; returns the new x.
        mask: (H, W) float32 0..1, how much each pixel is dreamed (None: all of it)."""
        import tensorflow as tf

        h, w = x.shape[:2]
        ys, xs = tile_edges(h, s.tile), tile_edges(w, s.tile)
        batch = self.tile_batch(s, (len(ys) - 1) * (len(xs) - 1))
        one_tile = len(ys) == 2 and len(xs) == 2
        ys, xs = tf.constant(ys, tf.int32), tf.constant(xs, tf.int32)
        step = tf.constant(s.step, tf.float32)
        xt = tf.constant(np.asarray(x, np.float32))
        mt = tf.ones([h, w, 1], tf.float32) if mask is None else tf.constant(np.asarray(mask, np.float32)[..., None])
        smooth = tf.constant(s.smooth * min(h, w) / 100.0, tf.float32)  # % of the octave's shorter side
        for i in range(s.iterations):
            shift = tf.constant([int(v) for v in rng.integers(-s.jitter, s.jitter + 1, 2)] if s.jitter else [0, 0],
                                tf.int32)
            while True:
                try:
                    if one_tile:
                        loss_t, x_next = self._single_step(xt, shift, step, mt, smooth)
                    elif batch > 1:
                        loss_t, x_next = self._batched_ascent_step(xt, shift, step, ys, xs, mt, smooth,
                                                                   tf.constant(batch))
                    else:
                        loss_t, x_next = self._ascent_step(xt, shift, step, ys, xs, mt, smooth)
                    break
                except tf.errors.ResourceExhaustedError:
                    if batch <= 1:
                        raise
                    batch = self.batch_limit = batch // 2  # the step is a pure function: run it again
                    log.info("a batch of tiles ran out of GPU memory; now %d tiles per call", batch)
            xt = x_next
            if progress is None and s.max_loss is None and on_step is None:
                continue  # nothing to report: the steps queue up without waiting for each other
            loss = float(loss_t)
            if progress:
                progress(Progress(octave, num_octave, i + 1, s.iterations, loss, (h, w)))
            if on_step:
                on_step(xt.numpy())
            if s.max_loss is not None and loss > s.max_loss:
                log.debug("octave %d stopped at iteration %d: loss %.2f > max_loss %.2f",
                          octave, i + 1, loss, s.max_loss)
                break
        return xt.numpy()

    def dream(self, image: np.ndarray, s: DreamSettings, *, frame: int = 0, progress: ProgressFn | None = None,
              snapshot_every: int = 0, on_snapshot: SnapshotFn | None = None,
              on_octave: SnapshotFn | None = None, mask: np.ndarray | None = None) -> np.ndarray:
        """Dream `image` (H, W, 3) float32 0..255 RGB; returns float32 0..255 of the same size.

        `frame` is mixed into the jitter seed, so frames of a video differ but repeat exactly.
        With `snapshot_every` K, `on_snapshot(steps, image)` gets the full-size image every K
        steps of the whole run (all octaves): the "continuous" timelapse. `on_octave(octave,
        image)` gets the full-size image after each octave (0-based; a preview of a still).
        `mask` (H, W) float32 0..1: how much each pixel is dreamed (dreamvid/mask.py reads and
        feathers one); where it is 0 the output is the image.
        """
        h, w = image.shape[:2]
        sizes = check_size(h, w, s, self.min_size)
        rng = np.random.default_rng([s.seed, frame])
        source = np.asarray(image, np.float32)
        detail = np.zeros((*sizes[0], 3), np.float32)  # dreamed minus source, at the current size
        if mask is not None:
            mask = np.clip(np.asarray(mask, np.float32), 0.0, 1.0)
            if mask.shape != (h, w):
                raise InputError(f"the mask is {mask.shape[1]}x{mask.shape[0]} px, the image {w}x{h}",
                                 hint="dreamvid.mask.fit resizes a mask to a picture")
        steps = 0
        for octave, size in enumerate(sizes):
            base = to_dream_space(resize(source, size))
            detail = resize(detail, size)

            def step_done(x, base=base):
                nonlocal steps
                steps += 1
                if on_snapshot and snapshot_every and steps % snapshot_every == 0:
                    on_snapshot(steps, self._full_size(x - base, source))

            x = self.ascend(base + detail, s, rng, octave=octave, num_octave=len(sizes), progress=progress,
                            on_step=step_done if on_snapshot else None,
                            mask=None if mask is None else resize(mask[..., None], size).reshape(size))
            detail = x - base
            if on_octave:
                on_octave(octave, self._full_size(detail, source))
        out = np.clip(from_dream_space(to_dream_space(resize(source, sizes[-1])) + detail), 0, 255)
        if sizes[-1] != (h, w):  # the largest octave is the image's own size; keep the contract anyway
            out = resize(out, (h, w))
        return out

    @staticmethod
    def _full_size(detail: np.ndarray, source: np.ndarray) -> np.ndarray:
        x = to_dream_space(source) + resize(detail, source.shape[:2])
        return np.clip(from_dream_space(x), 0, 255)


def network_key(s: DreamSettings, size: tuple[int, int] | None = None) -> tuple:
    """What selects a compiled network for settings `s`: model, layers, weights file and
    precision, "auto" resolved for this machine (precision.resolve; `size`, the image's (h, w)
    when known). Everything else (step, octaves, tiles...) is an argument of the traced step."""
    from .precision import resolve

    return (s.model, tuple(s.targets()), s.weights, resolve(s, size).precision)


@functools.lru_cache(maxsize=8)
def _dreamer(key: tuple, objective: Objective) -> Dreamer:
    from . import models

    model, layers, weights, precision = key
    return Dreamer(models.load(model, layers, weights, precision), objective)


def get_dreamer(s: DreamSettings, objective: Objective | None = None, *,
                size: tuple[int, int] | None = None) -> Dreamer:
    """THE function that decides which compiled Dreamer serves settings `s` (and `objective`,
    default `objective_for(s)`): one per network_key and objective, cached, so sweeps, videos
    and zooms reuse the traced step instead of tracing again. `size`: the (h, w) to be dreamed,
    when known (precision "auto" keeps float32 for a small image)."""
    return _dreamer(network_key(s, size), objective or objective_for(s))


def check_objective(s: DreamSettings, mode: str, size: tuple[int, int] | None = None) -> None:
    """Before any work: the guide reads, and the mask is one `mode` takes (and reads, at the
    picture's `size` when known). InputError / SettingsError naming the problem."""
    from .mask import for_still, kind

    if s.guide:
        load_guide(s.guide)
    k = kind(s.mask)
    if k is None:
        return
    if mode != "video" and k != "image":
        raise SettingsError(f"--mask {s.mask} is for videos: {mode} dreams a still",
                            hint="give a mask image (white dreams, black keeps the picture)")
    if k == "image":
        from .mask import read

        for_still(s.mask, size) if size is not None else read(s.mask)


def input_files(s: DreamSettings) -> dict:
    """The guide and mask files' digests ({} without them): part of a render's resume key, so
    an edited mask is a different render."""
    from .cache import file_digest
    from .mask import kind

    out = {}
    for key, path in (("guide", s.guide), ("mask", s.mask if kind(s.mask) in ("image", "clip") else None)):
        if path:
            try:
                out[key] = file_digest(path)
            except OSError:
                out[key] = None  # the plan's own check says what is wrong with it
    return out


def objective_for(s: DreamSettings, signs: tuple[tuple[str, float], ...] | None = None) -> Objective:
    """The objective settings `s` ask for: MeanSquares over s.targets(), guided by s.guide;
    with `signs`, the EasedMeanSquares of a zoom whose keyframes ease the weights."""
    guide = load_guide(s.guide) if s.guide else None
    if signs is not None:
        return EasedMeanSquares(guide=guide, guide_weight=s.guide_weight, signs=signs)
    return MeanSquares(guide=guide, guide_weight=s.guide_weight)


def load_guide(path: str) -> Guide:
    """The guide image at `path`, shrunk to GUIDE_SIZE (any size and aspect ratio works: its
    features are matched wherever they are). InputError naming the file if it is not an image."""
    from .cache import file_key

    return _guide(file_key(path))


@functools.lru_cache(maxsize=4)
def _guide(key: tuple) -> Guide:
    from .media import read_image

    try:
        return Guide.of(read_image(key[0], max_size=GUIDE_SIZE))
    except InputError as e:
        raise InputError(f"--guide: {e.message}", hint=e.hint) from None


def dream_image(image: np.ndarray, settings: DreamSettings | None = None, *, progress: ProgressFn | None = None,
                dreamer: Dreamer | None = None, on_octave: SnapshotFn | None = None, mask: np.ndarray | None = None,
                **overrides) -> np.ndarray:
    """Dream a still. image: (H, W, 3) uint8 RGB -> (H', W', 3) uint8 RGB.

    mask: (h, w) 0..1 of the image's aspect ratio, 1 dreams, 0 keeps the image (instead of
    the `mask` setting, a file). `classes`, `guide`, `guide_weight`: what to dream of.

    The output has the input's size, or the `max_size`-limited size. Keyword overrides use
    the DreamSettings names: `dream_image(img, step=0.02, layers={"block6d_out": 1.0})`.
    on_octave(octave, image): the picture so far after each octave, float32 0..255 (Dreamer.dream).
    """
    from .settings import parse_classes, parse_layers

    s = settings or DreamSettings()
    if "layers" in overrides:
        overrides["layers"] = parse_layers(overrides["layers"])
    if "classes" in overrides:
        overrides["classes"] = parse_classes(overrides["classes"])
    s = validate(replace(s, **overrides))
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"expected an (H, W, 3) RGB image, got an array of shape {image.shape}",
                         hint="convert grayscale or RGBA images to RGB first (dreamvid.media.read_image does)")
    image = fit_max_size(image.astype(np.float32), s.max_size)
    check_size(*image.shape[:2], s)
    if mask is None and s.mask is not None:
        from .mask import for_still

        mask = for_still(s.mask, image.shape[:2])
    elif mask is not None:
        from .mask import fit

        mask = fit(np.asarray(mask, np.float32), image.shape[:2])
    d = dreamer or get_dreamer(s, size=image.shape[:2])
    return to_uint8(d.dream(image, s, progress=progress, on_octave=on_octave, mask=mask))
