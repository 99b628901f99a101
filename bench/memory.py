"""Item 4: peak memory (RSS) of one dreamed 1920x1080 video frame and one 3840x2160 still.

Each runs in a fresh Python process that reports its own peak resident set size (VmHWM in
/proc/self/status, which `resource.getrusage` also gives as ru_maxrss) and the RSS it had
after loading the model, so the table shows what the dream itself adds. Frames larger than
`tile` (512 px) are dreamed in tiles, so the peak grows with the image, not with the network's
activations at full size.
Peak memory is reached in the first step at full size, so these runs use ITERATIONS steps per
octave instead of the preset's (the output says so); they are not timed.
"""
from __future__ import annotations

from . import common

ITERATIONS = 3  # per octave (see above); --quick: 1, the first full-size step is the peak all the same
TARGETS_MB = {"video_frame_1080p": 3 * 1024, "still_4k": 6 * 1024}  # issue 5: 3 GB and 6 GB

VIDEO_CHILD = """
import json, subprocess, tempfile
from pathlib import Path
import imageio_ffmpeg
from dreamvid.models import setup_tensorflow
setup_tensorflow()
from dreamvid import presets
from dreamvid.dream import get_dreamer
from dreamvid.render import render_video
from bench.common import ROOT, peak_rss_mb
settings = presets.resolve("video", dream={"iterations": ITER}, video={"frame_iterations": ITER})
get_dreamer(settings.dream)
loaded = peak_rss_mb()
with tempfile.TemporaryDirectory() as tmp:
    clip = Path(tmp) / "hd.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y",
                    "-i", str(ROOT / "samples" / "bunny.mp4"),
                    "-vf", "scale=1920:1080:flags=bicubic", "-frames:v", "2", "-c:v", "libx264", "-crf", "16",
                    "-pix_fmt", "yuv420p", "-an", str(clip)], check=True, capture_output=True)
    render_video(clip, Path(tmp) / "out.mp4", settings)
print(json.dumps({"peak_mb": peak_rss_mb(), "after_model_load_mb": loaded}))
"""

STILL_CHILD = """
import json
import cv2
import numpy as np
from dreamvid.models import setup_tensorflow
setup_tensorflow()
from dreamvid import presets
from dreamvid.dream import dream_image, get_dreamer
from dreamvid.media import read_image
from bench.common import ROOT, peak_rss_mb
s = presets.resolve("classic", dream={"iterations": ITER}).dream
get_dreamer(s)
loaded = peak_rss_mb()
image = cv2.resize(read_image(ROOT / "samples" / "astronaut.jpg"), (3840, 2160), interpolation=cv2.INTER_CUBIC)
out = dream_image(image, s)
assert out.shape == (2160, 3840, 3)
print(json.dumps({"peak_mb": peak_rss_mb(), "after_model_load_mb": loaded}))
"""


CASES = (("video_frame_1080p", VIDEO_CHILD, "render_video, video preset, 2 frames of a 1920x1080 clip"),
         ("still_4k", STILL_CHILD, "dream_image, classic preset, 3840x2160"))
QUICK_CASES = ("still_4k",)  # --quick: the largest picture only (each case is a fresh process with TensorFlow)


def measure(quick: bool = False) -> dict:
    rows = {}
    for name, code, what in CASES:
        if quick and name not in QUICK_CASES:
            continue
        r = common.run_child(code.replace("ITER", str(1 if quick else ITERATIONS)))
        target = TARGETS_MB[name]
        rows[name] = {"what": what, "peak_mb": round(r["peak_mb"]),
                      "after_model_load_mb": round(r["after_model_load_mb"]),
                      "target_mb": target, "hit": r["peak_mb"] <= target}
    rows["iterations_per_octave"] = 1 if quick else ITERATIONS
    return rows
