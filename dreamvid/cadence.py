"""Frames between dreamed frames (`video --cadence N`, issue 15): built, not dreamed.

With cadence N the frames t, t+N, ... of a shot are dreamed (keyframes); keyframe t+N starts
from keyframe t's dream carried along the source flow chained through the frames between
(`Link`: the per-frame flows composed into one, so the detail is resampled once, not N
times). Frame t+k between them is the source S_{t+k} plus the dream detail d = D - S of
both keyframes, each warped onto it along the chained source flow:

    F = warp(d_t, link to t),  B = warp(d_{t+N}, link to t+N),  w = k / N
    detail = c * ((1 - w) r_F F + w r_B B) / ((1 - w) r_F + w r_B),  c = 1 - (1 - r_F)(1 - r_B)

r_F, r_B are the links' forward-backward reliabilities (the product of the per-frame ones
along the chain), so the time weight decides only where both ends see the pixel; where one
end cannot (content that appears or disappears between the keyframes) the other end's dream
is used at full strength, and where neither can the frame shows its source. Each keyframe
holds its region's strength (temporal.hold), and the frames between inherit it.

Everything here is numpy/OpenCV on sources and uint8 dreams, so the same inputs give the
same frames bit for bit (what a resumed render relies on).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flow import Motion, warp
from .temporal import warp_detail

MIN_WEIGHT = 1e-4  # below this both ends are unreliable: the blend is skipped (the source shows)


@dataclass(frozen=True)
class Link:
    """The chained source flow from frame a to frame b: a(x) ~ b(x + flow(x)), float32."""

    flow: np.ndarray  # (H, W, 2) px, a field on frame a
    reliable: np.ndarray  # (H, W) in [0, 1]: the product of the per-frame reliabilities along the chain

    def motion(self) -> Motion:
        """As a flow.Motion from frame b to frame a (what temporal.carry reads: backward and reliable)."""
        return Motion(self.flow, self.flow, self.reliable)


def chain(step: Motion, rest: Link | None) -> Link:
    """The link a -> c from one step a -> b (`step.backward` is the field on a pointing to b,
    `step.reliable` on a) and the link b -> c (None: c is b).

    flow_ac(x) = s(x) + flow_bc(x + s(x)); reliable_ac(x) = r_s(x) * reliable_bc(x + s(x))."""
    if rest is None:
        return Link(step.backward, step.reliable)
    flow = step.backward + warp(rest.flow, step.backward)
    return Link(flow, step.reliable * warp(rest.reliable, step.backward))


def reverse(motion: Motion, prev_source: np.ndarray, cur_source: np.ndarray) -> Motion:
    """The step S_{t-1} -> S_t as a Motion on frame t-1: its field points forward, to frame t,
    with the forward flow's own reliability (forward-backward and photometric checks,
    textureless fill)."""
    m = Motion.from_flows(motion.forward, motion.backward, cur_source, prev_source)
    # The field itself: -b(x + f(x)), the backward flow carried to frame t-1. Where the two agree
    # it is f; where they differ by flow noise it keeps the frames built from the later keyframe
    # consistent with the backward flow the earlier keyframe's side (and the warping error) uses:
    # on a 0.6 px pan with noise (bench/clips.py pan_zoom, cadence 3) 1.48x -> 1.41x the source's.
    return Motion(-warp(motion.backward, m.backward), m.forward, m.reliable)


def between(source: np.ndarray, start: tuple[np.ndarray, np.ndarray], end: tuple[np.ndarray, np.ndarray],
            to_start: Link, to_end: Link, w: float) -> np.ndarray:
    """Frame t+k, (H, W, 3) float32 0..255, from the two keyframes (module doc).

    source: (H, W, 3) uint8 S_{t+k}; start, end: (source, dream) uint8 of keyframes t and
    t+N; to_start, to_end: links from frame t+k to each; w = k / N in (0, 1)."""
    cur = source.astype(np.float32)
    d0 = start[1].astype(np.float32) - start[0].astype(np.float32)
    d1 = end[1].astype(np.float32) - end[0].astype(np.float32)
    rf, rb = to_start.reliable, to_end.reliable
    a, b = (1.0 - w) * rf, w * rb
    total = a + b
    seen = total > MIN_WEIGHT
    confidence = 1.0 - (1.0 - rf) * (1.0 - rb)
    ka = np.where(seen, a / np.maximum(total, MIN_WEIGHT), 0.0) * confidence
    kb = np.where(seen, b / np.maximum(total, MIN_WEIGHT), 0.0) * confidence
    detail = warp_detail(d0, to_start.flow) * ka[..., None].astype(np.float32)
    detail += warp_detail(d1, to_end.flow) * kb[..., None].astype(np.float32)
    return np.clip(cur + detail, 0.0, 255.0)
