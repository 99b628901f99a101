"""Optical flow, warping and occlusion masks: the coherence machinery of video dreaming.

Conventions (used everywhere in dreamvid):
- images are (H, W, C) arrays, RGB when C == 3; uint8 0..255 at the edges, float32 0..255
  inside the video loop;
- a flow is (H, W, 2) float32 (dx, dy) in pixels, and `flow(src, dst)` means
  src(x) ~ dst(x + flow(x)): it points from a pixel of `src` to where it is in `dst`;
- `warp(image, flow)(x) = image(x + flow(x))`, so warping the PREVIOUS frame with the
  BACKWARD flow (current -> previous) pulls it into the current frame (DESIGN, video step 2).

For frame t the video loop calls `motion = motion_between(S_{t-1}, S_t, estimator)` (it needs
only sources, so it can run ahead in a worker thread: OpenCV releases the GIL; give each
thread its own `FlowEstimator`), then `temporal.carry(D_{t-1}, S_{t-1}, S_t, motion, blend)`
for the start image (`propagate` is its plain form), unless `is_scene_cut(S_{t-1}, S_t,
motion=motion)`, where the chain restarts from S_t. `sequence_warping_error` measures the result.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable, Iterator

import cv2
import numpy as np

from dreamvid.errors import SettingsError

FLOW_METHODS = ("dis", "farneback")  # "none" (independent frames) is the caller's business
FLOW_QUALITIES = ("ultrafast", "fast", "medium")

# OpenCV's DIS presets (Kroeger et al. 2016, "Fast Optical Flow using Dense Inverse Search").
# Measured on 2 CPU cores, one flow (ms) and endpoint error (px) on a textured 8,5 px shift:
#   512x288   ultrafast 1.6 / 0.05, fast 3.6 / 0.07, medium 14 / 0.014; Farneback 25-40 / 0.2
#   1280x720  ultrafast 12, fast 22, medium 75;  1920x1080 ultrafast 23, fast 33, medium 194
# "medium" is the default: its cost is small next to a dream step (seconds per frame) and its
# flow is 4x more accurate. Computing flow on a half-size copy halves the time but doubles
# the endpoint error and raises the real-clip warp residual 15-20%, so frames go in full size.
_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
# Farneback has no presets; these grow pyramid depth, window and iterations with quality.
# (pyr_scale, levels, winsize px, iterations, poly_n px, poly_sigma, flags)
_FARNEBACK = {
    "ultrafast": (0.5, 3, 9, 2, 5, 1.1, 0),
    "fast": (0.5, 3, 15, 3, 5, 1.2, 0),  # OpenCV's sample values
    "medium": (0.5, 5, 21, 5, 5, 1.2, 0),  # (poly_n 7 / Gaussian windows measured worse)
}

# Forward-backward consistency (Ruder, Dosovitskiy, Brox 2016, "Artistic style transfer for
# videos", eq. 6): x is occluded where |b + f(x+b)|^2 > REL * (|b|^2 + |f(x+b)|^2) + ABS.
CONSISTENCY_REL = 0.01  # dimensionless: allows 10% vector error on large motions
CONSISTENCY_ABS = 0.5  # px^2: slack for sub-pixel flow noise on small motions
# Photometric check (ours, beside Ruder's): where the previous SOURCE, warped by b, does not
# reproduce the current source, b is wrong there, so the dream detail it would carry is too.
# DIS can smear a moving edge's motion over the strip it uncovers, consistently in both
# directions, which the round trip cannot see. On a 40 px square moving 3-6 px over texture
# (20 layouts) the round trip alone flags 67% of that strip (worst 7%; soft reliability
# there 0.09, worst 0.40); with this check 87% (worst 46%; soft 0.012, worst 0.17). Cost on
# real clips: median soft reliability 0.997 -> 0.965 (bigbuckbunny), 0.871 -> 0.852 (bikes),
# the extra pixels hugging moving outlines. The residual is taken after a global gain and
# offset fit, so fades and exposure changes are not mistaken for mismatches.
PHOTO_TOL = 12.0  # levels (0..255) of the channel-mean residual, smoothed over ~1 px
PHOTO_SIGMA = 1.0  # px: single-pixel noise and compression ringing are not mismatches
# A sample point up to half a pixel outside the outermost pixel centre is still on the
# image's pixel area; without this slack a static border column flickers "out of frame"
# whenever flow noise says -0.01 px.
FRAME_SLACK = 0.5  # px
# Soft reliability: DIS works on 8 px patches, so its errors spill a few pixels past the
# region the consistency check flags. Grow the unreliable region by DILATE_PX, then feather
# the edge (Gaussian, FEATHER_SIGMA) so the seam between carried dream and fresh source has
# no hard contour for the dream to latch onto. FEATHER_SIGMA <= DILATE_PX / 2, so flagged
# pixels stay at ~0 (they are also forced to 0).
DILATE_PX = 3  # px
FEATHER_SIGMA = 1.5  # px

# Scene cuts: correlation of hue-saturation histograms of a thumbnail. It ignores where
# things are, so motion barely moves it; a new shot changes the colour distribution.
# Measured on consecutive frames: within shots, bikes.mp4 (244 pairs, fast motion and
# blur included) min 0.933, 1st percentile 0.958; bigbuckbunny.mp4 (131 pairs, no cut)
# min 0.998; the five cuts of bikes.mp4 (frames 30, 76, 137, 187, 242) 0.08-0.57.
# The threshold sits low in that gap: a false cut is a visible restart of the dream, while
# a missed cut is caught by the flow (below) and by the reliability mask anyway.
CUT_THRESHOLD = 0.7  # histogram correlation below this = hard cut
# With flow at hand (DIS medium), the mean soft reliability: across those cuts <= 0.001;
# within shots >= 0.38 (fast motion with blur), median 0.85 (bikes); >= 0.90 (bigbuckbunny).
CUT_MIN_RELIABLE = 0.15  # fraction of the frame; below this nothing links the two frames
_CUT_THUMB = (128, 72)  # px (w, h): enough pixels for a stable histogram, cheap
_CUT_BINS = (32, 16)  # hue (0..180), saturation (0..256) bins


class FlowEstimator:
    """Dense optical flow between two frames with one reusable OpenCV object.

    method: "dis" (DISOpticalFlow, the default) or "farneback"; quality: "ultrafast",
    "fast" or "medium". Not thread-safe (DIS keeps buffers): one estimator per thread.
    """

    def __init__(self, method: str = "dis", quality: str = "medium"):
        if method not in FLOW_METHODS:
            raise SettingsError(
                f"unknown flow method {method!r}",
                hint=f"use one of: {', '.join(FLOW_METHODS)}, or 'none' for independent frames",
            )
        if quality not in FLOW_QUALITIES:
            raise SettingsError(
                f"unknown flow quality {quality!r}",
                hint=f"use one of: {', '.join(FLOW_QUALITIES)}",
            )
        self.method, self.quality = method, quality
        self._dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[quality]) if method == "dis" else None

    def __repr__(self) -> str:
        return f"FlowEstimator(method={self.method!r}, quality={self.quality!r})"

    def flow(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Flow from `src` to `dst`: src(x) ~ dst(x + flow(x)).

        src, dst: (H, W, 3) RGB or (H, W) gray, uint8 (float 0..255 is rounded).
        Returns (H, W, 2) float32 (dx, dy) in pixels.
        """
        if src.shape[:2] != dst.shape[:2]:
            raise ValueError(f"frame sizes differ: {src.shape} vs {dst.shape}")
        a, b = _gray(src), _gray(dst)
        if self._dis is not None:
            out = self._dis.calc(a, b, None)
        else:
            out = cv2.calcOpticalFlowFarneback(a, b, None, *_FARNEBACK[self.quality])
        return out.astype(np.float32, copy=False)


def _as_uint8(image: np.ndarray) -> np.ndarray:
    """Any dtype 0..255 -> contiguous uint8 (rounded, clipped)."""
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def _gray(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB or (H, W), 0..255 -> (H, W) uint8."""
    image = _as_uint8(image)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


@functools.lru_cache(maxsize=4)
def _grid(h: int, w: int) -> np.ndarray:
    """(H, W, 2) float32 pixel-centre coordinates (x, y); read-only, cached per size."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    grid = np.dstack([xs, ys])
    grid.setflags(write=False)
    return grid


def warp(image: np.ndarray, flow: np.ndarray, *, cubic: bool = False) -> np.ndarray:
    """out(x) = image(x + flow(x)): bilinear (cubic: bicubic, which blurs fine detail less), edges
    replicated.

    image: (H, W) or (H, W, C) uint8 or float32, any C; flow: (H, W, 2) float32.
    Returns an array of image's shape and dtype (uint8 rounded by OpenCV).
    """
    if image.shape[:2] != flow.shape[:2]:
        raise ValueError(f"image {image.shape} and flow {flow.shape} sizes differ")
    coords = (_grid(*flow.shape[:2]) + flow).astype(np.float32, copy=False)  # remap: float32
    out = cv2.remap(np.ascontiguousarray(image), coords, None, cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(image.shape)  # remap drops a trailing channel axis of size 1


def out_of_frame(flow: np.ndarray) -> np.ndarray:
    """(H, W) bool: True where x + flow(x) lies off the image (FRAME_SLACK px tolerance)."""
    h, w = flow.shape[:2]
    grid = _grid(h, w)
    x = grid[..., 0] + flow[..., 0]
    y = grid[..., 1] + flow[..., 1]
    lo = -FRAME_SLACK
    return (x < lo) | (y < lo) | (x > w - 1 + FRAME_SLACK) | (y > h - 1 + FRAME_SLACK)


def _squared_length(v: np.ndarray) -> np.ndarray:
    """(H, W, 2) -> (H, W) dx^2 + dy^2 (numpy's sum over a length-2 axis is ~10x slower)."""
    dx, dy = v[..., 0], v[..., 1]
    return dx * dx + dy * dy


def occluded(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """(H, W) bool: True where the backward flow cannot be trusted (Ruder et al. 2016).

    backward: (H, W, 2) flow(S_t -> S_{t-1}); forward: (H, W, 2) flow(S_{t-1} -> S_t).
    A pixel is flagged where following b and then f does not come back (disocclusion,
    flow failure) or where x + b(x) leaves the frame (content new to this frame).
    """
    f_at = warp(forward, backward)  # f(x + b(x))
    round_trip = _squared_length(backward + f_at)
    size = _squared_length(backward) + _squared_length(f_at)
    return (round_trip > CONSISTENCY_REL * size + CONSISTENCY_ABS) | out_of_frame(backward)


def mismatched(prev_source: np.ndarray, cur_source: np.ndarray,
               backward: np.ndarray) -> np.ndarray:
    """(H, W) bool: True where warp(S_{t-1}, backward) does not look like S_t (PHOTO_TOL).

    Sources: (H, W, 3) RGB or (H, W) gray, 0..255. A global gain and offset is fitted
    first, so fades and exposure changes do not count.
    """
    prev = warp(prev_source, backward).astype(np.float32)
    cur = cur_source.astype(np.float32)
    gain, offset = _fit_gain_offset(prev, cur)
    residual = np.abs(cur - (gain * prev + offset))
    if residual.ndim == 3:  # mean over channels as a matrix product: fast
        residual = residual @ np.full(residual.shape[2], 1 / residual.shape[2], np.float32)
    return cv2.GaussianBlur(residual, (0, 0), PHOTO_SIGMA) > PHOTO_TOL


def _fit_gain_offset(prev: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Least-squares cur ~ gain * prev + offset over the whole frame (gain kept in 0.5..2)."""
    spread = float(prev.std())
    if spread < 1.0:  # a flat frame: no gain to fit
        return 1.0, float(cur.mean() - prev.mean())
    covariance = float(((prev - prev.mean()) * (cur - cur.mean())).mean())
    gain = float(np.clip(covariance / spread**2, 0.5, 2.0))
    return gain, float(cur.mean() - gain * prev.mean())


def reliability(backward: np.ndarray, forward: np.ndarray, *, soft: bool = True,
                sources: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how far the previous frame, warped by `backward`, can be trusted.

    Unreliable: `occluded(backward, forward)`, and with sources=(S_{t-1}, S_t) also
    `mismatched(...)`. soft=False gives exactly 0 or 1 there. soft=True grows the
    unreliable region by DILATE_PX and feathers it (FEATHER_SIGMA); flagged pixels stay 0.
    """
    bad = occluded(backward, forward)
    if sources is not None:
        bad |= mismatched(sources[0], sources[1], backward)
    return _soften(~bad) if soft else (~bad).astype(np.float32)


# Textureless regions (a cel's flat colour, clear sky, a white wall): the flow there is not
# observable, DIS returns whatever its patches settle on, and the round trip fails on ~30% of a
# cartoon frame, so the dream there restarted every frame and faded (issue 8, bench/clips.py
# "animated": strength 0.37 of the first frame). Any flow that maps flat onto matching flat is
# as true as another; the one that moves the dream with its surroundings is the reliable flow
# smoothly filled in (normalised convolution), accepted where the photometric check passes.
FLAT_GRADIENT = 2.0  # levels/px: mean gradient magnitude (smoothed over ~2 px) below this = textureless
_FLAT_SIGMA = 2.0  # px
FILL_SIGMAS = (4.0, 16.0, 48.0)  # px: fill from the nearest scale that has enough reliable pixels
_FILL_MIN_WEIGHT = 0.2  # of the Gaussian's mass: a scale with less reliable support is skipped
_FILL_STEP = 4  # px per sample of the fill's blurs


def textureless(image: np.ndarray) -> np.ndarray:
    """(H, W) bool: True where the image has no texture for optical flow to lock on (FLAT_GRADIENT)."""
    g = cv2.GaussianBlur(_gray(image).astype(np.float32), (0, 0), 1.0)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=1)
    magnitude = cv2.GaussianBlur(np.sqrt(gx * gx + gy * gy) * 0.5, (0, 0), _FLAT_SIGMA)  # ksize=1: 2x the derivative
    return magnitude < FLAT_GRADIENT


def fill_flow(flow: np.ndarray, good: np.ndarray) -> np.ndarray:
    """(H, W, 2): `flow` smoothly filled in from the pixels where `good` (bool) holds.

    The blurs run at 1/_FILL_STEP size (the fill is smooth; a 48 px blur at full size would
    cost more than the flow itself)."""
    h, w = good.shape
    small = (max(1, w // _FILL_STEP), max(1, h // _FILL_STEP))
    weight = cv2.resize(good.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    moved = cv2.resize(flow * good[..., None], small, interpolation=cv2.INTER_AREA)
    out = flow.copy()
    todo = ~good
    for sigma in FILL_SIGMAS:
        if not todo.any():
            break
        s = sigma / _FILL_STEP
        den = cv2.resize(cv2.GaussianBlur(weight, (0, 0), s, borderType=cv2.BORDER_REPLICATE), (w, h),
                         interpolation=cv2.INTER_LINEAR)
        num = cv2.resize(cv2.GaussianBlur(moved, (0, 0), s, borderType=cv2.BORDER_REPLICATE), (w, h),
                         interpolation=cv2.INTER_LINEAR)
        take = todo & (den > _FILL_MIN_WEIGHT)
        out[take] = num[take] / den[take][:, None]
        todo &= ~take
    return out


def _soften(good: np.ndarray) -> np.ndarray:
    """Soft reliability from a bool mask: grow the bad region by DILATE_PX, feather it (FEATHER_SIGMA)."""
    good = good.astype(np.float32)
    if good.all():
        return good
    size = 2 * DILATE_PX + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    shrunk = cv2.erode(good, kernel, borderType=cv2.BORDER_REPLICATE)
    feathered = cv2.GaussianBlur(shrunk, (0, 0), FEATHER_SIGMA, borderType=cv2.BORDER_REPLICATE)
    return np.minimum(feathered, good)


def fill_textureless(backward: np.ndarray, good: np.ndarray, prev_source: np.ndarray,
                     cur_source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(backward flow, good mask) with textureless unreliable pixels given the filled-in flow.

    good: (H, W) bool, the pixels whose flow passed the checks. A pixel that failed them is
    taken over where S_t is textureless there, the filled flow stays in the frame and the
    previous source warped by it matches S_t (`mismatched`)."""
    candidates = ~good & textureless(cur_source)
    if not candidates.any() or not good.any():
        return backward, good
    filled = fill_flow(backward, good)
    accept = candidates & ~out_of_frame(filled) & ~mismatched(prev_source, cur_source, filled)
    if not accept.any():
        return backward, good
    backward = np.where(accept[..., None], filled, backward).astype(np.float32)
    return backward, good | accept


@dataclass(frozen=True)
class Motion:
    """What the video loop needs to know about the step S_{t-1} -> S_t (float32 arrays)."""

    backward: np.ndarray  # (H, W, 2) flow(S_t -> S_{t-1}): warps frame t-1 onto frame t
    forward: np.ndarray  # (H, W, 2) flow(S_{t-1} -> S_t)
    reliable: np.ndarray  # (H, W) in [0, 1], soft reliability of `backward`

    @classmethod
    def from_flows(cls, backward: np.ndarray, forward: np.ndarray,
                   prev_source: np.ndarray, cur_source: np.ndarray) -> Motion:
        """From flows computed elsewhere (another thread, a cache) and their two sources.

        Textureless pixels the checks reject get the reliable flow filled in (`fill_textureless`),
        so `backward` may differ from the flow that was passed there."""
        good = ~(occluded(backward, forward) | mismatched(prev_source, cur_source, backward))
        backward, good = fill_textureless(backward, good, prev_source, cur_source)
        return cls(backward, forward, _soften(good))

    @property
    def reliable_fraction(self) -> float:
        """Share of frame t that can be carried over from frame t-1 (0..1)."""
        return float(self.reliable.mean())


def motion_between(prev_source: np.ndarray, cur_source: np.ndarray,
                   estimator: FlowEstimator) -> Motion:
    """Both flows and the soft reliability mask for S_{t-1} -> S_t (sources, not dreams)."""
    backward = estimator.flow(cur_source, prev_source)
    forward = estimator.flow(prev_source, cur_source)
    return Motion.from_flows(backward, forward, prev_source, cur_source)


def propagate(prev_dream: np.ndarray, prev_source: np.ndarray, cur_source: np.ndarray,
              motion: Motion, blend: float) -> np.ndarray:
    """Start image for frame t (DESIGN, video step 4): S_t plus the carried-over dream detail.

    start = S_t + blend * reliable * warp(D_{t-1} - S_{t-1}, backward), clipped to 0..255.
    prev_dream, prev_source, cur_source: (H, W, 3) uint8 or float32 0..255; blend in [0, 1]
    (0 = independent frames, 1 = all of the previous dream carries over).
    Returns (H, W, 3) float32 0..255.

    Why the detail D - S and not the dream itself (start = blend * W(D) + (1 - blend) * S_t):
    the two agree where the flow is exact and nothing changes but position, but carrying
    D drags old source pixels along, so (a) every warp re-blurs the image part of the start
    (bilinear resampling compounds frame after frame), (b) lighting and colour changes in the
    source reach the output late (exposure, fades), and (c) flow errors show as ghosts of
    the old frame. Carrying only the detail keeps the current frame's own crisp pixels and
    true colours; a flow error only misplaces dream texture.
    Steady state: on a still scene the carried detail is a geometric series, so a per-frame
    dream adding detail d settles at d / (1 - blend) and stays there (no drift). Per-frame
    dreaming at about (1 - blend) of a still's strength keeps frame 0's look.
    """
    if not 0.0 <= blend <= 1.0:
        raise SettingsError(f"blend must be between 0 and 1 (got {blend})",
                            hint="0 = independent frames, 1 = carry all of the previous dream")
    cur = cur_source.astype(np.float32)
    if blend == 0.0:
        return cur
    detail = prev_dream.astype(np.float32) - prev_source.astype(np.float32)
    carried = warp(detail, motion.backward)
    carried *= (blend * motion.reliable)[..., None]
    return np.clip(cur + carried, 0.0, 255.0, out=cur)


def _hs_histogram(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB uint8 -> L1-normalised hue-saturation histogram of a thumbnail."""
    thumb = cv2.resize(_as_uint8(image), _CUT_THUMB, interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(_CUT_BINS), [0, 180, 0, 256])
    return cv2.normalize(hist, hist, 1.0, 0.0, cv2.NORM_L1)


def cut_score(prev: np.ndarray, cur: np.ndarray) -> float:
    """Correlation (-1..1) of the hue-saturation histograms of two (H, W, 3) RGB frames.

    ~1 within a shot whatever the motion; well below CUT_THRESHOLD across a hard cut.
    """
    return float(cv2.compareHist(_hs_histogram(prev), _hs_histogram(cur), cv2.HISTCMP_CORREL))


def is_scene_cut(prev: np.ndarray, cur: np.ndarray, threshold: float = CUT_THRESHOLD,
                 *, motion: Motion | None = None, score: float | None = None) -> bool:
    """True where `cur` starts a new shot: the coherence chain should restart from it.

    prev, cur: (H, W, 3) RGB sources. With `motion` (from `motion_between(prev, cur, ...)`)
    a frame pair that the flow cannot link (reliable fraction < CUT_MIN_RELIABLE) is a cut too.
    score: `cut_score(prev, cur)` when the caller has it already (the video loop asks twice).
    """
    if motion is not None and motion.reliable_fraction < CUT_MIN_RELIABLE:
        return True
    return (cut_score(prev, cur) if score is None else score) < threshold


def _pair_error(cur: np.ndarray, prev: np.ndarray, backward: np.ndarray,
                mask: np.ndarray) -> float | None:
    """Masked mean squared difference, images in [0, 1], of cur and prev warped onto it."""
    weight = np.asarray(mask, dtype=np.float32)
    total = float(weight.sum())
    if total == 0.0:
        return None  # nothing comparable (a cut, or everything moved off-frame)
    diff = (cur.astype(np.float32) - warp(prev.astype(np.float32), backward)) / 255.0
    channels = diff.shape[2] if diff.ndim == 3 else 1
    weight = weight[..., None] if diff.ndim == 3 else weight
    return float(np.sum(diff * diff * weight) / (total * channels))


def _consecutive(items: Iterable) -> Iterator[tuple]:
    """(a, b), (b, c), ... holding two items at a time."""
    items = iter(items)
    prev = next(items, None)
    for cur in items:
        yield prev, cur
        prev = cur


def _mean_of_kept(errors: Iterable[float | None]) -> float:
    kept = [e for e in errors if e is not None]
    return float(np.mean(kept)) if kept else float("nan")


def warping_error(frames: Iterable[np.ndarray], flows_back: Iterable[np.ndarray],
                  masks: Iterable[np.ndarray]) -> float:
    """Warping error (Lai et al. 2018, "Learning Blind Video Temporal Consistency").

    frames: n output frames (H, W, C) uint8 or float 0..255; flows_back: n - 1 flows,
    the i-th = flow(S_{i+1} -> S_i) of the SOURCE frames; masks: n - 1 (H, W) bool or
    float in [0, 1], 1 where that flow is reliable (`~occluded(b, f)`). All streamed:
    two frames in memory. Returns the mean over pairs of the masked mean squared
    difference (per pixel, averaged over channels) with images scaled to [0, 1]; pairs
    without a reliable pixel are skipped; nan when no pair is left.
    """
    pairs = zip(_consecutive(frames), flows_back, masks, strict=True)
    return _mean_of_kept(_pair_error(cur, prev, b, m) for (prev, cur), b, m in pairs)


def sequence_warping_error(output_frames: Iterable[np.ndarray],
                           source_frames: Iterable[np.ndarray],
                           estimator: FlowEstimator, *, skip_cuts: bool = True) -> float:
    """Warping error of `output_frames` measured with the flow of `source_frames`.

    Both iterables yield (H, W, 3) RGB frames 0..255 of one size, equally many (streamed).
    Masks are the hard ones (`~occluded`), as in Lai et al. skip_cuts drops pairs across a
    scene cut of the source (no flow links two shots). Run it on the source itself, the
    dreamed output and an independent-frames render: the ratios show the coherence.
    """
    def errors():
        pairs = zip(_consecutive(output_frames), _consecutive(source_frames), strict=True)
        for (prev_out, cur_out), (prev_src, cur_src) in pairs:
            if skip_cuts and is_scene_cut(prev_src, cur_src):
                continue
            backward = estimator.flow(cur_src, prev_src)
            forward = estimator.flow(prev_src, cur_src)
            yield _pair_error(cur_out, prev_out, backward, ~occluded(backward, forward))

    return _mean_of_kept(errors())
