"""Item "objectives" (issue 14): what a channel, a class, a guide or a mask adds to a step.

Each objective's compiled step (the TensorFlow backend's Step.run, one 512x384 tile) is timed interleaved
with the plain objective on the same layer depth, in one process: a channel of block6d_out
against block6d_out, a class (logits/K: the classifier as a 1x1 convolution on top_act)
against top_act, the guided objective and a mask against the plain block4c_out step.
Issue 14's target: a class or channel step within 1.1x of the layer's.
"""
from __future__ import annotations

import numpy as np

from . import common

SIZE = (384, 512)
TARGET = 1.1
# (label, entries, baseline entries, objective kind)
CASES = (
    ("channel block6d_out/17", (("block6d_out/17", 1.0),), (("block6d_out", 1.0),), None),
    ("class logits/207 (on top_act)", (("logits/207", 1.0),), (("top_act", 1.0),), None),
    ("guide (block4c_out)", (("block4c_out", 1.0),), (("block4c_out", 1.0),), "guide"),
    ("mask (block4c_out)", (("block4c_out", 1.0),), (("block4c_out", 1.0),), "mask"),
)
QUICK_CASES = 2  # --quick: the cases with a target (a channel, a class); each case builds and traces two networks


def step_call(layers, kind=None, size=SIZE):
    import tensorflow as tf

    from dreamvid import dream, models

    objective = None
    if kind == "guide":
        rng = np.random.default_rng(1)
        objective = dream.MeanSquares(guide=dream.Guide.of(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)))
    d = dream.Dreamer(models.load("efficientnet_lite0", layers, None, "float32"), objective)
    h, w = size
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (h, w, 3)).astype(np.float32))
    m = np.ones((h, w, 1), np.float32)
    if kind == "mask":
        m[:, : w // 2] = 0.0
    args = (x, tf.constant([5, -9], tf.int32), tf.constant(0.01, tf.float32),
            tf.constant([0, h], tf.int32), tf.constant([0, w], tf.int32), tf.constant(m), tf.constant(0.0))

    def call():
        loss, out = d.step.run(*args)
        return float(loss), out.shape

    return call


def measure(quick: bool = False) -> dict:
    reps = 2 if quick else 10
    rows = []
    for label, layers, base, kind in CASES[:QUICK_CASES] if quick else CASES:
        times = common.interleaved({"objective": step_call(layers, kind), "layer": step_call(base)}, reps)
        t_obj, t_base = common.median(times["objective"]), common.median(times["layer"])
        ratio = t_obj / t_base
        rows.append({"objective": label, "seconds_per_step": round(t_obj, 4), "baseline_seconds": round(t_base, 4),
                     "ratio": round(ratio, 3), "target": TARGET if kind is None else None,
                     "hit": ratio <= TARGET if kind is None else None, "reps": reps})
    return {"size": f"{SIZE[1]}x{SIZE[0]}", "rows": rows}


if __name__ == "__main__":
    import json

    from dreamvid.models import setup_tensorflow

    setup_tensorflow()
    print(json.dumps(measure(quick=True), indent=1))
