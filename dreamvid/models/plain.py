"""The cached folded network run as plain TensorFlow ops: no Keras layers built at start-up.

Rebuilding a functional Keras model from its config creates every layer object and variable
(with its random initialiser) before the weights are set, and calling it inside the traced
step goes through each layer's `__call__`; together about 0.3 s of a warm start on a 2-core
CPU (bench/startup.py). The network cache (netcache.py) already holds the folded network's
config and weights, so a float32 network made only of the layer kinds below is run by
walking that config and calling, per layer, the same `keras.ops` / `keras.activations`
functions the Keras layer's `call` does, on `tf.Variable`s made from the cached arrays. The
traced step is therefore the same graph, op for op, as with the Keras model (tests/test_plain.py
compares the two graphs and their results bit for bit), only traced sooner.

Anything else (another layer class, an option not handled here, a non-float32 dtype, a shared
layer) returns None from `build` and the Keras model is rebuilt as before. The config is data
from a cache file: every layer's weights are checked against the shapes the config implies
(channels propagated from the input) before anything is built.
"""
from __future__ import annotations

import numpy as np

CONV = ("Conv2D", "DepthwiseConv2D")
SAME_SHAPE = ("Identity", "ReLU", "Activation")
KINDS = {"InputLayer", *CONV, *SAME_SHAPE, "Add", "Concatenate", "MaxPooling2D", "AveragePooling2D",
         "ZeroPadding2D"}
ACTIVATIONS = ("linear", "relu", "relu6")  # string activations a layer may name


class Unsupported(ValueError):
    """The config uses something this runner does not do: rebuild the Keras model instead."""


def build(config: dict, weights: dict[str, list[np.ndarray]]) -> PlainNetwork | None:
    """A PlainNetwork for a functional config and its weights by layer name ({name: [kernel,
    bias]}), or None when the config is outside what this runner does (the caller rebuilds
    the Keras model). ValueError when the weights do not match the config (a damaged cache)."""
    try:
        layers = check(config, weights)
    except Unsupported:
        return None
    return PlainNetwork(config, layers, weights)


def _inputs(layer: dict) -> list[str]:
    """Names of the layers feeding `layer` (its one node), in argument order."""
    found = []

    def walk(obj):
        if isinstance(obj, dict):
            if obj.get("class_name") == "__keras_tensor__":
                name, node, index = obj["config"]["keras_history"]
                if node != 0 or index != 0:
                    raise Unsupported("a layer output other than the first")
                found.append(name)
            else:
                for v in obj.values():
                    walk(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v)

    nodes = layer.get("inbound_nodes", [])
    if len(nodes) != 1 or nodes[0].get("kwargs"):
        raise Unsupported(f"{layer['name']}: shared, or called with keyword arguments")
    walk(nodes[0]["args"])
    return found


def output_names(config: dict) -> list[str]:
    outs = config["output_layers"]
    outs = [outs] if isinstance(outs[0], str) else outs  # one output is not nested
    if any(o[1:] != [0, 0] for o in outs):
        raise Unsupported("an output other than a layer's first")
    return [o[0] for o in outs]


def check(config: dict, weights: dict) -> list[tuple[str, str, dict, list[str]]]:
    """[(class, name, config, input names)] in order, every tensor's channel count checked.

    Unsupported for what the runner does not do; ValueError for weights that do not fit."""
    channels: dict[str, int] = {}
    out = []
    inputs = config["input_layers"]
    inputs = [inputs] if isinstance(inputs[0], str) else inputs
    if len(inputs) != 1:
        raise Unsupported("more than one input")
    for layer in config["layers"]:
        kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
        if kind not in KINDS or layer.get("module") != "keras.layers":
            raise Unsupported(f"layer class {kind}")
        dtype = cfg.get("dtype")
        if (dtype != "float32" if kind == "InputLayer" else
                not isinstance(dtype, dict) or dtype.get("config", {}).get("name") != "float32"):
            raise Unsupported(f"{name}: dtype {dtype}")
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise Unsupported(f"{name}: data format {cfg['data_format']}")
        if kind == "InputLayer":
            shape = cfg["batch_shape"]
            if name != inputs[0][0] or len(shape) != 4 or not isinstance(shape[3], int):
                raise Unsupported("an input that is not (b, h, w, c)")
            channels[name] = shape[3]
            continue
        srcs = _inputs(layer)
        if not srcs or any(s not in channels for s in srcs):
            raise ValueError(f"{name}: inputs {srcs} are not earlier layers")
        c_in = [channels[s] for s in srcs]
        channels[name] = _channels(kind, name, cfg, c_in, weights.get(name, []))
        out.append((kind, name, cfg, srcs))
    stray = set(weights) - {name for _, name, _, _ in out}
    if stray:
        raise ValueError(f"weights for layers not in the config: {sorted(stray)[:5]}")
    for o in output_names(config):
        if o not in channels:
            raise ValueError(f"output {o} is not a layer")
    return out


def _pair(value, name: str, what: str, low: int = 1) -> None:
    """`value` is two whole numbers >= low (a size, a stride)."""
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in value)):
        raise ValueError(f"{name}: {what} {value!r} is not two whole numbers >= {low}")


def _options(kind: str, name: str, cfg: dict) -> None:
    """Every option __call__ reads is of the kind it needs (the config comes from a file)."""
    if kind in (*CONV, "MaxPooling2D", "AveragePooling2D") and cfg.get("padding") not in ("valid", "same"):
        raise ValueError(f"{name}: padding {cfg.get('padding')!r}")
    if kind in CONV:
        _pair(cfg.get("strides"), name, "strides")
        if not isinstance(cfg.get("use_bias"), bool):
            raise ValueError(f"{name}: use_bias {cfg.get('use_bias')!r}")
    elif kind in ("MaxPooling2D", "AveragePooling2D"):
        _pair(cfg.get("pool_size"), name, "pool_size")
        if cfg.get("strides") is not None:
            _pair(cfg["strides"], name, "strides")
    elif kind == "ZeroPadding2D":
        pad = cfg.get("padding")
        if not isinstance(pad, (list, tuple)) or len(pad) != 2:
            raise ValueError(f"{name}: padding {pad!r}")
        for side in pad:
            _pair(side, name, "padding", low=0)
    elif kind == "ReLU":
        number = (int, float)
        if not (isinstance(cfg.get("negative_slope"), number) and isinstance(cfg.get("threshold"), number)
                and (cfg.get("max_value") is None or isinstance(cfg["max_value"], number))):
            raise ValueError(f"{name}: ReLU options {cfg}")


def _channels(kind: str, name: str, cfg: dict, c_in: list[int], arrays: list) -> int:
    """The output channels of one layer; raises when its weights do not fit the config."""
    _options(kind, name, cfg)
    if kind not in CONV:
        if arrays:
            raise ValueError(f"{name}: {kind} has no weights")
        if kind == "Add":
            if len(set(c_in)) != 1 or len(c_in) < 2:
                raise ValueError(f"{name}: adds {c_in} channels")
            return c_in[0]
        if kind == "Concatenate":
            if cfg.get("axis") not in (-1, 3):
                raise Unsupported(f"{name}: concatenates along axis {cfg.get('axis')}")
            return sum(c_in)
        if len(c_in) != 1:
            raise ValueError(f"{name}: {len(c_in)} inputs")
        if kind == "Activation" and cfg.get("activation") not in ACTIVATIONS:
            raise Unsupported(f"{name}: activation {cfg.get('activation')}")
        return c_in[0]
    if len(c_in) != 1:
        raise ValueError(f"{name}: {len(c_in)} inputs")
    if cfg.get("activation") not in ACTIVATIONS or list(cfg.get("dilation_rate", [1, 1])) != [1, 1]:
        raise Unsupported(f"{name}: activation {cfg.get('activation')} or dilation")
    kh, kw = cfg["kernel_size"]
    if kind == "Conv2D":
        if cfg.get("groups", 1) != 1:
            raise Unsupported(f"{name}: grouped")
        want = [(kh, kw, c_in[0], cfg["filters"])] + ([(cfg["filters"],)] if cfg["use_bias"] else [])
    else:
        if cfg.get("depth_multiplier", 1) != 1:
            raise Unsupported(f"{name}: depth multiplier")
        want = [(kh, kw, c_in[0], 1)] + ([(c_in[0],)] if cfg["use_bias"] else [])
    got = [tuple(a.shape) for a in arrays]
    if got != want or any(a.dtype != np.float32 for a in arrays):
        raise ValueError(f"{name}: weights {got}, the config needs {want} float32")
    return want[0][3] if kind == "Conv2D" else c_in[0]


class PlainNetwork:
    """Callable like the functional keras.Model it was saved from: (b, h, w, c) float32 ->
    [one (b, h', w', c') activation per output]. `keras()` builds that Keras model (for a
    mixed-precision rewrite, graph.rebuild); `get_weights()` gives the arrays in layer order."""

    def __init__(self, config: dict, layers: list, weights: dict[str, list[np.ndarray]]):
        import tensorflow as tf

        self.name = config.get("name", "plain")
        self.config = config
        self._layers = layers
        self._input = config["layers"][0]["name"] if config["layers"][0]["class_name"] == "InputLayer" else None
        self._outputs = output_names(config)
        self.arrays = weights  # {layer name: [kernel, bias]} as read
        self._variables = {n: [tf.Variable(a, name=f"{n}_{i}") for i, a in enumerate(arrs)]
                           for n, arrs in weights.items()}
        self._keras = None

    def get_weights(self) -> list[np.ndarray]:
        return [a for _, name, _, _ in self._layers for a in self.arrays.get(name, [])]

    def keras(self):
        """The same network as a keras.Model (built once, on first use)."""
        if self._keras is None:
            import copy

            import keras

            model = keras.Model.from_config(copy.deepcopy(self.config))
            for layer in model.layers:
                if layer.name in self.arrays:
                    layer.set_weights(self.arrays[layer.name])
            self._keras = model
        return self._keras

    def __call__(self, x, training=False):
        """What keras.Model.__call__ computes; every op from the function the layer's `call` uses."""
        import keras
        from keras import ops

        t = {self._input: x}
        for kind, name, cfg, srcs in self._layers:
            a = t[srcs[0]]
            v = self._variables.get(name)
            if kind == "Conv2D":
                y = ops.conv(a, v[0], strides=list(cfg["strides"]), padding=cfg["padding"],
                             dilation_rate=tuple(cfg["dilation_rate"]), data_format="channels_last")
                y = _bias(y, v, cfg["filters"])
            elif kind == "DepthwiseConv2D":
                y = ops.depthwise_conv(a, v[0], strides=tuple(cfg["strides"]), padding=cfg["padding"],
                                       dilation_rate=tuple(cfg["dilation_rate"]), data_format="channels_last")
                y = _bias(y, v, v[0].shape[2])
            elif kind == "ReLU":
                y = keras.activations.relu(a, negative_slope=cfg["negative_slope"], max_value=cfg["max_value"],
                                           threshold=cfg["threshold"])
            elif kind == "Activation":
                y = keras.activations.get(cfg["activation"])(a)
            elif kind == "Identity":
                y = a
            elif kind == "Add":
                y = a
                for s in srcs[1:]:
                    y = ops.add(y, t[s])
            elif kind == "Concatenate":
                y = ops.concatenate([t[s] for s in srcs], axis=cfg["axis"])
            elif kind in ("MaxPooling2D", "AveragePooling2D"):
                pool = ops.max_pool if kind == "MaxPooling2D" else ops.average_pool
                y = pool(a, pool_size=tuple(cfg["pool_size"]), strides=tuple(cfg["strides"] or cfg["pool_size"]),
                         padding=cfg["padding"], data_format="channels_last")
            else:  # ZeroPadding2D
                (top, bottom), (left, right) = cfg["padding"]
                y = ops.pad(a, ((0, 0), (top, bottom), (left, right), (0, 0)))
            if kind in CONV and cfg["activation"] != "linear":
                y = keras.activations.get(cfg["activation"])(y)
            t[name] = y
        return [t[n] for n in self._outputs]


def _bias(y, variables, channels: int):
    """Conv2D.call's bias: reshaped to (1, 1, 1, c) and added with ops.add (a BiasAdd)."""
    from keras import ops

    if len(variables) < 2:
        return y
    return ops.add(y, ops.reshape(variables[1], (1, 1, 1, channels)))
