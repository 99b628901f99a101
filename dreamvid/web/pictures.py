"""Small JPEG pictures the page shows beside a job: the photo before it was dreamed, a clip's
poster frame, an upload's preview. Each is made once from the file it shows and kept beside it.
"""
from __future__ import annotations

from pathlib import Path

from .. import media
from ..errors import InputError

PREVIEW_SIDE = 640  # px, longest side of an upload's preview and of a clip's poster (the page shows <= 480 px)


def still(source: Path, target: Path, max_side: int = PREVIEW_SIDE) -> Path:
    """`target` (a .jpg): the image `source` at most `max_side` px on its longest side."""
    if not target.is_file():
        media.write_image(target, media.read_image(source, max_size=max_side))
    return target


def poster(source: Path, target: Path, max_side: int = PREVIEW_SIDE) -> Path:
    """`target` (a .jpg): the first frame of the clip `source` (or the picture, for an image)."""
    if target.is_file():
        return target
    if source.suffix.lower() in media.IMAGE_EXTENSIONS:
        return still(source, target, max_side)
    frames = media.read_frames(source, end=1, max_size=max_side)
    try:
        first = next(frames, None)
    finally:
        frames.close()
    if first is None:
        raise InputError(f"{source.name} has no frame to show", hint=None)
    return media.write_image(target, first[1])
