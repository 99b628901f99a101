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

Snapshots are the items of the render engine (engine.py): each goes to a work folder beside
the output (the k-th snapshot as frame k, its label kept in render.json) and the output is
written from there once all are made. Checkpoint renders add up (40 + 80 + ... + 240 = 840
iterations per octave), so a timelapse interrupted and run again takes the finished
checkpoints from the folder; a continuous run is one computation and restarts whole. The
settings are the `timelapse` section of settings.Settings.
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
from ..numeric import is_finite, literal, shown
from ..settings import MAX_SNAPSHOTS, DreamSettings, Settings, TimelapseSettings, validate_timelapse
from . import engine, sheet
from .still import load_still

log = logging.getLogger("dreamvid")

DEFAULT_CHECKPOINTS = (40, 80, 120, 160, 200, 240)  # iterations per octave: the users' hand experiment
MAX_SHEET_TILES = 100  # a contact sheet with more tiles is unreadable
MAX_VIDEO_SECONDS = 3600  # a timelapse longer than an hour is a mistake in hold/fade
# Under each tile only what varies (its label: the count); everything fixed, once, in the caption.
CAPTION_KEYS = ("model", "layers", "step", "num_octave", "octave_scale", "max_loss", "jitter", "seed")


@dataclass(frozen=True)
class Snapshot:
    """One picture of the timelapse."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    steps: int  # gradient-ascent steps run to make it, over all octaves
    label: str  # "40 iterations" (checkpoints) or "step 60 · octave 2/3" (continuous)
    settings: DreamSettings  # what made it (checkpoints: `iterations` is the checkpoint)


def check_checkpoints(checkpoints: Sequence[int]) -> tuple[int, ...]:
    """Whole numbers >= 0, strictly increasing, at most MAX_ITERATIONS; else SettingsError."""
    values = tuple(int(v) if isinstance(v, np.integer) else v for v in checkpoints)
    return validate_timelapse(TimelapseSettings(checkpoints=values)).checkpoints


def parse_checkpoints(text: str) -> tuple[int, ...]:
    """'40,80,120' -> (40, 80, 120), checked (SettingsError naming the bad item)."""
    items = [t.strip() for t in text.split(",")]
    if not any(items):
        raise SettingsError("checkpoints is empty", hint="give iteration counts, e.g. --checkpoints 40,80,120")
    values = []
    for t in items:
        value = literal(t, "checkpoints")  # bounded: no 5000-digit int()
        if not isinstance(value, int):
            raise SettingsError(f"checkpoints must be whole numbers (got {shown(t)})",
                                hint="e.g. --checkpoints 40,80,120,160,200,240")
        values.append(value)
    return check_checkpoints(values)


def timelapse(image: np.ndarray, settings: DreamSettings | None = None, *,
              checkpoints: Sequence[int] | None = None, every: int | None = None) -> list[Snapshot]:
    """Dream `image` (H, W, 3) uint8 or float 0..255 RGB and take snapshots as iterations grow,
    in memory. Give `checkpoints` (independent renders at those iterations per octave) or
    `every` (one run with settings.iterations, a snapshot every K steps over all octaves, and
    the final image); neither: DEFAULT_CHECKPOINTS. render_timelapse writes them to a file."""
    from ..settings import validate

    s = Settings(dream=validate(settings or DreamSettings()),
                 timelapse=validate_timelapse(TimelapseSettings(checkpoints=checkpoints, every=every)))
    plan = TimelapsePlan(np.asarray(image), None, s)
    made = list(engine.make_items(plan, range(plan.end)))
    return [plan.snapshot(item.image, item.note) for item in made]


def plan(s: DreamSettings, checkpoints: Sequence[int] | None, every: int | None) -> tuple[str, object]:
    """("checkpoints", counts) or ("every", K), checked before any work."""
    t = validate_timelapse(TimelapseSettings(checkpoints=None if checkpoints is None else tuple(checkpoints),
                                             every=every))
    if t.every is None:
        return "checkpoints", t.checkpoints or DEFAULT_CHECKPOINTS
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


def _checkpoint_label(count: int) -> str:
    return f"{count} iteration{'s' * (count != 1)}"


def _step_label(steps: int, p) -> str:
    return f"step {steps}" + (f" · octave {p.octave + 1}/{p.num_octave}" if p is not None else "")


def _u8(image: np.ndarray) -> np.ndarray:
    from ..dream import to_uint8

    return to_uint8(image)


# ---- the library function --------------------------------------------------------------------

def render_timelapse(source, output: str | os.PathLike, settings: Settings | None = None, *,
                     preset: str | None = None, progress: engine.ProgressFn | None = None,
                     restart: bool = False, work_dir: str | os.PathLike | None = None, workers: int | None = None,
                     ray: str | None = None, **overrides) -> engine.Result:
    """Make a timelapse of `source` (an image path, or (H, W, 3) uint8 RGB) and write `output`.

    output: .mp4/.mov/.mkv/.m4v or .gif (snapshots held `hold` s, crossfaded over `fade` s,
    at `fps`; `labels` writes the count in a corner), an image file (.png, .jpg, ...: a
    contact sheet, pictures at most `cell_size` px, `columns` wide), or a folder (the
    snapshots as PNG: iterations_0040.png or step_0060.png). settings or preset, then
    keyword overrides named as the CLI's flags: `checkpoints=[40, 80]` or `every=10` with
    `iterations=60`, `fps`, `hold`, `fade`, `labels`, `cell_size`, `columns`, `crf`, and every
    dream setting (`iterations` only goes with `every`: each checkpoint is its own count).
    Everything is checked before the first step. Snapshots wait in `work_dir` (default
    OUTPUT.dreamvid-work) until the output is written, so a second call after an interruption
    renders only the missing checkpoints; `restart` discards those of a different timelapse.
    workers, ray: render on a Ray cluster (render/cluster.py): `workers` tasks at once on a local
    cluster, or on the one at `ray` ("auto" or "HOST:PORT"); the result is the same render.
    A continuous timelapse (`every`) is one run: it renders in this process and says so.
    """
    from ..presets import resolve_for
    from . import cluster

    if overrides.get("iterations") is not None and overrides.get("every") is None \
            and (settings is None or settings.timelapse.every is None):
        raise SettingsError("--iterations does nothing with --checkpoints: each checkpoint is the iteration count",
                            hint="use --checkpoints alone, or --every K with --iterations N")
    plan_ = TimelapsePlan(source, output, resolve_for("timelapse", settings, preset, overrides))
    return cluster.render(plan_, workers=workers, ray=ray, progress=progress, work_dir=work_dir, restart=restart)


class TimelapsePlan(engine.Plan):
    """Snapshots of one dream as iterations grow: independent checkpoints, or one whole run."""

    mode = "timelapse"

    def __init__(self, source, output, settings: Settings):
        from .. import media

        if output is None:  # in memory (timelapse()): nothing read or written
            self.output, image, self.src_name, self.fingerprint = None, np.asarray(source), None, None
            self.kind = None
        else:
            self.output, image, self.src_name = load_still(source, output)
            from .workdir import still_fingerprint

            self.fingerprint = still_fingerprint(source, image)
            self.kind = media.output_kind(self.output)
        self.settings = settings
        s, t = settings.dream, settings.timelapse
        self.counting, value = plan(s, t.checkpoints, t.every)
        self.counts = value if self.counting == "checkpoints" else None
        self.every = value if self.counting == "every" else None
        self.whole = self.counting == "every"
        self.end = snapshot_count(s, t.checkpoints, t.every)
        self.video = _check_video(t.fps, t.hold, t.fade, self.end) if self.kind in ("video", "gif") else None
        if self.kind == "image" and self.end > MAX_SHEET_TILES:
            raise SettingsError(f"a contact sheet of {self.end} pictures is more than the limit of {MAX_SHEET_TILES}",
                                hint="use fewer checkpoints or a larger --every, or write a video")
        self.image = image
        self.seed = s.seed
        from .. import models

        models.check_targets(s.model, s.targets())  # no TensorFlow for a known model

    def prepare(self) -> None:
        from ..dream import fit_max_size, get_dreamer, octave_sizes

        s = self.settings.dream
        self.picture = fit_max_size(np.asarray(self.image, np.float32), s.max_size)
        # a bad model or layer fails here, before any folder exists; the size decides precision "auto"
        from ..dream import check_objective
        from ..mask import for_still

        check_objective(s, "timelapse", self.picture.shape[:2])
        self.mask = for_still(s.mask, self.picture.shape[:2]) if s.mask else None
        self.dreamer = get_dreamer(s, size=self.picture.shape[:2])
        self.shown = replace(s, layers=tuple(self.dreamer.model.layers))  # the layers dreamed, for the labels
        self.n_oct = len(octave_sizes(*self.picture.shape[:2], s.num_octave, s.octave_scale, self.dreamer.min_size))

    def resume_key(self) -> dict:
        from ..dream import input_files

        d = {**self.settings.to_dict()["dream"], **input_files(self.settings.dream)}
        return {"dream": d, "checkpoints": list(self.counts)} if self.counts else {"dream": d, "every": self.every}

    def source(self) -> dict | None:
        return self.fingerprint

    def snapshot(self, image: np.ndarray, note) -> Snapshot:
        """A finished item as a Snapshot (its label and step count from the item's note)."""
        s = self.shown if self.counts is None else replace(self.shown, iterations=note["count"])
        return Snapshot(image, note["steps"], note["label"], s)

    def make(self, todo: list[int], ctx: engine.Context) -> Iterator[engine.Item]:
        if self.counts is not None:
            yield from self._checkpoints(todo, ctx)
        else:
            yield from self._continuous(ctx)

    def _checkpoints(self, todo: list[int], ctx: engine.Context) -> Iterator[engine.Item]:
        counts, n_oct, s = self.counts, self.n_oct, self.shown
        ctx.total_steps = sum(counts) * n_oct
        stopped_at = None
        for k, count in enumerate(counts):
            if k not in todo:  # made by an earlier, interrupted run
                ctx.steps += count * n_oct
                continue
            steps = 0
            base = ctx.steps

            def on_step(p, count=count, k=k):
                nonlocal steps
                steps += 1
                ctx.step(k, f"{count} iterations ({k + 1}/{len(counts)}), "
                            f"octave {p.octave + 1}/{p.num_octave}, loss {p.loss:.2f}", base + steps)

            picture = _u8(self.dreamer.dream(self.picture, replace(s, iterations=count), progress=on_step,
                                             mask=self.mask))
            if steps < count * n_oct and stopped_at is None:
                stopped_at = count
            ctx.steps = base + count * n_oct
            yield engine.Item(k, picture, note={"count": count, "steps": steps, "label": _checkpoint_label(count)})
        if stopped_at is not None:
            log.warning("max_loss %g stopped octaves early from %d iterations on, so later checkpoints look alike; "
                        "raise --max-loss (e.g. --max-loss 1000) to let them keep growing", s.max_loss, stopped_at)

    def _continuous(self, ctx: engine.Context) -> Iterator[engine.Item]:
        """One run; snapshots come out of the dream's callback, so each is stored at once
        (ctx.store_now: they never pile up in memory) and yielded when the run is over."""
        s, every = self.shown, self.every
        ctx.total_steps = total = s.iterations * self.n_oct
        last = {"p": None, "steps": 0}
        ready: list[engine.Item] = []

        def on_step(p):
            last["p"], last["steps"] = p, last["steps"] + 1
            ctx.step(len(ready), f"octave {p.octave + 1}/{p.num_octave}, "
                                 f"iteration {p.iteration}/{p.iterations}, loss {p.loss:.2f}", last["steps"])

        def on_snapshot(steps, picture):
            if steps < total:  # the final picture is emitted below, from the run's own result
                k = steps // every - 1
                ready.append(ctx.store_now(engine.Item(k, _u8(picture), note={
                    "count": s.iterations, "steps": steps, "label": _step_label(steps, last["p"])})))

        result = self.dreamer.dream(self.picture, s, progress=on_step, snapshot_every=every, on_snapshot=on_snapshot,
                                    mask=self.mask)
        yield from ready
        if last["steps"] < total:
            log.warning("max_loss %g stopped octaves early: the run took %d of %d steps",
                        s.max_loss, last["steps"], total)
        yield engine.Item(len(ready), _u8(result), note={"count": s.iterations, "steps": last["steps"],
                                                         "label": _step_label(last["steps"], last["p"])})

    def finish(self, ctx: engine.Context) -> engine.Result:
        store = ctx.store
        done = store.done_indices()  # a continuous run stopped by max_loss made fewer than planned
        t = self.settings.timelapse

        def run(emit: Callable[[Snapshot], None]) -> None:
            for k in done:
                emit(self.snapshot(store.read(k), store.noted(k)))

        _write(self.output, self.kind, run, every=self.every, video=self.video, labels=t.labels, crf=t.crf,
               cell_size=t.cell_size, columns=t.columns, src_name=self.src_name)
        store.remove()  # the output is written: the snapshots are in it
        h, w = self.picture.shape[:2]
        return engine.Result(self.output, self.mode, len(done), ctx.rendered, ctx.resumed_from, ctx.elapsed,
                             size=(w, h), fps=self.video[0] if self.video else None)


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
        snaps.append((sheet.fit(snap.image, cell_size), [snap.label]))

    run(keep)
    h, w = first[0].image.shape[:2]
    fixed = sheet.settings_text(first[0].settings, CAPTION_KEYS)
    where = (f"{src_name} · " if src_name else "") + f"{w}x{h} · " \
        + ("iterations per octave" if every is None else f"a snapshot every {every} steps")
    drawn = sheet.contact_sheet([p for p, _ in snaps], [lab for _, lab in snaps], columns=columns,
                                caption=[fixed, where], cell_size=None)
    media.write_image(out, drawn.image)


def _check_video(fps: float, hold: float, fade: float, n: int) -> tuple[Fraction, int, int]:
    """(exact fps, frames each snapshot is held, crossfade frames), or SettingsError."""
    for key, value in (("fps", fps), ("hold", hold), ("fade", fade)):
        if not is_finite(value):  # no OverflowError for a 400-digit int
            raise SettingsError(f"{key} must be a finite number (got {shown(value)})", hint=None)
    if fps <= 0:
        raise SettingsError(f"fps must be > 0 (got {fps:g})", hint="frames per second of the output, e.g. --fps 25")
    if hold <= 0:
        raise SettingsError(f"hold must be > 0 seconds (got {hold:g})", hint="e.g. --hold 1")
    if fade < 0:
        raise SettingsError(f"fade must be >= 0 seconds (got {fade:g})",
                            hint="0 cuts, 0.5 crossfades for half a second")
    _check_length((n + 1) * hold + max(0, n - 1) * fade)  # in seconds first: 1e308 s at 25 fps is no frame count
    rate = Fraction(fps).limit_denominator(1001)
    hold_n, fade_n = max(1, round(hold * fps)), round(fade * fps)
    _check_length((n * hold_n + hold_n + (n - 1) * fade_n) / fps)
    return rate, hold_n, fade_n


def _check_length(seconds: float) -> None:
    if seconds > MAX_VIDEO_SECONDS:
        length = f"{seconds:.4g} s" if math.isfinite(seconds) else "1.8e+308 s or more"
        raise SettingsError(f"the timelapse would last {length}, more than the limit of {MAX_VIDEO_SECONDS} s",
                            hint="use a shorter --hold and --fade, or fewer snapshots")


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
