"""Running the ffmpeg bundled with imageio-ffmpeg, and always reaping it.

No system ffmpeg or ffprobe is needed: probing parses `ffmpeg -i` and `-f framecrc`
output, which the bundled build always has.

Every ffmpeg we start (`run`, `popen`; dreamvid does not use imageio-ffmpeg's own
read_frames/write_frames, which take no Popen options) is tied to us on Linux:
- it gets SIGKILL when the thread that started it ends (prctl PR_SET_PDEATHSIG), so a
  dreamvid killed with `kill -9`, or by the out-of-memory killer, leaves no ffmpeg
  running on, still writing a temporary file. Each of our threads reaps the ffmpeg it
  started before it ends, so "the thread ends" means "dreamvid died".
- it runs in its own process group, so a Ctrl-C in the terminal reaches dreamvid only:
  dreamvid stops it itself (`reap`) once the interruption has been handled, instead of
  racing an ffmpeg that quit on its own and looks like a truncated file.
Elsewhere (macOS) only the `finally` blocks reap ffmpeg.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import IO

log = logging.getLogger(__name__)

STDERR_TAIL_CHARS = 4000  # of ffmpeg's stderr kept in an error's `detail`; the cause is at the end
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary that imageio-ffmpeg ships (or IMAGEIO_FFMPEG_EXE)."""
    import imageio_ffmpeg  # imported here so that `import dreamvid.media` stays fast

    return imageio_ffmpeg.get_ffmpeg_exe()


def base_cmd(loglevel: str = "error") -> list[str]:
    """The start of every command: quiet, never reads the terminal, never asks."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", loglevel]


def path_arg(path: str | os.PathLike) -> str:
    """A local path as an ffmpeg URL: absolute, behind "file:".

    Without the prefix a name with a colon ("take:2.mp4") is read as a protocol, and a
    relative name starting with "-" as an option.
    """
    return "file:" + os.path.abspath(os.fspath(path))


def pattern_arg(folder: str | os.PathLike, pattern: str) -> str:
    """An image-sequence input (folder/frame_%05d.png) with any '%' in the folder escaped."""
    return path_arg(folder).replace("%", "%%") + os.sep + pattern


@functools.cache
def _prctl():
    """libc's prctl on Linux, else None. Looked up in the parent: the child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _spawn_options() -> dict:
    """Popen options of every ffmpeg: its own process group, and on Linux SIGKILL when the
    thread that starts it dies."""
    prctl = _prctl()
    if prctl is None:
        return {"process_group": 0} if os.name == "posix" else {}
    parent = os.getpid()

    def setup() -> None:  # runs in the child between fork and exec: no locks, no imports
        os.setpgid(0, 0)
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # we died before the prctl took effect
            os._exit(1)

    return {"preexec_fn": setup}


def run(cmd: Sequence[str]) -> subprocess.CompletedProcess:
    """Run ffmpeg to completion, capturing both streams (bytes). Never raises on its exit code.

    An exception while it runs (Ctrl-C) kills and reaps it (subprocess.run does).
    """
    log.debug("ffmpeg: %s", shlex.join(cmd))
    return subprocess.run(list(cmd), stdin=subprocess.DEVNULL, capture_output=True, check=False,
                          **_spawn_options())


def popen(cmd: Sequence[str], *, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
          bufsize: int = -1) -> tuple[subprocess.Popen, IO[bytes]]:
    """Start ffmpeg with stderr going to a temporary file.

    A file, not a pipe: nobody has to drain it while we read or write frames, so ffmpeg
    can never block on a full stderr pipe however much a corrupt file makes it complain.
    Returns (process, stderr_file); pass both to `reap` in a `finally`.
    """
    log.debug("ffmpeg: %s", shlex.join(cmd))
    err = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen(list(cmd), stdin=stdin, stdout=stdout, stderr=err, bufsize=bufsize,
                                **_spawn_options())
    except BaseException:
        err.close()
        raise
    return proc, err


def reap(proc: subprocess.Popen, *, kill: bool) -> int:
    """Close our ends of the pipes, kill ffmpeg if asked (or still running), wait for it.

    Called from `finally` blocks: after it returns no ffmpeg process or zombie is left.
    """
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:  # a broken pipe while flushing stdin: ffmpeg is gone already
                pass
    if kill and proc.poll() is None:
        proc.kill()
    return proc.wait()


def read_tail(err: IO[bytes], limit: int = STDERR_TAIL_CHARS) -> str:
    """The last `limit` characters of a stderr file from `popen`, and close it."""
    try:
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    finally:
        err.close()
    return text[-limit:]


def tail(data: bytes | str, limit: int = STDERR_TAIL_CHARS) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text[-limit:]


def detail(cmd: Sequence[str], stderr: str) -> str:
    """The `detail` of an error: the command (copy-pasteable) and the end of its stderr."""
    return f"command: {shlex.join(cmd)}\nffmpeg stderr (tail):\n{stderr.strip()}"


def last_line(stderr: str) -> str:
    """ffmpeg's last complaint, usually the one that names the cause."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"
