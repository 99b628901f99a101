"""dreamvid.media: stills, probing, decoding, encoding, paths, and ffmpeg that is always reaped."""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from dreamvid import media
from dreamvid.errors import DecodeError, EncoderError, InputError, OutputError
from dreamvid.media.images import png_problem
from dreamvid.media.paths import TEMP_MARK, TEMP_NAME, TempFile, remove_stale_temps, temp_sibling
from dreamvid.media.probe import _snap_fps

from .conftest import DAMAGE, damage_file

NTSC = Fraction(30000, 1001)
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if TEMP_MARK in p.name]


def write_frames(folder: Path, frames, start: int = 0) -> Path:
    folder.mkdir(exist_ok=True)
    for i, f in enumerate(frames):
        media.write_image(media.frame_path(folder, start + i), f)
    return folder


def audio_samples(path: Path) -> np.ndarray:
    """The first audio stream decoded to mono float32 at 44.1 kHz."""
    out = subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", "44100",
                          "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, np.float32)


# --- stills -------------------------------------------------------------------------------

@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"])
def test_image_round_trip_every_format(tmp_path, image_files, psnr, ext):
    rgb, paths = image_files
    got = media.read_image(paths[ext])
    assert got.shape == rgb.shape and got.dtype == np.uint8
    lossy = ext in (".jpg", ".jpeg")
    assert psnr(got, rgb) > 34 if lossy else np.array_equal(got, rgb)
    out = media.write_image(tmp_path / f"out{ext}", got)
    again = media.read_image(out)
    assert psnr(again, got) > 34 if ext in (".jpg", ".jpeg", ".webp") else np.array_equal(again, got)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.arange(48 * 64, dtype=np.uint32).reshape(48, 64).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    got = media.read_image(tmp_path / "g.png")
    assert got.shape == (48, 64, 3)
    assert all(np.array_equal(got[:, :, c], gray) for c in range(3))


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_is_scaled_not_truncated(tmp_path, ext):
    values = np.array([0, 257, 32768, 65280, 65535], np.uint16)
    img16 = np.tile(values, (4, 1))
    cv2.imwrite(str(tmp_path / f"d{ext}"), np.dstack([img16] * 3))
    got = media.read_image(tmp_path / f"d{ext}")
    assert got.dtype == np.uint8
    assert got[0, :, 0].tolist() == [0, 1, 128, 254, 255]


@pytest.mark.parametrize("ext", [".png", ".webp", ".tif"])
def test_alpha_kept_through_formats_that_hold_it(tmp_path, image_files, psnr, ext):
    rgb, _ = image_files
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))
    media.write_image(tmp_path / f"a{ext}", rgb, alpha)
    got_rgb, got_alpha = media.read_image_alpha(tmp_path / f"a{ext}")
    assert got_alpha is not None and np.array_equal(got_alpha, alpha)
    visible = alpha > 0  # WebP may change the colour of fully transparent pixels
    if ext == ".webp":  # lossy colour (quality 95), lossless alpha
        assert psnr(got_rgb[visible], rgb[visible]) > 34
    else:
        assert np.array_equal(got_rgb[visible], rgb[visible])


def test_alpha_none_when_opaque_or_absent(tmp_path, image_files):
    rgb, paths = image_files
    assert media.read_image_alpha(paths[".png"])[1] is None
    media.write_image(tmp_path / "opaque.png", rgb, np.full(rgb.shape[:2], 255, np.uint8))
    assert media.read_image_alpha(tmp_path / "opaque.png")[1] is None
    media.write_image(tmp_path / "dropped.jpg", rgb, np.zeros(rgb.shape[:2], np.uint8))
    assert media.read_image_alpha(tmp_path / "dropped.jpg")[1] is None


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_exif_orientation_applied(tmp_path, fmt):
    rgb = np.zeros((30, 50, 3), np.uint8)
    rgb[:10, :20] = (255, 0, 0)  # a red block top-left makes every orientation distinguishable
    rgb[20:, 35:] = (0, 0, 255)
    for orientation in range(1, 9):
        path = tmp_path / f"o{orientation}.{fmt.lower()}"
        im = Image.fromarray(rgb)
        exif = im.getexif()
        exif[0x0112] = orientation
        options = {"quality": 95} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}
        im.save(path, format=fmt, exif=exif, **options)
        with Image.open(path) as ref_img:
            expected = np.asarray(ImageOps.exif_transpose(ref_img).convert("RGB"))
        got = media.read_image(path)
        assert got.shape == expected.shape, (fmt, orientation)
        assert np.abs(got.astype(int) - expected).mean() < 2, (fmt, orientation)


def png_bomb(width: int, height: int) -> bytes:
    """A valid, tiny PNG (every CRC right) whose header claims width x height: a decompression bomb."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(4096), 9))
            + chunk(b"IEND", b""))


def _claim(data: bytes, ext: str, width: int, height: int) -> bytes:
    """A real small file whose header is patched to claim another size."""
    import struct

    out = bytearray(data)
    if ext == ".png":
        out[16:24] = struct.pack(">II", width, height)
        import zlib
        out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])))
    elif ext == ".jpg":
        i = out.index(b"\xff\xc0")
        out[i + 5:i + 9] = struct.pack(">HH", height, width)
    elif ext == ".bmp":
        out[18:26] = struct.pack("<ii", width, -height)
    return bytes(out)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ext=st.sampled_from([".png", ".jpg", ".webp", ".bmp", ".tif"]), w=st.integers(1, 48), h=st.integers(1, 48),
       limit=st.integers(1, 48 * 48))
def test_pictures_over_the_pixel_limit_are_refused_from_the_header(tmp_path_factory, monkeypatch, ext, w, h, limit):
    """Every format's header is read for its size; over the limit (DREAMVID_MAX_PIXELS) is refused, at it is read."""
    tmp = tmp_path_factory.mktemp("limit")
    path = tmp / f"p{ext}"
    assert cv2.imwrite(str(path), np.full((h, w, 3), 90, np.uint8))
    monkeypatch.setenv("DREAMVID_MAX_PIXELS", str(limit))
    if w * h > limit:
        with pytest.raises(InputError, match=f"claims {w}x{h} px") as e:
            media.read_image(path)
        assert f"DREAMVID_MAX_PIXELS={w * h}" in e.value.hint
        assert media.read_image(path, max_pixels=w * h).shape == (h, w, 3)  # the library's own way to raise it
    else:
        assert media.read_image(path).shape == (h, w, 3)


@pytest.mark.parametrize("ext,w,h", [(".png", 50000, 50000), (".png", 2 ** 31 - 1, 1), (".png", 0, 10),
                                     (".jpg", 65535, 65535), (".bmp", 30000, 30000), (".bmp", 2 ** 31 - 1, 2)])
def test_decompression_bombs_are_refused_before_decoding(tmp_path, image_files, ext, w, h):
    _, paths = image_files
    data = png_bomb(w, h) if ext == ".png" else _claim(paths[ext].read_bytes(), ext, w, h)
    (tmp_path / f"bomb{ext}").write_bytes(data)
    with pytest.raises(InputError, match="more than the limit|is corrupt") as e:
        media.read_image(tmp_path / f"bomb{ext}")
    assert e.value.hint
    if ext == ".png" and w == 50000:
        assert len(data) < 300 and "50000x50000" in e.value.message and "2500 megapixels" in e.value.message


# ---- video frames of absurd size (issue 25, class 4): a pixel limit read from the header --------------------------

def _claimed_clip(path: Path, w: int, h: int) -> Path:
    """A one-frame PNG-in-MKV clip of w x h black pixels (a few KB that decode to w * h * 3 bytes)."""
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"color=c=black:s={w}x{h}:r=1", "-frames:v", "1", "-c:v", "png", str(path)], check=True)
    return path


def test_a_video_claiming_frames_over_the_limit_is_refused_from_the_header(tmp_path):
    """A 2.2 MB PNG-in-MKV clip claiming 16000x16000 peaked at 5.5 GB (2.3 GB with --max-size 96).
    Now ffmpeg reads the header with -max_pixels: the frame is never decoded, its size is named."""
    from dreamvid.media.probe import _read_header

    clip = _claimed_clip(tmp_path / "big.mkv", 8000, 6000)  # 48 MP: over the 40 MP default
    with pytest.raises(InputError, match=r"claims 8000x6000 px frames \(48 megapixels\), more than the limit") as e:
        media.probe_video(clip)
    assert "DREAMVID_MAX_VIDEO_PIXELS=48000000" in e.value.hint
    assert _read_header(clip).oversize == (8000, 6000)  # ffmpeg declined to decode it: its size is all it read


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(limit=st.one_of(st.integers(1, 64 * 48 * 2), st.sampled_from(["lots", "-1", "0", "1e40", "nan", "1" * 5000])))
def test_any_video_pixel_limit_refuses_exactly_the_larger_frames(limit, make_clip, monkeypatch):
    from dreamvid.errors import SettingsError

    clip = make_clip("c.mp4", n=2)[0]  # 64 x 48
    monkeypatch.setenv("DREAMVID_MAX_VIDEO_PIXELS", str(limit))
    if isinstance(limit, str):
        with pytest.raises(SettingsError, match="DREAMVID_MAX_VIDEO_PIXELS must be a number of pixels"):
            media.probe_video(clip)
    elif 64 * 48 > limit:
        with pytest.raises(InputError, match="claims 64x48 px frames"):
            media.probe_video(clip)
    else:
        assert media.probe_video(clip).width == 64
        assert len(list(media.read_frames(clip))) == 2  # the decoder's own -max_pixels lets it through


def test_a_bad_pixel_limit_setting_is_a_settings_error(tmp_path, image_files, monkeypatch):
    from dreamvid.errors import SettingsError

    _, paths = image_files
    for bad in ("lots", "-5", "0", "1e40"):
        monkeypatch.setenv("DREAMVID_MAX_PIXELS", bad)
        with pytest.raises(SettingsError, match="DREAMVID_MAX_PIXELS"):
            media.read_image(paths[".png"])
    monkeypatch.setenv("DREAMVID_MAX_PIXELS", "5e8")
    assert media.read_image(paths[".png"]).shape == (40, 56, 3)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("max_size", [1, 7, 30, 64, 100])
def test_max_size_is_applied_while_decoding_as_fit_max_size_would(tmp_path, fmt, max_size):
    """The size of dream.fit_max_size on the full picture; the pixels close to it (JPEG: reduced in the DCT)."""
    from dreamvid.dream import fit_max_size

    rng = np.random.default_rng(max_size)
    rgb = cv2.GaussianBlur(rng.integers(0, 255, (90, 70, 3), dtype=np.uint8), (9, 9), 0)
    for orientation in (1, 6):
        path = tmp_path / f"m{orientation}.{fmt.lower()}"
        im = Image.fromarray(rgb)
        exif = im.getexif()
        exif[0x0112] = orientation
        im.save(path, format=fmt, exif=exif, **({"quality": 95} if fmt == "JPEG" else {}))
        full = media.read_image(path)
        want = fit_max_size(full.astype(np.float32), max_size)
        got = media.read_image(path, max_size=max_size)
        assert got.shape == want.shape and got.dtype == np.uint8, (orientation, got.shape, want.shape)
        assert np.abs(got - want).mean() < (4 if fmt == "JPEG" else 1), orientation


def test_truncated_jpeg_refused_even_with_an_embedded_jpeg(tmp_path, image_files):
    _, paths = image_files
    data = paths[".jpg"].read_bytes()
    thumb = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()  # has its own EOI (FFD9)
    segment = b"\xff\xfe" + (len(thumb) + 2).to_bytes(2, "big") + thumb  # a COM segment holding it
    whole = data[:2] + segment + data[2:]
    (tmp_path / "whole.jpg").write_bytes(whole)
    assert media.read_image(tmp_path / "whole.jpg").shape == (40, 56, 3)
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) * 2 // 3])
    assert cv2.imread(str(tmp_path / "cut.jpg")) is not None  # OpenCV alone would accept it
    with pytest.raises(InputError, match="truncated"):
        media.read_image(tmp_path / "cut.jpg")


def test_jpeg_with_data_after_the_end_is_fine(tmp_path, image_files):
    _, paths = image_files
    (tmp_path / "motion.jpg").write_bytes(paths[".jpg"].read_bytes() + b"\x00\x00ftypmp42 trailing video")
    assert media.read_image(tmp_path / "motion.jpg").shape == (40, 56, 3)


@pytest.mark.parametrize("ext", [".png", ".webp", ".tif", ".bmp"])
def test_truncated_images_refused(tmp_path, image_files, ext):
    _, paths = image_files
    data = paths[ext].read_bytes()
    for cut in (len(data) // 2, len(data) - 12):  # half, and just the end (PNG: the IEND chunk)
        (tmp_path / f"cut{ext}").write_bytes(data[:cut])
        with pytest.raises(InputError):
            media.read_image(tmp_path / f"cut{ext}")


def test_bad_image_inputs(tmp_path):
    (tmp_path / "notes.jpg").write_text("not a picture\n")
    (tmp_path / "folder.png").mkdir()
    for path, words in [(tmp_path / "notes.jpg", "not an image"), (tmp_path / "missing.png", "does not exist"),
                        (tmp_path / "folder.png", "is a folder")]:
        with pytest.raises(InputError, match=words) as info:
            media.read_image(path)
        assert info.value.hint


def test_write_image_is_atomic_and_leaves_no_temp(tmp_path, image_files):
    rgb, _ = image_files
    out = media.write_image(tmp_path / "a.png", rgb)
    assert out == tmp_path / "a.png" and leftovers(tmp_path) == []
    (tmp_path / "taken.png").mkdir()  # the rename fails: the temp file must go too
    with pytest.raises(OutputError):
        media.write_image(tmp_path / "taken.png", rgb)
    assert leftovers(tmp_path) == []
    oct_mode = (tmp_path / "a.png").stat().st_mode & 0o777
    assert oct_mode & 0o044  # readable by others (umask permitting), not a 0600 temp file


def test_write_image_errors(tmp_path, image_files, monkeypatch):
    rgb, _ = image_files
    with pytest.raises(OutputError, match="cannot write images"):
        media.write_image(tmp_path / "a.xyz", rgb)
    with pytest.raises(OutputError, match="does not exist"):
        media.write_image(tmp_path / "no" / "a.png", rgb)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode))
    with pytest.raises(OutputError, match="not writable"):
        media.write_image(tmp_path / "a.png", rgb)
    with pytest.raises(ValueError):
        media.write_image(tmp_path / "b.png", rgb.astype(np.float32))


# --- paths ----------------------------------------------------------------------------------

def test_output_kind(tmp_path):
    assert media.output_kind("a.mp4") == "video" and media.output_kind("a.MOV") == "video"
    assert media.output_kind("a.gif") == "gif"
    assert media.output_kind("a.webp") == "image"
    assert media.output_kind("frames") == "frames" and media.output_kind("x.d/") == "frames"
    assert media.output_kind(tmp_path) == "frames"  # no suffix
    (tmp_path / "renders.v2").mkdir()
    assert media.output_kind(tmp_path / "renders.v2") == "frames"
    with pytest.raises(OutputError, match=".xyz"):
        media.output_kind("a.xyz")


def test_check_output_path(tmp_path, monkeypatch):
    src = tmp_path / "in.png"
    src.write_bytes(b"x")
    os.link(src, tmp_path / "hard.png")
    (tmp_path / "sym.png").symlink_to(src)
    monkeypatch.chdir(tmp_path)
    for same in (src, "in.png", "./sub/../in.png", tmp_path / "hard.png", tmp_path / "sym.png"):
        with pytest.raises(OutputError, match="is the input"):
            media.check_output_path(same, src)
    assert media.check_output_path("out.mp4", src) == tmp_path / "out.mp4"
    assert media.check_output_path("in.png", tmp_path / "other.png") == src  # overwrite allowed
    with pytest.raises(OutputError, match="already exists"):
        media.check_output_path("in.png", overwrite=False)
    with pytest.raises(OutputError, match="does not exist") as info:
        media.check_output_path(tmp_path / "nope" / "out.mp4")
    assert "mkdir" in info.value.hint
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(OutputError, match="existing folder"):
        media.check_output_path(tmp_path / "dir.mp4")
    with pytest.raises(OutputError, match="is a file"):
        media.check_output_path(f"{tmp_path / 'in.png'}/")  # a string: Path() drops the slash
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode))
    with pytest.raises(OutputError, match="not writable"):
        media.check_output_path(tmp_path / "out.mp4")


# --- probing --------------------------------------------------------------------------------

@pytest.mark.parametrize("fps", [Fraction(25), NTSC, Fraction(24000, 1001), Fraction(25, 2)])
def test_probe_exact_rate_and_count(make_clip, fps):
    path, frames = make_clip("p.mp4", n=13, fps=fps)
    info = media.probe_video(path)
    assert (info.width, info.height, info.n_frames, info.fps) == (64, 48, 13, fps)
    assert isinstance(info.fps, Fraction) and not info.variable_fps and not info.has_audio
    assert info.codec == "h264" and info.rotation == 0
    assert info.duration == pytest.approx(13 / fps)


def test_probe_mkv_millisecond_timebase_keeps_ntsc(make_clip):
    path, _ = make_clip("p.mkv", n=31, fps=NTSC)  # 33/34 ms steps: not variable, still 30000/1001
    info = media.probe_video(path)
    assert info.fps == NTSC and info.n_frames == 31 and not info.variable_fps


def test_snap_fps():
    assert _snap_fps("29.97") == NTSC and _snap_fps("23.98") == Fraction(24000, 1001)
    assert _snap_fps("59.94") == Fraction(60000, 1001) and _snap_fps("25") == 25
    assert _snap_fps("12.50") == Fraction(25, 2) and _snap_fps("90k") == 90000 and _snap_fps(None) is None


def test_frame_time():
    assert media.frame_time(0, NTSC) == 0.0
    assert media.frame_time(30000, NTSC) == pytest.approx(1001.0)
    assert media.frame_time(10, Fraction(25)) == 0.4


def test_bad_video_inputs(tmp_path, image_files):
    _, images = image_files
    (tmp_path / "notes.mp4").write_text("hello\n")
    (tmp_path / "folder.mp4").mkdir()
    (tmp_path / "photo.mp4").write_bytes(images[".jpg"].read_bytes())
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=0.5",
                    str(tmp_path / "tone.m4a")], check=True)
    subprocess.run([FFMPEG, "-v", "error", "-i", str(tmp_path / "tone.m4a"), "-i", str(images[".jpg"]),
                    "-map", "0", "-map", "1", "-c:a", "libmp3lame", "-c:v", "copy", "-disposition:v", "attached_pic",
                    str(tmp_path / "song.mp3")], check=True)
    cases = {
        tmp_path / "missing.mp4": "does not exist",
        tmp_path / "folder.mp4": "is a folder",
        tmp_path / "notes.mp4": "not a video",
        tmp_path / "photo.mp4": "still image",
        images[".png"]: "still image",
        tmp_path / "tone.m4a": "audio only",
        tmp_path / "song.mp3": "audio only",  # its cover picture is not a video
    }
    for path, words in cases.items():
        with pytest.raises(InputError, match=words) as info:
            media.probe_video(path)
        assert info.value.hint, path


def test_zero_frame_video_refused(make_clip, tmp_path):
    path, _ = make_clip("z.mp4", n=20)
    data = path.read_bytes()
    header_only = data[: data.index(b"mdat") + 4]  # faststart: the index survives, no frame does
    (tmp_path / "empty.mp4").write_bytes(header_only)
    with pytest.raises(InputError, match="no video frames"):
        media.probe_video(tmp_path / "empty.mp4")


# --- reading --------------------------------------------------------------------------------

def test_read_all_frames_close_to_source(make_clip, psnr):
    path, frames = make_clip("r.mp4", n=10)
    got = list(media.read_frames(path))
    assert [i for i, _ in got] == list(range(10))
    for (_, frame), src in zip(got, frames):
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.flags.writeable
        assert psnr(frame, src) > 32


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".ts", ".avi"])  # indexed seek; byte seek; no pts
def test_read_range_gives_the_same_frames_as_a_full_read(make_clip, ext):
    path, _ = make_clip(f"range{ext}", n=30, fps=NTSC)  # keyframe every 10: seeks land mid-GOP
    info = media.probe_video(path)
    assert (info.n_frames, info.fps) == (30, NTSC)
    full = [f for _, f in media.read_frames(path, info=info)]
    for start, end in [(1, 4), (9, 12), (13, 14), (25, 30), (28, None)]:
        got = list(media.read_frames(path, start=start, end=end, info=info))
        stop = end if end is not None else 30
        assert [i for i, _ in got] == list(range(start, stop))
        assert all(np.array_equal(f, full[i]) for i, f in got)
    assert list(media.read_frames(path, start=30, info=info)) == []
    with pytest.raises(ValueError):
        media.read_frames(path, start=5, end=2, info=info)  # eager: before any iteration
    assert len(list(media.read_frames(path, start=27, end=99, info=info))) == 3


def test_max_size_keeps_the_aspect(make_clip):
    path, _ = make_clip("s.mp4", n=3, width=64, height=48)
    (_, frame), *_ = media.read_frames(path, max_size=32)
    assert frame.shape == (24, 32, 3)
    assert media.scaled_size(641, 361, 320) == (320, 180)
    assert media.scaled_size(64, 48, 100) == (64, 48)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_video_comes_out_upright(make_clip, psnr, rotation):
    path, frames = make_clip("rot.mp4", n=3, rotation=rotation)
    info = media.probe_video(path)
    size = (48, 64) if rotation in (90, 270) else (64, 48)
    assert (info.width, info.height, info.rotation) == (*size, rotation)
    (_, first), *_ = media.read_frames(path, info=info)
    assert first.shape == (size[1], size[0], 3)
    turned = np.rot90(frames[0], rotation // 90)  # the display matrix turns counter-clockwise
    wrong = np.rot90(frames[0], (rotation // 90 + 2) % 4)
    assert psnr(first, turned) > 32 > psnr(first, wrong)


def test_variable_frame_rate_is_resampled_to_a_constant_grid(make_clip):
    path, _ = make_clip("vfr.mp4", n=20, fps=Fraction(25), vfr_gap_after=9)  # a 0.5 s hold after frame 9
    info = media.probe_video(path)
    assert info.variable_fps and info.fps == 25
    full = [f for _, f in media.read_frames(path, info=info)]
    assert len(full) == info.n_frames == 32  # 20 frames + 12.5 frames of hold, on the 25 fps grid
    assert np.array_equal(full[10], full[9])  # the held frame repeats
    part = list(media.read_frames(path, start=12, end=16, info=info))
    assert [i for i, _ in part] == [12, 13, 14, 15]
    assert all(np.array_equal(f, full[i]) for i, f in part)


def test_truncated_video_yields_frames_then_decode_error(make_clip, tmp_path, ffmpeg_children):
    path, _ = make_clip("t.mp4", n=40, crf=0)  # crf 0: big frames, so the cut lands mid-stream
    data = path.read_bytes()
    mdat = data.index(b"mdat")
    (tmp_path / "cut.mp4").write_bytes(data[: (mdat + len(data)) // 2])
    info = media.probe_video(tmp_path / "cut.mp4")
    assert info.n_frames == 40  # what the container promises
    got = []
    with pytest.raises(DecodeError, match=r"after \d+ of 40 frames") as err:
        for i, frame in media.read_frames(tmp_path / "cut.mp4", info=info):
            got.append(i)
    assert 5 < len(got) < 40 and got == list(range(len(got)))
    assert f"after {len(got)} of 40" in err.value.message and "ffmpeg" in err.value.detail
    assert ffmpeg_children() == []
    (tmp_path / "no_index.mp4").write_bytes(make_clip("n.mp4", n=40, faststart=False)[0].read_bytes()[:3000])
    with pytest.raises(InputError):  # the index (moov) was at the end and is gone
        media.probe_video(tmp_path / "no_index.mp4")


def test_no_ffmpeg_left_after_early_close_or_errors(make_clip, ffmpeg_children, tmp_path):
    path, _ = make_clip("k.mp4", n=30)
    gen = media.read_frames(path)
    next(gen), next(gen)
    assert ffmpeg_children()  # it is running now
    gen.close()
    assert ffmpeg_children() == []

    def consume_and_fail():
        for i, _ in media.read_frames(path):
            if i == 3:
                raise KeyboardInterrupt  # what Ctrl-C raises mid-render

    with pytest.raises(KeyboardInterrupt):
        consume_and_fail()
    assert ffmpeg_children() == []  # without gc.collect(): the generator was closed on unwind

    with contextlib.closing(media.read_frames(path)) as frames:
        next(frames)
    assert ffmpeg_children() == []

    unused = media.read_frames(path)  # probed, but ffmpeg starts only at the first next()
    assert ffmpeg_children() == []
    del unused

    with pytest.raises(RuntimeError):
        with media.VideoWriter(tmp_path / "w.mp4", fps=Fraction(25)) as writer:
            writer.write(np.zeros((48, 64, 3), np.uint8))
            raise RuntimeError("dream failed")
    assert ffmpeg_children() == [] and not (tmp_path / "w.mp4").exists() and leftovers(tmp_path) == []


def _children_of(pid: int, name: str = "ffmpeg") -> list[int]:
    """Live (not zombie) processes called `name` whose parent is `pid`."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if comm.startswith(name) and int(rest[1]) == pid and rest[0] != "Z":
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("how", ["encode_video", "VideoWriter"])
def test_ffmpeg_dies_with_a_killed_dreamvid_and_the_next_run_removes_its_temp_file(tmp_path, how):
    """kill -9 (or the OOM killer) mid-encode: no ffmpeg may run on, and the half-written
    `.OUT.mp4.<hex>.dreamvid-tmp.mp4` must not stay forever."""
    import signal
    import sys
    import textwrap
    import time

    if not os.path.isdir("/proc/self") or not sys.platform.startswith("linux"):
        pytest.skip("needs Linux and /proc")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(8)]
    n = 600  # noise at x264 medium: many seconds of work, so the kill lands mid-encode
    folder = tmp_path / "work"
    if how == "encode_video":
        write_frames(folder, frames)
        for i in range(8, n):  # the same few frames again, by hard link: quick to make
            os.link(media.frame_path(folder, i % 8), media.frame_path(folder, i))
    np.save(tmp_path / "frames.npy", np.stack(frames))
    out = tmp_path / "o.mp4"
    script = textwrap.dedent(f"""
        import sys, numpy as np
        from fractions import Fraction
        from dreamvid import media
        if {how == "encode_video"}:
            media.encode_video({str(folder)!r}, {str(out)!r}, fps=Fraction(25), n_frames={n})
        else:
            frames = np.load({str(tmp_path / "frames.npy")!r})
            with media.VideoWriter({str(out)!r}, fps=Fraction(25)) as w:
                for i in range({n}):
                    w.write(frames[i % 8])
        """)
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    kids: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not (kids := _children_of(proc.pid)) or not leftovers(tmp_path):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        time.sleep(0.3)  # well into the encode
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 2
        while any(map(_alive, kids)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(map(_alive, kids)), "ffmpeg outlived its killed parent"
    finally:
        proc.kill()
        proc.wait()
        for pid in filter(_alive, kids):  # an orphan of a failed run: do not leave it encoding
            os.kill(pid, signal.SIGKILL)
    stale = leftovers(tmp_path)
    assert len(stale) == 1 and stale[0].startswith(".o.mp4.") and not out.exists()
    if how == "encode_video":
        media.encode_video(folder, out, fps=Fraction(25), n_frames=3)
    else:
        with media.VideoWriter(out, fps=Fraction(25)) as w:
            w.write(frames[0])
    assert leftovers(tmp_path) == [] and media.probe_video(out).n_frames in (1, 3)


_names = st.sampled_from(["o.mp4", "my dream.mkv", "a.b.gif", "x.png", "render.json", ".hidden.mp4", "frames"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=_names, other=_names, n_stale=st.integers(0, 3), n_live=st.integers(0, 2),
       suffix=st.sampled_from(["", ".mp4", ".gif", ".png"]), old=st.booleans())
def test_only_stale_temp_files_of_the_output_are_removed(tmp_path_factory, name, other, n_stale, n_live, suffix, old):
    """Stale: our temp-name pattern, this output's name, no live writer holding its lock (age alone is not enough)."""
    folder = tmp_path_factory.mktemp("temps")
    stale = []
    for _ in range(n_stale):
        t = TempFile(folder / name, suffix)
        t._close()  # its writer died: the file stays, unlocked
        stale.append(t.path.name)
    live = [TempFile(folder / name, suffix) for _ in range(n_live)]  # being written right now
    keep = [f.path.name for f in live]
    unrelated = [name, f".{name}.notes", f".{name}.1234567.dreamvid-tmp", f"{name}.12345678.dreamvid-tmp",
                 f".{name}.1234ABCD{TEMP_MARK}", f".{name}.dreamvid-work"]
    if other != name:
        unrelated.append(temp_sibling(folder / other, suffix).name)  # another output's temp: not ours to judge
    for n in unrelated:
        if not (folder / n).exists():
            (folder / n).write_bytes(b"keep me")
    if old:
        for n in stale + keep + unrelated:
            os.utime(folder / n, (1, 1))
    removed = remove_stale_temps(folder, name)
    assert sorted(removed) == sorted(stale)
    assert sorted(os.listdir(folder)) == sorted(set(keep + unrelated))
    for f in live:
        f.discard()
    others = [n for n in unrelated if re.fullmatch(TEMP_NAME, n)]  # other outputs' temps (".a.mp4.<hex>...")
    assert sorted(remove_stale_temps(folder)) == sorted(others)  # name=None: every stale temp in the folder


def test_an_interrupted_encode_leaves_no_temp_file(tmp_path, moving_frames, monkeypatch):
    folder = write_frames(tmp_path / "work", moving_frames(3))
    real = subprocess.run

    def ctrl_c(*args, **kwargs):  # Ctrl-C while ffmpeg runs (subprocess.run kills it)
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess, "run", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        media.encode_video(folder, tmp_path / "o.mp4", fps=Fraction(25), n_frames=3)
    assert leftovers(tmp_path) == [] and not (tmp_path / "o.mp4").exists()


# --- encoding -------------------------------------------------------------------------------

@pytest.mark.parametrize("fps", [Fraction(25), NTSC])
def test_encode_round_trip(tmp_path, moving_frames, psnr, fps):
    frames = moving_frames(12)
    folder = write_frames(tmp_path / "work", frames, start=100)  # numbered by source index
    out = media.encode_video(folder, tmp_path / "out.mp4", fps=fps, start_number=100, n_frames=12)
    assert out == tmp_path / "out.mp4" and leftovers(tmp_path) == []
    info = media.probe_video(out)
    assert (info.width, info.height, info.n_frames, info.fps, info.has_audio) == (64, 48, 12, fps, False)
    back = [f for _, f in media.read_frames(out, info=info)]
    assert len(back) == 12 and min(psnr(a, b) for a, b in zip(frames, back)) > 32


def test_odd_size_is_padded_by_repeating_the_edge(tmp_path, moving_frames, psnr):
    frames = moving_frames(3, width=63, height=47)
    folder = write_frames(tmp_path / "work", frames)
    out = media.encode_video(folder, tmp_path / "odd.mp4", fps=Fraction(25), n_frames=3)
    info = media.probe_video(out)
    assert (info.width, info.height) == media.even_size(63, 47) == (64, 48)
    (_, first), *_ = media.read_frames(out, info=info)
    assert psnr(first[:47, :63], frames[0]) > 32  # nothing rescaled: pixels stay where they were
    assert psnr(first[:47, :63], frames[0]) > psnr(first[:47, 1:64], frames[0]) + 6
    assert np.abs(first[:, 63].astype(int) - first[:, 62]).mean() < 4  # a copy of the edge, not black
    assert np.abs(first[47].astype(int) - first[46]).mean() < 4
    assert media.even_size(64, 48) == (64, 48) and media.even_size(1, 1) == (2, 2)


def test_audio_is_muxed_and_trimmed_to_the_frame_range(make_clip, tmp_path):
    # 3 s source; the tone is 400 Hz in second 0, 800 Hz in second 1, 1200 Hz in second 2.
    src, frames = make_clip("talk.mp4", n=75, fps=Fraction(25), audio_hz=400, audio_step_hz=400)
    assert media.probe_video(src).has_audio
    folder = write_frames(tmp_path / "work", frames[25:50], start=25)
    out = media.encode_video(folder, tmp_path / "dub.mp4", fps=Fraction(25), start_number=25, n_frames=25,
                             audio_source=src)
    info = media.probe_video(out)
    assert info.has_audio and info.n_frames == 25
    audio = audio_samples(out)
    assert abs(len(audio) / 44100 - 1.0) < 1 / 25 + 0.03  # a frame, plus AAC's priming samples
    spectrum = np.abs(np.fft.rfft(audio[2000:-2000]))
    peak_hz = np.fft.rfftfreq(len(audio) - 4000, 1 / 44100)[spectrum.argmax()]
    assert abs(peak_hz - 800) < 20  # the second second of the source, not the first


@pytest.mark.parametrize("ext", [".mkv", ".mov"])
def test_source_without_audio_gives_silent_video(make_clip, tmp_path, ext):
    src, frames = make_clip("mute.mp4", n=5)
    folder = write_frames(tmp_path / "work", frames)
    out = media.encode_video(folder, tmp_path / f"o{ext}", fps=Fraction(25), n_frames=5, audio_source=src)
    info = media.probe_video(out)
    assert not info.has_audio and info.n_frames == 5


def test_awkward_paths(make_clip, tmp_path, monkeypatch):
    """A colon reads as a protocol, '%' as a pattern, a leading '-' as an option: none may."""
    src, frames = make_clip("take:2 100%.mp4", n=4, audio_hz=440)
    folder = write_frames(tmp_path / "work %d:x", frames)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-out").mkdir()
    out = media.encode_video(folder, "-out/dream:1.mp4", fps=Fraction(25), n_frames=4, audio_source=src)
    info = media.probe_video(out)
    assert info.n_frames == 4 and info.has_audio
    assert len(list(media.read_frames(out, start=1, info=info))) == 3


def test_gif_output_decodes(tmp_path, moving_frames):
    frames = moving_frames(6, width=63, height=47)
    folder = write_frames(tmp_path / "work", frames)
    out = media.encode_video(folder, tmp_path / "loop.gif", fps=Fraction(10), n_frames=6)
    info = media.probe_video(out)
    assert (info.width, info.height, info.n_frames, info.fps, info.codec) == (63, 47, 6, 10, "gif")
    back = [f for _, f in media.read_frames(out, info=info)]
    assert len(back) == 6 and np.abs(back[0].astype(int) - frames[0]).mean() < 12  # 256 colours


def test_encode_refuses_missing_or_mismatched_frames(tmp_path, moving_frames):
    folder = write_frames(tmp_path / "work", moving_frames(4))
    with pytest.raises(InputError, match="frame_00004.png .* is missing"):
        media.encode_video(folder, tmp_path / "o.mp4", fps=Fraction(25), n_frames=5)
    media.write_image(media.frame_path(folder, 4), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InputError, match="10x10"):
        media.encode_video(folder, tmp_path / "o.mp4", fps=Fraction(25), n_frames=5)
    assert not (tmp_path / "o.mp4").exists() and leftovers(tmp_path) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(DAMAGE), where=st.floats(0, 1), bit=st.integers(0, 7), which=st.integers(0, 3),
       ext=st.sampled_from([".mp4", ".gif", ""]))
def test_a_damaged_frame_is_refused_before_ffmpeg_sees_any(tmp_path_factory, kind, where, bit, which, ext):
    """ffmpeg skips a frame that does not decode and still succeeds: the clip would be short, at the wrong rate."""
    tmp = tmp_path_factory.mktemp("enc")
    folder = write_frames(tmp / "work", [np.full((12, 16, 3), 40 * i, np.uint8) for i in range(4)])
    assert all(png_problem(media.frame_path(folder, i), decode=True) is None for i in range(4))
    damage_file(media.frame_path(folder, which), kind, where, bit)
    assert png_problem(media.frame_path(folder, which)) is not None
    out = tmp / f"o{ext}"
    with pytest.raises(InputError, match=f"frame_{which:05d}.png") as e:
        if ext:
            media.encode_video(folder, out, fps=Fraction(25), n_frames=4)
        else:
            media.write_frames_folder(folder, out, n_frames=4)
    assert "dreamed again" in e.value.hint and "get a complete copy" not in e.value.hint
    assert not out.exists() and leftovers(tmp) == []


def test_encoder_failure_carries_ffmpeg_words_and_leaves_nothing(tmp_path, moving_frames, monkeypatch):
    folder = write_frames(tmp_path / "work", moving_frames(2))
    monkeypatch.setattr("dreamvid.media.encode.X264_PRESET", "no-such-preset")  # x264 refuses to open
    with pytest.raises(EncoderError) as info:
        media.encode_video(folder, tmp_path / "o.mp4", fps=Fraction(25), n_frames=2)
    assert "command:" in info.value.detail and "libx264" in info.value.detail and info.value.hint
    assert not (tmp_path / "o.mp4").exists() and leftovers(tmp_path) == []


def test_encode_output_errors(tmp_path, moving_frames):
    folder = write_frames(tmp_path / "work", moving_frames(2))
    with pytest.raises(OutputError, match="does not exist"):
        media.encode_video(folder, tmp_path / "no" / "o.mp4", fps=Fraction(25), n_frames=2)
    with pytest.raises(OutputError, match="webm"):
        media.encode_video(folder, tmp_path / "o.webm", fps=Fraction(25), n_frames=2)


def test_video_writer_streams_frames(tmp_path, moving_frames, psnr):
    frames = moving_frames(7, width=63, height=47)
    with media.VideoWriter(tmp_path / "lapse.mp4", fps=NTSC) as writer:
        for f in frames:
            writer.write(f)
        with pytest.raises(ValueError, match="differs"):
            writer.write(np.zeros((10, 10, 3), np.uint8))
    assert writer.n_frames == 7 and leftovers(tmp_path) == []
    info = media.probe_video(tmp_path / "lapse.mp4")
    assert (info.width, info.height, info.n_frames, info.fps) == (64, 48, 7, NTSC)
    back = [f for _, f in media.read_frames(tmp_path / "lapse.mp4", info=info)]
    assert psnr(back[3][:47, :63], frames[3]) > 32


def test_write_frames_folder(tmp_path, moving_frames):
    frames = moving_frames(5)
    folder = write_frames(tmp_path / "work", frames, start=10)
    out = media.write_frames_folder(folder, tmp_path / "frames_out", start_number=11, n_frames=3)
    assert sorted(p.name for p in out.iterdir()) == ["frame_00011.png", "frame_00012.png", "frame_00013.png"]
    assert np.array_equal(media.read_image(out / "frame_00012.png"), frames[2])
    with pytest.raises(InputError, match="missing"):
        media.write_frames_folder(folder, tmp_path / "frames_out", start_number=14, n_frames=2)


def test_gif_video_and_empty_files_given_as_photos_say_what_to_do(tmp_path):
    from dreamvid.errors import InputError

    gif = tmp_path / "anim.gif"
    gif.write_bytes(b"GIF89a" + b"\x00" * 40)
    with pytest.raises(InputError) as e:
        media.read_image(gif)
    assert f"`dreamvid video {gif}`" in e.value.hint  # the path as given, folder and all: it can be pasted
    spaced = tmp_path / "my clips" / "anim.gif"
    spaced.parent.mkdir()
    spaced.write_bytes(gif.read_bytes())
    with pytest.raises(InputError) as e:
        media.read_image(spaced)
    assert f"`dreamvid video '{spaced}'`" in e.value.hint
    mp4 = tmp_path / "clip.jpg"  # a video under a photo's name
    mp4.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 40)
    with pytest.raises(InputError, match="GIF or video"):
        media.read_image(mp4)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"is empty \(0 bytes\)"):
        media.read_image(empty)


def test_a_png_with_an_icc_profile_decodes_without_libpng_chatter(tmp_path):
    """libpng's iCCP warnings go straight to fd 2: the chunk is dropped before decoding."""
    import subprocess
    import sys
    import zlib

    from dreamvid.media.images import without_png_chunks

    rgb = np.full((8, 8, 3), 120, np.uint8)
    media.write_image(tmp_path / "plain.png", rgb)
    data = (tmp_path / "plain.png").read_bytes()
    body = b"bogus\x00\x00" + zlib.compress(b"not a real profile" * 4)
    chunk = len(body).to_bytes(4, "big") + b"iCCP" + body + zlib.crc32(b"iCCP" + body).to_bytes(4, "big")
    profiled = data[:33] + chunk + data[33:]  # right after IHDR
    (tmp_path / "icc.png").write_bytes(profiled)
    assert without_png_chunks(profiled, (b"iCCP",)) == data
    code = f"from dreamvid import media; print(media.read_image({str(tmp_path / 'icc.png')!r}).mean())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and float(proc.stdout) == 120.0, proc.stderr
    assert "libpng" not in proc.stderr, proc.stderr
