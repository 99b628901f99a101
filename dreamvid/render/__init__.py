"""Every render mode on one engine: video, zoom, timelapse, sweep and still batches.

engine.py     the skeleton: Plan, Progress, Result; store, resume, range, progress, clean-up
workdir.py    the work folder: render.json manifest, atomic PNG items, lock
cluster.py    the same renders on a Ray cluster (--workers, --ray): workers make items, the driver stores
video.py      render_video: optical-flow-guided dreaming of a clip
zoom.py       render_zoom: the infinite-zoom animation along a trajectory
timelapse.py  render_timelapse: the dream as iterations grow
sweep.py      render_sweep: a labelled grid over parameters
still.py      render_images: photos dreamed one after another, the network loaded once
measure.py    coherence (warping error) of a clip; sharpness and colour of zoom frames
sheet.py      contact sheets and labelled grids (drawing only)
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "render_video": "video", "render_zoom": "zoom", "render_timelapse": "timelapse", "render_sweep": "sweep",
    "render_images": "still", "coherence": "measure", "Progress": "engine", "Result": "engine",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # later look-ups find it here, not a submodule of the same name
        return value
    raise AttributeError(f"module 'dreamvid.render' has no attribute {name!r}")
