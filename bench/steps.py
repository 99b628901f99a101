"""Item 1: seconds per gradient-ascent step at 512x384, and GFLOP/s against numpy's matmul.

The step is dreamvid's compiled step (backends/tensorflow.py, Step.run: roll, loss and input gradient,
normalise, update, clip), single tile. GFLOP per step = 2 x the convolution FLOPs of the
forward pass up to the deepest tapped layer (the input gradient costs what the forward pass
costs; weight gradients are not needed; elementwise ops are not counted), read off the
traced graph. The ceiling is a 2048x2048 float32 numpy matmul, timed interleaved with the
steps so both see the same load.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from . import common

SIZE = (384, 512)  # (h, w) px: the size of the reference measurements (shared/reference/README.md)
# (label, registry name or "inception_v3_random", layer, reps in a full run)
MODELS = (
    ("efficientnet_lite0", "efficientnet_lite0", "block4c_out", 12),
    ("vgg16_hed", "vgg16_hed", "block4_conv3", 3),
    ("inception_v3 (random weights)", "inception_v3_random", "mixed5", 6),
)
QUICK_MODELS = ("efficientnet_lite0",)  # --quick: the default model only (a vgg16_hed step alone takes 1-2 s)
# Targets of issue 5: effective GFLOP/s as a fraction of the matmul rate.
TARGET_FRACTION = {"efficientnet_lite0": 0.30, "inception_v3 (random weights)": 0.75}
# TensorFlow's own defaults on this CPU, against which dreamvid's process settings are measured.
TF_DEFAULTS_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0", "DREAMVID_REMAPPER": "1"}


def load_model(name: str, layer: str, precision: str = "float32"):
    """A DreamModel; InceptionV3 with random weights (no download) for the classic architecture."""
    from dreamvid import models

    if name == "inception_v3_random":
        import keras

        keras.utils.set_random_seed(0)
        net = keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(None, None, 3))
        return models.from_keras(net, ((layer, 1.0),), min_size=75, precision=precision)
    return models.load(name, ((layer, 1.0),), precision=precision)


def forward_gflop(model, size=SIZE) -> float:
    """Convolution GFLOP of one forward pass of model.features at `size`, from the traced graph."""
    import tensorflow as tf

    net = model.features
    fn = tf.function(lambda x: net(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, *size, 3], tf.float32))
    flops = 0
    for op in fn.graph.get_operations():
        if op.type in ("Conv2D", "DepthwiseConv2dNative"):
            k, o = op.inputs[1].shape, op.outputs[0].shape
            per_output = k[0] * k[1] * (k[2] if op.type == "Conv2D" else 1)
            flops += 2 * o[1] * o[2] * o[3] * per_output
    return flops / 1e9


def step_call(model, size=SIZE, fold: bool = True):
    """A callable doing one dreamvid step (waits for its result) on a fixed random image."""
    import tensorflow as tf

    from dreamvid.dream import Dreamer, tile_edges

    if not fold:
        model = dataclasses.replace(model, network=None)
    d = Dreamer(model)
    h, w = size
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (h, w, 3)).astype(np.float32))
    args = (x, tf.constant([5, -9], tf.int32), tf.constant(0.01, tf.float32),
            tf.constant(tile_edges(h, 10_000), tf.int32), tf.constant(tile_edges(w, 10_000), tf.int32),
            tf.ones([h, w, 1]), tf.constant(0.0))

    def call():
        loss, out = d.step.run(*args)
        return float(loss), out.shape

    return call


def measure(quick: bool = False) -> dict:
    """Item 1 in this process (dreamvid's TensorFlow settings)."""
    matmul, matmul_flop = common.matmul_call()
    rows = []
    for label, name, layer, reps in models_to_run(quick):
        model = load_model(name, layer)
        gflop = 2 * forward_gflop(model)
        fns = {"step": step_call(model), "step_unfolded": step_call(model, fold=False), "matmul": matmul}
        times = common.interleaved(fns, max(2, reps // 3) if quick else reps)
        step_s, unfolded_s, mm_s = (common.median(times[k]) for k in ("step", "step_unfolded", "matmul"))
        rate, ceiling = gflop / step_s, matmul_flop / mm_s / 1e9
        target = TARGET_FRACTION.get(label)
        rows.append({
            "model": label, "layer": layer, "size": f"{SIZE[1]}x{SIZE[0]}", "gflop_per_step": round(gflop, 2),
            "seconds_per_step": round(step_s, 4), "seconds_per_step_unfolded_bn": round(unfolded_s, 4),
            "bn_folding_speedup": round(unfolded_s / step_s, 2),
            "gflops": round(rate, 1), "matmul_gflops": round(ceiling, 1),
            "fraction_of_matmul": round(rate / ceiling, 3),
            "target_fraction": target, "hit": None if target is None else rate / ceiling >= target,
            "reps": len(times["step"]),
        })
    return {"rows": rows}


def models_to_run(quick: bool) -> tuple:
    """MODELS, or the --quick run's few of them (QUICK_MODELS)."""
    return tuple(m for m in MODELS if not quick or m[0] in QUICK_MODELS)


def op_breakdown(model, steps: int = 5, top: int = 8) -> dict:
    """Where one step's time goes: tf.profiler trace of `steps` steps, summed by op type (ms/step)."""
    import collections
    import glob
    import tempfile

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    call = step_call(model)
    for _ in range(2):
        call()
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            call()
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(open(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0], "rb").read())
    by_type: collections.Counter = collections.Counter()
    by_node: collections.Counter = collections.Counter()
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU") and not plane.name.startswith("/device:GPU"):
            continue
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                op = name.rsplit(":", 1)[-1].strip()
                # "node name:OpType" is one kernel; the enclosing function-call events are not
                if ":" in name and op not in ("Run", "Process") and not op.startswith("__inference"):
                    by_type[op] += event.duration_ps / 1e9 / steps
                    by_node[_layer_of(name)] += event.duration_ps / 1e9 / steps
    total = sum(by_type.values())
    rows = [{"op": k, "ms": round(v, 2), "share": round(v / total, 3)} for k, v in by_type.most_common(top)]
    layers = [{"layer": k, "ms": round(v, 2), "share": round(v / total, 3)} for k, v in by_node.most_common(top)]
    return {"ms_per_step_in_kernels": round(total, 1), "top_ops": rows, "top_layers": layers}


def _layer_of(node: str) -> str:
    """'.../dream_features_1/block2a_expand_conv_1/convolution/Conv2DBackpropInput:Op' ->
    'block2a_expand_conv (input gradient)': the Keras layer a kernel belongs to, and its direction."""
    path, op = node.rsplit(":", 1)
    parts = path.split("/")
    layer = next((p for p in reversed(parts) if p.endswith("_1") and p.count("_") >= 1
                  and not p.startswith(("while", "body", "dream_features"))), parts[-1])
    layer = layer[:-2] if layer.endswith("_1") else layer
    backward = "gradient_tape" in path or op.strip().endswith(("Grad", "BackpropInput"))
    return f"{layer} ({'backward' if backward else 'forward'})"


CHILD = """
import json, sys
from dreamvid.models import setup_tensorflow
setup_tensorflow()
from bench import steps, common
model = steps.load_model("efficientnet_lite0", "block4c_out")
matmul, flop = common.matmul_call()
t = common.interleaved({"folded": steps.step_call(model), "unfolded": steps.step_call(model, fold=False),
                        "matmul": matmul}, REPS)
print(json.dumps({k: common.median(v) for k, v in t.items()}))
"""


def measure_settings(quick: bool = False) -> dict:
    """EfficientNet-Lite0 step under TensorFlow's defaults vs dreamvid's settings (oneDNN on,
    remapper off), each in its own process, the processes alternated."""
    rounds, reps = (1, 4) if quick else (2, 8)
    runs = {"tensorflow_defaults": [], "dreamvid": []}
    for _ in range(rounds):
        for label, env in (("tensorflow_defaults", TF_DEFAULTS_ENV), ("dreamvid", {})):
            runs[label].append(common.run_child(CHILD.replace("REPS", str(reps)), env=env))
    out = {}
    for label, results in runs.items():
        out[label] = {k: round(float(np.median([r[k] for r in results])), 4) for k in ("folded", "unfolded", "matmul")}
    base = out["tensorflow_defaults"]["unfolded"]
    out["speedup_vs_tf_defaults_unfolded"] = round(base / out["dreamvid"]["folded"], 2)
    out["note"] = ("tensorflow_defaults: TF_ENABLE_ONEDNN_OPTS=0 (TensorFlow's default on CPUs without AVX-512) "
                   "and grappler's remapper on; dreamvid: oneDNN on, remapper off. folded: batch norms folded.")
    return out


if __name__ == "__main__":
    print(json.dumps(measure(quick=True), indent=1))
