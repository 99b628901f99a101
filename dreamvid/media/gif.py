"""Writing a GIF that keeps its frames' steadiness (issue 24; docs/coherence.md, "The GIF").

A GIF holds at most 256 colours. Mapped to them one frame at a time, a pixel whose colour
changes a little crosses the border between two palette colours and jumps a whole palette
step, at other pixels on every frame of a moving or re-dreamed texture: the file flickered at
up to 2.5x its frames' warping error (7.8x with ffmpeg's error-diffusion dither, whose pattern
re-forms wherever anything changes). So a GIF is written in two passes over its frames:

1. **One palette for the clip**: ffmpeg's `palettegen` over every frame (255 colours and the
   transparent index the GIF encoder uses for pixels that keep the previous frame's colour).
2. **Colours chosen with the previous frame in mind** (`SteadyQuantiser`): the previous GIF
   frame is moved onto this one along the flow between the two frames (DIS, as the video loop
   computes it; a bicubic warp: a bilinear one softened the GIF's finest detail to 0.76-0.91 of
   the frames' sharpness on moving clips). Where that flow is consistent and the moved colour is
   within PULL_TOLERANCE of the pixel's true colour, the pixel takes the palette colour nearest
   to a point PULL of the way
   from its true colour to the moved one, i.e. the colour c that minimises
   |c - true|^2 + w |c - moved|^2 with w = PULL / (1 - PULL). A still or tracked texture keeps
   its palette colours until its true colour has moved well away from them; new content, an
   occlusion, a scene cut or a colour changed by more than the tolerance gets the nearest colour
   as before. What a whole neighbourhood changed by (a fade) is taken out of the pull
   (SHARED_SIGMA), so that the GIF follows it instead of lagging behind.
3. No dither: the dream's own texture hides the palette's steps, and a pattern fixed to the
   screen swims against moving content (with the pull, an ordered dither of 8 levels left the
   file at up to 1.19x its frames' warping error, of 16 levels 2.8x; none 1.14x).

ffmpeg then writes the file (`paletteuse` maps each colour, already one of the palette's, to its
index; the GIF encoder stores only the rectangle that changed and makes unchanged pixels
transparent; `-loop 0`). Cost: two DIS flows and a table look-up a frame (measured in
docs/coherence.md).
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from dreamvid.errors import EncoderError, OutputError
from dreamvid.flow import FlowEstimator, is_scene_cut, occluded, warp
from dreamvid.media import _ffmpeg

# The pull toward the previous frame's moved colour, and where it stops (docs/coherence.md, "The
# GIF": measured on the bench's 14 kinds of clip and a zoom).
PULL = 0.5  # of the way from the true colour to the moved one: the dead band is half a palette step
PULL_TOLERANCE = 60.0  # levels (RGB distance): a moved colour further from the true one is not pulled to
# px, Gaussian sigma of the neighbourhood whose mean gap (moved - true) is taken out of the pull: without
# it a fade of 2 levels a frame left the GIF 4.7 levels darker than its frames for good, with it 2.0
# (30 frames of a fade of 1, 2 or 5 levels a frame: at most 2.3).
SHARED_SIGMA = 4.0
# DIS preset of the encode's flow: with "fast" the fast pan's GIF was at 0.90x its frames' error and
# real_moving's at 1.19x, with "medium" 0.63x and 1.04x (at tolerance 40, bilinear).
FLOW_QUALITY = "medium"
LUT_BITS = 7  # bits a channel of the nearest-colour table (2 MB of int16, filled as colours appear)
PALETTE_SIDE = 16  # the palette as ffmpeg passes it between filters: 16 x 16 RGBA pixels


class NearestColour:
    """The index of the nearest palette colour (RGB distance) of each pixel.

    A table of 2^(3 LUT_BITS) entries, each computed the first time a colour falls in it (most
    of a frame's cells were filled by the frames before), so a pixel costs a look-up, not 256
    distances. The colour is rounded to the centre of its cell: at most 1 level a channel off.
    """

    def __init__(self, palette: np.ndarray):
        colours = palette.astype(np.float32)
        self._norms = (colours ** 2).sum(1)
        self._minus_twice = np.ascontiguousarray(-2 * colours.T)  # (3, n): for one matrix product
        self._shift = 8 - LUT_BITS
        self._table = np.full(1 << (3 * LUT_BITS), -1, np.int16)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """image: (H, W, 3) float 0..255 (any values: clipped) -> (H, W) uint8 indices."""
        cells = np.clip(np.rint(image), 0, 255).astype(np.int32) >> self._shift
        keys = (cells[..., 0] << (2 * LUT_BITS)) | (cells[..., 1] << LUT_BITS) | cells[..., 2]
        found = self._table[keys]
        missing = found < 0
        if missing.any():
            self._fill(np.unique(keys[missing]))
            found = self._table[keys]
        return found.astype(np.uint8)

    def _fill(self, keys: np.ndarray) -> None:
        mask = (1 << LUT_BITS) - 1
        cells = np.stack([keys >> (2 * LUT_BITS), (keys >> LUT_BITS) & mask, keys & mask], axis=1)
        centres = (cells.astype(np.float32) + 0.5) * (1 << self._shift) - 0.5
        distances = cv2.gemm(centres, self._minus_twice, 1.0, None, 0.0)  # |c - p|^2 - |c|^2; numpy's @ is 2x slower
        distances += self._norms
        self._table[keys] = distances.argmin(axis=1)


class SteadyQuantiser:
    """Palette indices for consecutive frames, each frame's chosen with the previous one in mind
    (the module's step 2). Feed the frames of one clip in order:

        q = SteadyQuantiser(palette)           # (n, 3) uint8 RGB, n <= 256
        indices = [q.step(frame) for frame in frames]   # (H, W, 3) uint8 -> (H, W) uint8
    """

    def __init__(self, palette: np.ndarray):
        self.palette = np.asarray(palette, np.uint8)
        self._colours = self.palette.astype(np.float32)
        self._nearest = NearestColour(self.palette)
        self._flow = FlowEstimator("dis", FLOW_QUALITY)
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # (frame, its indices)

    def step(self, frame: np.ndarray) -> np.ndarray:
        """The palette indices of `frame` ((H, W, 3) uint8 RGB), the next frame of the clip."""
        target = frame.astype(np.float32)
        if self._previous is not None:
            target = self._pulled(frame, target, *self._previous)
        indices = self._nearest(target)
        self._previous = (frame, indices)
        return indices

    def _pulled(self, frame: np.ndarray, true: np.ndarray, previous: np.ndarray,
                previous_indices: np.ndarray) -> np.ndarray:
        """The colours to quantise: `true` pulled toward the previous GIF frame moved onto this one."""
        if is_scene_cut(previous, frame):
            return true
        back = self._flow.flow(frame, previous)
        gap = warp(self._colours[previous_indices], back, cubic=True) - true
        near = ((gap ** 2).sum(axis=2) <= PULL_TOLERANCE ** 2) & ~occluded(back, self._flow.flow(previous, frame))
        weight = near.astype(np.float32)
        # What a whole neighbourhood moved by (a fade, a change of light) is followed, not held
        # back: only each pixel's departure from its neighbours' mean gap is pulled toward.
        shared = cv2.GaussianBlur(gap * weight[..., None], (0, 0), SHARED_SIGMA) / \
            np.maximum(cv2.GaussianBlur(weight, (0, 0), SHARED_SIGMA), 1e-3)[..., None]
        return true + (PULL * weight)[..., None] * (gap - shared)


def write_gif(frames: Callable[[], Iterable[np.ndarray]], path: Path, *, fps: Fraction,
              size: tuple[int, int], name: str | None = None) -> None:
    """Write the frames to `path` as a looping GIF (the module's steps 1-3).

    frames: called twice (the palette, then the GIF), each time an iterable of the same
    (H, W, 3) uint8 RGB frames of `size` (w, h). fps: exact. name: the file's name in messages
    (default: path's). EncoderError if ffmpeg fails (`detail`: its command and stderr); `path`
    may then hold a partial file.
    """
    w, h = size
    name = name or path.name
    raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate",
           f"{fps.numerator}/{fps.denominator}", "-i", "pipe:0"]
    stats = _piped(_ffmpeg.base_cmd("error") + raw + ["-vf", "palettegen", "-f", "rawvideo", "-pix_fmt", "rgba",
                                                     "pipe:1"], (f.tobytes() for f in frames()), name)
    rgba = np.frombuffer(stats, np.uint8).reshape(-1, 4)
    palette = rgba[rgba[:, 3] == 255, :3]  # palettegen's transparent slot (alpha 0) stays free for the encoder
    quantiser = SteadyQuantiser(palette)
    with _palette_file(palette) as palette_path:
        cmd = _ffmpeg.base_cmd("error") + ["-y", *raw, "-f", "rawvideo", "-pix_fmt", "rgba", "-s",
                                           f"{PALETTE_SIDE}x{PALETTE_SIDE}", "-i", _ffmpeg.path_arg(palette_path),
                                           "-filter_complex", "[0:v][1:v]paletteuse=dither=none[v]", "-map", "[v]",
                                           "-loop", "0", "-f", "gif", _ffmpeg.path_arg(path)]
        _piped(cmd, (palette[quantiser.step(f)].tobytes() for f in frames()), name)


@contextlib.contextmanager
def _palette_file(palette: np.ndarray) -> Iterator[Path]:
    """A temporary file holding `palette` as one 16x16 RGBA frame (unused entries transparent)."""
    rgba = np.zeros((PALETTE_SIDE * PALETTE_SIDE, 4), np.uint8)
    rgba[:len(palette), :3], rgba[:len(palette), 3] = palette, 255
    try:
        fd, name = tempfile.mkstemp(suffix=".rgba", prefix="dreamvid-palette-")
    except OSError as e:
        raise OutputError(f"cannot write the GIF's palette to the temporary folder: {e.strerror}",
                          hint="free some space there, or point TMPDIR at a folder with space") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(rgba.tobytes())
        yield Path(name)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _piped(cmd: list[str], chunks: Iterable[bytes], name: str) -> bytes:
    """Run ffmpeg with `chunks` on its stdin; its stdout (small: a palette) or b"". Always reaped;
    EncoderError with ffmpeg's words if it fails."""
    wants_output = cmd[-1] == "pipe:1"
    proc, err = _ffmpeg.popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE if wants_output else subprocess.DEVNULL)
    code, out = None, b""
    try:
        try:
            for chunk in chunks:
                proc.stdin.write(chunk)
            proc.stdin.close()
        except (BrokenPipeError, OSError):  # ffmpeg stopped reading: its exit status and stderr say why
            pass
        if wants_output:
            out = proc.stdout.read()  # written at the end: after stdin is closed, so no deadlock
        code = proc.wait()
    finally:
        killed = code is None  # an exception (Ctrl-C, a frame that cannot be read) stops ffmpeg
        code = _ffmpeg.reap(proc, kill=killed)
        stderr = _ffmpeg.read_tail(err)
    if code != 0:
        raise EncoderError(f"ffmpeg could not write {name}: {_ffmpeg.last_line(stderr)}",
                           hint="run with --debug for ffmpeg's full message; check free disk space",
                           detail=_ffmpeg.detail(cmd, stderr))
    return out


def square_width(width: int, sar: Fraction) -> int:
    """The width of an anamorphic frame (sample aspect ratio `sar`) in square pixels: an even
    trunc(width * sar), as the encode before did in ffmpeg."""
    return (width * sar.numerator) // (2 * sar.denominator) * 2


def square_pixels(frame: np.ndarray, sar: Fraction) -> np.ndarray:
    """An anamorphic frame resampled to square pixels (`square_width`): a GIF has no aspect field."""
    h, w = frame.shape[:2]
    width = square_width(w, sar)
    return cv2.resize(frame, (width, h), interpolation=cv2.INTER_CUBIC if width > w else cv2.INTER_AREA)
