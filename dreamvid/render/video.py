"""render_video: dream a clip frame by frame, keeping the dream on the objects it sits on.

For each frame t of the range (DESIGN, "Video"):
1. flows between the SOURCE frames S_{t-1} and S_t (backward and forward, `flow.motion_between`);
2.-4. the start image is S_t plus the previous dream's detail warped onto frame t, weighted
   by `blend` and by the forward-backward reliability (fresh source where it is occluded or
   newly in view, frame t-8's dream where only that one saw it: `temporal.carry`); it is
   dreamed with the per-frame iterations and octaves (`frame_iterations`, `frame_num_octave`:
   it starts half-dreamed already), and tracked pixels are held to what they carried, every
   region to its strength (`temporal.hold`: `temporal_weight`, `strength_hold`);
5. the first frame, and the first frame after a scene cut, start from S_t and get the full
   DreamSettings, as a still would;
6. `flow="none"` dreams every frame independently with the full settings (the flickering
   baseline that the coherence numbers are measured against).

Resume gives exactly the uninterrupted result: the chain always continues from the uint8
frame that is on disk (PNG is lossless), never from a float kept in memory, and the jitter is
seeded by (seed, source frame index). A resumed run re-reads S_{t-8}..S_{t-1} and
D_{t-8}..D_{t-1} (temporal.RECALL_FRAMES) and goes on.

The loop overlaps its work: a prefetch thread decodes the next frames and computes their
flow, reliability and scene-cut test; a writer thread encodes and stores finished PNGs; the
main thread only warps (a few ms) and dreams. OpenCV and TensorFlow release the GIL.
"""
from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import DecodeError, DreamvidError, InputError, OutputError, SettingsError
from ..settings import DreamSettings, Settings, validate, validate_video
from . import frames as work_folder

log = logging.getLogger("dreamvid")

PREFETCH_DEPTH = 3  # frames decoded and flowed ahead of the dream (memory: a few frames)
WRITE_DEPTH = 3  # finished frames waiting for the PNG writer
OUTPUT_ONLY = ("crf", "keep_audio", "fps")  # VideoSettings fields that do not change the frames
MAX_FPS = 1000  # a frame-rate override above this is a typo
_POLL_S = 0.1  # s; how often a blocked worker checks whether the render has stopped


@dataclass(frozen=True)
class FrameProgress:
    """Reported once before the first frame (rendered == 0, index: the frame about to be
    dreamed), then after each frame is dreamed (and queued for writing)."""

    done: int  # frames of the range finished, resumed ones included
    total: int  # frames in the range
    index: int  # source index of the frame just dreamed
    rendered: int  # frames dreamed by this run (0: the start event)
    elapsed: float  # s since this run's first frame started
    scene_cut: bool  # this frame restarted the chain (first frame, cut, or flow "none")

    @property
    def fps(self) -> float:
        """Frames dreamed per second by this run."""
        return self.rendered / self.elapsed if self.elapsed > 0 else 0.0


ProgressFn = Callable[[FrameProgress], None]


@dataclass(frozen=True)
class VideoResult:
    output: Path
    start: int  # source frame range [start, end) in the output
    end: int
    fps: Fraction  # of the output
    size: tuple[int, int]  # (width, height) of the dreamed frames (the mp4 pads odd sides by 1 px)
    audio: bool  # the output carries the source's audio
    rendered: int  # frames dreamed by this run (fewer than end - start after a resume)
    resumed_from: int | None  # first frame this run dreamed, when earlier ones were on disk
    chain_starts: tuple[int, ...]  # frames dreamed from the bare source (first frame, scene cuts)
    seconds: float  # wall time of this run's frame loop (decode, flow, warp, dream, write)
    dream_seconds: float  # of which inside the dream core
    work_dir: Path | None  # the kept work folder (keep_frames), else None

    @property
    def n_frames(self) -> int:
        return self.end - self.start


# ---- positions: "12s", "1.5", "1:02.5", "f30" ------------------------------------------------

_TIME_RE = re.compile(r"^(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d*)?|\.\d+)s?$")
POSITION_HELP = "seconds (12, 1.5, 12s, 1:05.5) or a frame index (f30)"


def frame_index(position: int | str | None, fps: Fraction, what: str = "position") -> int | None:
    """A position in a clip -> source frame index.

    int: a frame index. str: "f30" frame 30; "12", "1.5", "12s", "1:05.5", "1:02:03" seconds,
    meaning the first frame shown at or after that time (index ceil(t * fps)).
    """
    if position is None or isinstance(position, int):
        if isinstance(position, int) and position < 0:
            raise SettingsError(f"{what} must be >= 0 (got {position})", hint=POSITION_HELP)
        return position
    text = str(position).strip().lower()
    if text.startswith("f") and text[1:].isdigit():
        return int(text[1:])
    m = _TIME_RE.match(text)
    if not m:
        raise SettingsError(f"{what} {position!r} is neither a time nor a frame index", hint=POSITION_HELP)
    parts = [p for p in m.groups() if p is not None]
    seconds = Fraction(0)
    for p in parts:
        seconds = seconds * 60 + Fraction(p)
    index = seconds * Fraction(fps)
    return int(-(-index.numerator // index.denominator))  # ceil, exact


def parse_fps(text: str | None) -> Fraction | None:
    """"24", "30000/1001", "29.97" -> Fraction; None stays None."""
    if text is None:
        return None
    try:
        fps = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError):
        raise SettingsError(f"fps {text!r} is not a number", hint="e.g. --fps 24 or --fps 30000/1001") from None
    if not 0 < fps <= MAX_FPS:
        raise SettingsError(f"fps must be between 0 and {MAX_FPS} (got {text})", hint="e.g. --fps 24")
    return fps


# ---- the library function ----------------------------------------------------------------------

def render_video(source: str | os.PathLike, output: str | os.PathLike, settings: Settings | None = None, *,
                 start: int | str | None = None, end: int | str | None = None, restart: bool = False,
                 keep_frames: bool = False, work_dir: str | os.PathLike | None = None,
                 progress: ProgressFn | None = None) -> VideoResult:
    """Dream the frames [start, end) of `source` into `output`, coherently.

    output: .mp4/.mov/.mkv/.m4v (H.264, the source's audio kept and trimmed unless
    settings.video.keep_audio is False), .gif, or a folder for PNG frames. start/end: source
    frame indices, or strings as `frame_index` reads them; default the whole clip.
    Frames go to a work folder (`work_dir`, default OUTPUT.dreamvid-work) and a second call
    resumes at the first missing frame; `restart` discards frames of another render there.
    `progress(FrameProgress)` is called once when the work is known, then after each frame;
    whatever it raises stops the render once that frame is on disk (a KeyboardInterrupt
    propagates as such).

    Raises InputError (not a video, range outside it), OutputError, SettingsError,
    ResumeMismatchError, DecodeError (after the output was made from the frames that decoded).
    """
    from .. import media

    settings = settings or Settings()
    settings = Settings(validate(settings.dream), validate_video(settings.video))
    info = media.probe_video(source)
    out = media.check_output_path(output, source)
    if media.output_kind(out) == "image":
        raise OutputError(f"{out.name} is a still image name, not a video",
                          hint="use .mp4, .mov, .mkv, .gif, or a folder name for PNG frames")
    first, last = _frame_range(info, start, end)
    out_fps = parse_fps(settings.video.fps) or info.fps
    _check_frame_size(info, settings)
    if info.n_frames == 1:
        log.info("%s has a single frame; `dreamvid image` dreams stills", info.path.name)
    work = work_folder.open_work(
        out, kind="video", settings=frame_settings_dict(settings), seed=settings.dream.seed,
        source=work_folder.fingerprint(info.path, _source_facts(info)), start=first, end=last,
        fps=info.fps, work_dir=work_dir, restart=restart)
    with work:  # holds the folder's lock until the frames are encoded or the render fails
        resume_at = work.first_missing()
        if resume_at is not None and resume_at > first:
            log.info("resuming at frame %d: %d of %d frames are already in %s",
                     resume_at, resume_at - first, last - first, work.path)
        stats = _Stats()
        truncated: DecodeError | None = None
        try:
            if progress:
                todo = last if resume_at is None else resume_at
                progress(FrameProgress(todo - first, last - first, todo, 0, 0.0, False))
            if resume_at is not None:
                truncated = _render_frames(work, resume_at, info, settings, stats, progress)
        except BaseException:
            _remove_if_empty(work)
            raise
        if truncated is not None:
            last = stats.last_index + 1 if stats.last_index is not None else resume_at
            if last <= first:
                _remove_if_empty(work)
                raise truncated
        else:
            last = work.end  # a source that ended early without an error shortened the range
        audio = _audio_plan(info, settings, out, out_fps)
        work.finish(out, fps=out_fps, crf=settings.video.crf, end=last, keep=keep_frames,
                    audio_source=info.path if audio else None,  # trimmed to the frames' time span
                    audio_start=media.frame_time(first, info.fps), audio_duration=float((last - first) / info.fps))
    size = media.scaled_size(info.width, info.height, settings.dream.max_size)
    result = VideoResult(out, first, last, out_fps, size, audio, stats.rendered,
                         resume_at if resume_at not in (None, first) else None, tuple(stats.chain_starts),
                         stats.seconds, stats.dream_seconds, work.path if keep_frames else None)
    if truncated is not None:
        raise DecodeError(f"{info.path.name} stopped decoding after frame {last - 1}; {out.name} has the "
                          f"{last - first} frames that decoded ({first}..{last - 1})",
                          hint="the source is probably truncated or corrupt; re-download or re-export it",
                          detail=truncated.detail)
    return result


def _remove_if_empty(work) -> None:
    """Leave no empty work folder behind a render that failed before its first frame."""
    try:
        if not work.done_indices():
            work.remove()
    except OSError:  # the folder has gone already
        pass


def frame_settings(settings: Settings) -> DreamSettings:
    """The DreamSettings of a frame that starts from the warped previous dream."""
    d, v = settings.dream, settings.video
    return replace(d, iterations=d.iterations if v.frame_iterations is None else v.frame_iterations,
                   num_octave=d.num_octave if v.frame_num_octave is None else v.frame_num_octave)


def frame_settings_dict(settings: Settings) -> dict:
    """Everything the frames depend on (the resume key): all settings but output-only ones."""
    d = settings.to_dict()
    for key in OUTPUT_ONLY:
        d["video"].pop(key, None)
    return d


def _check_frame_size(info, settings: Settings) -> None:
    """InputError now, before any work, if the frames are too small for the network."""
    from .. import media
    from ..dream import check_size

    w, h = media.scaled_size(info.width, info.height, settings.dream.max_size)
    check_size(h, w, settings.dream)
    check_size(h, w, frame_settings(settings))


def _source_facts(info) -> dict:
    return {"width": info.width, "height": info.height, "fps": info.fps, "n_frames": info.n_frames,
            "rotation": info.rotation, "variable_fps": info.variable_fps}


def _frame_range(info, start, end) -> tuple[int, int]:
    first = frame_index(start, info.fps, "--start") or 0
    last = frame_index(end, info.fps, "--end")
    length = f"{info.duration:.2f} s, {info.n_frames} frames"
    if first >= info.n_frames:
        raise InputError(f"--start {start} is beyond the end of {info.path.name} ({length})",
                         hint=f"give a start before frame {info.n_frames}")
    if last is None or last > info.n_frames:
        last = info.n_frames
    if last <= first:
        raise SettingsError(f"--end {end} is not after --start {start or 0} (frames {first}..{last})",
                            hint="the range is [start, end): end must come later")
    return first, last


def _audio_plan(info, settings: Settings, out: Path, out_fps: Fraction) -> bool:
    """Whether the output gets the source's audio (trimmed to the rendered range)."""
    from .. import media

    if not (settings.video.keep_audio and info.has_audio and media.output_kind(out) == "video"):
        return False
    if out_fps != info.fps:
        log.warning("audio left out: --fps %s changes the clip's speed, so the sound would not match",
                    work_folder.fps_text(out_fps))
        return False
    return True


# ---- the frame loop ------------------------------------------------------------------------------

@dataclass
class _Stats:
    rendered: int = 0
    seconds: float = 0.0
    dream_seconds: float = 0.0
    last_index: int | None = None
    chain_starts: list = None  # type: ignore[assignment]

    def __post_init__(self):
        self.chain_starts = []


@dataclass
class _Prepared:
    """One source frame, made ready by the prefetch thread."""

    index: int
    frame: np.ndarray  # (H, W, 3) uint8 RGB source
    motion: object | None  # flow.Motion from the previous source frame, None: no link
    cut: bool  # a scene cut (or the first frame read)
    recall: object | None = None  # flow.Motion from source frame index - temporal.RECALL_FRAMES, same shot


@dataclass
class _Chain:
    """What frame t needs from frame t-1 (its source and its dream exactly as stored) and, for
    content that reappears (temporal.RECALL_FRAMES), the same of earlier frames of the shot."""

    source: np.ndarray | None = None  # (H, W, 3) uint8
    dream: np.ndarray | None = None  # (H, W, 3) uint8
    earlier: tuple = ()  # ((index, source, dream), ...): this shot's last RECALL_FRAMES frames, oldest first

    def advance(self, index: int, source: np.ndarray, dream: np.ndarray, new_shot: bool) -> _Chain:
        """The chain after frame `index` was dreamed (or, on resume, read back from disk)."""
        from ..temporal import RECALL_FRAMES

        kept = () if new_shot else self.earlier
        return _Chain(source, dream, (*kept, (index, source, dream))[-RECALL_FRAMES:])

    def recalled(self, index: int):
        """(source, dream) of frame `index` if the chain holds it, else None."""
        return next(((s, d) for i, s, d in self.earlier if i == index), None)


def _render_frames(work, first: int, info, settings: Settings, stats: _Stats,
                   progress: ProgressFn | None) -> DecodeError | None:
    """Dream frames [first, work.end) into `work`; returns a DecodeError if the source ended
    early (the frames that decoded are done), else None."""
    from ..dream import get_dreamer
    from ..temporal import RECALL_FRAMES

    dreamer = get_dreamer(settings.dream)
    chain = _Chain()
    # a resume re-reads the frames before `first` (their sources, and their dreams from disk)
    read_from = max(work.start, first - RECALL_FRAMES) if first > work.start else first
    prefetch = _Prefetch(info, read_from, work.end, settings)
    writer = _Writer(work)
    t0 = time.perf_counter()
    done = first - work.start
    try:
        for item in prefetch:
            if item.index < first:  # a frame before a resume: its dream is on disk
                chain = chain.advance(item.index, item.frame, work.read(item.index), item.cut)
                continue
            t1 = time.perf_counter()
            out, restarted = _dream_frame(dreamer, settings, chain, item)
            stats.dream_seconds += time.perf_counter() - t1
            writer.put(item.index, out)
            chain = chain.advance(item.index, item.frame, out, restarted)
            stats.rendered += 1
            stats.last_index = item.index
            done += 1
            if restarted:
                stats.chain_starts.append(item.index)
            stats.seconds = time.perf_counter() - t0
            if progress:
                progress(FrameProgress(done, work.end - work.start, item.index, stats.rendered,
                                       stats.seconds, restarted))
        writer.close()
        stats.seconds = time.perf_counter() - t0
    except DecodeError as e:
        writer.close()
        return e
    finally:
        prefetch.close()
        writer.close(raise_error=False)  # on any exit, every dreamed frame reaches the disk
    if stats.last_index is not None and stats.last_index + 1 < work.end:
        log.warning("%s ended after frame %d, earlier than its %d frames", info.path.name,
                    stats.last_index, info.n_frames)
        work.set_end(stats.last_index + 1)
    return None


def _dream_frame(dreamer, settings: Settings, chain: _Chain, item: _Prepared) -> tuple[np.ndarray, bool]:
    """One step of the chain: (dreamed frame uint8, whether it started from the bare source)."""
    from ..dream import to_uint8
    from ..temporal import RECALL_FRAMES, carry, hold

    v = settings.video
    fresh = chain.dream is None or item.motion is None or item.cut
    if fresh:
        start, s, c = item.frame.astype(np.float32), settings.dream, None
    else:  # temporal.py: carry the dream in, dream the frame, hold tracked pixels to what they carried
        earlier = chain.recalled(item.index - RECALL_FRAMES) if item.recall is not None else None
        c = carry(chain.dream, chain.source, item.frame, item.motion, v.blend, hold_strength=v.strength_hold > 0,
                  recall=(*earlier, item.recall) if earlier is not None else None)
        start, s = c.start, frame_settings(settings)
    try:
        dreamed = dreamer.dream(start, s, frame=item.index)
        return to_uint8(dreamed if c is None else hold(c, dreamed, v.temporal_weight, v.strength_hold)), fresh
    except MemoryError:
        raise _out_of_memory(item) from None
    except Exception as e:  # TensorFlow's ResourceExhaustedError, without importing TF here
        if type(e).__name__ == "ResourceExhaustedError":
            raise _out_of_memory(item) from None
        raise


def _out_of_memory(item: _Prepared) -> DreamvidError:
    h, w = item.frame.shape[:2]
    return DreamvidError(f"out of memory dreaming a {w}x{h} frame",
                         hint="lower --tile (e.g. 256) or --max-size; finished frames are kept")


class _Prefetch:
    """Decodes frames and computes their motion and scene-cut test in a worker thread.

    Iterating yields _Prepared in order, then re-raises whatever the worker met (a
    DecodeError after the last good frame). `close()` stops the worker, which closes the
    decoder (ffmpeg is reaped in the worker's own `finally`).
    """

    def __init__(self, info, first: int, end: int, settings: Settings):
        self._args = (info, first, end, settings)
        self._queue: queue.Queue = queue.Queue(maxsize=PREFETCH_DEPTH)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dreamvid-prefetch", daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[_Prepared]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:  # unblock a worker waiting on a full queue
                self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                pass
        self._thread.join()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        from collections import deque

        from .. import media
        from ..flow import FlowEstimator, is_scene_cut, motion_between
        from ..temporal import RECALL_FRAMES, RECALL_QUALITY, recall_motion

        info, first, end, settings = self._args
        v = settings.video
        estimator = FlowEstimator(v.flow, v.flow_quality) if v.flow != "none" else None
        recall_estimator = FlowEstimator(v.flow, RECALL_QUALITY) if v.flow != "none" else None
        try:
            reader = media.read_frames(info.path, start=first, end=end, max_size=settings.dream.max_size, info=info)
            try:
                prev = None
                shot: deque = deque(maxlen=RECALL_FRAMES)  # (index, source) of this shot's last frames
                recalls = bool(v.temporal_weight or v.strength_hold)  # temporal.carry uses the long-term link
                for index, frame in reader:
                    motion, cut, recall = None, True, None
                    if prev is not None and estimator is not None:
                        cut = v.scene_cuts and is_scene_cut(prev, frame)
                        if not cut:
                            motion = motion_between(prev, frame, estimator)
                            cut = v.scene_cuts and is_scene_cut(prev, frame, motion=motion)
                    if cut or motion is None:
                        shot.clear()
                    elif recalls and len(shot) == RECALL_FRAMES and shot[0][0] == index - RECALL_FRAMES:
                        recall = recall_motion(shot[0][1], frame, recall_estimator)
                    if not self._put(_Prepared(index, frame, motion, cut, recall)):
                        return
                    shot.append((index, frame))
                    prev = frame
            finally:
                reader.close()
            self._put(None)
        except BaseException as e:  # handed to the main thread, which raises it
            self._put(e)


class _Writer:
    """Stores finished frames as PNGs in a worker thread, in order; errors surface in `put`/`close`."""

    def __init__(self, work):
        self._work = work
        self._queue: queue.Queue = queue.Queue(maxsize=WRITE_DEPTH)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="dreamvid-writer", daemon=True)
        self._thread.start()

    def put(self, index: int, image: np.ndarray) -> None:
        self._raise()
        self._queue.put((index, image))

    def close(self, raise_error: bool = True) -> None:
        """Wait until every queued frame is on disk (or the writer failed)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        if raise_error:
            self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            e, self._error = self._error, None
            if isinstance(e, OutputError):  # mid-render (disk full, folder gone): a runtime failure, exit 1
                raise DreamvidError(e.message, hint=f"{e.hint}; finished frames are kept in {self._work.path}, "
                                                    "run the same command again to resume", detail=e.detail) from e
            raise e

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self._work.write(*item)
                except BaseException as e:  # noqa: BLE001 - handed to the main thread
                    self._error = e
