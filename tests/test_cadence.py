"""Tests for dreamvid/cadence.py: chaining per-frame flows into one link, and the frames
between two keyframes (time weights, occlusion-aware fall-back to one end or to the source)."""
from __future__ import annotations

import numpy as np

from dreamvid.cadence import Link, between, chain
from dreamvid.flow import Motion

H, W = 24, 32


def shift(dx: float, dy: float, reliable: float = 1.0) -> Motion:
    flow = np.zeros((H, W, 2), np.float32)
    flow[..., 0], flow[..., 1] = dx, dy
    return Motion(flow, -flow, np.full((H, W), reliable, np.float32))


def test_chained_shifts_add_up_and_their_reliabilities_multiply():
    link = chain(shift(1.0, 0.5, 0.8), chain(shift(2.0, -1.5, 0.5), None))
    assert np.allclose(link.flow[..., 0], 3.0) and np.allclose(link.flow[..., 1], -1.0)
    assert np.allclose(link.reliable[4:-4, 4:-4], 0.4)


def test_a_frame_between_blends_both_ends_by_time_and_by_what_each_end_sees():
    rng = np.random.default_rng(0)
    source = rng.integers(60, 190, (H, W, 3)).astype(np.uint8)
    d0 = np.full((H, W, 3), 20, np.uint8)
    d1 = np.full((H, W, 3), 40, np.uint8)
    zero = np.zeros((H, W, 2), np.float32)
    ends = ((source, source + d0), (source, source + d1))

    def link(r):
        return Link(zero, np.full((H, W), r, np.float32))

    out = between(source, *ends, link(1.0), link(1.0), w=0.25)  # both ends see every pixel: the time blend
    assert np.allclose(out - source, 0.75 * 20 + 0.25 * 40, atol=1e-3)
    out = between(source, *ends, link(0.0), link(1.0), w=0.25)  # the start cannot see it: all from the end
    assert np.allclose(out - source, 40, atol=1e-3)
    out = between(source, *ends, link(1.0), link(0.0), w=0.9)  # the end cannot: all from the start
    assert np.allclose(out - source, 20, atol=1e-3)
    out = between(source, *ends, link(0.0), link(0.0), w=0.5)  # neither: the source
    assert np.array_equal(out, source.astype(np.float32))
