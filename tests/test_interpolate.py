"""Frames between frames (dreamvid/interpolate.py) and --interpolate on video and zoom."""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from dreamvid import media
from dreamvid.flow import FlowEstimator
from dreamvid.interpolate import between

from .conftest import texture


def shifted(base: np.ndarray, dx: float) -> np.ndarray:
    import cv2

    m = np.float32([[1, 0, dx], [0, 1, 0]])
    return cv2.warpAffine(base, m, (base.shape[1], base.shape[0]), borderMode=cv2.BORDER_REFLECT)


def psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255 ** 2 / max(mse, 1e-9))


def test_the_middle_frame_is_where_the_picture_was_halfway_not_a_crossfade():
    base = texture(64, 96, seed=3)
    a, b, truth = shifted(base, 0), shifted(base, 6), shifted(base, 3)
    mid = between(a, b, 2, FlowEstimator("dis", "medium"))
    assert len(mid) == 1 and mid[0].shape == a.shape and mid[0].dtype == np.uint8
    inner = (slice(8, -8), slice(12, -12))
    crossfade = ((a.astype(np.float32) + b) / 2).round().astype(np.uint8)
    assert psnr(mid[0][inner], truth[inner]) > psnr(crossfade[inner], truth[inner]) + 5
    thirds = between(a, b, 3, FlowEstimator("dis", "medium"))
    assert len(thirds) == 2 and psnr(thirds[0][inner], shifted(base, 2)[inner]) > 25


def test_video_interpolate_writes_k_minus_1_frames_between_at_k_times_the_rate(tmp_path, tiny, make_clip):
    from dreamvid.render import render_video
    from dreamvid.settings import DreamSettings, Settings, VideoSettings

    src, _ = make_clip("i.mp4", n=5, width=96, height=64)
    s = Settings(DreamSettings(model=tiny, num_octave=1, iterations=1, max_loss=None),
                 VideoSettings(frame_iterations=1, frame_num_octave=1))
    r = render_video(src, tmp_path / "smooth.mp4", s, interpolate=3)
    info = media.probe_video(r.output)
    assert info.n_frames == (5 - 1) * 3 + 1 and info.fps == Fraction(75) and r.fps == Fraction(75)
    slow = render_video(src, tmp_path / "slow.mp4", s, interpolate=2, fps="25")
    assert media.probe_video(slow.output).n_frames == 9 and slow.fps == 25
    assert not (tmp_path / "smooth.mp4.dreamvid-work").exists()
