"""Facts about the CPU dreamvid runs on: model, cores and the vector extensions that decide
which arithmetic pays off (no heavy imports: read before any framework loads).

`flags` holds only the extensions that matter here: AVX2 and FMA (every kernel's baseline),
AVX-512 (oneDNN's wider kernels), AVX512-BF16 and AMX (native bfloat16 dot products, the only
CPUs where `--precision mixed` can be faster than float32: dream/auto.py).
"""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")  # /proc/cpuinfo names
BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # native bfloat16 dot products


def cpu() -> dict[str, Any]:
    """{"model": name, "cores": count, "flags": [the CPU_FLAGS it has]} (Linux: /proc/cpuinfo;
    elsewhere the model from `platform` and no flags)."""
    info: dict[str, Any] = {"model": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                            "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            info["model"] = value.strip()
        elif key.strip() == "flags":
            have = set(value.split())
            info["flags"] = [f for f in CPU_FLAGS if f in have]
            break
    return info


def native_bf16(flags: list[str] | tuple[str, ...] | None = None) -> bool:
    """Whether the CPU (or `flags`) computes bfloat16 natively (AMX or AVX512-BF16)."""
    return bool(set(BF16_FLAGS) & set(cpu()["flags"] if flags is None else flags))
