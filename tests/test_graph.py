"""models.graph.rebuild: batch norms folded into convolutions give the same function, every
tapped layer name survives, and what cannot be folded is left alone."""
import numpy as np
import pytest

from dreamvid import models
from dreamvid.models import graph


def _outputs(net, x):
    out = net(x)
    return [np.asarray(a) for a in (out if isinstance(out, (list, tuple)) else [out])]


def _identity_layers(net):
    return [layer.name for layer in net.layers if type(layer).__name__ == "Identity"]


def test_lite0_folded_computes_the_same_function():
    m = models.load("efficientnet_lite0", (("block2b_out", 1.0), ("block4c_out", 1.0)))
    folded = graph.rebuild(m.features)
    assert folded is not m.features
    names = {layer.name for layer in folded.layers}
    assert {"block2b_out", "block4c_out", "block3a_project_bn"} <= names  # taps and BN names survive
    assert not any(type(layer).__name__ == "BatchNormalization" for layer in folded.layers)
    x = models.pink_noise(96)[None]
    for a, b in zip(_outputs(m.features, x), _outputs(folded, x)):
        np.testing.assert_allclose(b, a, atol=1e-4 * np.abs(a).max())


def test_inception_batch_norm_without_gamma_is_folded():
    import keras

    keras.utils.set_random_seed(0)
    net = keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(None, None, 3))
    tapped = keras.Model(net.input, net.get_layer("mixed1").output)
    # random weights come with unit moving statistics; give the BNs real ones so folding is tested
    rng = np.random.default_rng(0)
    for layer in tapped.layers:
        if type(layer).__name__ == "BatchNormalization":
            beta, mean, var = layer.get_weights()  # scale=False: no gamma
            layer.set_weights([rng.normal(0, 0.1, beta.shape), rng.normal(0, 0.1, mean.shape),
                               rng.uniform(0.5, 2.0, var.shape)])
    folded = graph.rebuild(tapped)
    assert len(_identity_layers(folded)) > 0
    x = models.pink_noise(96)[None]
    a, b = _outputs(tapped, x)[0], _outputs(folded, x)[0]
    np.testing.assert_allclose(b, a, atol=1e-4 * np.abs(a).max())


def test_shared_or_tapped_conv_outputs_are_not_folded():
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((None, None, 3))
    c1 = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inp)  # feeds a BN and an Add: not foldable
    b1 = keras.layers.BatchNormalization(name="b1")(c1)
    s = keras.layers.Add(name="s")([b1, c1])
    c2 = keras.layers.Conv2D(4, 3, padding="same", name="c2")(s)  # tapped itself: not foldable
    b2 = keras.layers.BatchNormalization(name="b2")(c2)
    c3 = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c3")(b2)  # has an activation
    b3 = keras.layers.BatchNormalization(name="b3")(c3)
    c4 = keras.layers.Conv2D(4, 1, name="c4")(b3)  # the one foldable pair
    b4 = keras.layers.BatchNormalization(name="b4")(c4)
    net = keras.Model(inp, [c2, b4])
    assert graph._fold_pairs(net.get_config()) == {"b4": "c4"}
    folded = graph.rebuild(net)
    assert _identity_layers(folded) == ["b4"]
    x = np.random.default_rng(1).normal(size=(1, 16, 16, 3)).astype(np.float32)
    for a, b in zip(_outputs(net, x), _outputs(folded, x)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)


def test_nothing_to_fold_returns_the_model_itself():
    m = models.load("vgg16_hed", (("block3_conv3", 1.0),))
    assert graph.rebuild(m.features) is m.features


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_dtype_policy_is_set_on_every_layer(policy):
    m = models.load("vgg16_hed", (("block3_conv3", 1.0),))
    net = graph.rebuild(m.features, dtype_policy=policy)
    convs = [layer for layer in net.layers if type(layer).__name__ == "Conv2D"]
    assert convs and all(layer.dtype_policy.name == policy for layer in convs)
    assert all(w.dtype == "float32" for layer in convs for w in layer.weights)  # variables stay float32
