"""Rewrite a tapped Keras network into the one that runs: batch norm folded away, compute dtype set.

Dreaming runs a network in inference mode thousands of times, so every BatchNormalization
that follows a convolution is a fixed per-channel affine map: y = (conv(x) - mean) * gamma /
sqrt(var + eps) + beta. Folding it into the convolution's kernel and bias gives the same
function (to float rounding, about 1e-6 relative) with two elementwise passes fewer per BN in
the forward pass and two in the backward one; on EfficientNet-Lite0 those passes over the
6x-expanded activations are a large share of a CPU step (bench/ measures it).

The rewrite works on the functional config, so it applies to the Keras applications, the
bundled backbones and a user's functional .keras model alike: the graph is rebuilt with
`use_bias=True` on the folded convolutions and an `Identity` of the same name in place of
each folded BN (so every layer name, and every tap, still exists), then the weights are
copied in. The same rebuild sets a Keras mixed-precision dtype policy on every layer for
`precision="mixed"`: variables stay float32, compute runs in float16 or bfloat16.
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("dreamvid")

FOLDABLE = ("Conv2D", "DepthwiseConv2D")  # layers whose output a following BN can be folded into


def _history(obj) -> list[str]:
    """Names of the layers whose outputs appear anywhere in a serialized node's args."""
    found = []
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            found.append(obj["config"]["keras_history"][0])
        else:
            for v in obj.values():
                found += _history(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            found += _history(v)
    return found


def _fold_pairs(config: dict) -> dict[str, str]:
    """{bn name: conv name} for every BN fed only by a linear conv that feeds only that BN."""
    layers = {layer["name"]: layer for layer in config["layers"]}
    consumers: dict[str, list[str]] = {}
    for layer in config["layers"]:
        for src in _history(layer.get("inbound_nodes", [])):
            consumers.setdefault(src, []).append(layer["name"])
    outs = config["output_layers"]
    outputs = {outs[0]} if isinstance(outs[0], str) else {o[0] for o in outs}  # one output is not nested
    pairs = {}
    for name, layer in layers.items():
        if layer["class_name"] != "BatchNormalization" or len(layer.get("inbound_nodes", [])) != 1:
            continue
        cfg = layer["config"]
        if cfg.get("axis") not in (-1, 3, [-1], [3]):
            continue
        srcs = _history(layer["inbound_nodes"])
        if len(srcs) != 1 or srcs[0] not in layers:
            continue
        conv = layers[srcs[0]]
        ccfg = conv["config"]
        if (conv["class_name"] in FOLDABLE and len(conv.get("inbound_nodes", [])) == 1
                and consumers.get(conv["name"]) == [name] and conv["name"] not in outputs
                and ccfg.get("activation", "linear") == "linear"
                and ccfg.get("data_format", "channels_last") == "channels_last"
                and not (conv["class_name"] == "DepthwiseConv2D" and ccfg.get("depth_multiplier", 1) != 1)):
            pairs[name] = conv["name"]
    return pairs


def _policy(name: str) -> dict:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name}, "registered_name": None}


def rebuild(model, *, fold_batchnorm: bool = True, dtype_policy: str | None = None, skip: tuple[str, ...] = ()):
    """A functional keras.Model computing what `model` computes, BN folded, with `dtype_policy`.

    model: a functional keras.Model (inference only: training-mode BN is gone afterwards).
    dtype_policy: e.g. "mixed_float16" or "mixed_bfloat16"; None keeps the layers' own.
    skip: layer classes that keep their own dtype (per-layer mixed precision, bench/precisions.py).
    Returns `model` itself when there is nothing to change.
    """
    import keras

    from .plain import PlainNetwork

    given = model
    if isinstance(model, PlainNetwork):  # the cached network run without Keras layers: rewrite its Keras model
        model = model.keras()
    config = model.get_config()
    pairs = _fold_pairs(config) if fold_batchnorm else {}
    if not pairs and dtype_policy is None:
        return given
    folded_convs = set(pairs.values())
    for layer in config["layers"]:
        cfg = layer["config"]
        if layer["name"] in pairs:  # the BN becomes a pass-through of the same name
            layer["class_name"], layer["module"], layer["registered_name"] = "Identity", "keras.layers", None
            layer["config"] = {"name": cfg["name"], "trainable": False, "dtype": cfg.get("dtype")}
            layer.pop("build_config", None)
            for node in layer["inbound_nodes"]:
                node["kwargs"] = {}  # BN-only call arguments (training, mask) mean nothing to Identity
            cfg = layer["config"]
        elif layer["name"] in folded_convs:
            cfg["use_bias"] = True
        if (dtype_policy is not None and layer["class_name"] not in ("InputLayer", *skip)
                and "dtype" in cfg):
            cfg["dtype"] = _policy(dtype_policy)
    new = model.__class__.from_config(config)
    _copy_weights(model, new, pairs)
    log.debug("rebuilt %s: %d batch norms folded, dtype policy %s", model.name, len(pairs), dtype_policy)
    return new


def _copy_weights(old, new, pairs: dict[str, str]) -> None:
    bn_of = {conv: bn for bn, conv in pairs.items()}
    for layer in new.layers:
        if layer.name in pairs or not layer.weights:
            continue
        src = old.get_layer(layer.name)
        if layer.name in bn_of:
            layer.set_weights(_folded(src, old.get_layer(bn_of[layer.name])))
        else:
            layer.set_weights(src.get_weights())


def _folded(conv, bn) -> list[np.ndarray]:
    """[kernel, bias] of conv followed by bn (inference mode), as one convolution."""
    kernel = np.asarray(conv.kernel.numpy(), np.float64)
    channels = kernel.shape[2] if type(conv).__name__ == "DepthwiseConv2D" else kernel.shape[-1]
    bias = np.asarray(conv.bias.numpy(), np.float64) if conv.use_bias else np.zeros(channels)
    gamma = np.asarray(bn.gamma.numpy(), np.float64) if bn.gamma is not None else np.ones(channels)
    beta = np.asarray(bn.beta.numpy(), np.float64) if bn.beta is not None else np.zeros(channels)
    mean = np.asarray(bn.moving_mean.numpy(), np.float64)
    var = np.asarray(bn.moving_variance.numpy(), np.float64)
    scale = gamma / np.sqrt(var + bn.epsilon)
    if type(conv).__name__ == "DepthwiseConv2D":  # kernel (kh, kw, C, 1): one filter per input channel
        kernel = kernel * scale[None, None, :, None]
    else:  # kernel (kh, kw, C_in / groups, C_out)
        kernel = kernel * scale
    return [kernel.astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)]
