"""`render_timelapse`: the dream as iterations grow, as a video, a GIF, a contact sheet or PNGs.

Two ways to sample the growth (DESIGN, "Zoom and timelapse"):

* checkpoints (40, 80, ... 240): an independent render with `iterations` set to each count,
  exactly the experiment users run by hand ("what does it look like after 40 iterations?").
  `iterations` is per octave, as everywhere in dreamvid.
* continuous (`every` K): ONE run with the settings' own `iterations`, a snapshot every K
  gradient steps counted over all octaves, plus the finished image. Much cheaper; the
  pictures show the octaves being built up, and the last one IS the direct render
  (`dream_image` with the same settings), because it is the same computation.

The output kind comes from the extension: .mp4/.mov/.mkv (snapshots held `hold` s each,
crossfaded over `fade` s, labelled), .gif (the same), an image file (a labelled contact
sheet), or a folder (the snapshots as PNGs named by their count). Snapshots are streamed
to the output as they are made, so a long continuous run does not pile up in memory.

Checkpoint renders add up (40 + 80 + ... + 240 = 840 iterations per octave), so each
finished checkpoint also goes to a work folder beside the output (render/frames.py; the
k-th checkpoint as frame k): a timelapse interrupted and run again takes the finished ones
from there. A continuous run is one computation and restarts whole.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from ..errors import SettingsError
from ..settings import MAX_ITERATIONS, DreamSettings, validate
from . import sheet

log = logging.getLogger("dreamvid")

DEFAULT_CHECKPOINTS = (40, 80, 120, 160, 200, 240)  # iterations per octave: the users' hand experiment
DEFAULT_FPS = 25  # a slideshow; 25 also gives GIF its exact 4 cs frame delay
DEFAULT_HOLD = 1.0  # s each snapshot stays on screen (the last one twice as long)
DEFAULT_FADE = 0.5  # s of crossfade between snapshots
MAX_SNAPSHOTS = 1000  # more is a typo (--every 1 on a long run), and a video of flicker
MAX_SHEET_TILES = 100  # a contact sheet with more tiles is unreadable
MAX_VIDEO_SECONDS = 3600  # a timelapse longer than an hour is a mistake in hold/fade
TILE_KEYS = ("step", "num_octave", "octave_scale", "max_loss")  # printed under every tile
CAPTION_KEYS = ("model", "layers", "jitter", "seed")  # the rest, once in the caption

Progress = Callable[[int, int, str], None]  # (gradient steps done, total, what is happening)


@dataclass(frozen=True)
class Snapshot:
    """One picture of the timelapse."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    steps: int  # gradient-ascent steps run to make it, over all octaves
    label: str  # "40 iterations" (checkpoints) or "step 60 · octave 2/3" (continuous)
    settings: DreamSettings  # what made it (checkpoints: `iterations` is the checkpoint)


def check_checkpoints(checkpoints: Sequence[int]) -> tuple[int, ...]:
    """Whole numbers >= 0, strictly increasing, at most MAX_ITERATIONS; else SettingsError."""
    values = tuple(checkpoints)
    if not values:
        raise SettingsError("checkpoints is empty", hint="give iteration counts, e.g. --checkpoints 40,80,120")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= MAX_ITERATIONS:
            raise SettingsError(f"checkpoints must be whole numbers between 0 and {MAX_ITERATIONS} (got {v!r})",
                                hint="e.g. --checkpoints 40,80,120,160,200,240")
    for a, b in zip(values, values[1:]):
        if b <= a:
            raise SettingsError(f"checkpoints must increase, but {b} comes after {a}",
                                hint="list iteration counts in increasing order, e.g. 40,80,120")
    if len(values) > MAX_SNAPSHOTS:
        raise SettingsError(f"{len(values)} checkpoints is more than the limit of {MAX_SNAPSHOTS}",
                            hint="use fewer checkpoints")
    return tuple(int(v) for v in values)


def parse_checkpoints(text: str) -> tuple[int, ...]:
    """'40,80,120' -> (40, 80, 120), checked (SettingsError naming the bad item)."""
    items = [t.strip() for t in text.split(",")]
    if not any(items):
        raise SettingsError("checkpoints is empty", hint="give iteration counts, e.g. --checkpoints 40,80,120")
    values = []
    for t in items:
        try:
            values.append(int(t))
        except ValueError:
            raise SettingsError(f"checkpoints must be whole numbers (got {t!r})",
                                hint="e.g. --checkpoints 40,80,120,160,200,240") from None
    return check_checkpoints(values)


def timelapse(image: np.ndarray, settings: DreamSettings | None = None, *,
              checkpoints: Sequence[int] | None = None, every: int | None = None,
              emit: Callable[[Snapshot], None] | None = None, progress: Progress | None = None,
              dreamer=None, store=None) -> list[Snapshot]:
    """Dream `image` (H, W, 3) uint8 or float 0..255 RGB and take snapshots as iterations grow.

    Give `checkpoints` (independent renders at those iterations per octave) or `every`
    (one run with settings.iterations, a snapshot every K steps over all octaves, and the
    final image). Neither: DEFAULT_CHECKPOINTS. The image is first fit to settings.max_size.
    Each Snapshot is passed to `emit` as soon as it exists; without `emit` they are
    returned as a list (with `emit`, the list is empty: nothing is kept). store: a work
    folder (render.frames.WorkFolder) holding checkpoint k as frame k: those on disk are
    read instead of dreamed, new ones are written there.
    """
    from ..dream import fit_max_size, get_dreamer, octave_sizes

    s = validate(settings or DreamSettings())
    modes = plan(s, checkpoints, every)
    dreamer = dreamer or get_dreamer(s)
    s = replace(s, layers=tuple(dreamer.model.layers))  # the layers actually dreamed, for the labels
    image = fit_max_size(np.asarray(image, np.float32), s.max_size)
    n_oct = len(octave_sizes(*image.shape[:2], s.num_octave, s.octave_scale, dreamer.min_size))
    kept: list[Snapshot] = []
    out = emit or kept.append
    if modes[0] == "checkpoints":
        _checkpoints(dreamer, image, s, modes[1], n_oct, out, progress, store)
    else:
        _continuous(dreamer, image, s, modes[1], n_oct, out, progress)
    return kept


def plan(s: DreamSettings, checkpoints: Sequence[int] | None, every: int | None) -> tuple[str, object]:
    """("checkpoints", counts) or ("every", K), checked before any work."""
    if checkpoints is not None and every is not None:
        raise SettingsError("give checkpoints or every, not both",
                            hint="--checkpoints renders each count anew; --every K samples one run")
    if every is None:
        return "checkpoints", check_checkpoints(DEFAULT_CHECKPOINTS if checkpoints is None else checkpoints)
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise SettingsError(f"every must be a whole number of steps >= 1 (got {every!r})",
                            hint="e.g. --every 10 --iterations 60")
    total = s.iterations * s.num_octave
    if total < 1:
        raise SettingsError("iterations is 0, so a continuous timelapse has nothing to sample",
                            hint="e.g. --every 10 --iterations 60")
    if every > total:
        raise SettingsError(f"every ({every}) is more than the whole run's {total} steps "
                            f"({s.num_octave} octaves x {s.iterations} iterations)",
                            hint="use a smaller --every or more --iterations")
    if math.ceil(total / every) > MAX_SNAPSHOTS:
        raise SettingsError(f"--every {every} over {total} steps makes {math.ceil(total / every)} snapshots, "
                            f"more than the limit of {MAX_SNAPSHOTS}", hint="use a larger --every")
    return "every", int(every)


def snapshot_count(s: DreamSettings, checkpoints: Sequence[int] | None, every: int | None) -> int:
    """How many snapshots `timelapse` will make at most (for checks before the work)."""
    mode, value = plan(s, checkpoints, every)
    return len(value) if mode == "checkpoints" else math.ceil(s.iterations * s.num_octave / value)


def _checkpoints(dreamer, image, s, counts, n_oct, emit, progress, store=None) -> None:
    total, base = sum(counts) * n_oct, 0
    stopped_at = None
    for k, count in enumerate(counts):
        cs = replace(s, iterations=count)
        label = f"{count} iteration{'s' * (count != 1)}"
        if store is not None and store.has(k):  # made by an earlier, interrupted run
            base += count * n_oct
            if progress:
                progress(base, total, f"{count} iterations ({k + 1}/{len(counts)}) from {store.path.name}")
            emit(Snapshot(store.read(k), count * n_oct, label, cs))
            continue
        steps = 0

        def on_step(p, count=count, k=k):
            nonlocal steps
            steps += 1
            if progress:
                progress(base + steps, total, f"{count} iterations ({k + 1}/{len(counts)}), "
                                              f"octave {p.octave + 1}/{p.num_octave}, loss {p.loss:.2f}")

        picture = _u8(dreamer.dream(image, cs, progress=on_step))
        if store is not None:
            store.write(k, picture)
        if steps < count * n_oct and stopped_at is None:
            stopped_at = count
        base += count * n_oct
        emit(Snapshot(picture, steps, label, cs))
    if stopped_at is not None:
        log.warning("max_loss %g stopped octaves early from %d iterations on, so later checkpoints look alike; "
                    "raise --max-loss (e.g. --max-loss 1000) to let them keep growing", s.max_loss, stopped_at)


def _continuous(dreamer, image, s, every, n_oct, emit, progress) -> None:
    total = s.iterations * n_oct
    last = {"p": None, "steps": 0}

    def on_step(p):
        last["p"], last["steps"] = p, last["steps"] + 1
        if progress:
            progress(last["steps"], total, f"octave {p.octave + 1}/{p.num_octave}, "
                                           f"iteration {p.iteration}/{p.iterations}, loss {p.loss:.2f}")

    def on_snapshot(steps, picture):
        if steps < total:  # the final picture is emitted below, from the run's own result
            emit(Snapshot(_u8(picture), steps, _step_label(steps, last["p"]), s))

    result = dreamer.dream(image, s, progress=on_step, snapshot_every=every, on_snapshot=on_snapshot)
    if last["steps"] < total:
        log.warning("max_loss %g stopped octaves early: the run took %d of %d steps",
                    s.max_loss, last["steps"], total)
    emit(Snapshot(_u8(result), last["steps"], _step_label(last["steps"], last["p"]), s))


def _step_label(steps: int, p) -> str:
    return f"step {steps}" + (f" · octave {p.octave + 1}/{p.num_octave}" if p is not None else "")


def _u8(image: np.ndarray) -> np.ndarray:
    from ..dream import to_uint8

    return to_uint8(image)


# ---- output --------------------------------------------------------------------------------

def load_still(source, output) -> tuple[Path, np.ndarray, str | None]:
    """(checked output path, (H, W, 3) uint8 image, source file name or None) for a source
    given as a path or as an array; the output may never be the source file."""
    from .. import media

    if isinstance(source, (str, os.PathLike)):
        return media.check_output_path(output, source), media.read_image(source), Path(source).name
    return media.check_output_path(output), np.asarray(source), None


def render_timelapse(source, output: str | os.PathLike, settings: DreamSettings | None = None, *,
                     checkpoints: Sequence[int] | None = None, every: int | None = None,
                     fps: float = DEFAULT_FPS, hold: float = DEFAULT_HOLD, fade: float = DEFAULT_FADE,
                     labels: bool = True, cell_size: int = sheet.DEFAULT_CELL_SIZE, columns: int | None = None,
                     crf: int = 18, progress: Progress | None = None, restart: bool = False,
                     work_dir: str | os.PathLike | None = None) -> Path:
    """Make a timelapse of `source` (an image path, or (H, W, 3) uint8 RGB) and write `output`.

    output: .mp4/.mov/.mkv/.m4v or .gif (snapshots held `hold` s, crossfaded over `fade` s,
    at `fps`; `labels` writes the count in a corner), an image file (.png, .jpg, ...: a
    contact sheet, pictures at most `cell_size` px, `columns` wide), or a folder (the
    snapshots as PNG: iterations_0040.png or step_0060.png). Everything is checked before
    the first step. Checkpoints wait in `work_dir` (default OUTPUT.dreamvid-work) until the
    output is written, so a second call after an interruption renders only the missing
    ones; `restart` discards those of a different timelapse there. Returns the output path.
    """
    from .. import media
    from ..dream import get_dreamer
    from ..settings import Settings
    from . import frames as work_folder

    out, image, src_name = load_still(source, output)
    s = validate(settings or DreamSettings())
    kind = media.output_kind(out)
    n = snapshot_count(s, checkpoints, every)
    video = _check_video(fps, hold, fade, n) if kind in ("video", "gif") else None
    if kind == "image" and n > MAX_SHEET_TILES:
        raise SettingsError(f"a contact sheet of {n} pictures is more than the limit of {MAX_SHEET_TILES}",
                            hint="use fewer checkpoints or a larger --every, or write a video")
    mode, counts = plan(s, checkpoints, every)
    dreamer = get_dreamer(s)  # a bad model or layer fails here, before any folder exists

    def write(store=None) -> None:
        def run(emit: Callable[[Snapshot], None]) -> None:
            timelapse(image, s, checkpoints=checkpoints, every=every, progress=progress, emit=emit,
                      dreamer=dreamer, store=store)

        _write(out, kind, run, every=every, video=video, labels=labels, crf=crf, cell_size=cell_size,
               columns=columns, src_name=src_name)

    if mode != "checkpoints":
        write()
        return out
    store = work_folder.open_work(
        out, kind="timelapse", settings={"dream": Settings(s).to_dict()["dream"], "checkpoints": list(counts)},
        source=work_folder.still_fingerprint(source, image), seed=s.seed, start=0, end=len(counts),
        fps=Fraction(1), work_dir=work_dir, restart=restart)
    with store:
        done = store.done_indices()
        if done:
            log.info("resuming: %d of %d checkpoints are already in %s", len(done), len(counts), store.path)
        try:
            write(store)
        except BaseException:
            if not store.done_indices():  # leave no empty work folder behind a timelapse that made nothing
                store.remove()
            raise
        store.remove()  # the output is written: the checkpoints are in it
    return out


def _write(out: Path, kind: str, run: Callable[[Callable[[Snapshot], None]], None], *, every, video, labels,
           crf, cell_size, columns, src_name) -> None:
    """Stream the snapshots `run(emit)` makes into the output of `kind` (see render_timelapse)."""
    from .. import media

    if kind in ("video", "gif"):
        with media.VideoWriter(out, fps=video[0], crf=crf) as writer:
            fader = Crossfader(writer.write, *video[1:])
            run(lambda snap: fader.add(sheet.label_frame(snap.image, snap.label) if labels else snap.image))
            fader.close()
        return
    if kind == "frames":
        out.mkdir(exist_ok=True)

        def save(snap: Snapshot) -> None:
            name = (f"iterations_{snap.settings.iterations:04d}.png" if every is None
                    else f"step_{snap.steps:04d}.png")
            media.write_image(out / name, snap.image)

        run(save)
        return
    snaps: list[tuple[np.ndarray, list[str]]] = []
    first: list[Snapshot] = []

    def keep(snap: Snapshot) -> None:  # only the small sheet picture is kept
        if not first:
            first.append(snap)
        snaps.append((sheet.fit(snap.image, cell_size), [snap.label, sheet.settings_text(snap.settings, TILE_KEYS)]))

    run(keep)
    h, w = first[0].image.shape[:2]
    caption = sheet.settings_text(first[0].settings, CAPTION_KEYS) + (f" · {src_name}" if src_name else "") \
        + f" · {w}x{h}" + (" · iterations per octave" if every is None else f" · a snapshot every {every} steps")
    drawn = sheet.contact_sheet([p for p, _ in snaps], [lab for _, lab in snaps], columns=columns,
                                caption=[caption], cell_size=None)
    media.write_image(out, drawn.image)


def _check_video(fps: float, hold: float, fade: float, n: int) -> tuple[Fraction, int, int]:
    """(exact fps, frames each snapshot is held, crossfade frames), or SettingsError."""
    for key, value in (("fps", fps), ("hold", hold), ("fade", fade)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SettingsError(f"{key} must be a finite number (got {value!r})", hint=None)
    if fps <= 0:
        raise SettingsError(f"fps must be > 0 (got {fps:g})", hint="frames per second of the output, e.g. --fps 25")
    if hold <= 0:
        raise SettingsError(f"hold must be > 0 seconds (got {hold:g})", hint="e.g. --hold 1")
    if fade < 0:
        raise SettingsError(f"fade must be >= 0 seconds (got {fade:g})",
                            hint="0 cuts, 0.5 crossfades for half a second")
    rate = Fraction(fps).limit_denominator(1001)
    hold_n, fade_n = max(1, round(hold * fps)), round(fade * fps)
    seconds = (n * hold_n + hold_n + (n - 1) * fade_n) / fps
    if seconds > MAX_VIDEO_SECONDS:
        raise SettingsError(f"the timelapse would last {seconds:.0f} s, more than the limit of {MAX_VIDEO_SECONDS} s",
                            hint="use a shorter --hold and --fade, or fewer snapshots")
    return rate, hold_n, fade_n


class Crossfader:
    """Turns a stream of pictures into video frames: each held `hold_n` frames, the next one
    faded in over `fade_n` frames; the last picture is held twice as long (`close`)."""

    def __init__(self, write: Callable[[np.ndarray], None], hold_n: int, fade_n: int):
        self.write, self.hold_n, self.fade_n = write, hold_n, fade_n
        self.previous: np.ndarray | None = None

    def add(self, picture: np.ndarray) -> None:
        if self.previous is not None:
            for frame in crossfade(self.previous, picture, self.fade_n):
                self.write(frame)
        for _ in range(self.hold_n):
            self.write(picture)
        self.previous = picture

    def close(self) -> None:
        if self.previous is not None:
            for _ in range(self.hold_n):
                self.write(self.previous)


def crossfade(a: np.ndarray, b: np.ndarray, n: int) -> Iterator[np.ndarray]:
    """n frames going from uint8 picture a to b (exclusive of both ends), linear in time."""
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    for k in range(1, n + 1):
        t = k / (n + 1)
        yield np.clip(np.rint(a32 + t * (b32 - a32)), 0, 255).astype(np.uint8)


def frames(pictures: Iterable[np.ndarray], hold_n: int, fade_n: int) -> list[np.ndarray]:
    """All video frames for `pictures` (what render_timelapse streams to the encoder)."""
    out: list[np.ndarray] = []
    fader = Crossfader(out.append, hold_n, fade_n)
    for p in pictures:
        fader.add(p)
    fader.close()
    return out
