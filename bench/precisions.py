"""Item 6: the step in float32 and in reduced precision (bfloat16 on a CPU, float16 on a GPU),
per network, side by side; and what `--precision auto` chooses on this machine.

The step is dreamvid's compiled step (bench/steps.py step_call) at 512x384, single tile,
the two precisions' repetitions interleaved. "dense_only" is bfloat16 for every layer but
the depthwise convolutions (per-layer mixed precision, issue 12): measured, not offered.
"""
from __future__ import annotations

import json

from . import common, steps

SIZE = steps.SIZE
# (label, registry name or "inception_v3_random", layer, reps in a full run)
MODELS = steps.MODELS


def dense_only(model, policy: str):
    """`model` with `policy` on every layer but DepthwiseConv2D (which stays float32)."""
    import dataclasses

    from dreamvid.models import graph

    net = graph.rebuild(model.features, dtype_policy=policy, skip=("DepthwiseConv2D",))
    return dataclasses.replace(model, network=net, precision=policy)


def measure(quick: bool = False) -> dict:
    from dreamvid import models
    from dreamvid.dream import auto

    reduced = "mixed_float16" if models.gpu_available() else "mixed_bfloat16"
    rows = []
    for label, name, layer, reps in steps.models_to_run(quick):
        m32 = steps.load_model(name, layer)
        m16 = steps.load_model(name, layer, precision=reduced)
        fns = {"float32": steps.step_call(m32, SIZE), reduced: steps.step_call(m16, SIZE)}
        has_depthwise = any(type(la).__name__ == "DepthwiseConv2D" for la in m16.network.layers)  # m32 may run plain
        if has_depthwise:
            fns["dense_only"] = steps.step_call(dense_only(m32, reduced), SIZE)
        times = common.interleaved(fns, max(2, reps // 3) if quick else reps)
        med = {k: common.median(v) for k, v in times.items()}
        row = {"model": label, "layer": layer, "size": f"{SIZE[1]}x{SIZE[0]}", "reduced": reduced,
               "seconds_per_step": {k: round(v, 4) for k, v in med.items()},
               "speedup_reduced": round(med["float32"] / med[reduced], 2), "reps": len(times["float32"])}
        if has_depthwise:
            row["speedup_dense_only"] = round(med["float32"] / med["dense_only"], 2)
        if name != "inception_v3_random":
            row["auto"] = auto.choose(name, ((layer, 1.0),), None, backend="tensorflow").as_dict()
        rows.append(row)
    return {"rows": rows}


if __name__ == "__main__":
    from dreamvid.models import setup_tensorflow

    setup_tensorflow()
    print(json.dumps(measure(quick=True), indent=1))
