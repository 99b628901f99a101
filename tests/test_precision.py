"""precision="mixed": float16 (GPU) / bfloat16 (CPU) compute with a float32 image stays close
to float32, on every backend; and the CPU-vs-GPU equivalence of the step (marked gpu, skipped
without one; on the torch backend, the one a GPU machine here has).

DeepDream is chaotic: any rounding difference flips some ReLU6 units and two runs drift apart
pixel by pixel within a few steps (bench/ measures it for float32 eager vs compiled too). So every
step of a float32 run is compared with the reduced-precision step from the same input (the
loss, and the direction of the update), and whole runs by how much they change the image.

Tolerances, from efficientnet_lite0 (block4c_out) at 128x96 on CPU over three textures:
float16 gives step cosines of 0.97..0.99 with float32 and losses within 2.5e-3; bfloat16
(8-bit mantissa) 0.84..0.90 and 1e-2. Whole runs change the image within 3% of float32.
"""
import numpy as np
import pytest

from dreamvid import models
from dreamvid.dream import Dreamer, tile_edges, to_dream_space
from dreamvid.settings import DreamSettings

from .conftest import BACKENDS, gpu_backend, network, texture

LAYERS = (("block4c_out", 1.0),)
# policy -> (minimum cosine of one step's update with float32's, maximum relative loss difference)
STEP_TOLERANCE = {"mixed_float16": (0.95, 5e-3), "mixed_bfloat16": (0.75, 2e-2)}
RUN_TOLERANCE = 0.05  # relative: a whole run changes the image as much as float32 does
STEPS = 6  # of the float32 trajectory compared step by step


@pytest.fixture(scope="module")
def image():
    return texture(96, 128, seed=5).astype(np.float32)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(scope="module")
def float32(backend):
    return Dreamer(network(backend, "efficientnet_lite0", LAYERS))


def one_step(dreamer, x, *, tile=512, batch=1, shift=(3, -5)):
    """(loss, update) of one step of the backend's public step on dream-space x."""
    h, w = x.shape[:2]
    ascent = dreamer.step.start(x, step=0.01, ys=tile_edges(h, tile), xs=tile_edges(w, tile), mask=None,
                                smooth=0.0, gains=None)
    loss = float(ascent(shift, batch))
    return loss, ascent.image() - x


def cosine(a, b):
    return float(np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def run(dreamer, image):
    s = DreamSettings(model="efficientnet_lite0", layers=LAYERS, num_octave=1, iterations=8, max_loss=None, jitter=4)
    return dreamer.dream(image, s)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_reduced_precision_step_points_where_float32_does(float32, image, policy, backend):
    mixed = Dreamer(network(backend, "efficientnet_lite0", LAYERS, precision=policy))
    assert mixed.model.compute_dtype == policy.split("_")[1]
    min_cos, max_loss_diff = STEP_TOLERANCE[policy]
    x = to_dream_space(image)
    rng = np.random.default_rng(0)
    for _ in range(STEPS):  # along float32's trajectory
        shift = tuple(int(v) for v in rng.integers(-4, 5, 2))
        loss32, update32 = one_step(float32, x, shift=shift)
        loss, update = one_step(mixed, x, shift=shift)
        assert abs(loss - loss32) / loss32 <= max_loss_diff
        assert cosine(update, update32) >= min_cos
        x = x + update32
    # whole runs (which drift apart pixel by pixel): as strong a dream
    change32, change = np.abs(run(float32, image) - image).mean(), np.abs(run(mixed, image) - image).mean()
    assert abs(change / change32 - 1) <= RUN_TOLERANCE


def test_reduced_precision_keeps_float32_weights_and_calibration():
    m32 = models.load("efficientnet_lite0", LAYERS)
    m16 = models.load("efficientnet_lite0", LAYERS, precision="mixed_float16")
    assert m16.scales == m32.scales  # the loss means the same at every precision
    conv = next(layer for layer in m16.network.layers if type(layer).__name__ == "Conv2D")
    assert conv.compute_dtype == "float16" and conv.kernel.dtype == "float32"
    x = to_dream_space(texture(64, 64, seed=1).astype(np.float32))[None]
    a32, a16 = m32(x)[0].numpy(), m16(x)[0].numpy()
    assert a16.dtype == np.float32  # activations reach the loss as float32
    assert np.abs(a16 - a32).max() <= 0.02 * np.abs(a32).max()


def test_mixed_without_gpu_means_bfloat16(backend):
    from dreamvid import backends

    want = "mixed_float16" if backends.get(backend).gpu() else "mixed_bfloat16"
    assert network(backend, "efficientnet_lite0", LAYERS, precision="mixed").precision == want
    if backend == "tensorflow":
        assert models.dtype_policy("mixed") == want and models.dtype_policy("float32") is None


# ---- on a GPU (marked gpu: skipped where no backend sees one, as in CI) ----------------------

def on(backend: str, device: str, precision: str = "float32") -> Dreamer:
    """A Dreamer on `device` ("cpu" or "gpu") of `backend`."""
    if backend == "torch":
        from dreamvid import backends

        on_cpu = "cpu" if device == "cpu" else None  # None: the backend's own (a GPU here)
        return Dreamer(backends.get("torch").load("efficientnet_lite0", LAYERS, None, precision, on=on_cpu))
    import tensorflow as tf

    with tf.device("/CPU:0" if device == "cpu" else "/GPU:0"):
        return Dreamer(network(backend, "efficientnet_lite0", LAYERS, precision))


@pytest.mark.gpu
def test_gpu_step_matches_cpu(image):
    """The same step on CPU and GPU, float32: equal within rounding (cuDNN vs oneDNN kernels)."""
    backend = gpu_backend()
    x = to_dream_space(image)
    loss_cpu, update_cpu = one_step(on(backend, "cpu"), x)
    loss_gpu, update_gpu = one_step(on(backend, "gpu"), x)
    assert abs(loss_gpu - loss_cpu) / loss_cpu <= 1e-3
    assert cosine(update_gpu, update_cpu) >= 0.99


@pytest.mark.gpu
def test_gpu_mixed_float16_matches_cpu_float32(image):
    backend = gpu_backend()
    x = to_dream_space(image)
    loss_cpu, update_cpu = one_step(on(backend, "cpu"), x)
    gpu = on(backend, "gpu", "mixed")
    assert gpu.model.compute_dtype == "float16"
    loss_gpu, update_gpu = one_step(gpu, x)
    min_cos, max_loss_diff = STEP_TOLERANCE["mixed_float16"]
    assert abs(loss_gpu - loss_cpu) / loss_cpu <= max_loss_diff
    assert cosine(update_gpu, update_cpu) >= min_cos


@pytest.mark.gpu
def test_gpu_batches_tiles_and_matches_one_tile_at_a_time(image):
    """On a GPU, tiles go through the network in batches by default, with the same result."""
    from dreamvid.dream import AUTO_TILE_BATCH

    x = to_dream_space(np.tile(image, (2, 2, 1)))
    h, w = x.shape[:2]
    gpu = on(gpu_backend(), "gpu")
    tile = max(h, w) // 3  # 3 x 3 tiles or more
    n = (len(tile_edges(h, tile)) - 1) * (len(tile_edges(w, tile)) - 1)
    assert gpu.tile_batch(DreamSettings(tile=tile), n) == min(AUTO_TILE_BATCH, n) > 1
    loss_1, one = one_step(gpu, x, tile=tile)
    loss_b, batched = one_step(gpu, x, tile=tile, batch=n)
    assert abs(loss_b - loss_1) / loss_1 <= 1e-2
    assert cosine(batched, one) >= 0.95
