"""A tiny random-weight convolutional network, saved as .keras, for fast dream mechanics tests.

Real weights matter for every visual check; these tests only exercise the machinery
(octaves, tiling, jitter, max_loss, resume), for which a random network is enough.
"""
from pathlib import Path

LAYERS = ("conv1", "conv2", "conv3")


def build(seed: int = 0):
    from dreamvid.models import setup_keras

    # Keras on TensorFlow, or on PyTorch where TensorFlow is not installed. The seeded draw
    # depends on the framework: the torch-only environment dreams on other random weights.
    keras = setup_keras()
    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(x)
    return keras.Model(inp, x, name="tiny")


def save(directory: Path, seed: int = 0) -> Path:
    path = Path(directory) / f"tiny{seed}.keras"
    if not path.exists():
        build(seed).save(path)
    return path
