"""The network as it runs, computed once per weights file: folded weights and calibration levels.

Building a backbone, reading its weights, folding its batch norms and measuring its reference
levels on the pink-noise image take a second or more per start (bench/startup.py breakdown),
and give the same result every time for the same weights, layers and versions. So the float32
folded network (its functional config as JSON, its weights as .npz) and the `scales` are kept
in cache.cache_dir()/networks/, keyed by the weights file's digest, the model, the layers,
dreamvid's, TensorFlow's and Keras's versions. Registry models only (a user's .keras file may
hold custom layers); only built-in Keras layer classes are rebuilt from a cached config (no
Lambda: a config is data, never code), and the .npz is read with allow_pickle=False. Anything
that does not check out is rebuilt from the weights and written again.
DREAMVID_NETWORK_CACHE=0 turns it off (the benchmark does, to measure what it saves).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from .. import __version__, cache
from . import plain

log = logging.getLogger("dreamvid")

FORMAT = 2  # 2: weights by layer name (plain.py runs the network without Keras layers)
SAFE_LAYERS = {"InputLayer", "Conv2D", "DepthwiseConv2D", "Identity", "ReLU", "Activation", "Add", "Concatenate",
               "MaxPooling2D", "AveragePooling2D", "ZeroPadding2D", "BatchNormalization", "Multiply", "Rescaling"}


def enabled() -> bool:
    return os.environ.get("DREAMVID_NETWORK_CACHE", "1") != "0"


def key(spec, layers, weights_file: Path) -> dict:
    import keras
    import tensorflow as tf

    return {"format": FORMAT, "model": spec.name, "layers": [[n, w] for n, w in layers],
            "weights": cache.file_digest(weights_file), "dreamvid": __version__, "tensorflow": tf.__version__,
            "keras": keras.__version__}


def _paths(k: dict) -> tuple[Path, Path]:
    stem = cache.cache_dir() / "networks" / f"{k['model']}-{cache.key_digest(k)}"
    return stem.with_suffix(".json"), stem.with_suffix(".npz")


def read(k: dict, plain_ok: bool = False):
    """(network, scales) from the cache, or None when absent or not valid. With `plain_ok`, the
    network is a plain.PlainNetwork where its layers allow (no Keras layers built, plain.py),
    else the rebuilt keras.Model."""
    meta_path, npz_path = _paths(k)
    meta = cache.read_json(meta_path)
    if meta is None:
        return None
    try:
        config, scales = meta["config"], tuple(float(s) for s in meta["scales"])
        if meta["key"] != k or len(scales) != len(k["layers"]) or not all(s > 0 for s in scales):
            raise ValueError("stale or inconsistent entry")
        classes = {layer["class_name"] for layer in config["layers"]}
        if not classes <= SAFE_LAYERS or any(layer.get("module") != "keras.layers" for layer in config["layers"]):
            raise ValueError(f"layer classes outside the built-in set: {sorted(classes - SAFE_LAYERS)}")
        owners = [(str(name), int(n)) for name, n in meta["weights"]]
        with np.load(npz_path, allow_pickle=False) as z:
            arrays = iter([z[f"w{i}"] for i in range(sum(n for _, n in owners))])
        weights = {name: [next(arrays) for _ in range(n)] for name, n in owners}
        network = plain.build(config, weights) if plain_ok else None
        if network is None:
            import keras

            network = keras.Model.from_config(config)
            for layer in network.layers:  # raises on a count or shape mismatch
                layer.set_weights(weights.pop(layer.name, []))
            if weights:
                raise ValueError(f"weights of layers the network lacks: {sorted(weights)[:5]}")
    except Exception as e:  # noqa: BLE001 - any damage means: rebuild from the weights
        log.info("rebuilding %s: its cached network is not usable (%s)", k["model"], str(e)[:200])
        return None
    return network, scales


def write(k: dict, network, scales) -> None:
    meta_path, npz_path = _paths(k)
    owners = [(layer.name, layer.get_weights()) for layer in network.layers if layer.weights]
    arrays = {f"w{i}": np.asarray(w) for i, w in enumerate(w for _, ws in owners for w in ws)}
    if cache.write_atomic(npz_path, lambda f: np.savez(f, **arrays)):
        cache.write_json(meta_path, {"key": k, "scales": list(scales), "weights": [[n, len(ws)] for n, ws in owners],
                                     "config": json.loads(json.dumps(network.get_config()))})
