"""Shared fixtures: tiny synthetic media made on the fly (nothing downloaded, nothing committed).

- `moving_frames(n, ...)`: frames of a smooth random texture translating by a known
  (dx, dy) px per frame. Content at (x, y) in frame i is at (x + dx, y + dy) in frame i+1,
  i.e. frame[i+1][y + dy, x + dx] == frame[i][y, x] (integer motion is exact).
- `make_clip(...)`: those frames encoded to a real video file with the bundled ffmpeg
  (optionally with a sine tone, a display rotation, variable frame rate); returns the
  path and the frames that went in.
- `image_files`: one tiny image in every supported format (same pixels, written by OpenCV).
- `psnr(a, b)`, `ffmpeg_children()`: helpers for assertions.

The generators call ffmpeg directly, not dreamvid.media, so media tests do not test the
code with itself.
"""
from __future__ import annotations

import collections
import importlib.util
import os
import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 RGB: smooth random colour texture, detailed enough for optical flow.

    Fine detail in brightness, coarser in colour, like a photo: so that 4:2:0 video keeps
    it (colour noise at full resolution would be lost to chroma subsampling alone).
    """
    rng = np.random.default_rng(seed)

    def field(sigma: float) -> np.ndarray:
        f = cv2.GaussianBlur(rng.normal(size=(height, width)).astype(np.float32), (0, 0), sigma)
        return (f - f.min()) / (f.max() - f.min()) - 0.5  # -0.5 .. 0.5

    ycrcb = np.dstack([128 + 175 * field(2.0), 128 + 80 * field(5.0), 128 + 80 * field(5.0)])
    return cv2.cvtColor(np.clip(ycrcb, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)


def moving_frames(n: int, width: int = 64, height: int = 48, motion: tuple[float, float] = (2.0, 1.0),
                  seed: int = 0) -> list[np.ndarray]:
    """n frames (H, W, 3) uint8 RGB of one texture moving by motion = (dx, dy) px per frame."""
    dx, dy = motion
    margin_x, margin_y = int(np.ceil(abs(dx) * n)) + 3, int(np.ceil(abs(dy) * n)) + 3
    canvas = texture(height + margin_y, width + margin_x, seed)
    ox, oy = (margin_x - 2 if dx > 0 else 1), (margin_y - 2 if dy > 0 else 1)
    frames = []
    for i in range(n):
        # dst(x, y) = canvas(x + ox - i*dx, y + oy - i*dy): content moves by +(dx, dy) per frame
        m = np.float32([[1, 0, ox - i * dx], [0, 1, oy - i * dy]])
        frames.append(cv2.warpAffine(canvas, m, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REFLECT))
    return frames


def run_ffmpeg(*args: str, stdin: bytes | None = None) -> None:
    proc = subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
                          input=stdin, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.decode(errors='replace')[-2000:]}")


def write_clip(path: Path, frames: list[np.ndarray], fps: Fraction = Fraction(25), *,
               audio_hz: float | None = None, audio_step_hz: float = 0.0, rotation: int = 0,
               crf: int = 12, faststart: bool = True, vfr_gap_after: int | None = None) -> Path:
    """Encode RGB frames to an H.264 file (container from the suffix).

    audio_hz: add a mono 44.1 kHz AAC tone as long as the video; its frequency is
    audio_hz + audio_step_hz * floor(t), so a trimmed output tells where it was cut.
    rotation: display-matrix rotation in degrees counter-clockwise (stored pixels unchanged).
    vfr_gap_after: frames after this index are shown 0.5 s late (a variable-rate file).
    """
    h, w = frames[0].shape[:2]
    fps = Fraction(fps)
    duration = len(frames) / fps
    raw = b"".join(np.ascontiguousarray(f).tobytes() for f in frames)
    args = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
            "-framerate", f"{fps.numerator}/{fps.denominator}", "-i", "pipe:0"]
    if audio_hz:
        expr = f"sin(2*PI*({audio_hz}+{audio_step_hz}*floor(t))*t)*0.5"
        args += ["-f", "lavfi", "-t", f"{float(duration):.6f}", "-i", f"aevalsrc={expr}:s=44100"]
        args += ["-map", "0:v", "-map", "1:a", "-c:a", "aac"]
    if vfr_gap_after is not None:
        args += ["-vf", f"setpts='N/({fps.numerator}/{fps.denominator})/TB+if(gt(N,{vfr_gap_after}),0.5/TB,0)'",
                 "-fps_mode", "vfr"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", str(crf), "-pix_fmt", "yuv420p", "-g", "10"]
    if faststart and path.suffix in (".mp4", ".mov"):
        args += ["-movflags", "+faststart"]
    target = path if not rotation else path.with_name("unrotated_" + path.name)
    run_ffmpeg(*args, str(target), stdin=raw)
    if rotation:  # a stream copy with a display matrix: the pixels stay as they were
        run_ffmpeg("-display_rotation", str(rotation), "-i", str(target), "-c", "copy", str(path))
        target.unlink()
    return path


@pytest.fixture
def make_clip(tmp_path):
    """Factory: make_clip(name="clip.mp4", n=12, width=64, height=48, fps=25, motion=(2, 1),
    seed=0, **write_clip options) -> (path, frames)."""

    def make(name: str = "clip.mp4", n: int = 12, width: int = 64, height: int = 48,
             fps: Fraction = Fraction(25), motion: tuple[float, float] = (2.0, 1.0), seed: int = 0,
             **options) -> tuple[Path, list[np.ndarray]]:
        frames = moving_frames(n, width, height, motion, seed)
        return write_clip(tmp_path / name, frames, Fraction(fps), **options), frames

    return make


@pytest.fixture(name="moving_frames")
def moving_frames_fixture():
    """The `moving_frames` function (a fixture, so other test modules need no import)."""
    return moving_frames


@pytest.fixture
def image_files(tmp_path) -> tuple[np.ndarray, dict[str, Path]]:
    """(rgb, {extension: path}): one 40x56 RGB picture saved in every supported format."""
    rgb = texture(40, 56, seed=3)
    folder = tmp_path / "images"
    folder.mkdir()
    paths = {}
    for ext in (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"):
        p = folder / f"tiny{ext}"
        assert cv2.imwrite(str(p), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        paths[ext] = p
    return rgb, paths


DAMAGE = ("truncate", "flip", "zero_tail", "empty", "garbage")  # what a crash, a disk or a copy does to a file


def damage_file(path: Path, kind: str, where: float = 0.5, bit: int = 0) -> None:
    """Damage a file in place: cut it at `where` (0..1 of its length), flip one bit there,
    zero everything from there on (a power loss after the size was written), empty it, or
    replace it with as many random bytes."""
    data = bytearray(path.read_bytes())
    at = min(int(where * len(data)), len(data) - 1)
    if kind == "truncate":
        data = data[:at]
    elif kind == "flip":
        data[at] ^= 1 << bit
    elif kind == "zero_tail":
        data[at:] = bytes(len(data) - at)
        data[-1] ^= 0 if data[-1] else 1  # a tail that was zero already must still change
    elif kind == "empty":
        data = bytearray()
    elif kind == "garbage":
        data = bytearray(np.random.default_rng(at).integers(0, 256, len(data), dtype=np.uint8).tobytes())
    else:
        raise ValueError(kind)
    path.write_bytes(bytes(data))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


@pytest.fixture
def psnr():
    """psnr(a, b) -> dB between two uint8 arrays of one shape."""
    return _psnr


def _ffmpeg_children() -> list[tuple[int, str]]:
    """(pid, state) of every ffmpeg child of this process, zombies (state Z) included."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if int(ppid) == me and comm.startswith("ffmpeg"):
            found.append((int(entry), state))
    return found


@pytest.fixture
def ffmpeg_children():
    """ffmpeg_children() -> [(pid, state)] of ffmpeg processes this test process left behind."""
    if not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc to list child processes")
    return _ffmpeg_children


# ---- GPU tests: marked `gpu`, skipped unless a backend sees a GPU (CI has none) -------------

def gpu_backend() -> str | None:
    """The first installed backend that dreams on a GPU here (PyTorch is asked first: it is what
    a GPU machine without TensorFlow has, and asking it costs no TensorFlow import), or None."""
    from dreamvid import backends

    for name in ("torch", "tensorflow"):
        if not backends.installed(name):
            continue
        if name == "tensorflow":
            from dreamvid.cli.common import import_tensorflow_quietly

            import_tensorflow_quietly()  # as the CLI does: no CUDA-probing chatter in the test log
        if backends.get(name).gpu():
            return name
    return None


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_items and gpu_backend() is None:  # a framework is imported only when a gpu test is collected
        skip = pytest.mark.skip(reason="needs a GPU that a backend can see")
        for item in gpu_items:
            item.add_marker(skip)
    # The torch-only environment's selection (`make test-torch` runs `-m torch`): besides the tests
    # marked `torch`, every test that runs on the torch backend through the BACKENDS parameter,
    # unless its thresholds hold only for the tiny network Keras draws on TensorFlow (`tf_draw`:
    # Keras on PyTorch draws other random weights from the same seed).
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "torch" and not item.get_closest_marker("tf_draw"):
            item.add_marker(pytest.mark.torch)


# ---- dream mechanics: a tiny random-weight network and a small photo -----------------------

@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> str:
    """Path of a tiny random-weight .keras network (layers conv1..conv3), see tests/tinymodel.py."""
    from . import tinymodel

    return str(tinymodel.save(tmp_path_factory.mktemp("models")))


@pytest.fixture
def photo(tmp_path) -> Path:
    """A 64x48 PNG of smooth random colour."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), (5, 5), 0)
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), img)
    return path


# ---- the backends: every test of the dream's mechanics runs on each one installed -----------

BACKENDS = [pytest.param("tensorflow", marks=pytest.mark.skipif(
                importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed (the torch-only env)")),
            pytest.param("torch", marks=pytest.mark.skipif(
                importlib.util.find_spec("torch") is None, reason="PyTorch is not installed (pip install 'dreamvid[torch]')"))]


def network(backend: str, path, layers, precision: str = "float32"):
    """A network tapped at `layers` on `backend` (a model name or a .keras path)."""
    from dreamvid import backends

    return backends.get(backend).load(str(path), tuple(layers), None, precision)


# ---- dreamvid's cache folder (auto.json, networks/): never the user's own ------------------

@pytest.fixture(autouse=True, scope="session")
def _dreamvid_cache_dir(tmp_path_factory):
    """DREAMVID_CACHE_DIR at a session-wide temporary folder (dreamvid/cache.py)."""
    old = os.environ.get("DREAMVID_CACHE_DIR")
    os.environ["DREAMVID_CACHE_DIR"] = str(tmp_path_factory.mktemp("dreamvid-cache"))
    yield
    if old is None:
        os.environ.pop("DREAMVID_CACHE_DIR", None)
    else:
        os.environ["DREAMVID_CACHE_DIR"] = old


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A fresh, empty dreamvid cache folder for one test (auto.json, networks/), and auto
    measuring for itself ($DREAMVID_BACKEND unset)."""
    monkeypatch.setenv("DREAMVID_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DREAMVID_BACKEND", raising=False)
    return tmp_path / "cache"


def graph_structure(concrete) -> collections.Counter:
    """A traced tf.function's graph up to names: a multiset of each node's op, attributes and
    inputs' structure, recursively, with every function it calls (a tf.cond's branches, a
    while loop's body) compared by its own structure and its arguments by position, not by
    their names. Two equal ones are the same computation op for op."""
    gd = concrete.graph.as_graph_def()
    library = {f.signature.name: f for f in gd.library.function}
    functions: dict = {}

    def function(name):
        if name not in functions:
            f = library[name]
            args = {a.name: i for i, a in enumerate(f.signature.input_arg)}
            counts, h = nodes(f.node_def, args)
            outputs = tuple(h(f.ret[a.name]) for a in f.signature.output_arg)
            types = tuple((a.type, a.type_attr) for a in (*f.signature.input_arg, *f.signature.output_arg))
            functions[name] = hash((types, tuple(sorted(counts.items())), outputs))
        return functions[name]

    def attr(value):
        return ("func", function(value.func.name)) if value.HasField("func") else str(value)

    def nodes(node_defs, args):
        by_name = {n.name: n for n in node_defs}
        memo: dict = {}

        def h(ref):
            base, _, port = ref.lstrip("^").partition(":")
            if base not in by_name:  # a function's argument
                return hash(("arg", args[base]))
            if base not in memo:
                n = by_name[base]
                memo[base] = hash((n.op, tuple(sorted((k, attr(v)) for k, v in n.attr.items())),
                                   tuple(h(i) for i in n.input)))
            return hash((memo[base], port.rpartition(":")[2] or "0", ref.startswith("^")))

        for n in node_defs:
            h(n.name)
        return collections.Counter(memo.values()), h

    return nodes(gd.node, {})[0]
