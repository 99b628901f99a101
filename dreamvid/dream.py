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
run closely. The per-tile gradient is ONE `tf.function` with a `TensorSpec([None, None, 3])`
signature: traced once per model and reused for every octave, tile, frame and call.
"""
from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, replace
from typing import Callable

import cv2
import numpy as np

from .errors import InputError
from .settings import DreamSettings, validate

log = logging.getLogger("dreamvid")

BORDER = 2  # activations excluded at each edge of the loss (Keras example), they see padding
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


def tile_slices(length: int, tile: int) -> list[slice]:
    """Split [0, length) into the fewest near-equal parts no longer than `tile`."""
    n = max(1, math.ceil(length / tile))
    edges = [round(i * length / n) for i in range(n + 1)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


class Dreamer:
    """Compiled gradient ascent for one tapped network (models.DreamModel)."""

    def __init__(self, model):
        import tensorflow as tf

        self.model = model
        # Each layer's mean square is divided by its reference level (models.DreamModel.scales).
        weights = tf.constant([w / sc for (_, w), sc in zip(model.layers, model.scales)], tf.float32)

        def loss_fn(x):
            acts = model(x[tf.newaxis])
            total = tf.constant(0.0, tf.float32)
            for w, a in zip(tf.unstack(weights), acts):
                a = tf.cast(a, tf.float32)
                h, wd = tf.shape(a)[1], tf.shape(a)[2]
                bh, bw = tf.minimum(BORDER, (h - 1) // 2), tf.minimum(BORDER, (wd - 1) // 2)
                a = a[:, bh:h - bh, bw:wd - bw, :]
                total += w * tf.reduce_mean(tf.square(a))
            return total

        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32)], reduce_retracing=True)
        def tile_gradient(x):
            self.traces += 1  # Python side effect: runs only while tracing
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = loss_fn(x)
            return loss, tape.gradient(loss, x)

        self.traces = 0  # how often the step was traced (tests pin it at 1)
        self._tile_gradient = tile_gradient

    @property
    def min_size(self) -> int:
        return self.model.min_size

    def gradient(self, x: np.ndarray, shift: tuple[int, int], tile: int) -> tuple[float, np.ndarray]:
        """Loss and gradient of the whole dream-space image `x`, rolled by `shift`, in tiles."""
        h, w = x.shape[:2]
        rolled = np.roll(x, shift, axis=(0, 1)) if any(shift) else x
        grad = np.empty_like(rolled)
        loss = 0.0
        for ys in tile_slices(h, tile):
            for xs in tile_slices(w, tile):
                part = np.ascontiguousarray(rolled[ys, xs])
                tile_loss, tile_grad = self._tile_gradient(part)
                grad[ys, xs] = tile_grad.numpy()
                loss += float(tile_loss) * part.shape[0] * part.shape[1] / (h * w)
        if any(shift):
            grad = np.roll(grad, (-shift[0], -shift[1]), axis=(0, 1))
        return loss, grad

    def ascend(self, x: np.ndarray, s: DreamSettings, rng: np.random.Generator, *, octave: int = 0,
               num_octave: int = 1, progress: ProgressFn | None = None,
               on_step: Callable[[np.ndarray], None] | None = None) -> np.ndarray:
        """Run up to s.iterations steps on dream-space `x` (H, W, 3) float32; returns the new x."""
        x = x.copy()
        for i in range(s.iterations):
            shift = tuple(int(v) for v in rng.integers(-s.jitter, s.jitter + 1, 2)) if s.jitter else (0, 0)
            loss, g = self.gradient(x, shift, s.tile)
            g /= max(float(np.mean(np.abs(g))), GRAD_EPS)
            x += s.step * g
            np.clip(x, -1.0, 1.0, out=x)
            if progress:
                progress(Progress(octave, num_octave, i + 1, s.iterations, loss, x.shape[:2]))
            if on_step:
                on_step(x)
            if s.max_loss is not None and loss > s.max_loss:
                log.debug("octave %d stopped at iteration %d: loss %.2f > max_loss %.2f",
                          octave, i + 1, loss, s.max_loss)
                break
        return x

    def dream(self, image: np.ndarray, s: DreamSettings, *, frame: int = 0, progress: ProgressFn | None = None,
              snapshot_every: int = 0, on_snapshot: SnapshotFn | None = None) -> np.ndarray:
        """Dream `image` (H, W, 3) float32 0..255 RGB; returns float32 0..255 of the same size.

        `frame` is mixed into the jitter seed, so frames of a video differ but repeat exactly.
        With `snapshot_every` K, `on_snapshot(steps, image)` gets the full-size image every K
        steps of the whole run (all octaves): the "continuous" timelapse.
        """
        h, w = image.shape[:2]
        sizes = check_size(h, w, s, self.min_size)
        rng = np.random.default_rng([s.seed, frame])
        source = np.asarray(image, np.float32)
        detail = np.zeros((*sizes[0], 3), np.float32)  # dreamed minus source, at the current size
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
                            on_step=step_done if on_snapshot else None)
            detail = x - base
        out = np.clip(from_dream_space(to_dream_space(resize(source, sizes[-1])) + detail), 0, 255)
        if sizes[-1] != (h, w):  # the largest octave is the image's own size; keep the contract anyway
            out = resize(out, (h, w))
        return out

    @staticmethod
    def _full_size(detail: np.ndarray, source: np.ndarray) -> np.ndarray:
        x = to_dream_space(source) + resize(detail, source.shape[:2])
        return np.clip(from_dream_space(x), 0, 255)


@functools.lru_cache(maxsize=8)
def _dreamer(model_name: str, layers, weights) -> Dreamer:
    from . import models

    return Dreamer(models.load(model_name, layers, weights))


def get_dreamer(s: DreamSettings) -> Dreamer:
    """The compiled Dreamer for s's model, layers and weights (cached: sweeps and videos reuse it)."""
    return _dreamer(s.model, tuple(s.layers), s.weights)


def dream_image(image: np.ndarray, settings: DreamSettings | None = None, *, progress: ProgressFn | None = None,
                dreamer: Dreamer | None = None, **overrides) -> np.ndarray:
    """Dream a still. image: (H, W, 3) uint8 RGB -> (H', W', 3) uint8 RGB.

    The output has the input's size, or the `max_size`-limited size. Keyword overrides use
    the DreamSettings names: `dream_image(img, step=0.02, layers={"block6d_out": 1.0})`.
    """
    from .settings import parse_layers

    s = settings or DreamSettings()
    if "layers" in overrides:
        overrides["layers"] = parse_layers(overrides["layers"])
    s = validate(replace(s, **overrides))
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"expected an (H, W, 3) RGB image, got an array of shape {image.shape}",
                         hint="convert grayscale or RGBA images to RGB first (dreamvid.media.read_image does)")
    image = fit_max_size(image.astype(np.float32), s.max_size)
    check_size(*image.shape[:2], s)
    d = dreamer or get_dreamer(s)
    return to_uint8(d.dream(image, s, progress=progress))
