"""The per-frame loops: video, zoom, timelapse, sweep; work folders, manifests and resume.

frames.py   work folder + render.json manifest, atomic PNG frames, resume, final encode
video.py    render_video: optical-flow-guided dreaming of a clip
coherence.py  warping error of a rendered clip against its source
zoom.py     render_zoom: the infinite-zoom animation along a trajectory
lapse.py    render_timelapse: the dream as iterations grow
sweep.py    render_sweep: a labelled grid over parameters
sheet.py    contact sheets and labelled grids (drawing only)
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "render_video": "video", "coherence": "coherence", "render_zoom": "zoom",
    "render_timelapse": "lapse", "render_sweep": "sweep",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'dreamvid.render' has no attribute {name!r}")
