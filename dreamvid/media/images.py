"""Still images: read (any depth, alpha, EXIF orientation, truncation refused) and write atomically.

Decoding is OpenCV's `imdecode(IMREAD_UNCHANGED)` on the file's bytes (keeps 16-bit and
alpha, and works for any path). That flag ignores EXIF orientation for JPEG, PNG and
WebP, so we read the tag ourselves and apply it; OpenCV's TIFF decoder always applies it.
A truncated JPEG decodes "successfully" with a grey bottom, so before decoding we walk
the file's structure: JPEG markers up to EOI, PNG chunks (and their CRC-32s) up to IEND,
the RIFF size of WebP. `png_problem` is the same walk for the frames of a work folder.
"""
from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from dreamvid.errors import InputError, OutputError
from dreamvid.media.paths import IMAGE_EXTENSIONS, atomic_destination, require_file, writable_dir_or_raise

log = logging.getLogger(__name__)

JPEG_QUALITY = 95  # visually lossless for dream textures; 100 doubles the size for nothing visible
WEBP_QUALITY = 95
PNG_COMPRESSION = 3  # zlib level: about twice as fast as 6, files a few % larger
ALPHA_EXTENSIONS = frozenset({".png", ".webp", ".tif", ".tiff"})  # formats that keep an alpha channel
ORIENTATION_TAG = 0x0112  # EXIF/TIFF "Orientation"


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a still as (H, W, 3) uint8 RGB, upright (EXIF orientation applied).

    Grayscale becomes 3 equal channels; 16-bit is scaled to 8-bit (x / 257, rounded);
    an alpha channel is dropped, colour kept as stored (see `read_image_alpha`).
    InputError: missing, a folder, not an image, or truncated/corrupt.
    """
    return read_image_alpha(path)[0]


def read_image_alpha(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a still as (rgb, alpha): rgb (H, W, 3) uint8, alpha (H, W) uint8 or None.

    alpha is None when the file has no alpha channel or it is fully opaque. rgb is the
    colour as stored (not composited), so `write_image(out, rgb, alpha)` puts it back.
    """
    p = require_file(path, "image")
    data = p.read_bytes()
    kind = _sniff(data)
    if kind is None:
        raise InputError(f"{p} is not an image we can read",
                         hint=f"give a {'/'.join(sorted(e[1:] for e in IMAGE_EXTENSIONS))} file")
    problem = _damage(kind, data)
    if problem:
        raise InputError(f"{p} is truncated or corrupt ({kind.upper()} data {problem})",
                         hint="the file was probably cut off or damaged while copying or downloading; "
                              "get a complete copy")
    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.size == 0:
        raise InputError(f"{p} could not be decoded as {kind.upper()}",
                         hint="the file may be corrupt; try opening and re-saving it in an image editor")
    rgb, alpha = _to_rgb8(raw)
    if kind != "tiff":  # OpenCV's TIFF decoder has already turned it upright
        orientation = _orientation(kind, data)
        rgb, alpha = _orient(rgb, orientation), (None if alpha is None else _orient(alpha, orientation))
    if alpha is not None and alpha.min() == 255:
        alpha = None
    return np.ascontiguousarray(rgb), (None if alpha is None else np.ascontiguousarray(alpha))


def write_image(path: str | os.PathLike, image: np.ndarray, alpha: np.ndarray | None = None) -> Path:
    """Write (H, W, 3) uint8 RGB to path, format from the extension; returns the Path.

    alpha: optional (H, W) uint8, kept for PNG, WebP and TIFF, dropped for JPEG and BMP.
    Atomic: encoded in memory, written to a temporary name in the same folder, then
    renamed, so the path never holds a partial image. JPEG/WebP quality 95.
    OutputError: unknown extension, missing or unwritable folder, image too large for the format.
    """
    p = Path(path).expanduser()
    ext = p.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise OutputError(f"cannot write images as {ext or 'files without an extension'!r} ({p.name})",
                          hint=f"use one of {', '.join(sorted(IMAGE_EXTENSIONS))}")
    _check_rgb(image)
    writable_dir_or_raise(p.parent)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if alpha is not None:
        if alpha.shape != image.shape[:2] or alpha.dtype != np.uint8:
            raise ValueError(f"alpha must be (H, W) uint8 matching the image, got {alpha.shape} {alpha.dtype}")
        if ext in ALPHA_EXTENSIONS:
            bgr = np.dstack([bgr, alpha])
        else:
            log.debug("%s cannot hold alpha; writing %s without it", ext, p.name)
    params = {".jpg": [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY], ".jpeg": [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY],
              ".webp": [cv2.IMWRITE_WEBP_QUALITY, WEBP_QUALITY],
              ".png": [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]}.get(ext, [])
    try:
        ok, buf = cv2.imencode(ext, bgr, params)
    except cv2.error as e:  # e.g. WebP is limited to 16383 px a side
        ok, buf = False, str(e)
    if not ok:
        h, w = image.shape[:2]
        raise OutputError(f"could not encode a {w}x{h} image as {ext}",
                          hint="use PNG or TIFF for very large images", detail=str(buf))
    try:
        with atomic_destination(p) as tmp, open(tmp, "wb") as f:
            f.write(buf.tobytes())
    except PermissionError as e:
        raise OutputError(f"cannot write {p} (permission denied)",
                          hint="choose an output path in a folder you can write to") from e
    except OSError as e:
        raise OutputError(f"cannot write {p}: {e.strerror}", hint="check free disk space and the path") from e
    return p


def _check_rgb(image: np.ndarray) -> None:
    """Programming errors, not user errors: a wrong array is a bug in the caller."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {desc}")


# --- decoding helpers -------------------------------------------------------------------

def _to_rgb8(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """OpenCV's unchanged decode (gray/BGR/BGRA, 8/16-bit/float) -> (RGB uint8, alpha uint8|None)."""
    if raw.dtype == np.uint16:
        raw = ((raw.astype(np.uint32) + 128) // 257).astype(np.uint8)  # 65535 -> 255, scaled not truncated
    elif raw.dtype.kind == "f":
        raw = np.clip(np.nan_to_num(raw) * 255.0 + 0.5, 0, 255).astype(np.uint8)  # float images are 0..1
    elif raw.dtype != np.uint8:
        raise InputError(f"unsupported pixel type {raw.dtype}", hint="convert the image to 8- or 16-bit")
    if raw.ndim == 2:
        return np.repeat(raw[:, :, None], 3, axis=2), None
    channels = raw.shape[2]
    if channels == 1:
        return np.repeat(raw, 3, axis=2), None
    if channels == 2:  # gray + alpha
        return np.repeat(raw[:, :, :1], 3, axis=2), raw[:, :, 1]
    if channels == 3:
        return cv2.cvtColor(raw, cv2.COLOR_BGR2RGB), None
    return cv2.cvtColor(raw[:, :, :3], cv2.COLOR_BGR2RGB), raw[:, :, 3]


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation 1..8 (how the stored pixels must be turned to be upright)."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return a.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(a, -1)  # 90 degrees clockwise
    if orientation == 7:
        return a[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(a, 1)
    return a


def _sniff(data: bytes) -> str | None:
    """The format from the magic bytes (the extension may lie)."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # TIFF, BigTIFF
        return "tiff"
    if data[:2] == b"BM":
        return "bmp"
    return None


def _damage(kind: str, data: bytes) -> str | None:
    """What is wrong with a file's structure ("ends early", ...), or None if it looks whole."""
    if kind == "jpeg":
        return None if _jpeg_complete(data) else "ends early"
    if kind == "png":
        return _png_damage(data)
    if kind == "webp":
        return None if struct.unpack("<I", data[4:8])[0] + 8 <= len(data) else "ends early"
    return None  # BMP and TIFF: OpenCV's decoders fail on short data themselves


def png_problem(path: str | os.PathLike, *, decode: bool = False) -> str | None:
    """None if `path` is a whole, intact PNG, else what is wrong with it, as words that follow
    its name ("is missing", "is cut short", "is damaged (chunk IDAT fails its CRC check)").

    The check walks the chunks to IEND and verifies every chunk's CRC-32: a truncated file
    and any flipped bit fail it, about 0.15 ms for a 512x384 frame. `decode` also decodes
    the pixels (about 6 ms), which catches a file that is intact but was written wrong.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return "is missing"
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if _sniff(data) != "png":
        return "is not a PNG image"
    problem = _png_damage(data)
    if problem:
        return "is cut short" if problem == "ends early" else f"is damaged ({problem})"
    if decode and cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) is None:
        return "is damaged (it does not decode)"
    return None


def _png_damage(data: bytes) -> str | None:
    """Walk a PNG's chunks: None when they end with IEND and every CRC-32 matches."""
    i, n, view = 8, len(data), memoryview(data)
    while i + 8 <= n:
        length, ctype = struct.unpack(">I4s", data[i:i + 8])
        end = i + 12 + length
        if end > n:
            return "ends early"
        if zlib.crc32(view[i + 4:end - 4]) != struct.unpack(">I", data[end - 4:end])[0]:
            return f"chunk {ctype.decode('latin-1')!r} fails its CRC check"
        if ctype == b"IEND":
            return None
        i = end
    return "ends early"


def _jpeg_complete(data: bytes) -> bool:
    """Walk the JPEG markers; True when an EOI marker ends the image.

    Scanning for FFD9 alone is not enough: the EXIF thumbnail is a whole JPEG with its own
    EOI. Inside entropy-coded data 0xFF is always followed by 00 (stuffing) or a restart
    marker, so the first other marker after a scan is real.
    """
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            return False
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            return False
        marker = data[i]
        i += 1
        if marker == 0xD9:
            return True
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers
            continue
        if i + 2 > n:
            return False
        i += struct.unpack(">H", data[i:i + 2])[0]
        if marker == 0xDA:  # start of scan: skip the entropy-coded data
            while True:
                j = data.find(b"\xff", i)
                if j < 0 or j + 1 >= n:
                    return False
                nxt = data[j + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    i = j + 1
                    continue
                i = j
                break
    return False


def _png_chunks(data: bytes) -> tuple[dict[bytes, bytes], bool]:
    """({chunk type: data of its first occurrence} for small chunks, ends with IEND)."""
    chunks: dict[bytes, bytes] = {}
    i, n = 8, len(data)
    while i + 8 <= n:
        length, ctype = struct.unpack(">I4s", data[i:i + 8])
        end = i + 12 + length
        if end > n:
            return chunks, False
        if ctype == b"IEND":
            return chunks, True
        if ctype != b"IDAT":
            chunks.setdefault(ctype, data[i + 8:i + 8 + length])
        i = end
    return chunks, False


def _orientation(kind: str, data: bytes) -> int:
    """EXIF orientation (1..8, 1 = as stored) from JPEG APP1, PNG eXIf or WebP EXIF."""
    blob = b""
    if kind == "jpeg":
        blob = _jpeg_exif(data)
    elif kind == "png":
        blob = _png_chunks(data)[0].get(b"eXIf", b"")
    elif kind == "webp":
        i = 12
        while i + 8 <= len(data):
            fourcc, size = struct.unpack("<4sI", data[i:i + 8])
            if fourcc == b"EXIF":
                blob = data[i + 8:i + 8 + size]
                break
            i += 8 + size + (size & 1)
    if blob.startswith(b"Exif\x00\x00"):
        blob = blob[6:]
    return _tiff_orientation(blob)


def _jpeg_exif(data: bytes) -> bytes:
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker in (0xDA, 0xD9):  # metadata comes before the first scan
            break
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker == 0xE1 and data[i + 4:i + 10] == b"Exif\x00\x00":
            return data[i + 4:i + 2 + length]
        i += 2 + length
    return b""


def _tiff_orientation(tiff: bytes) -> int:
    """The Orientation entry of the first IFD of a TIFF-structured EXIF blob, else 1."""
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        (ifd,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
        for k in range(count):
            entry = ifd + 2 + 12 * k
            tag, typ, _ = struct.unpack(order + "HHI", tiff[entry:entry + 8])
            if tag == ORIENTATION_TAG and typ == 3:  # SHORT
                (value,) = struct.unpack(order + "H", tiff[entry + 8:entry + 10])
                return value if 1 <= value <= 8 else 1
    except (KeyError, struct.error):
        pass
    return 1
