"""Where to dream (--mask): a picture's white dreams, its black keeps the source, grey in between.

For a still (image, zoom, timelapse, sweep) a mask weighs each pixel's gradient-ascent
update (dream.Dreamer.dream): where it is 0 the output is the source exactly, with soft edges
where it is grey. A video dreams the whole frame as usual (its chain, coherence and strength
hold are a plain video's) and the mask chooses where the dream shows: render/video.py stores
it as each frame's alpha and composes the output at the end (workdir.finish(compose=)), so a
region entering the mask shows its dream at once instead of starting to grow there. Every mask is feathered
(FEATHER of the shorter side, as a Gaussian's sigma), so a hard-edged drawing gives no seam.

Masks come from:
- an image (`--mask mask.png`): its luminance; the same aspect ratio as the picture, any size;
- for a video, a mask clip (`--mask mask.mp4`): frame i masks source frame i;
- for a video, the clip's own motion (`--mask motion`: dream only what moves; `--mask still`:
  only what stands), from the optical flow the video step computes anyway. The camera's own
  motion (a pan, a zoom, a shaky hand) is fitted as one affine map and taken out, so what is
  left is what moves in the scene; a region keeps its mask for a moment after it stops
  (`max` with the previous frame's raw mask carried along the flow), so it does not flicker.
  Each frame's mask depends on that frame and the one before only, so a resumed render gets
  exactly the masks of an uninterrupted one.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError
from .settings import MASK_KINDS

FEATHER = 0.01  # Gaussian sigma of every mask's edge, as a fraction of the shorter side
ASPECT_TOLERANCE = 0.02  # a mask's aspect ratio may differ from the picture's by this much
MOTION_PX = 0.0015  # residual motion (px per frame, fraction of the diagonal) that counts as moving
MIN_MOTION_PX = 0.8  # px per frame, at least: below it, DIS flow noise on a noisy pan marked 6% of the frame (bench/clips.py)
HOLD = 0.85  # how much of the previous frame's motion mask a pixel keeps (a car that stops)
BLACK_LEVEL = 4  # of 255: a mask clip whose brightest pixel stays at this dreams nothing (codec noise near black)
SCAN_SIZE = 64  # px, longest side a mask clip is decoded at to find a frame that is not black
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v", ".avi", ".webm", ".gif")


def kind(mask: str | None) -> str | None:
    """None, "motion", "still", "clip" or "image" for a --mask value."""
    if mask is None:
        return None
    if mask in MASK_KINDS:
        return mask
    return "clip" if Path(mask).suffix.lower() in VIDEO_SUFFIXES else "image"


def fit(mask: np.ndarray, size: tuple[int, int], what: str = "the mask") -> np.ndarray:
    """(h, w) float32 0..1 at `size` = (height, width), feathered; InputError if the aspect
    ratio is not the picture's."""
    h, w = size
    mh, mw = mask.shape[:2]
    if abs((mw / mh) / (w / h) - 1.0) > ASPECT_TOLERANCE:
        raise InputError(f"{what} is {mw}x{mh} px, which is not the shape of the {w}x{h} picture",
                         hint=f"use a mask of {w}x{h} px, or any size of the same aspect ratio "
                              f"({w / h:.3f}: width / height)")
    m = np.asarray(mask, np.float32)
    if (mh, mw) != (h, w):
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA if mh * mw > h * w else cv2.INTER_LINEAR)
    return feather(m)


def feather(mask: np.ndarray) -> np.ndarray:
    sigma = max(1.0, FEATHER * min(mask.shape[:2]))
    return np.clip(cv2.GaussianBlur(mask, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE), 0.0, 1.0)


def from_rgb(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 -> (h, w) float32 0..1: luminance (Rec. 601)."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0


def read(path: str | os.PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """The mask image at `path` for a picture of `size` (height, width; None: the mask's own):
    (h, w) float32 0..1."""
    from .media import read_image

    try:
        rgb = read_image(path)
    except InputError as e:
        raise InputError(f"--mask: {e.message}", hint=e.hint) from None
    m = fit(from_rgb(rgb), size or rgb.shape[:2], f"the mask {Path(path).name}")
    if float(m.max()) <= 1.0 / 255:
        raise InputError(f"the mask {Path(path).name} is black everywhere, so nothing would be dreamed",
                         hint="white marks what dreams, black what stays the photo")
    return m


def for_still(value: str, size: tuple[int, int]) -> np.ndarray:
    """The --mask of a still of `size`: an image file (read, fitted, feathered)."""
    if kind(value) != "image":
        raise InputError(f"--mask {value} needs a video; a still takes a mask image",
                         hint="give a mask image (white dreams, black keeps the picture)")
    from .cache import file_key

    return _read_cached(*file_key(value), size)


@functools.lru_cache(maxsize=8)
def _read_cached(path: str, _mtime: int, _size: int, size: tuple[int, int]) -> np.ndarray:
    m = read(path, size)
    m.flags.writeable = False
    return m


def check_clip(path: str | os.PathLike, end: int, size: tuple[int, int], start: int = 0):
    """The mask clip's VideoInfo, after checking it covers source frames [0, end), has the
    picture's shape and is not black in every frame of [start, end). InputError otherwise."""
    from .media import probe_video

    try:
        info = probe_video(path)
    except InputError as e:
        raise InputError(f"--mask: {e.message}", hint=e.hint) from None
    if info.n_frames < end:
        raise InputError(f"the mask clip {info.path.name} has {info.n_frames} frames, the video needs {end}",
                         hint="give a mask clip at least as long as the source (frame i masks frame i), "
                              "or render a shorter range with --end")
    fit(np.zeros((info.height, info.width), np.float32), size, f"the mask clip {info.path.name}")
    _refuse_black(info, start, end)
    return info


def _refuse_black(info, start: int, end: int) -> None:
    """InputError if every frame of the mask clip in [start, end) is black (nothing would be
    dreamed), found by decoding it at SCAN_SIZE px; the scan stops at the first frame that is
    not, usually the first."""
    from .errors import DecodeError
    from .media import read_frames

    frames = read_frames(info.path, start=start, end=end, max_size=SCAN_SIZE, info=info)
    try:
        for _, frame in frames:
            if int(frame.max()) > BLACK_LEVEL:
                return
    except DecodeError:  # a damaged clip: VideoMasks says so at the frame where it stops
        return
    finally:
        frames.close()
    raise InputError(f"the mask clip {info.path.name} is black in every frame of the range, so nothing would be "
                     "dreamed", hint="white marks what dreams, black what stays the video")


class MotionMasks:
    """The masks of `--mask motion` / `--mask still`, one per frame, in order (video.py's
    prefetch thread). `next(index, motion)` takes flow.Motion from the previous frame (or, for
    the first frame of a shot, the motion to the next one; None: a shot of one frame)."""

    def __init__(self, kind_: str, size: tuple[int, int]):
        self.still = kind_ == "still"
        self.size = h, w = size
        self.threshold = max(MIN_MOTION_PX, MOTION_PX * float(np.hypot(h, w)))
        self._previous: tuple[int, np.ndarray] | None = None  # (index, raw mask) of the frame before

    def next(self, index: int, motion, linked: bool) -> np.ndarray:
        """The mask of frame `index`; `linked`: motion is from frame index - 1 (same shot)."""
        raw = moving(motion.backward, motion.reliable, self.threshold) if motion is not None else None
        if raw is None:
            raw = np.zeros(self.size, np.float32)
        m = raw
        if linked and self._previous is not None and self._previous[0] == index - 1:
            from .flow import warp

            carried = warp(self._previous[1][..., None], motion.backward)[..., 0]
            m = np.maximum(raw, HOLD * carried)
        self._previous = (index, raw)
        m = feather(m)
        return 1.0 - m if self.still else m


def moving(backward: np.ndarray, reliable: np.ndarray, threshold: float) -> np.ndarray:
    """(h, w) float32 0..1: how much each pixel moves apart from the camera: the flow minus the
    affine map that best explains it (RANSAC over a grid of reliable points), soft-thresholded
    at `threshold` px, specks opened away."""
    h, w = backward.shape[:2]
    step = max(4, min(h, w) // 40)
    ys, xs = np.mgrid[step // 2:h:step, step // 2:w:step]
    ok = reliable[ys, xs] > 0.5
    here = np.stack([xs[ok], ys[ok]], -1).astype(np.float32)
    camera = None
    if len(here) >= 12:
        there = here + backward[ys[ok], xs[ok]]
        camera, _ = cv2.estimateAffine2D(here, there, method=cv2.RANSAC, ransacReprojThreshold=threshold,
                                         maxIters=500, confidence=0.99, refineIters=5)
    from .flow import _grid

    grid = _grid(h, w)  # cached per size: not a new (h, w) pair of arrays every frame
    gx, gy = grid[..., 0], grid[..., 1]
    if camera is None:  # no camera fit (too little texture): the flow as it is
        predicted = np.zeros_like(backward)
    else:
        predicted = np.stack([camera[0, 0] * gx + camera[0, 1] * gy + camera[0, 2] - gx,
                              camera[1, 0] * gx + camera[1, 1] * gy + camera[1, 2] - gy], -1)
    residual = np.sqrt(np.sum(np.square(backward - predicted), axis=-1))
    m = np.clip((residual - 0.5 * threshold) / threshold, 0.0, 1.0).astype(np.float32)
    k = max(3, (min(h, w) // 60) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, kernel)  # specks of flow noise
    return cv2.dilate(m, kernel)  # a margin round what moves


class VideoMasks:
    """The mask of each frame of a video render, in frame order (video.py's prefetch thread):
    a mask image (the same for every frame), a mask clip (frame i for source frame i, read
    alongside the source from `first`), or the clip's motion (MotionMasks: the first frame of
    a shot needs the motion to the next one, `needs_ahead`)."""

    def __init__(self, value: str, first: int, end: int, size: tuple[int, int]):
        self.kind, self.size = kind(value), size
        self.needs_ahead = self.kind in MASK_KINDS
        self._static = for_still(value, size) if self.kind == "image" else None  # read once, as checked
        self._motion = MotionMasks(self.kind, size) if self.needs_ahead else None
        self._clip = None
        if self.kind == "clip":
            from .media import read_frames

            self._name = Path(value).name
            self._clip = read_frames(value, start=first, end=end)

    def get(self, index: int, motion, linked: bool = True) -> np.ndarray:
        if self._static is not None:
            return self._static
        if self._motion is not None:
            return self._motion.next(index, motion, linked)
        from .errors import DecodeError

        try:
            for i, frame in self._clip:
                if i == index:
                    return fit(from_rgb(frame), self.size, f"the mask clip {self._name}")
        except DecodeError:  # the mask's damage, not the source's: the frames before stay, a rerun resumes
            raise InputError(f"the mask clip {self._name} stopped decoding before frame {index}; the frames "
                             "dreamed before it are kept", hint="repair or re-export the mask clip and run the "
                                                                "same command again to go on") from None
        raise InputError(f"the mask clip {self._name} ended before frame {index}",
                         hint="give a mask clip at least as long as the source")

    def close(self) -> None:
        if self._clip is not None:
            self._clip.close()
