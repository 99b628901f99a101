"""What a request may bring in, checked before anything decodes it.

An upload is streamed to DATA/uploads/<token>/<name>, counting bytes (over the limit: refused
and removed at once, never buffered whole). Its name is sanitised (`safe_name`): the request
never chooses a folder, and the extension must be one we read. Then the file's header is
read, not its pixels: an image whose header claims more than `max_pixels` (a decompression
bomb: a few KB of PNG that decode to 10 GB) or a clip larger than that per frame, or longer
than MAX_FRAMES, is refused before any decoder sees it. Every path built from a request's
words goes through `inside(root, ...)`, which resolves it and refuses what leaves `root`.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..media.paths import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

DEFAULT_MAX_UPLOAD_MB = 200  # MB; a minute of 1080p H.264 is ~100 MB, a photo a few MB
DEFAULT_MAX_PIXELS = 50_000_000  # px per picture or frame at upload (an 8K frame is 33 MP); stricter than the reader's 250 MP
MAX_FRAMES = 36_000  # frames of an uploaded clip: 20 minutes at 30 fps, more is not a studio job
MAX_NAME = 80  # characters of a stored file's stem
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")  # what secrets.token_urlsafe makes; ids never hold a dot or slash


class UploadRefused(InputError):
    """An upload or a request path that is refused; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400, hint: str | None = None, key: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status
        self.key = key  # the field of the page it concerns, if one


@dataclass(frozen=True)
class Upload:
    """A checked upload: its token, stored file, kind ("image" or "video") and size in px."""

    token: str
    path: Path
    kind: str
    width: int
    height: int
    frames: int = 1

    def to_dict(self) -> dict:
        return {"upload": self.token, "name": self.path.name, "kind": self.kind, "width": self.width,
                "height": self.height, "frames": self.frames}


def new_token() -> str:
    """A random id for a job or an upload: 128 bits, URL-safe, server-made."""
    return secrets.token_urlsafe(16)


def check_token(token: str) -> str:
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        raise UploadRefused("no such job or upload", status=404)
    return token


def inside(root: Path, *parts: str) -> Path:
    """root/parts resolved, or UploadRefused(404) when the result is not inside root
    (`..`, an absolute part, a link that points out)."""
    base = Path(root).resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and not path.is_relative_to(base):
        raise UploadRefused("no such file", status=404)
    return path


def safe_name(name: str) -> str:
    """A client's file name as a plain name to store: the last path part only, NFKC-normalised,
    characters outside [A-Za-z0-9._-] replaced, no leading dot, the stem cut to MAX_NAME,
    the extension lower-cased. UploadRefused(415) unless the extension is an image or a clip."""
    base = re.split(r"[\\/]", str(name or ""))[-1]
    base = unicodedata.normalize("NFKC", base)
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    stem, ext = os.path.splitext(base)
    ext = ext.lower()
    if ext not in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
        known = ", ".join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))
        raise UploadRefused(f"cannot dream {ext or 'files without an extension'!r} files", status=415,
                            hint=f"upload one of {known}")
    stem = stem.strip("._") or "upload"
    return stem[:MAX_NAME] + ext


class Sink:
    """Where an upload's bytes go as they arrive: a file, closed and removed on any refusal."""

    def __init__(self, folder: Path, name: str, limit_bytes: int):
        self.name = safe_name(name)
        self.token = new_token()
        self.folder = inside(folder, self.token)
        self.folder.mkdir(parents=True)
        self.path = self.folder / self.name
        self.limit = limit_bytes
        self.size = 0
        self._file = open(self.path, "xb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            self.discard()
            raise too_large(self.limit)
        self._file.write(chunk)

    def close(self) -> Path:
        self._file.close()
        return self.path

    def discard(self) -> None:
        self._file.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def too_large(limit_bytes: int) -> UploadRefused:
    return UploadRefused(f"the upload is larger than {limit_bytes / 1e6:g} MB", status=413,
                         hint="start the server with a larger --max-upload-mb, or upload a smaller file")


def check_upload(path: Path, token: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Upload:
    """The upload at `path` as an Upload, its header checked against the limits (nothing is
    decoded); UploadRefused (415 wrong type, 413 too large) otherwise."""
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        width, height = image_header(path)
        frames = 1
    else:
        width, height, frames = video_header(path)
    if width * height > max_pixels:
        raise UploadRefused(f"the picture is {width}x{height} px, more than the {max_pixels / 1e6:g} MP allowed",
                            status=413, hint="downscale it first, or start the server with a larger --max-pixels")
    if frames > MAX_FRAMES:
        raise UploadRefused(f"the clip has {frames} frames, more than the {MAX_FRAMES} allowed", status=413,
                            hint="cut it into shorter parts")
    kind = "image" if path.suffix.lower() in IMAGE_EXTENSIONS else "video"
    return Upload(token, path, kind, width, height, frames)


def image_header(path: Path) -> tuple[int, int]:
    """(width, height) from the image's header (media.images.header_size), nothing decoded."""
    from ..media import images

    data = path.read_bytes()  # at most the upload limit; a TIFF's header may sit at its end
    kind = images._sniff(data)  # the format from the magic bytes, as the reader decides it
    size = images.header_size(kind, data) if kind else None
    if size is None:
        raise UploadRefused(f"{path.name} is not a complete JPEG, PNG, WebP, BMP or TIFF image", status=415,
                            hint="upload a photo, or a clip with a video extension")
    return size


def video_header(path: Path) -> tuple[int, int, int]:
    """(width, height, frames) of a clip from its container (ffmpeg's probe), nothing decoded."""
    from .. import media

    try:
        info = media.probe_video(path)
    except InputError as e:
        raise UploadRefused(f"{path.name} is not a video we can read ({e.message})", status=415,
                            hint="upload an mp4, mov, mkv, webm, avi or gif clip") from None
    return info.width, info.height, info.n_frames
