"""A newcomer's first commands (issue 27), each a fresh process as a user types it: how long
each takes to answer and whether it imported TensorFlow.

None of them dreams, so none may import TensorFlow: the answers come from the CLI's own
checks, the layer table (dreamvid/models/layertable.py), the plans' checks before any work,
and the work folder's lock, taken before the network loads (render/engine.py). The start-up
item of the benchmark times them (`python -m bench --only startup`); tests/test_first_hour.py
runs the same script and asserts every answer.

    python -m bench.newcomer        # prints each command, its exit code, seconds and TF or not
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import common

TARGET_S = 2.0  # s; an answer a person waits for, about the CLI's start-up plus a check
PHOTO = "samples/chelsea.jpg"
BUSY = ["video", "samples/bunny.mp4", "-o", "busy.mp4", "--max-size", "64"]  # a render, started twice
# (what, the words after `dreamvid`, the exit code, words the answer must hold); run in a folder
# holding a copy of samples/. The last one is run while a first render of busy.mp4 is running.
FIRST = [
    ("help", ["--help"], 0, "Usage: dreamvid"),
    ("a typo in the command", ["imgae", PHOTO], 2, "Did you mean 'image'"),
    ("a forgotten -o", ["image", PHOTO, "dream.png"], 2, "did you mean `-o dream.png`"),
    ("the layers of a model", ["layers", "efficientnet_lite0"], 0, "block5c_out"),
    ("a misspelt layer", ["image", PHOTO, "-o", "dream.png", "--layer", "block5c_outt"], 2,
     "did you mean 'block5c_out'"),
    ("a channel out of range", ["image", PHOTO, "-o", "dream.png", "--layer", "block5c_out/200"], 2,
     "has 112 channels"),
    ("a misspelt class", ["image", PHOTO, "-o", "dream.png", "--class", "pugg"], 2, "did you mean 'pug'"),
    ("a second render of the same output", BUSY, 2, "another dreamvid render is using the work folder"),
]

# `dreamvid ARGS` in a fresh Python that writes, when it exits, which of TensorFlow and Keras
# it imported into the file $DREAMVID_PROBE (stdout and stderr stay the command's own).
PROBE = """
import atexit, os, sys
def _report():
    with open(os.environ["DREAMVID_PROBE"], "w") as f:
        f.write(" ".join(m for m in ("tensorflow", "keras") if m in sys.modules))
atexit.register(_report)
sys.argv = ["dreamvid", *sys.argv[1:]]
from dreamvid.cli import main
main()
"""


@dataclass(frozen=True)
class Answer:
    what: str
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    seconds: float
    imported: tuple[str, ...]  # of "tensorflow", "keras"


def run(args: list[str], folder: Path, what: str = "", env: dict | None = None, timeout: float = 300) -> Answer:
    """`dreamvid ARGS` in `folder`, a fresh process: its answer, wall time and TF imports."""
    probe = folder / f".probe-{os.getpid()}-{time.monotonic_ns()}"
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=folder,
                          env={**os.environ, **(env or {}), "DREAMVID_PROBE": str(probe), "COLUMNS": "80"},
                          timeout=timeout)
    seconds = time.perf_counter() - t
    imported = tuple(probe.read_text().split()) if probe.exists() else ("unknown",)
    probe.unlink(missing_ok=True)
    return Answer(what, tuple(args), proc.returncode, proc.stdout, proc.stderr, seconds, imported)


def start(args: list[str], folder: Path) -> subprocess.Popen:
    """`dreamvid ARGS` left running in `folder` (its output discarded)."""
    return subprocess.Popen([sys.executable, "-m", "dreamvid", *args], cwd=folder, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "DREAMVID_NETWORK_CACHE": "1"})


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Until `path` exists (the first render has locked its work folder)."""
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > end:
            raise RuntimeError(f"the first render did not lock {path} (exit code {proc.poll()})")
        time.sleep(0.02)
    time.sleep(0.1)  # the folder is made, then locked at once: leave it that instant


def stop(proc: subprocess.Popen) -> None:
    """Ctrl-C the first render and wait for it (it keeps what it finished, as a user's would)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def first_hour(folder: Path) -> list[Answer]:
    """FIRST, run in `folder` (it gets a copy of samples/); the last while BUSY runs."""
    if not (folder / "samples").is_dir():
        shutil.copytree(common.ROOT / "samples", folder / "samples")
    answers = [run(args, folder, what) for what, args, _, _ in FIRST[:-1]]
    what, args, _, _ = FIRST[-1]
    busy = start(BUSY, folder)
    try:
        wait_for(folder / "busy.mp4.dreamvid-work", busy)
        answers.append(run(args, folder, what))
    finally:
        stop(busy)
    return answers


def measure(quick: bool = False) -> dict:
    """Median seconds of each of FIRST over a few rounds, and what any of them imported."""
    runs: list[list[Answer]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(1 if quick else 3):
            runs.append(first_hour(Path(tmp)))
    rows = []
    for k, (what, args, code, words) in enumerate(FIRST):
        answers = [r[k] for r in runs]
        rows.append({"what": what, "command": "dreamvid " + " ".join(args),
                     "seconds": round(common.median([a.seconds for a in answers]), 2),
                     "imported": sorted({m for a in answers for m in a.imported}),
                     "answered": all(a.code == code and words in a.stdout + a.stderr for a in answers)})
    slowest = max(r["seconds"] for r in rows)
    return {"rows": rows, "slowest_s": slowest, "target_s": TARGET_S, "runs": len(runs),
            "hit": slowest < TARGET_S and not any(r["imported"] for r in rows) and all(r["answered"] for r in rows)}


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        for a in first_hour(Path(tmp)):
            line = (a.stdout + a.stderr).strip().splitlines()
            print(f"{a.seconds:5.2f} s  exit {a.code}  TF: {' '.join(a.imported) or 'no':10}  {a.what}: "
                  f"dreamvid {' '.join(a.args)}\n         {line[-1][:160] if line else ''}")
