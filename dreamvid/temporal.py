"""Temporal hold: tracked pixels keep the dream they carried in; new pixels are dreamed (issue 8).

Plain propagation (`flow.propagate`, then a few ascent steps on the whole frame) makes every
frame's dream the sum of what was carried and what those steps added. The steps start from a
new random jitter each frame, so what they add differs from frame to frame even where
nothing moves: a still shot shimmers (12x the source's warping error), and the carried part
must decay (`blend` < 1) or the dream grows without bound. Moving, resampled detail blurs,
flat regions lose their dream, and a shot's first frame is stronger than the rest.

Here, for frame t, with d = D - S the dream's detail and r the soft reliability of the
backward flow (`flow.Motion`; textureless pixels get the filled-in flow there):
1. carry: c = r * warp(d_{t-1}, backward), bicubic (bilinear blurs the detail a little more
   at every warp, and the blur adds up over a pan); where frame t-1 cannot be trusted but
   frame t-RECALL_FRAMES can (something passed in front), c += r_k (1 - r) warp(d_{t-k}, flow_k):
   the hidden region gets its old dream back (Ruder et al. 2016's long-term links, by
   per-pixel certainty). start = S_t + blend * c;
2. the frame is dreamed from `start` with the per-frame steps: increment inc = dreamed - start;
3. hold: d_t = blend * c + (1 - temporal_weight * m) * inc, with m the maturity: tracked
   (r, or r_k for recalled pixels) AND already dreamed (its carried local strength at least
   MATURE of the frame's mean; none below IMMATURE). A mature pixel gets only
   (1 - temporal_weight) of the re-dreaming and keeps its dream, so its jitter-driven
   shimmer is cut by that much; new or not yet grown content gets all of it and matures
   over a few frames. Ruder et al. weight their temporal loss by the same kind of certainty;
   this is its pixel-space counterpart, applied once after the steps, outside the network
   gradient (dream.py is untouched);
4. strength: the local strength L = blur(|d|) (STRENGTH_SIGMA) is brought to a target
   T = m * L_carried + (1 - m) * mean(L_{t-1}) by local gains (tracked and new content
   measured apart; tracked within 1/MAX_GAIN..MAX_GAIN, new lifted by at most MAX_LIFT a
   pass, never lowered), then one scalar within MAX_LEVEL_STEP brings the frame's mean
   strength to the previous frame's: no growth on a still shot, no fading from blur, from
   `blend` or from content the flow loses, and no flash at a shot's first frame, whose
   strength the following frames keep.
Everything comes from the frames t-1 and t-k (sources and the uint8 dreams as stored), so a
resumed render, which reads those back from disk, gives exactly the frames of an
uninterrupted one. docs/coherence.md has the measurements and the ablations.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .flow import FlowEstimator, Motion, _grid, _soften, mismatched, out_of_frame, warp

RECALL_FRAMES = 8  # frames: the long-term link, t-1 and t-8 (a region hidden for up to 7 frames gets its dream back)
RECALL_QUALITY = "fast"  # DIS preset of the long-term flow: a fallback, 4x cheaper than "medium" (flow.py)
STRENGTH_SIGMA = 6.0  # px: the scale over which "dream strength" is measured, about one dream pattern
SMOOTH_STEP = 3  # strength maps are blurred at 1/3 size (px per sample)
MAX_GAIN = 3.0  # the most a frame's hold may scale a tracked region's detail up (or 1/3 down)
MAX_LIFT = 1.5  # per gain pass (so 2.25x a frame), the most new content's dream is scaled up toward the target
# Maturity: carried strength over the frame's mean. Below IMMATURE a region is new (it gets all
# the per-frame re-dreaming and grows); above MATURE it is held. In a first frame (90 steps)
# 0-1% of the local strength lies below 0.4 of the mean, 5-13% below 0.6 (bench/clips.py
# kinds); a region new to the frame after the per-frame steps lies at 0.1-0.25.
IMMATURE = 0.4
MATURE = 0.75
MAX_LEVEL_STEP = 1.05  # per frame, the most the whole frame's detail is scaled to keep its mean strength
GAIN_PASSES = 2  # where tracked and new content meet, one pass of local gains falls ~20% short; two ~5%
STRENGTH_FLOOR = 0.25  # levels: below this a region has no dream to scale (flat source, nothing dreamed)


@dataclass(frozen=True)
class Carry:
    """What frame t takes from frame t-1 (all float32, 0..255 units)."""

    source: np.ndarray  # (H, W, 3) S_t
    carried: np.ndarray  # (H, W, 3) blend * r * warp(d_{t-1}): the detail the start image gets
    mature: np.ndarray  # (H, W) in [0, 1]: reliably tracked AND already dreamed (0: new or not yet grown)
    target: np.ndarray | None  # (H, W) strength T the frame's detail is held to (None: no hold)
    level: float = 0.0  # mean |D_{t-1} - S_{t-1}|, levels: the frame's strength is held to it

    @property
    def start(self) -> np.ndarray:
        """(H, W, 3) float32 0..255: the image the frame's dream starts from."""
        return np.clip(self.source + self.carried, 0.0, 255.0)


def warp_detail(detail: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """detail(x + flow(x)), bicubic (edges replicated): less blur per warp than `flow.warp`."""
    coords = (_grid(*flow.shape[:2]) + flow).astype(np.float32, copy=False)
    out = cv2.remap(np.ascontiguousarray(detail), coords, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(detail.shape)


def _smooth(x: np.ndarray, sigma: float = STRENGTH_SIGMA) -> np.ndarray:
    """Gaussian blur of an (H, W) float32 map, done at 1/SMOOTH_STEP size: the maps are smooth
    at this scale anyway, and it costs a tenth of a full-size blur (a 1080p frame: ~4 ms)."""
    h, w = x.shape[:2]
    f = SMOOTH_STEP
    if min(h, w) < 4 * f:
        return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    small = cv2.resize(x, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / f, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _magnitude(detail: np.ndarray) -> np.ndarray:
    """(H, W) float32 mean |detail| over channels."""
    a = np.abs(detail)
    return a @ np.full(a.shape[2], 1 / a.shape[2], np.float32) if a.ndim == 3 else a  # matmul: fast mean


def strength_map(detail: np.ndarray) -> np.ndarray:
    """(H, W) float32: local dream strength, mean |detail| over channels blurred by STRENGTH_SIGMA."""
    return _smooth(_magnitude(detail.astype(np.float32, copy=False)))


def carry(prev_dream: np.ndarray, prev_source: np.ndarray, cur_source: np.ndarray, motion: Motion,
          blend: float, *, hold_strength: bool = True,
          recall: tuple[np.ndarray, np.ndarray, Motion] | None = None) -> Carry:
    """Step 1 (and the target of step 4) for frame t. Dreams and sources: (H, W, 3) uint8 0..255.

    recall: (S_{t-k}, D_{t-k}, motion from S_{t-k} to S_t) with k = RECALL_FRAMES, or None.
    Where frame t-1 cannot be trusted but frame t-k can (a region a passing object hid for a
    moment), the dream comes back from D_{t-k} (Ruder et al. 2016's long-term links).
    """
    cur = cur_source.astype(np.float32)
    detail = prev_dream.astype(np.float32) - prev_source.astype(np.float32)
    r = motion.reliable
    carried = warp_detail(detail, motion.backward) * r[..., None]
    prev = strength_map(detail)
    moved = warp(prev, motion.backward) * r  # a smooth map: bilinear is enough
    tracked = r
    if recall is not None:
        old_source, old_dream, old_motion = recall
        back = old_motion.reliable * (1.0 - r)  # only where frame t-1 cannot help
        if back.max() > 0:
            old = old_dream.astype(np.float32) - old_source.astype(np.float32)
            carried += warp_detail(old, old_motion.backward) * back[..., None]
            moved += warp(strength_map(old), old_motion.backward) * back
            tracked = r + back
    carried *= np.float32(blend)
    moved = moved / np.maximum(tracked, 1e-3)  # the strength the tracked content had, wherever it came from
    mean = max(float(prev.mean()), STRENGTH_FLOOR)
    mature = np.clip((moved / mean - IMMATURE) / (MATURE - IMMATURE), 0.0, 1.0) * tracked
    # mature content is held to the strength it had at t-1; new and immature content grows
    # toward the frame's mean strength (dreamed at the full per-frame rate meanwhile)
    target = mature * moved + (1.0 - mature) * mean if hold_strength else None
    return Carry(cur, carried, mature.astype(np.float32), target, float(np.abs(detail).mean()))


def recall_motion(old_source: np.ndarray, cur_source: np.ndarray, estimator: FlowEstimator) -> Motion:
    """The long-term link S_{t-k} -> S_t: the backward flow, and a reliability from the
    photometric check and the frame edges alone. One flow, not two: the link is only a
    fallback where frame t-1 failed, and where its flow is wrong the previous source it pulls
    in does not match S_t, which the photometric check sees (forward flow: None)."""
    backward = estimator.flow(cur_source, old_source)
    bad = mismatched(old_source, cur_source, backward) | out_of_frame(backward)
    return Motion(backward, None, _soften(~bad))


def hold(c: Carry, dreamed: np.ndarray, temporal_weight: float, strength_hold: float) -> np.ndarray:
    """Steps 3-4: frame t's result, (H, W, 3) float32 0..255, from the dreamed start image."""
    start = c.start
    increment = dreamed.astype(np.float32) - start
    keep = 1.0 - temporal_weight * c.mature
    detail = (start - c.source) + keep[..., None] * increment
    if c.target is not None and strength_hold > 0:
        for _ in range(GAIN_PASSES):
            detail *= strength_gain(detail, c.target, c.mature, strength_hold)[..., None]
        # Local holds leave the frame's strength drifting a little (content that restarts from
        # the source where the flow fails, new content still growing); one scalar, within
        # MAX_LEVEL_STEP of 1, keeps the frame's mean where the previous frame's was.
        have = float(np.abs(np.clip(c.source + detail, 0.0, 255.0) - c.source).mean())
        if have > STRENGTH_FLOOR and c.level > STRENGTH_FLOOR:
            level_gain = np.clip(c.level / have, 1.0 / MAX_LEVEL_STEP, MAX_LEVEL_STEP) ** strength_hold
            detail *= np.float32(level_gain)
    return np.clip(c.source + detail, 0.0, 255.0)


def strength_gain(detail: np.ndarray, target: np.ndarray, mature: np.ndarray, rate: float) -> np.ndarray:
    """(H, W) float32 gain that brings the local strength of `detail` to `target`.

    Tracked (reliable) and new content are measured apart (normalised convolution), so a thin
    strip of new content at a frame edge is lifted by its own weak strength, not by the mean of
    its strong neighbours. Tracked content is held within 1/MAX_GAIN..MAX_GAIN; new content,
    dreamed only by the few per-frame steps, may be lifted up to MAX_LIFT x (never lowered).
    """
    mag = _magnitude(detail)
    r = mature.astype(np.float32)
    new = 1.0 - r
    # normalised convolutions, the new-content sums as whole minus tracked (the blur is linear)
    weight_tracked = _smooth(r)
    sum_all, sum_tracked = _smooth(mag), _smooth(mag * r)
    have_tracked = sum_tracked / np.maximum(weight_tracked, 1e-3)
    have_new = (sum_all - sum_tracked) / np.maximum(1.0 - weight_tracked, 1e-3)
    g_tracked = np.where(have_tracked > STRENGTH_FLOOR, target / np.maximum(have_tracked, STRENGTH_FLOOR), 1.0)
    g_new = np.where(have_new > STRENGTH_FLOOR, target / np.maximum(have_new, STRENGTH_FLOOR), 1.0)
    gain = r * np.clip(g_tracked, 1.0 / MAX_GAIN, MAX_GAIN) + new * np.clip(g_new, 1.0, MAX_LIFT)
    return (gain if rate == 1.0 else gain ** rate).astype(np.float32, copy=False)
