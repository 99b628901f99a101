"""Jobs on disk and the queue that runs them, one at a time (one device, one job).

    DATA/uploads/<token>/NAME          an upload until a job takes a copy (cleared at start-up)
    DATA/jobs/<id>/job.json            the job: request, status, the equivalent CLI command
    DATA/jobs/<id>/settings.toml       the resolved settings, a preset file (presets.to_toml)
    DATA/jobs/<id>/preset.toml         the preset text the request gave, if it gave one
    DATA/jobs/<id>/input/NAME          the job's own copy of the upload
    DATA/jobs/<id>/output/NAME.TAG.EXT the result, and NAME.TAG.EXT.dreamvid-work/ while it renders
    DATA/jobs/<id>/preview.jpg         a still's picture after each octave

A job is the render the CLI would run (`JobSpec.command`), through the same library
function, with a progress callback that feeds the page and raises `Cancelled` when asked to
stop: the engine keeps every finished item, as after Ctrl-C, and running the job again
resumes from its work folder. A server stopped mid-job leaves it `queued` in job.json, and
the next start runs it again, which resumes. Ids and upload tokens are random and server-made;
every job records the hash of its owner's client key, and a job of another owner is as
absent as one that never existed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import DreamvidError
from .options import MODES, JobSpec, parse_request
from .uploads import (DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_MB, Sink, Upload, UploadRefused, check_token,
                      check_upload, inside, new_token)

log = logging.getLogger("dreamvid")

ACTIVE = ("queued", "running")  # a job in one of these at start-up is run (resumed) again
FILES = ("input", "output", "preview")  # what may be fetched of a job


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
    command: str
    settings_toml: str
    status: str = "queued"  # queued | running | done | failed | cancelled
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    hint: str | None = None
    runs: int = 0
    result: dict[str, Any] | None = None
    live: dict[str, Any] = field(default_factory=dict)  # progress of the current run, not saved
    cancel: threading.Event = field(default_factory=threading.Event)

    SAVED = ("id", "owner", "source", "output", "command", "status", "created", "started", "finished", "error",
             "hint", "runs", "result")

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
        return cls(spec=JobSpec(**s), settings_toml=settings_toml, **{k: d[k] for k in cls.SAVED})

    def public(self) -> dict[str, Any]:
        """What the page sees of the job."""
        d = {k: getattr(self, k) for k in self.SAVED if k != "owner"}
        d.update(mode=self.spec.mode, request=self.spec.request, settings_toml=self.settings_toml,
                 source=Path(self.source).name, output=Path(self.output).name, progress=dict(self.live))
        return d


class Studio:
    """The jobs of one data folder and the worker thread that runs them in order."""

    def __init__(self, data: Path, models: Mapping[str, str] | None = None, *,
                 max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, max_pixels: int = DEFAULT_MAX_PIXELS):
        from .. import models as registry

        self.data = Path(data).expanduser().resolve()
        self.jobs_dir, self.uploads_dir = self.data / "jobs", self.data / "uploads"
        shutil.rmtree(self.uploads_dir, ignore_errors=True)  # an upload outlives no server
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.uploads_dir.mkdir(parents=True)
        self.models = {name: name for name in registry.MODELS} | dict(models or {})
        self.max_upload_bytes, self.max_pixels = int(max_upload_mb * 1e6), max_pixels
        self.uploads: dict[str, tuple[str, Upload]] = {}  # token -> (owner, upload)
        self.jobs: dict[str, Job] = {}
        self.lock = threading.RLock()
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.current: Job | None = None
        self._clock: dict[str, tuple[float, float]] = {}  # job id -> (time, fraction) of its run's first report
        self.stopping = False
        self._thread: threading.Thread | None = None
        self._load()

    # ---- the worker --------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker; jobs left queued or running by an earlier server run again (resume)."""
        for job in sorted(self.jobs.values(), key=lambda j: j.created):
            if job.status in ACTIVE:
                job.status = "queued"
                self.queue.put(job.id)
        self._thread = threading.Thread(target=self._work, name="dreamvid-studio", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the job in progress at its next step (it stays queued, for the next start)."""
        self.stopping = True
        if self.current is not None:
            self.current.cancel.set()
        self.queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            job_id = self.queue.get()
            if job_id is None or self.stopping:
                return
            job = self.jobs.get(job_id)
            if job is None or job.status != "queued":  # cancelled while it waited
                continue
            self.current = job
            try:
                self._run(job)
            finally:
                self.current = None

    def _run(self, job: Job) -> None:
        from .. import render

        folder = self.folder(job.id)
        kwargs = job.spec.kwargs(folder)
        if job.spec.mode == "image":
            kwargs.update(skip_existing=True, on_octave=lambda k, octave, image: self._preview(job, image))
        job.cancel.clear()
        self._clock.pop(job.id, None)
        job.live = {"stage": "start", "fraction": 0.0, "eta": None, "info": "loading the model", "preview": 0}
        self._set(job, status="running", started=time.time(), finished=None, error=None, hint=None,
                  runs=job.runs + 1)
        render_fn = getattr(render, MODES[job.spec.mode].render)
        try:
            result = render_fn(str(folder / job.source), str(folder / job.output),
                               progress=lambda p: self._progress(job, p), **kwargs)
        except Cancelled:
            self._set(job, status="queued" if self.stopping else "cancelled", finished=time.time())
        except DreamvidError as e:
            self._set(job, status="failed", finished=time.time(), error=e.message, hint=e.hint)
        except Exception as e:  # noqa: BLE001 - a bug must fail the job, not the worker
            log.exception("job %s failed", job.id)
            self._set(job, status="failed", finished=time.time(), error=f"internal error: {type(e).__name__}: {e}")
        else:
            job.live.update(stage="done", fraction=1.0, eta=0.0)
            self._set(job, status="done", finished=time.time(), result={
                "items": result.items, "rendered": result.rendered, "resumed_from": result.resumed_from,
                "seconds": round(result.seconds, 3), "size": result.size})

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

    def _preview(self, job: Job, image) -> None:
        from .. import media

        media.write_image(self.folder(job.id) / "preview.jpg", image)
        job.live["preview"] = job.live.get("preview", 0) + 1

    # ---- requests ----------------------------------------------------------------------

    def upload_sink(self, name: str) -> Sink:
        return Sink(self.uploads_dir, name, self.max_upload_bytes)

    def add_upload(self, owner: str, sink: Sink) -> Upload:
        """A finished upload, checked (type, header size) and kept for this owner."""
        try:
            upload = check_upload(sink.close(), sink.token, self.max_pixels)
        except BaseException:
            sink.discard()
            raise
        with self.lock:
            self.uploads[upload.token] = (owner, upload)
        return upload

    def create(self, owner: str, body: Any) -> Job:
        """A new job from a request (see options.parse_request) on an upload of this owner."""
        token = body.get("upload") if isinstance(body, Mapping) else None
        upload = self._upload(owner, token)
        spec = parse_request(body, self.models)
        mode = MODES[spec.mode]
        if upload.kind != mode.accepts:
            raise UploadRefused(f"a {spec.mode} is made from {'a clip' if mode.accepts == 'video' else 'a photo'}, "
                                f"and {upload.path.name} is not one", status=400)
        job_id = new_token()
        folder = inside(self.jobs_dir, job_id)
        try:
            (folder / "input").mkdir(parents=True)
            (folder / "output").mkdir()
            source = Path("input") / upload.path.name
            shutil.copyfile(upload.path, folder / source)
            output = Path("output") / f"{upload.path.stem}.{mode.tag}{spec.format}"
            if spec.toml is not None:
                (folder / "preset.toml").write_text(spec.toml, encoding="utf-8")
            from ..presets import to_toml

            settings_toml = to_toml(spec.settings(folder))  # refuses bad values in the library's words
            (folder / "settings.toml").write_text(settings_toml, encoding="utf-8")
            job = Job(job_id, owner, spec, str(source), str(output),
                      spec.command(folder / source, folder / output, folder), settings_toml)
            self._save(job)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        with self.lock:
            self.jobs[job_id] = job
        self.queue.put(job_id)
        return job

    def get(self, owner: str, job_id: str) -> Job:
        """The job, if it is this owner's; else UploadRefused(404), as for no job at all."""
        job = self.jobs.get(check_token(job_id))
        if job is None or job.owner != owner:
            raise UploadRefused("no such job", status=404)
        return job

    def list(self, owner: str) -> list[Job]:
        return sorted((j for j in self.jobs.values() if j.owner == owner), key=lambda j: -j.created)

    def cancel(self, owner: str, job_id: str) -> Job:
        job = self.get(owner, job_id)
        if job.status == "queued":
            self._set(job, status="cancelled")
        elif job.status == "running":
            job.cancel.set()  # the worker stops at the next step and marks it cancelled
        return job

    def resume(self, owner: str, job_id: str) -> Job:
        """Run a cancelled or failed job again: the same render, which resumes from its work folder."""
        job = self.get(owner, job_id)
        if job.status in ("cancelled", "failed"):
            self._set(job, status="queued", error=None, hint=None)
            self.queue.put(job.id)
        return job

    def file(self, owner: str, job_id: str, which: str) -> Path:
        """The path of a job's input, output or newest preview, inside the job's folder."""
        job = self.get(owner, job_id)
        if which not in FILES:
            raise UploadRefused("no such file", status=404)
        folder = self.folder(job.id)
        if which == "preview":
            path = self._latest_preview(job, folder)
        else:
            path = inside(folder, job.source if which == "input" else job.output)
        if path is None or not path.is_file():
            raise UploadRefused("no such file (yet)", status=404)
        return path

    def folder(self, job_id: str) -> Path:
        return inside(self.jobs_dir, check_token(job_id))

    # ---- internals ---------------------------------------------------------------------

    def _upload(self, owner: str, token: Any) -> Upload:
        entry = self.uploads.get(check_token(token)) if isinstance(token, str) else None
        if entry is None or entry[0] != owner or not entry[1].path.is_file():
            raise UploadRefused("no such upload; upload the file first", status=404)
        return entry[1]

    def _latest_preview(self, job: Job, folder: Path) -> Path | None:
        if job.spec.mode == "image":
            return inside(folder, "preview.jpg")
        from ..render.workdir import FRAME_RE, default_work_dir

        work = default_work_dir(inside(folder, job.output))
        frames = [p for p in work.glob("frame_*.png") if FRAME_RE.match(p.name)] if work.is_dir() else []
        return max(frames, key=lambda p: p.name, default=None)

    def _set(self, job: Job, **changes) -> None:
        with self.lock:
            for k, v in changes.items():
                setattr(job, k, v)
            self._save(job)

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
                self.jobs[folder.name] = Job.from_record(record, folder)
            except (UploadRefused, OSError, ValueError, KeyError, TypeError) as e:
                log.warning("skipping %s: not a job folder (%s)", folder, e)
