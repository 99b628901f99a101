"""Item 5: time to `dreamvid --help`, and proof that TensorFlow is not imported for it; where a
fresh process's time goes before the first step; the whole `classic` command against a script;
a newcomer's first commands (bench/newcomer.py: each answers without TensorFlow);
with `python -m bench --only startup --against DIR`, both of those for this tree and for the
dreamvid checkout in DIR, alternated in the same run (a before/after table in docs/bench.md).

Wall time of the installed console script (a fresh process each time, as a user runs it),
median of a few runs; then the same command in-process with a check of sys.modules.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import common, newcomer

TARGET_S = 1.0
HEAVY = ("tensorflow", "keras", "cv2", "rich.progress")  # modules --help must not need (rich itself is fine)

CHECK = """
import json, sys
sys.argv = ["dreamvid", "--help"]
import io, contextlib
from dreamvid.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main()
    except SystemExit:
        pass
print(json.dumps({m: m in sys.modules for m in HEAVY}))
"""


def command() -> list[str]:
    script = Path(sys.executable).with_name("dreamvid")
    if script.exists():
        return [str(script), "--help"]
    found = shutil.which("dreamvid")
    return [found, "--help"] if found else [sys.executable, "-m", "dreamvid", "--help"]


def measure(quick: bool = False, against: str | None = None) -> dict:
    cmd = command()
    times = []
    for _ in range(2 if quick else 7):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=common.ROOT)
        times.append(time.perf_counter() - t)
    imported = common.run_child(CHECK.replace("HEAVY", json.dumps(list(HEAVY))))
    seconds = common.median(times)
    return {"command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)),
            "seconds": round(seconds, 3), "imported": imported, "target_s": TARGET_S,
            "hit": seconds < TARGET_S and not imported.get("tensorflow") and not imported.get("keras"),
            # --quick: one round each, the cache warm only, the whole command at 256 px with its
            # warm-up left to the breakdown's (the same network cache)
            "breakdown": breakdown(1, cold=False) if quick else breakdown(3),
            "whole_process": whole_process(1, warm=False, size=256) if quick else whole_process(3),
            "newcomer": newcomer.measure(quick),
            **({"against": before_after(Path(against), 2 if quick else 4)} if against else {})}


# ---- issue 12: where a fresh process's time goes before the first step, and the whole command ----

BREAKDOWN = """
import json, time
t0 = time.perf_counter()
marks = {}
def mark(name):
    marks[name] = round(time.perf_counter() - t0 - sum(marks.values()), 3)
from dreamvid.models import setup_tensorflow
setup_tensorflow()
import keras
from dreamvid import dream, models, presets
mark("import")
import dataclasses
s = dataclasses.replace(presets.resolve("classic").dream, backend="tensorflow")  # the default install's path
models.load(s.model, s.layers, s.weights)
mark("network_ready")  # built, weights read, tapped, calibrated, folded (or all of it from the cache)
d = dream.get_dreamer(s)
mark("dreamer_and_precision")  # precision auto (cached after the first run) and the Dreamer
import numpy as np, tensorflow as tf
x = tf.constant(np.zeros((365, 365, 3), np.float32))
# Step.run's arguments, which every tree it runs against takes (the step's own inputs grew with issue 23)
args = (x, tf.constant([1, 1], tf.int32), tf.constant(0.01), tf.constant([0, 365]), tf.constant([0, 365]),
        tf.ones([365, 365, 1]), tf.constant(0.0))
d.step.single.get_concrete_function()  # a 365-px image is one tile; its input signature says the rest
mark("trace")
d.step.run(*args)[0].numpy()
mark("first_step")
d.step.run(*args)[0].numpy()
mark("second_step")
print(json.dumps({"marks": marks}))
"""
READY = ("network_ready", "dreamer_and_precision", "trace", "first_step")  # "model ready and traced"

# The Keras example's structure as a whole script: load the network, tap it, one plain
# tf.function retraced per octave shape, the same loss and octaves (bench/references.py).
KERAS_SCRIPT = """
import json, time, sys
t0 = time.perf_counter()
from dreamvid.models import setup_tensorflow
setup_tensorflow()
import keras, numpy as np, cv2
from dreamvid import models, presets
from dreamvid.dream import fit_max_size, to_uint8
from bench import references
s = presets.resolve("classic").dream
trunk = models.load_trunk(s.model)
spec = models.get_spec(s.model)
layers = spec.default_layers
features = keras.Model(trunk.input, [trunk.get_layer(n).output for n, _ in layers])
model = models.calibrated(models.DreamModel(s.model, layers, features, spec.preprocessing, spec.min_size))
image = fit_max_size(cv2.imread(sys.argv[1])[..., ::-1].astype(np.float32), int(sys.argv[3]))
out = references.dream(references.keras_example_step(model), image, s)
cv2.imwrite(sys.argv[2], to_uint8(out)[..., ::-1])
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def breakdown(runs: int = 3, cold: bool = True) -> dict:
    """Median seconds per phase of a fresh process, without the network cache (as before issue
    12; not if `cold` is False) and with it warm (each process of a round alternated)."""
    out = {}
    common.run_child(BREAKDOWN, env={"DREAMVID_NETWORK_CACHE": "1"})  # warm the caches (and time auto once)
    results: dict[str, list] = {"no_cache": [], "cache_warm": []} if cold else {"cache_warm": []}
    for _ in range(runs):
        for label, flag in (("no_cache", "0"), ("cache_warm", "1")) if cold else (("cache_warm", "1"),):
            results[label].append(common.run_child(BREAKDOWN, env={"DREAMVID_NETWORK_CACHE": flag})["marks"])
    for label, marks in results.items():
        out[label] = _phases(marks)
    return {**out, "target_s": 1.0, "runs": runs}


def _phases(marks: list[dict]) -> dict:
    """Medians over runs of BREAKDOWN's marks: each phase, and model ready and traced (READY)."""
    return {"phases_s": {k: round(common.median([m[k] for m in marks]), 3) for k in marks[0]},
            "model_ready_and_traced_s": round(common.median([sum(m[k] for k in READY) for m in marks]), 3)}


def whole_process(rounds: int = 3, warm: bool = True, size: int = 512) -> dict:
    """`dreamvid image astronaut.jpg -p classic --max-size SIZE` against KERAS_SCRIPT, each a fresh
    process, alternated; wall seconds, medians. warm: run the command once first (the network
    cache and precision auto's choice), unless a run before this one did."""
    import tempfile

    image = common.ROOT / "samples" / "astronaut.jpg"
    cli = [sys.executable, "-m", "dreamvid", "-q", "image", str(image), "-p", "classic", "--max-size", str(size)]
    times: dict[str, list[float]] = {"dreamvid": [], "keras_example_script": []}
    env = {**os.environ, "DREAMVID_NETWORK_CACHE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        if warm:
            subprocess.run([*cli, "-o", f"{tmp}/d.png"], check=True, capture_output=True, cwd=common.ROOT, env=env)
        for _ in range(rounds):
            t = time.perf_counter()
            subprocess.run([*cli, "-o", f"{tmp}/d.png"], check=True, capture_output=True, cwd=common.ROOT, env=env)
            times["dreamvid"].append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", KERAS_SCRIPT, str(image), f"{tmp}/k.png", str(size)], check=True,
                           capture_output=True, cwd=common.ROOT)
            times["keras_example_script"].append(time.perf_counter() - t)
    med = {k: common.median(v) for k, v in times.items()}
    return {"seconds": {k: round(v, 2) for k, v in med.items()}, "size": size,
            "speedup": round(med["keras_example_script"] / med["dreamvid"], 2), "target": 1.3, "rounds": rounds}


# ---- before/after: this tree against another checkout, in the same run ----------------------

def _child(code: str, tree: Path) -> dict:
    """common.run_child with `tree`'s dreamvid (cwd and PYTHONPATH), network cache on."""
    return common.run_child(code, env={"PYTHONPATH": str(tree), "DREAMVID_NETWORK_CACHE": "1"}, cwd=tree)


def _wall(args: list[str], tree: Path) -> float:
    """Wall seconds of `python ARGS` run in `tree` (its dreamvid), as a user's command is timed."""
    t = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True, cwd=tree,
                   env={**os.environ, "PYTHONPATH": str(tree), "DREAMVID_NETWORK_CACHE": "1"}, timeout=900)
    return time.perf_counter() - t


def before_after(baseline: Path, rounds: int = 4) -> dict:
    """The start-up breakdown (cache warm) and the whole `image -p classic` at 512 px of this
    tree and of `baseline` (another checkout of dreamvid, e.g. `git worktree add DIR COMMIT`),
    each run a fresh process (wall time, as whole_process), the trees and the Keras-example
    script alternated; medians."""
    import tempfile

    from . import report

    trees = {"before": baseline.resolve(), "after": common.ROOT}
    image = common.ROOT / "samples" / "astronaut.jpg"
    marks: dict[str, list] = {k: [] for k in trees}
    whole: dict[str, list] = {**{k: [] for k in trees}, "keras_example_script": []}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["-m", "dreamvid", "-q", "image", str(image), "-p", "classic", "--max-size", "512", "-o", f"{tmp}/d.png"]
        keras = ["-c", KERAS_SCRIPT, str(image), f"{tmp}/k.png", "512"]
        for tree in trees.values():  # warm each tree's network cache and precision choice
            _child(BREAKDOWN, tree)
            _wall(cmd, tree)
        for _ in range(rounds):
            for label, tree in trees.items():
                marks[label].append(_child(BREAKDOWN, tree)["marks"])
                whole[label].append(_wall(cmd, tree))
            whole["keras_example_script"].append(_wall(keras, common.ROOT))
    out = {"baseline": {"path": str(baseline), "commit": report.commit_of(baseline)}, "rounds": rounds}
    for label, ms in marks.items():
        out[label] = {**_phases(ms), "whole_process_s": round(common.median(whole[label]), 2)}
    keras_s = common.median(whole["keras_example_script"])
    out["keras_example_script_s"] = round(keras_s, 2)
    for label in trees:
        out[label]["speedup_vs_keras_example"] = round(keras_s / out[label]["whole_process_s"], 2)
    return out
