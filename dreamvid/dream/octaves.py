"""One image in, one dreamed image out: the octave loop, which knows no backend.

The algorithm (Mordvintsev et al. 2015, in the Keras DeepDream example's vocabulary):
build a pyramid of `num_octave` sizes with ratio `octave_scale`; at each size run
`iterations` gradient-ascent steps on loss = sum over layers of weight * mean(activation²)
(a 2-activation border excluded, as in the Keras example); divide the gradient by its mean
absolute value; stop an octave early once the loss passes `max_loss`; carry the dreamed
detail (image minus the source at that size) up to the next size, so detail lost by
downscaling is re-injected from the source.

Every step rolls the image by a random (seeded) offset, which hides tile seams and the
network's stride grid. Images larger than `tile` are cut into near-equal tiles; gradients are
computed per tile and normalised over the whole image, so memory is bounded while the result
matches an untiled run closely. On a GPU, tiles go through the network `tile_batch` at a
time; a batch that runs out of memory is halved and the step run again. The step itself
(roll, tiles, loss and gradient, normalisation, update, clip) is the backend's compiled step
(backends/): this module holds the image on the device for an octave through it and reads
back one scalar loss per step.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .. import backends
from ..errors import InputError
from ..settings import DreamSettings, validate
from .auto import resolve
from .images import check_size, fit_max_size, from_dream_space, resize, tile_edges, to_dream_space, to_uint8
from .objectives import MeanSquares, Objective, objective_for
from .techniques import colour_matrix, lapnorm_levels, random_warp

log = logging.getLogger("dreamvid")


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


class Dreamer:
    """Gradient ascent for one tapped network (a backend's model: models.DreamModel on
    TensorFlow, backends.torch.TorchModel on PyTorch) and one objective.

    The step is compiled once, when the Dreamer is made (`step.traces` counts TensorFlow's
    traces: one per kind of step used, whatever the octaves, tiles, frames and weights).
    """

    def __init__(self, model, objective: Objective | None = None):
        self.model = model
        self.objective = objective = objective or MeanSquares()
        self.backend = backends.get(model.backend)
        self.step = self.backend.compile(model, objective.terms(model, self.forward))
        self.batch_limit: int | None = None  # set by a batch that ran out of GPU memory

    @property
    def traces(self) -> int:
        return self.step.traces

    @property
    def min_size(self) -> int:
        return self.model.min_size

    def forward(self, image: np.ndarray) -> list[np.ndarray]:
        """The network's activations of one dream-space (h, w, 3) image: (h', w', c) per entry."""
        return self.backend.activations(self.model, image)

    def tile_batch(self, s: DreamSettings, n_tiles: int) -> int:
        """Tiles per network call for an image of `n_tiles` tiles: s.tile_batch, or on a GPU
        AUTO_TILE_BATCH, never more than a batch that has run out of memory before."""
        want = (s.tile_batch if s.tile_batch is not None
                else backends.AUTO_TILE_BATCH if self.backend.gpu() else 1)
        return max(1, min(want, n_tiles, self.batch_limit or want))

    def ascend(self, x: np.ndarray, s: DreamSettings, rng: np.random.Generator, *, octave: int = 0,
               num_octave: int = 1, progress: ProgressFn | None = None,
               on_step: Callable[[np.ndarray], None] | None = None, mask: np.ndarray | None = None,
               gains: np.ndarray | None = None) -> np.ndarray:
        """Run up to s.iterations steps on dream-space `x` (H, W, 3) float32; returns the new x.
        mask: (H, W) float32 0..1, how much each pixel is dreamed (None: all of it); gains:
        the eased objective's input (Objective.gains)."""
        h, w = x.shape[:2]
        ys, xs = tile_edges(h, s.tile), tile_edges(w, s.tile)
        batch = self.tile_batch(s, (len(ys) - 1) * (len(xs) - 1))
        ascent = self.step.start(x, step=s.step, ys=ys, xs=xs, mask=mask,
                                 smooth=s.smooth * min(h, w) / 100.0,  # % of the octave's shorter side
                                 gains=gains, colour=colour_matrix(s.decorrelate),
                                 lapnorm=lapnorm_levels(s.lapnorm, (h, w)))
        for i in range(s.iterations):
            shift = [int(v) for v in rng.integers(-s.jitter, s.jitter + 1, 2)] if s.jitter else [0, 0]
            warp = random_warp(rng, s.transform, (h, w)) if s.transform else None  # drawn after the shift
            while True:
                try:
                    loss_t = ascent(shift, batch, warp)
                    break
                except Exception as e:
                    if batch <= 1 or not self.backend.out_of_memory(e):
                        raise
                    batch = self.batch_limit = batch // 2  # the step is a pure function: run it again
                    log.info("a batch of tiles ran out of GPU memory; now %d tiles per call", batch)
            if progress is None and s.max_loss is None and on_step is None:
                continue  # nothing to report: the steps queue up without waiting for each other
            loss = float(loss_t)
            if progress:
                progress(Progress(octave, num_octave, i + 1, s.iterations, loss, (h, w)))
            if on_step:
                on_step(ascent.image())
            if s.max_loss is not None and loss > s.max_loss:
                log.debug("octave %d stopped at iteration %d: loss %.2f > max_loss %.2f",
                          octave, i + 1, loss, s.max_loss)
                break
        return ascent.image()

    def dream(self, image: np.ndarray, s: DreamSettings, *, frame: int = 0, progress: ProgressFn | None = None,
              snapshot_every: int = 0, on_snapshot: SnapshotFn | None = None,
              on_octave: SnapshotFn | None = None, mask: np.ndarray | None = None) -> np.ndarray:
        """Dream `image` (H, W, 3) float32 0..255 RGB; returns float32 0..255 of the same size.

        `frame` is mixed into the jitter seed, so frames of a video differ but repeat exactly.
        With `snapshot_every` K, `on_snapshot(steps, image)` gets the full-size image every K
        steps of the whole run (all octaves): the "continuous" timelapse. `on_octave(octave,
        image)` gets the full-size image after each octave (0-based; a preview of a still).
        `mask` (H, W) float32 0..1: how much each pixel is dreamed (dreamvid/mask.py reads and
        feathers one); where it is 0 the output is the image. An eased objective takes its
        weights from `s` (s.targets()), so they can change from call to call.
        """
        h, w = image.shape[:2]
        sizes = check_size(h, w, s, self.min_size)
        rng = np.random.default_rng([s.seed, frame])
        source = np.asarray(image, np.float32)
        detail = np.zeros((*sizes[0], 3), np.float32)  # dreamed minus source, at the current size
        gains = self.objective.gains(self.model, s)
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
                            on_step=step_done if on_snapshot else None, gains=gains,
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
    """What selects a compiled network for settings `s`: model, layers, weights file, backend
    and precision, "auto" resolved for this machine (auto.resolve; `size`, the image's (h, w)
    when known). Everything else (step, octaves, tiles...) is an argument of the step."""
    r = resolve(s, size)
    return (s.model, tuple(s.targets()), s.weights, r.backend, r.precision)


@functools.lru_cache(maxsize=8)
def _dreamer(key: tuple, objective: Objective) -> Dreamer:
    model, layers, weights, backend, precision = key
    return Dreamer(backends.get(backend).load(model, layers, weights, precision), objective)


def get_dreamer(s: DreamSettings, objective: Objective | None = None, *,
                size: tuple[int, int] | None = None) -> Dreamer:
    """THE function that decides which compiled Dreamer serves settings `s` (and `objective`,
    default `objective_for(s)`): one per network_key and objective, cached, so sweeps, videos
    and zooms reuse the compiled step instead of compiling again. `size`: the (h, w) to be
    dreamed, when known ("auto" keeps TensorFlow and float32 for a small image)."""
    return _dreamer(network_key(s, size), objective or objective_for(s))


def dream_image(image: np.ndarray, settings: DreamSettings | None = None, *, progress: ProgressFn | None = None,
                dreamer: Dreamer | None = None, on_octave: SnapshotFn | None = None, mask: np.ndarray | None = None,
                **overrides) -> np.ndarray:
    """Dream a still. image: (H, W, 3) uint8 RGB -> (H', W', 3) uint8 RGB.

    mask: (h, w) 0..1 of the image's aspect ratio, 1 dreams, 0 keeps the image (instead of
    the `mask` setting, a file). `classes`, `guide`, `guide_weight`: what to dream of.
    `backend`: "tensorflow", "torch" or "auto" (the faster here, dream/auto.py).

    The output has the input's size, or the `max_size`-limited size. Keyword overrides use
    the DreamSettings names: `dream_image(img, step=0.02, layers={"block6d_out": 1.0})`.
    on_octave(octave, image): the picture so far after each octave, float32 0..255 (Dreamer.dream).
    """
    from ..settings import parse_classes, parse_layers

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
        from ..mask import for_still

        mask = for_still(s.mask, image.shape[:2])
    elif mask is not None:
        from ..mask import fit

        mask = fit(np.asarray(mask, np.float32), image.shape[:2])
    d = dreamer or get_dreamer(s, size=image.shape[:2])
    return to_uint8(d.dream(image, s, progress=progress, on_octave=on_octave, mask=mask))
