"""The backbone registry, the torch-free .pth reader, and the bundled ImageNet weights."""
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from dreamvid import models
from dreamvid.errors import ModelError
from dreamvid.models import efficientnet_lite, pth, vgg_hed

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def centre_crop(path, size=224):
    import cv2

    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    s = min(h, w)
    crop = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


# ---- the .pth reader ----------------------------------------------------------------------

def test_bundled_pth_reads_without_torch():
    sd = pth.load_state_dict(efficientnet_lite.bundled_weights_path())
    assert len(sd) == 296
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3) and sd["_conv_stem.weight"].dtype == np.float32
    assert sd["_fc.weight"].shape == (1000, 1280)


class _Boom:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _legacy_pth(payload) -> bytes:
    buf = io.BytesIO()
    for obj in (pth.LEGACY_MAGIC, 1001, {"protocol_version": 1001}):
        pickle.dump(obj, buf)
    pickle.dump(payload, buf)
    pickle.dump([], buf)
    return buf.getvalue()


@pytest.mark.parametrize("where", ["data", "header"])
def test_hostile_pickle_is_refused_and_runs_nothing(tmp_path, where):
    marker = tmp_path / "pwned"
    if where == "data":
        blob = _legacy_pth({"weight": _Boom(marker)})
    else:
        blob = pickle.dumps(_Boom(marker)) + _legacy_pth({})
    f = tmp_path / "evil.pth"
    f.write_bytes(blob)
    with pytest.raises(pickle.UnpicklingError, match="refusing global"):
        pth.load_state_dict(f)
    assert not marker.exists()


def test_hostile_zip_pth_is_refused(tmp_path):
    import zipfile

    marker = tmp_path / "pwned"
    f = tmp_path / "evil.pth"
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": _Boom(marker)}))
    with pytest.raises(pickle.UnpicklingError):
        pth.load_state_dict(f)
    assert not marker.exists()


# ---- the bundled weights are real and correctly converted ---------------------------------

@pytest.fixture(scope="module")
def lite0_classifier():
    return efficientnet_lite.pretrained(include_top=True)


def test_lite0_architecture_matches_the_reference(lite0_classifier):
    assert lite0_classifier.count_params() == efficientnet_lite.N_PARAMS


@pytest.mark.parametrize("photo,classes", [
    ("chelsea.jpg", {281, 282, 285}),  # tabby, tiger cat, Egyptian cat
    ("coffee.jpg", {967, 968}),  # espresso, cup
])
def test_lite0_classifies_sample_photos(lite0_classifier, photo, classes):
    x = centre_crop(SAMPLES / photo).astype(np.float32) / 127.5 - 1.0
    logits = np.asarray(lite0_classifier(x[None]))[0]
    assert int(np.argmax(logits)) in classes


def test_vgg_hed_carries_the_hed_weights():
    import h5py

    m = vgg_hed.pretrained()
    with h5py.File(vgg_hed.bundled_weights_path(), "r") as f:
        expected = f["block5/layers/conv2d_2/vars/0"][()]
    np.testing.assert_array_equal(m.get_layer("block5_conv3").get_weights()[0], expected)


# ---- the registry -------------------------------------------------------------------------

def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ModelError, match="unknown model 'incepshun'.*efficientnet_lite0.*inception_v3"):
        models.get_spec("incepshun")


def test_unknown_layer_lists_the_valid_ones():
    with pytest.raises(ModelError, match="no dreamable layer 'block9z_out'.*block4c_out"):
        models.resolve_layers("efficientnet_lite0", (("block9z_out", 1.0),))


@pytest.mark.parametrize("name", list(models.MODELS))
def test_every_model_lists_its_default_layers_without_downloading(name, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    listed = dict(models.dreamable_layers(name))
    for layer, weight in models.default_layers(name):
        assert layer in listed and weight > 0
    assert not any(tmp_path.rglob("*.h5"))


def test_classic_inception_layers_are_mixed0_to_mixed10():
    assert [n for n, _ in models.dreamable_layers("inception_v3")] == [f"mixed{i}" for i in range(11)]


def test_offline_download_names_both_ways_out(tmp_path, monkeypatch):
    from keras.src.utils import file_utils

    def no_network(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: [Errno -3] no network")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(file_utils, "get_file", no_network)
    models.load_trunk.cache_clear()
    with pytest.raises(ModelError) as e:
        models.load_trunk("mobilenet_v2")
    assert "could not download" in e.value.message
    assert "dreamvid models fetch mobilenet_v2" in e.value.hint and "--weights" in e.value.hint


def test_local_weights_file_is_used_instead_of_downloading(tmp_path, monkeypatch):
    import keras

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    donor = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(None, None, 3))
    weights = tmp_path / "mine.weights.h5"
    donor.save_weights(weights)
    m = models.load("mobilenet_v2", weights=str(weights))
    acts = m(np.zeros((1, 64, 64, 3), np.float32))
    assert len(acts) == 1 and acts[0].shape[-1] == 64  # block_8_add has 64 channels
    np.testing.assert_array_equal(m.features.get_layer("Conv1").get_weights()[0],
                                  donor.get_layer("Conv1").get_weights()[0])


def test_missing_weights_file_is_a_model_error():
    with pytest.raises(ModelError, match="weights file not found"):
        models.load_trunk("vgg16", "/nonexistent/w.h5")


def test_layer_losses_are_calibrated_to_the_reference(tmp_path):
    m = models.load("efficientnet_lite0", (("block4c_out", 1.0), ("block6d_out", 1.0)))
    acts = m(models.pink_noise()[None])
    ratios = [float(np.mean(np.square(a))) / s for a, s in zip(acts, m.scales)]
    np.testing.assert_allclose(ratios, 1.0, rtol=1e-4)


def test_user_keras_model_gets_a_default_layer(tmp_path):
    from . import tinymodel

    path = str(tinymodel.save(tmp_path))
    assert models.default_layers(path) == (("conv2", 1.0),)
    with pytest.raises(ModelError, match="model file not found"):
        models.get_spec(os.path.join(tmp_path, "missing.keras"))
