"""The two reference loops dreamvid is measured against, and the octave driver they share.

Both compute what `dreamvid.dream` computes (same DreamModel, loss, octaves, detail carried
up, jitter roll from the same seeded generator, gradient normalised by its mean |g|, clip,
max_loss), written the way people write DeepDream:

(a) `eager_step`: plain eager TensorFlow, op by op, from a Python loop.
(b) `keras_example_step`: the structure of the Keras DeepDream example
    (keras.io/examples/generative/deep_dream): a `tf.function` WITHOUT an input signature,
    called from a Python loop, so it is traced again for every new image shape (every octave
    of the first image). The jitter shift is passed as a tensor, not a Python tuple, which
    would retrace every step and make the reference unfairly slow.

They run the tapped network as loaded (`DreamModel.features`); dreamvid runs its own rewrite
(`DreamModel.network`, batch norms folded). That rewrite is one of the things measured.
"""
from __future__ import annotations

import numpy as np

from dreamvid.dream import BORDER, GRAD_EPS, check_size, from_dream_space, resize, to_dream_space


def _loss(model, x):
    """The dream loss of one (h, w, 3) dream-space image: as dreamvid.dream.Dreamer computes it."""
    import tensorflow as tf

    acts = model.features(model_input(model, x[tf.newaxis]), training=False)
    acts = acts if isinstance(acts, (list, tuple)) else [acts]
    total = tf.constant(0.0)
    for (_, weight), scale, a in zip(model.layers, model.scales, acts):
        a = tf.cast(a, tf.float32)
        h, w = a.shape[1], a.shape[2]
        bh, bw = min(BORDER, (h - 1) // 2), min(BORDER, (w - 1) // 2)
        total += weight / scale * tf.reduce_mean(tf.square(a[:, bh:h - bh, bw:w - bw, :]))
    return total


def model_input(model, x):
    """Dream space -> the network's own preprocessing (models.DreamModel.__call__)."""
    import tensorflow as tf

    from dreamvid.models import CAFFE_BGR_MEAN

    if model.preprocessing == "caffe":
        x = (x + 1.0) * 127.5
        x = x[..., ::-1] - tf.constant(CAFFE_BGR_MEAN, x.dtype)
    return x


def _step_body(model, img, shift, learning_rate):
    import tensorflow as tf

    rolled = tf.roll(img, shift, axis=[0, 1])
    with tf.GradientTape() as tape:
        tape.watch(rolled)
        loss = _loss(model, rolled)
    grads = tf.roll(tape.gradient(loss, rolled), -shift, axis=[0, 1])
    grads /= tf.maximum(tf.reduce_mean(tf.abs(grads)), GRAD_EPS)
    return loss, tf.clip_by_value(img + learning_rate * grads, -1.0, 1.0)


def eager_step(model):
    """(a): step(img, shift, step) -> (loss, img), every op eager."""

    def step(img, shift, learning_rate):
        return _step_body(model, img, shift, learning_rate)

    step.traces = lambda: 0
    return step


def keras_example_step(model):
    """(b): a fresh `tf.function` without input signature (retraced for every new shape)."""
    import tensorflow as tf

    @tf.function
    def gradient_ascent_step(img, shift, learning_rate):
        return _step_body(model, img, shift, learning_rate)

    def step(img, shift, learning_rate):
        return gradient_ascent_step(img, shift, learning_rate)

    step.traces = lambda: gradient_ascent_step.experimental_get_tracing_count()
    return step


def dream(step, image: np.ndarray, s, *, frame: int = 0, record=None) -> np.ndarray:
    """dreamvid.dream.Dreamer.dream's algorithm with a pluggable `step` (above).

    image: (H, W, 3) float32 0..255 -> float32 0..255. `record(x, shift, x_next)` sees every
    step's input and output (numpy, dream space): the per-step equivalence check uses it.
    """
    import tensorflow as tf

    h, w = image.shape[:2]
    sizes = check_size(h, w, s)
    rng = np.random.default_rng([s.seed, frame])
    source = np.asarray(image, np.float32)
    detail = np.zeros((*sizes[0], 3), np.float32)
    learning_rate = tf.constant(s.step, tf.float32)
    for size in sizes:
        base = to_dream_space(resize(source, size))
        detail = resize(detail, size)
        img = tf.constant(base + detail)
        for _ in range(s.iterations):
            shift = [int(v) for v in rng.integers(-s.jitter, s.jitter + 1, 2)] if s.jitter else [0, 0]
            loss, nxt = step(img, tf.constant(shift, tf.int32), learning_rate)
            if record is not None:
                record(img.numpy(), shift, nxt.numpy())
            img = nxt
            if s.max_loss is not None and float(loss) > s.max_loss:
                break
        detail = img.numpy() - base
    out = np.clip(from_dream_space(to_dream_space(resize(source, sizes[-1])) + detail), 0, 255)
    return resize(out, (h, w)) if sizes[-1] != (h, w) else out


def dreamvid_step(dreamer, tile: int):
    """dreamvid's own compiled step (the TensorFlow backend's Step.run) in the driver's calling convention."""
    import tensorflow as tf

    from dreamvid.dream import tile_edges

    def step(img, shift, learning_rate):
        h, w = img.shape[:2]
        ys, xs = tf.constant(tile_edges(h, tile), tf.int32), tf.constant(tile_edges(w, tile), tf.int32)
        return dreamer.step.run(img, shift, learning_rate, ys, xs, tf.ones([h, w, 1]), tf.constant(0.0))

    step.traces = lambda: dreamer.traces
    return step


class Recording(list):
    """[(x, shift, x_next)] of every step of one run (numpy, dream space), and its step size."""

    def __init__(self, step: float):
        super().__init__()
        self.step = step

    def __call__(self, x, shift, x_next):
        self.append((x, list(shift), x_next))


def per_step_difference(steps: dict, recording: Recording) -> dict:
    """Apply each reference step to dreamvid's own per-step inputs; compare with dreamvid's outputs.

    DeepDream is chaotic: a float rounding difference flips a ReLU6 somewhere, and the gap
    between two correct implementations grows about 8x per step, so whole runs can only be
    compared by their statistics; single steps are compared exactly, from the same input.
    Returns {name: {"mean_px", "p99_px", "max_px"}} in 0..255 pixel units.
    """
    import tensorflow as tf

    lr = tf.constant(recording.step, tf.float32)
    out = {}
    for name, step in steps.items():
        diffs = []
        for x, shift, x_next in recording:
            _, y = step(tf.constant(x), tf.constant(shift, tf.int32), lr)
            diffs.append(np.abs(y.numpy() - x_next).ravel() * 127.5)
        d = np.concatenate(diffs)
        out[name] = {"mean_px": float(d.mean()), "p99_px": float(np.percentile(d, 99)), "max_px": float(d.max())}
    return out
