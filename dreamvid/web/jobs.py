"""Jobs on disk and the queue that runs them, one at a time (one device, one job).

    DATA/token                         the access token of a non-loopback server (server.py)
    DATA/uploads/<token>/NAME          an upload until a job takes a copy (cleared at start-up)
    DATA/jobs/<id>/job.json            the job: request, status, the equivalent CLI command
    DATA/jobs/<id>/settings.toml       the resolved settings, a preset file (presets.to_toml)
    DATA/jobs/<id>/preset.toml         the preset text the request gave, if it gave one
    DATA/jobs/<id>/input/NAME          the job's own copy of the upload
    DATA/jobs/<id>/output/NAME.TAG.EXT the result, and NAME.TAG.EXT.dreamvid-work/ while it renders
    DATA/jobs/<id>/preview.jpg         a still's picture after each octave
    DATA/jobs/<id>/before.jpg, poster.jpg   the pictures the page shows beside the result (pictures.py)

A job is the render the CLI would run (`JobSpec.command`), through the same library
function, with a progress callback that feeds the page and raises `Cancelled` when asked to
stop: the engine keeps every finished item, as after Ctrl-C, and running the job again
resumes from its work folder. A server stopped mid-job leaves it `queued` in job.json, and
the next start runs it again, which resumes; a Cancel is written to job.json at once, so a
server that dies before the render stops does not run it again. Ids and upload tokens are
random and server-made; every job records the hash of its owner's client key, and a job of
another owner is as absent as one that never existed. Clients take turns (fairqueue.py),
each with a limit on its waiting jobs and on the bytes of its uploads.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import DownloadError, DreamvidError, EncoderError, OutputError, SettingsError
from . import pictures
from .fairqueue import FairQueue
from .options import MODES, JobSpec, parse_request
from .uploads import (DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_MB, Sink, Upload, UploadRefused, check_token,
                      check_upload, inside, new_token)

log = logging.getLogger("dreamvid")

ACTIVE = ("queued", "running")  # a job in one of these at start-up is run (resumed) again
FILES = ("input", "output", "preview", "before", "poster")  # what may be fetched of a job
DEFAULT_MAX_QUEUED = 10  # jobs a client may have waiting or running: a morning's work, not a flood
DEFAULT_CLIENT_UPLOADS_MB = 1000  # MB of uploads kept per client; older ones make room for a new one
MAX_KEY = 64  # characters of an idempotency key (the page sends 22)
REMOVED_KEPT = 1000  # deletions remembered for the gallery's changes; older ones: the client reloads


class Cancelled(KeyboardInterrupt):
    """Raised from a job's progress callback to stop it: the engine treats it as Ctrl-C
    (finished items stay in the work folder, an empty one is removed)."""


def owner_key(client: str) -> str:
    """What a job records of its owner: a hash of the client's key, never the key."""
    return hashlib.sha256(client.encode()).hexdigest()


@dataclass
class Job:
    id: str
    owner: str
    spec: JobSpec
    source: str  # relative to the job folder
    output: str
    command: str  # relative to the job folder: what the page shows and job.json keeps
    settings_toml: str
    status: str = "queued"  # queued | running | done | failed | cancelled
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    hint: str | None = None
    param: str | None = None  # the parameter a failure concerns (the page marks its field)
    resumable: bool = True  # False: the failure is in the request itself; running it again cannot help
    runs: int = 0
    result: dict[str, Any] | None = None
    key: str | None = None  # the request's idempotency key: the same key finds this job
    cancel_requested: bool = False  # a Cancel that the render has not reached yet (kept across a crash)
    live: dict[str, Any] = field(default_factory=dict)  # progress of the current run, not saved
    cancel: threading.Event = field(default_factory=threading.Event)
    version: int = 0  # Studio.version when it last changed (the gallery's changes)
    deleting: bool = False

    SAVED = ("id", "owner", "source", "output", "command", "status", "created", "started", "finished", "error",
             "hint", "param", "resumable", "runs", "result", "key", "cancel_requested")

    def record(self) -> dict[str, Any]:
        """What job.json holds."""
        d = {k: getattr(self, k) for k in self.SAVED}
        s = self.spec
        d["spec"] = {"mode": s.mode, "preset": s.preset, "toml": s.toml is not None, "overrides": s.overrides,
                     "keywords": s.keywords, "format": s.format, "request": s.request}
        return d

    @classmethod
    def from_record(cls, d: Mapping[str, Any], folder: Path) -> Job:
        s = dict(d["spec"])
        s["toml"] = (folder / "preset.toml").read_text(encoding="utf-8") if s["toml"] else None
        settings_toml = (folder / "settings.toml").read_text(encoding="utf-8")
        return cls(spec=JobSpec(**s), settings_toml=settings_toml, **{k: d[k] for k in cls.SAVED if k in d})

    def public(self, scrub) -> dict[str, Any]:
        """What the page sees of the job; scrub(text) takes server paths out."""
        d = {k: getattr(self, k) for k in self.SAVED if k not in ("owner", "key", "cancel_requested")}
        d.update(mode=self.spec.mode, request=self.spec.request, settings_toml=scrub(self.settings_toml),
                 command=scrub(self.command), error=scrub(self.error), hint=scrub(self.hint),
                 source=Path(self.source).name, output=Path(self.output).name, progress=dict(self.live),
                 version=self.version, clip=self.spec.mode in ("video", "zoom") or
                 Path(self.output).suffix in (".mp4", ".gif"))
        return d


class Studio:
    """The jobs of one data folder and the worker thread that runs them in order."""

    def __init__(self, data: Path, models: Mapping[str, str] | None = None, *,
                 max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, max_pixels: int = DEFAULT_MAX_PIXELS,
                 max_queued: int = DEFAULT_MAX_QUEUED, client_uploads_mb: float = DEFAULT_CLIENT_UPLOADS_MB):
        from .. import models as registry

        self.data = Path(data).expanduser().resolve()
        self.jobs_dir, self.uploads_dir = self.data / "jobs", self.data / "uploads"
        shutil.rmtree(self.uploads_dir, ignore_errors=True)  # an upload outlives no server
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.uploads_dir.mkdir(parents=True)
        self.models = {name: name for name in registry.MODELS} | dict(models or {})
        self.max_upload_bytes, self.max_pixels = int(max_upload_mb * 1e6), max_pixels
        self.max_queued = max_queued
        self.client_upload_bytes = max(int(client_uploads_mb * 1e6), self.max_upload_bytes)  # one upload always fits
        self.uploads: dict[str, tuple[str, Upload]] = {}  # token -> (owner, upload), oldest first
        self.jobs: dict[str, Job] = {}
        self.lock = threading.RLock()
        self.queue = FairQueue()
        self.current: Job | None = None
        self._clock: dict[str, tuple[float, float]] = {}  # job id -> (time, fraction) of its run's first report
        self._creating: dict[str, threading.Lock] = {}  # owner -> held while a job of theirs is being made
        self.version = self.first_version = int(time.time() * 1000)  # grows across restarts too
        self.removed: list[tuple[int, str, str]] = []  # (version, owner, job id) of deleted jobs
        self.stopping = False
        self._thread: threading.Thread | None = None
        self._load()

    # ---- the worker --------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker; jobs left queued or running by an earlier server run again (resume)."""
        for job in sorted(self.jobs.values(), key=lambda j: j.created):
            if job.status in ACTIVE:
                job.status = "queued"
                self.queue.put(job.owner, job.id)
        self._thread = threading.Thread(target=self._work, name="dreamvid-studio", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the job in progress at its next step (it stays queued, for the next start)."""
        self.stopping = True
        if self.current is not None:
            self.current.cancel.set()
        self.queue.close()
        if self._thread is not None:
            self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            job_id = self.queue.get()
            if job_id is None or self.stopping:
                return
            with self.lock:
                job = self.jobs.get(job_id)
                if job is None or job.status != "queued":  # cancelled or deleted while it waited
                    continue
                self.current = job
            try:
                self._run(job)
            finally:
                with self.lock:
                    if job.deleting:
                        self._remove(job)
                    self.current = None  # after the removal: no longer current means gone

    def _run(self, job: Job) -> None:
        from .. import render

        folder = self.folder(job.id)
        kwargs = job.spec.kwargs(folder)
        if job.spec.mode == "image":
            kwargs.update(skip_existing=True, on_octave=lambda k, octave, image: self._preview(job, image))
        job.cancel.clear()
        self._clock.pop(job.id, None)
        job.live = {"stage": "start", "fraction": 0.0, "eta": None, "info": "loading the model", "preview": 0}
        self._set(job, status="running", started=time.time(), finished=None, error=None, hint=None, param=None,
                  resumable=True, runs=job.runs + 1)
        render_fn = getattr(render, MODES[job.spec.mode].render)
        try:
            result = render_fn(str(folder / job.source), str(folder / job.output),
                               progress=lambda p: self._progress(job, p), **kwargs)
        except Cancelled:
            stays = self.stopping and not job.cancel_requested  # a server stopping: the next start resumes it
            job.live.update(stage="cancelled", info="")
            self._set(job, status="queued" if stays else "cancelled", finished=time.time(), cancel_requested=False)
        except DreamvidError as e:
            self._fail(job, e.message, e.hint, getattr(e, "key", None),
                       resumable=isinstance(e, (OutputError, EncoderError, DownloadError)))
        except Exception as e:  # noqa: BLE001 - a bug must fail the job, not the worker
            log.exception("job %s failed", job.id)
            self._fail(job, f"internal error: {type(e).__name__}: {e}", None, None, resumable=True)
        else:
            job.live.update(stage="done", fraction=1.0, eta=0.0, info="")
            self._set(job, status="done", finished=time.time(), cancel_requested=False, result={
                "items": result.items, "rendered": result.rendered, "resumed_from": result.resumed_from,
                "seconds": round(result.seconds, 3), "size": result.size})

    def _fail(self, job: Job, message: str, hint: str | None, key: str | None, resumable: bool) -> None:
        """A failed run: its message, the field it concerns, and whether Resume can help (a disk
        that was full can; a value the library refuses cannot)."""
        job.live.update(stage="failed", info="", eta=None)
        self._set(job, status="failed", finished=time.time(), error=message, hint=hint, param=key,
                  resumable=resumable, cancel_requested=False)

    def _progress(self, job: Job, p) -> None:
        """The engine's Progress -> the page's numbers (fraction, ETA); stops a cancelled job."""
        if job.cancel.is_set():
            raise Cancelled()
        live, now = job.live, time.monotonic()
        f = p.steps / p.total_steps if p.total_steps else p.done / p.total if p.total else 0.0
        f = min(1.0, f) if p.stage != "finish" else 1.0
        t0, f0 = self._clock.setdefault(job.id, (now, f))  # this run's start: a resumed job counts from here
        rate = (f - f0) / (now - t0) if now > t0 else 0.0
        info = {"step": p.info, "item": f"{p.done} of {p.total} finished", "finish": "writing the output"}
        live.update(stage=p.stage, done=p.done, total=p.total, steps=p.steps, total_steps=p.total_steps,
                    info=info.get(p.stage) or live.get("info", ""), fraction=round(f, 4), elapsed=round(now - t0, 2),
                    eta=round((1 - f) / rate, 1) if rate > 0 else None)
        if p.stage == "item" and job.spec.mode != "image":
            live["preview"] = live.get("preview", 0) + 1
        self._touch(job)

    def _preview(self, job: Job, image) -> None:
        from .. import media

        media.write_image(self.folder(job.id) / "preview.jpg", image)
        job.live["preview"] = job.live.get("preview", 0) + 1
        self._touch(job)

    # ---- uploads -----------------------------------------------------------------------

    def upload_sink(self, name: str) -> Sink:
        return Sink(self.uploads_dir, name, self.max_upload_bytes)

    def add_upload(self, owner: str, sink: Sink) -> Upload:
        """A finished upload, checked (type, header size) and kept for this owner; the owner's
        oldest uploads are let go while the owner's kept bytes would pass the limit."""
        try:
            upload = check_upload(sink.close(), sink.token, self.max_pixels)
        except BaseException:
            sink.discard()
            raise
        with self.lock:
            self._make_room(owner, sink.size)
            self.uploads[upload.token] = (owner, upload)
        return upload

    def _make_room(self, owner: str, size: int) -> None:
        mine = [(token, u) for token, (o, u) in self.uploads.items() if o == owner]
        kept = sum(_size(u.path) for _, u in mine)
        for token, u in mine:  # oldest first
            if kept + size <= self.client_upload_bytes:
                break
            kept -= _size(u.path)
            del self.uploads[token]
            shutil.rmtree(u.path.parent, ignore_errors=True)

    def upload_of(self, owner: str, token: Any) -> Upload:
        entry = self.uploads.get(check_token(token)) if isinstance(token, str) else None
        if entry is None or entry[0] != owner or not entry[1].path.is_file():
            raise UploadRefused("no such upload; upload the file first", status=404, key="upload")
        return entry[1]

    def upload_poster(self, owner: str, token: str) -> Path:
        """A small JPEG of the upload (a clip's first frame): what the drop zone shows."""
        upload = self.upload_of(owner, token)
        return pictures.poster(upload.path, upload.path.parent / ".poster.jpg")

    def reuse_input(self, owner: str, job_id: str) -> Upload:
        """The input of one of the owner's jobs as a new upload ("reuse these settings" on a
        page whose upload is gone)."""
        job = self.get(owner, job_id)
        source = inside(self.folder(job.id), job.source)
        sink = self.upload_sink(source.name)
        try:
            sink.close()
            shutil.copyfile(source, sink.path)
            sink.size = _size(sink.path)
        except OSError as e:
            sink.discard()
            raise UploadRefused(f"the job's input cannot be read again ({e.strerror})", status=404) from None
        return self.add_upload(owner, sink)

    # ---- jobs ----------------------------------------------------------------------------

    def create(self, owner: str, body: Any, key: str | None = None) -> Job:
        """A new job from a request (see options.parse_request) on an upload of this owner.
        key: the request's idempotency key; a second request with the same key (a double click,
        a retry) gets the job the first one made."""
        if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY):
            raise UploadRefused(f"the Idempotency-Key must be 1 to {MAX_KEY} characters", status=400)
        with self.lock:
            creating = self._creating.setdefault(owner, threading.Lock())
        with creating:  # one creation per owner at a time, so the second of two finds the first's job
            with self.lock:  # other owners' jobs come and go meanwhile
                done = next((j for j in self.jobs.values() if key and j.owner == owner and j.key == key
                             and not j.deleting), None)
                active = sum(1 for j in self.jobs.values() if j.owner == owner and j.status in ACTIVE)
            if done is not None:
                return done
            if active >= self.max_queued:
                raise UploadRefused(f"you have {active} jobs waiting or running, the most this studio takes from "
                                    f"one browser", status=429, hint="wait for one to finish, or cancel one")
            token = body.get("upload") if isinstance(body, Mapping) else None
            upload = self.upload_of(owner, token)
            spec = parse_request(body, self.models)
            job = self._make(owner, upload, spec, key)
        with self.lock:
            self.jobs[job.id] = job
            self._touch(job)
        self.queue.put(owner, job.id)
        return job

    def _make(self, owner: str, upload: Upload, spec: JobSpec, key: str | None) -> Job:
        """The job's folder with its input, settings and job.json (removed again on any refusal)."""
        from ..presets import to_toml

        mode = MODES[spec.mode]
        if upload.kind != mode.accepts:
            raise UploadRefused(f"a {spec.mode} is made from {'a clip' if mode.accepts == 'video' else 'a photo'}, "
                                f"and {upload.path.name} is not one", status=400, key="mode")
        job_id = new_token()
        folder = inside(self.jobs_dir, job_id)
        try:
            (folder / "input").mkdir(parents=True)
            (folder / "output").mkdir()
            source = Path("input") / upload.path.name
            _link_or_copy(upload.path, folder / source)
            output = Path("output") / f"{upload.path.stem}.{mode.tag}{spec.format}"
            if spec.toml is not None:
                (folder / "preset.toml").write_text(spec.toml, encoding="utf-8")
            settings = spec.settings(folder)  # refuses bad values in the library's words
            check_size(upload, settings.dream)
            settings_toml = to_toml(settings)
            (folder / "settings.toml").write_text(settings_toml, encoding="utf-8")
            model = settings.dream.model
            command = spec.command(source, output, "preset.toml" if spec.toml is not None else spec.preset,
                                   Path(model).name if model in self.models.values() and model not in self.models
                                   else None)
            job = Job(job_id, owner, spec, str(source), str(output), command, settings_toml, key=key)
            self._save(job)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return job

    def get(self, owner: str, job_id: str) -> Job:
        """The job, if it is this owner's; else UploadRefused(404), as for no job at all."""
        job = self.jobs.get(check_token(job_id))
        if job is None or job.owner != owner or job.deleting:
            raise UploadRefused("no such job", status=404)
        return job

    def list(self, owner: str) -> list[Job]:
        return sorted((j for j in self.jobs.values() if j.owner == owner and not j.deleting),
                      key=lambda j: -j.created)

    def changes(self, owner: str, since: int = 0) -> dict[str, Any]:
        """The owner's gallery as changes: the jobs changed after version `since`, the ids
        removed since then, and the version to ask from next. `reset`: the client's version is
        older than this server's start or its memory of deletions; it should drop what it has."""
        with self.lock:
            reset = since < self.first_version or (len(self.removed) >= REMOVED_KEPT and since < self.removed[0][0])
            jobs = [j.public(self.scrub) for j in self.list(owner) if reset or j.version > since]
            removed = [] if reset else [i for v, o, i in self.removed if o == owner and v > since]
            return {"version": self.version, "reset": bool(reset), "jobs": jobs, "removed": removed}

    def cancel(self, owner: str, job_id: str) -> Job:
        job = self.get(owner, job_id)
        with self.lock:
            if job.status == "queued":
                self.queue.remove(job.id)
                self._set(job, status="cancelled")
            elif job.status == "running":
                self._set(job, cancel_requested=True)  # on disk now: a crash before the next step cannot undo it
                job.cancel.set()  # the worker stops at the next step and marks it cancelled
        return job

    def resume(self, owner: str, job_id: str) -> Job:
        """Run a cancelled or failed job again: the same render, which resumes from its work folder."""
        job = self.get(owner, job_id)
        with self.lock:
            if job.status == "cancelled" or (job.status == "failed" and job.resumable):
                self._set(job, status="queued", error=None, hint=None, param=None)
                self.queue.put(job.owner, job.id)
        return job

    def delete(self, owner: str, job_id: str) -> None:
        """Remove a job and its files; a running one stops at its next step, then goes."""
        job = self.get(owner, job_id)
        with self.lock:
            self.queue.remove(job.id)
            job.deleting = True
            if job is self.current:
                job.cancel.set()  # the worker removes it when the render has stopped
            else:
                self._remove(job)

    def file(self, owner: str, job_id: str, which: str) -> Path:
        """The path of a job's input, output, newest preview, `before` (a still's input as a
        JPEG beside its result) or `poster` (a clip's first frame), inside the job's folder."""
        job = self.get(owner, job_id)
        if which not in FILES:
            raise UploadRefused("no such file", status=404)
        folder = self.folder(job.id)
        if which == "preview":
            path = self._latest_preview(job, folder)
        elif which == "before":
            path = pictures.still(inside(folder, job.source), folder / "before.jpg") if job.spec.mode != "video" \
                else None
        elif which == "poster":
            done = job.status == "done" and (folder / job.output).is_file()
            path = pictures.poster(inside(folder, job.output if done else job.source),
                                   folder / ("poster.jpg" if done else "poster-input.jpg"))
        else:
            path = inside(folder, job.source if which == "input" else job.output)
        if path is None or not path.is_file():
            raise UploadRefused("no such file (yet)", status=404)
        return path

    def folder(self, job_id: str) -> Path:
        return inside(self.jobs_dir, check_token(job_id))

    def scrub(self, text: str | None) -> str | None:
        """`text` with no server path in it: the data folder's job folders as relative paths,
        a server's own model by its file name, any other absolute path by its last part."""
        if not text:
            return text
        text = re.sub(re.escape(str(self.jobs_dir)) + r"[/\\][A-Za-z0-9_-]+[/\\]?", "", text)
        text = text.replace(str(self.data), "DATA")
        for name, path in self.models.items():
            if path != name:
                text = text.replace(path, Path(path).name)
        return ABSOLUTE_PATH.sub(lambda m: Path(m.group(0)).name, text)

    # ---- internals ---------------------------------------------------------------------

    def _latest_preview(self, job: Job, folder: Path) -> Path | None:
        if job.spec.mode == "image":
            return inside(folder, "preview.jpg")
        from ..render.workdir import FRAME_RE, default_work_dir

        work = default_work_dir(inside(folder, job.output))
        frames = [p for p in work.glob("frame_*.png") if FRAME_RE.match(p.name)] if work.is_dir() else []
        return max(frames, key=lambda p: p.name, default=None)

    def _touch(self, job: Job) -> None:
        with self.lock:
            self.version += 1
            job.version = self.version

    def _set(self, job: Job, **changes) -> None:
        with self.lock:
            for k, v in changes.items():
                setattr(job, k, v)
            if not job.deleting:
                self._save(job)
            self._touch(job)

    def _remove(self, job: Job) -> None:
        """Forget a job and delete its folder (under self.lock)."""
        self.jobs.pop(job.id, None)
        shutil.rmtree(self.folder(job.id), ignore_errors=True)
        self.version += 1
        self.removed = (self.removed + [(self.version, job.owner, job.id)])[-REMOVED_KEPT:]

    def _save(self, job: Job) -> None:
        path = self.folder(job.id) / "job.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(job.record(), indent=1), encoding="utf-8")
        os.replace(tmp, path)

    def _load(self) -> None:
        for folder in sorted(self.jobs_dir.iterdir()):
            try:
                check_token(folder.name)
                record = json.loads((folder / "job.json").read_text(encoding="utf-8"))
                job = Job.from_record(record, folder)
            except (UploadRefused, OSError, ValueError, KeyError, TypeError) as e:
                log.warning("skipping %s: not a job folder (%s)", folder, e)
                continue
            if job.status in ACTIVE and job.cancel_requested:  # cancelled just before the server died
                job.status, job.cancel_requested = "cancelled", False
                self._save(job)
            self.jobs[folder.name] = job
            self._touch(job)


ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])(?:/[\w.~-]+){2,}/?|[A-Za-z]:\\[^\s'\"]+")  # /a/b..., C:\...


def check_size(upload: Upload, dream) -> None:
    """SettingsError (max_size) unless the upload, shrunk to max_size, is large enough for the
    model: refused when the job is made, not when it runs."""
    from ..dream import check_size as octaves
    from ..media import scaled_size

    width, height = scaled_size(upload.width, upload.height, dream.max_size)
    try:
        octaves(height, width, dream)
    except DreamvidError as e:
        if dream.max_size is None or (width, height) == (upload.width, upload.height):
            raise
        side = _min_side(dream)
        need = max(dream.max_size, math.ceil(side * max(upload.width, upload.height) / min(upload.width, upload.height)) - 1)
        while min(scaled_size(upload.width, upload.height, need)) < side:
            need += 1
        raise SettingsError(f"max_size {dream.max_size} makes this {'clip' if upload.kind == 'video' else 'photo'} "
                            f"{width}x{height} px, smaller than the {side} px {Path(dream.model).name} needs on its "
                            f"shorter side", hint=f"give max_size at least {need}, or leave it empty",
                            key="max_size") from e


def _min_side(dream) -> int:
    from ..models import get_spec

    return get_spec(dream.model).min_size


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _link_or_copy(source: Path, target: Path) -> None:
    """The job's own copy of an upload: a hard link where the file system allows (no second
    copy on disk), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
