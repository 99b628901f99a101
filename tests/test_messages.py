"""The messages of issue 25, class 6: each failure names what is wrong and the way out, in one
line, and is never wrong about what was kept. (The interrupts of class 6: test_signals.py.)"""
from __future__ import annotations

import errno
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .clitools import error_line, refused_or_planned, run
from .conftest import run_ffmpeg

TINY = ("--layer", "conv3", "-i", "1", "--num-octave", "1")
VIDEO_FAST = (*TINY, "--frame-iterations", "1", "--frame-num-octave", "1")


def _disk_full_after(monkeypatch, writes: int):
    """The disk fills up after `writes` files were written (every write goes through atomic_destination)."""
    import dreamvid.media.images as images

    real, calls = images.atomic_destination, []

    def filling_up(dest, suffix=""):
        calls.append(dest)
        if len(calls) > writes:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(dest, suffix)

    monkeypatch.setattr(images, "atomic_destination", filling_up)


def test_a_full_disk_writing_a_still_never_says_kept_in_none(photo, tiny, tmp_path, monkeypatch):
    """It said "finished items are kept in None"."""
    _disk_full_after(monkeypatch, 0)
    line = error_line(run("image", photo, "-o", tmp_path / "o.png", "--model", tiny, *TINY), 1,
                      "No space left on device", "nothing was written")
    assert "None" not in line and not (tmp_path / "o.png").exists()


def test_a_full_disk_in_a_batch_says_the_earlier_results_are_kept(photo, tiny, tmp_path, monkeypatch):
    import shutil

    a, b = shutil.copy(photo, tmp_path / "a.png"), shutil.copy(photo, tmp_path / "b.png")
    _disk_full_after(monkeypatch, 1)
    r = run("image", a, b, "-o", tmp_path / "out", "--model", tiny, *TINY)
    line = error_line(r, 1, "No space left on device", "--skip-existing")
    assert "None" not in line and (tmp_path / "out" / "a.dream.png").exists()


def test_a_full_disk_before_the_first_frame_names_no_removed_folder(make_clip, tiny, tmp_path, monkeypatch):
    """It named a work folder that the clean-up had just removed."""
    src, _ = make_clip("d.mp4", n=4)
    _disk_full_after(monkeypatch, 0)
    line = error_line(run("video", src, "-o", tmp_path / "o.mp4", "--model", tiny, *VIDEO_FAST), 1,
                      "No space left on device", "nothing was finished, so no work folder is kept")
    assert not (tmp_path / "o.mp4.dreamvid-work").exists() and "kept in" not in line


def test_a_full_disk_after_some_frames_names_the_folder_that_keeps_them(make_clip, tiny, tmp_path, monkeypatch):
    src, _ = make_clip("d.mp4", n=5)
    _disk_full_after(monkeypatch, 2)
    line = error_line(run("video", src, "-o", tmp_path / "o.mp4", "--model", tiny, *VIDEO_FAST), 1,
                      "No space left on device", "the 2 finished frames are kept in", "run the same command again")
    assert str(tmp_path / "o.mp4.dreamvid-work") in line


def test_o_naming_an_existing_folder_dreams_into_it(photo, tiny, tmp_path):
    """It said "names one picture, but 1 photos were given"."""
    folder = tmp_path / "renders.png"
    folder.mkdir()
    r = run("image", photo, "-o", folder, "--model", tiny, *TINY)
    assert r.exit_code == 0, r.output
    assert (folder / f"{photo.stem}.dream.png").exists()


def test_an_output_under_a_file_says_so_without_mkdir(photo, tmp_path):
    """The hint was `mkdir -p flower.jpg`."""
    flower = tmp_path / "flower.jpg"
    flower.write_bytes(b"a file")
    for out in (flower / "o.png", flower / "a" / "b" / "o.png"):
        line = refused_or_planned("image", photo, "-o", out)
        assert "flower.jpg is a file" in line and "mkdir" not in line


@pytest.mark.parametrize("kind, words", [("silent", "it is a video without a soundtrack"),
                                         ("jpeg", "it is a still image, not a sound file"),
                                         ("text", "cannot read audio from notes.mp3 (")])
def test_audio_without_a_soundtrack_is_named_not_invalid_argument(kind, words, photo, make_clip, tmp_path):
    """ffmpeg's answer was "Invalid argument"."""
    path = {"silent": lambda: make_clip("silent.mp4", n=3)[0], "jpeg": lambda: photo,
            "text": lambda: (tmp_path / "notes.mp3").write_text("la la") and tmp_path / "notes.mp3"}[kind]()
    line = refused_or_planned("zoom", photo, "-o", tmp_path / "z.mp4", "--audio", path)
    assert words in line and "Invalid argument" not in line


def test_an_all_black_mask_clip_is_refused_before_work(make_clip, tmp_path):
    """It exited 0 having dreamed nothing; an all-black mask image was already refused."""
    src, _ = make_clip("c.mp4", n=4)
    black = tmp_path / "black.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x48:r=25", "-frames:v", "6", "-pix_fmt", "yuv420p", str(black))
    line = refused_or_planned("video", src, "-o", tmp_path / "o.mp4", "--mask", black)
    assert "black in every frame" in line and "white marks what dreams" in line


def test_a_mask_clip_black_only_at_first_is_dreamed(make_clip, tmp_path):
    src, _ = make_clip("c.mp4", n=4)
    late = tmp_path / "late.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x48:r=25:d=0.08", "-f", "lavfi", "-i",
               "color=c=white:s=64x48:r=25:d=0.12", "-filter_complex", "[0][1]concat=n=2:v=1", "-pix_fmt", "yuv420p",
               str(late))
    assert refused_or_planned("video", src, "-o", tmp_path / "o.mp4", "--mask", late) is None
    line = refused_or_planned("video", src, "-o", tmp_path / "o.mp4", "--mask", late, "--end", "f2")
    assert "black in every frame of the range" in line  # frames 0-1 are the black ones


@pytest.mark.parametrize("layers", [["block4c_out:0*t"], ["block4c_out:0*t", "block5c_out:0"],
                                    ["block4c_out:max(0,t-100)"]])
def test_layer_weights_zero_at_every_frame_are_refused_before_work(layers, make_clip, tmp_path):
    """`-l X:0*t` exited 0 having dreamed nothing."""
    src, _ = make_clip("c.mp4", n=4)
    args = [w for spec in layers for w in ("-l", spec)]
    line = refused_or_planned("video", src, "-o", tmp_path / "o.mp4", *args)
    assert "every layer weight is 0 at every frame" in line


def test_a_weight_zero_only_at_the_start_is_dreamed(make_clip, tmp_path):
    src, _ = make_clip("c.mp4", n=4)
    assert refused_or_planned("video", src, "-o", tmp_path / "o.mp4", "-l", "block4c_out:t") is None


# ---- fuzzed: output paths of every shape ---------------------------------------------------------------------------

SHAPES = ["existing folder x.png", "under a file", "deep under a file", "symlink loop", "link to /dev/null",
          "a FIFO", "missing folder", "a file named x.mp4", "a folder named x.mp4"]


def _output(shape: str, tmp_path, ext: str):
    import os

    base = tmp_path / "shapes"
    base.mkdir(exist_ok=True)
    p = base / f"{shape.replace(' ', '_').replace('/', '')}{ext}"
    if shape == "under a file":
        (base / "f.jpg").write_bytes(b"x")
        return base / "f.jpg" / f"o{ext}"
    if shape == "deep under a file":
        (base / "f.jpg").write_bytes(b"x")
        return base / "f.jpg" / "a" / "b" / f"o{ext}"
    if shape == "missing folder":
        return base / "nowhere" / f"o{ext}"
    if os.path.lexists(p):
        return p
    if shape == "existing folder x.png" or shape == "a folder named x.mp4":
        p.mkdir()
    elif shape == "symlink loop":
        os.symlink(p, p)
    elif shape == "link to /dev/null":
        os.symlink("/dev/null", p)
    elif shape == "a FIFO":
        os.mkfifo(p)
    elif shape == "a file named x.mp4":
        p.write_bytes(b"old")
    return p


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(shape=st.sampled_from(SHAPES), command=st.sampled_from(["image", "zoom", "video", "sweep", "timelapse"]),
       ext=st.sampled_from([".png", ".mp4", ".gif", ""]))
def test_any_output_path_is_planned_or_one_line(shape, command, ext, photo, make_clip, tmp_path):
    clip = tmp_path / "c.mp4"
    if not clip.exists():
        make_clip("c.mp4", n=3)
    out = _output(shape, tmp_path, ext)
    args = {"video": [clip], "sweep": [photo, "--vary", "seed=0,1"]}.get(command, [photo])
    t = time.perf_counter()
    refused_or_planned(command, *args, "-o", out, seconds=20)
    assert time.perf_counter() - t < 20
    if shape == "link to /dev/null":  # never written over: the rename would replace the device node
        assert out.is_symlink()
