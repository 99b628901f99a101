"""Measures of a render: how much a dreamed clip flickers (the warping error of Lai et al.
2018), and how sharp and colourful a long zoom stays (`frame_stats`, `motion_error`).

"Learning Blind Video Temporal Consistency" (ECCV 2018), eq. 9: for each pair of frames,
warp output frame t-1 onto frame t with the optical flow of the SOURCE frames and take the
mean squared difference (images in [0, 1]) over the pixels that flow can be trusted on
(forward-backward consistency, `flow.occluded`); average over pairs. Pairs across a scene
cut are skipped. The same number for the source itself is the floor the flow's own errors
set; for independent per-frame dreaming (`--flow none`) it is what coherence removes.

Beside it (issue 8):
- the long-term warping error: frame t against frame t-LONG_TERM_K, warped by the direct source
  flow between the two (forward-backward checked like the short-term one). A region hidden for
  a moment (a car passes in front) and visible again in both frames counts here, so it tells
  whether the dream it had comes back; a flow chained through the frames in between would
  mark that region occluded and never look at it;
- the dream strength of each frame, mean |output - source| in levels: the later frames of a
  shot against its first (coherence must not come from dreaming less), each shot's first
  frame against the shot's median (no flash at a cut), and the 90th/10th percentile ratio;
- brightness: the output's mean level minus the source's, per frame (its spread and trend).

With `frames=` (issue 24), a second rendering of the same clip is measured in the same pass
with the same flows: the PNG frames a file was encoded from, so the table shows what the encode
added (`output_over_frames`).

Both files are streamed, LONG_TERM_K frames of each in memory, so a long clip costs no memory.
"""
from __future__ import annotations

import os
from collections import deque
from contextlib import closing
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..errors import InputError

MEASURE_QUALITY = "medium"  # DIS preset for measuring: the most accurate of the three (flow.py)
LONG_TERM_K = 6  # frames: the long-term pair (t - k, t); Ruder et al. 2016 link frames up to t - 4 .. t - 8 back


def coherence(source_path: str | os.PathLike, output_path: str | os.PathLike, *, flow: str = "dis",
              max_frames: int | None = None, start: int | None = None,
              frames: str | os.PathLike | None = None) -> dict:
    """Warping error of `output_path` and of `source_path`, measured with the source's flow.

    output_path: a video file, or a folder of frame_%05d.png frames (a work folder: its first
    unbroken run of frames). frames: the frames the output was encoded from (a folder), measured
    in the same pass; the result then has "encoded_from": {"path", "warping_error",
    "ratio_to_source", "long_term_error", "long_term_ratio"} and "output_over_frames" (short
    term) and "long_term_output_over_frames". start: the source frame
    the output begins at (a render of a range); None: what the output says (the comment tag
    dreamvid writes into a rendered video, or the first frame number of a frame folder), else
    0. Frames are compared at the output's size:
    the source is scaled to it (aspect kept, as `--max-size` did), and one pixel of even-size
    padding the encoder added is cropped off the output; any other mismatch resizes the
    source frames to the output's size, which the result says under "resized".

    Returns {"source", "output", "flow", "frames", "pairs", "skipped_cuts", "size": [w, h],
    "resized": str | None, "warping_error": {"output": float, "source": float},
    "ratio_to_source": float, "pair_errors": [[i, output error of the pair (i - 1, i)]],
    "start": int, "notes": [str], "long_term": {"k", "pairs",
    "warping_error": {...}, "ratio_to_source"}, "strength": {...}, "brightness": {...}} (see
    `_strength_summary`, `_brightness_summary`). Errors are mean squared differences of [0, 1]
    images. `notes` says when the frame counts differ or the output does not look like a
    render of the source at `start` (the numbers would mean nothing).
    """
    from .. import media
    from ..flow import FlowEstimator, is_scene_cut, occluded, warping_error

    src_info = media.probe_video(source_path)
    start, notes = _output_start(Path(output_path), start, src_info.path.name)
    out_frames, out_size, out_count = _open_output(Path(output_path), notes)
    pngs = _open_frames(Path(frames), start, notes) if frames is not None else None
    if pngs is not None:
        out_count = min(out_count, pngs[2])
    if start < 0 or start >= src_info.n_frames:
        raise InputError(f"start frame {start} is outside {src_info.path.name} ({src_info.n_frames} frames)",
                         hint="give the frame the output was rendered from")
    n = min(out_count, src_info.n_frames - start)
    if max_frames is not None:
        n = min(n, max_frames)
    if n < 2:
        raise InputError("coherence needs at least two frames in both files", hint="render a longer clip")
    plan = _size_plan((src_info.width, src_info.height), out_size)
    if pngs is not None and pngs[1] != plan.size:
        pngs[0].close()
        raise InputError(f"the frames in {Path(frames).name} are {pngs[1][0]}x{pngs[1][1]}, the output "
                         f"{plan.size[0]}x{plan.size[1]}: they are not the frames it was encoded from",
                         hint="give the work folder (--keep-frames) or PNG frames of the same render")
    estimator = FlowEstimator(flow, MEASURE_QUALITY)
    sources = media.read_frames(src_info.path, start=start, end=start + n, max_size=plan.max_size, info=src_info)
    keys = ("output", "source", "frames") if pngs is not None else ("output", "source")
    errors: dict[str, list[float]] = {k: [] for k in keys}
    long_errors: dict[str, list[float]] = {k: [] for k in keys}
    strength, brightness, shot_starts = [], [], [0]
    history: deque = deque(maxlen=LONG_TERM_K)  # ({"source", "output"[, "frames"]}, shot number) of the last k

    def pair_errors(prev, cur, into):
        back, fwd = estimator.flow(cur["source"], prev["source"]), estimator.flow(prev["source"], cur["source"])
        mask = ~occluded(back, fwd)
        for key in keys:
            err = warping_error([prev[key], cur[key]], [back], [mask])
            if np.isfinite(err):
                into[key].append(err)

    pairs = cuts = 0
    per_pair: list[list] = []  # [i, output warping error of the pair (i - 1, i)]: where a seam would show
    first_pair = None
    streams = [sources, out_frames] + ([pngs[0]] if pngs is not None else [])
    with closing(sources), closing(out_frames), closing(pngs[0] if pngs is not None else (_ for _ in ())):
        for i, ((_, src), out, *png) in enumerate(zip(*streams)):
            src, out = plan.source(src), plan.output(out)
            cur = {"source": src, "output": out, **({"frames": plan.output(png[0])} if png else {})}
            diff = out.astype(np.float32) - src.astype(np.float32)
            strength.append(float(np.abs(diff).mean()))
            brightness.append(float(diff.mean()))
            if first_pair is None:
                first_pair = (src, out)
            if history:
                prev, shot = history[-1]
                if is_scene_cut(prev["source"], src):
                    cuts += 1
                    shot_starts.append(i)
                else:
                    before = len(errors["output"])
                    pair_errors(prev, cur, errors)
                    if len(errors["output"]) > before:
                        per_pair.append([i, errors["output"][-1]])
                    pairs += 1
            shot = len(shot_starts) - 1
            if len(history) == LONG_TERM_K and history[0][1] == shot:  # history[0] is frame i - k
                pair_errors(history[0][0], cur, long_errors)
            history.append((cur, shot))
    if pairs == 0:
        raise InputError("no pair of consecutive frames could be compared (every pair crosses a scene cut)",
                         hint="measure a clip with at least one continuous shot")
    notes += _mismatch_notes(src_info, start, out_count, first_pair)
    w_out, w_src = _mean(errors["output"]), _mean(errors["source"])
    l_out, l_src = _mean(long_errors["output"]), _mean(long_errors["source"])
    encoded = {}
    if pngs is not None:
        w_png, l_png = _mean(errors["frames"]), _mean(long_errors["frames"])
        encoded = {"encoded_from": {"path": str(frames), "warping_error": w_png, "ratio_to_source": _ratio(w_png, w_src),
                              "long_term_error": l_png, "long_term_ratio": _ratio(l_png, l_src)},
                   "output_over_frames": _ratio(w_out, w_png), "long_term_output_over_frames": _ratio(l_out, l_png)}
    return {
        "source": str(src_info.path), "output": str(output_path), "flow": flow, "frames": n,
        "pairs": pairs, "skipped_cuts": cuts, "size": list(plan.size), "resized": plan.note,
        "warping_error": {"output": w_out, "source": w_src},
        "ratio_to_source": _ratio(w_out, w_src), "pair_errors": per_pair, "start": start, "notes": notes,
        "long_term": {"k": LONG_TERM_K, "pairs": len(long_errors["source"]),
                      "warping_error": {"output": l_out, "source": l_src}, "ratio_to_source": _ratio(l_out, l_src)},
        "strength": _strength_summary(strength, shot_starts),
        "brightness": _brightness_summary(brightness), **encoded,
    }


UNRELATED_BELOW = 0.3  # correlation of the two first frames' edges; a dream of a frame keeps its edges (>0.5)


def _output_start(output: Path, start: int | None, source_name: str) -> tuple[int, list[str]]:
    """Where in the source the output begins: `start` if given, else what the output says
    (with notes where what it says disagrees with what was asked)."""
    from .. import media
    from .workdir import FRAME_RE, parse_comment

    if output.is_dir():
        numbers = sorted(int(m.group(1)) for p in output.iterdir() if (m := FRAME_RE.match(p.name)))
        return (start if start is not None else numbers[0] if numbers else 0), []
    told = parse_comment(media.probe_video(output).comment)
    if told is None:
        return (start or 0), []
    notes = []
    if told["source"] != source_name:
        notes.append(f"{output.name} says it is a render of {told['source']}, not {source_name}")
    if start is None:
        start = told["start"]
        if start:
            notes.append(f"{output.name} was rendered from frame {start}; measured from there")
    elif start != told["start"]:
        notes.append(f"{output.name} says it was rendered from frame {told['start']}, not {start}")
    return start, notes


def _mismatch_notes(src_info, start: int, out_count: int, first_pair) -> list[str]:
    notes = []
    if out_count != src_info.n_frames - start:
        notes.append(f"the output has {out_count} frames, the source {src_info.n_frames - start} from frame {start}: "
                     f"only the first {min(out_count, src_info.n_frames - start)} are compared")
    if first_pair is not None and _edge_correlation(*first_pair) < UNRELATED_BELOW:
        notes.append(f"the output's first frame does not look like frame {start} of {src_info.path.name}: "
                     f"is it a render of this clip (and from this --start)?")
    return notes


def _edge_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of the blurred edge maps of two (H, W, 3) uint8 frames (1: the same structure)."""
    def edges(x):
        grey = cv2.GaussianBlur(cv2.cvtColor(np.asarray(x, np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 2)
        mag = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
        return cv2.GaussianBlur(mag, (0, 0), 3).ravel()

    ea, eb = edges(a), edges(b)
    if ea.std() == 0 or eb.std() == 0:
        return 1.0
    return float(np.corrcoef(ea, eb)[0, 1])


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf") if a > 0 else float("nan")


def _strength_summary(strength: list[float], shot_starts: list[int]) -> dict:
    """Dream strength, mean |output - source| in levels (0..255) per frame, summed up.

    "first": mean over the shots' first frames; "later": mean over the other frames;
    "later_over_first": their ratio (coherence must not come from dreaming less);
    "first_over_median": the largest ratio of a shot's first frame to the shot's median (a
    flash at a cut shows here); "p90_over_p10": 90th over 10th percentile of all frames.
    """
    s = np.asarray(strength, np.float64)
    firsts = s[shot_starts]
    later = np.delete(s, shot_starts)
    bounds = [*shot_starts, len(s)]
    first_over_median = max(s[a] / max(float(np.median(s[a:b])), 1e-9) for a, b in zip(bounds[:-1], bounds[1:]))
    p10, p90 = np.percentile(s, [10, 90])
    return {"per_frame": [round(float(v), 3) for v in s], "shot_starts": list(shot_starts),
            "first": float(firsts.mean()), "later": float(later.mean()) if later.size else float("nan"),
            "later_over_first": float(later.mean() / firsts.mean()) if later.size and firsts.mean() > 0
            else float("nan"),
            "median": float(np.median(s)), "first_over_median": float(first_over_median),
            "p90_over_p10": float(p90 / p10) if p10 > 0 else float("inf")}


def _brightness_summary(offset: list[float]) -> dict:
    """The output's mean level minus the source's, per frame (levels): "mean", "range" (max -
    min), "trend_per_100_frames" (least-squares slope), "max_abs" (largest |offset|)."""
    o = np.asarray(offset, np.float64)
    slope = float(np.polyfit(np.arange(len(o)), o, 1)[0]) * 100 if len(o) > 1 else 0.0
    return {"mean": float(o.mean()), "range": float(o.max() - o.min()), "trend_per_100_frames": slope,
            "max_abs": float(np.abs(o).max())}


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


def _frame_files(path: Path, notes: list[str]) -> list[Path]:
    """The folder's frame_NNNNN.png files from the first one on, up to the first gap (a work folder
    of an interrupted render), with a note when a gap cut the run short."""
    from .workdir import FRAME_RE

    numbered = sorted((int(m.group(1)), p) for p in path.iterdir() if (m := FRAME_RE.match(p.name)) and p.is_file())
    if not numbered:
        raise InputError(f"{path} holds no frame_*.png frames", hint="give the rendered video or frame folder")
    run = [p for k, (n, p) in enumerate(numbered) if n == numbered[0][0] + k]
    if len(run) < len(numbered):
        notes.append(f"{path.name} skips from frame {numbered[0][0] + len(run) - 1} to "
                     f"{numbered[len(run)][0]}: only the {len(run)} frames before the gap are measured")
    return run


def _open_frames(path: Path, start: int, notes: list[str]):
    """(frames, (width, height), count) of the PNG folder an output was encoded from (`--frames`)."""
    if not path.is_dir():
        raise InputError(f"--frames {path} is not a folder", hint="give the work folder (--keep-frames, "
                                                                   "--work-dir) or a folder of frame_NNNNN.png")
    first = _output_start(path, None, "")[0]
    if first != start:
        notes.append(f"{path.name} begins at frame {first}, the output at {start}: compared frame by frame "
                     "from their first frames")
    return _open_output(path, notes)


def _open_output(path: Path, notes: list[str]) -> tuple[Iterator[np.ndarray], tuple[int, int], int]:
    """(frames, (width, height), frame count) of a video file or a PNG frame folder."""
    from .. import media

    if path.is_dir():
        files = _frame_files(path, notes)
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
