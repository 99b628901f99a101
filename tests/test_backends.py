"""The backends (dreamvid/backends/): the torch step does what the TensorFlow step does.

Across backends the results are compared with a tolerance, never bit for bit: the two run
different convolution kernels, which round differently (about 1e-7 relative per op in
float32). One step from the same image then agrees closely, except where an activation sits
within rounding of a ReLU kink, where a unit can switch on one side only; so the update is
compared by its relative L2 error (1e-3: a hundred times the rounding seen, small enough to
catch a wrong padding, a transposed kernel or a missing term, which give 0.1 to 1). After many
steps the two dreams diverge like any chaotic iteration (the issue measured 0.1 of a step
from 1e-6 of input noise), so a whole still is compared by its strength and loss curve.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from dreamvid import backends
from dreamvid.dream import Dreamer, EasedMeanSquares, Guide, MeanSquares, dream_image, get_dreamer, tile_edges
from dreamvid.settings import DreamSettings

from .conftest import network, texture

pytestmark = pytest.mark.skipif(not backends.installed("torch"), reason="PyTorch is not installed")

UPDATE_RTOL = 1e-3  # relative L2 error of one step's update across backends (module docstring)


def step_of(d: Dreamer, x: np.ndarray, *, mask=None, smooth=0.0, gains=None, tile=512, batch=1,
            shift=(3, -5), step=0.02, colour=None, lapnorm=0, warp=None):
    ascent = d.step.start(x, step=step, ys=tile_edges(x.shape[0], tile), xs=tile_edges(x.shape[1], tile),
                          mask=mask, smooth=smooth, gains=gains, colour=colour, lapnorm=lapnorm)
    loss = float(ascent(shift, batch, warp))
    return loss, ascent.image() - x


def techniques(x: np.ndarray, seed: int = 1) -> dict:
    """The step inputs of lapnorm 3, decorrelate 1 and transform 1.5 for image x (dream/techniques.py).
    Seed 1: seed 4's warp puts one unit of the class test's network within rounding of a ReLU
    kink (its update differs 8e-3 across backends; 1e-4 of noise on the input brings it to 3e-6),
    the case the module docstring sets aside."""
    from dreamvid.dream.techniques import colour_matrix, random_warp

    return {"colour": colour_matrix(1.0), "lapnorm": 3,
            "warp": random_warp(np.random.default_rng(seed), 1.5, x.shape[:2])}


def assert_same_step(a, b):
    (loss_a, up_a), (loss_b, up_b) = a, b
    assert loss_b == pytest.approx(loss_a, rel=1e-4)
    err = np.linalg.norm(up_a - up_b) / np.linalg.norm(up_a)
    assert err < UPDATE_RTOL, f"relative L2 error of the update {err:.2e}"


def dream_space(h=64, w=80, seed=2):
    return texture(h, w, seed=seed).astype(np.float32) / 127.5 - 1


@pytest.mark.slow
@pytest.mark.parametrize("model, layer", [("efficientnet_lite0", "block4c_out"), ("vgg16_hed", "block4_conv3")])
def test_one_step_of_a_bundled_network_agrees(model, layer):
    x = dream_space(96, 128)
    tf_d, torch_d = (Dreamer(network(b, model, ((layer, 1.0),))) for b in ("tensorflow", "torch"))
    assert torch_d.model.scales == pytest.approx(tf_d.model.scales, rel=1e-6)
    assert_same_step(step_of(tf_d, x), step_of(torch_d, x))
    assert_same_step(step_of(tf_d, x, tile=64), step_of(torch_d, x, tile=64))  # tiled: 2 x 2


@pytest.mark.slow
def test_a_class_and_a_channel_agree():
    targets = (("block5c_out/17", 1.0), ("logits/207", 2.0))  # a channel, and golden retriever's logit
    x = dream_space(96, 128)
    tf_d, torch_d = (Dreamer(network(b, "efficientnet_lite0", targets)) for b in ("tensorflow", "torch"))
    assert_same_step(step_of(tf_d, x), step_of(torch_d, x))
    on = techniques(x)
    assert_same_step(step_of(tf_d, x, **on), step_of(torch_d, x, **on))
    assert_same_step(step_of(tf_d, x, tile=64, **on), step_of(torch_d, x, tile=64, **on))  # tiled: 2 x 2


@pytest.fixture(scope="module")
def pair(tiny):
    return {b: network(b, tiny, (("conv2", 1.0), ("conv3", -0.5))) for b in ("tensorflow", "torch")}


@pytest.mark.parametrize("case", ["plain", "mask", "smooth", "batched", "guide", "eased"])
@pytest.mark.parametrize("techniques_on", [False, True], ids=["alone", "techniques"])
def test_every_objective_and_step_option_agrees(pair, case, techniques_on):
    """Each objective and step option, alone and with lapnorm, decorrelate and transform on."""
    x = dream_space()
    objective, kw = MeanSquares(), techniques(x) if techniques_on else {}
    if case == "mask":
        kw["mask"] = np.linspace(0, 1, x.shape[0] * x.shape[1], dtype=np.float32).reshape(x.shape[:2])
    elif case == "smooth":
        kw["smooth"] = 2.5
    elif case == "batched":
        kw.update(tile=32, batch=4)
    elif case == "guide":
        objective = MeanSquares(guide=Guide.of(texture(40, 56, seed=9)), guide_weight=0.7)
    elif case == "eased":
        objective = EasedMeanSquares(signs=(("conv3", -1.0),))
        kw["gains"] = np.sqrt(np.float32([0.3, 0.8]))
    steps = [step_of(Dreamer(pair[b], objective), x, **kw) for b in ("tensorflow", "torch")]
    assert_same_step(*steps)


def test_eased_weights_are_an_input_of_the_step(pair):
    """Weights that change from frame to frame reach the step as its `gains` input: the same
    compiled step, and what a plain objective with those weights does."""
    import dataclasses

    x = dream_space()
    d = Dreamer(pair["torch"], EasedMeanSquares(signs=(("conv3", -1.0),)))
    s = DreamSettings(layers=(("conv2", 0.3), ("conv3", -0.8)))
    gains = d.objective.gains(d.model, s)
    np.testing.assert_allclose(gains, np.sqrt([0.3, 0.8]), rtol=1e-6)
    plain_model = dataclasses.replace(pair["torch"], layers=(("conv2", 0.3), ("conv3", -0.8)))
    _, eased = step_of(d, x, gains=gains)
    _, direct = step_of(Dreamer(plain_model), x)
    np.testing.assert_allclose(eased, direct, atol=1e-6)
    assert d.objective.gains(d.model, DreamSettings(layers=(("conv3", 1.0),)))[0] == 0  # not named: off


def test_every_layer_kind_of_the_runner_computes_what_tensorflow_does():
    """Every layer kind the torch runner does (models/plain.py's KINDS), TensorFlow's padding
    included (odd sizes, strides 2, "same" pooling), against the Keras model on TensorFlow."""
    import keras
    import torch

    from dreamvid.backends import torch as tb

    from .test_plain import every_kind

    base = every_kind()
    L = keras.layers
    x = L.AveragePooling2D(3, strides=2, padding="same", name="avg_same")(base.outputs[0])
    x = L.MaxPooling2D(2, strides=2, padding="same", name="max_same")(x)
    x = L.ReLU(negative_slope=0.1, threshold=0.05, max_value=2.0, name="leaky")(x)
    x = L.Conv2D(4, 2, strides=1, padding="same", name="even")(x)
    net = keras.Model(base.input, [base.outputs[0], base.outputs[1], x])
    config = json.loads(json.dumps(net.get_config()))
    weights = {layer.name: layer.get_weights() for layer in net.layers if layer.weights}
    runner = tb.Network(config, weights, "tf", None, tb.device())
    rng = np.random.default_rng(0)
    for h, w in ((37, 41), (32, 30)):
        xin = rng.uniform(-1, 1, (2, h, w, 3)).astype(np.float32)
        want = [np.asarray(a) for a in net(xin, training=False)]
        got = runner(torch.from_numpy(np.ascontiguousarray(np.moveaxis(xin, -1, 1))).to(tb.device()))
        for a, b in zip(want, got):
            np.testing.assert_allclose(np.moveaxis(b.cpu().numpy(), 1, -1), a, rtol=1e-5, atol=1e-5)


def test_a_layer_kind_the_runner_does_not_do_is_refused_with_the_way_out(tmp_path):
    import keras

    from dreamvid.errors import ModelError

    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, activation="swish", name="odd")(inp)
    keras.Model(inp, x).save(tmp_path / "odd.keras")
    with pytest.raises(ModelError) as e:
        network("torch", tmp_path / "odd.keras", (("odd", 1.0),))
    assert "--backend tensorflow" in e.value.hint


@pytest.mark.slow
def test_a_whole_still_matches_in_strength_and_loss_curve(photo_rgb):
    runs = {}
    for b in ("tensorflow", "torch"):
        s = DreamSettings(backend=b, precision="float32", num_octave=2, iterations=8, max_loss=None)
        losses = []
        out = dream_image(photo_rgb, s, progress=lambda p: losses.append(p.loss))
        runs[b] = (out.astype(np.float32), np.array(losses))
    (tf_out, tf_loss), (t_out, t_loss) = runs["tensorflow"], runs["torch"]
    strength = [np.abs(o - photo_rgb).mean() for o in (tf_out, t_out)]
    assert strength[1] == pytest.approx(strength[0], rel=0.03)
    np.testing.assert_allclose(t_loss, tf_loss, rtol=0.03)  # step by step, octave by octave
    assert tf_loss[-1] > tf_loss[0]


@pytest.mark.slow
def test_torch_mixed_precision_keeps_the_dream():
    """bfloat16 on a CPU (float16 on a GPU): the loss scaled for the backward pass, the dream
    within a few levels of float32's and as strong."""
    image = texture(96, 128, seed=4).astype(np.float32)
    s = DreamSettings(layers=(("block4c_out", 1.0),), num_octave=2, iterations=5, max_loss=None, jitter=4,
                      backend="torch")
    f32 = get_dreamer(DreamSettings(**{**s.__dict__, "precision": "float32"})).dream(image, s)
    reduced = get_dreamer(DreamSettings(**{**s.__dict__, "precision": "mixed"}))
    assert reduced.model.compute_dtype == "bfloat16"
    low = reduced.dream(image, s)
    assert np.abs(low - f32).mean() <= 8.0
    assert np.abs(low - image).mean() / np.abs(f32 - image).mean() == pytest.approx(1.0, abs=0.06)


@pytest.fixture(scope="module")
def photo_rgb():
    from pathlib import Path

    from dreamvid.media import read_image

    return read_image(Path(__file__).parent.parent / "samples" / "chelsea.jpg", max_size=128).astype(np.float32)


# ---- every command on the torch backend, end to end (tiny network, tiny media) -------------

TINY = ("--iterations", "2", "--num-octave", "1", "--backend", "torch", "--precision", "float32")


@pytest.mark.parametrize("command, source, out, extra", [
    ("image", "photo", "o.png", ()),
    ("video", "clip", "o.mp4", ("--end", "f3", "--frame-iterations", "1")),
    ("zoom", "photo", "o.gif", ("--frames", "3")),
    ("timelapse", "photo", "o.png", ("--every", "1")),
    ("sweep", "photo", "o.png", ("--vary", "step=0.01,0.05")),
])
def test_every_command_dreams_on_torch(command, source, out, extra, tiny, photo, make_clip, tmp_path):
    from .clitools import run

    src = photo if source == "photo" else make_clip(n=4, width=64, height=48)[0]
    r = run(command, src, "-o", tmp_path / out, "--model", tiny, "-l", "conv3", *TINY, *extra)
    assert r.exit_code == 0, r.output
    assert (tmp_path / out).stat().st_size > 0


def test_a_work_folder_resumes_only_on_its_own_backend(tiny, make_clip, tmp_path):
    from .clitools import error_line, run

    clip = make_clip(n=6, width=64, height=48)[0]
    common = ("--model", tiny, "-l", "conv3", "--iterations", "1", "--num-octave", "1", "--precision", "float32")
    out = tmp_path / "o.mp4"
    r = run("video", clip, "-o", out, *common, "--backend", "torch", "--end", "f3", "--keep-frames")
    assert r.exit_code == 0, r.output
    r = run("video", clip, "-o", out, *common, "--backend", "tensorflow", "--end", "f5")
    line = error_line(r, 2, "dream.backend: 'torch' -> 'tensorflow'")
    assert "--restart" in line
    r = run("video", clip, "-o", out, *common, "--backend", "torch", "--end", "f5")
    assert r.exit_code == 0, r.output


def test_torch_missing_is_one_line_with_the_install_command(photo, tmp_path, monkeypatch):
    from .clitools import one_line_error, run

    real = backends.installed
    monkeypatch.setattr(backends, "installed", lambda name: name != "torch" and real(name))
    r = run("image", photo, "-o", tmp_path / "o.png", "--backend", "torch")
    one_line_error(r, 2, "torch is not installed", "pip install 'dreamvid[torch]'")
    assert not (tmp_path / "o.png").exists()
