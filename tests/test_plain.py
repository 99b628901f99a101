"""dreamvid/models/plain.py: the cached folded network run as plain TensorFlow ops.

The runner must trace the same graph as the Keras model it stands for (so every result stays
bit-identical), refuse what it does not do (the Keras model is rebuilt instead), and treat the
cached config and weights as untrusted: weights that do not fit the config are an error.
Mechanics on tiny random-weight networks; the bundled network once through the cache.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from dreamvid import dream, models
from dreamvid.models import plain

from .conftest import graph_structure


def every_kind():
    """A small functional network with every layer kind the runner does, two outputs."""
    import keras

    keras.utils.set_random_seed(3)
    L = keras.layers
    inp = keras.Input((None, None, 3))
    x = L.ZeroPadding2D(((1, 0), (0, 1)), name="pad")(inp)
    x = L.Conv2D(8, 3, strides=2, padding="valid", name="stem")(x)
    x = L.Identity(name="stem_bn")(x)
    x = L.ReLU(max_value=6.0, name="stem_act")(x)
    y = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    y = L.ReLU(name="dw_act")(y)
    y = L.Conv2D(8, 1, use_bias=False, name="project")(y)
    x = L.Add(name="add")([x, y])
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="branch_a")(x)
    b = L.MaxPooling2D(3, strides=1, padding="same", name="pool")(x)
    b = L.Conv2D(4, 1, activation="relu6", name="branch_b")(b)
    x = L.Concatenate(name="cat")([a, b])
    x = L.Activation("relu", name="act")(x)
    z = L.AveragePooling2D(2, name="avg")(x)
    z = L.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False, name="dw2")(z)
    return keras.Model(inp, [x, z], name="kinds")


def saved(model):
    """(config, weights by layer name) as the network cache stores them (a JSON round trip)."""
    return (json.loads(json.dumps(model.get_config())),
            {layer.name: layer.get_weights() for layer in model.layers if layer.weights})


def test_plain_network_computes_what_keras_does():
    import tensorflow as tf

    net = every_kind()
    p = plain.build(*saved(net))
    assert isinstance(p, plain.PlainNetwork)
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (2, 37, 41, 3)).astype(np.float32))
    for a, b in zip(net(x, training=False), p(x)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(net.get_weights(), p.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(net(x), p.keras()(x)):  # the Keras model it rebuilds on demand
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_the_traced_step_is_the_same_graph():
    """The step traced with the plain network is the Keras model's graph op for op, and its
    steps give the same pixels bit for bit."""
    import tensorflow as tf

    net = every_kind()
    km = models.from_keras(net, (("cat", 1.0), ("dw2", 0.5)))
    keras_model = dataclasses.replace(km, network=km.features)  # as loaded: nothing to fold here
    plain_model = dataclasses.replace(km, network=plain.build(*saved(km.features)))
    x = tf.constant(np.random.default_rng(1).uniform(-1, 1, (45, 52, 3)).astype(np.float32))
    args = (tf.constant([3, -4], tf.int32), tf.constant(0.02), tf.ones([45, 52, 1]), tf.constant(0.0), tf.zeros([0]))
    steps = [dream.Dreamer(m) for m in (keras_model, plain_model)]
    graphs = [graph_structure(d.step.single.get_concrete_function(x, *args, *d.step.off)) for d in steps]
    assert graphs[0] == graphs[1]
    outs = []
    for d in steps:
        y = x
        for _ in range(3):
            _, y = d.step.single(y, *args, *d.step.off)
        outs.append(y.numpy())
    np.testing.assert_array_equal(outs[0], outs[1])


def _policy(name):
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name}, "registered_name": None}


@pytest.mark.parametrize("change", ["batchnorm", "bfloat16", "channels_first", "dilation", "shared", "activation"])
def test_what_it_does_not_do_is_left_to_keras(change):
    config, weights = saved(every_kind())
    layer = next(la for la in config["layers"] if la["name"] == "stem")
    if change == "batchnorm":
        layer["class_name"] = "BatchNormalization"
    elif change == "bfloat16":
        layer["config"]["dtype"] = _policy("mixed_bfloat16")
    elif change == "channels_first":
        layer["config"]["data_format"] = "channels_first"
    elif change == "dilation":
        layer["config"]["dilation_rate"] = [2, 2]
    elif change == "shared":
        layer["inbound_nodes"].append(layer["inbound_nodes"][0])
    else:
        layer["config"]["activation"] = "gelu"
    assert plain.build(config, weights) is None


@pytest.mark.parametrize("damage", ["in_channels", "filters", "no_bias", "extra_layer", "dtype", "dangling",
                                    "strides", "padding", "pool_size", "zero_padding", "relu"])
def test_weights_that_do_not_fit_the_config_are_refused(damage):
    config, weights = saved(every_kind())
    if damage == "in_channels":
        weights["branch_a"][0] = weights["branch_a"][0][:, :, :3]
    elif damage == "filters":
        weights["stem"][0] = weights["stem"][0][..., :4]
    elif damage == "no_bias":
        weights["dw"] = weights["dw"][:1]
    elif damage == "extra_layer":
        weights["nowhere"] = [np.zeros(3, np.float32)]
    elif damage == "dtype":
        weights["stem"] = [w.astype(np.float64) for w in weights["stem"]]
    elif damage == "dangling":
        next(la for la in config["layers"] if la["name"] == "add")["inbound_nodes"][0]["args"][0][1][
            "config"]["keras_history"][0] = "later"
    else:  # options of the wrong kind, which would only fail while tracing
        name, key, value = {"strides": ("stem", "strides", [2, "2"]), "padding": ("dw", "padding", "full"),
                            "pool_size": ("pool", "pool_size", [3]), "zero_padding": ("pad", "padding", [[1, -1], [0, 1]]),
                            "relu": ("stem_act", "max_value", "6")}[damage]
        next(la for la in config["layers"] if la["name"] == name)["config"][key] = value
    with pytest.raises(ValueError):
        plain.build(config, weights)


LAYERS = (("block4c_out", 1.0),)




def test_a_warm_cache_runs_the_bundled_network_plain(cache_dir):
    """First load: the Keras model is folded and cached; the next float32 load runs it plain,
    a mixed one rebuilds its Keras model; all three dream the same first step as before."""
    import tensorflow as tf

    fresh = models._load.__wrapped__("efficientnet_lite0", LAYERS, None)
    assert not isinstance(fresh.network, plain.PlainNetwork)
    warm = models._load.__wrapped__("efficientnet_lite0", LAYERS, None)
    assert isinstance(warm.network, plain.PlainNetwork) and warm.features is warm.network
    assert warm.scales == fresh.scales
    bf16 = models._load.__wrapped__("efficientnet_lite0", LAYERS, None, "mixed_bfloat16")
    assert not isinstance(bf16.network, plain.PlainNetwork) and bf16.compute_dtype == "bfloat16"
    x = tf.constant(np.random.default_rng(2).uniform(-1, 1, (64, 72, 3)).astype(np.float32))
    args = (tf.constant([5, 2], tf.int32), tf.constant(0.01), tf.ones([64, 72, 1]), tf.constant(0.0), tf.zeros([0]))
    a, b = (d.step.single(x, *args, *d.step.off)[1].numpy() for d in map(dream.Dreamer, (fresh, warm)))
    np.testing.assert_array_equal(a, b)


def test_an_entry_of_other_versions_is_not_read(cache_dir):
    """The key holds the cache format, dreamvid's, TensorFlow's and Keras's versions and the
    weights file's digest; an entry whose stored key is not the one asked for is not used."""
    from dreamvid.models import netcache

    models._load.__wrapped__("efficientnet_lite0", LAYERS, None)
    key = models._network_cache_key(models.get_spec("efficientnet_lite0"), LAYERS, None)
    assert {"format", "dreamvid", "tensorflow", "keras", "weights"} <= set(key)
    assert isinstance(netcache.read(key, plain_ok=True)[0], plain.PlainNetwork)
    for field, value in (("format", 1), ("dreamvid", "0.0.1"), ("tensorflow", "2.0.0"), ("keras", "3.0.0"),
                         ("weights", "0" * 32)):
        assert netcache.read({**key, field: value}, plain_ok=True) is None
    meta = next(cache_dir.glob("networks/*.json"))  # a file whose content is another version's
    data = json.loads(meta.read_text())
    data["key"]["tensorflow"] = "2.0.0"
    meta.write_text(json.dumps(data))
    assert netcache.read(key, plain_ok=True) is None
    models._load.__wrapped__("efficientnet_lite0", LAYERS, None)  # computed and written again
    assert isinstance(netcache.read(key, plain_ok=True)[0], plain.PlainNetwork)
