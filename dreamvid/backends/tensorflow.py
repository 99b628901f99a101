"""The TensorFlow backend: the dream step as one `tf.function` (the default install).

One gradient-ascent step is ONE call of one `tf.function`: roll by the jitter, warp (scale
and rotation robustness, `transform`), loss and gradient, warp back, roll back, blur, colour
(`decorrelate`), Laplacian normalisation (`lapnorm`), mask, normalise by the whole image's
mean |g|, update, clip. Each of the three techniques is a `tf.cond` on its input, so with
all three off the step computes what it did before they existed, bit for bit. An
image that fits one tile takes the single-tile step; a larger one the tiled step (tile by
tile in a graph loop) or, on a GPU, the batched step (`batch` tiles per network call). The
image stays a tensor on the device for a whole octave; only the scalar loss comes back per
step (for `max_loss` and progress). Every input has a shape-free signature, so each step is
traced at most once per network and objective (when first needed) and reused for every
octave, tile count, frame and call.

The network is models.load's: the folded float32 network run as plain TensorFlow ops
(models/plain.py) when the network cache has it, else the Keras model, rewritten for
`precision` "mixed" (float16 on a GPU, bfloat16 on a CPU: models.dtype_policy).
"""
from __future__ import annotations

import functools
import logging

import numpy as np

from . import BORDER, GRAD_EPS, LAP_EPS, LAP_KERNEL, Ascent, Backend, Step, Terms

log = logging.getLogger("dreamvid")


def _crop(a):
    """Activations (b, h, w, c) without a BORDER at each edge (they see the padding)."""
    import tensorflow as tf

    h, wd = tf.shape(a)[1], tf.shape(a)[2]
    bh, bw = tf.minimum(BORDER, (h - 1) // 2), tf.minimum(BORDER, (wd - 1) // 2)
    return a[:, bh:h - bh, bw:wd - bw, :]


def _guide_match(a, guide):
    """Mean over positions of each activation vector's best dot product with a guide vector,
    per channel (so it is in the units of mean(a²)): (b, h, w, c), (n, c) -> (b,)."""
    import tensorflow as tf

    b, c = tf.shape(a)[0], tf.shape(a)[-1]
    flat = tf.reshape(a, [b, -1, c])
    dots = tf.einsum("bpc,nc->bpn", flat, tf.cast(guide, flat.dtype))
    return tf.reduce_mean(tf.reduce_max(dots, axis=-1), axis=1) / tf.cast(c, a.dtype)


def _sample(img, a, mirror: bool):
    """img (h, w, c) read through the affine map a (2, 3): output pixel (x, y) is img at
    a @ (x, y, 1), bilinear (backends.Ascent's warp), by TensorFlow's projective-transform
    kernel. Outside the picture: mirrored with the edge pixel repeated (`mirror`: the picture
    the network sees; REFLECT is "dcba|abcd|dcba"), else 0 per corner read (the gradient read
    back: what the network did not see gets none)."""
    import tensorflow as tf

    transform = tf.concat([tf.reshape(a, [6]), tf.zeros([2], a.dtype)], 0)[tf.newaxis]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=img[tf.newaxis], transforms=transform, output_shape=tf.shape(img)[:2], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="REFLECT" if mirror else "CONSTANT")[0]


def _colour(g, m):
    """Each pixel's RGB gradient g (h, w, 3) -> m (3, 3) @ g."""
    import tensorflow as tf

    return tf.reshape(tf.matmul(tf.reshape(g, [-1, 3]), m, transpose_b=True), tf.shape(g))


def _lapnorm(g, levels):
    """The gradient g (h, w, 3) split into `levels` Laplacian bands and a low-pass residual
    (backends.LAP_KERNEL), each divided by its RMS, summed again (the DeepDream notebook's
    lap_normalize)."""
    import tensorflow as tf

    k = np.outer(LAP_KERNEL, LAP_KERNEL).astype(np.float32)
    k = tf.constant(k[:, :, None, None] * np.eye(3, dtype=np.float32))  # (5, 5, 3, 3): each channel alone
    any_size = tf.TensorShape([1, None, None, 3])

    def down(t):
        return tf.nn.conv2d(t, k, [1, 2, 2, 1], "SAME")

    def up(t, like):
        return tf.nn.conv2d_transpose(t, k * 4, tf.shape(like), [1, 2, 2, 1], "SAME")

    def norm(t):
        return t / tf.maximum(tf.sqrt(tf.reduce_mean(tf.square(t))), LAP_EPS)

    def split(i, img, bands):
        lo = down(img)
        return i + 1, lo, bands.write(i, norm(img - up(lo, img)))

    def merge(i, img):
        hi = bands.read(i)
        hi.set_shape(any_size)
        return i - 1, up(img, hi) + hi

    bands = tf.TensorArray(tf.float32, size=levels, infer_shape=False, element_shape=any_size)
    _, lo, bands = tf.while_loop(lambda i, *_: i < levels, split, (0, g[tf.newaxis], bands),
                                 shape_invariants=(tf.TensorShape([]), any_size, tf.TensorShape(None)))
    _, out = tf.while_loop(lambda i, _: i >= 0, merge, (levels - 1, norm(lo)),
                           shape_invariants=(tf.TensorShape([]), any_size))
    return out[0]


def terms_function(terms: Terms):
    """`(acts, gains) -> (losses, sizes)`: one (b,) loss tensor per entry and each entry's
    element count per tile (for the reduced-precision gradient scale); TensorFlow ops."""
    import tensorflow as tf

    g = float(terms.guide_weight) if terms.guide is not None else 0.0
    targets = [None if t is None else tf.constant(t) for t in terms.guide] if g else [None] * len(terms.weights)

    def run(acts, gains):
        out, sizes = [], []
        for k, (w, a) in enumerate(zip(terms.weights, acts)):
            if terms.eased:
                a = a * tf.cast(gains[k], a.dtype)
            a = _crop(a)
            if terms.linear[k]:
                gain2 = 1.0 if not terms.eased else gains[k]  # linear: the gain squared, as a² would get
                term = tf.reduce_mean(a, axis=[1, 2, 3]) * gain2
            else:
                term = tf.reduce_mean(tf.square(a), axis=[1, 2, 3])
                if targets[k] is not None:
                    term = (1.0 - g) * term + g * _guide_match(a, targets[k])
            out.append(w * term)
            sizes.append(tf.cast(tf.size(a[0]), tf.float32))
        return out, sizes

    return run


class TensorFlowStep(Step):
    """The compiled step of one network and objective (see the module docstring)."""

    def __init__(self, model, terms: Terms):
        tf = _tf()
        self.model = model
        self.traces = 0  # how often the step was traced (tests pin it at 1)
        terms_of = terms_function(terms)
        # Reduced precision: the gradient reaching the activations is ~a / (scale * N), below
        # float16's normal range for big layers. Backpropagate loss * grad_scale, with the
        # largest activation gradient of order one, and divide the float32 input gradient by it.
        reduced = getattr(model, "compute_dtype", "float32") != "float32"
        min_grad_scale = [float(np.sqrt(sc)) for sc in model.scales]

        def batch_gradient(t, gains):
            """Per-tile losses (b,) and d loss / d t of a batch of (b, h, w, 3) dream-space tiles.

            Every layer here works on each image of a batch alone (batch norms are folded or in
            inference mode), so tile k's gradient is that of its own loss."""
            with tf.GradientTape() as tape:
                tape.watch(t)
                terms, sizes = terms_of(model(t), gains)
                losses = tf.add_n(terms)
                total = tf.reduce_sum(losses)
                if reduced:
                    grad_scale = tf.reduce_min(tf.stack([n * c for n, c in zip(sizes, min_grad_scale)]))
                    total = total * grad_scale
            grad = tape.gradient(total, t)
            return losses, grad / grad_scale if reduced else grad

        def tile_gradient(x, gains):
            """Loss and d loss / d x of one (h, w, 3) dream-space tile."""
            losses, grad = batch_gradient(x[tf.newaxis], gains)
            return losses[0], grad[0]

        def tiled_gradient(x, ys, xs, gains):
            """Loss and gradient of the whole image, tile by tile; memory is one tile's."""
            ny, nx = tf.size(ys) - 1, tf.size(xs) - 1
            area = tf.cast(tf.size(x) // 3, tf.float32)

            # Rows of tiles; within a row the (w, h, 3) transposed tile gradients concatenate
            # along axis 0 (TensorArray.concat's axis), and the rows along the height.
            def row(i, rows, loss):
                y0, y1 = ys[i], ys[i + 1]

                def col(j, cols, loss):
                    part_loss, part_grad = tile_gradient(x[y0:y1, xs[j]:xs[j + 1]], gains)
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

        def batched_gradient(x, ys, xs, batch, gains):
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
                losses, grads = batch_gradient(tiles, gains)

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

        def warped(t, warp, k):
            """t read through warp[k] (`transform`), or t itself when the step has no warp."""
            return tf.cond(tf.shape(warp)[0] > 0, lambda: _sample(t, warp[k], mirror=k == 0), lambda: t)

        def update(x, loss, grad, shift, step, mask, smooth, colour, levels):
            # `smooth` > 0 blurs the gradient (larger, calmer shapes; tf.cond: the network is not
            # traced twice). `colour` (3, 3; none: 0 rows) mixes each pixel's RGB gradient
            # (`decorrelate`), `levels` > 0 normalises it band by band (`lapnorm`). The mask
            # (h, w, 1; ones without --mask) weighs the update: black keeps the picture.
            # Normalised over the masked area: what is dreamed, as hard as unmasked.
            grad = tf.roll(grad, -shift, axis=[0, 1])
            grad = tf.cond(smooth > 0, lambda: blur(grad, smooth), lambda: grad)
            grad = tf.cond(tf.shape(colour)[0] > 0, lambda: _colour(grad, colour), lambda: grad)
            grad = tf.cond(levels > 0, lambda: _lapnorm(grad, levels), lambda: grad) * mask
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
            tf.TensorSpec([None], tf.float32),  # gains: per entry, an eased objective's (else unused)
            tf.TensorSpec([None, 3], tf.float32),  # colour: (3, 3) mix of the RGB gradient, or 0 rows (none)
            tf.TensorSpec([], tf.int32),  # levels of the gradient's Laplacian normalisation (0: none)
            tf.TensorSpec([None, 2, 3], tf.float32),  # warp: (2, 2, 3) there and back, or 0 rows (none)
        ]

        # autograph=False: the steps hold no Python control flow on tensors (tf.cond and
        # tf.while_loop are written out), so AutoGraph would trace the same graph
        # (tests/test_backends.py), and converting their source was 0.4 s of a first trace.
        @tf.function(input_signature=signature, reduce_retracing=True, autograph=False)
        def ascent_step(x, shift, step, ys, xs, mask, smooth, gains, colour, levels, warp):
            self.traces += 1  # Python side effect: runs only while tracing
            # An image within one tile is a loop of one iteration: as fast as a direct call
            # (bench/), and a tf.cond between the two would trace the network twice.
            loss, grad = tiled_gradient(warped(tf.roll(x, shift, axis=[0, 1]), warp, 0), ys, xs, gains)
            return update(x, loss, warped(grad, warp, 1), shift, step, mask, smooth, colour, levels)

        @tf.function(input_signature=[*signature[:3], *signature[5:]], reduce_retracing=True, autograph=False)
        def single_step(x, shift, step, mask, smooth, gains, colour, levels, warp):
            """The step of an image that is one tile (most stills and frames): no tile loop, so it
            traces in about half the time of `ascent_step` and its first call is faster too
            (bench/startup.py); the same arithmetic, so the same result."""
            self.traces += 1
            loss, grad = tile_gradient(warped(tf.roll(x, shift, axis=[0, 1]), warp, 0), gains)
            return update(x, loss, warped(grad, warp, 1), shift, step, mask, smooth, colour, levels)

        @tf.function(input_signature=[*signature, tf.TensorSpec([], tf.int32)], reduce_retracing=True,
                     autograph=False)
        def batched_step(x, shift, step, ys, xs, mask, smooth, gains, colour, levels, warp, batch):
            self.traces += 1
            loss, grad = batched_gradient(warped(tf.roll(x, shift, axis=[0, 1]), warp, 0), ys, xs, batch, gains)
            return update(x, loss, warped(grad, warp, 1), shift, step, mask, smooth, colour, levels)

        self.tiled = ascent_step
        self.single = single_step
        self.batched = batched_step
        self._no_gains = tf.zeros([0], tf.float32)
        self._no_colour = tf.zeros([0, 3], tf.float32)
        self._no_warp = tf.zeros([0, 2, 3], tf.float32)
        self._no_levels = tf.constant(0, tf.int32)
        # The colour, levels and warp inputs that leave the three techniques off, for a caller of
        # `single`, `tiled` or `batched` themselves (tests, the start-up bench): (..., gains, *off).
        self.off = (self._no_colour, self._no_levels, self._no_warp)

    def run(self, x, shift, step, ys, xs, mask, smooth, gains=None, batch: int = 1, colour=None, levels=None,
            warp=None):
        """One step on tensors (what `start` runs each time, and what the timing of `auto`
        calls): the single-tile, tiled or batched `tf.function` by the tile count and `batch`.
        Returns (loss, new x)."""
        one_tile = int(_tf().size(ys)) == 2 and int(_tf().size(xs)) == 2
        return self._call(one_tile, x, shift, step, ys, xs, mask, smooth, gains, batch, colour, levels, warp)

    def _call(self, one_tile, x, shift, step, ys, xs, mask, smooth, gains, batch, colour=None, levels=None,
              warp=None):
        tf = _tf()
        gains = self._no_gains if gains is None else gains
        extra = (self._no_colour if colour is None else colour, self._no_levels if levels is None else levels,
                 self._no_warp if warp is None else warp)
        if one_tile:
            return self.single(x, shift, step, mask, smooth, gains, *extra)
        if batch > 1:
            return self.batched(x, shift, step, ys, xs, mask, smooth, gains, *extra, tf.constant(batch))
        return self.tiled(x, shift, step, ys, xs, mask, smooth, gains, *extra)

    def start(self, x, *, step, ys, xs, mask, smooth, gains, colour=None, lapnorm=0):
        return _Ascent(self, x, step, ys, xs, mask, smooth, gains, colour, lapnorm)


class _Ascent(Ascent):
    def __init__(self, compiled: TensorFlowStep, x, step, ys, xs, mask, smooth, gains, colour, lapnorm):
        tf = _tf()
        h, w = x.shape[:2]
        self.compiled = compiled
        self.one_tile = len(ys) == 2 and len(xs) == 2
        self.ys, self.xs = tf.constant(ys, tf.int32), tf.constant(xs, tf.int32)
        self.step = tf.constant(step, tf.float32)
        self.x = tf.constant(np.asarray(x, np.float32))
        self.mask = (tf.ones([h, w, 1], tf.float32) if mask is None
                     else tf.constant(np.asarray(mask, np.float32)[..., None]))
        self.smooth = tf.constant(smooth, tf.float32)
        self.gains = compiled._no_gains if gains is None else tf.constant(np.asarray(gains, np.float32))
        self.colour = None if colour is None else tf.constant(np.asarray(colour, np.float32).reshape(3, 3))
        self.levels = tf.constant(int(lapnorm), tf.int32)

    def __call__(self, shift, batch, warp=None):
        tf = _tf()
        shift = tf.constant([int(shift[0]), int(shift[1])], tf.int32)
        warp = None if warp is None else tf.constant(np.asarray(warp, np.float32).reshape(2, 2, 3))
        loss, self.x = self.compiled._call(self.one_tile, self.x, shift, self.step, self.ys, self.xs, self.mask,
                                           self.smooth, self.gains, batch, self.colour, self.levels, warp)
        return loss

    def image(self):
        return self.x.numpy()


def _tf():
    from ..models import setup_tensorflow

    return setup_tensorflow()


class TensorFlow(Backend):
    name = "tensorflow"

    def load(self, name, layers, weights, precision):
        from .. import models

        return models.load(name, layers, weights, precision)

    def activations(self, model, image):
        tf = _tf()
        return [a.numpy()[0] for a in model(tf.constant(np.asarray(image, np.float32)[None]))]

    def compile(self, model, terms):
        return TensorFlowStep(model, terms)

    def out_of_memory(self, error):
        return isinstance(error, _tf().errors.ResourceExhaustedError)

    def gpu(self):
        return _gpu_name()

    def version(self):
        return _tf().__version__

    def memory(self):
        tf = _tf()
        if not tf.config.list_physical_devices("GPU"):
            return None
        info = tf.config.experimental.get_memory_info("GPU:0")
        return {"peak": int(info["peak"]), "current": int(info["current"])}

    def reset_memory(self):
        tf = _tf()
        if tf.config.list_physical_devices("GPU"):
            tf.config.experimental.reset_memory_stats("GPU:0")


@functools.lru_cache(maxsize=None)
def _gpu_name() -> str | None:
    tf = _tf()
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")


BACKEND = TensorFlow()
