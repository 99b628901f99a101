"""Item 5: time to `dreamvid --help`, and proof that TensorFlow is not imported for it.

Wall time of the installed console script (a fresh process each time, as a user runs it),
median of a few runs; then the same command in-process with a check of sys.modules.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import common

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


def measure(quick: bool = False) -> dict:
    cmd = command()
    times = []
    for _ in range(3 if quick else 7):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=common.ROOT)
        times.append(time.perf_counter() - t)
    imported = common.run_child(CHECK.replace("HEAVY", json.dumps(list(HEAVY))))
    seconds = common.median(times)
    return {"command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)),
            "seconds": round(seconds, 3), "imported": imported, "target_s": TARGET_S,
            "hit": seconds < TARGET_S and not imported.get("tensorflow") and not imported.get("keras")}
