"""What a video is: size as displayed, exact frame rate, frame count, audio, rotation.

There is no ffprobe in imageio-ffmpeg, so two ffmpeg runs do its job:
1. `ffmpeg -i FILE` prints the container and stream summary (size, fps, tbr, rotation, audio).
2. `ffmpeg -i FILE -map 0:V -c copy -f framecrc -` lists every video packet's timestamps
   without decoding (about as fast as reading the file). That gives the exact frame count,
   the exact rate (time base / frame spacing: 1/30000 and 1001 -> 30000/1001), and whether
   the frames sit on a constant-rate grid at all (variable frame rate).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from dreamvid.errors import InputError
from dreamvid.media import _ffmpeg
from dreamvid.media.paths import require_file

log = logging.getLogger(__name__)

MAX_PLAUSIBLE_FPS = 120  # a tbr above this is a time base, not a frame rate (e.g. "1k tbr")
VFR_TOLERANCE = 0.5  # frames; a timestamp further than this from the i/fps grid means variable rate
IMAGE_DEMUXERS = ("image2", "_pipe")  # ffmpeg reads stills as one-frame "videos"; we refuse them
NOPTS = -(2 ** 63)  # AV_NOPTS_VALUE, as framecrc prints a missing timestamp
# Pixels of one video frame, at most: above 8K DCI (8192x4320 = 35.4 MP). A frame is decoded
# in full, then held as float32 with its flows while it is dreamed (~60 bytes a pixel:
# 2.4 GB at this size). Stills may be larger (images.DEFAULT_MAX_PIXELS): they are read once.
DEFAULT_MAX_FRAME_PIXELS = 40_000_000
MAX_FRAME_PIXELS_ENV = "DREAMVID_MAX_VIDEO_PIXELS"
INT_MAX = 2 ** 31 - 1  # ffmpeg's -max_pixels is a C int


@dataclass(frozen=True)
class VideoInfo:
    """A probed video. Sizes are as displayed: after rotation, before any `max_size`."""

    path: Path
    width: int  # px, displayed (a 90/270 rotation swaps the stored width and height)
    height: int
    fps: Fraction  # exact frame rate at which `read_frames` yields frames: 30000/1001, 25, ...
    n_frames: int  # frames `read_frames` yields (exact for intact constant-rate files)
    duration: float  # s, n_frames / fps
    has_audio: bool
    rotation: int  # degrees counter-clockwise the player turns the stored picture (0/90/180/270)
    codec: str  # ffmpeg's name of the video codec: "h264", "hevc", "vp9", "gif", ...
    variable_fps: bool  # timestamps off the constant-rate grid; frames are resampled to `fps`
    stream_index: int = 0  # the ffmpeg stream read (first video that is not cover art)
    start_offset: float = 0.0  # s, first video timestamp after the container's start
    demuxer: str = ""  # ffmpeg's container name: "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", ...
    comment: str = ""  # the container's comment tag (dreamvid writes what a render was made from)
    sar: Fraction = Fraction(1)  # sample (pixel) aspect ratio as displayed: != 1 for anamorphic video


@dataclass
class _Stream:
    index: int
    kind: str  # "Video", "Audio", ...
    codec: str
    line: str
    width: int = 0
    height: int = 0
    fps: str | None = None  # as printed: "29.97", "25", "90k"
    tbr: str | None = None
    rotation: float = 0.0
    attached_pic: bool = False
    sar: Fraction = Fraction(1)


@dataclass
class _Header:
    demuxer: str = ""
    duration: float | None = None
    start: float = 0.0
    streams: list[_Stream] = dataclasses.field(default_factory=list)
    error: str = ""
    comment: str = ""
    oversize: tuple[int, int] | None = None  # (w, h) of a frame ffmpeg would not decode (-max_pixels)


_INPUT_RE = re.compile(r"^Input #0, (.+?), from ")
_DURATION_RE = re.compile(r"Duration: (?:(\d+):(\d+):(\d+(?:\.\d+)?)|N/A)(?:, start: (-?[\d.]+))?")
_STREAM_RE = re.compile(r"^\s*Stream #0:(\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: (\w+): (.*)$")
_SIZE_RE = re.compile(r"(?:^|[ ,])([1-9]\d*)x([1-9]\d*)(?=[ ,\[]|$)")
_ROTATION_RE = re.compile(r"rotation of (-?[\d.]+) degrees", re.IGNORECASE)
_ROTATE_TAG_RE = re.compile(r"^\s*rotate\s*:\s*(-?\d+)")  # older ffmpeg: clockwise metadata tag
_COMMENT_RE = re.compile(r"^\s*comment\s*:\s*(.*)$")
_OVERSIZE_RE = re.compile(r"Picture size (\d{1,9})x(\d{1,9}) exceeds specified max pixel count")  # -max_pixels


def frame_time(index: int, fps: Fraction) -> float:
    """Seconds from the start of the video to frame `index` (index / fps)."""
    return float(Fraction(index) / Fraction(fps))


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Probe a video file. InputError: missing, a folder, not a video (text, a still image,
    audio only), or no video frames at all (empty or cut off before the first frame).

    A file that is cut off part way probes fine (n_frames is what the container promises);
    `read_frames` then yields the frames that decode and raises DecodeError.
    """
    p = require_file(path, "video")
    header = _read_header(p)
    if header.oversize:
        check_frame_pixels(p, *header.oversize)
    if header.error or not header.demuxer:
        raise InputError(f"{p} is not a video ffmpeg can read ({header.error or 'unknown format'})",
                         hint="give a video file (mp4, mov, mkv, webm, avi, gif); it may also be truncated")
    if any(header.demuxer == d or header.demuxer.endswith(d) for d in IMAGE_DEMUXERS):
        raise InputError(f"{p} is a still image, not a video", hint="use the image command for stills")
    video = next((s for s in header.streams if s.kind == "Video" and not s.attached_pic), None)
    if video is None:
        what = "audio only" if any(s.kind == "Audio" for s in header.streams) else "no video stream"
        raise InputError(f"{p} has no video ({what})", hint="give a file with a video track")
    check_frame_pixels(p, video.width, video.height)  # from the header: before any frame is decoded
    stamps, tb, scan_errors = _scan_packets(p, video.index)
    if not stamps:
        raise InputError(f"{p} contains no video frames", hint="the file is empty or was cut off; get a complete copy")
    return _make_info(p, header, video, stamps, tb, scan_errors)


def max_frame_pixels() -> int:
    """The largest video frame read, in pixels: $DREAMVID_MAX_VIDEO_PIXELS, else DEFAULT_MAX_FRAME_PIXELS."""
    from .images import pixel_limit

    return pixel_limit(MAX_FRAME_PIXELS_ENV, DEFAULT_MAX_FRAME_PIXELS)


def check_frame_pixels(p: Path, width: int, height: int) -> None:
    """InputError for a video whose header claims frames over `max_frame_pixels()`: ffmpeg
    would decode each in full (a 2 MB PNG-in-MKV clip claiming 16000x16000 px took 5.5 GB)."""
    limit = max_frame_pixels()
    if width * height > limit:
        raise InputError(f"{p} claims {width}x{height} px frames ({width * height / 1e6:.0f} megapixels), more than "
                         f"the limit of {limit / 1e6:.0f} megapixels a frame",
                         hint=f"if the video is real, scale it down first, or raise the limit: "
                              f"{MAX_FRAME_PIXELS_ENV}={width * height}")


def _make_info(p: Path, header: _Header, video: _Stream, stamps: list[int | None], tb: Fraction,
               scan_errors: str) -> VideoInfo:
    # Without a timestamp for every packet the grid cannot be checked: trust the header.
    pts = sorted(t for t in stamps if t is not None) if None not in stamps else []
    header_fps = _snap_fps(video.fps) or _snap_fps(video.tbr)
    spacing = _grid_spacing(pts)
    fps = Fraction(1) / (spacing * tb) if spacing else header_fps
    if fps is None or fps <= 0:
        fps = Fraction(25)
        log.warning("%s: no frame rate found; assuming 25 fps", p)
    elif header_fps and abs(fps - header_fps) / header_fps < 0.002:
        fps = header_fps  # mkv's 1 ms time base cannot express 1001/30000 s: prefer 30000/1001
    else:  # the timestamps know better than the header (raw H.264 says "25 fps" by default)
        fps = _nice_rate(float(fps), tolerance=float(fps) * 2e-4) or fps.limit_denominator(1001)
    variable = _off_grid(pts, tb, fps)
    if variable:
        tbr = _snap_fps(video.tbr)
        fps = tbr if tbr and tbr <= MAX_PLAUSIBLE_FPS else (header_fps or fps)
        end = (pts[-1] - pts[0]) * tb + Fraction(1) / fps  # last frame shown for one grid step
        n_frames = max(1, round(end * fps))
    else:
        n_frames = len(stamps)
    if scan_errors:
        promised = round(header.duration * fps) if header.duration else 0
        # The packet count is not what will decode (a damaged packet can stop the decoder
        # earlier), so no count is promised here: the render says how many frames decoded.
        log.warning("%s: damaged video data (%s); the frames that decode will be dreamed (the container "
                    "promises %s)", p, scan_errors, promised or "?")
        n_frames = max(n_frames, promised)
    rotation = round(video.rotation) % 360
    width, height = (video.height, video.width) if rotation in (90, 270) else (video.width, video.height)
    if not width or not height:
        raise InputError(f"{p}: the video has no frame size", hint="the file may be corrupt")
    return VideoInfo(
        path=p, width=width, height=height, fps=fps, n_frames=n_frames,
        duration=float(n_frames / fps), has_audio=any(s.kind == "Audio" for s in header.streams),
        rotation=rotation, codec=video.codec, variable_fps=variable, stream_index=video.index,
        start_offset=max(0.0, float(pts[0] * tb)) if pts else 0.0, demuxer=header.demuxer,
        comment=header.comment, sar=video.sar if rotation not in (90, 270) else 1 / video.sar,
    )


def has_audio(path: str | os.PathLike) -> bool:
    """True when the file has an audio stream (one quick header read, no decoding)."""
    header = _read_header(Path(path))
    return any(s.kind == "Audio" for s in header.streams)


def _read_header(p: Path) -> _Header:
    # -max_pixels: ffmpeg decodes a first frame to fill in the stream's facts; a frame over the
    # limit is not decoded (a 16000x16000 PNG frame took 780 MB and 6 s) and says its size instead.
    limit = ["-max_pixels", str(min(max_frame_pixels(), INT_MAX))]
    proc = _ffmpeg.run(_ffmpeg.base_cmd("info") + [*limit, "-i", _ffmpeg.path_arg(p)])
    return _parse_header(proc.stderr.decode("utf-8", "replace"))


def _parse_header(text: str) -> _Header:
    h = _Header()
    current: _Stream | None = None
    for line in text.splitlines():
        if m := _INPUT_RE.match(line):
            h.demuxer = m.group(1)
        elif m := _DURATION_RE.search(line):
            if m.group(1):
                h.duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
            h.start = float(m.group(4) or 0.0)
        elif m := _STREAM_RE.match(line):
            current = _parse_stream(int(m.group(1)), m.group(2), m.group(3))
            h.streams.append(current)
        elif current is not None and (m := _ROTATION_RE.search(line)):
            current.rotation = float(m.group(1))
        elif current is not None and (m := _ROTATE_TAG_RE.match(line)):
            current.rotation = -float(m.group(1))  # the tag is clockwise, the display matrix is not
        elif current is None and not h.comment and (m := _COMMENT_RE.match(line)):
            h.comment = m.group(1).strip()
        elif m := _OVERSIZE_RE.search(line):
            h.oversize = (int(m.group(1)), int(m.group(2)))
        elif "Error opening input" in line or "Invalid data found" in line:
            h.error = line.split(":", 1)[-1].strip()
    return h


def _parse_stream(index: int, kind: str, rest: str) -> _Stream:
    s = _Stream(index=index, kind=kind, codec=rest.split(maxsplit=1)[0].rstrip(",") if rest else "", line=rest)
    if kind == "Video":
        if m := _SIZE_RE.search(rest):
            s.width, s.height = int(m.group(1)), int(m.group(2))
        if m := re.search(r"([\d.]+k?) fps", rest):
            s.fps = m.group(1)
        if m := re.search(r"([\d.]+k?) tbr", rest):
            s.tbr = m.group(1)
        s.attached_pic = "(attached pic)" in rest
        if (m := re.search(r"\[SAR (\d+):(\d+) DAR", rest)) and int(m.group(1)) and int(m.group(2)):
            s.sar = Fraction(int(m.group(1)), int(m.group(2)))
    return s


def _snap_fps(text: str | None) -> Fraction | None:
    """ffmpeg prints rates rounded to 2 decimals; recover the exact rational.

    29.97 -> 30000/1001 (NTSC), 23.98 -> 24000/1001, 25 -> 25, 12.50 -> 25/2.
    """
    if not text:
        return None
    value = float(text[:-1]) * 1000 if text.endswith("k") else float(text)
    if value <= 0:
        return None
    return _nice_rate(value, tolerance=0.006) or Fraction(value).limit_denominator(100)


def _nice_rate(value: float, tolerance: float) -> Fraction | None:
    """An integer or NTSC (n * 1000/1001) rate within `tolerance` fps of value, else None."""
    if abs(value - round(value)) < tolerance:
        return Fraction(round(value))
    ntsc = round(value * 1.001)
    if abs(ntsc * 1000 / 1001 - value) < tolerance:
        return Fraction(ntsc * 1000, 1001)
    return None


def _scan_packets(p: Path, index: int) -> tuple[list[int | None], Fraction, str]:
    """Per packet of the stream, its presentation timestamp in time-base units (the decode
    timestamp where the container has none, as AVI; None where neither is known, as raw
    H.264); the time base; ffmpeg's last error line ("" for an intact file).

    Stream copy shifts timestamps by the container's start time, so they count from it.
    """
    cmd = _ffmpeg.base_cmd("error") + ["-i", _ffmpeg.path_arg(p), "-map", f"0:{index}",
                                       "-c", "copy", "-f", "framecrc", "-"]
    proc = _ffmpeg.run(cmd)
    tb = Fraction(1, 1)
    stamps: list[int | None] = []
    for line in proc.stdout.decode("ascii", "replace").splitlines():
        if line.startswith("#tb 0:"):
            tb = Fraction(line.split(":", 1)[1].strip())
        elif line.startswith("0,"):
            fields = line.split(",")
            try:
                dts, pts = int(fields[1]), int(fields[2])
            except (IndexError, ValueError):
                stamps.append(None)
                continue
            stamps.append(pts if pts != NOPTS else dts if dts != NOPTS else None)
    errors = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0 and not errors:
        errors = f"ffmpeg exit status {proc.returncode}"
    return stamps, tb, _ffmpeg.last_line(errors) if errors else ""


def _grid_spacing(pts: list[int]) -> Fraction | None:
    """Mean spacing of sorted timestamps, in time-base units: one frame, exactly, for a
    constant-rate stream (30 frames 1001 apart -> 1001)."""
    if len(pts) < 2 or pts[-1] <= pts[0]:
        return None
    return Fraction(pts[-1] - pts[0], len(pts) - 1)


def _off_grid(pts: list[int], tb: Fraction, fps: Fraction) -> bool:
    """True when some frame sits more than VFR_TOLERANCE frames away from first + i/fps.

    That is the property `read_frames` relies on to map index i to time i/fps; jitter of a
    time-base tick (mkv's 33/34 ms at 29.97) passes, a dropped or held frame does not.
    """
    if len(pts) < 2:
        return False
    step = float(1 / (fps * tb))  # one frame in time-base units (floats: fast for long files)
    first = pts[0]
    tol = VFR_TOLERANCE * step
    return any(abs(t - first - i * step) > tol for i, t in enumerate(pts))
