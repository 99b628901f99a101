"""Peak arithmetic rates of GPUs, looked up by the device name TensorFlow reports.

The figures and their sources are in bench/peaks.toml (dense TFLOP/s from NVIDIA's datasheets
and whitepapers). A name matches the first entry whose key it contains ("NVIDIA H200 NVL"
matches "H200 NVL", not "H200"); a name that matches none has no known peak.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

UNITS = ("fp32", "tf32", "fp16")  # CUDA cores; TensorFloat-32 and float16/bfloat16 tensor cores
PEAKS: dict[str, dict] = {g["key"]: {u: g.get(u) for u in UNITS} | {"source": g["source"]}
                          for g in tomllib.loads((Path(__file__).parent / "peaks.toml").read_text())["gpu"]}


def lookup(device_name: str | None) -> dict | None:
    """{"key", "fp32", "tf32", "fp16" (TFLOP/s, None where the chip has no such unit), "source"}
    for a device name such as "NVIDIA H200", or None: peak unknown."""
    if not device_name:
        return None
    for key, figures in PEAKS.items():
        if key.lower() in device_name.lower():
            return {"key": key, **figures}
    return None


def describe(device_name: str | None) -> str:
    """One line: the peaks used for `device_name`, or "peak unknown"."""
    p = lookup(device_name)
    if p is None:
        return f"{device_name or 'this device'}: peak unknown (not in bench/peaks.toml)"
    rates = ", ".join(f"{'fp16/bf16' if u == 'fp16' else u} {p[u]:g}" for u in UNITS if p[u] is not None)
    return f"{device_name}: peak {rates} TFLOP/s dense ({p['source']})"
