"""Frames between frames: smooth or slow-motion output from a dreamed clip, with no model.

For two consecutive output frames A and B and a time 0 < t < 1 between them, with the flows
F = flow(A -> B) and G = flow(B -> A) of the pictures themselves:

1. The flow from the in-between frame back to each end, as Super SloMo approximates it
   from the two-way flow (Jiang et al. 2018, eq. 4):
       F_t->A = -(1 - t) t F + t^2 G        F_t->B = (1 - t)^2 F - t (1 - t) G
2. Warp A and B to time t along them.
3. Blend by time and visibility: a pixel that the forward-backward check says is hidden in
   A (it appears between A and B) comes from B, and the other way round; everywhere else
   (1 - t) A_t + t B_t. Where both are unsure the time blend is used.

The dreamed frames carry the dream's own texture, so their flow follows the dream as it
rides on the picture: that is the motion the viewer sees.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from .flow import FlowEstimator, occluded, warp

MAX_FACTOR = 16  # frames per input frame; more is a typo (and a flood of frames)


def between(a: np.ndarray, b: np.ndarray, k: int, estimator: FlowEstimator) -> list[np.ndarray]:
    """The k - 1 frames between a and b ((H, W, 3) uint8), at t = 1/k .. (k-1)/k."""
    if k <= 1:
        return []
    forward, backward = estimator.flow(a, b), estimator.flow(b, a)
    hidden_in_b = occluded(backward, forward)  # (at B's pixels) content that A does not show
    hidden_in_a = occluded(forward, backward)  # (at A's pixels) content that B does not show
    af, bf = a.astype(np.float32), b.astype(np.float32)
    out = []
    for j in range(1, k):
        t = j / k
        to_a = -(1 - t) * t * forward + t * t * backward
        to_b = (1 - t) ** 2 * forward - t * (1 - t) * backward
        a_t, b_t = warp(af, to_a), warp(bf, to_b)
        # Visibility at time t, carried along the same flows: 1 where the end shows the pixel.
        vis_a = 1.0 - warp(hidden_in_a.astype(np.float32), to_a)
        vis_b = 1.0 - warp(hidden_in_b.astype(np.float32), to_b)
        wa, wb = (1 - t) * vis_a, t * vis_b
        total = wa + wb
        unsure = total < 1e-3
        wa = np.where(unsure, 1 - t, wa / np.maximum(total, 1e-3))[..., None]
        blended = wa * a_t + (1.0 - wa) * b_t
        out.append(np.clip(np.rint(blended), 0, 255).astype(np.uint8))
    return out


def interpolated(frames: Iterator[np.ndarray], k: int, quality: str = "medium") -> Iterator[np.ndarray]:
    """Each frame, then the k - 1 frames between it and the next; the last frame alone."""
    estimator = FlowEstimator("dis", quality)
    previous = None
    for frame in frames:
        if previous is not None:
            yield from between(previous, frame, k, estimator)
        yield frame
        previous = frame
