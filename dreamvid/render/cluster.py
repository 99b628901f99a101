"""Rendering on a Ray cluster: one plan's items made by several workers (GPUs) in parallel.

    render_video("clip.mp4", "dream.mp4", workers=4)     # starts a local Ray cluster, 4 workers
    render_video("clip.mp4", "dream.mp4", ray="auto")    # joins the cluster `ray start` made here
    render_sweep(..., ray="10.0.0.5:6379", workers=16)   # joins a cluster elsewhere

The driver (this process) does what engine.render does in one process: it builds and checks
the Plan, opens and locks the work folder, works out what is missing, stores every item,
reports Progress and finishes the output. Only the items are made elsewhere: Ray tasks that
receive the checked, unprepared Plan (it pickles: settings, sizes, paths) and call
`engine.make_items(plan, indices)` on a worker, which loads the network once per worker
process (dream.get_dreamer caches it). Items come back to the driver, which alone writes the
work folder: no shared filesystem, resume exactly as in one process, and a frame is never
written twice or half (the store writes atomically; each index is written once).

Every job is one Ray generator task that sends its items back one at a time, as they are
made (a video frame as its PNG, encoded on the worker: ENCODE_ON_WORKERS). Independent items
(photos, sweep cells, timelapse checkpoints) are a job each. A video is split at scene cuts
first (the chain restarts there anyway), then into one chunk per worker, and each chunk is
one job: its decoder, flows and chain stay alive from its first frame to its last, exactly
as in one process. (Chunks were once cut into tasks of 16 frames, each decoding its chain's
last 8 frames again and computing their flows before its first dream: 0.1-0.13 s a task,
6-8% of its frames' time at 160 px on 2 cores, bench/cluster.py.) A chunk that starts inside
a shot begins dreaming OVERLAP frames early, from a fresh chain; those frames are crossfaded
into the previous chunk's last ones (`fade`), so the switch from one chain to the other is
spread over OVERLAP frames instead of happening between two (README, "Clusters", has the
measurements that chose this). A resumed render continues every gap from the stored frame
before it, and fades into the stored frames after it the same way.

A worker that dies (kill -9, a lost node) loses only the item it was making: the driver
starts the rest of its job again (MAX_RETRIES times), continuing the chain from the last
temporal.RECALL_FRAMES items that came back, as a resume continues from the stored ones, so
the frames are those of an uninterrupted render. An error inside a task (a bad model,
dreamvid missing on a node) stops the render with that error, every finished item kept.
Ray is imported only here and only when a cluster is asked for (`pip install "dreamvid[ray]"`).
"""
from __future__ import annotations

import copy
import itertools
import logging
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DreamvidError, InputError, SettingsError
from . import engine

log = logging.getLogger("dreamvid")

INSTALL_HINT = 'pip install "dreamvid[ray]"'
# Items a job's task may make ahead of the driver taking them (Ray's generator backpressure):
# they wait in the object store while the driver is busy (its PNG writes); 16 x 1080p = 100 MB.
STREAM_AHEAD = 16
OVERLAP = 8  # frames a chunk dreams before its first one, crossfaded into the chunk before (measured: README)
MIN_CHUNK = 3 * OVERLAP  # frames; a run of missing frames is not split into chunks shorter than this
MAX_RETRIES = 3  # the rest of a job whose worker died is started again this many times, then the render stops
CONNECT_TIMEOUT_S = 5.0  # an unreachable --ray ADDRESS is reported after this, not after Ray's minute of retries
# The driver's scene-cut scan, a decode of the whole range before any task starts (serial
# time that grows with the frame size while the dream's share shrinks with the GPUs; bench/
# cluster.py times it), runs in this many stretches at once, each decoded by its own ffmpeg.
SCAN_THREADS = min(4, os.cpu_count() or 1)
SCAN_MIN_FRAMES = 24  # frames; a shorter stretch is not worth another decoder
WAIT_S = 0.5  # s; the driver's wait for results is cut into these so Ctrl-C is seen at once
# Video frames come back as their PNG, encoded on the worker beside the next frame's dream: the
# driver only writes the files (a 1080p PNG takes ~0.1-0.25 s of one core, its write ~0.01 s).
ENCODE_ON_WORKERS = True
ENCODE_THREADS = 2  # at most, per worker: two keep up with a GPU making a 1080p frame in 0.25 s
# PNG writer threads on the driver: one 1080p PNG takes ~0.1-0.2 s of one core (bench/cluster.py),
# so one thread stores only 5-10 frames/s, fewer than 4 GPUs make (cv2 releases the GIL).
WRITERS = min(8, os.cpu_count() or 1)
# Memory one worker takes: measured 0.85 GB (efficientnet_lite0, 128 px) and 1.1 GB (vgg16_hed,
# 384 px) for a whole dreamvid process, plus Ray's own worker (~0.2 GB) and room for larger frames.
MEMORY_PER_WORKER = 1.5e9  # bytes


# ---- the cluster ---------------------------------------------------------------------------------

@dataclass
class Pool:
    """A connected Ray cluster and how one render uses it."""

    ray: Any  # the ray module
    workers: int  # tasks run at once
    options: dict  # Ray task options: num_gpus or num_cpus, runtime_env
    started: bool  # this process started the cluster: it is shut down after the render
    remote: bool  # joined an existing cluster: its nodes may not have this machine's files
    gpus: int = 0

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()


def import_ray():
    """The ray module, or SettingsError saying what to install."""
    try:
        import ray
    except ImportError:
        raise SettingsError("--workers and --ray need Ray, which is not installed",
                            hint=f"{INSTALL_HINT} (or pip install ray)") from None
    return ray


def connect(workers: int | None = None, address: str | None = None) -> Pool:
    """Join the Ray cluster at `address` ("auto": the one `ray start` made on this machine),
    use the one this process already initialised, or start a local one for `workers`.

    workers: tasks at once (default: one per GPU of the cluster, else one per node). With
    GPUs every task takes one (Ray sets CUDA_VISIBLE_DEVICES); on CPUs the cores are split
    between the workers and TensorFlow and OpenCV are told how many threads they have, so
    that N workers do not fight over the cores.
    """
    _check_workers(workers)
    ray = import_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")  # no C++ retry warnings on stderr: failures are one line
    started = remote = False
    if address:
        _check_reachable(address)
    if not ray.is_initialized():
        if address:
            _join(ray, address)
            remote = True
        else:
            # address="local": a new cluster of our own, even where `ray start` left one running
            _init(ray, address="local", num_cpus=os.cpu_count() or 1, runtime_env={"env_vars": _worker_env()})
            started = True
    res = ray.cluster_resources()
    gpus, cpus = int(res.get("GPU", 0)), float(res.get("CPU", 1))
    nodes = max(1, len([n for n in ray.nodes() if n.get("Alive")]))
    n, note = cap_workers(workers or (gpus or nodes), gpus, cpus, float(res.get("memory", 0)) or _memory_bytes())
    if note and workers:
        log.warning("%s", note)
    share = max(cpus / n, 0.01)  # the cores each worker gets: its decoding and flow run there, even beside a GPU
    threads = str(max(1, int(share)))
    # max_retries 0: Ray would make a generator task's items again from its first; the driver
    # instead continues the job from the last item that came back (_Stream.rest)
    options: dict[str, Any] = {"max_retries": 0, "retry_exceptions": False, "num_cpus": share,
                               "runtime_env": {"env_vars": {
                                   "OMP_NUM_THREADS": threads, "TF_NUM_INTRAOP_THREADS": threads,
                                   "TF_NUM_INTEROP_THREADS": threads, "DREAMVID_THREADS": threads}}}
    if gpus:
        options["num_gpus"] = 1  # n <= gpus (cap_workers): every task has its own
    log.info("Ray: %d worker%s on %s (%s)", n, "s" * (n != 1), "a local cluster" if started else "the cluster",
             f"{gpus} GPUs, one each" if gpus else f"{cpus:g} CPUs, {cpus / n:.3g} each")
    return Pool(ray, n, options, started, remote, gpus)


def cap_workers(asked: int, gpus: int, cpus: float, memory: float) -> tuple[int, str | None]:
    """(tasks at once, a one-line note if fewer than `asked`): at most one per GPU, or one per
    core without GPUs, and as many as `memory` (bytes the cluster gives tasks) holds at
    MEMORY_PER_WORKER each. --workers 10000 on 2 cores once started 200 workers (6 GB for 8 cells)."""
    limits = [(gpus, f"{gpus} GPU{'s' * (gpus != 1)}") if gpus else
              (max(1, int(cpus)), f"{cpus:g} core{'s' * (cpus != 1)}")]
    if memory > 0:
        limits.append((max(1, int(memory // MEMORY_PER_WORKER)),
                       f"{memory / 1e9:.1f} GB of memory at {MEMORY_PER_WORKER / 1e9:g} GB a worker"))
    n = min(asked, *(limit for limit, _ in limits))
    if n >= asked:
        return asked, None
    why = " and ".join(words for limit, words in limits if limit == n)
    return n, f"--workers {asked}: {n} at a time ({why})"


def _memory_bytes() -> float:
    """This machine's memory, for a cluster that does not say (0 where it cannot be read)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0.0


def _check_workers(workers) -> None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SettingsError(f"--workers must be a whole number >= 1 (got {workers!r})",
                            hint="e.g. --workers 4: one per GPU, or a few on a many-core CPU")


def _init(ray, **kw) -> None:
    """ray.init with what Ray's C++ core prints on the way (retries, token notices) kept out of
    the terminal; on failure it is added to the exception (`ray_stderr`) for --debug."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log_file:
        os.dup2(log_file.fileno(), 2)
        try:
            ray.init(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                     configure_logging=True, **kw)
        except BaseException as e:
            os.dup2(saved, 2)
            log_file.seek(0)
            e.ray_stderr = log_file.read().decode(errors="replace")[-4000:]
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _join(ray, address: str) -> None:
    """ray.init(address=...), its failure as one InputError line (Ray's own words in `detail`)."""
    try:
        _init(ray, address=address)
    except Exception as e:  # noqa: BLE001 - ConnectionError, RuntimeError, RayError: all mean "not joined"
        chain, x = [], e
        while x is not None and len(chain) < 8:
            chain.append(x)
            x = x.__cause__ or x.__context__
        text = "\n".join(f"{type(c).__name__}: {c}" for c in chain) + "\n" + getattr(e, "ray_stderr", "")
        hint = ("start one with `ray start --head` (then --ray auto on that machine, --ray HOST:6379 "
                "elsewhere), or leave out --ray to start a local one with --workers N")
        if "InvalidAuthToken" in text or "AuthenticationError" in text:
            why = "the cluster wants its authentication token"
            hint = "give this machine the head's token (`ray get-auth-token` there; RAY_AUTH_TOKEN or ~/.ray/auth_token)"
        else:
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"cannot join the Ray cluster at {address}: {why}", hint=hint, detail=text) from None


def _worker_env() -> dict[str, str]:
    """The environment of a local cluster's workers: this process's dreamvid first on the path
    (a worktree or checkout, not another copy installed in the environment), no TF chatter."""
    here = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3", "RAY_USAGE_STATS_ENABLED": "0"}


def _check_reachable(address: str) -> None:
    """InputError at once for a HOST:PORT nothing listens on (Ray itself retries for minutes)."""
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    hint = ("start one there with `ray start --head --port PORT` (then --ray HOST:PORT), "
            "or leave out --ray to start a local one with --workers N")
    if not host or not port.isdigit():
        raise SettingsError(f"--ray {address!r} is not HOST:PORT or auto", hint=hint)
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise InputError(f"no Ray cluster answers at {address} ({e.strerror or e})", hint=hint) from None


# ---- the library entry -----------------------------------------------------------------------------

def render(plan: engine.Plan, *, workers: int | None = None, ray: str | None = None, progress=None,
           work_dir=None, restart: bool = False, keep: bool = False, overlap: int | None = None, fade: bool = True,
           min_chunk: int | None = None, chunks: int | None = None) -> engine.Result:
    """engine.render(plan, ...) on a Ray cluster when `workers` or `ray` is given, else in this process.

    ray: "auto" or "HOST:PORT" of a running cluster; workers: tasks at once (connect()).
    overlap, fade, min_chunk, chunks (at least this many video chunks): the video split,
    for measuring it; the defaults (OVERLAP, MIN_CHUNK, one chunk per worker) are the measured choice.
    """
    kw = dict(progress=progress, work_dir=work_dir, restart=restart, keep=keep)
    if workers is None and ray is None:
        return engine.render(plan, **kw)
    _check_workers(workers)
    sequential = _sequential_reason(plan)
    if sequential:
        log.warning("%s; --workers/--ray ignored, rendering in this process", sequential)
        return engine.render(plan, **kw)
    pool = connect(workers, ray)
    try:
        split = _Split(OVERLAP if overlap is None else overlap, fade, MIN_CHUNK if min_chunk is None else min_chunk,
                       chunks or pool.workers)
        return _drive(plan, pool, split, **kw)
    finally:
        pool.close()


def _sequential_reason(plan: engine.Plan) -> str | None:
    from .video import VideoPlan

    if plan.whole:
        return f"a {plan.mode} sampled from one run (--every) cannot be split across workers"
    if plan.chained and not isinstance(plan, VideoPlan):
        return f"{plan.mode} frames are each made from the one before, so they render one after another"
    return None


@dataclass(frozen=True)
class _Split:
    overlap: int
    fade: bool
    min_chunk: int
    chunks: int


# ---- the driver ------------------------------------------------------------------------------------

def _drive(plan: engine.Plan, pool: Pool, split: _Split, *, progress, work_dir, restart, keep) -> engine.Result:
    store = plan.open_store(work_dir=work_dir, restart=restart)
    with store:
        missing = engine._missing(plan, store)
        ctx = engine.Context(plan, store, progress, missing, keep=keep)
        ctx.done = (plan.end - plan.start) - len(missing)
        if ctx.resumed_from is not None:
            log.info("resuming: %d of %d are already in %s", ctx.done, plan.end - plan.start,
                     getattr(store, "path", "the output"))
        try:
            if missing:
                ctx.report("start", missing[0])
                _Run(plan, pool, ctx, split).run()
        except BaseException as e:
            engine.clean_up(plan, store, e)
            raise
        if plan.finish_needs_prepare:  # the grid's captions, the snapshots' labels: from the loaded network
            plan.prepare()
        ctx.report("finish")
        return plan.finish(ctx)


@dataclass(frozen=True)
class Job:
    """One Ray task: dream [start, end), keep [first, end); [start, first) are overlap frames
    that fade into frame `first` from the chunk before (a fresh chain started at `start`)."""

    start: int
    first: int
    end: int


@dataclass
class _Made:
    """What a task sends back, one at a time: an item, then a last one without (the job's end)."""

    item: engine.Item | None  # None: the job is done (fewer items than asked: the source ended)
    worker: str  # "node:pid"
    seconds: float  # making this item
    truncated: DreamvidError | None = None  # video: the source stopped decoding inside the job
    png: bytes | None = None  # the frame as the store's PNG (ENCODE_ON_WORKERS); item.image is None then

    def image(self) -> np.ndarray | None:
        """The item's picture, (H, W, 3) uint8 RGB (decoded from png where it came so)."""
        return self.item.image if self.png is None else _decode_png(self.png)


@dataclass
class _Stream:
    """A job and how far it has come back: what a task started again for its rest needs."""

    job: Job
    given: dict | None  # {index: image} the job's first item continues from (stored frames), or None
    next: int = -1  # the first index not back yet
    tail: dict = field(default_factory=dict)  # the job's last `history` items back, {index: image}
    deaths: int = 0  # workers lost making it
    history: int = 8  # items a restart continues from (plan.history: temporal.RECALL_FRAMES, or the cadence)

    def __post_init__(self):
        if self.next < 0:
            self.next = self.job.start

    def took(self, item: engine.Item, png: bytes | None = None) -> None:
        """Item `item` came back (png: its picture, when it came encoded)."""
        self.next = item.index + 1
        if item.image is not None or png is not None:
            self.tail[item.index] = item.image if png is None else png
            self.tail.pop(item.index - self.history, None)

    def rest(self) -> tuple[Job, dict | None]:
        """The job of the items not back yet, and what it continues from: the chain's last items
        that came back (as a resume continues from the stored ones), else what the job was given."""
        job = self.job
        if self.next == job.start:
            return job, self.given
        given = {i: _rgb(_decode_png(x) if isinstance(x, bytes) else x) for i, x in self.tail.items()}
        return Job(self.next, max(job.first, self.next), job.end), given


@dataclass
class _Fade:
    """The crossfade into boundary frame `first`: frames [start, first) of two chains."""

    start: int
    first: int
    a: dict = field(default_factory=dict)  # the earlier chunk's own frames
    b: dict = field(default_factory=dict)  # the later chunk's overlap frames

    def alpha(self, t: int) -> float:
        return (t - self.start + 1) / (self.first - self.start + 1)


class _WorkerDied(Exception):
    """A task's worker or node went away (the driver starts the rest of its job again)."""


class _Run:
    """Submit the jobs of one render, take their items as they come back, store them."""

    def __init__(self, plan: engine.Plan, pool: Pool, ctx: engine.Context, split: _Split):
        self.plan, self.pool, self.ctx, self.split = plan, pool, ctx, split
        self.missing = set(ctx.todo)
        self.fades: dict[int, _Fade] = {}  # boundary frame -> its fade
        self.zone: dict[int, _Fade] = {}  # frame -> the fade it is part of
        self.rates: dict[str, list[float]] = {}  # worker -> [items, seconds]
        self.ends: list[tuple[int, DreamvidError | None]] = []  # video: where the source ended early

    def run(self) -> None:
        from .video import VideoPlan

        ray, store = self.pool.ray, self.ctx.store
        video = isinstance(self.plan, VideoPlan)
        jobs = _video_chunks(self.plan, store, self.ctx.todo, self.split) if video \
            else [Job(k, k, k + 1) for k in self.ctx.todo]
        for job in jobs:
            if job.start < job.first and self.split.fade:
                fade = self.fades[job.first] = _Fade(job.start, job.first)
                for t in range(job.start, job.first):
                    if t in self.missing:
                        self.zone[t] = fade
        self.task = ray.remote(_make).options(**self.pool.options, _generator_backpressure_num_objects=STREAM_AHEAD)
        self.args = (ray.put(_pinned(_without_callbacks(self.plan))),
                     [ray.put(Path(self.plan.info.path).read_bytes())] if self.pool.remote and video else None,
                     _version())
        pending = {}
        for job in jobs:  # longest first (_video_chunks); Ray starts as many as there are workers
            stream = _Stream(job, _stored_before(self.plan, store, job) if video else None,
                             history=getattr(self.plan, "history", 8))
            pending[self._submit(stream)] = stream
        self._collect(pending)

    def _submit(self, stream: _Stream):
        job, given = stream.rest()
        plan_ref, source, version = self.args
        return self.task.remote(plan_ref, job, given, source, version)

    def _collect(self, pending: dict) -> None:
        ray = self.pool.ray
        writer = _Writers(self.ctx.store, WRITERS)
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
                for gen in ready:
                    stream = pending[gen]
                    try:
                        made = _result(ray, next(gen, None), stream)
                    except _WorkerDied as e:
                        del pending[gen]
                        stream.deaths += 1
                        if stream.deaths > MAX_RETRIES:
                            raise DreamvidError(f"Ray workers died {stream.deaths} times making {_what(stream.job)}",
                                                hint="every finished item is kept; run the same command again to "
                                                     "resume", detail=str(e)) from None
                        log.info("a Ray worker died making %s; starting the rest again", _what(stream.job))
                        pending[self._submit(stream)] = stream
                        continue
                    if made.item is None:
                        del pending[gen]
                        self._ended(stream, made.truncated)
                    else:
                        self._take(made, stream, writer)
            self._finish_video(writer)
            writer.close()
        except BaseException:
            for gen in pending:  # stop the work nobody will store
                try:
                    ray.cancel(gen, force=True)
                except Exception as e:  # noqa: BLE001 - a task that finished meanwhile cannot be cancelled
                    log.debug("cancel: %s", e)
            raise
        finally:
            writer.close(raise_error=False)

    def _ended(self, stream: _Stream, truncated: DreamvidError | None) -> None:
        job = stream.job
        if truncated is not None or stream.next < job.end:
            self.ends.append((max(stream.next, job.first), truncated))

    def _take(self, made: _Made, stream: _Stream, writer) -> None:
        item, first = made.item, stream.job.first
        stream.took(item, made.png)
        n, s = self.rates.setdefault(made.worker, [0, 0.0])
        self.rates[made.worker] = [n + (item.index >= first), s + made.seconds]
        if item.index < first:  # an overlap frame of the later chain
            fade = self.fades.get(first)
            if fade is not None and item.index in self.zone:
                fade.b[item.index] = made.image()
                self._blend(item.index, writer)
            return
        if item.index not in self.missing:
            return  # already stored (never written twice)
        if item.index in self.zone:  # blended on the driver: its own picture
            self.zone[item.index].a[item.index] = replace(item, image=made.image())
            self._blend(item.index, writer)
            return
        self._store(item, writer, made.png)

    def _blend(self, t: int, writer) -> None:
        fade = self.zone[t]
        if t in fade.a and t in fade.b:
            item, b = fade.a.pop(t), fade.b.pop(t)
            w = fade.alpha(t)
            mixed = np.clip(np.rint((1 - w) * item.image.astype(np.float32) + w * b.astype(np.float32)), 0, 255)
            self._store(replace(item, image=mixed.astype(np.uint8)), writer)

    def _store(self, item: engine.Item, writer, png: bytes | None = None) -> None:
        ctx = self.ctx
        self.missing.discard(item.index)
        if item.error is not None:
            ctx.failed.append((item.index, item.error))
        else:
            writer.put(item.index, item.image if png is None else png, item.note)
            ctx.rendered += 1
            if item.restarted and hasattr(self.plan, "chain_starts"):
                self.plan.chain_starts.append(item.index)
        ctx.done += 1
        rates = tuple(n / s for n, s in self.rates.values() if s > 0)
        ctx.report("item", item.index, restarted=item.restarted, info=item.info, failed=item.error is not None,
                   rates=rates)

    def _finish_video(self, writer) -> None:
        """Frames of a fade whose other chain never came (its source ended) are stored as they are;
        a source that ended early (a truncated file) ends the range where the frames did."""
        plan = self.plan
        for t, fade in sorted(self.zone.items()):
            if t in fade.a:
                self._store(fade.a.pop(t), writer)
        if hasattr(plan, "chain_starts"):
            plan.chain_starts.sort()
        if not self.ends:
            if self.missing:
                raise DreamvidError(f"{len(self.missing)} items came back from no worker (first "
                                    f"{min(self.missing)})", hint="run the same command again to make them")
            return
        end, error = min(self.ends, key=lambda e: e[0])
        plan.last_index = end - 1
        if error is not None:
            plan.truncated = error
        else:
            log.warning("%s ended after frame %d, earlier than its %d frames", plan.info.path.name, end - 1,
                        plan.info.n_frames)
            self.ctx.store.set_end(end)


class _Writers:
    """engine._Writer, several at once: item k goes to writer k % n; items with a note (which
    rewrite the manifest) all go to the first, so the manifest has one writer."""

    def __init__(self, store, n: int):
        self._writers = [engine._Writer(store) for _ in range(max(1, n))]

    def put(self, index: int, image: np.ndarray | bytes, note=None) -> None:
        self._writers[0 if note is not None else index % len(self._writers)].put(index, image, note)

    def close(self, raise_error: bool = True) -> None:
        for w in self._writers:
            w.close(raise_error=False)
        if raise_error:
            for w in self._writers:
                w.close()


def _without_callbacks(plan: engine.Plan) -> engine.Plan:
    """The plan as the workers get it: a preview callback (the still batch's on_octave, the
    web studio's) stays with the driver, whose process it belongs to."""
    if getattr(plan, "on_octave", None) is None:
        return plan
    log.info("previews after each octave are not sent back from workers")
    payload = copy.copy(plan)
    payload.on_octave = None
    return payload


def _pinned(plan: engine.Plan) -> engine.Plan:
    """The plan as the workers get it: every dream setting's backend and precision "auto"
    replaced by what this process resolved them to (dream.auto.resolve, memoised: the work
    folder's key already holds it, auto.pin). A worker left to resolve "auto" itself chose for
    its own machine and its own first picture (one under 224 px is not timed), so a render on
    two workers could dream on another backend than one process, or than the key says."""
    from ..dream import auto
    from ..settings import DreamSettings, Settings

    def pin(v):
        if isinstance(v, DreamSettings):
            return auto.resolve(v) if "auto" in (v.backend, v.precision) else v
        if isinstance(v, Settings):
            return replace(v, dream=pin(v.dream))
        if isinstance(v, list):
            return [pin(x) for x in v]
        return v

    payload = copy.copy(plan)
    for name, value in vars(plan).items():
        setattr(payload, name, pin(value))
    return payload


def _stored_before(plan, store, job: Job) -> dict | None:
    """The stored frames a chunk's first job continues from ({index: image}: the frame before
    it and up to temporal.RECALL_FRAMES back, as a resume in one process reads them), or None
    where the chain starts afresh."""
    from ..temporal import RECALL_FRAMES

    if not (job.start == job.first and job.first > plan.start and store.has(job.first - 1)):
        return None
    back = getattr(plan, "history", RECALL_FRAMES)  # a --cadence group's keyframe may lie further back
    return {i: store.read(i) for i in range(max(plan.start, job.first - back), job.first) if store.has(i)}


def _what(job: Job) -> str:
    return f"items {job.first}..{job.end - 1}" if job.end > job.first else f"the overlap before {job.first}"


def _result(ray, ref, stream: _Stream) -> _Made:
    """A task's next result (ref: from its generator, None: it ended without saying so); its
    failure as one DreamvidError (the worker's own error where it has one), or _WorkerDied."""
    what = _what(stream.job)
    hint = "every finished item is kept; run the same command again to resume"
    if ref is None:
        raise _WorkerDied(f"the task for {what} stopped before its end")
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, DreamvidError):  # the worker's own words: a bad model, a bad frame
            raise cause from None
        text = str(cause if cause is not None else e)
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        imports = [line for line in lines if line.startswith(("ImportError:", "ModuleNotFoundError:"))]
        if imports or isinstance(cause, ImportError):
            why = imports[-1] if imports else f"{type(cause).__name__}: {cause}"
            raise DreamvidError(f"a Ray worker cannot import dreamvid ({why})",
                                hint=f"install the same dreamvid ({_version()}) on every node; {hint}",
                                detail=text) from None
        line = lines[0] if lines else type(e).__name__
        raise DreamvidError(f"a Ray worker failed making {what}: {type(cause or e).__name__}: {line}", hint=hint,
                            detail=text) from None
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError) as e:
        raise _WorkerDied(str(e)) from None
    except ray.exceptions.RayError as e:
        line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DreamvidError(f"the Ray cluster failed making {what}: {line}", hint=hint, detail=str(e)) from None


# ---- the video split ------------------------------------------------------------------------------

def _video_chunks(plan, store, todo: list[int], split: _Split) -> list[Job]:
    """The missing frames as jobs, one per chain: runs split at scene cuts, long runs into
    chunks (each starting `overlap` frames early), and the overlap of a stored frame that
    follows a gap. Longest first."""
    v = plan.settings.video
    independent = v.flow == "none"  # every frame from its own source: no chain to keep
    overlap = 0 if independent else split.overlap
    cuts = set() if independent or not v.scene_cuts else _scene_cuts(plan, todo)
    runs = _runs(todo, cuts)
    total = sum(b - a for a, b in runs)
    chains: list[Job] = []
    for a, b in runs:
        k = max(1, min(round(split.chunks * (b - a) / total), (b - a) // max(split.min_chunk, 1)))
        bounds = [a + (b - a) * i // k for i in range(k + 1)]
        for i, (s, e) in enumerate(zip(bounds, bounds[1:])):
            warm = min(overlap, s - a) if i else 0
            chains.append(Job(s - warm, s, e))
        after = b  # the stored frame after the gap came from a chain started `overlap` frames before it
        if overlap and split.fade and after < plan.end and after not in cuts and store.has(after) \
                and not store.has(after - 1):
            shot = max([c for c in cuts if c <= after - 1] + [plan.start])
            chains.append(Job(max(after - overlap, shot), after, after))
    chains.sort(key=lambda c: c.start - c.end)  # longest first
    return chains


def _runs(todo: list[int], cuts: set[int]) -> list[tuple[int, int]]:
    """Maximal runs [a, b) of consecutive frames in `todo`, a scene cut starting a new run."""
    runs: list[list[int]] = []
    for i in todo:
        if runs and runs[-1][1] == i and i not in cuts:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return [(a, b) for a, b in runs]


def _scene_cuts(plan, todo: list[int]) -> set[int]:
    """Frames that start a new shot by the histogram test the chain itself applies
    (flow.is_scene_cut without motion): the split never puts a seam where a cut restarts anyway.
    The driver decodes the range before any task starts, in SCAN_THREADS stretches at once."""
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.perf_counter()
    first, last = max(plan.start, todo[0] - 1), min(plan.end, todo[-1] + 2)
    n = max(1, min(SCAN_THREADS, (last - first) // SCAN_MIN_FRAMES))
    bounds = [first + (last - first) * i // n for i in range(n + 1)]
    stretches = [(a, min(b + 1, last)) for a, b in itertools.pairwise(bounds)]  # each pair of frames in one
    with ThreadPoolExecutor(n, thread_name_prefix="dreamvid-cuts") as pool:
        cuts = set().union(*pool.map(lambda s: _cuts_in(plan, *s), stretches))
    log.debug("scene cuts at %s (%.1f s to find)", sorted(cuts) or "no frame", time.perf_counter() - t0)
    return cuts


def _cuts_in(plan, start: int, end: int) -> set[int]:
    from .. import media
    from ..flow import is_scene_cut

    cuts, prev = set(), None
    reader = media.read_frames(plan.info.path, start=start, end=end, max_size=plan.settings.dream.max_size,
                               info=plan.info)
    try:
        for index, frame in reader:
            if prev is not None and is_scene_cut(prev, frame):
                cuts.add(index)
            prev = frame
    except DreamvidError as e:  # a truncated source: the workers meet it and say so
        log.debug("scene cuts: %s", e)
    finally:
        reader.close()
    return cuts


# ---- the worker's side --------------------------------------------------------------------------------

def _version() -> str:
    from .. import __version__

    return __version__


def _make(plan: engine.Plan, job: Job, given, source, version: str):
    """A Ray generator task: the items of `job`, each sent back as a _Made when it is finished,
    then a _Made without an item (the end: whether the source ended early). given: None (a
    fresh chain) or {index: image}, the chain's items before job.start to continue from;
    source: [ObjectRef of the clip's bytes] for a node that may not have the file."""
    import cv2

    from .. import __version__

    if __version__ != version:
        raise DreamvidError(f"this Ray node has dreamvid {__version__}, the driver {version}",
                            hint="install the same dreamvid on every node")
    cv2.setNumThreads(int(os.environ.get("DREAMVID_THREADS", "0")))
    if source is not None:
        _use_local_copy(plan, source)
    from .video import VideoPlan

    worker = f"{socket.gethostname()}:{os.getpid()}"
    items = engine.make_items(plan, range(job.start, job.end), given=given)
    if ENCODE_ON_WORKERS and isinstance(plan, VideoPlan):  # the store is a WorkFolder of PNGs
        yield from _encoded(items, worker)
    else:
        t0 = time.perf_counter()
        for item in items:
            t1 = time.perf_counter()
            yield _Made(item, worker, t1 - t0)
            t0 = t1
    yield _Made(None, worker, 0.0, getattr(plan, "truncated", None))


def _encoded(items, worker: str):
    """_Made of each item with its PNG, encoded in a thread while the next item is made (cv2
    releases the GIL), in order; an item is sent once its PNG is ready."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    waiting: deque = deque()  # (item, seconds, future PNG)
    threads = min(ENCODE_THREADS, max(1, int(os.environ.get("DREAMVID_THREADS", "1"))))  # the worker's cores
    with ThreadPoolExecutor(threads, thread_name_prefix="dreamvid-png") as pool:
        t0 = time.perf_counter()
        for item in items:
            t1 = time.perf_counter()
            waiting.append((item, t1 - t0, pool.submit(_encode, item.image)))
            t0 = t1
            while waiting and waiting[0][2].done():
                yield _sent(*waiting.popleft(), worker)
        while waiting:
            yield _sent(*waiting.popleft(), worker)


def _sent(item: engine.Item, seconds: float, png, worker: str) -> _Made:
    return _Made(replace(item, image=None), worker, seconds, png=png.result())


def _encode(image: np.ndarray) -> bytes:
    """The store's PNG of an item: (H, W, 3) RGB, or (H, W, 4) with a masked video's mask as alpha."""
    from ..media.images import encode_image

    if image.ndim == 3 and image.shape[2] == 4:
        return encode_image(image[..., :3], alpha=np.ascontiguousarray(image[..., 3]))
    return encode_image(image)


def _rgb(image: np.ndarray) -> np.ndarray:
    """A stored frame as the chain reads it: without a masked video's mask."""
    return image[..., :3] if image.ndim == 3 and image.shape[2] == 4 else image


def _decode_png(data: bytes) -> np.ndarray:
    """_encode's PNG -> (H, W, 3) uint8 RGB, or (H, W, 4) RGB and mask."""
    import cv2

    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(raw, cv2.COLOR_BGRA2RGBA if raw.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def _use_local_copy(plan, source) -> None:
    """Point a video plan at a copy of its clip on this node when the driver's path is not here."""
    import ray

    path = Path(plan.info.path)
    if path.is_file():
        return
    data = ray.get(source[0])
    local = Path(tempfile.gettempdir()) / "dreamvid-sources" / f"{len(data)}-{path.name}"
    if not local.is_file():
        local.parent.mkdir(exist_ok=True)
        tmp = local.with_name(f"{local.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, local)
    plan.info = replace(plan.info, path=local)
