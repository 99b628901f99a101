"""Reading video frames: a generator around one ffmpeg process that always reaps it.

Frame indices are exact. A constant-rate source is decoded frame for frame
(`-fps_mode passthrough`): index i is the i-th decoded frame, at time i / fps. A seek puts
`-ss` before `-i` (fast: jumps to the keyframe before, then decodes and drops up to the
target), aimed half a frame before frame `start` so rounding cannot skip or repeat one.
Other containers (MPEG-TS, AVI, GIF, raw streams: see INDEXED_DEMUXERS) are decoded from
the start and the frames before `start` dropped by the `select` filter, which counts them.

A variable-rate source (see `VideoInfo.variable_fps`) is resampled to the constant rate
`info.fps` by the `fps` filter anchored at the stream's first frame, so index i shows what
the player shows at time i / fps; a range start is counted on that grid by the `select`
filter (decoding from the beginning), so a range yields the same frames as a full read.

Rotation metadata is applied by ffmpeg (autorotate) before scaling.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from dreamvid.errors import DecodeError
from dreamvid.media import _ffmpeg
from dreamvid.media.probe import INT_MAX, VideoInfo, frame_time, max_frame_pixels, probe_video

log = logging.getLogger(__name__)

SCALE_FLAGS = "area"  # downscaling filter for max_size: averages, no aliasing shimmer between frames
# Containers whose index makes `-ss` before `-i` land exactly. Others decode from the
# start: MPEG-TS and raw streams seek by byte position (mid-GOP: no frame decodes), AVI
# with B-frames has no presentation timestamps (lands a frame off), GIF has no index.
INDEXED_DEMUXERS = ("mov,mp4", "matroska")


def scaled_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """(w, h) after limiting the longest side to max_size, keeping the aspect ratio.

    No rounding to even sizes here: the encoder makes even sizes explicitly (`even_size`).
    """
    if not max_size or max(width, height) <= max_size:
        return width, height
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def read_frames(path: str | os.PathLike, *, start: int = 0, end: int | None = None,
                max_size: int | None = None, info: VideoInfo | None = None,
                ) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (source frame index, frame) for frames [start, end) of a video.

    frame: (H, W, 3) uint8 RGB, writable, upright (rotation applied), the longest side
    limited to max_size (aspect kept, `scaled_size`). Indices count frames at `info.fps`
    (probed if not given) from the start of the video: index i is at `frame_time(i, fps)`.
    Stops early at the end of the video. ffmpeg is killed and reaped when the generator
    finishes, is closed (`.close()`, `contextlib.closing`) or raises.

    DecodeError: the file stops decoding part way (truncated or corrupt) -- raised after
    every frame that did decode was yielded; the message says how many.
    """
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"bad frame range [{start}, {end})")
    info = info or probe_video(path)  # eager: a bad path fails here, not at the first next()
    stop = info.n_frames if end is None else end
    width, height = scaled_size(info.width, info.height, max_size)
    cmd = _decode_cmd(Path(path), info, start, max(0, stop - start), width, height)
    return _frames(cmd, info, start, stop, width, height)


def _frames(cmd: list[str], info: VideoInfo, start: int, stop: int, width: int, height: int,
            ) -> Iterator[tuple[int, np.ndarray]]:
    """The generator half of `read_frames`: ffmpeg starts at the first next(), not before."""
    if stop <= start:
        return
    frame_bytes = width * height * 3
    proc, err = _ffmpeg.popen(cmd, stdout=-1, bufsize=min(frame_bytes, 1 << 20))
    count, finished = 0, False
    try:
        while start + count < stop:
            frame = np.empty((height, width, 3), np.uint8)
            if _read_into(proc.stdout, frame) < frame_bytes:
                break
            yield start + count, frame
            count += 1
        finished = True
    finally:  # also on .close() (GeneratorExit) and on an exception thrown in
        code = _ffmpeg.reap(proc, kill=not finished or start + count >= stop)
        stderr = _ffmpeg.read_tail(err)
    expected = min(stop, info.n_frames) - start
    if count < expected and (code != 0 or stderr.strip()):
        raise DecodeError(
            f"{info.path.name} stopped decoding after {count} of {expected} frames"
            + (f" (frames {start}..{start + count - 1} were read)" if count else ""),
            hint="the file is probably truncated or corrupt; re-download or re-export it, "
                 "or limit the frame range to the part that decodes",
            detail=_ffmpeg.detail(cmd, stderr))
    if stderr.strip():
        log.warning("%s: ffmpeg reported problems while decoding: %s", info.path.name, _ffmpeg.last_line(stderr))


def _decode_cmd(path: Path, info: VideoInfo, start: int, count: int, width: int, height: int) -> list[str]:
    cmd = _ffmpeg.base_cmd("error")
    filters: list[str] = []
    fast_seek = info.demuxer.startswith(INDEXED_DEMUXERS) and not info.variable_fps
    if info.variable_fps:
        # Resample to the constant grid first + i/fps and count grid frames from there. No
        # seek: a hold longer than any margin would put the wrong frame at `start`, and
        # decoding the prefix costs little next to dreaming even one frame.
        fps = Fraction(info.fps)
        filters.append(f"fps=fps={fps.numerator}/{fps.denominator}:start_time={info.start_offset:.6f}")
    if start > 0 and not fast_seek:
        filters.append(f"select=gte(n\\,{start})")  # count decoded (or resampled) frames
    elif start > 0:
        # Half a frame early: frame `start` is the first one at or after this time.
        seek = frame_time(start, info.fps) - 0.5 / float(info.fps) + info.start_offset
        cmd += ["-ss", f"{max(0.0, seek):.6f}"]
    # A frame larger than the header said (a stream that changes size) stops the decoder, not memory.
    cmd += ["-max_pixels", str(min(max_frame_pixels(), INT_MAX)), "-i", _ffmpeg.path_arg(path),
            "-map", f"0:{info.stream_index}", "-an", "-sn", "-dn"]
    if (width, height) != (info.width, info.height):
        filters.append(f"scale={width}:{height}:flags={SCALE_FLAGS}")
    if filters:
        cmd += ["-vf", ",".join(filters)]
    # A 1 us encoder time base: the default (1/rate) can round two ms-stamped mkv frames
    # after a seek onto one tick, and ffmpeg then reports an error for frames that are fine.
    cmd += ["-fps_mode", "passthrough", "-enc_time_base:v", "1/1000000", "-frames:v", str(count),
            "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    return cmd


def _read_into(stream, frame: np.ndarray) -> int:
    """Fill `frame` from a pipe; returns the number of bytes read (short only at EOF)."""
    view = memoryview(frame).cast("B")
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    return got
