"""The network cache (models/netcache.py): the folded network and its calibration, computed
once per weights file, read by both backends, rebuilt when damaged."""
import json

import numpy as np
import pytest

from dreamvid import backends, models

from .conftest import texture

LAYERS = (("block4c_out", 1.0),)




def test_cached_network_equals_freshly_computed(cache_dir):
    fresh = models._load.__wrapped__("efficientnet_lite0", LAYERS, None)
    assert list(cache_dir.glob("networks/*.npz"))
    cached = models._load.__wrapped__("efficientnet_lite0", LAYERS, None)
    assert cached.scales == fresh.scales
    assert cached.network is not fresh.network
    for a, b in zip(fresh.network.get_weights(), cached.network.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = (texture(64, 64, seed=2).astype(np.float32) / 127.5 - 1)[None]
    np.testing.assert_array_equal(fresh(x)[0].numpy(), cached(x)[0].numpy())
    bf16 = models._load.__wrapped__("efficientnet_lite0", LAYERS, None, "mixed_bfloat16")  # from the cache
    assert bf16.compute_dtype == "bfloat16" and bf16.scales == fresh.scales


@pytest.mark.parametrize("damage", ["json", "npz", "shape", "lambda"])
def test_damaged_network_cache_is_rebuilt(cache_dir, damage):
    fresh = models._load.__wrapped__("efficientnet_lite0", LAYERS, None)
    meta = next(cache_dir.glob("networks/*.json"))
    npz = meta.with_suffix(".npz")
    if damage == "json":
        meta.write_text("{ broken")
    elif damage == "npz":
        npz.write_bytes(b"PK\x03\x04 not a zip")
    elif damage == "shape":
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["w0"] = arrays["w0"][..., :1]
        np.savez(npz, **arrays)
    else:  # a config is data: a Lambda layer (code) is refused
        data = json.loads(meta.read_text())
        data["config"]["layers"][1]["class_name"] = "Lambda"
        meta.write_text(json.dumps(data))
    again = models._load.__wrapped__("efficientnet_lite0", LAYERS, None)
    assert again.scales == fresh.scales
    for a, b in zip(fresh.network.get_weights(), again.network.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert models.netcache.read(models._network_cache_key(models.get_spec("efficientnet_lite0"), LAYERS, None))


def test_the_key_names_no_framework_it_would_have_to_import(cache_dir):
    import subprocess
    import sys

    code = ("import sys; from dreamvid import models; from dreamvid.models import efficientnet_lite, netcache; "
            "k = netcache.key(models.get_spec('efficientnet_lite0'), (('block4c_out', 1.0),), "
            "efficientnet_lite.bundled_weights_path()); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'torch') if m in sys.modules), k['keras_backend'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "[]"


@pytest.mark.skipif(not backends.installed("torch"), reason="PyTorch is not installed")
def test_the_folded_network_is_the_same_data_for_every_backend(cache_dir):
    fresh = models.folded.__wrapped__("efficientnet_lite0", LAYERS, None)  # built (TensorFlow's Keras here), cached
    cached = models.folded.__wrapped__("efficientnet_lite0", LAYERS, None)  # read back: no Keras model
    assert cached.keras is None and cached.scales == fresh.scales and cached.config == fresh.config
    assert list(cached.weights) == list(fresh.weights)
    for name in fresh.weights:
        for a, b in zip(fresh.weights[name], cached.weights[name]):
            np.testing.assert_array_equal(a, b)
