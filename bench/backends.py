"""Item 10: the two backends side by side, per bundled network, in one run (issue 22).

For each bundled network at its default layer, one float32 step at 512x384 (one tile) on
TensorFlow (the step as it was before there was a choice: "today's") and on PyTorch, the
repetitions interleaved; then what `--backend auto` chooses for that network here, which must
be the faster one. The same comparison runs again in a child process whose oneDNN and ATen
kernels are capped at AVX2 (ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2): the
instructions of an AVX2 CPU such as the EPYCs these machines are sometimes, on today's CPU
(its caches and clocks stay its own, so it is a proxy, labelled so).

Run alone: `python -m bench.backends [--quick]` prints the JSON.
"""
from __future__ import annotations

import json
import sys
import tempfile

import numpy as np

from . import common

SIZE = (384, 512)  # (h, w): one tile, as dreamvid's step sees a 512-px frame
QUICK_SIZE = (192, 256)  # --quick: the default model only, at this size, on this CPU only
NETWORKS = (("efficientnet_lite0", "block4c_out", 10), ("vgg16_hed", "block4_conv3", 4))  # (model, layer, reps)
AVX2_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
TARGETS = {"vgg16_hed": 1.4, "efficientnet_lite0": 1.0}  # auto's step vs TensorFlow's, at least (issue 22, AVX2)


def step_call(backend: str, model: str, layer: str, size=SIZE):
    """A callable doing one float32 step of `backend` (waits for its loss) on a fixed image."""
    from dreamvid import backends
    from dreamvid.dream import Dreamer, tile_edges

    d = Dreamer(backends.get(backend).load(model, ((layer, 1.0),), None, "float32"))
    h, w = size
    x = np.random.default_rng(0).uniform(-1, 1, (h, w, 3)).astype(np.float32)
    ascent = d.step.start(x, step=0.01, ys=tile_edges(h, 10_000), xs=tile_edges(w, 10_000), mask=None,
                          smooth=0.0, gains=None)
    return lambda: float(ascent((5, -9), 1))


def compare(quick: bool = False) -> dict:
    """The side-by-side rows of this process (its CPU as it is, or capped by the environment)."""
    from dreamvid import backends
    from dreamvid.dream import auto
    from dreamvid.settings import DEFAULT_MODEL

    names = backends.available()
    size = QUICK_SIZE if quick else SIZE
    rows = []
    for model, layer, reps in NETWORKS:
        if quick and model != DEFAULT_MODEL:
            continue
        times = common.interleaved({b: step_call(b, model, layer, size) for b in names},
                                   2 if quick else reps)
        med = {b: common.median(v) for b, v in times.items()}
        row = {"model": model, "layer": layer, "size": f"{size[1]}x{size[0]}",
               "seconds_per_step": {b: round(v, 4) for b, v in med.items()}, "reps": len(times[names[0]])}
        if "torch" in med and "tensorflow" in med:
            row["torch_speedup"] = round(med["tensorflow"] / med["torch"], 2)
            chosen = auto.choose(model, ((layer, 1.0),), None, precision="float32", size=size)
            row["auto"] = {"backend": chosen.backend, "reason": chosen.reason}
            row["auto_vs_today"] = round(med["tensorflow"] / med[chosen.backend], 2)
            row["target"] = TARGETS.get(model)
        rows.append(row)
    return {"rows": rows, "torch_threads": _torch_threads(), "load": round(common.load_average(), 2)}


def _torch_threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:
        return None


def measure(quick: bool = False) -> dict:
    """This CPU as it is (in this process), and capped at AVX2 (a child process)."""
    from dreamvid import backends

    if not backends.installed("torch"):
        return {"skipped": "PyTorch is not installed (pip install 'dreamvid[torch]')"}
    out = {"native": compare(quick)}
    if quick:
        return out  # the AVX2 proxy is for the full run
    code = f"import json; from bench import backends; print(json.dumps(backends.compare({quick!r})))"
    with tempfile.TemporaryDirectory() as cache:  # auto's answers for the capped CPU are its own
        child = common.run_child(code, env={**AVX2_ENV, "DREAMVID_CACHE_DIR": cache})
    out["avx2"] = {**child, "emulated": "oneDNN and ATen capped at AVX2 on this CPU"}
    return out


if __name__ == "__main__":
    print(json.dumps(measure("--quick" in sys.argv), indent=1))
