"""Measures of a render: how much a dreamed clip flickers (the warping error of Lai et al.
2018), and how sharp and colourful a long zoom stays (`frame_stats`, `motion_error`).

"Learning Blind Video Temporal Consistency" (ECCV 2018), eq. 9: for each pair of frames,
warp output frame t-1 onto frame t with the optical flow of the SOURCE frames and take the
mean squared difference (images in [0, 1]) over the pixels that flow can be trusted on
(forward-backward consistency, `flow.occluded`); average over pairs. Pairs across a scene
cut are skipped. The same number for the source itself is the floor the flow's own errors
set; for independent per-frame dreaming (`--flow none`) it is what coherence removes.

Both files are streamed, two frames of each in memory, so a long clip costs no memory.
"""
from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..errors import InputError

MEASURE_QUALITY = "medium"  # DIS preset for measuring: the most accurate of the three (flow.py)


def coherence(source_path: str | os.PathLike, output_path: str | os.PathLike, *, flow: str = "dis",
              max_frames: int | None = None, start: int = 0, details: bool = False) -> dict:
    """Warping error of `output_path` and of `source_path`, measured with the source's flow.

    output_path: a video file, or a folder of frame_%05d.png frames. start: the source frame
    the output begins at (a render of a range). Frames are compared at the output's size:
    the source is scaled to it (aspect kept, as `--max-size` did), and one pixel of even-size
    padding the encoder added is cropped off the output; any other mismatch resizes the
    source frames to the output's size, which the result says under "resized".

    Returns {"source", "output", "flow", "frames", "pairs", "skipped_cuts", "size": [w, h],
    "resized": str | None, "warping_error": {"output": float, "source": float},
    "ratio_to_source": float}. Errors are mean squared differences of [0, 1] images.
    details: also "pair_errors" ([t, error] of the output pair (t - 1, t), t counted from the
    output's first frame) and "strength" (the dream's mean absolute difference from the
    source, [0, 1] images, over every frame).
    """
    from .. import media
    from ..flow import FlowEstimator, is_scene_cut, occluded, warping_error

    src_info = media.probe_video(source_path)
    out_frames, out_size, out_count = _open_output(Path(output_path))
    if start < 0 or start >= src_info.n_frames:
        raise InputError(f"start frame {start} is outside {src_info.path.name} ({src_info.n_frames} frames)",
                         hint="give the frame the output was rendered from")
    n = min(out_count, src_info.n_frames - start)
    if max_frames is not None:
        n = min(n, max_frames)
    if n < 2:
        raise InputError("coherence needs at least two frames in both files", hint="render a longer clip")
    plan = _size_plan((src_info.width, src_info.height), out_size)
    estimator = FlowEstimator(flow, MEASURE_QUALITY)
    sources = media.read_frames(src_info.path, start=start, end=start + n, max_size=plan.max_size, info=src_info)
    errors = {"output": [], "source": []}
    pairs = cuts = 0
    per_pair, strength = [], []
    with closing(sources), closing(out_frames):
        prev_src = prev_out = None
        for (index, src), out in zip(sources, out_frames):
            src, out = plan.source(src), plan.output(out)
            if details:
                strength.append(float(np.mean(np.abs(out.astype(np.float32) - src.astype(np.float32)))) / 255)
            if prev_src is not None:
                if is_scene_cut(prev_src, src):
                    cuts += 1
                else:
                    back, fwd = estimator.flow(src, prev_src), estimator.flow(prev_src, src)
                    mask = ~occluded(back, fwd)
                    for key, (a, b) in (("output", (prev_out, out)), ("source", (prev_src, src))):
                        err = warping_error([a, b], [back], [mask])
                        if np.isfinite(err):
                            errors[key].append(err)
                            if key == "output":
                                per_pair.append([index - start, err])
                    pairs += 1
            prev_src, prev_out = src, out
    if pairs == 0:
        raise InputError("no pair of consecutive frames could be compared (every pair crosses a scene cut)",
                         hint="measure a clip with at least one continuous shot")
    w_out = float(np.mean(errors["output"])) if errors["output"] else float("nan")
    w_src = float(np.mean(errors["source"])) if errors["source"] else float("nan")
    extra = {"pair_errors": per_pair, "strength": float(np.mean(strength))} if details else {}
    return {
        "source": str(src_info.path), "output": str(output_path), "flow": flow, "frames": n,
        "pairs": pairs, "skipped_cuts": cuts, "size": list(plan.size), "resized": plan.note,
        "warping_error": {"output": w_out, "source": w_src},
        "ratio_to_source": w_out / w_src if w_src > 0 else float("inf"),
        **extra,
    }


class _SizePlan:
    """How source and output frames are brought to one size (the output's, padding removed)."""

    def __init__(self, size, max_size, crop, resize_source, note):
        self.size, self.max_size, self._crop, self._resize, self.note = size, max_size, crop, resize_source, note

    def source(self, frame: np.ndarray) -> np.ndarray:
        if self._resize and frame.shape[1::-1] != tuple(self.size):
            return cv2.resize(frame, tuple(self.size), interpolation=cv2.INTER_AREA)
        return frame

    def output(self, frame: np.ndarray) -> np.ndarray:
        w, h = self.size
        return frame[:h, :w] if self._crop else frame


def _size_plan(src_size: tuple[int, int], out_size: tuple[int, int]) -> _SizePlan:
    from ..media import even_size, scaled_size

    longest = max(out_size)
    scaled = scaled_size(*src_size, longest)
    for cand in dict.fromkeys([scaled, scaled_size(*src_size, longest - 1)]):  # odd longest side, padded
        if cand == out_size:
            note = None if cand == tuple(src_size) else f"source scaled to {cand[0]}x{cand[1]} (the output's size)"
            return _SizePlan(cand, longest if cand != tuple(src_size) else None, False, False, note)
        if even_size(*cand) == out_size:
            note = f"output cropped to {cand[0]}x{cand[1]} (1 px of even-size padding)"
            if cand != tuple(src_size):
                note += "; source scaled to that size"
            return _SizePlan(cand, max(cand) if cand != tuple(src_size) else None, True, False, note)
    note = (f"source resized from {src_size[0]}x{src_size[1]} to the output's {out_size[0]}x{out_size[1]} "
            "(aspect ratios differ)")
    return _SizePlan(out_size, None, False, True, note)


def _open_output(path: Path) -> tuple[Iterator[np.ndarray], tuple[int, int], int]:
    """(frames, (width, height), frame count) of a video file or a PNG frame folder."""
    from .. import media

    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.name.startswith("frame_")
                       and p.suffix.lower() == ".png")
        if not files:
            raise InputError(f"{path} holds no frame_*.png frames", hint="give the rendered video or frame folder")
        first = media.read_image(files[0])

        def frames():
            for f in files:
                yield media.read_image(f)

        return frames(), (first.shape[1], first.shape[0]), len(files)
    info = media.probe_video(path)

    def decoded():
        with closing(media.read_frames(path, info=info)) as reader:  # ffmpeg reaped on close too
            for _, frame in reader:
                yield frame

    return decoded(), (info.width, info.height), info.n_frames


# ---- zoom: is a long zoom still sharp and colourful, and does it follow its path? ---------------------------------------

def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey picture ((H, W, 3) uint8): falls as blur sets in."""
    grey = cv2.cvtColor(np.asarray(image, np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def colorfulness(image: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness of (H, W, 3) uint8 RGB: ~0 grey, 50 moderate, 100+ vivid."""
    rgb = np.asarray(image, np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def frame_stats(image: np.ndarray) -> dict[str, float]:
    """Sharpness, colourfulness, mean channel spread and mean saturation of one frame."""
    u8 = np.asarray(image, np.uint8)
    hsv = cv2.cvtColor(u8, cv2.COLOR_RGB2HSV)
    return {"sharpness": sharpness(u8), "colorfulness": colorfulness(u8),
            "channel_std": float(u8.reshape(-1, 3).std(0).mean()), "saturation": float(hsv[..., 1].mean()),
            "brightness": float(u8.mean())}


def motion_error(previous: np.ndarray, current: np.ndarray, m: np.ndarray) -> float:
    """Mean squared difference (0..1 scale) between `current` and `previous` moved by the known
    affine m, on the pixels that came from inside the previous frame: the zoom's coherence."""
    h, w = current.shape[:2]
    from ..trajectory import apply

    moved = apply(np.asarray(previous, np.float32) / 255.0, m, "lanczos")
    inside = cv2.warpAffine(np.ones((h, w), np.float32), np.asarray(m, np.float64), (w, h),
                            flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.5
    diff = (np.asarray(current, np.float32) / 255.0 - moved) ** 2
    return float(diff[inside].mean()) if inside.any() else 0.0
