"""What this machine gives dreamvid: the first thing to paste into a bug report.

`report()` gathers, without dreaming anything and without touching the network:
dreamvid and Python versions, the CPU and its vector extensions (AVX2, AVX-512, AVX512-BF16,
AMX: what decides whether `--precision mixed` can pay off on a CPU: machine.py), each
backend's version and devices (TensorFlow: oneDNN, its GPUs; PyTorch: CUDA or MPS), what
`--backend auto` and `--precision auto` chose for the default model, where Keras caches model
weights and what is there, the bundled weights, the ffmpeg in use, and which optional extras
are installed.
"""
from __future__ import annotations

import importlib.util
import platform
import sys
from typing import Any

from . import __version__, backends, machine

EXTRAS = {"torch": ("torch",), "ray": ("ray",), "web": ("fastapi", "uvicorn"), "test": ("pytest", "hypothesis")}


def cpu() -> dict[str, Any]:
    """Model name, cores and the vector extensions that matter here (machine.cpu)."""
    return machine.cpu()


def tensorflow() -> dict[str, Any]:
    """TensorFlow's version, oneDNN, and the GPUs it sees with their memory."""
    from .models import setup_tensorflow

    if not backends.installed("tensorflow"):
        return {"error": f"not installed ({backends.MODULES['tensorflow'][2]})"}
    try:
        tf = setup_tensorflow()
    except Exception as e:  # noqa: BLE001 - a broken install is exactly what doctor reports
        return {"error": f"{type(e).__name__}: {e}".splitlines()[0]}
    out: dict[str, Any] = {"version": tf.__version__, "onednn": _onednn(tf),
                           "cuda_build": tf.test.is_built_with_cuda(), "gpus": []}
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        out["gpus"].append({"name": details.get("device_name", gpu.name),
                            "compute_capability": details.get("compute_capability")})
    return out


def torch() -> dict[str, Any]:
    """PyTorch's version, the CUDA it was built with, and the device the torch backend uses."""
    if not backends.installed("torch"):
        return {"error": f"not installed (the torch backend: {backends.MODULES['torch'][2]})"}
    try:
        from .backends import torch as tb

        t = tb._torch()  # as the backend imports it (its OpenMP settings first)
        b = backends.get("torch")
        return {"version": t.__version__, "cuda_build": t.version.cuda, "device": str(tb.device()), "gpu": b.gpu(),
                "threads": t.get_num_threads()}
    except Exception as e:  # noqa: BLE001 - a broken install is exactly what doctor reports
        return {"error": f"{type(e).__name__}: {e}".splitlines()[0]}


def _onednn(tf) -> bool | None:
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except Exception:  # noqa: BLE001 - private API; absent in some builds
        return None


def model_cache() -> dict[str, Any]:
    """Where downloaded weights go, what is there, and whether the bundled ones are installed."""
    from . import models
    from .models import efficientnet_lite, vgg_hed

    folder = models.keras_cache_dir()
    cached = sorted(p.name for p in folder.glob("*.h5")) if folder.is_dir() else []
    return {"keras_cache": str(folder), "cached_files": cached,
            "downloadable_ready": [n for n, s in models.MODELS.items() if s.source == "keras" and models.is_cached(s)],
            "bundled": {"efficientnet_lite0": str(efficientnet_lite.bundled_weights_path() or "missing"),
                        "vgg16_hed": str(vgg_hed.bundled_weights_path() or "missing")}}


def ffmpeg() -> dict[str, Any]:
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        return {"path": exe, "version": imageio_ffmpeg.get_ffmpeg_version()}
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}".splitlines()[0]}


def extras() -> dict[str, bool]:
    return {name: all(importlib.util.find_spec(m) is not None for m in mods) for name, mods in EXTRAS.items()}


def auto() -> dict[str, Any]:
    """What `--backend auto` and `--precision auto` chose for the default model here (from the
    cache; nothing is timed)."""
    from .dream import auto as chooser
    from .settings import DEFAULT_MODEL

    try:
        c = chooser.cached_choice(DEFAULT_MODEL)
    except Exception as e:  # noqa: BLE001 - a broken framework is reported by its own line already
        return {"model": DEFAULT_MODEL, "error": f"{type(e).__name__}: {e}".splitlines()[0]}
    return {"model": DEFAULT_MODEL,
            **(c.as_dict() if c else {"backend": None, "precision": None, "reason": "not measured yet"})}


def report() -> dict[str, Any]:
    """Everything above, as one JSON-able dict."""
    return {"dreamvid": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
            "cpu": cpu(), "tensorflow": tensorflow(), "torch": torch(), "auto": auto(), "models": model_cache(),
            "ffmpeg": ffmpeg(), "extras": extras()}
