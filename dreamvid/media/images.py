"""Still images: read (any depth, alpha, EXIF orientation, truncation refused) and write atomically.

Decoding is OpenCV's `imdecode(IMREAD_UNCHANGED)` on the file's bytes (keeps 16-bit and
alpha, and works for any path). That flag ignores EXIF orientation for JPEG, PNG and
WebP, so we read the tag ourselves and apply it; OpenCV's TIFF decoder always applies it.
A truncated JPEG decodes "successfully" with a grey bottom, so before decoding we walk
the file's structure: JPEG markers up to EOI, PNG chunks (and their CRC-32s) up to IEND,
the RIFF size of WebP. `png_problem` is the same walk for the frames of a work folder.

Decompression bombs: a 254-byte PNG can claim 50000x50000 px (7.5 GB of pixels). The size
is read from the header first (`header_size`, no decoding) and a picture of more than
`max_pixels()` pixels is refused with InputError before any memory is spent; the limit
(DEFAULT_MAX_PIXELS) is raised with the environment variable DREAMVID_MAX_PIXELS or the
`max_pixels` argument. With `max_size`, a JPEG is decoded already reduced by 2, 4 or 8 in
its DCT (OpenCV's IMREAD_REDUCED_*, still at least max_size), and every picture is shrunk
in its own 8 or 16 bits before anything else: memory follows the output size, not the
photo's (an 11000x11000 JPEG with max_size 160 peaks at the JPEG file, not 2.5 GB).
"""
from __future__ import annotations

import logging
import os
import shlex
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from dreamvid.errors import InputError, OutputError, SettingsError
from dreamvid.media.paths import IMAGE_EXTENSIONS, atomic_destination, writable_dir_or_raise
from dreamvid.userfiles import read_bytes

log = logging.getLogger(__name__)

JPEG_QUALITY = 95  # visually lossless for dream textures; 100 doubles the size for nothing visible
WEBP_QUALITY = 95
# zlib level 1 with run-length matching (Z_RLE) instead of level 3's full search; the pixels are the
# same. Measured (2 cores): a 320x180 noisy (dream-like) frame 3.3 vs 5.7 ms and 5% smaller, a bunny
# frame 3.4 vs 5.9 ms and 7% larger, a 1280x720 photo 49 vs 83 ms and 4% smaller. A video's work
# folder writes one a frame: --cadence 3 spent more time on its PNGs than on building the frames between.
PNG_COMPRESSION = 1
PNG_STRATEGY = cv2.IMWRITE_PNG_STRATEGY_RLE
ALPHA_EXTENSIONS = frozenset({".png", ".webp", ".tif", ".tiff"})  # formats that keep an alpha channel
ORIENTATION_TAG = 0x0112  # EXIF/TIFF "Orientation"
DEFAULT_MAX_PIXELS = 250_000_000  # above the largest camera sensors (200 MP), far below a bomb's claim
MAX_PIXELS_ENV = "DREAMVID_MAX_PIXELS"
BYTES_PER_PIXEL = 8  # the most an image file spends on a pixel: uncompressed 16-bit RGBA (TIFF, BMP, PNG level 0)
METADATA_BYTES = 64 << 20  # EXIF, ICC profiles, thumbnails, XMP: far below this in any camera's files
JPEG_REDUCTIONS = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


def read_image(path: str | os.PathLike, *, max_size: int | None = None, max_pixels: int | None = None) -> np.ndarray:
    """Read a still as (H, W, 3) uint8 RGB, upright (EXIF orientation applied).

    Grayscale becomes 3 equal channels; 16-bit is scaled to 8-bit (x / 257, rounded);
    an alpha channel is dropped, colour kept as stored (see `read_image_alpha`).
    max_size: shrink so the longest side is at most this (px; the size `dream.fit_max_size`
    gives), while decoding. max_pixels: refuse larger pictures (default `max_pixels()`).
    InputError: missing, a folder, not an image, truncated/corrupt, or too many pixels.
    """
    return read_image_alpha(path, max_size=max_size, max_pixels=max_pixels)[0]


def read_image_alpha(path: str | os.PathLike, *, max_size: int | None = None,
                     max_pixels: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a still as (rgb, alpha): rgb (H, W, 3) uint8, alpha (H, W) uint8 or None.

    alpha is None when the file has no alpha channel or it is fully opaque. rgb is the
    colour as stored (not composited), so `write_image(out, rgb, alpha)` puts it back.
    max_size, max_pixels: as for `read_image` (alpha is shrunk with the colour).
    """
    p = Path(path).expanduser()
    data = read_bytes(p, "image", max_file_bytes(max_pixels), head=lambda head: _judge_head(p, head, max_pixels),
                      hint=f"if the picture is real, raise the limit with {MAX_PIXELS_ENV}")
    kind = _sniff(data)  # an image: _judge_head refused anything else
    problem = _damage(kind, data)
    if problem:
        raise InputError(f"{p} is truncated or corrupt ({kind.upper()} data {problem})",
                         hint="the file was probably cut off or damaged while copying or downloading; "
                              "get a complete copy")
    size = header_size(kind, data)
    _check_pixels(p, size, max_pixels)
    raw = _decode(p, kind, data, size, max_size)
    rgb, alpha = _to_rgb8(raw)
    if kind != "tiff":  # OpenCV's TIFF decoder has already turned it upright
        orientation = _orientation(kind, data)
        rgb, alpha = _orient(rgb, orientation), (None if alpha is None else _orient(alpha, orientation))
    if alpha is not None and alpha.min() == 255:
        alpha = None
    return np.ascontiguousarray(rgb), (None if alpha is None else np.ascontiguousarray(alpha))


def _judge_head(p: Path, head: bytes, max_pixels: int | None) -> int | None:
    """Before the file is read whole: InputError if its first bytes are not an image (empty, a
    GIF or video, anything else) or its header claims too many pixels; else the most bytes a
    file of its size can hold (None: the size is not in the head, as in some TIFFs)."""
    kind = _sniff(head)
    if kind is None:
        if not head:
            raise InputError(f"{p} is empty (0 bytes)", hint="the file was not written or copied completely")
        if head[:6] in (b"GIF87a", b"GIF89a") or _looks_like_video(head):
            raise InputError(f"{p} is a GIF or video, which `dreamvid image` does not read",
                             hint=f"dream it frame by frame with `dreamvid video {shlex.quote(os.fspath(p))}`")
        raise InputError(f"{p} is not an image we can read",
                         hint=f"give a {'/'.join(sorted(e[1:] for e in IMAGE_EXTENSIONS))} file")
    size = header_size(kind, head)
    if size is None:
        return None
    _check_pixels(p, size, max_pixels)
    return size[0] * size[1] * BYTES_PER_PIXEL + METADATA_BYTES


# libpng prints "libpng warning: iCCP: known incorrect sRGB profile" (and the like) straight
# to stderr, past every log setting, for profiles many editors write. dreamvid does not use
# colour profiles (pixels are taken as sRGB), so these chunks are dropped before decoding.
PNG_SILENCED_CHUNKS = (b"iCCP", b"sRGB", b"cHRM", b"gAMA")


def without_png_chunks(data: bytes, names: tuple[bytes, ...]) -> bytes:
    """The PNG byte stream without the ancillary chunks `names` (the rest byte for byte).
    Anything that does not parse as chunks is returned as it is, for the decoder to judge."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return data
    out, pos = [data[:8]], 8
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        end = pos + 12 + length
        if end > len(data):
            return data
        if data[pos + 4:pos + 8] not in names:
            out.append(data[pos:end])
        if data[pos + 4:pos + 8] == b"IEND":
            return b"".join(out)
        pos = end
    return data


def _looks_like_video(data: bytes) -> bool:
    """mp4/mov (an "ftyp" box), Matroska/WebM (EBML), AVI (RIFF....AVI ): what a user might hand `image`."""
    return data[4:8] == b"ftyp" or data[:4] == b"\x1a\x45\xdf\xa3" or (data[:4] == b"RIFF" and data[8:12] == b"AVI ")


def max_pixels() -> int:
    """The largest picture read, in pixels: $DREAMVID_MAX_PIXELS, else DEFAULT_MAX_PIXELS."""
    return pixel_limit(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS)


def pixel_limit(env: str, default: int) -> int:
    """A pixel limit: the environment variable `env` (a number of pixels), else `default`.
    SettingsError naming the variable for anything that is not a number from 1 to 2**62."""
    text = os.environ.get(env, "").strip()
    if not text:
        return default
    from ..numeric import literal, shown

    try:
        value = literal(text, env)
    except SettingsError:
        value = None
    if value is None or not 1 <= value < 2 ** 62:
        raise SettingsError(f"{env} must be a number of pixels (got {shown(text)})",
                            hint=f"e.g. {env}={default * 2}, or unset it for {default // 1_000_000} megapixels")
    return int(value)


def max_file_bytes(limit: int | None = None) -> int:
    """The largest image file read, in bytes: an uncompressed 16-bit RGBA picture of the pixel
    limit (8 bytes a pixel) and room for its metadata. Checked before a byte is read."""
    return (max_pixels() if limit is None else limit) * BYTES_PER_PIXEL + METADATA_BYTES


def _check_pixels(p: Path, size: tuple[int, int] | None, limit: int | None) -> None:
    if size is None:
        return
    w, h = size
    if w <= 0 or h <= 0:
        raise InputError(f"{p} is corrupt (its header says {w}x{h} px)",
                         hint="try opening and re-saving it in an image editor")
    limit = max_pixels() if limit is None else limit
    if w * h > limit:
        raise InputError(f"{p} claims {w}x{h} px ({w * h / 1e6:.0f} megapixels), more than the limit of "
                         f"{limit / 1e6:.0f} megapixels",
                         hint=f"if the picture is real, raise the limit: {MAX_PIXELS_ENV}={w * h}")


def _decode(p: Path, kind: str, data: bytes, size: tuple[int, int] | None, max_size: int | None) -> np.ndarray:
    """OpenCV's decode (unchanged depth and channels), shrunk to max_size as early as possible."""
    flags = cv2.IMREAD_UNCHANGED
    if max_size and size and kind == "jpeg":  # decode at 1/2, 1/4 or 1/8 in the DCT: never below max_size
        flags = next((f | cv2.IMREAD_IGNORE_ORIENTATION for k, f in JPEG_REDUCTIONS
                      if max(size) / k >= max_size), flags)
    if kind == "png":
        data = without_png_chunks(data, PNG_SILENCED_CHUNKS)
    try:
        raw = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as e:  # e.g. over OpenCV's own pixel limit (OPENCV_IO_MAX_IMAGE_PIXELS)
        raise InputError(f"{p} could not be decoded as {kind.upper()} ({_first_line(e)})",
                         hint="the file may be corrupt or too large; try a smaller copy") from None
    except MemoryError:
        w, h = size or ("?", "?")
        raise InputError(f"not enough memory to decode {p} ({w}x{h} px)",
                         hint="use a smaller copy of it") from None
    if raw is None or raw.size == 0:
        raise InputError(f"{p} could not be decoded as {kind.upper()}",
                         hint="the file may be corrupt; try opening and re-saving it in an image editor")
    if max_size:  # a reduced JPEG is sized from the full size, for the same rounding as a full decode
        w, h = size if flags != cv2.IMREAD_UNCHANGED else raw.shape[1::-1]
        target = _fitted(w, h, max_size)
        if raw.shape[1::-1] != target:
            raw = cv2.resize(raw, target, interpolation=cv2.INTER_AREA)
    return raw


def _fitted(w: int, h: int, max_size: int) -> tuple[int, int]:
    """(w, h) with the longest side limited to max_size: the same rounding as dream.fit_max_size."""
    if max(w, h) <= max_size:
        return w, h
    scale = max_size / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[-1][:160] if lines else type(e).__name__


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
    return write_encoded(p, encode_image(image, ext, alpha))


def encode_image(image: np.ndarray, ext: str = ".png", alpha: np.ndarray | None = None) -> bytes:
    """The bytes write_image writes: (H, W, 3) uint8 RGB (and (H, W) uint8 alpha) encoded as
    `ext` (".png", ".jpg", ...). For a process that encodes where another one writes (a
    cluster's workers, cluster.py). OutputError: an image too large for the format."""
    _check_rgb(image)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if alpha is not None:
        if alpha.shape != image.shape[:2] or alpha.dtype != np.uint8:
            raise ValueError(f"alpha must be (H, W) uint8 matching the image, got {alpha.shape} {alpha.dtype}")
        if ext in ALPHA_EXTENSIONS:
            bgr = np.dstack([bgr, alpha])
        else:
            log.debug("%s cannot hold alpha; writing without it", ext)
    params = {".jpg": [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY], ".jpeg": [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY],
              ".webp": [cv2.IMWRITE_WEBP_QUALITY, WEBP_QUALITY],
              ".png": [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION,
                       cv2.IMWRITE_PNG_STRATEGY, PNG_STRATEGY]}.get(ext, [])
    try:
        ok, buf = cv2.imencode(ext, bgr, params)
    except cv2.error as e:  # e.g. WebP is limited to 16383 px a side
        ok, buf = False, str(e)
    if not ok:
        h, w = image.shape[:2]
        raise OutputError(f"could not encode a {w}x{h} image as {ext}",
                          hint="use PNG or TIFF for very large images", detail=str(buf))
    return buf.tobytes()


def write_encoded(path: str | os.PathLike, data: bytes) -> Path:
    """Write an encoded image (encode_image's bytes) to path, atomically; returns the Path."""
    p = Path(path).expanduser()
    try:
        with atomic_destination(p) as tmp, open(tmp, "wb") as f:
            f.write(data)
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


def header_size(kind: str, data: bytes) -> tuple[int, int] | None:
    """(width, height) as stored, from the header alone (nothing decoded); None if not found."""
    try:
        if kind == "png" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if kind == "jpeg":
            return _jpeg_size(data)
        if kind == "webp":
            return _webp_size(data)
        if kind == "bmp":
            if struct.unpack("<I", data[14:18])[0] == 12:  # BITMAPCOREHEADER
                return struct.unpack("<HH", data[18:22])
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)  # a negative height means top-down rows
        if kind == "tiff":
            return _tiff_size(data)
    except struct.error:  # shorter than its header: the decoder will say so
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """From the first SOFn segment (baseline, progressive, lossless, arithmetic: C0..CF but C4, C8, CC)."""
    i = 2
    while i + 9 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return (w, h) if h else None  # height 0: given later by a DNL marker
        if marker in (0xDA, 0xD9):
            return None
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    fourcc = data[12:16]
    if fourcc == b"VP8X":  # extended: 24-bit canvas size minus one
        return (int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1)
    if fourcc == b"VP8L":  # lossless: 14 bits each, minus one
        bits = struct.unpack("<I", data[21:25])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if fourcc == b"VP8 ":  # lossy: after the frame tag and start code
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first IFD, TIFF or BigTIFF."""
    order = {b"II": "<", b"MM": ">"}[data[:2]]
    big = struct.unpack(order + "H", data[2:4])[0] == 43
    if big:
        (ifd,) = struct.unpack(order + "Q", data[8:16])
        (count,) = struct.unpack(order + "Q", data[ifd:ifd + 8])
        first, entry_size, value_at = ifd + 8, 20, 12
    else:
        (ifd,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[ifd:ifd + 2])
        first, entry_size, value_at = ifd + 2, 12, 8
    found = {}
    for k in range(min(count, 4096)):
        entry = first + entry_size * k
        tag, typ = struct.unpack(order + "HH", data[entry:entry + 4])
        if tag in (256, 257):
            fmt = {3: "H", 4: "I", 16: "Q"}.get(typ)
            if fmt is None:
                return None
            (found[tag],) = struct.unpack_from(order + fmt, data, entry + value_at)
    return (found[256], found[257]) if len(found) == 2 else None


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
