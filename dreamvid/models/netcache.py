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
    """The entry's key. Versions are read from the installed packages' metadata, so the key
    costs no framework import (the torch backend reads the cache without TensorFlow); the
    Keras backend that built the entry is part of it (its calibration ran on that framework)."""
    from . import keras_backend

    return {"format": FORMAT, "model": spec.name, "layers": [[n, w] for n, w in layers],
            "weights": cache.file_digest(weights_file), "dreamvid": __version__,
            "tensorflow": _version("tensorflow"), "keras": _version("keras"), "keras_backend": keras_backend()}


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _paths(k: dict) -> tuple[Path, Path]:
    stem = cache.cache_dir() / "networks" / f"{k['model']}-{cache.key_digest(k)}"
    return stem.with_suffix(".json"), stem.with_suffix(".npz")


def entry(k: dict) -> tuple[dict, dict[str, list[np.ndarray]], tuple[float, ...]] | None:
    """(config, weights by layer name, scales) of a valid entry, or None (absent or damaged:
    rebuild). The config holds only built-in layer classes; the arrays are read without pickle."""
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
    except Exception as e:  # noqa: BLE001 - any damage means: rebuild from the weights
        log.info("rebuilding %s: its cached network is not usable (%s)", k["model"], str(e)[:200])
        return None
    return config, weights, scales


def read(k: dict, plain_ok: bool = False):
    """(network, scales) from the cache for the TensorFlow backend, or None when absent or not
    valid. With `plain_ok`, the network is a plain.PlainNetwork where its layers allow (no
    Keras layers built, plain.py), else the rebuilt keras.Model."""
    found = entry(k)
    if found is None:
        return None
    config, weights, scales = found
    try:
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
    """Keep a folded network (a keras.Model, or a plain.PlainNetwork read earlier) and its scales."""
    config, weights = arrays_of(network)
    owners = [(name, ws) for name, ws in weights.items()]
    meta_path, npz_path = _paths(k)
    arrays = {f"w{i}": np.asarray(w) for i, w in enumerate(w for _, ws in owners for w in ws)}
    if cache.write_atomic(npz_path, lambda f: np.savez(f, **arrays)):
        cache.write_json(meta_path, {"key": k, "scales": list(scales), "weights": [[n, len(ws)] for n, ws in owners],
                                     "config": config})


def arrays_of(network) -> tuple[dict, dict[str, list[np.ndarray]]]:
    """(config as JSON data, {layer name: [arrays]} in layer order) of a functional keras.Model
    or a plain.PlainNetwork."""
    if isinstance(network, plain.PlainNetwork):
        return network.config, {name: list(ws) for name, ws in network.arrays.items()}
    weights = {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in network.layers if layer.weights}
    return json.loads(json.dumps(network.get_config())), weights
