"""Image helpers of the dream: dream space, resizing, octave sizes, tiles (NumPy and OpenCV only).

Images enter as float32 0..255 RGB and are dreamed in "dream space", RGB scaled to [-1, 1];
each model converts that to its own preprocessing inside its network, so `step` means the
same on every model and every backend.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from ..errors import InputError
from ..settings import DreamSettings


def to_dream_space(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, np.float32) / 127.5 - 1.0


def from_dream_space(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, np.float32) + 1.0) * 127.5


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W, C) float32 to size=(height, width): area filter down, bicubic up."""
    h, w = size
    if (h, w) == image.shape[:2]:
        return image
    shrinking = h * w < image.shape[0] * image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def fit_max_size(image: np.ndarray, max_size: int | None) -> np.ndarray:
    """Downscale so the longest side is at most `max_size` px (never upscales)."""
    if not max_size or max(image.shape[:2]) <= max_size:
        return image
    scale = max_size / max(image.shape[:2])
    h, w = (max(1, round(d * scale)) for d in image.shape[:2])
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def octave_sizes(height: int, width: int, num_octave: int, octave_scale: float, min_size: int) -> list[tuple[int, int]]:
    """Pyramid sizes, smallest first, as the Keras example computes them; sizes whose shorter
    side would fall below `min_size` px are dropped (the network cannot see them)."""
    sizes = []
    for i in range(num_octave - 1, -1, -1):
        h, w = int(height / octave_scale**i), int(width / octave_scale**i)
        if min(h, w) >= min_size:
            sizes.append((h, w))
    return sizes


def check_size(height: int, width: int, s: DreamSettings, min_size: int | None = None) -> list[tuple[int, int]]:
    """The octave sizes for an image of this size, or InputError if it is too small to dream."""
    if min_size is None:
        from ..models import get_spec

        min_size = get_spec(s.model).min_size
    sizes = octave_sizes(height, width, s.num_octave, s.octave_scale, min_size)
    if not sizes:
        raise InputError(f"the image is {width}x{height} px, too small to dream: {s.model} needs at least "
                         f"{min_size} px on the shorter side",
                         hint=f"use an image at least {min_size} px on each side")
    return sizes


def tile_edges(length: int, tile: int) -> list[int]:
    """Edges of the fewest near-equal parts of [0, length) no longer than `tile`: [0, ..., length]."""
    n = max(1, math.ceil(length / tile))
    return [round(i * length / n) for i in range(n + 1)]


def tile_slices(length: int, tile: int) -> list[slice]:
    """Split [0, length) into the fewest near-equal parts no longer than `tile`."""
    edges = tile_edges(length, tile)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]
