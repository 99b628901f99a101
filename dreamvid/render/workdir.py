"""Work folders: where a render keeps its finished frames until the output is encoded.

Every frame-by-frame render (video, zoom, timelapse) writes each finished frame as a PNG
into a work folder beside its output, next to a `render.json` manifest:

    dream.mp4.dreamvid-work/
        render.json        what these frames are (below)
        frame_00030.png    one per finished frame, numbered by SOURCE frame index
        frame_00031.png    (zoom and other generated clips: by output frame index)

Frames appear atomically and durably (a temporary name, fsync, os.replace, fsync of the
folder: media.paths.TempFile), so a frame on disk is a whole frame: an interrupted render
resumes at `first_missing()`, and a render that needs the previous frame (video coherence)
reads it back from disk bit for bit (PNG is lossless).

A frame counts as done only if it is intact: `has`, `done_indices` and `first_missing`
walk its PNG chunks to IEND and check every CRC-32 (media.images.png_problem, about
0.15 ms for a 512x384 frame; the answer is kept while the file is unchanged). A frame cut
short or damaged (a machine that crashed, a failing drive, a copy gone wrong) is
logged and counts as missing, so it is dreamed again, and so is every later frame of a
video chain, which starts from it. `finish(output)` decodes every frame completely before
ffmpeg sees any (about 6 ms a frame) and refuses with InputError, keeping the folder, if
one does not; then it encodes the frames (mp4/mov/mkv, gif, or a PNG frame folder),
flushes the output to disk and removes the work folder unless told to keep it.

What a power loss (or a kernel crash) can leave: every frame that was renamed into place
and render.json as last saved (both are fsynced before the rename, the folder after), and
at most the frame being written, as a temporary file that the next open deletes. The fsync
costs about 1 ms a frame on a local SSD, against seconds of dreaming. Without it, ext4 and
XFS can leave renamed frames empty or cut short after a crash; the checks above would still
catch those and dream them again, but render.json must not be lost: without it the frames
cannot be trusted at all.

The manifest says what would make the frames on disk wrong for this render:
    {"format": 1, "kind": "video", "dreamvid": "0.1.0",
     "settings": {...}, "digest": "3f2a...",         # everything the frames depend on
     "source": {"size": ..., "sample_sha256": ..., "width": ..., "fps": "25/1", ...},
     "seed": 0, "start": 30, "end": 120, "fps": "25/1", "created": "...", "output": "..."}
Opening a folder whose kind, settings digest, source fingerprint, seed or range start differ
from the new render's raises ResumeMismatchError naming what changed; `restart=True` clears
the folder instead. A different `end` is fine (the frames are causal: frame t depends only
on frames <= t), so a render can be extended or cut short and resumed.

While a render has its folder open it holds an exclusive lock on it (flock on the folder
itself, so no lock file is left behind; released when the render ends or its process dies).
A second render into the same folder is refused at once with OutputError naming the process
that holds it, instead of both writing the same frames and deleting each other's temporary
files. `close()` releases it; `finish()` and `remove()` close.

A render is always a frame range [start, end), so a long clip can be split into chunks
rendered elsewhere (DESIGN, "Growing past one machine"); `done_indices()` and
`first_missing()` already treat the folder as a set. Today a folder holds one range (one
manifest, one lock), so concurrent chunks need a folder each; sharing one folder needs a
manifest and a lock per range.

    work = open_work(output, kind="video", settings=d, source=fingerprint(src, facts),
                     seed=0, start=0, end=n, fps=Fraction(25), restart=False)
    for i in range(work.first_missing(), work.end):
        work.write(i, frame_uint8)
    work.finish(output, fps=Fraction(25), crf=18, audio_source=src)
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
import re
import socket
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import __version__
from ..errors import OutputError, ResumeMismatchError

log = logging.getLogger("dreamvid")

FORMAT_VERSION = 2  # of render.json; bump when the meaning of the frames on disk changes
# 2: one resume key shape for every mode (render/engine.py), per-item notes
MANIFEST = "render.json"
INTERPOLATED = "interpolated"  # subfolder of the frames made between frames at finish (--interpolate)
COMPOSED = "composed"  # subfolder of what a masked video shows of each frame, made at finish (--mask)
WORK_SUFFIX = ".dreamvid-work"  # OUT.mp4 -> OUT.mp4.dreamvid-work/ (ignored by .gitignore)
FRAME_RE = re.compile(r"^frame_(\d{5,})\.png$")  # media.FRAME_PATTERN = "frame_%05d.png"
TEMP_RE = re.compile(r"^\..*\.dreamvid-tmp.*$")  # media.paths.temp_sibling names
SAMPLE_BYTES = 2 << 20  # hashed from each end of a source: 4 MiB read, catches edits and truncation


def default_work_dir(output: str | os.PathLike) -> Path:
    """The work folder of an output: `dream.mp4` -> `dream.mp4.dreamvid-work` beside it."""
    from ..media.paths import resolved_output

    out = resolved_output(os.fspath(output).rstrip("/" + os.sep) or ".")
    return out.with_name(out.name + WORK_SUFFIX)


def fingerprint(path: str | os.PathLike, facts: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What identifies a source file without reading all of it: its size, a SHA-256 of its
    first and last SAMPLE_BYTES, and `facts` (probe results: size, fps, frame count).

    The path is recorded for the reader but not compared: a moved source still resumes.
    """
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256()
    with open(p, "rb") as f:
        h.update(f.read(SAMPLE_BYTES))
        if size > 2 * SAMPLE_BYTES:
            f.seek(size - SAMPLE_BYTES)
        h.update(f.read(SAMPLE_BYTES))
    return {"path": str(p.resolve()), "size": size, "sample_sha256": h.hexdigest()[:32],
            **{k: _jsonable(v) for k, v in (facts or {}).items()}}


def still_fingerprint(source: Any, picture: np.ndarray) -> dict[str, Any]:
    """The manifest's `source` for a render of one still: the file's `fingerprint` when the
    source is a path, otherwise a hash of the (H, W, C) array itself."""
    if isinstance(source, (str, os.PathLike)):
        return fingerprint(source)
    picture = np.ascontiguousarray(picture)
    return {"array_sha256": hashlib.sha256(picture.tobytes()).hexdigest()[:32], "shape": list(picture.shape)}


COMMENT_RE = re.compile(r"^dreamvid (\S+) (\w+) of (.*) frames (\d+)\+(\d+)$")


def render_comment(manifest: Mapping[str, Any], start: int, n: int) -> str:
    """What an encoded render says about itself in its comment tag:
    "dreamvid 0.1.0 video of bunny.mp4 frames 30+45" (source frames [30, 75))."""
    source = Path((manifest.get("source") or {}).get("path") or "an image").name
    return f"dreamvid {manifest.get('dreamvid')} {manifest.get('kind')} of {source} frames {start}+{n}"


def parse_comment(comment: str) -> dict[str, Any] | None:
    """render_comment's fields back ({"version", "kind", "source", "start", "frames"}), or None."""
    m = COMMENT_RE.match(comment or "")
    if not m:
        return None
    return {"version": m.group(1), "kind": m.group(2), "source": m.group(3), "start": int(m.group(4)),
            "frames": int(m.group(5))}


def settings_digest(settings: Mapping[str, Any]) -> str:
    """A short stable hash of a JSON-able settings dict (key order does not matter)."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def fps_text(fps: Fraction) -> str:
    fps = Fraction(fps)
    return f"{fps.numerator}/{fps.denominator}"


def _jsonable(v: Any) -> Any:
    if isinstance(v, Fraction):
        return fps_text(v)
    if isinstance(v, Path):
        return str(v)
    return v


@dataclass
class WorkFolder:
    """An open work folder for the frames [start, end) of one render (see the module doc)."""

    path: Path
    manifest: dict[str, Any] = field(repr=False)
    lock: _FolderLock | None = field(default=None, repr=False, compare=False)
    _intact: dict[str, tuple] = field(default_factory=dict, init=False, repr=False, compare=False)

    def close(self) -> None:
        """Release the folder's lock (the frames stay); closing twice is harmless."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __enter__(self) -> WorkFolder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def start(self) -> int:
        return int(self.manifest["start"])

    @property
    def end(self) -> int:
        return int(self.manifest["end"])

    def frame_path(self, index: int) -> Path:
        """path/frame_%05d.png (the name media.encode_video reads)."""
        from ..media import frame_path

        return frame_path(self.path, index)

    def has(self, index: int) -> bool:
        """Whether frame `index` is on disk and intact (a damaged one counts as missing)."""
        return self._is_intact(self.frame_path(index))

    def done_indices(self) -> list[int]:
        """Indices in [start, end) with a finished, intact frame on disk, ascending."""
        found = []
        with os.scandir(self.path) as it:
            for entry in it:
                m = FRAME_RE.match(entry.name)
                if m and self.start <= int(m.group(1)) < self.end and self._is_intact(Path(entry.path)):
                    found.append(int(m.group(1)))
        return sorted(found)

    def _is_intact(self, path: Path) -> bool:
        """png_problem(path) is None, remembered while the file's inode, size and mtime stay."""
        from ..media.images import png_problem

        try:
            st = path.stat()
        except OSError:
            return False
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._intact.get(path.name, (None,))[:3] != key:
            problem = png_problem(path)
            if problem:
                log.warning("%s in %s %s; it will be dreamed again", path.name, self.path, problem)
            self._intact[path.name] = (*key, problem is None)
        return self._intact[path.name][3]

    def first_missing(self) -> int | None:
        """The first index in [start, end) without an intact frame (where a render resumes); None: all done."""
        done = set(self.done_indices())
        return next((i for i in range(self.start, self.end) if i not in done), None)

    def done(self) -> bool:
        return self.first_missing() is None

    def write(self, index: int, image: np.ndarray | bytes) -> Path:
        """Store frame `index`: (H, W, 3) uint8 RGB, (H, W, 4) with a mask as its alpha (a
        masked video: the dream everywhere, and where it shows), or its PNG as
        media.encode_image made it (a cluster's worker encodes, cluster.py), atomically.
        OutputError when the disk is full or the folder has gone (frames already written stay)."""
        from ..media.images import write_encoded, write_image

        try:
            if not self.path.is_dir():
                raise FileNotFoundError(self.path)
            if isinstance(image, bytes):
                return write_encoded(self.frame_path(index), image)
            if image.ndim == 3 and image.shape[2] == 4:
                return write_image(self.frame_path(index), image[..., :3], alpha=np.ascontiguousarray(image[..., 3]))
            return write_image(self.frame_path(index), image)
        except (OutputError, FileNotFoundError):
            if self.path.is_dir():  # a real write failure (disk full, permissions): say that
                raise
            # The folder went away before or during the write (unmounted drive, deleted by hand).
            raise OutputError(f"the work folder {self.path} has disappeared",
                              hint="the render cannot continue; check that its drive is still mounted") from None

    def read(self, index: int) -> np.ndarray:
        """Frame `index` as written: (H, W, 3) uint8 RGB. InputError if it is damaged."""
        from ..errors import InputError
        from ..media import read_image

        try:
            return read_image(self.frame_path(index))
        except InputError as e:  # read_image's hint is for photos ("get a complete copy")
            raise InputError(f"{self.frame_path(index).name} in the work folder {self.path} is damaged",
                             hint="delete it and run the same command again: a missing frame is dreamed "
                                  "again (or pass --restart to start over)", detail=e.message) from None

    def read_mask(self, index: int) -> np.ndarray | None:
        """Frame `index`'s mask (its alpha) as (H, W) float32 0..1; None: it has none (shows everywhere)."""
        from ..media import read_image_alpha

        alpha = read_image_alpha(self.frame_path(index))[1]
        return None if alpha is None else alpha.astype(np.float32) / 255.0

    def note(self, index: int, meta: Mapping[str, Any]) -> None:
        """Keep JSON-able facts about item `index` (a timelapse snapshot's label) in the manifest."""
        self.manifest.setdefault("notes", {})[str(index)] = dict(meta)
        self._save()

    def noted(self, index: int) -> dict[str, Any]:
        """What `note` kept about item `index` ({} if nothing)."""
        meta = self.manifest.get("notes", {}).get(str(index))
        return dict(meta) if isinstance(meta, dict) else {}

    def set_end(self, end: int) -> None:
        """Shrink or grow the range (e.g. a source that decoded fewer frames than promised)."""
        self.manifest["end"] = int(end)
        self._save()

    def finish(self, output: str | os.PathLike, *, fps: Fraction, crf: int = 18, pix_fmt: str = "yuv420p",
               audio_source: str | os.PathLike | None = None, audio_start: float | None = None,
               audio_duration: float | None = None, end: int | None = None, keep: bool = False,
               sar: Fraction | None = None, interpolate: int = 1, compose=None) -> Path:
        """Encode frames [start, end) into `output` and remove the folder unless `keep`.

        output: .mp4/.m4v/.mov/.mkv (H.264, plus `audio_source`'s audio trimmed to
        [audio_start, audio_start + audio_duration] s), .gif, or a folder for the PNG
        frames (hard links when possible). fps: the output rate, exact. Every frame must be
        on disk and decode completely (InputError naming the first missing or damaged one
        otherwise, before anything is encoded; the folder stays). The output is on disk
        (fsync) before the folder is removed. Returns the output path.
        compose(index, frame, mask) -> frame: what a masked video shows of each stored frame
        (mask: its alpha, or None), written to a folder of its own before the rest.
        """
        from .. import media

        end = self.end if end is None else end
        n = end - self.start
        out = Path(output).expanduser()
        frames_dir, start, count = self.path, self.start, n
        if compose is not None:
            frames_dir = self._composed(end, compose)
        if interpolate > 1:  # the frames between frames go to a folder of their own, numbered from 0
            frames_dir, start, count = self._interpolated(end, interpolate, frames_dir), 0, (n - 1) * interpolate + 1
        if media.output_kind(out) == "frames":
            media.write_frames_folder(frames_dir, out, n_frames=count, start_number=start)
            keep = keep or out.resolve() == self.path.resolve()
        else:
            media.encode_video(frames_dir, out, fps=Fraction(fps), n_frames=count, start_number=start, crf=crf,
                               pix_fmt=pix_fmt,
                               audio_source=audio_source, audio_start=audio_start, audio_duration=audio_duration,
                               comment=render_comment(self.manifest, self.start, n), sar=sar)
        if keep:
            self.manifest["output"] = str(out)
            self._save()
            self.close()
        else:
            self.remove()
        return out

    def _composed(self, end: int, compose) -> Path:
        """path/composed/frame_%05d.png (source numbering): compose(i, frame, mask) of each frame."""
        from .. import media

        folder = self.path / COMPOSED
        if folder.is_dir():
            _clear(folder)
        folder.mkdir(exist_ok=True)
        for i in range(self.start, end):
            media.write_image(media.frame_path(folder, i), compose(i, self.read(i), self.read_mask(i)))
        return folder

    def _interpolated(self, end: int, k: int, source: Path | None = None) -> Path:
        """path/interpolated/frame_%05d.png: the frames [start, end) with k - 1 between each pair."""
        from .. import media
        from ..interpolate import interpolated

        folder = self.path / INTERPOLATED
        if folder.is_dir():
            _clear(folder)
        folder.mkdir(exist_ok=True)
        frames = (media.read_image(media.frame_path(source, i)) if source is not None else self.read(i)
                  for i in range(self.start, end))
        for j, frame in enumerate(interpolated(frames, k)):
            media.write_image(media.frame_path(folder, j), frame)
        return folder

    def remove(self) -> None:
        """Delete the manifest, frames and leftovers, then the folder if nothing else is in it.

        Only files this module names are deleted: a --work-dir pointed at a folder holding
        other things loses none of them.
        """
        try:
            for sub in (INTERPOLATED, COMPOSED):
                _clear(self.path / sub)
                with contextlib.suppress(OSError):
                    (self.path / sub).rmdir()
            _clear(self.path)
            with contextlib.suppress(OSError):
                self.path.rmdir()
        finally:
            self.close()

    def _save(self) -> None:
        self.manifest["updated"] = _now()
        _write_json(self.path / MANIFEST, self.manifest)


def open_work(output: str | os.PathLike, *, kind: str, settings: Mapping[str, Any],
              source: Mapping[str, Any] | None, seed: int, start: int, end: int, fps: Fraction,
              work_dir: str | os.PathLike | None = None, restart: bool = False,
              resume_hint: str = "pass --restart to discard them and start over",
              reserved: Reservation | None = None) -> WorkFolder:
    """Create, or reopen to resume, the work folder of a render of frames [start, end).

    kind: "video", "zoom", ...; settings: JSON-able dict of everything the frames depend on
    (not output-only options such as crf); source: `fingerprint(...)` or None (nothing read);
    fps: the source or animation rate. work_dir: the folder (default: `default_work_dir`).
    ResumeMismatchError when the folder holds frames of another render (unless `restart`,
    which clears it); OutputError when it cannot be created. reserved: the folder's lock taken
    earlier by `reserve` (the render keeps holding it).
    """
    path = _work_path(output, work_dir)
    settings = {k: _jsonable(v) for k, v in settings.items()}
    wanted = {
        "format": FORMAT_VERSION, "kind": kind, "dreamvid": __version__,
        "settings": settings, "digest": settings_digest(settings),
        "source": dict(source) if source is not None else None, "seed": int(seed),
        "start": int(start), "end": int(end), "fps": fps_text(fps), "output": str(output),
    }
    if reserved is not None and reserved.path == path:  # locked already, before the network loaded
        lock, created = reserved.take()
    else:
        created = _make_folder(path)
        lock = _locked(path, created)  # everything below reads or changes the folder: hold it first
    try:
        try:
            old = _read_manifest(path)
        except ResumeMismatchError:
            if not restart:  # a damaged manifest: --restart is always the way out
                raise
            old = {}
        if old is not None and restart:
            _clear(path)
            old = None
        elif old is not None:
            _check_same(path, old, wanted, resume_hint)
            if old.get("dreamvid") != __version__:
                log.warning("%s was started by dreamvid %s; this is %s, frames may differ slightly",
                            path.name, old.get("dreamvid"), __version__)
        elif restart:
            _clear(path)
        elif any(FRAME_RE.match(n) for n in os.listdir(path)):
            raise ResumeMismatchError(f"{path} holds frames but no {MANIFEST}, so they cannot be trusted",
                                      hint=resume_hint)
        _remove_temp_files(path)
        notes = (old or {}).get("notes")
        manifest = {**wanted, "created": (old or {}).get("created", _now()),
                    "notes": notes if isinstance(notes, dict) else {},
                    "pid": os.getpid(), "host": socket.gethostname()}
        work = WorkFolder(path, manifest, lock)
        try:
            work._save()
        except OSError as e:
            raise OutputError(f"cannot write {path / MANIFEST}: {e.strerror}",
                              hint="check free disk space and permissions") from None
    except BaseException:
        lock.release()
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
    return work


def _work_path(output: str | os.PathLike, work_dir: str | os.PathLike | None) -> Path:
    from ..media.paths import resolved_output

    return resolved_output(work_dir) if work_dir else default_work_dir(output)  # a symlink loop: one line


def _make_folder(path: Path) -> bool:
    """Create the work folder if needed (OutputError naming why it cannot be); True if created."""
    created = not path.is_dir()
    try:
        path.mkdir(exist_ok=True)
    except FileNotFoundError:
        if path.parent.is_dir():  # /proc, a read-only mount: the parent is there but takes nothing new
            raise OutputError(f"cannot create the work folder {path}: {path.parent} does not take new folders",
                              hint="choose another --work-dir") from None
        raise OutputError(f"cannot create the work folder {path}: its parent folder does not exist",
                          hint="create it, or choose another --work-dir") from None
    except FileExistsError:  # a file, a pipe, a device: named, never opened
        from ..userfiles import kind as file_kind

        raise OutputError(f"the work folder {path} is {file_kind(path.stat().st_mode)}, not a folder",
                          hint="choose another --work-dir, or move it out of the way") from None
    except NotADirectoryError:
        from ..media.paths import writable_dir_or_raise

        writable_dir_or_raise(path.parent, "the work folder's parent")  # names the file on the way
        raise
    except OSError as e:
        raise OutputError(f"cannot create the work folder {path}: {e.strerror}",
                          hint="choose another --work-dir") from None
    return created


def _locked(path: Path, created: bool) -> _FolderLock:
    """The folder's lock; a folder created for it is removed again when another render holds it."""
    try:
        return _FolderLock.acquire(path)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


@dataclass
class Reservation:
    """A work folder locked before its render loads the network (engine.render), so that a
    second render of the same output is refused at once instead of after the seconds that
    TensorFlow and the network take. `open_work(reserved=)` takes the lock over; `release()`
    gives it up if nothing took it, removing the folder if it was made for this and is empty."""

    path: Path
    lock: _FolderLock | None
    created: bool

    def take(self) -> tuple[_FolderLock, bool]:
        lock, self.lock = self.lock, None
        return lock, self.created

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None
            if self.created:
                with contextlib.suppress(OSError):  # not empty: something of the user's, leave it
                    self.path.rmdir()


def reserve(output: str | os.PathLike, work_dir: str | os.PathLike | None = None) -> Reservation:
    """Lock the work folder of `output` now (created if needed): OutputError at once if
    another render holds it, or it cannot be made. Hand it to open_work(reserved=)."""
    path = _work_path(output, work_dir)
    created = _make_folder(path)
    return Reservation(path, _locked(path, created), created)


class _FolderLock:
    """An exclusive, non-blocking lock on a folder: flock on the folder's own descriptor.

    POSIX only (Linux, macOS); elsewhere renders run unlocked, as before. The kernel drops
    the lock when the process dies, so a killed render never leaves a stale lock.
    """

    def __init__(self, fd: int | None):
        self.fd = fd

    @classmethod
    def acquire(cls, path: Path) -> _FolderLock:
        try:
            import fcntl
        except ImportError:  # Windows
            return cls(None)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # a file system that cannot open folders for reading: run unlocked
            return cls(None)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(f"another dreamvid render is using the work folder {path}{_holder(path)}",
                              hint="wait for it to finish, or give this render another output or --work-dir") from None
        except OSError:  # no flock on this file system (some network mounts): run unlocked
            pass
        return cls(fd)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    __del__ = release  # a WorkFolder dropped without close() frees its folder too


def _holder(path: Path) -> str:
    """' (pid 1234 on host)' from the manifest of the render holding `path`, or ''. The holder
    locks the folder before it loads its network and writes its manifest only after, so a
    manifest whose process is gone (on this host) is an earlier run's: it names nobody."""
    with contextlib.suppress(Exception):
        m = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        pid, host = m.get("pid"), m.get("host", "?")
        if pid and (host != socket.gethostname() or _alive(int(pid))):
            return f" (pid {pid} on {host})"
    return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


# ---- helpers -------------------------------------------------------------------------------

def _check_same(path: Path, old: Mapping[str, Any], new: Mapping[str, Any], hint: str) -> None:
    """ResumeMismatchError naming the first thing that differs between two manifests."""
    what = f"{path.name} holds frames of another render"
    if old.get("format") != new["format"]:
        raise ResumeMismatchError(f"{what} (work folder format {old.get('format')}, this version "
                                  f"writes {new['format']})", hint=hint)
    if old.get("kind") != new["kind"]:
        raise ResumeMismatchError(f"{what} (a {old.get('kind')} render, not {new['kind']})", hint=hint)
    if old.get("source") != new["source"]:
        keys = _changed(old.get("source") or {}, new["source"] or {}, ignore=("path",))
        if keys:
            raise ResumeMismatchError(f"{what}: the source has changed ({', '.join(keys)})", hint=hint)
    if old.get("digest") != new["digest"]:
        keys = _changed(_flat(old.get("settings") or {}), _flat(new["settings"]))
        raise ResumeMismatchError(f"{what}: the settings have changed ({', '.join(keys) or 'digest'})",
                                  hint=hint + ", or repeat the original settings to continue")
    if old.get("seed") != new["seed"]:
        raise ResumeMismatchError(f"{what}: the seed has changed ({old.get('seed')} -> {new['seed']})",
                                  hint=hint)
    if old.get("start") != new["start"]:
        raise ResumeMismatchError(f"{what}: it starts at frame {old.get('start')}, this render at {new['start']}",
                                  hint=hint + ", or use the original start")


# settings a resume key leaves out at the value every earlier work folder had (dream.auto.pin)
LEFT_OUT = {"backend": "tensorflow"}


def _changed(a: Mapping[str, Any], b: Mapping[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    def shown(d: Mapping[str, Any], k: str) -> Any:
        return d[k] if k in d else LEFT_OUT.get(k.rpartition(".")[2])

    keys = sorted((set(a) | set(b)) - set(ignore))
    return [f"{k}: {shown(a, k)!r} -> {shown(b, k)!r}" for k in keys if a.get(k) != b.get(k)][:4]


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        raw = (path / MANIFEST).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise OutputError(f"cannot read {path / MANIFEST}: {e.strerror}", hint="check its permissions") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise ResumeMismatchError(f"{path / MANIFEST} is damaged, so the frames beside it cannot be trusted",
                                  hint="pass --restart to discard them and start over")
    return data


def _write_json(dest: Path, data: Mapping[str, Any]) -> None:
    from ..media.paths import atomic_destination

    with atomic_destination(dest) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _clear(path: Path) -> None:
    """Delete render.json, frame_*.png and our temporary files in `path` (nothing else)."""
    if not path.is_dir():
        return
    for name in os.listdir(path):
        if name == MANIFEST or FRAME_RE.match(name) or TEMP_RE.match(name):
            with contextlib.suppress(FileNotFoundError):
                (path / name).unlink()


def _remove_temp_files(path: Path) -> None:
    """Half-written frames of a render that was killed (never renamed into place)."""
    for name in os.listdir(path):
        if TEMP_RE.match(name):
            with contextlib.suppress(OSError):
                (path / name).unlink()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
