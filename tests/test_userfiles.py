"""Special files (issue 25, class 2): dreamvid/userfiles.py is the one way a user's file is
opened. A pipe, a device, a socket, a folder, a symlink loop or a dangling link, as any file
dreamvid reads, is one line naming it before anything opens it (a pipe hung for ever; /dev/zero
was read whole, 2.3 GB in 2 s, then MemoryError); outputs that are loops, devices or sit under
a file are one line too. Then the class is fuzzed over every flag that names a file."""
from __future__ import annotations

import os
import socket
import time
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dreamvid import userfiles
from dreamvid.errors import InputError

from .clitools import one_line_error, refused_or_planned, run, within

KINDS = ("fifo", "zero", "urandom", "fifo_link", "socket", "loop", "dangling", "folder", "under_a_file")


def special(tmp_path, kind: str, suffix: str = ".jpg"):
    """A path of `kind` in tmp_path (made once), named with `suffix`."""
    if kind == "under_a_file":
        (tmp_path / "plain.txt").write_text("a file")
        return tmp_path / "plain.txt" / f"x{suffix}"
    p = tmp_path / f"{kind}{suffix}"
    if os.path.lexists(p):
        return p
    if kind == "fifo":
        os.mkfifo(p)
    elif kind in ("zero", "urandom"):
        os.symlink(f"/dev/{kind}", p)
    elif kind == "fifo_link":
        os.mkfifo(tmp_path / f"target{suffix}")
        os.symlink(tmp_path / f"target{suffix}", p)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(p))
        s.close()
    elif kind == "loop":
        os.symlink(tmp_path / f"loop2{suffix}", p)
        os.symlink(p, tmp_path / f"loop2{suffix}")
    elif kind == "dangling":
        os.symlink(tmp_path / "nowhere", p)
    elif kind == "folder":
        p.mkdir()
    return p


WORDS = {"fifo": "named pipe", "zero": "character device", "urandom": "character device", "fifo_link": "named pipe",
         "socket": "socket", "loop": "symlink loop", "dangling": "does not exist", "folder": "folder",
         "under_a_file": "is a file"}


# ---- the module ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_check_names_what_a_path_is_without_opening_it(kind, tmp_path):
    with within(5), pytest.raises(InputError) as e:
        userfiles.check(special(tmp_path, kind), "image")
    assert WORDS[kind] in e.value.message and "\n" not in e.value.message and e.value.hint


def test_a_link_to_a_device_names_both(tmp_path):
    with pytest.raises(InputError, match=r"zero.jpg \(-> /dev/zero\) is a character device"):
        userfiles.check(special(tmp_path, "zero"), "image")


def test_read_bytes_is_bounded_before_and_while_reading(tmp_path):
    f = tmp_path / "big.bin"
    f.write_bytes(b"x" * 1000)
    assert userfiles.read_bytes(f, "file", 1000) == b"x" * 1000
    with pytest.raises(InputError, match="more than the 999 bytes a file may be"):
        userfiles.read_bytes(f, "file", 999)
    seen = []
    with pytest.raises(InputError, match="more than its header allows"):
        userfiles.read_bytes(f, "file", 10_000, head=lambda head: seen.append(len(head)) or 10)
    assert seen == [1000]


def test_read_text_names_the_encoding(tmp_path):
    f = tmp_path / "t.toml"
    f.write_bytes("a = 'caf\u00e9'".encode("utf-16"))
    with pytest.raises(InputError, match="UTF-16"):
        userfiles.read_text(f, "preset")
    f.write_bytes("a = 'caf\u00e9'".encode("latin-1"))
    with pytest.raises(InputError, match="byte 0xe9 on line 1"):
        userfiles.read_text(f, "preset")
    f.write_bytes(b"\xef\xbb\xbfa = 1")
    assert userfiles.read_text(f, "preset") == "a = 1"


# ---- the cases: every file the CLI reads -------------------------------------------------------------------

FILE_FLAGS = {  # (command, args before the file, flag) -> what the line names
    "image PHOTO": ("image", [], None),
    "image --mask": ("image", ["{photo}"], "--mask"),
    "image --guide": ("image", ["{photo}"], "--guide"),
    "image --preset": ("image", ["{photo}"], "--preset"),
    "zoom PHOTO": ("zoom", [], None),
    "zoom --keyframes": ("zoom", ["{photo}"], "--keyframes"),
    "zoom --audio": ("zoom", ["{photo}"], "--audio"),
    "sweep PHOTO": ("sweep", [], None),
    "timelapse PHOTO": ("timelapse", [], None),
    "video CLIP": ("video", [], None),
    "video --mask": ("video", ["{clip}"], "--mask"),
    "coherence OUTPUT": ("coherence", ["{clip}"], None),
}
SUFFIX = {"--preset": ".toml", "--keyframes": ".toml", "--audio": ".mp3", "video CLIP": ".mp4", "video --mask": ".mp4",
          "coherence OUTPUT": ".mp4"}


def _argv(where: str, path, photo, clip, tmp_path) -> list:
    command, before, flag = FILE_FLAGS[where]
    args = [a.replace("{photo}", str(photo)).replace("{clip}", str(clip)) for a in before]
    args += [flag, path] if flag else [path]
    if command != "coherence":
        args += ["-o", tmp_path / ("o.png" if command in ("image", "sweep") else "o.mp4")]
    if command == "sweep":
        args += ["--vary", "step=0.01,0.02"]
    return [command, *args]


@pytest.fixture
def clip(make_clip):
    return make_clip("c.mp4", n=3)[0]


@pytest.mark.parametrize("where", list(FILE_FLAGS))
@pytest.mark.parametrize("kind", ["fifo", "zero", "urandom", "fifo_link", "loop"])
def test_a_pipe_a_device_or_a_loop_as_any_input_is_one_line_at_once(where, kind, photo, clip, tmp_path):
    path = special(tmp_path, kind, SUFFIX.get(where, SUFFIX.get(FILE_FLAGS[where][2], ".jpg")))
    t = time.perf_counter()
    line = refused_or_planned(*_argv(where, path, photo, clip, tmp_path), seconds=15)
    assert line is not None and WORDS[kind] in line, line
    assert time.perf_counter() - t < 15


@pytest.mark.parametrize("where", ["input", "output"])
def test_a_name_the_file_system_cannot_hold_is_one_line(where, photo, tmp_path):
    """Path.is_dir() and exists() raise ENAMETOOLONG instead of answering: a traceback."""
    long = tmp_path / ("x" * 300 + ".png")
    args = ("image", long, "-o", tmp_path / "o.png") if where == "input" else ("image", photo, "-o", long)
    line = refused_or_planned(*args)
    assert "304 bytes long, more than the 255" in line and where in line


def test_a_preset_that_is_a_pipe_is_named_as_one_not_missing(tmp_path, photo):
    """It said "not found"."""
    line = refused_or_planned("image", photo, "-o", tmp_path / "o.png", "--preset", special(tmp_path, "fifo", ".toml"))
    assert "named pipe" in line and "not found" not in line


@pytest.mark.parametrize("kind, words", [("loop", "symlink loop"), ("zero", "character device"),
                                         ("fifo", "named pipe"), ("under_a_file", "is a file, not a folder")])
def test_an_output_that_cannot_be_written_is_one_line(kind, words, photo, tmp_path):
    """A symlink loop was a RuntimeError traceback; under a file the hint was `mkdir -p flower.jpg`."""
    out = special(tmp_path, kind, ".png")
    before = os.readlink(out) if os.path.islink(out) else None
    line = refused_or_planned("image", photo, "-o", out)
    assert words in line and "mkdir" not in line
    assert (os.readlink(out) if os.path.islink(out) else None) == before  # untouched


def test_an_output_link_to_a_device_is_never_replaced(photo, tmp_path):
    """Writing goes through a temporary file renamed over the output: over /dev/zero that would
    replace the device node itself (as root)."""
    out = special(tmp_path, "zero", ".png")
    one_line_error(run("image", photo, "-o", out), 2, "character device")
    assert os.path.islink(out) and os.readlink(out) == "/dev/zero"


def test_weights_and_model_files_that_are_pipes_are_named(tmp_path, photo):
    from dreamvid.errors import ModelError
    from dreamvid.models import _user_file, get_spec

    pipe = special(tmp_path, "fifo", ".keras")
    with within(5), pytest.raises(ModelError, match="weights file .* named pipe"):
        _user_file(str(pipe), "weights file", "--weights")
    with within(5), pytest.raises(ModelError, match="model file .* named pipe"):
        get_spec(str(pipe))  # before TensorFlow: Keras would block reading it


def test_a_work_folder_that_is_a_pipe_or_a_loop_is_one_line(tmp_path):
    from dreamvid.errors import OutputError
    from dreamvid.render import workdir

    for kind, words in (("fifo", "named pipe"), ("loop", "symlink loop"), ("under_a_file", "is a file")):
        with within(5), pytest.raises(OutputError, match=words):
            workdir.open_work(tmp_path / "o.mp4", kind="zoom", settings={}, source=None, seed=0, start=0, end=2,
                              fps=Fraction(24), work_dir=special(tmp_path, kind, ".w"))


# ---- fuzzed: any kind of path as any file the CLI reads -------------------------------------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(where=st.sampled_from(list(FILE_FLAGS)), kind=st.sampled_from(KINDS))
def test_any_special_path_as_any_input_is_one_line_in_bounded_time(where, kind, photo, clip, tmp_path):
    path = special(tmp_path, kind, SUFFIX.get(where, SUFFIX.get(FILE_FLAGS[where][2], ".jpg")))
    t = time.perf_counter()
    line = refused_or_planned(*_argv(where, path, photo, clip, tmp_path), seconds=15)
    assert line is not None  # never accepted: none of these is a file to read
    assert time.perf_counter() - t < 15
