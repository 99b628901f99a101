"""The dreamvid benchmark (issue 5): `make bench` or `python -m bench [--quick]`.

steps.py    1. seconds per gradient-ascent step, GFLOP/s against numpy's matmul
still.py    2. one still against an eager loop and the Keras-example structure (references.py)
video.py    3. seconds per video frame: pipeline, dream steps alone, the Keras-example loop per frame
memory.py   4. peak RSS of a 1080p video frame and a 4K still
startup.py  5. `dreamvid --help` time, TensorFlow not imported
report.py   the printed table and docs/bench.md
"""
