"""The render engine: one skeleton under every mode (video, zoom, timelapse, sweep, image batch).

A mode describes its work as a `Plan`: a range of items (frames, snapshots, cells, photos),
the resume key they depend on, and a generator that makes items (from item i - 1 where the
mode chains). The engine owns everything around that, once:

    lock the store                        a render of the same output already running is refused at once
    plan.prepare()                        load the network: a bad model leaves no folder behind
    open/validate the store               a work folder (workdir.py) keyed by plan.resume_key()
    todo = what is missing                chained modes: from the first missing item on
    for item in plan.make(todo, ctx):     the mode's work; ctx.read(i) gives item i back from the store
        store it (writer thread)          atomic PNG; the loop does not wait for the disk
        progress(Progress(...))           one event type for every mode
    plan.finish(ctx)                      encode / draw the grid / write the sheet -> Result
    on any exception or Ctrl-C:           finished items stay on disk, an empty folder is removed

`render(plan, ..., items=range(a, b))` makes only those items and leaves the output alone
(`Result.complete` is False until every item is there): a worker renders a range; whoever
owns the work folder calls `render(plan)` again, which finds the items on disk and finishes.
`make_items(plan, indices)` runs a plan's generator with no store at all, for a process that
hands its items to someone else.

Adding a mode: subclass Plan (docs/architecture.md walks through it).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np

from ..errors import DreamvidError, OutputError
from . import workdir

log = logging.getLogger("dreamvid")

WRITE_DEPTH = 3  # finished items waiting for the PNG writer (memory: a few frames)


@dataclass(frozen=True)
class Progress:
    """What a render reports, the same for every mode.

    stage: "start" (the work is known; index: the first item to make), "step" (inside item
    `index`: a gradient step, `steps` of `total_steps` for the whole job), "item" (item
    `index` is finished), "finish" (encoding or drawing the output).
    """

    mode: str  # "video", "zoom", "timelapse", "sweep", "image"
    stage: str
    done: int  # items finished, resumed ones included
    total: int  # items in the plan
    index: int | None = None
    rendered: int = 0  # items made by this run
    elapsed: float = 0.0  # s since this run's first item started
    steps: int = 0  # gradient steps done over the whole job, where the mode counts them
    total_steps: int = 0
    restarted: bool = False  # video: this frame started the chain anew (first frame, scene cut)
    info: str = ""  # a few words for a person: "cell 3/4 (step = 0.02), octave 2/3, loss 1.20"
    failed: bool = False  # "item": this item could not be made and was skipped (info says why)
    rates: tuple[float, ...] = ()  # a render on a cluster (cluster.py): items per second of each worker

    @property
    def fps(self) -> float:
        """Items made per second by this run."""
        return self.rendered / self.elapsed if self.elapsed > 0 else 0.0


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True)
class Result:
    """What a render made, the same for every mode (fields a mode does not use keep their defaults)."""

    output: Path
    mode: str
    items: int  # items in the output: frames, snapshots, cells, photos
    rendered: int  # items made by this run (fewer after a resume)
    resumed_from: int | None  # first item this run made, when earlier ones were on disk
    seconds: float  # wall time of this run's item loop
    work_dir: Path | None = None  # the kept work folder (keep_frames), else None
    complete: bool = True  # False: a range render left items for someone else; the output is not written
    fps: Fraction | None = None  # of a clip
    size: tuple[int, int] | None = None  # (width, height) of the pictures
    start: int = 0  # video: the source frame range [start, end) of the output
    end: int = 0
    audio: bool = False  # video: the output carries the source's audio
    chain_starts: tuple[int, ...] = ()  # video: frames dreamed from the bare source (first, cuts)
    dream_seconds: float = 0.0  # of `seconds`, inside the dream core
    failed: tuple[tuple[str, DreamvidError], ...] = ()  # image batch: (photo, error) skipped

    @property
    def n_frames(self) -> int:
        return self.end - self.start if self.end else self.items


@dataclass
class Item:
    """One finished item, as a plan's generator yields it."""

    index: int
    image: np.ndarray | None  # (H, W, 3) uint8 RGB; None: the item failed (error says why)
    restarted: bool = False
    note: Mapping[str, Any] | None = None  # JSON-able facts kept in the manifest (a snapshot's label)
    error: DreamvidError | None = None  # a per-item failure the plan chose to skip (image batch)
    info: str = ""
    stored: bool = False  # already in the store (Context.store_now)


class Plan:
    """A mode's work, checked before anything runs. Subclasses set the fields and override
    `make` and `finish` (and `prepare`, `resume_key`, `source` when they need to)."""

    mode: str = "render"
    chained: bool = False  # item i is made from item i - 1: resume at the first missing item
    whole: bool = False  # one computation: a partial run cannot be continued, only redone
    start: int = 0
    end: int = 0
    fps: Fraction = Fraction(1)  # recorded in the manifest (the clip's rate, or 1)
    seed: int = 0
    output: Path
    finish_needs_prepare: bool = True  # finish() uses what prepare() loads (a cluster's driver prepares first)

    def prepare(self) -> None:
        """Load what the work needs (the network), after the plan is checked, before the store opens."""

    def resume_key(self) -> dict[str, Any]:
        """Everything the items depend on (not output-only options): the manifest's settings."""
        raise NotImplementedError

    def source(self) -> dict[str, Any] | None:
        """The source's fingerprint (workdir.fingerprint), or None."""
        return None

    def make(self, todo: list[int], ctx: Context) -> Iterator[Item]:
        """Make the items `todo` (ascending), yielding each as it is finished."""
        raise NotImplementedError

    def finish(self, ctx: Context) -> Result:
        """Every item is in ctx.store: write the output and say what was made."""
        raise NotImplementedError

    def reserve(self, *, work_dir=None) -> workdir.Reservation | None:
        """Lock the store before `prepare` loads the network (workdir.reserve), or None for a
        store without a lock. open_store(reserved=) takes the lock over."""
        return workdir.reserve(self.output, work_dir)

    def open_store(self, *, work_dir=None, restart: bool = False, reserved: workdir.Reservation | None = None):
        """The store of finished items: a work folder beside the output (workdir.py). Its resume
        key holds backend and precision "auto" as what they resolved to here (dream.auto.pin):
        resuming where auto chooses otherwise is refused, not a render of mixed backends."""
        from ..dream.auto import pin

        return workdir.open_work(self.output, kind=self.mode, settings=pin(self.resume_key()), source=self.source(),
                                 seed=self.seed, start=self.start, end=self.end, fps=self.fps,
                                 work_dir=work_dir, restart=restart, reserved=reserved)


@dataclass
class Context:
    """What the engine hands a plan while it renders."""

    plan: Plan
    store: Any  # workdir.WorkFolder (or a mode's own store with the same has/read/write/remove)
    progress: ProgressFn | None
    todo: list[int]
    keep: bool = False  # keep the work folder after finishing
    done: int = 0
    rendered: int = 0
    t0: float = field(default_factory=time.perf_counter)
    dream_seconds: float = 0.0
    steps: int = 0
    total_steps: int = 0
    failed: list = field(default_factory=list)

    @property
    def resumed_from(self) -> int | None:
        return self.todo[0] if self.todo and self.todo[0] > self.plan.start else None

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def read(self, index: int) -> np.ndarray:
        return self.store.read(index)

    def report(self, stage: str, index: int | None = None, **fields) -> None:
        if self.progress is not None:
            self.progress(Progress(self.plan.mode, stage, self.done, self.plan.end - self.plan.start, index,
                                   self.rendered, self.elapsed, self.steps, self.total_steps, **fields))

    def store_now(self, item: Item) -> Item:
        """Store `item` at once, from inside a computation that cannot yield (a dream's
        snapshot callback), so that items do not pile up in memory; yield the returned Item
        afterwards. Without a store (make_items) the item is returned as it is."""
        if isinstance(self.store, _NoStore):
            return item
        self.store.write(item.index, item.image)
        if item.note is not None:
            self.store.note(item.index, item.note)
        return Item(item.index, None, item.restarted, item.note, info=item.info, stored=True)

    def step(self, index: int, info: str = "", steps: int | None = None) -> None:
        """A plan's gradient-step report inside item `index` (sets the job's step count)."""
        self.steps = self.steps + 1 if steps is None else steps
        self.report("step", index, info=info)


def render(plan: Plan, *, progress: ProgressFn | None = None, work_dir=None, restart: bool = False,
           keep: bool = False, items: Iterable[int] | None = None) -> Result:
    """Render `plan` into its store and finish its output (see the module doc).

    items: only these indices (a range of the plan); the output is written only once every
    item is in the store. Raises whatever the plan raises, with every finished item stored.
    """
    reserved = plan.reserve(work_dir=work_dir)  # before the network loads: a render already running is refused now
    try:
        plan.prepare()
        store = plan.open_store(work_dir=work_dir, restart=restart, reserved=reserved)
    finally:
        if reserved is not None:
            reserved.release()  # nothing once the store holds the lock; else the lock, and a folder made for it
    with store:  # holds the folder's lock until the output is written or the render fails
        todo = _todo(plan, store, items)
        ctx = Context(plan, store, progress, todo, keep=keep)
        ctx.done = (plan.end - plan.start) - len(_missing(plan, store))
        if ctx.resumed_from is not None:
            log.info("resuming at %s %d: %d of %d are already in %s", _noun(plan), todo[0], ctx.done,
                     plan.end - plan.start, getattr(store, "path", "the output"))
        try:
            if todo:
                ctx.report("start", todo[0])
                _loop(plan, ctx)
        except BaseException as e:
            clean_up(plan, store, e)
            raise
        if items is not None and _missing(plan, store):
            store.close()
            return Result(plan.output, plan.mode, plan.end - plan.start, ctx.rendered, ctx.resumed_from,
                          ctx.elapsed, getattr(store, "path", None), complete=False)
        ctx.report("finish")
        return plan.finish(ctx)


def make_items(plan: Plan, indices: Iterable[int], given: Mapping[int, np.ndarray] | None = None) -> Iterator[Item]:
    """A plan's items made in memory, with no store: for a process that hands them on.

    given: {index: (H, W, 3) uint8} items the plan may read; a chained plan whose first index
    has its predecessor given continues from it, otherwise it starts a fresh chain there.
    Stops after the last index even where the plan's generator would go on (a chained plan
    runs to its end).
    """
    plan.prepare()
    ctx = Context(plan, _NoStore(given or {}), None, sorted(indices))
    if not ctx.todo:
        return
    made = plan.make(ctx.todo, ctx)
    try:
        for item in made:
            yield item
            if item.index >= ctx.todo[-1]:
                return
    finally:
        made.close()


def _todo(plan: Plan, store, items: Iterable[int] | None) -> list[int]:
    missing = _missing(plan, store)
    if plan.whole and missing:  # one computation: made again from the start
        missing = list(range(plan.start, plan.end))
    elif plan.chained and missing:
        missing = list(range(missing[0], plan.end))
    if items is None:
        return missing
    wanted = set(items)
    return [i for i in missing if i in wanted]


def _missing(plan: Plan, store) -> list[int]:
    done = set(store.done_indices())
    return [i for i in range(plan.start, plan.end) if i not in done]


def _loop(plan: Plan, ctx: Context) -> None:
    writer = _Writer(ctx.store)
    try:
        for item in plan.make(ctx.todo, ctx):
            if item.error is not None:
                ctx.failed.append((item.index, item.error))
            else:
                if not item.stored:
                    writer.put(item.index, item.image, item.note)
                ctx.rendered += 1
            ctx.done += 1
            ctx.report("item", item.index, restarted=item.restarted, info=item.info, failed=item.error is not None)
        writer.close()
    finally:
        writer.close(raise_error=False)  # on any exit, every finished item reaches the disk


def _noun(plan: Plan) -> str:
    return {"video": "frame", "zoom": "frame", "sweep": "cell", "timelapse": "snapshot"}.get(plan.mode, "item")


class StoreFailed(DreamvidError):
    """Storing a finished item failed mid-render (disk full, folder gone): a runtime failure
    whose hint `clean_up` completes with what is kept, once it knows."""


def clean_up(plan: Plan, store, error: BaseException) -> None:
    """After a render stopped by `error`: an unfinished whole computation's items are removed
    (no use to a rerun), an empty work folder too; a StoreFailed's hint then says what is kept
    (never a folder just removed, never "None")."""
    if plan.whole:
        store.remove()
    else:
        remove_if_empty(store)
    if isinstance(error, StoreFailed):
        error.hint = f"{error.hint}; {_kept(plan, store)}"


def _kept(plan: Plan, store) -> str:
    path = getattr(store, "path", None)
    if path is None:  # the still batch: each result is its own file, written as it was finished
        return ("the results written before it are kept; run the same command with --skip-existing to go on"
                if plan.end - plan.start > 1 else "nothing was written")
    try:
        n = len(store.done_indices()) if Path(path).is_dir() else 0
    except OSError:
        n = 0
    if n == 0:
        return "nothing was finished, so no work folder is kept"
    noun = _noun(plan)
    return f"the {n} finished {noun}{'s' * (n != 1)} are kept in {path}: run the same command again to resume"


def remove_if_empty(store) -> None:
    """Leave no empty work folder behind a render that failed before its first item."""
    try:
        if not store.done_indices():
            store.remove()
    except OSError:  # the folder has gone already
        pass


class _NoStore:
    """make_items' store: nothing but the items it was given."""

    def __init__(self, given: Mapping[int, np.ndarray]):
        self._given = dict(given)

    def done_indices(self) -> list[int]:
        return []

    def has(self, index: int) -> bool:
        return index in self._given

    def read(self, index: int) -> np.ndarray:
        if index not in self._given:
            raise KeyError(f"item {index} is not in memory: give make_items the item before a chained range")
        return self._given[index]

    def set_end(self, end: int) -> None:
        pass  # a source that ended early: the items made say so by being fewer


class _Writer:
    """Stores finished items as PNGs in a worker thread, in order; errors surface in `put`/`close`."""

    def __init__(self, store):
        self._store = store
        self._queue: queue.Queue = queue.Queue(maxsize=WRITE_DEPTH)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="dreamvid-writer", daemon=True)
        self._thread.start()

    def put(self, index: int, image: np.ndarray, note: Mapping[str, Any] | None = None) -> None:
        self._raise()
        self._queue.put((index, image, note))

    def close(self, raise_error: bool = True) -> None:
        """Wait until every queued item is on disk (or the writer failed)."""
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
                raise StoreFailed(e.message, hint=e.hint, detail=e.detail) from e  # clean_up adds what is kept
            raise e

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._error is None:
                index, image, note = job
                try:
                    self._store.write(index, image)
                    if note is not None:
                        self._store.note(index, note)
                except BaseException as e:  # noqa: BLE001 - handed to the main thread
                    self._error = e
