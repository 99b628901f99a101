"""One way to open a user's file: a regular file only, its size bounded, one clear line otherwise.

Every file a user names (the photo, the video, --mask, --guide, --keyframes, --audio, a
preset, --weights, --model) is checked here before anything reads it:

* `check(path, what)` stats the path (symlinks followed) and refuses what is not a regular
  file BEFORE anything opens it: a named pipe (opening one blocks until a writer comes, so
  ffmpeg or a reader hung for ever), a device (/dev/zero or /dev/urandom read whole is
  gigabytes in seconds, then MemoryError), a socket, a folder; a symlink loop, a dangling
  link, a path through a file, a path too long, no permission. Files handed to ffmpeg or
  a model loader by name are checked this way.
* `read_bytes(path, what, limit)` also opens it non-blocking (a pipe swapped in after the
  check cannot block the open), checks the open file again (fstat: what was opened is
  what is read), and refuses a file larger than `limit` before reading a byte; it never
  reads more than `limit` bytes even if the file grows meanwhile.
* `read_text` is `read_bytes` decoded as UTF-8 (a byte-order mark is allowed), with a
  message that names the encoding a UTF-16 file or a Latin-1 byte gives away.

Errors are InputError (exit 2) whose message names the file and what it is, and whose hint
says what to give instead. Standard library only: presets and keyframes read through here
before OpenCV or TensorFlow load.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Callable

from .errors import DreamvidError, InputError

NAME_MAX = 255  # bytes of one part of a path (Linux, macOS, Windows file systems)
PATH_MAX = 4095  # bytes of a whole path (Linux's PATH_MAX less the NUL)
MAX_TEXT_BYTES = 8 << 20  # a preset is < 1 KB; 8 MiB holds a keyframe for each of 100 000 frames
_CHUNK = 1 << 20  # bytes per read() while reading a bounded file
HEAD_BYTES = 1 << 20  # what read_bytes hands its `head` check first: a picture's header and EXIF fit in it
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
_UTF8_HINT = "save it as UTF-8 (any editor's 'Save as' offers it)"
_REGULAR_HINT = "give the path of a regular file (pipes, devices and sockets cannot be read)"


def kind(mode: int) -> str:
    """What a stat mode is, in words ("a named pipe (FIFO)", "a folder", "a file")."""
    return next((words for test, words in _KINDS if test(mode)), "a file" if stat.S_ISREG(mode)
                else "not a regular file")


def shown_path(p: Path) -> str:
    """The path as a message names it: where a symlink leads as well, when it leads elsewhere."""
    try:
        target = os.path.realpath(p)
    except (OSError, ValueError, RuntimeError):
        return str(p)
    return str(p) if target == os.path.abspath(p) else f"{p} (-> {target})"


def check_length(path: str | os.PathLike, what: str, error: type[DreamvidError] = InputError) -> None:
    """`error` for a path the file system cannot hold: a part longer than NAME_MAX bytes or the
    whole longer than PATH_MAX (os calls raise ENAMETOOLONG, which Path.exists() and is_dir()
    do not catch). Nothing is touched."""
    raw = os.fsencode(Path(path).expanduser())
    longest = max(raw.split(b"/"), key=len, default=b"")
    for part, size, limit in (("a part of the path", len(longest), NAME_MAX), ("the path", len(raw), PATH_MAX)):
        if size > limit:
            raise error(f"{what}: {part} is {size} bytes long, more than the {limit} a file system takes "
                        f"({_short_path(raw)})", hint="give a shorter name")


def _short_path(raw: bytes) -> str:
    text = os.fsdecode(raw)
    return text if len(text) <= 60 else f"{text[:28]}...{text[-28:]}"


def stat_path(path: str | os.PathLike, what: str) -> tuple[Path, os.stat_result]:
    """(path, its os.stat, symlinks followed) or InputError saying why it cannot be reached."""
    check_length(path, what)
    p = Path(path).expanduser()
    try:
        return p, os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            raise InputError(f"{what} {p} is a link to {os.readlink(p)}, which does not exist",
                             hint="point the link at a file, or give the file's own path") from None
        raise InputError(f"{what} {p} does not exist", hint="check the path and its spelling") from None
    except NotADirectoryError:
        raise InputError(f"{what} {p}: a folder on the way ({_file_on_the_way(p)}) is a file",
                         hint="check the path: only its last part can be a file") from None
    except PermissionError:
        raise InputError(f"{what} {p} cannot be reached (permission denied on a folder on the way)",
                         hint="check the folders' permissions") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InputError(f"{what} {p} is a symlink loop (a link that leads back to itself)",
                             hint="point the link at a file, or give the file's own path") from None
        raise InputError(f"{what} {p} cannot be read ({e.strerror or e})", hint="check the path") from None
    except ValueError:  # an embedded NUL byte
        raise InputError(f"{what} {p!r} is not a valid path (it holds a NUL character)",
                         hint="check the path") from None


def _file_on_the_way(p: Path) -> Path:
    """The first part of `p` that exists and is not a folder (for 'a/file.jpg/x')."""
    for parent in reversed(p.parents):
        if parent != Path(".") and os.path.exists(parent) and not os.path.isdir(parent):
            return parent
    return p.parent


def require_regular(p: Path, st: os.stat_result, what: str) -> None:
    """InputError unless `st` (of `p`) is a regular file: a folder, pipe, device or socket is named."""
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what} {shown_path(p)} is a folder, not a file", hint="give the path of a file inside it")
    raise InputError(f"{what} {shown_path(p)} is {kind(st.st_mode)}, not a file", hint=_REGULAR_HINT)


def check(path: str | os.PathLike, what: str = "input") -> Path:
    """The path if it names a regular file (after symlinks) that we may read, else InputError
    naming what it is. Nothing is opened: a pipe or device is refused by its stat."""
    p, st = stat_path(path, what)
    require_regular(p, st, what)
    if not os.access(p, os.R_OK):
        raise InputError(f"{what} {p} cannot be read (permission denied)", hint="check the file's permissions")
    return p


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def read_bytes(path: str | os.PathLike, what: str, limit: int, hint: str | None = None,
               head: Callable[[bytes], int | None] | None = None) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (see the module doc), else InputError.
    hint: what to do about a file over the limit. head(the first HEAD_BYTES): called before the
    rest is read; it may refuse the file (raise) or return a tighter limit (a picture's header
    says how large its file can be), so a file is judged by its header before it is read whole."""
    p = check(path, what)
    try:  # O_NONBLOCK: a pipe put in its place after the check opens at once instead of blocking
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise InputError(f"{what} {p} cannot be opened ({e.strerror or e})", hint="check the file") from None
    try:
        st = os.fstat(fd)
        require_regular(p, st, what)  # what was opened, not what was stat'ed a moment ago
        too_big = InputError(f"{what} {p} is {_size(st.st_size)}, more than the {_size(limit)} a {what} may be",
                             hint=hint or "check that this is the file you meant")
        if st.st_size > limit:
            raise too_big
        chunks, total = [], 0
        if head is not None:
            chunks.append(_read_upto(fd, HEAD_BYTES))
            total = len(chunks[0])
            tighter = head(chunks[0])
            if tighter is not None and st.st_size > tighter:
                raise InputError(f"{what} {p} is {_size(st.st_size)}, more than its header allows "
                                 f"({_size(tighter)})", hint=hint or "check that this is the file you meant")
        while True:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew while we read
                raise too_big
        return b"".join(chunks)
    except OSError as e:
        raise InputError(f"{what} {p} cannot be read ({e.strerror or e})", hint="check the file") from None
    finally:
        os.close(fd)


def _read_upto(fd: int, n: int) -> bytes:
    """Up to n bytes from fd (fewer only at the end of the file)."""
    parts, got = [], 0
    while got < n:
        part = os.read(fd, n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def read_text(path: str | os.PathLike, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """A bounded text file (read_bytes) decoded as UTF-8, a byte-order mark allowed; InputError
    naming the encoding it seems to be in otherwise."""
    data = read_bytes(path, what, limit, hint="a text file this large is not a preset or keyframes file")
    return decode_utf8(data, f"{what} {Path(path)}")


def decode_utf8(data: bytes, where: str) -> str:
    """`data` as UTF-8 text (a leading BOM dropped), or InputError naming `where` and the encoding."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError(f"{where} is UTF-16 text, not UTF-8", hint=_UTF8_HINT)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(f"{where} is not UTF-8 text (byte 0x{data[e.start]:02x} on line {line}; Latin-1 or "
                         "another 8-bit encoding?)", hint=_UTF8_HINT) from None
