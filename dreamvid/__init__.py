"""dreamvid: DeepDream for photos and video.

    import dreamvid
    out = dreamvid.dream_image(rgb_uint8, step=0.02, layers={"block6d_out": 1.0})

The heavy modules (TensorFlow, OpenCV) load on first use, so `import dreamvid` and
`dreamvid --help` stay fast.
"""
from __future__ import annotations

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily, PEP 562)
_EXPORTS = {
    "dream_image": "dream", "Dreamer": "dream", "get_dreamer": "dream",
    "DreamSettings": "settings", "VideoSettings": "settings", "ZoomSettings": "settings",
    "TimelapseSettings": "settings", "SweepSettings": "settings", "Settings": "settings",
    "MeanSquares": "dream", "Objective": "dream",
    "DreamvidError": "errors",
    "read_image": "media", "write_image": "media",
    "render_video": "render", "render_zoom": "render", "render_timelapse": "render",
    "render_sweep": "render", "render_images": "render", "coherence": "render",
    "Progress": "render", "Result": "render",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib  # here, not above: `dreamvid` runs its first line (the signal handlers) sooner

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'dreamvid' has no attribute {name!r}")
