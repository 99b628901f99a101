"""The dreamvid benchmark (issue 5): `make bench` or `python -m bench [--quick]`.

steps.py    1. seconds per gradient-ascent step, GFLOP/s against numpy's matmul
still.py    2. one still against an eager loop and the Keras-example structure (references.py)
video.py    3. seconds per video frame: pipeline, dream steps alone, the Keras-example loop per frame
memory.py   4. peak RSS of a 1080p video frame and a 4K still
startup.py  5. `dreamvid --help` time, TensorFlow not imported
report.py   the printed table and docs/bench.md

The GPU check (issue 16): `make gpu-check` or `python -m bench --gpu`.
gpu.py        the command: environment, the `gpu` tests, the measurements, the README's GPU table
gpu_env.py    what it needs, what is importable, installing from .whl/ or the index, `make gpu-wheels`
gpu_items.py  the measurements on the GPU (a child process): steps, video stages, 4K still, tile batch
gpu_report.py the GPU tables from bench/results/gpu-latest.json
peaks.py      datasheet peak FLOP/s by GPU name (the figures and their sources: peaks.toml)
"""
