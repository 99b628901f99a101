"""The backbone registry, the torch-free .pth reader, and the bundled ImageNet weights."""
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# ---- hostile tensor headers: every extent is checked before numpy's as_strided trusts it -----

class _Global:
    """A global written by name (a GLOBAL opcode), so no torch is needed to write one."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name


class _StorageRef:
    def __init__(self, key: str, dtype: str, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel


class _TensorRef:
    """What torch.save writes for a tensor: _rebuild_tensor_v2(storage, offset, size, stride, ...)."""

    def __init__(self, storage: _StorageRef, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


class _TorchishPickler(pickle._Pickler):  # the pure-Python pickler, whose save() can be extended
    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            return ("storage", _Global("torch", obj.dtype), obj.key, "cpu", obj.numel)
        return None

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        elif isinstance(obj, _TensorRef):
            self.save(_Global("torch._utils", "_rebuild_tensor_v2"))
            self.save((obj.storage, obj.offset, obj.size, obj.stride, False, {}))
            self.write(pickle.REDUCE)
        else:
            super().save(obj, save_persistent_id)


def _torch_pickle(obj) -> bytes:
    buf = io.BytesIO()
    _TorchishPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def write_pth(path: Path, tensors: dict, storages: dict[str, np.ndarray], fmt: str,
              claimed: dict[str, int] | None = None) -> Path:
    """A .pth in torch's legacy stream or zip format. tensors: {name: _TensorRef};
    storages: {key: 1-D array}; claimed: element counts the legacy stream states (default: true ones)."""
    import zipfile

    if fmt == "zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", _torch_pickle(tensors))
            for key, data in storages.items():
                z.writestr(f"archive/data/{key}", data.tobytes())
        return path
    buf = io.BytesIO()
    for obj in (pth.LEGACY_MAGIC, 1001, {"protocol_version": 1001}):
        pickle.dump(obj, buf)
    buf.write(_torch_pickle(tensors))
    pickle.dump(list(storages), buf)
    for key, data in storages.items():
        buf.write(np.int64((claimed or {}).get(key, data.size)).astype("<i8").tobytes())
        buf.write(data.tobytes())
    path.write_bytes(buf.getvalue())
    return path


def test_a_well_formed_tensor_round_trips_in_both_formats(tmp_path):
    data = np.arange(24, dtype=np.float32)
    st = _StorageRef("0", "FloatStorage", 24)
    tensors = {"w": _TensorRef(st, 2, (2, 3), (6, 2)), "b": _TensorRef(st, 0, (4,), (1,)),
               "s": _TensorRef(st, 23, (), ()), "e": _TensorRef(st, 0, (0, 1280), (1280, 1))}
    for fmt in ("legacy", "zip"):
        sd = pth.load_state_dict(write_pth(tmp_path / f"ok_{fmt}.pth", tensors, {"0": data}, fmt))
        np.testing.assert_array_equal(sd["w"], [[2, 4, 6], [8, 10, 12]])
        np.testing.assert_array_equal(sd["b"], [0, 1, 2, 3])
        assert sd["s"].shape == () and sd["s"] == 23 and sd["e"].shape == (0, 1280)


def _expected(data: np.ndarray, offset, size, stride) -> np.ndarray | None:
    """The tensor torch would rebuild, gathered element by element; None if the header is invalid."""
    def ok(v):
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < pth.MAX_DIM

    if not (ok(offset) and isinstance(size, tuple) and isinstance(stride, tuple) and all(map(ok, size))
            and all(map(ok, stride)) and len(size) == len(stride) <= pth.MAX_NDIM):
        return None
    numel = int(np.prod(size, dtype=object))
    if numel == 0:
        return np.zeros(size, data.dtype)
    if numel > data.size or offset + sum((n - 1) * s for n, s in zip(size, stride)) >= data.size:
        return None
    return np.array([data[offset + sum(i * s for i, s in zip(idx, stride))] for idx in np.ndindex(*size)],
                    data.dtype).reshape(size)


_dim = st.one_of(st.integers(-3, 40), st.sampled_from([2 ** 31, 2 ** 48, 2 ** 62, 2 ** 64, -(2 ** 63)]))
_dims = st.one_of(st.lists(_dim, max_size=5).map(tuple), st.lists(st.integers(0, 2), min_size=15, max_size=70).map(tuple),
                  st.sampled_from([None, "3", (1.5,), (True,), [2]]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(["legacy", "zip"]), n=st.integers(0, 40), offset=st.one_of(_dim, st.just(None)),
       size=_dims, stride=_dims, dtype=st.sampled_from(["FloatStorage", "HalfStorage", "LongStorage", "ByteStorage"]))
def test_hostile_tensor_headers_are_refused_naming_the_tensor_never_read_out_of_bounds(
        tmp_path, fmt, n, offset, size, stride, dtype):
    """Runs in-process on purpose: an out-of-bounds as_strided would segfault pytest itself."""
    data = (np.arange(n) % 100).astype(pth._DTYPES[dtype])
    tensors = {"features.0.weight": _TensorRef(_StorageRef("k", dtype, n), offset, size, stride)}
    path = write_pth(tmp_path / f"h_{fmt}.pth", tensors, {"k": data}, fmt)
    want = _expected(data, offset, size, stride)
    if want is None:
        with pytest.raises(ModelError, match="tensor 'features.0.weight'"):
            pth.load_state_dict(path)
    else:
        got = pth.load_state_dict(path)["features.0.weight"]
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(claimed=st.one_of(st.integers(-2, 30), st.sampled_from([2 ** 40, 2 ** 62, -(2 ** 63)])),
       dtype=st.sampled_from(["FloatStorage", "DoubleStorage", "NoSuchStorage", "os.system"]))
def test_lying_storage_sizes_and_unknown_storage_types_are_refused(tmp_path, claimed, dtype):
    """A legacy stream states each storage's element count; a wrong one must not read or allocate blindly."""
    real = "FloatStorage" if dtype not in pth._DTYPES else dtype
    data = np.arange(6, dtype=pth._DTYPES[real])
    tensors = {"w": _TensorRef(_StorageRef("k", dtype, 6), 0, (6,), (1,))}
    path = write_pth(tmp_path / "lie.pth", tensors, {"k": data}, "legacy", claimed={"k": claimed})
    if dtype == real and claimed == 6:
        np.testing.assert_array_equal(pth.load_state_dict(path)["w"], data)
    else:  # an unknown storage type is a global the unpickler refuses
        with pytest.raises(ModelError if dtype == real else pickle.UnpicklingError):
            pth.load_state_dict(path)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(["legacy", "zip"]), flips=st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(1, 255)),
                                                               min_size=1, max_size=4))
def test_a_damaged_pth_fails_cleanly(tmp_path, fmt, flips):
    """Random byte damage anywhere: an exception (which --weights turns into a ModelError) or a result, no crash."""
    data = np.arange(12, dtype=np.float32)
    st_ = _StorageRef("0", "FloatStorage", 12)
    path = write_pth(tmp_path / f"d_{fmt}.pth", {"a": _TensorRef(st_, 0, (3, 4), (4, 1)),
                                                  "b": _TensorRef(st_, 1, (2, 2), (5, 1))}, {"0": data}, fmt)
    blob = bytearray(path.read_bytes())
    for where, xor in flips:
        blob[where % len(blob)] ^= xor
    path.write_bytes(bytes(blob))
    try:
        sd = pth.load_state_dict(path)
    except Exception:  # noqa: BLE001 - any clean failure is fine; a segfault would end the test run
        return
    for value in sd.values() if isinstance(sd, dict) else ():
        if isinstance(value, np.ndarray):
            assert value.size <= 12


def test_a_hostile_weights_file_is_one_model_error_line(tmp_path, photo):
    from .clitools import one_line_error, run

    data = np.arange(4, dtype=np.float32)
    bad = write_pth(tmp_path / "bad.pth", {"_conv_stem.weight": _TensorRef(_StorageRef("0", "FloatStorage", 4), 0,
                                                                           (32, 3, 3, 3), (27, 9, 3, 1))},
                    {"0": data}, "zip")
    r = run("image", photo, "-o", tmp_path / "o.png", "--weights", bad)
    one_line_error(r, 2, "bad.pth: tensor '_conv_stem.weight'", "does not fit in its storage of 4 elements")


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


@pytest.mark.parametrize("name", list(models.MODELS))
def test_the_layer_table_is_what_the_network_builds(name):
    """models/layers.json (layertable.py) holds every registered model's dreamable layers and
    their shapes, read without TensorFlow; here they are compared with the network built by
    the installed Keras (random weights: nothing downloads)."""
    from dreamvid.models import layertable

    spec = models.get_spec(name)
    assert layertable.lookup(name) == models._layers_of(spec, models._listing_model(spec))


def test_a_model_missing_from_the_table_is_built_instead(monkeypatch):
    from dreamvid.models import layertable

    monkeypatch.setattr(layertable, "_table", lambda: {})
    listed = models.dreamable_layers("efficientnet_lite0")
    assert ("block5c_out", (14, 14, 112)) in listed


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
    assert f"then copy {tmp_path}/models to this machine" in e.value.hint  # $KERAS_HOME/models


def test_the_inception_preset_offline_says_to_copy_the_keras_cache(tmp_path, monkeypatch):
    """The README's way out, word for word: fetch where there is internet, then copy ~/.keras/models."""
    from keras.src.utils import file_utils

    from dreamvid import presets

    def no_network(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: [Errno -3] no network")

    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(file_utils, "get_file", no_network)
    models.load_trunk.cache_clear()
    s = presets.resolve("inception").dream
    with pytest.raises(ModelError) as e:
        models.load_trunk(s.model)
    assert "could not download the weights of inception_v3" in e.value.message
    assert "dreamvid models fetch inception_v3` where there is internet, then copy ~/.keras/models" in e.value.hint
    assert "--weights FILE" in e.value.hint
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "then copy `~/.keras/models`" in readme  # what the README says


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
