"""Writing video: PNG frame folders -> mp4/mov/mkv (H.264) or GIF, and a streaming writer.

Encoding rules, the same for `encode_video` and `VideoWriter`:
- H.264 (libx264), yuv420p by default (`pix_fmt`: PIX_FMTS), constant quality `crf`,
  `+faststart` (mp4/mov play while downloading), tagged BT.709 and converted with that
  matrix, so players show the colours we wrote.
- Steady (issue 24, docs/coherence.md "The file"): a dream's fine colour texture is finer than
  4:2:0 chroma can hold, and subsampling turned it into flicker the frames did not have
  (the file's warping error was up to 2.5x its frames'). So before a 4:2:0 encode the
  chroma planes are low-passed (Gaussian, CHROMA_SIGMA px; luma untouched), and x264 runs
  without its psychovisual optimisations (X264_STEADY), which add texture energy that
  differs from frame to frame. A 4:4:4 `pix_fmt` holds the chroma and is not filtered.
  `steady=False` gives the encode before issue 24 (the bench compares the two).
- The frame rate is the exact rational (`-framerate 30000/1001`), never a rounded float.
- yuv420p needs even sizes. An odd width or height is padded by one pixel that repeats the
  edge (`even_size`); nothing is rescaled. Edge repetition, not black: black padding would
  bleed into the real edge row through the shared 2x2 chroma samples.
- GIF: one pass, `split` -> `palettegen` -> `paletteuse` (a palette made for this clip),
  after a light temporal denoise (GIF_DENOISE) and with an ordered dither (GIF_DITHER): an
  error-diffusion dither (ffmpeg's default) spreads each pixel's error to its neighbours, so
  its pattern changes wherever anything changes and crawls over still areas. A GIF holds
  RGB palettes, so a YUV `pix_fmt` other than the default is refused (`check_pix_fmt`).
- The output appears atomically: ffmpeg writes a temporary name in the output folder
  (`paths.TempFile`, locked while it is written), renamed over the output when it
  succeeded, deleted when it did not or was interrupted. The next encode of an output
  deletes the stale temporary files a killed run left (`paths.remove_stale_temps`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import struct
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np

from dreamvid.errors import EncoderError, InputError, OutputError, SettingsError
from dreamvid.media import _ffmpeg
from dreamvid.media.images import png_problem
from dreamvid.media.paths import (GIF_EXTENSION, VIDEO_OUTPUT_EXTENSIONS, TempFile, fsync_folder,
                                  remove_stale_temps, temp_sibling, writable_dir_or_raise)
from dreamvid.media.probe import frame_time, has_audio

log = logging.getLogger(__name__)

FRAME_PATTERN = "frame_%05d.png"  # frames in a work folder, numbered by SOURCE frame index
DEFAULT_CRF = 18  # x264 constant quality: 18 is visually lossless for most content
X264_PRESET = "medium"
AUDIO_CODEC = ["-c:a", "aac", "-b:a", "192k"]
MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".gif": "gif"}
# RGB -> limited-range BT.709 YUV, and tags saying so. `setparams`, not -colorspace etc.:
# ffmpeg 9 takes the tags from the frames and ignores those options after a filter chain.
TO_YUV = "scale=out_color_matrix=bt709:out_range=tv"
TAG_BT709 = "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv"
# H.264 pixel formats: {pix_fmt: its full-chroma twin, where the chroma filter runs (None: 4:4:4)}.
# yuv420p plays everywhere; 4:4:4 and 10-bit need a player with H.264 High 4:4:4 / High 10 (VLC,
# mpv, ffplay, editors), not most browsers and phones.
PIX_FMTS = {"yuv420p": "yuv444p", "yuv420p10le": "yuv444p10le", "yuv444p": None, "yuv444p10le": None}
DEFAULT_PIX_FMT = "yuv420p"
# Gaussian sigma in px of the chroma low-pass before a 4:2:0 encode. 4:2:0 holds chroma up to
# 0.25 cycles/px; sigma 2 passes 0.05 cycles/px (shapes 20 px and larger) at 0.9 and 0.25 at
# 0.007. Measured on 14 kinds of clip (docs/coherence.md): sigma 1 and 1.5 left the file at up
# to 1.24x and 1.20x its frames' warping error, sigma 2 at 1.19x.
CHROMA_SIGMA = 2.0
# x264 psy-rd and psy-trellis favour keeping texture "energy" over accuracy, differently on each
# frame: off, the file's warping error fell by 0.01-0.03x of its frames' on every kind.
X264_STEADY = "psy=0"
GIF_DENOISE = "hqdn3d=0:0:4:4"  # temporal only (luma, chroma 4): a still area keeps its palette colours
GIF_DITHER = "bayer:bayer_scale=4"  # ordered, fixed to the screen: it cannot crawl; scale 4 = weak


def frame_path(folder: str | os.PathLike, index: int) -> Path:
    """The path of frame `index` (source numbering) in a frame folder: folder/frame_00042.png."""
    return Path(folder) / (FRAME_PATTERN % index)


def even_size(width: int, height: int) -> tuple[int, int]:
    """The frame size the video encoder writes: each odd side grows by one pixel.

    The added column/row repeats its neighbour (no rescale, no black line); a 641x361 frame
    is written as 642x362. GIF has no such limit and keeps the size.
    """
    return width + (width & 1), height + (height & 1)


def _even_filter(width: int, height: int) -> list[str]:
    w2, h2 = even_size(width, height)
    if (w2, h2) == (width, height):
        return []
    return [f"pad={w2}:{h2}:0:0", f"fillborders=right={w2 - width}:bottom={h2 - height}:mode=smear"]


def check_pix_fmt(output: str | os.PathLike, pix_fmt: str) -> None:
    """SettingsError unless `pix_fmt` is one of PIX_FMTS and the output's container holds it
    (a GIF holds RGB palettes: only the default is accepted for it, and means nothing there)."""
    if pix_fmt not in PIX_FMTS:
        raise SettingsError(f"pix_fmt {pix_fmt!r} is not one of {', '.join(PIX_FMTS)}",
                            hint="yuv420p plays everywhere; yuv444p keeps the dream's full colour detail")
    if pix_fmt != DEFAULT_PIX_FMT and Path(output).suffix.lower() == GIF_EXTENSION:
        raise SettingsError(f"a GIF cannot hold pix_fmt {pix_fmt} (it stores 256 RGB colours a frame)",
                            hint="write .mp4/.mov/.mkv for --pix-fmt, or leave it out for a GIF")


def _yuv_chain(pix_fmt: str, steady: bool) -> list[str]:
    """RGB -> `pix_fmt`, BT.709: through its 4:4:4 twin with the chroma low-passed when steady."""
    full = PIX_FMTS[pix_fmt]
    blur = [f"format={full}", f"gblur=sigma={CHROMA_SIGMA}:planes=6"] if steady and full else []  # planes: U, V
    return [TO_YUV, *blur, f"format={pix_fmt}", TAG_BT709]


def _gif_graph(square: str, steady: bool) -> str:
    if not steady:
        return f"{square}split[a][b];[a]palettegen[p];[b][p]paletteuse"
    return f"{square}{GIF_DENOISE},split[a][b];[a]palettegen[p];[b][p]paletteuse=dither={GIF_DITHER}"


def _output_args(ext: str, width: int, height: int, crf: int, has_sound: bool, sar: Fraction | None = None,
                 pix_fmt: str = DEFAULT_PIX_FMT, steady: bool = True) -> list[str]:
    """Codec and filter options for the output file (after all inputs). sar: the source's
    sample aspect ratio (anamorphic video: non-square pixels), kept in the output; a GIF has
    no such field, so its frames are resampled to square pixels instead."""
    anamorphic = sar is not None and Fraction(sar) != 1
    if ext == GIF_EXTENSION:
        square = f"scale=trunc(iw*{Fraction(sar).numerator}/{Fraction(sar).denominator}/2)*2:ih," \
                 f"setsar=1," if anamorphic else ""
        return ["-filter_complex", f"[0:v]{_gif_graph(square, steady)}[v]", "-map", "[v]", "-loop", "0", "-f", "gif"]
    chain = _even_filter(width, height) + _yuv_chain(pix_fmt, steady)
    if anamorphic:
        chain.append(f"setsar={Fraction(sar).numerator}/{Fraction(sar).denominator}")
    args = ["-map", "0:v:0", "-vf", ",".join(chain), "-c:v", "libx264", "-preset", X264_PRESET,
            "-crf", str(crf), "-pix_fmt", pix_fmt, *(["-x264-params", X264_STEADY] if steady else [])]
    if has_sound:
        args += ["-map", "1:a:0", *AUDIO_CODEC]
    if MUXERS[ext] in ("mp4", "mov"):
        args += ["-movflags", "+faststart"]
    return args + ["-f", MUXERS[ext]]


def _check_output(output: str | os.PathLike, pix_fmt: str = DEFAULT_PIX_FMT) -> tuple[Path, str]:
    out = Path(output).expanduser()
    ext = out.suffix.lower()
    if ext not in MUXERS:
        known = ", ".join(sorted(VIDEO_OUTPUT_EXTENSIONS | {GIF_EXTENSION}))
        raise OutputError(f"cannot encode video as {ext or 'a file without extension'!r} ({out.name})",
                          hint=f"use one of {known}")
    check_pix_fmt(out, pix_fmt)
    writable_dir_or_raise(out.parent)
    remove_stale_temps(out.parent, out.name)
    return out, ext


def _temp_file(out: Path, ext: str) -> TempFile:
    try:
        return TempFile(out, ext)
    except OSError as e:
        raise OutputError(f"cannot write {out}: {e.strerror}", hint="choose an output path in a folder you "
                                                                  "can write to, with free space") from None


def _audio_inputs(audio_source, start: float, duration: float) -> list[str]:
    """ffmpeg input options for the trimmed source audio, or [] when there is none."""
    if audio_source is None:
        return []
    src = Path(audio_source)
    if not src.is_file():
        raise InputError(f"audio source {src} does not exist", hint="check the path of the source video")
    if not has_audio(src):
        log.info("%s has no audio; writing video only", src.name)
        return []
    return ["-ss", f"{max(0.0, start):.6f}", "-t", f"{duration:.6f}", "-i", _ffmpeg.path_arg(src)]


def _run_encoder(cmd: list[str], tmp: TempFile, out: Path) -> Path:
    try:
        proc = _ffmpeg.run(cmd)
    except BaseException:  # Ctrl-C: subprocess.run has killed ffmpeg; its partial file goes too
        tmp.discard()
        raise
    if proc.returncode != 0 or not tmp.path.is_file() or tmp.path.stat().st_size == 0:
        tmp.discard()
        stderr = _ffmpeg.tail(proc.stderr)
        raise EncoderError(f"ffmpeg could not write {out.name}: {_ffmpeg.last_line(stderr)}",
                           hint="run with --debug for ffmpeg's full message; check free disk space",
                           detail=_ffmpeg.detail(cmd, stderr))
    return _move_into_place(tmp, out)


def _move_into_place(tmp: TempFile, out: Path) -> Path:
    try:
        return tmp.commit()
    except OSError as e:  # e.g. the output name is taken by a folder
        tmp.discard()
        raise OutputError(f"cannot write {out}: {e.strerror}", hint="choose another output path") from e


def encode_video(frames_dir: str | os.PathLike, output: str | os.PathLike, *, fps: Fraction,
                 n_frames: int, start_number: int = 0, crf: int = DEFAULT_CRF,
                 audio_source: str | os.PathLike | None = None, audio_start: float | None = None,
                 audio_duration: float | None = None, comment: str | None = None,
                 sar: Fraction | None = None, pix_fmt: str = DEFAULT_PIX_FMT, steady: bool = True) -> Path:
    """Encode frames_dir/frame_%05d.png, indices [start_number, start_number + n_frames), to output.

    output: .mp4/.m4v/.mov/.mkv (H.264 + AAC) or .gif, chosen by extension. fps: exact
    rational (Fraction(30000, 1001)). All frames must exist and share one size (checked
    first: InputError naming the first bad frame). audio_source: a file whose first audio
    stream is muxed in, trimmed to [audio_start, audio_start + audio_duration] seconds;
    defaults: the time of frame start_number and the length of the frames. A source
    without audio gives a silent video, not an error; GIF ignores audio. comment: the
    container's comment tag (mp4/mov/mkv), read back by probe_video. sar: the sample aspect
    ratio of the frames (an anamorphic source's), kept so the clip displays as the source did.
    pix_fmt: one of PIX_FMTS (H.264 only); steady: the pre-encode filtering and x264 settings
    that keep the file as steady as its frames (False: the encode before issue 24).
    Returns the output Path. EncoderError (ffmpeg failed; `detail` has its command and
    stderr), OutputError (bad extension, missing or unwritable folder).
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1 (got {n_frames})")
    fps = Fraction(fps)
    out, ext = _check_output(output, pix_fmt)
    width, height = _check_frames(Path(frames_dir), start_number, n_frames)
    audio = []
    if ext != GIF_EXTENSION:
        start = frame_time(start_number, fps) if audio_start is None else audio_start
        duration = float(n_frames / fps) if audio_duration is None else audio_duration
        audio = _audio_inputs(audio_source, start, duration)
    tmp = _temp_file(out, ext)
    cmd = _ffmpeg.base_cmd("error") + [
        "-y", "-framerate", f"{fps.numerator}/{fps.denominator}", "-start_number", str(start_number),
        "-i", _ffmpeg.pattern_arg(frames_dir, FRAME_PATTERN), *audio, "-frames:v", str(n_frames),
        *_output_args(ext, width, height, crf, bool(audio), sar, pix_fmt, steady),
        *(["-metadata", f"comment={comment}"] if comment and ext != GIF_EXTENSION else []), _ffmpeg.path_arg(tmp.path)]
    return _run_encoder(cmd, tmp, out)


def _png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR, reading 24 bytes; None if not a PNG."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _check_frames(folder: Path, start: int, n: int) -> tuple[int, int]:
    """Every frame present, a PNG that decodes completely, one size: else InputError naming
    the first bad one, before ffmpeg sees any (it would skip or mangle a damaged frame and
    still succeed: a clip with frames missing, the wrong length and rate)."""
    if not folder.is_dir():
        raise InputError(f"frame folder {folder} does not exist", hint="render the frames first")
    size = None
    for index in range(start, start + n):
        path = frame_path(folder, index)
        problem = png_problem(path, decode=True)
        got = _png_size(path) if problem is None else None
        if problem == "is missing":
            raise InputError(f"frame {path.name} in {folder} is missing",
                             hint="resume the render to complete the frames, or encode a shorter range")
        if got is None:
            raise InputError(f"frame {path.name} in {folder} {problem or 'is not a PNG image'}",
                             hint="delete it and run the same command again: a missing frame is dreamed again "
                                  "(or pass --restart to start over)")
        if size is None:
            size = got
        elif got != size:
            raise InputError(f"frame {path.name} is {got[0]}x{got[1]}, the others {size[0]}x{size[1]}",
                             hint="all frames of a video must have one size; re-render the odd one")
    return size  # type: ignore[return-value]  # n >= 1, so set


def write_frames_folder(frames_dir: str | os.PathLike, output_dir: str | os.PathLike, *,
                        n_frames: int, start_number: int = 0) -> Path:
    """Put frames [start_number, start_number + n_frames) into output_dir as frame_%05d.png.

    Hard links when both folders are on one filesystem (instant, no extra space), copies
    otherwise; each file appears atomically, and all are on disk (fsync) when this returns.
    output_dir is created if its parent exists. Returns output_dir. InputError for a
    missing or damaged frame, OutputError for a bad destination.
    """
    src, dst = Path(frames_dir), Path(output_dir).expanduser()
    _check_frames(src, start_number, n_frames)
    writable_dir_or_raise(dst.parent)
    dst.mkdir(exist_ok=True)
    if dst.resolve() == src.resolve():
        return dst
    remove_stale_temps(dst)  # of an earlier, killed run
    for index in range(start_number, start_number + n_frames):
        source, target = frame_path(src, index), frame_path(dst, index)
        tmp = temp_sibling(target)
        try:
            try:
                os.link(source, tmp)  # the work frames are on disk already
            except OSError:
                shutil.copyfile(source, tmp)
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
            os.replace(tmp, target)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise OutputError(f"cannot write {target}: {e.strerror}",
                              hint="check free disk space and permissions") from e
    fsync_folder(dst)
    return dst


class VideoWriter:
    """Stream frames straight into an encoder (no PNG folder): a context manager.

        with VideoWriter("out.mp4", fps=Fraction(30)) as w:
            for frame in frames:
                w.write(frame)          # (H, W, 3) uint8 RGB, all the same size

    Same rules as `encode_video` (H.264/GIF by extension, exact fps, even size by edge
    padding, pix_fmt, steady, atomic output); no audio. The output appears when the block exits cleanly;
    on an exception ffmpeg is killed and the partial file removed. EncoderError if ffmpeg fails.
    """

    def __init__(self, output: str | os.PathLike, *, fps: Fraction, crf: int = DEFAULT_CRF,
                 pix_fmt: str = DEFAULT_PIX_FMT, steady: bool = True):
        self.output, self._ext = _check_output(output, pix_fmt)
        self.fps = Fraction(fps)
        self.crf, self.pix_fmt, self.steady = crf, pix_fmt, steady
        self.n_frames = 0
        self._tmp: TempFile | None = None  # created with the encoder, at the first frame
        self._proc = None
        self._err = None
        self._cmd: list[str] = []
        self._size: tuple[int, int] | None = None

    def __enter__(self) -> VideoWriter:
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {getattr(frame, 'shape', type(frame))}")
        h, w = frame.shape[:2]
        if self._proc is None:
            self._start(w, h)
        elif (w, h) != self._size:
            raise ValueError(f"frame size {w}x{h} differs from the first frame's {self._size[0]}x{self._size[1]}")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except (BrokenPipeError, OSError):
            self._fail("ffmpeg stopped accepting frames")
        self.n_frames += 1

    def _start(self, width: int, height: int) -> None:
        self._size = (width, height)
        self._cmd = _ffmpeg.base_cmd("error") + [
            "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
            "-framerate", f"{self.fps.numerator}/{self.fps.denominator}", "-i", "pipe:0",
            *_output_args(self._ext, width, height, self.crf, False, None, self.pix_fmt, self.steady)]
        self._tmp = _temp_file(self.output, self._ext)
        self._cmd.append(_ffmpeg.path_arg(self._tmp.path))
        try:
            self._proc, self._err = _ffmpeg.popen(self._cmd, stdin=-1)
        except BaseException:
            self._tmp.discard()
            raise

    def _fail(self, what: str) -> None:
        code = _ffmpeg.reap(self._proc, kill=True)
        stderr = _ffmpeg.read_tail(self._err)
        self._proc = None
        self._tmp.discard()
        raise EncoderError(f"{what} while writing {self.output.name} (exit status {code}): "
                           f"{_ffmpeg.last_line(stderr)}",
                           hint="run with --debug for ffmpeg's full message; check free disk space",
                           detail=_ffmpeg.detail(self._cmd, stderr))

    def close(self) -> Path:
        """Finish the file and move it into place; returns the output Path."""
        if self._proc is None:
            if self.n_frames == 0:
                raise ValueError("no frames were written")
            return self.output
        with contextlib.suppress(OSError):  # a broken pipe: ffmpeg died; wait() says why
            self._proc.stdin.close()
        if self._proc.wait() != 0:
            self._fail("ffmpeg failed")
        _ffmpeg.read_tail(self._err)
        self._proc = None
        return _move_into_place(self._tmp, self.output)

    def abort(self) -> None:
        """Kill ffmpeg and remove the partial file (idempotent)."""
        if self._proc is not None:
            _ffmpeg.reap(self._proc, kill=True)
            _ffmpeg.read_tail(self._err)
            self._proc = None
        if self._tmp is not None:
            self._tmp.discard()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
