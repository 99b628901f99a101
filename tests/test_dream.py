"""Dream core mechanics on a tiny random-weight network (fast), on every installed backend,
plus octave and tiling maths."""
import numpy as np
import pytest

from dreamvid import backends
from dreamvid.dream import Dreamer, dream_image, octave_sizes, tile_slices
from dreamvid.errors import InputError
from dreamvid.settings import DreamSettings

from .conftest import BACKENDS, network


@pytest.fixture(scope="module")
def tiny_path(tiny):
    return tiny


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(scope="module")
def dreamer(tiny_path, backend):
    return Dreamer(network(backend, tiny_path, (("conv3", 1.0),)))


@pytest.fixture
def image():
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:48, 0:64]
    base = np.stack([128 + 60 * np.sin(x / 5), 128 + 60 * np.cos(y / 7), 128 + 40 * np.sin((x + y) / 9)], -1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.float32)


def settings(tiny_path, **kw):
    base = dict(model=tiny_path, layers=(("conv3", 1.0),), step=0.05, num_octave=1, iterations=10,
                max_loss=None, jitter=4, tile=512, seed=0)
    return DreamSettings(**{**base, **kw})


@pytest.mark.tf_draw  # its thresholds: see the tf_draw marker (pyproject.toml)
def test_loss_rises_over_iterations(dreamer, image, tiny_path):
    losses = []
    dreamer.dream(image, settings(tiny_path), progress=lambda p: losses.append(p.loss))
    assert len(losses) == 10
    assert losses[-1] > 1.5 * losses[0]
    assert np.mean(np.diff(losses) > 0) > 0.7  # mostly monotone despite the jitter


def test_max_loss_stops_each_octave_early(dreamer, image, tiny_path):
    free, capped = [], []
    dreamer.dream(image, settings(tiny_path, iterations=30), progress=lambda p: free.append(p.loss))
    cap = free[0] + 0.3 * (free[-1] - free[0])
    dreamer.dream(image, settings(tiny_path, iterations=30, max_loss=cap), progress=lambda p: capped.append(p))
    assert len(capped) < 30
    assert capped[-1].loss > cap and all(p.loss <= cap for p in capped[:-1])


def test_output_has_input_size_and_dtype(dreamer, image, tiny_path):
    out = dreamer.dream(image[:45, :61], settings(tiny_path, num_octave=3, octave_scale=1.3))
    assert out.shape == (45, 61, 3) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 255
    assert np.abs(out - image[:45, :61]).mean() > 1  # it changed the picture


def test_same_seed_same_image_other_seed_differs(dreamer, image, tiny_path):
    a = dreamer.dream(image, settings(tiny_path, seed=3))
    b = dreamer.dream(image, settings(tiny_path, seed=3))
    c = dreamer.dream(image, settings(tiny_path, seed=4))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 0.01


def test_frame_index_changes_the_jitter(dreamer, image, tiny_path):
    a = dreamer.dream(image, settings(tiny_path), frame=0)
    b = dreamer.dream(image, settings(tiny_path), frame=1)
    assert np.abs(a - b).mean() > 0.01


@pytest.mark.tf_draw  # its thresholds: see the tf_draw marker (pyproject.toml)
def test_tiled_and_untiled_agree_closely(dreamer, image, tiny_path):
    big = np.tile(image, (2, 2, 1))  # 96 x 128
    whole = dreamer.dream(big, settings(tiny_path, jitter=0, iterations=5))
    tiled = dreamer.dream(big, settings(tiny_path, jitter=0, iterations=5, tile=64))  # 2 x 2 tiles
    change = np.abs(whole - big).mean()
    assert np.abs(whole - tiled).mean() < 0.25 * change


def one_step(d, x, tile, batch=1, step=0.05, shift=(3, -2)):
    """(loss, next image) of one ascent step on dream-space x, through the backend's public step."""
    from dreamvid.dream import tile_edges

    ascent = d.step.start(x, step=step, ys=tile_edges(x.shape[0], tile), xs=tile_edges(x.shape[1], tile),
                          mask=None, smooth=0.0, gains=None)
    loss = float(ascent(shift, batch))
    return loss, ascent.image()


def test_batched_tiles_equal_one_at_a_time_when_the_tiles_are_equal(dreamer, image):
    x = np.tile(image, (2, 3, 1)) / 127.5 - 1  # 96 x 192: 2 x 3 tiles of exactly 48 x 64
    loss, single = one_step(dreamer, x, tile=64)
    for batch in (2, 4, 6):
        b_loss, batched = one_step(dreamer, x, tile=64, batch=batch)
        assert b_loss == pytest.approx(loss, rel=1e-5)
        np.testing.assert_allclose(batched, single, atol=2e-5)


def test_batched_uneven_tiles_keep_each_tiles_own_part(tmp_path, backend):
    """With a network whose tapped layer is its input, a tile's loss is mean(x²) over the tile
    less a BORDER-px frame, so the expected step is known exactly: every tile is cut at the
    largest part's size, and each pixel takes its gradient from the tile that owns it."""
    import keras

    from dreamvid.dream import BORDER, tile_edges

    inp = keras.Input((None, None, 3))
    keras.Model(inp, keras.layers.Activation("linear", name="same")(inp)).save(tmp_path / "same.keras")
    d = Dreamer(network(backend, str(tmp_path / "same.keras"), (("same", 1.0),)))
    rng = np.random.default_rng(0)
    h, w, tile, step = 131, 173, 60, 1e-3
    x = rng.uniform(-0.9, 0.9, (h, w, 3)).astype(np.float32)
    ys, xs = tile_edges(h, tile), tile_edges(w, tile)  # parts of 43..44 x 57..58 px
    th, tw = max(np.diff(ys)), max(np.diff(xs))
    expected = np.zeros_like(x)
    for i in range(len(ys) - 1):
        for j in range(len(xs) - 1):
            y0, x0 = min(ys[i], h - th), min(xs[j], w - tw)  # where the tile is cut
            inner = np.zeros((th, tw, 1), np.float32)
            inner[BORDER:th - BORDER, BORDER:tw - BORDER] = 1
            g = x[y0:y0 + th, x0:x0 + tw] * inner  # d mean(x²) / dx up to a constant shared by all tiles
            own = (slice(ys[i], ys[i + 1]), slice(xs[j], xs[j + 1]))
            expected[own] = g[ys[i] - y0:ys[i + 1] - y0, xs[j] - x0:xs[j + 1] - x0]
    expected = x + step * expected / np.abs(expected).mean()
    _, out = one_step(d, x, tile, batch=4, step=step, shift=(0, 0))
    np.testing.assert_allclose(out, expected, atol=1e-6)


def out_of_memory(backend):
    """The exception the backend raises when the device runs out of memory."""
    if backend == "torch":
        import torch

        return torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    import tensorflow as tf

    return tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")


def test_tile_batch_setting_and_out_of_memory_halving(tiny_path, image, backend, monkeypatch):
    big = np.tile(image, (2, 3, 1))  # 2 x 3 tiles at tile=64
    d = Dreamer(network(backend, tiny_path, (("conv3", 1.0),)))
    s = settings(tiny_path, tile=64, iterations=3, tile_batch=6)
    assert d.tile_batch(s, 6) == 6 and d.tile_batch(s, 2) == 2  # never more than there are tiles
    assert d.tile_batch(settings(tiny_path), 6) == 1  # automatic: one at a time without a GPU
    reference = d.dream(big, s)
    start, sizes = d.step.start, []

    class SmallGpu:  # a device with room for 3 tiles at a time
        def __init__(self, ascent):
            self.ascent = ascent

        def __call__(self, shift, batch, warp=None):
            sizes.append(batch)
            if batch > 3:
                raise out_of_memory(backend)
            return self.ascent(shift, batch, warp)

        def image(self):
            return self.ascent.image()

    monkeypatch.setattr(d.step, "start", lambda *a, **k: SmallGpu(start(*a, **k)))
    out = d.dream(big, s)
    assert sizes[:2] == [6, 3] and set(sizes[2:]) == {3} and d.batch_limit == 3
    assert d.tile_batch(s, 6) == 3  # remembered for the next image
    np.testing.assert_allclose(out, reference, atol=0.5)  # the retried steps are the same steps


def test_other_errors_are_not_taken_for_out_of_memory(tiny_path, backend):
    d = Dreamer(network(backend, tiny_path, (("conv3", 1.0),)))
    assert d.backend.out_of_memory(out_of_memory(backend))
    assert not d.backend.out_of_memory(ValueError("shapes do not match"))


def test_tensorflow_step_is_traced_once_for_all_sizes_octaves_and_calls(tiny_path, image):
    d = Dreamer(network("tensorflow", tiny_path, (("conv2", 1.0),)))
    d.dream(image, settings(tiny_path, layers=(("conv2", 1.0),), num_octave=3, octave_scale=1.2))
    assert d.traces == 1  # the one-tile step
    d.dream(np.tile(image, (2, 1, 1)), settings(tiny_path, layers=(("conv2", 1.0),), tile=64))
    assert d.traces == 2  # and the tiled one, once
    d.dream(np.tile(image, (3, 1, 1)), settings(tiny_path, layers=(("conv2", 1.0),), tile=64, num_octave=2))
    assert d.traces == 2


def test_the_tensorflow_steps_need_no_autograph(tiny_path):
    """The steps are traced with autograph=False (its source conversion was most of a first
    trace): they hold no Python control flow on tensors, so AutoGraph would trace the same graph."""
    import tensorflow as tf

    from .conftest import graph_structure

    d = Dreamer(network("tensorflow", tiny_path, (("conv2", 1.0), ("conv3", 0.5))))
    for step in (d.step.single, d.step.tiled, d.step.batched):
        converted = tf.function(step.python_function, input_signature=step.input_signature, autograph=True)
        assert graph_structure(step.get_concrete_function()) == graph_structure(converted.get_concrete_function())


def test_the_one_tile_step_is_the_tiled_step(tiny_path, image):
    import tensorflow as tf

    d = Dreamer(network("tensorflow", tiny_path, (("conv2", 1.0),)))
    x = tf.constant(np.random.default_rng(1).uniform(-1, 1, (40, 56, 3)).astype(np.float32))
    common = (x, tf.constant([3, -5], tf.int32), tf.constant(0.05))
    mask, smooth, gains = tf.ones([40, 56, 1]), tf.constant(0.0), tf.zeros([0])
    loss_a, a = d.step.single(*common, mask, smooth, gains, *d.step.off)
    loss_b, b = d.step.tiled(*common, tf.constant([0, 40]), tf.constant([0, 56]), mask, smooth, gains, *d.step.off)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert float(loss_a) == float(loss_b)


def test_continuous_snapshots_end_at_the_direct_result(dreamer, image, tiny_path):
    s = settings(tiny_path, num_octave=2, octave_scale=1.3, iterations=6)
    shots = []
    out = dreamer.dream(image, s, snapshot_every=3, on_snapshot=lambda n, img: shots.append((n, img)))
    assert [n for n, _ in shots] == [3, 6, 9, 12]
    np.testing.assert_allclose(shots[-1][1], out, atol=1e-3)


def test_too_small_image_is_refused(dreamer, tiny_path):
    with pytest.raises(InputError, match="too small"):
        dreamer.dream(np.zeros((4, 4, 3), np.float32), settings(tiny_path))


def test_dream_image_uint8_api_with_overrides(tiny_path, image):
    out = dream_image(image.astype(np.uint8), model=tiny_path, layers={"conv3": 1.0}, iterations=2, max_size=48)
    assert out.dtype == np.uint8 and max(out.shape[:2]) == 48 and out.shape[2] == 3


def test_octave_sizes_follow_the_keras_example():
    assert octave_sizes(300, 451, 3, 1.4, 32) == [(153, 230), (214, 322), (300, 451)]
    assert octave_sizes(40, 40, 4, 2.0, 32) == [(40, 40)]  # smaller octaves than the network sees are dropped
    assert octave_sizes(10, 10, 3, 1.4, 32) == []


@pytest.mark.parametrize("length,tile", [(100, 512), (1000, 512), (1025, 512), (64, 64), (65, 64)])
def test_tiles_cover_exactly_and_are_near_equal(length, tile):
    parts = tile_slices(length, tile)
    assert parts[0].start == 0 and parts[-1].stop == length
    assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))
    sizes = [p.stop - p.start for p in parts]
    assert max(sizes) <= tile and max(sizes) - min(sizes) <= 1
