"""File kinds by extension, output-path checks, and atomic writes (temp name + os.replace)."""
from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from dreamvid.errors import InputError, OutputError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".gif"})  # as input
VIDEO_OUTPUT_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".m4v"})  # H.264 + AAC
GIF_EXTENSION = ".gif"
TEMP_MARK = ".dreamvid-tmp"  # in every temporary name, so leftovers are recognisable


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


def require_file(path: str | os.PathLike, what: str = "input") -> Path:
    """The path as a Path if it names a readable file, else InputError saying what is wrong."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{what} {p} does not exist", hint="check the path and its spelling")
    if p.is_dir():
        raise InputError(f"{what} {p} is a folder, not a file", hint="give the path of a file inside it")
    if not os.access(p, os.R_OK):
        raise InputError(f"{what} {p} cannot be read (permission denied)", hint="check the file's permissions")
    return p


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
    exists and `overwrite` is False. Returns the resolved absolute path; creates nothing.
    """
    kind = output_kind(output)
    out = Path(output).expanduser().resolve()
    for inp in inputs:
        src = Path(inp).expanduser().resolve()
        if out == src or _same_file(out, src):
            raise OutputError(f"output {out} is the input file",
                              hint="choose another output name; the input would be overwritten")
    writable_dir_or_raise(out.parent)
    if out.exists():
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


def temp_sibling(dest: Path, suffix: str = "") -> Path:
    """A unique temporary name in dest's folder (same filesystem, so os.replace is atomic)."""
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}{TEMP_MARK}{suffix}")


@contextlib.contextmanager
def atomic_destination(dest: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to `dest`; on success move it over `dest`, else delete it.

    Readers of `dest` see the old file or the complete new one, never a partial one: an
    interrupted render leaves no half-written frame that resume would take as done.
    """
    tmp = temp_sibling(dest, suffix)
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def writable_dir_or_raise(folder: Path, what: str = "output folder") -> None:
    """OutputError unless `folder` exists and we may create files in it."""
    if not folder.is_dir():
        raise OutputError(f"{what} {folder} does not exist",
                          hint=f"create it first (mkdir -p {folder}) or choose another output path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {folder} is not writable",
                          hint="choose an output path in a folder you can write to")
