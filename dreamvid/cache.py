"""dreamvid's own cache folder: what is measured or computed once per machine and reused.

$DREAMVID_CACHE_DIR, else $XDG_CACHE_HOME/dreamvid, else ~/.cache/dreamvid. It holds
`precision.json` (what `--precision auto` measured, dreamvid/precision.py) and `networks/`
(calibration levels and folded weights, models.load). Everything in it is data only (JSON,
and .npz read with allow_pickle=False), checked on read; a damaged or stale entry is
computed again, never trusted, and deleting the folder is always safe.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("dreamvid")

SAMPLE_BYTES = 1 << 20  # bytes hashed from each of the start, middle and end of a weights file
ENV = "DREAMVID_CACHE_DIR"


def cache_dir() -> Path:
    """The cache folder (not created here)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dreamvid"


def file_digest(path: str | Path) -> str:
    """Size, mtime and a SHA-256 of three 1 MiB samples of a file: changes when the file does,
    in milliseconds even for a 500 MB weights file."""
    p = Path(path)
    fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)  # a pipe opens at once instead of blocking
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):  # a pipe or device: never read (OSError, as a missing file is)
        os.close(fd)
        raise OSError(errno.EINVAL, f"{p} is not a regular file")
    h = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}".encode())
    with os.fdopen(fd, "rb") as f:
        for offset in sorted({0, max(0, st.st_size // 2 - SAMPLE_BYTES // 2), max(0, st.st_size - SAMPLE_BYTES)}):
            f.seek(offset)
            h.update(f.read(SAMPLE_BYTES))
    return h.hexdigest()[:32]


def file_key(path: str | os.PathLike) -> tuple:
    """(absolute path, mtime ns, size) of a file: an in-memory cache key that changes when the
    file does; (path, 0, 0) for one that cannot be stat'ed (its reader says what is wrong)."""
    try:
        st = os.stat(path)
        return os.path.abspath(path), st.st_mtime_ns, st.st_size
    except OSError:
        return str(path), 0, 0


def key_digest(key: dict[str, Any]) -> str:
    """A stable file-name-safe digest of a JSON-able key."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


def read_json(path: Path) -> Any:
    """The JSON in `path`, or None if it is missing or unreadable (then it is recomputed)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.info("ignoring the damaged cache file %s: %s", path, e)
        return None


def write_atomic(path: Path, write) -> bool:
    """Write a file through `write(file_object)` into a temporary file renamed onto `path`;
    False (and a debug line) when the cache cannot be written: a cache is never an error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return True
    except OSError as e:
        log.debug("cache not written (%s): %s", path, e)
        return False


def write_json(path: Path, data: Any) -> bool:
    return write_atomic(path, lambda f: f.write(json.dumps(data, indent=1, sort_keys=True).encode()))
