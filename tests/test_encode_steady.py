"""Issue 24: the file a user plays is as steady as the frames it was encoded from.

The steady encode (media/encode.py: chroma low-passed before 4:2:0, x264 without psy), the
`pix_fmt` option and its refusals, the steady GIF (media/gif.py: one palette, colours chosen
along the flow), and `coherence --frames`, which measures a file against its frames in one pass.
"""
from __future__ import annotations

import json
from fractions import Fraction

import cv2
import numpy as np
import pytest

from dreamvid import media
from dreamvid.errors import SettingsError
from dreamvid.render.measure import coherence

from .clitools import one_line_error, run
from .conftest import FFMPEG, moving_frames, write_clip

N, W, H = 10, 96, 64
PAN = (0.6, 0.3)  # px a frame: sub-pixel, so 4:2:0 aliases fine chroma differently on every frame


def _dreamlike(seed: int = 1) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(source frames, "dreamed" frames): a pan, and the pan with fine green detail carried along
    with it whose strength flickers a little from frame to frame (a re-dreamed texture, as the
    video step leaves it: finer in colour than 4:2:0 holds)."""
    rng = np.random.default_rng(seed)
    src = moving_frames(N, W, H, PAN)
    fine = rng.normal(0, 1, (H + 16, W + 16)).astype(np.float32)
    frames = []
    for i, s in enumerate(src):
        m = np.float32([[1, 0, 8 - PAN[0] * i], [0, 1, 8 - PAN[1] * i]])
        f = cv2.warpAffine(fine, m, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        flicker = 1 + 0.5 * cv2.GaussianBlur(rng.normal(0, 1, (H, W)).astype(np.float32), (0, 0), 1.0)
        detail = np.dstack([5 * f, 30 * f * flicker, 5 * f])
        frames.append(np.clip(s + detail, 0, 255).astype(np.uint8))
    return src, frames


@pytest.fixture(scope="module")
def dreamlike(tmp_path_factory):
    folder = tmp_path_factory.mktemp("steady")
    src, frames = _dreamlike()
    pngs = folder / "frames"
    pngs.mkdir()
    for i, f in enumerate(frames):
        media.write_image(media.frame_path(pngs, i), f)
    return write_clip(folder / "source.mp4", src, crf=4), pngs, frames


def _encode(pngs, path, **kw):
    return media.encode_video(pngs, path, fps=Fraction(25), n_frames=N, **kw)


def _luma(frames) -> np.ndarray:
    return np.stack(frames).astype(np.float32) @ np.float32([0.2126, 0.7152, 0.0722])


def test_the_steady_encode_adds_less_flicker_and_keeps_the_luma(dreamlike, tmp_path):
    clip, pngs, frames = dreamlike
    ratio, luma_error = {}, {}
    for name, kw in (("steady", {}), ("before", {"steady": False}), ("444", {"pix_fmt": "yuv444p"})):
        out = _encode(pngs, tmp_path / f"{name}.mp4", **kw)
        c = coherence(clip, out, frames=pngs)
        assert c["encoded_from"]["path"] == str(pngs) and c["pairs"] == N - 1
        ratio[name] = c["output_over_frames"]
        decoded = [f for _, f in media.read_frames(out)]
        luma_error[name] = float(np.abs(_luma(decoded) - _luma(frames)).mean())
    # measured: steady 1.43x, before 1.67x, 4:4:4 1.09x (the texture is all fine chroma flicker)
    assert ratio["steady"] < ratio["before"] - 0.15, ratio
    assert ratio["444"] <= 1.2, ratio
    # the chroma filter leaves the luma alone: as close to the frames' as before (levels)
    assert luma_error["steady"] <= luma_error["before"] + 0.3, luma_error


def test_large_colours_keep_their_saturation(tmp_path):
    """Only detail finer than 4:2:0 holds is filtered: flat colour patches 16 px and larger keep
    their saturation (what 'the colours are not flattened' means at the scale the eye sees)."""
    rng = np.random.default_rng(0)
    patches = rng.integers(0, 256, (H // 16, W // 16, 3), dtype=np.uint8)
    frame = cv2.resize(patches, (W, H), interpolation=cv2.INTER_NEAREST)
    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(3):
        media.write_image(media.frame_path(folder, i), frame)
    out = media.encode_video(folder, tmp_path / "flat.mp4", fps=Fraction(25), n_frames=3)
    decoded = next(media.read_frames(out))[1]
    sat = [cv2.cvtColor(f, cv2.COLOR_RGB2HSV)[..., 1].astype(np.float32) for f in (frame, decoded)]
    centres = np.zeros((H, W), bool)  # 2x2 px at each patch's centre, 7 px from its edges (3.5 sigma)
    for dy in (7, 8):
        for dx in (7, 8):
            centres[dy::16, dx::16] = True
    assert np.abs(sat[1][centres] - sat[0][centres]).mean() < 4, (sat[0][centres][:8], sat[1][centres][:8])


@pytest.mark.parametrize("pix_fmt", ["yuv444p", "yuv420p10le"])
def test_pix_fmt_reaches_the_file(dreamlike, tmp_path, pix_fmt):
    import subprocess

    _, pngs, frames = dreamlike
    out = _encode(pngs, tmp_path / "o.mkv", pix_fmt=pix_fmt)
    probe = subprocess.run([FFMPEG, "-hide_banner", "-i", str(out)], capture_output=True, text=True).stderr
    assert f"Video: h264 (High {'4:4:4 Predictive' if '444' in pix_fmt else '10'})" in probe, probe
    assert pix_fmt in probe
    decoded = next(media.read_frames(out))[1]
    assert np.abs(_luma([decoded]) - _luma(frames[:1])).mean() < 3
    if "444" in pix_fmt:  # unfiltered: the fine colour is there too
        assert np.abs(decoded.astype(float) - frames[0]).mean() < 4


def test_a_gif_is_refused_a_yuv_pix_fmt_before_ffmpeg_runs(dreamlike, tmp_path):
    _, pngs, _ = dreamlike
    for make in (lambda: _encode(pngs, tmp_path / "o.gif", pix_fmt="yuv444p"),
                 lambda: media.VideoWriter(tmp_path / "o.gif", fps=Fraction(25), pix_fmt="yuv420p10le")):
        with pytest.raises(SettingsError, match="a GIF cannot hold pix_fmt"):
            make()
    with pytest.raises(SettingsError, match="pix_fmt 'rgb24' is not one of"):
        _encode(pngs, tmp_path / "o.mp4", pix_fmt="rgb24")
    assert list(tmp_path.iterdir()) == []


def _write_pngs(folder, frames):
    folder.mkdir()
    for i, f in enumerate(frames):
        media.write_image(media.frame_path(folder, i), f)
    return folder


def _decoded(path) -> list[np.ndarray]:
    return [f for _, f in media.read_frames(path)]


def _mean_error(a, b) -> float:
    return float(np.mean([np.abs(x.astype(np.float32) - y).mean() for x, y in zip(a, b)]))


def test_the_gif_keeps_its_frames_steadiness(dreamlike, tmp_path):
    """The pan with its flickering fine texture: mapped to 256 colours frame by frame (the GIF
    before issue 24) the file flickers at 2x its frames' warping error; with the palette colours
    chosen along the flow it is within them, and no further from the frames."""
    clip, pngs, frames = dreamlike
    ratio, error = {}, {}
    for name, kw in (("steady", {}), ("before", {"steady": False})):
        out = _encode(pngs, tmp_path / f"{name}.gif", **kw)
        ratio[name] = coherence(clip, out, frames=pngs)["output_over_frames"]
        error[name] = _mean_error(_decoded(out), frames)
    # measured: steady 0.90x, before 2.01x; mean error 5.0 and 5.4 levels
    assert ratio["steady"] <= 1.0 and ratio["before"] > 1.6, ratio
    assert error["steady"] <= error["before"] + 0.5, error


def test_the_gif_does_not_crawl_over_a_still_picture(tmp_path):
    """A still picture with a little sensor noise: error diffusion (the GIF before issue 24)
    re-dithers it differently on every frame (7.8x the frames' warping error on the bench's
    still clip); now a pixel keeps its palette colour while its true colour stays near it."""
    rng = np.random.default_rng(0)
    base = moving_frames(1, W, H)[0].astype(np.float32)
    frames = [np.clip(base + rng.normal(0, 1.5, base.shape), 0, 255).astype(np.uint8) for _ in range(N)]
    folder = _write_pngs(tmp_path / "still", frames)
    changed = {}
    for steady in (True, False):
        decoded = _decoded(_encode(folder, tmp_path / f"{steady}.gif", steady=steady))
        changed[steady] = float(np.mean([(a != b).any(2).mean() for a, b in zip(decoded, decoded[1:])]))
    assert changed[True] < 0.02 and changed[False] > 0.2, changed  # measured: 0.002 and 0.43 of the pixels


def test_the_gif_follows_what_changes(tmp_path):
    """No frozen smear: a bright square crossing a still texture leaves no trail behind it, and
    a slow fade (2 levels a frame, within the pull's tolerance) is followed, not held back."""
    rng = np.random.default_rng(1)
    base = moving_frames(1, W, H)[0]
    crossing, fading = [], []
    for i in range(N):
        f = np.clip(base + rng.normal(0, 1.5, base.shape), 0, 255).astype(np.uint8)
        fading.append(np.clip(f.astype(np.int16) + 2 * i, 0, 255).astype(np.uint8))
        f = f.copy()
        f[20:36, 6 * i:6 * i + 16] = (250, 240, 60)
        crossing.append(f)
    for name, frames in (("crossing", crossing), ("fading", fading)):
        out = _decoded(_encode(_write_pngs(tmp_path / name, frames), tmp_path / f"{name}.gif"))
        errors = [float(np.abs(a.astype(np.float32) - b).mean()) for a, b in zip(out, frames)]
        assert max(errors) < errors[0] + 1, (name, errors)  # measured: + 0.4 and + 0.6 levels
        left = (slice(20, 36), slice(0, 6 * (N - 1)))  # where the square has been, now the texture again
        assert np.abs(out[-1][left].astype(np.float32) - frames[-1][left]).mean() < errors[0] + 1, name
        # measured: 0.0 and -1.8 levels (-5.1 when the pull held back what the whole picture did)
        assert abs(float(out[-1].mean()) - float(frames[-1].mean())) < 2.5, name


def _gif_blocks(data: bytes) -> tuple[int | None, list[int]]:
    """(the NETSCAPE loop count, each frame's delay in 1/100 s) of a GIF file's bytes."""
    assert data[:6] == b"GIF89a"
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # header, screen, global table
    loop, delays = None, []

    def after_sub_blocks(p):
        while data[p]:
            p += data[p] + 1
        return p + 1

    while data[pos] != 0x3B:  # the trailer
        if data[pos] == 0x21:  # an extension: graphic control (the delay) or application (the loop)
            if data[pos + 1] == 0xF9:
                delays.append(int.from_bytes(data[pos + 4:pos + 6], "little"))
            elif data[pos + 3:pos + 14] == b"NETSCAPE2.0":
                loop = int.from_bytes(data[pos + 16:pos + 18], "little")
            pos = after_sub_blocks(pos + 2)
        else:  # an image: descriptor, local table, LZW data
            assert data[pos] == 0x2C, pos
            flags = data[pos + 9]
            pos = after_sub_blocks(pos + 11 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0))
    return loop, delays


def test_the_gif_is_a_standard_looping_gif_with_the_same_timing(dreamlike, tmp_path):
    """Any decoder plays it: Pillow (a decoder that is not ffmpeg) sees the pixels dreamvid's
    reader sees; it loops forever with the frame delays the GIF before issue 24 had."""
    from PIL import Image, ImageSequence

    _, pngs, frames = dreamlike
    fps = Fraction(30000, 1001)
    steady = media.encode_video(pngs, tmp_path / "s.gif", fps=fps, n_frames=N)
    before = media.encode_video(pngs, tmp_path / "b.gif", fps=fps, n_frames=N, steady=False)
    loop, delays = _gif_blocks(steady.read_bytes())
    assert (loop, delays) == _gif_blocks(before.read_bytes()) and loop == 0
    assert delays[:4] == [3, 4, 3, 3] and len(delays) == N  # 1001/30000 s a frame, rounded as it adds up
    info = media.probe_video(steady)
    assert (info.width, info.height, info.n_frames, info.codec) == (W, H, N, "gif")
    with Image.open(steady) as im:
        pillow = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    ours = _decoded(steady)
    assert len(pillow) == N and all(np.array_equal(a, b) for a, b in zip(pillow, ours))


def test_the_streaming_writer_makes_the_same_gif(dreamlike, tmp_path, ffmpeg_children):
    """VideoWriter keeps a GIF's frames beside it for the two passes, then writes what
    encode_video writes; an exception in the block leaves nothing behind."""
    _, pngs, frames = dreamlike
    with media.VideoWriter(tmp_path / "w.gif", fps=Fraction(25)) as w:
        for f in frames:
            w.write(f)
    assert [p.name for p in tmp_path.iterdir()] == ["w.gif"]
    folder = _decoded(_encode(pngs, tmp_path / "f.gif"))
    assert all(np.array_equal(a, b) for a, b in zip(_decoded(tmp_path / "w.gif"), folder))
    with pytest.raises(RuntimeError), media.VideoWriter(tmp_path / "x.gif", fps=Fraction(25)) as w:
        w.write(frames[0])
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.gif", "w.gif"] and ffmpeg_children() == []


def test_a_failing_gif_encode_carries_ffmpeg_s_words_and_leaves_nothing(dreamlike, tmp_path, monkeypatch,
                                                                        ffmpeg_children):
    from dreamvid.errors import EncoderError

    _, pngs, frames = dreamlike
    fake = tmp_path / "ffmpeg"  # an ffmpeg that fails as a full disk makes it fail
    fake.write_text("#!/bin/sh\necho 'Error writing trailer: No space left on device' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr("dreamvid.media._ffmpeg.ffmpeg_exe", lambda: str(fake))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(EncoderError, match="could not write o.gif: Error writing trailer: No space left") as e:
        _encode(pngs, out / "o.gif")
    assert "palettegen" in e.value.detail and "check free disk space" in e.value.hint
    with pytest.raises(EncoderError, match="No space left"), media.VideoWriter(out / "w.gif", fps=Fraction(25)) as w:
        w.write(frames[0])
    assert list(out.iterdir()) == [] and ffmpeg_children() == []


def test_a_full_temporary_folder_is_one_line_and_leaves_nothing(dreamlike, tmp_path, monkeypatch):
    from dreamvid.errors import OutputError

    _, pngs, _ = dreamlike

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("dreamvid.media.gif.tempfile.mkstemp", full)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OutputError, match="cannot write the GIF's palette .* No space left on device") as e:
        _encode(pngs, out / "o.gif")
    assert "TMPDIR" in e.value.hint and list(out.iterdir()) == []


def test_the_nearest_colour_table_finds_the_nearest_colour():
    """The table rounds a colour to its 2-level cell: the colour it picks is at most 2 sqrt(3)
    levels further away than the nearest one."""
    from dreamvid.media.gif import NearestColour

    rng = np.random.default_rng(3)
    palette = rng.integers(0, 256, (200, 3)).astype(np.uint8)
    image = rng.uniform(-10, 265, (40, 50, 3)).astype(np.float32)
    picked = NearestColour(palette)(image)
    assert picked.shape == (40, 50) and picked.dtype == np.uint8
    clipped = np.clip(image, 0, 255)[..., None, :]
    distances = np.sqrt(((clipped - palette.astype(np.float32)) ** 2).sum(-1))
    chosen = np.take_along_axis(distances, picked[..., None].astype(np.intp), -1)[..., 0]
    assert (chosen <= distances.min(-1) + 2 * np.sqrt(3) + 1e-4).all()
    assert (picked == distances.argmin(-1)).mean() > 0.9


def test_coherence_frames_option(dreamlike, tmp_path):
    clip, pngs, _ = dreamlike
    out = _encode(pngs, tmp_path / "o.mp4")
    r = run("coherence", clip, out, "--frames", pngs, "--json")
    assert r.exit_code == 0, r.output
    numbers = json.loads(r.output)
    f = numbers["encoded_from"]
    assert numbers["output_over_frames"] == pytest.approx(numbers["warping_error"]["output"] / f["warping_error"])
    assert f["ratio_to_source"] > 1 and numbers["long_term_output_over_frames"] > 0
    r = run("coherence", clip, out, "--frames", pngs)
    assert r.exit_code == 0 and "/frames" in r.output and "frames: frames" in r.output, r.output
    alone = run("coherence", clip, "--frames", pngs, "--json")  # a folder alone is measured as the output
    assert alone.exit_code == 0, alone.output
    assert json.loads(alone.output)["warping_error"]["output"] == pytest.approx(f["warping_error"])


def test_coherence_frames_refusals(dreamlike, tmp_path):
    clip, pngs, frames = dreamlike
    out = _encode(pngs, tmp_path / "o.mp4")
    one_line_error(run("coherence", clip), 2, "nothing to measure", "--frames")
    one_line_error(run("coherence", clip, out, "--frames", out), 2, "is not a folder", "--keep-frames")
    small = tmp_path / "small"
    small.mkdir()
    for i in range(3):
        media.write_image(media.frame_path(small, i), frames[i][:32, :48])
    one_line_error(run("coherence", clip, out, "--frames", small), 2, "are 48x32", "not the frames it was encoded from")


def test_a_work_folder_with_a_gap_is_measured_up_to_the_gap(dreamlike, tmp_path):
    import shutil

    clip, pngs, _ = dreamlike
    gappy = tmp_path / "work"
    shutil.copytree(pngs, gappy)
    media.frame_path(gappy, 6).unlink()  # an interrupted render's folder can miss a frame
    r = coherence(clip, gappy)
    assert r["pairs"] == 5 and any("skips from frame 5 to 7" in n for n in r["notes"]), r["notes"]


def test_pix_fmt_is_checked_by_the_settings_and_the_cli(tmp_path, make_clip, photo):
    from dataclasses import replace

    from dreamvid.settings import VideoSettings, validate_video

    with pytest.raises(SettingsError, match="pix_fmt must be one of yuv420p, yuv444p"):
        validate_video(replace(VideoSettings(), pix_fmt="yuv422p"))
    src, _ = make_clip("c.mp4", n=3)
    one_line_error(run("video", src, "-o", tmp_path / "c.gif", "--pix-fmt", "yuv444p"), 2,
                   "a GIF cannot hold pix_fmt yuv444p", ".mp4")
    one_line_error(run("zoom", photo, "-o", tmp_path / "z.mp4", "--pix-fmt", "422"), 2, "pix_fmt must be one of")
    one_line_error(run("zoom", photo, "-o", tmp_path / "z.gif", "--pix-fmt", "yuv444p10le"), 2, "a GIF cannot hold")
    assert not list(tmp_path.glob("*.gif")) and not list(tmp_path.glob("z.*"))


def test_a_real_dream_s_file_keeps_its_frames_steadiness(make_clip, tmp_path):
    """End to end with the bundled model and the `video` preset stepping in RGB (`--decorrelate
    0`, its colours before issue 23, rich in the fine chroma 4:2:0 flickers): the file adds much
    less flicker to the frames it was encoded from (the work folder, kept) than the encode before
    issue 24. Measured on this 128x80 clip of smooth random colour: 1.39x the frames' warping
    error (before: 2.12x; yuv444p: 1.20x); the bench's 14 kinds of footage are within 1.2x
    (docs/coherence.md, "The file"). With the preset's decorrelate 1 there is little left to
    flicker: 1.00x (the encode before issue 24: 1.13x). The GIF of the same frames adds less than half
    the old GIF's flicker."""
    src, _ = make_clip("pan.mp4", n=8, width=128, height=80, motion=(0.7, 0.2))
    out = tmp_path / "pan dream.mp4"
    r = run("video", src, "-o", out, "--keep-frames", "--decorrelate", "0")
    assert r.exit_code == 0, r.output
    work = tmp_path / "pan dream.mp4.dreamvid-work"
    steady = coherence(src, out, frames=work)
    before = coherence(src, media.encode_video(work, tmp_path / "before.mp4", fps=Fraction(25), n_frames=8,
                                               steady=False), frames=work)
    assert steady["output_over_frames"] <= 1.5 and steady["output_over_frames"] < 0.8 * before["output_over_frames"], \
        (steady["output_over_frames"], before["output_over_frames"])
    gifs = {name: coherence(src, media.encode_video(work, tmp_path / f"{name}.gif", fps=Fraction(25), n_frames=8,
                                                    steady=name == "steady"), frames=work)["output_over_frames"]
            for name in ("steady", "before")}
    # measured: GIF 1.97x (before issue 24: 4.45x; f89dda9's denoise and Bayer dither: 3.70x). This smooth texture
    # panning 0.7 px a frame under a steady dream is the GIF's hardest case (docs/coherence.md, "The GIF"): the
    # bench's 14 kinds and the zoom are at 0.23-1.11x.
    assert gifs["steady"] <= 2.2 and gifs["steady"] < 0.6 * gifs["before"], gifs
