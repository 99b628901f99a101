"""Tests for dreamvid.flow: flow accuracy, the warp direction, occlusion, cuts, propagation, drift.

Fixtures are synthetic textures moved by known amounts (numpy + cv2). The scene-cut tests
also read two real clips from samples/ (see samples/README.md).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dreamvid.errors import SettingsError
from dreamvid.flow import (
    FlowEstimator,
    Motion,
    cut_score,
    is_scene_cut,
    mismatched,
    motion_between,
    occluded,
    out_of_frame,
    propagate,
    reliability,
    sequence_warping_error,
    warp,
    warping_error,
)

H, W = 96, 128  # px: small frames keep the suite fast
MARGIN = 16  # px: compare away from borders, where content enters or leaves the frame
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


# ---------------------------------------------------------------- synthetic fixtures

def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """(h, w, 3) uint8 RGB: smooth noise at three scales, trackable everywhere."""
    rng = np.random.default_rng(seed)
    out = np.zeros((h, w, 3), np.float32)
    for sigma, amp in ((1, 0.3), (3, 0.5), (8, 1.0)):
        noise = cv2.GaussianBlur(rng.standard_normal((h, w, 3)).astype(np.float32), (0, 0), sigma)
        out += amp * noise / noise.std()
    out = (out - out.min()) / (out.max() - out.min()) * 255
    return out.astype(np.uint8)


def translating_clip(n: int, dx: int, dy: int, seed: int = 0, base: np.ndarray | None = None):
    """n frames (H, W, 3) uint8 of one texture moving (+dx, +dy) px per frame (exact crops)."""
    pad = max(abs(dx), abs(dy)) * n + 1
    canvas = texture(H + 2 * pad, W + 2 * pad, seed) if base is None else base
    # frame_t(x) = frame_0(x - t * d): the crop window moves by -d each frame
    return [canvas[pad - t * dy:pad - t * dy + H, pad - t * dx:pad - t * dx + W] for t in range(n)]


def subpixel_pair(dx: float, dy: float, seed: int = 0):
    """(a, b) where b is a moved by (dx, dy) px (bicubic), cropped to (H, W)."""
    pad = 24
    canvas = texture(H + 2 * pad, W + 2 * pad, seed)
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(canvas, shift, canvas.shape[1::-1], flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REFLECT)
    return canvas[pad:pad + H, pad:pad + W], moved[pad:pad + H, pad:pad + W]


def interior(a: np.ndarray) -> np.ndarray:
    return a[MARGIN:-MARGIN, MARGIN:-MARGIN]


def mad(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference in levels, away from the borders."""
    return float(np.abs(interior(a).astype(np.float32) - interior(b).astype(np.float32)).mean())


def overlay(frame: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """frame + pattern as uint8 (clipped): a stand-in for dream detail."""
    return np.clip(frame.astype(np.int16) + pattern, 0, 255).astype(np.uint8)


def constant_flow(dx: float, dy: float) -> np.ndarray:
    return np.broadcast_to(np.float32([dx, dy]), (H, W, 2)).copy()


def still_motion() -> Motion:
    zero = constant_flow(0, 0)
    return Motion(zero, zero, np.ones((H, W), np.float32))


@pytest.fixture(scope="module")
def estimator() -> FlowEstimator:
    return FlowEstimator()  # DIS medium, the default


@pytest.fixture(scope="module")
def rough_estimator() -> FlowEstimator:
    return FlowEstimator("dis", "ultrafast")  # noisier flow: a harsher test where speed counts


# ---------------------------------------------------------------- estimator

def test_unknown_method_lists_known_ones():
    with pytest.raises(SettingsError) as err:
        FlowEstimator("raft")
    assert "raft" in err.value.message
    assert "dis" in err.value.hint and "farneback" in err.value.hint


def test_unknown_quality_lists_known_ones():
    with pytest.raises(SettingsError) as err:
        FlowEstimator("dis", quality="best")
    assert "ultrafast" in err.value.hint and "medium" in err.value.hint


@pytest.mark.parametrize("method, quality, max_epe", [
    ("dis", "ultrafast", 0.25), ("dis", "fast", 0.25), ("dis", "medium", 0.1),
    ("farneback", "fast", 0.5),
])
@pytest.mark.parametrize("shift", [(3.0, -2.0), (0.5, 1.25), (8.0, 5.0)])
def test_flow_recovers_known_shift(method, quality, max_epe, shift):
    a, b = subpixel_pair(*shift)
    flow = FlowEstimator(method, quality).flow(b, a)  # b(x) = a(x - shift)
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    epe = np.linalg.norm(interior(flow) + np.float32(shift), axis=-1).mean()
    assert epe < max_epe


def test_flow_takes_gray_and_float_frames(estimator):
    a, b = subpixel_pair(3.0, -2.0)
    rgb = estimator.flow(b, a)
    gray = estimator.flow(cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), cv2.cvtColor(a, cv2.COLOR_RGB2GRAY))
    floats = estimator.flow(b.astype(np.float32), a.astype(np.float32))
    np.testing.assert_allclose(gray, rgb, atol=1e-5)
    np.testing.assert_allclose(floats, rgb, atol=1e-5)


def test_estimator_is_reused_across_frame_sizes(estimator):
    a, b = subpixel_pair(3.0, -2.0)
    first = estimator.flow(b, a)
    estimator.flow(b[:48, :64], a[:48, :64])
    np.testing.assert_array_equal(estimator.flow(b, a), first)  # deterministic, no leftovers


# ---------------------------------------------------------------- warp

def test_warp_pulls_previous_frame_into_current_with_backward_flow(estimator):
    """The DESIGN step 2 law: W = warp(S_{t-1}, flow(S_t -> S_{t-1})) ~ S_t; other signs fail."""
    prev, cur = translating_clip(2, dx=3, dy=-2)
    backward = estimator.flow(cur, prev)
    forward = estimator.flow(prev, cur)
    assert mad(warp(prev, backward), cur) < 1.0
    assert mad(warp(prev, -backward), cur) > 10.0  # the sign flipped
    assert mad(warp(prev, forward), cur) > 10.0  # the wrong flow (previous -> current)


def test_warp_exact_on_integer_flow():
    prev, cur = translating_clip(2, dx=3, dy=-2)
    np.testing.assert_array_equal(interior(warp(prev, constant_flow(-3, 2))), interior(cur))


@pytest.mark.parametrize("shape, dtype", [
    ((H, W, 3), np.uint8), ((H, W, 3), np.float32), ((H, W), np.float32),
    ((H, W, 1), np.float32), ((H, W, 2), np.float32), ((H, W, 5), np.uint8),
])
def test_warp_keeps_shape_and_dtype(shape, dtype):
    image = (np.random.default_rng(1).random(shape) * 255).astype(dtype)
    out = warp(image, constant_flow(0, 0))
    assert out.shape == shape and out.dtype == dtype
    np.testing.assert_array_equal(out, image)


def test_warp_interpolates_bilinearly_and_replicates_edges():
    ramp = np.tile(np.arange(W, dtype=np.float32), (H, 1))
    out = warp(ramp, constant_flow(0.5, 0))
    np.testing.assert_allclose(out[:, :-1], ramp[:, :-1] + 0.5, atol=1 / 32)  # remap: 1/32 px
    np.testing.assert_allclose(warp(ramp, constant_flow(10, 0))[:, -1], W - 1)


def test_out_of_frame():
    assert not out_of_frame(constant_flow(0, 0)).any()
    assert not out_of_frame(constant_flow(-0.4, 0.4)).any()  # flow noise at the border
    mask = out_of_frame(constant_flow(5, 0))
    assert mask[:, -5:].all() and not mask[:, :-5].any()
    mask = out_of_frame(constant_flow(0, -2))
    assert mask[:2].all() and not mask[2:].any()


# ---------------------------------------------------------------- occlusion

def moving_square(x_prev: int, x_cur: int, seed: int):
    """A 40 px textured square moving right over a static textured background."""
    background, square = texture(H, W, seed), 255 - texture(40, 40, seed + 1)
    frames = []
    for x in (x_prev, x_cur):
        frame = background.copy()
        frame[28:68, x:x + 40] = square
        frames.append(frame)
    return frames


@pytest.mark.parametrize("seed", [1, 3, 5, 7])
@pytest.mark.parametrize("x, dx", [(40, 4), (30, 4), (40, 6), (35, 5)])
def test_disoccluded_strip_is_unreliable(estimator, seed, x, dx):
    prev, cur = moving_square(x, x + dx, seed)
    motion = motion_between(prev, cur, estimator)
    assert motion.reliable[32:64, x:x + dx].mean() < 0.25  # background uncovered in frame t
    inside = motion.reliable[36:60, x + dx + 8:x + dx + 32]  # square interior
    assert inside.mean() > 0.97 and inside.min() > 0.8
    far = np.ones((H, W), bool)
    far[12:84, x - 16:x + dx + 56] = False  # background at least 16 px from the square
    assert motion.reliable[far].min() > 0.99


def test_round_trip_alone_misses_part_of_the_strip(estimator):
    """Why `mismatched` exists: DIS smears the edge's motion over the uncovered strip."""
    prev, cur = moving_square(30, 34, seed=1)
    backward, forward = estimator.flow(cur, prev), estimator.flow(prev, cur)
    strip = np.s_[32:64, 30:34]
    round_trip = occluded(backward, forward)[strip]
    with_photo = round_trip | mismatched(prev, cur, backward)[strip]
    assert round_trip.mean() < 0.2 and with_photo.mean() > 0.3


@pytest.mark.parametrize("change", [
    lambda f: f * 0.7, lambda f: f + 30.0, lambda f: f * 0.8 + 51.0,  # fades, exposure
])
def test_mismatch_ignores_global_lighting_changes(change):
    frame = texture(H, W, 3)
    lit = np.clip(change(frame.astype(np.float32)), 0, 255).astype(np.uint8)
    assert not mismatched(frame, lit, constant_flow(0, 0)).any()
    assert mismatched(frame, lit, constant_flow(0, 6)).mean() > 0.3  # a wrong flow is seen


def test_content_entering_the_frame_is_unreliable(estimator):
    prev, cur = translating_clip(2, dx=6, dy=0)  # new content enters on the left
    motion = motion_between(prev, cur, estimator)
    assert motion.reliable[:, :5].max() == 0.0
    assert interior(motion.reliable).min() > 0.99


def test_reliability_soft_and_hard():
    backward, forward = constant_flow(4, 0), constant_flow(-4, 0)
    forward[40:50, 60:70] = 0.0  # a patch where the round trip fails
    hard = reliability(backward, forward, soft=False)
    soft = reliability(backward, forward)
    np.testing.assert_array_equal(hard, ~occluded(backward, forward))
    assert soft.dtype == np.float32 and soft.min() >= 0.0 and soft.max() <= 1.0
    assert (soft[hard == 0] == 0).all()  # flagged pixels never carry anything
    assert (soft <= hard).all() and soft.mean() < hard.mean()  # grown and feathered
    assert soft[10, 10] == 1.0


def test_static_pair_is_fully_reliable(estimator):
    frame = texture(H, W, 3)
    assert motion_between(frame, frame, estimator).reliable.min() == 1.0


def test_motion_from_precomputed_flows(estimator):
    prev, cur = translating_clip(2, dx=3, dy=-2)
    backward, forward = estimator.flow(cur, prev), estimator.flow(prev, cur)  # e.g. a thread
    motion = Motion.from_flows(backward, forward, prev, cur)
    np.testing.assert_array_equal(motion.reliable, motion_between(prev, cur, estimator).reliable)
    assert motion.reliable.shape == (H, W) and motion.reliable.dtype == np.float32


# ---------------------------------------------------------------- scene cuts

def test_scene_cut_on_synthetic_cut(estimator):
    clip = translating_clip(3, dx=3, dy=-2)
    other = cv2.cvtColor(texture(H, W, 9), cv2.COLOR_RGB2HSV)  # other shot, other palette
    assert not is_scene_cut(clip[0], clip[1])
    assert cut_score(clip[0], clip[1]) > 0.95
    assert is_scene_cut(clip[1], other)
    dimmer = (clip[0] * 0.6).astype(np.uint8)  # hue and saturation survive a fade
    assert not is_scene_cut(clip[0], dimmer)  # ... a dimmer is not a cut ...
    assert is_scene_cut(clip[0], np.zeros_like(clip[0]))  # ... a cut to black is


def test_scene_cut_caught_by_flow_when_colours_match(estimator):
    """Two shots with the same colour statistics fool the histogram, not the flow."""
    a = texture(H, W, 4)
    b = np.ascontiguousarray(a[::-1, ::-1])  # same pixels, other places: identical histogram
    assert not is_scene_cut(a, b)
    assert is_scene_cut(a, b, motion=motion_between(a, b, estimator))
    prev, cur = translating_clip(2, dx=3, dy=-2)
    assert not is_scene_cut(prev, cur, motion=motion_between(prev, cur, estimator))


def read_clip(name: str, limit: int | None = None) -> list[np.ndarray]:
    path = SAMPLES / name
    capture, frames = cv2.VideoCapture(str(path)), []
    while limit is None or len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


@pytest.mark.parametrize("name, cuts", [
    ("bikes-cuts.mp4", [10, 56]),  # two hard cuts (frames 30 and 76 of the original), checked by eye
    ("bunny.mp4", []),  # one continuous shot (75 frames)
])
def test_scene_cuts_on_real_clips(name, cuts):
    frames = read_clip(name)
    found = [t for t in range(1, len(frames)) if is_scene_cut(frames[t - 1], frames[t])]
    assert found == cuts


# ---------------------------------------------------------------- propagation

def test_propagate_blend_zero_is_the_source():
    source, dream = texture(H, W, 1), texture(H, W, 2)
    start = propagate(dream, source, source, still_motion(), blend=0.0)
    assert start.dtype == np.float32
    np.testing.assert_array_equal(start, source.astype(np.float32))


def test_propagate_full_carry_on_still_scene_is_the_previous_dream():
    source, dream = texture(H, W, 1), texture(H, W, 2)
    start = propagate(dream, source, source, still_motion(), blend=1.0)
    np.testing.assert_allclose(start, dream.astype(np.float32), atol=1e-3)


def test_propagate_starts_from_source_where_unreliable():
    source, dream = texture(H, W, 1), texture(H, W, 2)
    motion = still_motion()
    reliable = motion.reliable.copy()
    reliable[:, : W // 2] = 0.0
    start = propagate(dream, source, source, Motion(motion.backward, motion.forward, reliable), 1.0)
    np.testing.assert_array_equal(start[:, : W // 2], source[:, : W // 2].astype(np.float32))


def test_propagate_moves_the_dream_with_the_content(estimator):
    """A dream detail stuck to the content in frame t-1 is found stuck to it in frame t."""
    pattern_canvas = np.zeros((H + 40, W + 40, 3), np.uint8)
    pattern_canvas[::8] = 60  # bright horizontal lines every 8 px
    prev, cur = translating_clip(2, dx=3, dy=-2)
    pat_prev, pat_cur = translating_clip(2, dx=3, dy=-2, base=pattern_canvas)
    start = propagate(overlay(prev, pat_prev), prev, cur, motion_between(prev, cur, estimator), 1.0)
    assert mad(start, overlay(cur, pat_cur)) < 1.5
    assert mad(start, overlay(cur, pat_prev)) > 10  # not left behind


def test_propagate_rejects_blend_out_of_range():
    source = texture(H, W, 1)
    with pytest.raises(SettingsError):
        propagate(source, source, source, still_motion(), blend=1.5)


# ---------------------------------------------------------------- drift

CHECKER = (((np.indices((H, W)) // 8).sum(axis=0) % 2) == 1)[..., None]


def toy_dream(image: np.ndarray, strength: float) -> np.ndarray:
    """A stand-in for the dream core: adds `strength` levels on a checker of 8 px cells."""
    return np.clip(image + strength * CHECKER, 0, 255)


def brightness_and_saturation(frame: np.ndarray) -> tuple[float, float]:
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    return float(hsv[..., 2].mean()), float(hsv[..., 1].mean())


def run_still_scene(blend: float, first: float, later: float, estimator, noise: float = 0.0,
                    n: int = 200) -> np.ndarray:
    """n frames of one still scene through flow + propagate + toy dream, stored as uint8.

    noise: camera noise (levels, Gaussian) added to each source frame, so the flow is
    sub-pixel jitter instead of exactly zero and every frame resamples the carried detail.
    Returns (n, 2): brightness and saturation (HSV means) of each output frame.
    """
    rng = np.random.default_rng(0)
    base = (texture(H, W, 6) // 2 + 40).astype(np.float32)  # room above for +levels
    prev = base.astype(np.uint8)
    dream = np.rint(toy_dream(base, first)).astype(np.uint8)
    stats = [brightness_and_saturation(dream)]
    for _ in range(n - 1):
        cur = np.clip(np.rint(base + rng.normal(0, noise, base.shape)), 0, 255).astype(np.uint8)
        start = propagate(dream, prev, cur, motion_between(prev, cur, estimator), blend)
        dream = np.rint(toy_dream(start, later)).astype(np.uint8)
        stats.append(brightness_and_saturation(dream))
        prev = cur
    return np.array(stats)


@pytest.mark.parametrize("noise", [0.0, 2.0])
def test_no_drift_on_a_still_scene(rough_estimator, noise):
    """200 frames: brightness and saturation stay within a level of frame 0's.

    With blend b the carried detail is a geometric series: a per-frame dream that adds
    (1 - b) of frame 0's strength holds the output at frame 0's look (renderers: per-frame
    iterations ~ (1 - blend) x a still's, or max_loss stops them about there).
    """
    blend = 0.7
    stats = run_still_scene(blend, 20.0, (1 - blend) * 20.0, rough_estimator, noise)
    assert np.abs(stats - stats[0]).max() < 1.0


def test_full_strength_dream_settles_instead_of_drifting(rough_estimator):
    """Re-dreaming at full strength every frame converges to detail / (1 - blend), then holds."""
    blend = 0.5
    stats = run_still_scene(blend, 20.0, 20.0, rough_estimator, noise=2.0)
    assert np.ptp(stats[50:], axis=0).max() < 1.0  # stationary after settling
    # checker cells carry 20 / (1 - 0.5) = 40 levels at the fixed point: +20 on the mean
    assert abs((stats[-1, 0] - stats[0, 0]) - 10.0) < 1.0


def test_dream_follows_the_source_lighting(estimator):
    """Carrying only the detail keeps the current frame's own brightness (a slow fade-up)."""
    base = texture(H, W, 6) // 2 + 40
    motion = still_motion()
    prev_source = base.astype(np.float32)
    dream = toy_dream(prev_source, 20.0)
    for t in range(1, 60):
        source = base.astype(np.float32) + t  # +1 level per frame
        dream = toy_dream(propagate(dream, prev_source, source, motion, 0.5), 10.0)
        prev_source = source
    offset = dream.mean() - source.mean()
    assert abs(offset - 10.0) < 0.5  # 20 levels on half the pixels; no lag behind the fade


# ---------------------------------------------------------------- warping error

def noisy(frames, level: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    for frame in frames:
        yield np.clip(frame + rng.normal(0, level, frame.shape), 0, 255).astype(np.uint8)


def test_warping_error_with_exact_flows_is_zero_for_a_translation():
    clip = translating_clip(5, dx=3, dy=-2)
    flows = [constant_flow(-3, 2)] * 4
    masks = [~out_of_frame(f) for f in flows]
    assert warping_error(iter(clip), iter(flows), iter(masks)) == 0.0
    assert warping_error(noisy(clip, 10), flows, masks) > 0.002  # ~2 * (10 / 255)^2


def test_warping_error_scores_coherence(estimator):
    clip = translating_clip(8, dx=3, dy=-2)
    source_error = sequence_warping_error(clip, clip, estimator)
    assert source_error < 1e-4  # DIS recovers the translation: the source is coherent
    stripes = np.zeros((H + 100, W + 100, 3), np.uint8)
    stripes[::6] = 80
    moving = translating_clip(8, dx=3, dy=-2, base=stripes)  # dream detail riding the content
    coherent = [overlay(s, p) for s, p in zip(clip, moving)]
    coherent_error = sequence_warping_error(coherent, clip, estimator)
    assert coherent_error < 1e-4
    left_behind = [overlay(s, moving[0]) for s in clip]
    assert sequence_warping_error(left_behind, clip, estimator) > 100 * coherent_error
    flicker = sequence_warping_error(noisy(clip, 10), iter(clip), estimator)
    assert flicker > 20 * source_error + 1e-3


def test_warping_error_streams_and_checks_lengths(estimator):
    clip = translating_clip(3, dx=3, dy=-2)
    assert np.isnan(sequence_warping_error(clip[:1], clip[:1], estimator))
    with pytest.raises(ValueError):
        sequence_warping_error(clip, clip[:2], estimator)
    with pytest.raises(ValueError):
        warping_error(clip, [constant_flow(0, 0)], [np.ones((H, W), bool)])


def test_warping_error_skips_pairs_without_reliable_pixels():
    clip = translating_clip(3, dx=3, dy=-2)
    flows = [constant_flow(-3, 2)] * 2
    masks = [np.zeros((H, W), bool), ~out_of_frame(flows[1])]
    assert warping_error(clip, flows, masks) == 0.0
    assert np.isnan(warping_error(clip[:2], flows[:1], masks[:1]))


def test_warping_error_skips_scene_cuts(estimator):
    clip = translating_clip(3, dx=3, dy=-2)
    cut = clip[:2] + [np.zeros_like(clip[0])]
    assert sequence_warping_error(cut, cut, estimator) < 1e-4
    assert sequence_warping_error(cut, cut, estimator, skip_cuts=False) > 1e-3
