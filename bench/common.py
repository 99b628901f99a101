"""Timing side by side, child processes, and the machine's own facts.

These machines are shared and noisy, so every comparison is a ratio of medians measured in
the same run with the repetitions interleaved (A B C A B C ...): a burst of load from
another process then slows every contender alike instead of one of them.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MATMUL_N = 2048  # square float32 matmul that gives the machine's practical FLOP ceiling
SETTLE_S = 0.3  # s of pause after each timed call (see interleaved)


def interleaved(fns: dict[str, Callable[[], object]], reps: int, warmup: int = 1,
                settle: float = SETTLE_S) -> dict[str, list[float]]:
    """Seconds per call of each fn, repetitions interleaved; `warmup` untimed rounds first.

    The order rotates every round (A B C, B C A, C A B, ...) so that no contender always runs
    right after the same other one, and each call is followed by an untimed `settle` pause:
    OpenBLAS's threads spin for a while after a numpy matmul and would slow whatever came next.
    """
    names = list(fns)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(reps):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t)
            time.sleep(settle)
    return times


def median(values) -> float:
    return float(np.median(values))


def matmul_call(n: int = MATMUL_N) -> tuple[Callable[[], object], float]:
    """(a callable doing one n x n float32 matmul with numpy, its FLOP count)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), np.float32), rng.random((n, n), np.float32)
    return (lambda: a @ b), 2.0 * n ** 3


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its children that have ended: the
    work a run did, whatever else the shared machine ran meanwhile (its wall time is not)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def load_average() -> float:
    return os.getloadavg()[0]


class LoadSampler:
    """The 1-minute load average at the start and end of each item (the noise it ran in)."""

    def __init__(self):
        self.samples: list[float] = []

    def sample(self) -> float:
        value = load_average()
        self.samples.append(value)
        return value

    def summary(self) -> dict:
        s = self.samples or [load_average()]
        return {"min": round(min(s), 2), "max": round(max(s), 2), "mean": round(float(np.mean(s)), 2)}


def run_child(code: str, env: dict | None = None, timeout: float = 900, cwd: Path = ROOT) -> dict:
    """Run `code` in a fresh Python in `cwd`; it prints one JSON object as its last stdout line."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=timeout)
    if proc.returncode != 0:
        where = "" if cwd == ROOT else f" in {cwd}"
        raise RuntimeError(f"benchmark child failed ({proc.returncode}){where}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine(tensorflow: bool = True) -> dict:
    """What the numbers were measured on (and TensorFlow's facts, unless `tensorflow` is False:
    the GPU check on PyTorch does not import it)."""
    info = {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                info["simd"] = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile",
                                                    "amx_bf16") if f in flags)
                break
    except OSError:
        pass
    if not tensorflow:
        return info
    try:
        import tensorflow as tf
        from tensorflow.python.util import _pywrap_util_port

        info["tensorflow"] = tf.__version__
        info["onednn"] = bool(_pywrap_util_port.IsMklEnabled())
        info["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
        if info["gpus"]:
            info["gpu_name"] = tf.config.experimental.get_device_details(
                tf.config.list_physical_devices("GPU")[0]).get("device_name", "GPU")
    except Exception as e:  # the report says what it could not find out; the benchmark goes on
        info["tensorflow_error"] = str(e)[:200]
    return info


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
