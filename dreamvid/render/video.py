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

With `cadence` N > 1 (dreamvid/cadence.py) only every Nth frame from `start` (and the last
frame of a shot or of the range) is dreamed, carried from the keyframe before along the
chained source flow; the frames between are built from the two keyframes around them, so a
group's frames are yielded once its later keyframe is dreamed. Any of step, iterations,
blend, frame_iterations and each layer weight may be an expression of time and of the clip's
soundtrack (render/values.py): each frame gets its own values.

Resume gives exactly the uninterrupted result: the chain always continues from the uint8
frame that is on disk (PNG is lossless), never from a float kept in memory, and the jitter is
seeded by (seed, source frame index). A resumed run re-reads S_{t-8}..S_{t-1} and
D_{t-8}..D_{t-1} (temporal.RECALL_FRAMES) and goes on.

The loop overlaps its work: a prefetch thread decodes the next frames and computes their
flow, reliability and scene-cut test; the engine's writer thread encodes and stores finished
PNGs; the main thread only warps (a few ms) and dreams. OpenCV and TensorFlow release the GIL.
The skeleton around the frames (work folder, resume, progress, clean-up) is render/engine.py;
this module is the video's Plan.
"""
from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import DecodeError, DreamvidError, InputError, OutputError, SettingsError
from ..numeric import MAX_LITERAL, shown
from ..settings import Settings, parse_fps
from . import engine, workdir

log = logging.getLogger("dreamvid")

PREFETCH_DEPTH = 3  # frames decoded and flowed ahead of the dream (memory: a few frames)
OUTPUT_ONLY = ("crf", "pix_fmt", "keep_audio", "fps", "interpolate")  # VideoSettings fields that do not change the frames
_POLL_S = 0.1  # s; how often a blocked worker checks whether the render has stopped


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
    if len(text) > MAX_LITERAL:  # before any int() or Fraction(): 5000 digits would trip Python's limit
        raise SettingsError(f"{what} {shown(position)} is {len(text)} characters long, more than {MAX_LITERAL}",
                            hint=POSITION_HELP)
    if text.startswith("f") and text[1:].isascii() and text[1:].isdigit():
        return int(text[1:])
    m = _TIME_RE.match(text)
    if not m:
        raise SettingsError(f"{what} {shown(position)} is neither a time nor a frame index", hint=POSITION_HELP)
    parts = [p for p in m.groups() if p is not None]
    seconds = Fraction(0)
    for p in parts:
        seconds = seconds * 60 + Fraction(p)
    index = seconds * Fraction(fps)
    return int(-(-index.numerator // index.denominator))  # ceil, exact


# ---- the library function ----------------------------------------------------------------------

def render_video(source: str | os.PathLike, output: str | os.PathLike, settings: Settings | None = None, *,
                 preset: str | None = None, progress: engine.ProgressFn | None = None,
                 start: int | str | None = None, end: int | str | None = None, restart: bool = False,
                 keep_frames: bool = False, work_dir: str | os.PathLike | None = None,
                 workers: int | None = None, ray: str | None = None, **overrides) -> engine.Result:
    """Dream the frames [start, end) of `source` into `output`, coherently.

    output: .mp4/.mov/.mkv/.m4v (H.264, the source's audio kept and trimmed unless
    keep_audio=False), .gif, or a folder for PNG frames. settings or preset (default the
    `video` preset), then keyword overrides named as the CLI's flags (`step=0.02`,
    `blend=0.9`, `flow="farneback"`, `layers={"block4c_out": 1}`...). start/end: source
    frame indices, or strings as `frame_index` reads them; default the whole clip.
    Frames go to a work folder (`work_dir`, default OUTPUT.dreamvid-work) and a second call
    resumes at the first missing frame; `restart` discards frames of another render there.
    `progress(engine.Progress)` is called when the work is known, after each frame and
    before the encode; whatever it raises stops the render once that frame is on disk (a
    KeyboardInterrupt propagates as such).
    workers, ray: render on a Ray cluster (render/cluster.py): `workers` tasks at once on a local
    cluster, or on the one at `ray` ("auto" or "HOST:PORT"); the result is the same render.

    Raises InputError (not a video, range outside it), OutputError, SettingsError,
    ResumeMismatchError, DecodeError (after the output was made from the frames that decoded).
    """
    from ..presets import resolve_for
    from . import cluster

    plan = VideoPlan(source, output, resolve_for("video", settings, preset, overrides), start=start, end=end)
    return cluster.render(plan, workers=workers, ray=ray, progress=progress, work_dir=work_dir, restart=restart,
                          keep=keep_frames)


class VideoPlan(engine.Plan):
    """The frames [start, end) of a clip; frame t is made from frame t - 1 (chained)."""

    mode = "video"
    chained = True
    finish_needs_prepare = False  # encoding needs no network

    def __init__(self, source, output, settings: Settings, *, start=None, end=None):
        from .. import media, models

        self.settings = settings
        self.info = info = media.probe_video(source)
        self.output = out = media.check_output_path(output, source)
        if media.output_kind(out) == "image":
            raise OutputError(f"{out.name} is a still image name, not a video",
                              hint="use .mp4, .mov, .mkv, .gif, or a folder name for PNG frames")
        media.check_pix_fmt(out, settings.video.pix_fmt)
        self.start, self.end = _frame_range(info, start, end)
        k = settings.video.interpolate
        self.out_fps = parse_fps(settings.video.fps) or info.fps * k  # interpolated: as smooth, same speed
        self.fps, self.seed = info.fps, settings.dream.seed
        _check_frame_size(info, settings)
        _check_mask(info, settings, self.start, self.end)
        models.check_targets(settings.dream.model, settings.dream.targets())  # no TensorFlow for a known model
        from .values import FrameValues

        self.values = FrameValues(settings, info, self.start, self.end)  # each frame's step, blend...: expressions
        if info.n_frames == 1:
            log.info("%s has a single frame; `dreamvid image` dreams stills", info.path.name)
        self.truncated: DecodeError | None = None
        self.chain_starts: list[int] = []
        self.last_index: int | None = None

    def prepare(self) -> None:
        from dataclasses import replace

        from .. import media
        from ..dream import get_dreamer, objective_for

        d = self.settings.dream
        w, h = media.scaled_size(self.info.width, self.info.height, d.max_size)
        if self.values.signs is None:
            self.dreamer = get_dreamer(d, size=(h, w))  # the size decides precision "auto"
        else:  # layer weights of time: every entry tapped at weight 1, eased per frame (one trace, as zoom's)
            network = replace(d, layers=tuple((n, 1.0) for n, _ in d.targets()), classes=())
            self.dreamer = get_dreamer(network, objective_for(network, self.values.signs), size=(h, w))

    def _at(self, index: int) -> Settings:
        """Frame `index`'s settings (render/values.py); with layer weights of time, the eased
        objective reads this frame's weights from them (Dreamer.dream)."""
        return self.values.at(index)

    def resume_key(self) -> dict:
        return frame_settings_dict(self.settings)

    def source(self) -> dict:
        return workdir.fingerprint(self.info.path, _source_facts(self.info))

    @property
    def history(self) -> int:
        """Frames before a range that continuing its chain reads back (a resume, a cluster task)."""
        from ..temporal import RECALL_FRAMES

        return max(RECALL_FRAMES, self.settings.video.cadence)

    def make(self, todo: list[int], ctx: engine.Context) -> Iterator[engine.Item]:
        from ..temporal import RECALL_FRAMES

        if self.settings.video.cadence > 1 and self.settings.video.flow != "none":
            yield from self._make_cadence(todo, ctx)
            return
        first = todo[0]
        chain = _Chain()
        # A resume re-reads the frames before `first`: their sources, and their dreams from disk
        # (frame t-1 for the chain, up to RECALL_FRAMES back for content that reappears). A range
        # whose previous frame is not stored (a chunk rendered elsewhere) starts a fresh chain.
        resumed = first > self.start and ctx.store.has(first - 1)
        read_from = max(self.start, first - RECALL_FRAMES) if resumed else first
        prefetch = _Prefetch(self.info, read_from, self.end, self.settings)
        try:
            for item in prefetch:
                if item.index < first:  # a frame before a resume: its dream is on disk
                    if ctx.store.has(item.index):
                        chain = chain.advance(item.index, item.frame, ctx.read(item.index), item.cut)
                    continue
                t1 = time.perf_counter()
                keyframe = (item.index - self.start) % self.settings.video.cadence == 0
                out, restarted = _dream_frame(self.dreamer, self._at(item.index), chain, item, dream=keyframe)
                ctx.dream_seconds += time.perf_counter() - t1
                chain = chain.advance(item.index, item.frame, out, restarted)
                self.last_index = item.index
                if restarted:
                    self.chain_starts.append(item.index)
                yield _shown(engine.Item(item.index, out, restarted=restarted), item.mask)
        except DecodeError as e:  # the frames that decoded are done; finish() encodes them, then raises
            self.truncated = e
            return
        finally:
            prefetch.close()
        if self.last_index is not None and self.last_index + 1 < self.end:
            log.warning("%s ended after frame %d, earlier than its %d frames", self.info.path.name,
                        self.last_index, self.info.n_frames)
            ctx.store.set_end(self.last_index + 1)

    def _make_cadence(self, todo: list[int], ctx: engine.Context) -> Iterator[engine.Item]:
        """make() with --cadence N (dreamvid/cadence.py): keyframes (every Nth frame from `start`,
        and the last frame of a shot or of the range) are dreamed, each from the keyframe before
        carried along the chained source flow; the frames between are built from the two
        keyframes around them once the later one is dreamed, then yielded in order.

        A resume re-reads from the last regular keyframe before `first`: its dream (on disk) and
        the sources after it, re-dreams the keyframe that ends the group `first` falls in (the
        same uint8 inputs and seed, so the same frame) and rebuilds the frames from `first` on."""
        from ..cadence import chain

        n = self.settings.video.cadence
        first = todo[0]
        resumed = first > self.start and ctx.store.has(first - 1)
        read_from = self.start + (first - 1 - self.start) // n * n if resumed else first
        prefetch = _Prefetch(self.info, read_from, self.end, self.settings, self.start)
        key = None  # (index, source, dream) of the latest dreamed frame, uint8 as stored
        link = None  # cadence.Link from the latest frame read to `key`
        pending: list = []  # [(_Prepared, Link to key)]: frames after `key` still to make
        try:
            try:
                for item in prefetch:
                    fresh = key is None or item.motion is None or item.cut
                    if item.index < first:  # before a resume: the group's start, and the flow since
                        if fresh:
                            key, link = (item.index, item.frame, ctx.read(item.index)), None
                        else:
                            link = chain(item.motion, link)
                        continue
                    if fresh:  # a shot's first frame: the group before it ends at the frame before
                        yield from self._close_group(key, pending, ctx)
                        made = self._keyframe(None, item, None, ctx)
                        self.last_index = item.index
                        yield _shown(made, item.mask)
                        key, link, pending = (item.index, item.frame, made.image), None, []
                        continue
                    link = chain(item.motion, link)
                    pending.append((item, link))
                    if (item.index - self.start) % n == 0:
                        key = yield from self._close_group(key, pending, ctx)
                        link, pending = None, []
            except DecodeError as e:  # the frames that decoded are done; finish() encodes them, then raises
                self.truncated = e
            yield from self._close_group(key, pending, ctx)  # the last frame read ends the last group
        finally:
            prefetch.close()
        if self.truncated is None and self.last_index is not None and self.last_index + 1 < self.end:
            log.warning("%s ended after frame %d, earlier than its %d frames", self.info.path.name,
                        self.last_index, self.info.n_frames)
            ctx.store.set_end(self.last_index + 1)

    def _close_group(self, key, pending: list, ctx: engine.Context):
        """Dream the group's last frame from `key`, build the frames between, yield them in
        order; returns the new key (index, source, dream)."""
        from ..cadence import between, chain

        if not pending:
            return key
        last, link = pending[-1]
        keyframe = self._keyframe(key, last, link, ctx)
        end = (last.index, last.frame, keyframe.image)
        made, ahead = [], None
        for (item, back), (after, _) in zip(reversed(pending[:-1]), reversed(pending[1:])):
            ahead = chain(after.reverse, ahead)
            t1 = time.perf_counter()
            w = (item.index - key[0]) / (last.index - key[0])
            made.append((item, between(item.frame, key[1:], end[1:], back, ahead, w)))
            ctx.dream_seconds += time.perf_counter() - t1
        from ..dream import to_uint8

        for item, image in reversed(made):
            self.last_index = item.index
            yield _shown(engine.Item(item.index, to_uint8(image)), item.mask)
        self.last_index = last.index
        yield _shown(keyframe, last.mask)
        return end

    def _keyframe(self, key, item: _Prepared, link, ctx: engine.Context) -> engine.Item:
        """A dreamed frame: from `key` carried along `link`, or (key None) fresh from its source."""
        t1 = time.perf_counter()
        if key is None:
            out, restarted = _dream_frame(self.dreamer, self._at(item.index), _Chain(), item)
        else:
            out, restarted = _dream_carried(self.dreamer, self._at(item.index), key, item, link), False
        ctx.dream_seconds += time.perf_counter() - t1
        if restarted:
            self.chain_starts.append(item.index)
        return engine.Item(item.index, out, restarted=restarted)

    def finish(self, ctx: engine.Context) -> engine.Result:
        from .. import media

        work, info, first = ctx.store, self.info, self.start
        if self.truncated is not None:
            last = self.last_index + 1 if self.last_index is not None else ctx.todo[0]
            if last <= first:
                engine.remove_if_empty(work)
                raise self.truncated
        else:
            last = work.end  # a source that ended early without an error shortened the range
        audio = _audio_plan(info, self.settings, self.output, self.out_fps)
        if info.sar != 1 and media.output_kind(self.output) == "frames":
            log.warning("%s has non-square pixels (sample aspect %s); PNG frames cannot say so: show them %s "
                        "times as wide", info.path.name, info.sar, float(info.sar))
        work.finish(self.output, fps=self.out_fps, crf=self.settings.video.crf, pix_fmt=self.settings.video.pix_fmt,
                    end=last, keep=ctx.keep, sar=info.sar,
                    interpolate=self.settings.video.interpolate, compose=self._composer(first, last),
                    audio_source=info.path if audio else None,  # trimmed to the frames' time span
                    audio_start=media.frame_time(first, info.fps), audio_duration=float((last - first) / info.fps))
        if self.values.expressive:
            from .zoom import write_params

            write_params(self.output, self.values.rows(first, last))
        if self.truncated is not None:
            raise DecodeError(f"{info.path.name} stopped decoding after frame {last - 1}; {self.output.name} has "
                              f"the {last - first} frames that decoded ({first}..{last - 1})",
                              hint="the source is probably truncated or corrupt; re-download or re-export it",
                              detail=self.truncated.detail)
        size = media.scaled_size(info.width, info.height, self.settings.dream.max_size)
        return engine.Result(self.output, self.mode, last - first, ctx.rendered, ctx.resumed_from, ctx.elapsed,
                             work.path if ctx.keep else None, fps=self.out_fps, size=size, start=first, end=last,
                             audio=audio, chain_starts=tuple(self.chain_starts), dream_seconds=ctx.dream_seconds)


    def _composer(self, first: int, last: int):
        """With --mask: what each frame shows, the source where its mask is 0, the dream where 1
        (the work folder holds the dream everywhere, so the chain and its strength are a plain
        video's, and a region shows its dream the moment it enters the mask); None without."""
        if self.settings.dream.mask is None:
            return None
        from .. import media
        from ..dream import to_uint8

        reader = media.read_frames(self.info.path, start=first, end=last, max_size=self.settings.dream.max_size,
                                   info=self.info)

        def compose(index: int, dream: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
            for i, source in reader:
                if i == index:
                    if mask is None:
                        return dream
                    src = source.astype(np.float32)
                    return to_uint8(src + mask[..., None] * (dream.astype(np.float32) - src))
            raise DecodeError(f"{self.info.path.name} ended before frame {index} while masking the output",
                              hint="the source changed or is damaged since the frames were dreamed")

        return compose


def _shown(item: engine.Item, mask: np.ndarray | None) -> engine.Item:
    """The item as stored: with --mask, the dream everywhere (what the chain continues from)
    and the mask as its alpha (what finish shows of it)."""
    if mask is None:
        return item
    from dataclasses import replace

    return replace(item, image=np.dstack([item.image, np.rint(mask * 255.0).astype(np.uint8)]))


def frame_settings_dict(settings: Settings) -> dict:
    """Everything the frames depend on (the resume key): all settings but output-only ones."""
    d = settings.to_dict()
    d = {"dream": d["dream"], "video": d["video"]}
    for key in OUTPUT_ONLY:
        d["video"].pop(key, None)
    from ..dream import input_files

    files = input_files(settings.dream)
    if files:
        d["files"] = files
    return d


def _check_frame_size(info, settings: Settings) -> None:
    """InputError now, before any work, if the frames are too small for the network."""
    from .. import media
    from ..dream import check_size

    w, h = media.scaled_size(info.width, info.height, settings.dream.max_size)
    check_size(h, w, settings.dream)
    check_size(h, w, settings.frame_dream())


def _check_mask(info, settings: Settings, start: int, end: int) -> None:
    """Before any work: the guide reads, the mask image or clip fits the frames, a motion mask has a flow."""
    from .. import media
    from ..dream import check_objective
    from ..mask import check_clip, kind

    w, h = media.scaled_size(info.width, info.height, settings.dream.max_size)
    check_objective(settings.dream, "video", (h, w))
    k = kind(settings.dream.mask)
    if k == "clip":
        check_clip(settings.dream.mask, end, (h, w), start)
    elif k in ("motion", "still") and settings.video.flow == "none":
        raise SettingsError(f"--mask {settings.dream.mask} is computed from the optical flow, and --flow is none",
                            hint="use --flow dis (the default) with a motion mask")


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
    if last is not None and last > info.n_frames:
        log.warning("--end %s is beyond the end of %s (%s): dreaming to its last frame", end, info.path.name, length)
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
    if out_fps != info.fps * settings.video.interpolate:
        log.warning("audio left out: --fps %s changes the clip's speed, so the sound would not match",
                    workdir.fps_text(out_fps))
        return False
    return True


# ---- the frame loop ------------------------------------------------------------------------------

@dataclass
class _Prepared:
    """One source frame, made ready by the prefetch thread."""

    index: int
    frame: np.ndarray  # (H, W, 3) uint8 RGB source
    motion: object | None  # flow.Motion from the previous source frame, None: no link
    cut: bool  # a scene cut (or the first frame read)
    recall: object | None = None  # flow.Motion from source frame index - temporal.RECALL_FRAMES, same shot
    reverse: object | None = None  # with --cadence: `motion` the other way round, a field on frame index - 1
    mask: np.ndarray | None = None  # (H, W) float32 0..1: where this frame's dream shows (--mask), None: everywhere


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



def _dream_frame(dreamer, settings: Settings, chain: _Chain, item: _Prepared, dream: bool = True
                 ) -> tuple[np.ndarray, bool]:
    """One step of the chain: (dreamed frame uint8, whether it started from the bare source).

    dream=False (a frame between two dreamed ones with --cadence): the carried start image is
    the frame, no gradient step: the previous frame moved along the source's flow, occlusion-
    aware (where nothing can be carried the source shows until the next dreamed frame)."""
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
        start, s = c.start, settings.frame_dream()
        if not dream:  # no increment: the hold keeps each region's strength all the same
            return to_uint8(hold(c, start, v.temporal_weight, v.strength_hold)), False
    with _out_of_memory_named(item):
        dreamed = dreamer.dream(start, s, frame=item.index)
    return to_uint8(dreamed if c is None else hold(c, dreamed, v.temporal_weight, v.strength_hold)), fresh


@contextlib.contextmanager
def _out_of_memory_named(item: _Prepared):
    """Out of memory while dreaming `item`: one line naming the frame's size and the way out."""
    try:
        yield
    except MemoryError:
        raise _out_of_memory(item) from None
    except Exception as e:  # TensorFlow's ResourceExhaustedError, without importing TF here
        if type(e).__name__ == "ResourceExhaustedError":
            raise _out_of_memory(item) from None
        raise


def _dream_carried(dreamer, settings: Settings, key: tuple, item: _Prepared, link) -> np.ndarray:
    """A keyframe with --cadence: keyframe `key` = (index, source, dream uint8) carried onto
    this frame along `link` (cadence.Link), dreamed with the per-frame steps, held (temporal.py)."""
    from ..dream import to_uint8
    from ..temporal import carry, hold

    v = settings.video
    c = carry(key[2], key[1], item.frame, link.motion(), v.blend, hold_strength=v.strength_hold > 0)
    with _out_of_memory_named(item):
        dreamed = dreamer.dream(c.start, settings.frame_dream(), frame=item.index)
    return to_uint8(hold(c, dreamed, v.temporal_weight, v.strength_hold))


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

    def __init__(self, info, first: int, end: int, settings: Settings, start: int = 0):
        self._args = (info, first, end, settings, start)  # start: of the plan, where the cadence counts from
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
        from ..cadence import reverse as cadence_reverse
        from ..flow import FlowEstimator, cut_score, is_scene_cut, motion_between
        from ..temporal import RECALL_FRAMES, RECALL_QUALITY, recall_motion

        info, first, end, settings, start = self._args
        v = settings.video
        estimator = FlowEstimator(v.flow, v.flow_quality) if v.flow != "none" else None
        recall_estimator = FlowEstimator(v.flow, RECALL_QUALITY) if v.flow != "none" else None
        masks = pending = None
        try:
            if settings.dream.mask is not None:
                from ..mask import VideoMasks

                w, h = media.scaled_size(info.width, info.height, settings.dream.max_size)
                masks = VideoMasks(settings.dream.mask, first, end, (h, w))
            reader = media.read_frames(info.path, start=first, end=end, max_size=settings.dream.max_size, info=info)
            try:
                prev = None
                shot: deque = deque(maxlen=RECALL_FRAMES)  # (index, source) of this shot's last frames
                # temporal.carry uses the long-term link; a keyframe of --cadence is carried from the one before
                recalls = bool(v.temporal_weight or v.strength_hold) and v.cadence == 1
                for index, frame in reader:
                    motion, cut, recall = None, True, None
                    if prev is not None and estimator is not None:
                        score = cut_score(prev, frame) if v.scene_cuts else None  # one histogram test, asked twice
                        cut = v.scene_cuts and is_scene_cut(prev, frame, score=score)
                        if not cut:
                            motion = motion_between(prev, frame, estimator)
                            cut = v.scene_cuts and is_scene_cut(prev, frame, motion=motion, score=score)
                    if cut or motion is None:
                        shot.clear()
                    elif recalls and len(shot) == RECALL_FRAMES and shot[0][0] == index - RECALL_FRAMES:
                        recall = recall_motion(shot[0][1], frame, recall_estimator)
                    reverse = None
                    if v.cadence > 1 and motion is not None and not cut and (index - 1 - start) % v.cadence:
                        reverse = cadence_reverse(motion, prev, frame)  # frame index - 1 lies between keyframes
                    item = _Prepared(index, frame, motion, cut, recall, reverse)
                    if pending is not None:  # a shot's first frame, waiting for its motion to this one
                        ahead = motion_between(frame, pending.frame, estimator) if motion is not None else None
                        pending.mask = masks.get(pending.index, ahead, linked=False)
                        if not self._put(pending):
                            return
                        pending = None
                    if masks is not None and masks.needs_ahead and motion is None:
                        pending = item
                    else:
                        if masks is not None:
                            item.mask = masks.get(index, motion)
                        if not self._put(item):
                            return
                    shot.append((index, frame))
                    prev = frame
                if pending is not None:  # a shot of one frame at the end: nothing moves in it
                    pending.mask = masks.get(pending.index, None, linked=False)
                    if not self._put(pending):
                        return
            finally:
                reader.close()
                if masks is not None:
                    masks.close()
            self._put(None)
        except BaseException as e:  # handed to the main thread, which raises it
            self._put(e)
