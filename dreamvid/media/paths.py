"""File kinds by extension, output-path checks, and atomic writes (temp name + os.replace).

Every file dreamvid writes appears atomically and durably: it is written under a temporary
name beside its destination (`.NAME.1a2b3c4d.dreamvid-tmp[.ext]`, `TempFile`), flushed to
disk (fsync), renamed over the destination, and the folder is flushed too. A power loss
leaves the old file or the complete new one, never a torn one, and at worst a temporary
file. While a temporary file is being written its writer holds an flock on it; a temporary
file nobody holds (its writer was killed, or the machine went down) is stale, and
`remove_stale_temps` deletes the stale ones of an output when the next run checks it.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from dreamvid import userfiles
from dreamvid.errors import OutputError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".gif"})  # as input
VIDEO_OUTPUT_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".m4v"})  # H.264 + AAC
GIF_EXTENSION = ".gif"
TEMP_MARK = ".dreamvid-tmp"  # in every temporary name, so leftovers are recognisable
TEMP_NAME = r"\.(?P<dest>.+)\.[0-9a-f]{8}" + re.escape(TEMP_MARK) + r"(\.[A-Za-z0-9]+)?"  # temp_sibling's names
STALE_AGE_S = 24 * 3600  # where files cannot be locked: a temporary file this old is stale


def _known_outputs() -> str:
    names = sorted(IMAGE_EXTENSIONS | VIDEO_OUTPUT_EXTENSIONS | {GIF_EXTENSION})
    return ", ".join(names) + ", or a folder (no extension) for PNG frames"


def output_kind(path: str | os.PathLike) -> str:
    """What an output path asks for: "video", "gif", "frames" (a folder of PNGs) or "image".

    From the extension. A folder of frames is a path ending in a separator, without a
    suffix, or an existing folder whose suffix is not a media extension ("renders.v2").
    Raises OutputError for an extension we cannot write.
    """
    text = os.fspath(path)
    p = Path(text)
    ext = p.suffix.lower()
    if text.endswith((os.sep, "/")) or not ext:
        return "frames"
    if ext in VIDEO_OUTPUT_EXTENSIONS:
        return "video"
    if ext == GIF_EXTENSION:
        return "gif"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if p.is_dir():
        return "frames"
    raise OutputError(f"cannot write {ext!r} files ({p.name})", hint=f"use one of {_known_outputs()}")


def require_image_output(path: str | os.PathLike) -> Path:
    """The path if it names a still picture by its extension, else OutputError listing the
    formats a still is written in (a command that dreams a still refuses .gif or .mp4 at once,
    not after the dream)."""
    kind = output_kind(path)
    if kind != "image":
        what = {"video": "a video", "gif": "an animation", "frames": "a folder"}[kind]
        raise OutputError(f"{Path(path).name} is {what} name, but a dreamed photo is a still picture",
                          hint=f"give it one of the extensions {', '.join(sorted(IMAGE_EXTENSIONS))}")
    return Path(path)


def require_file(path: str | os.PathLike, what: str = "input") -> Path:
    """The path as a Path if it names a readable regular file, else InputError saying what is
    wrong (userfiles.check: a pipe, device or socket is refused before anything opens it)."""
    from dreamvid.userfiles import check

    return check(path, what)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_path(output: str | os.PathLike, *inputs: str | os.PathLike,
                      overwrite: bool = True) -> Path:
    """Resolve an output path and refuse the ones that would fail or destroy an input.

    Refused (OutputError, with a hint): the output is one of `inputs` (same resolved path,
    or the same file through a link), its parent folder is missing or not writable, it
    exists as a folder where a file is expected (or as a file where a folder is), or it
    exists and `overwrite` is False. Returns the resolved absolute path; creates nothing
    (a probe file, at once removed, tells whether the folder takes new files). Stale
    temporary files of this output left by an interrupted run are deleted.
    """
    kind = output_kind(output)
    out = resolved_output(output)
    for inp in inputs:
        src = resolved_output(inp)
        if out == src or _same_file(out, src):
            raise OutputError(f"output {out} is the input file",
                              hint="choose another output name; the input would be overwritten")
    writable_dir_or_raise(out.parent, probe=True)
    remove_stale_temps(out.parent, out.name)
    if out.exists():
        mode = out.stat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # written over by rename: /dev/zero's node replaced
            raise OutputError(f"output {userfiles.shown_path(Path(output).expanduser())} is {userfiles.kind(mode)}, "
                              "which a result cannot be written over",
                              hint="give the name of a new or regular file")
        if kind == "frames" and not out.is_dir():
            raise OutputError(f"output {out} is a file, but a folder of frames was asked for",
                              hint="give a folder path, or a file name with an extension")
        if kind != "frames" and out.is_dir():
            raise OutputError(f"output {out} is an existing folder",
                              hint="give a file name, or a folder path to get PNG frames")
        if not overwrite:
            raise OutputError(f"output {out} already exists",
                              hint="choose another name, or allow overwriting")
    return out


def resolved_output(path: str | os.PathLike) -> Path:
    """The absolute path with links resolved; OutputError for a symlink loop or a path that
    cannot be resolved (Path.resolve raises RuntimeError or OSError for them)."""
    userfiles.check_length(path, "output", OutputError)
    p = Path(path).expanduser()
    try:
        return p.resolve()
    except (RuntimeError, OSError) as e:
        loop = isinstance(e, RuntimeError) or getattr(e, "errno", None) == errno.ELOOP
        raise OutputError(f"{p} is a symlink loop (a link that leads back to itself)" if loop
                          else f"{p} cannot be resolved ({getattr(e, 'strerror', None) or e})",
                          hint="remove the link, or choose another output name") from None


def output_folder(path: str | os.PathLike, what: str = "output folder", hint: str = "give a folder") -> Path:
    """`path` as a folder for results, made if missing (its parent must exist and take new
    files); OutputError naming a path that is a loop, a file, a pipe or a device instead."""
    p = Path(path).expanduser()
    resolved = resolved_output(p)
    if os.path.lexists(resolved) and not resolved.is_dir():
        raise OutputError(f"{what} {p} is {userfiles.kind(os.stat(resolved).st_mode)}, not a folder", hint=hint)
    if not resolved.is_dir():
        writable_dir_or_raise(resolved.parent)
        p.mkdir()
    return p


def temp_sibling(dest: Path, suffix: str = "") -> Path:
    """A unique temporary name in dest's folder (same filesystem, so os.replace is atomic)."""
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}{TEMP_MARK}{suffix}")


class TempFile:
    """A temporary sibling of `dest` (`temp_sibling`), created at once and locked until it is
    committed or discarded, so that `remove_stale_temps` in another process leaves it alone.

    Write to `.path` (any process may: ffmpeg writes our encodes), then `commit()`, or
    `discard()` on failure. OSError if the file cannot be created.
    """

    def __init__(self, dest: str | os.PathLike, suffix: str = ""):
        self.dest = Path(dest)
        self.path = temp_sibling(self.dest, suffix)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        _try_lock(self._fd)

    def commit(self) -> Path:
        """Flush the file, rename it over dest, flush the folder: dest now survives a power loss."""
        os.fsync(self._fd)  # the inode's data, whichever process wrote it
        os.replace(self.path, self.dest)
        self._close()
        fsync_folder(self.dest.parent)
        return self.dest

    def discard(self) -> None:
        """Delete the temporary file (idempotent)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the lock
            self._fd = None


@contextlib.contextmanager
def atomic_destination(dest: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to `dest`; on success move it over `dest` (durably, see
    `TempFile.commit`), else delete it.

    Readers of `dest` see the old file or the complete new one, never a partial one: an
    interrupted render leaves no half-written frame that resume would take as done.
    """
    tmp = TempFile(dest, suffix)
    try:
        yield tmp.path
        tmp.commit()
    except BaseException:
        tmp.discard()
        raise


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows, or an odd file system
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder: nothing more can be done
        pass
    finally:
        os.close(fd)


def _try_lock(fd: int, blocking: bool = False) -> bool | None:
    """flock(LOCK_EX) on fd: True got it, False someone holds it, None locks unavailable here."""
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:  # a file system without flock
        return None
    return True


def remove_stale_temps(folder: str | os.PathLike, name: str | None = None) -> list[str]:
    """Delete stale temporary files (`temp_sibling` names) of `name` in `folder` (of every
    name when None): those no live writer holds locked, or, where files cannot be locked,
    older than STALE_AGE_S. Returns the names deleted. Nothing else is ever touched.
    """
    pattern = re.compile(TEMP_NAME)
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for entry in names:
        m = pattern.fullmatch(entry)
        if m is None or (name is not None and m["dest"] != name):
            continue
        path = Path(folder) / entry
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # gone already, or not ours to read
            continue
        try:
            held = _try_lock(fd)
            if held is None:
                held = time.time() - os.fstat(fd).st_mtime > STALE_AGE_S
            if held:  # we hold it now (or it is old): its writer is gone
                path.unlink()
                removed.append(entry)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def writable_dir_or_raise(folder: Path, what: str = "output folder", probe: bool = False) -> None:
    """OutputError unless `folder` exists and we may create files in it.

    probe: also create and delete a temporary file there, for the folders where the
    permission bits say yes and the file system says no (/proc or /sys as root, a read-only
    mount seen by root, a full quota).
    """
    if not folder.is_dir():
        blocking = next((p for p in (folder, *folder.parents) if os.path.lexists(p)), None)
        if blocking is not None and not blocking.is_dir():  # "mkdir -p" would fail there too
            where = f"{folder} is" if blocking == folder else f"{folder} cannot be made: {blocking} is"
            raise OutputError(f"{what} {where} a file, not a folder", hint="choose an output path inside a folder")
        raise OutputError(f"{what} {folder} does not exist",
                          hint=f"create it first (mkdir -p {folder}) or choose another output path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {folder} is not writable",
                          hint="choose an output path in a folder you can write to")
    if probe:
        try:
            TempFile(folder / ".probe").discard()
        except OSError as e:
            raise OutputError(f"{what} {folder} does not take new files ({e.strerror})",
                              hint="choose an output path in a folder you can write to") from None
