"""The CLI's still-image and info commands through Typer's CliRunner: happy paths and bad input."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dreamvid import __version__

from .clitools import error_line, one_line_error, run

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_version():
    r = run("--version")
    assert r.exit_code == 0 and r.output.strip() == f"dreamvid {__version__}"


def test_image_with_a_tiny_model(photo, tiny, tmp_path):
    out = tmp_path / "out.jpg"
    r = run("image", photo, "-o", out, "--model", tiny, "--layer", "conv3:1.0", "-i", "3", "--num-octave", "2")
    assert r.exit_code == 0, r.output
    img = cv2.imread(str(out))
    assert img.shape == (48, 64, 3)
    assert np.abs(img.astype(int) - cv2.imread(str(photo)).astype(int)).mean() > 1


def test_image_default_output_is_beside_the_source(photo, tiny):
    r = run("image", photo, "--model", tiny, "-i", "1", "--num-octave", "1")
    assert r.exit_code == 0, r.output
    assert (photo.parent / "photo.dream.png").is_file()


TINY_FAST = ("--layer", "conv3", "-i", "1", "--num-octave", "1")


def photos(folder: Path, names) -> list[Path]:
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(len(names))
    for name in names:
        cv2.imwrite(str(folder / name), cv2.GaussianBlur(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8), (5, 5), 0))
    return [folder / n for n in names]


def test_a_batch_of_photos_and_folders_into_one_folder(tmp_path, tiny):
    a, b = photos(tmp_path / "trip", ["a.jpg", "b.png"])
    (tmp_path / "trip" / "a.dream.png").write_bytes(b"an earlier result, not a photo")  # left out of the folder
    (tmp_path / "trip" / "notes.txt").write_text("not a photo")
    (c,) = photos(tmp_path / "more", ["c.webp"])
    out = tmp_path / "dreams"  # created
    r = run("image", tmp_path / "trip", c, "-o", out, "--model", tiny, *TINY_FAST)
    assert r.exit_code == 0, r.output
    written = [out / "a.dream.png", out / "b.dream.png", out / "c.dream.png"]
    assert [line for line in r.output.splitlines() if line.startswith("/")] == [str(p.resolve()) for p in written]
    assert all(cv2.imread(str(p)).shape == (40, 56, 3) for p in written)


def test_a_bad_photo_in_a_batch_is_skipped_and_reported_at_the_end(tmp_path, tiny):
    good = photos(tmp_path / "in", ["1.jpg", "3.jpg"])
    (tmp_path / "in" / "2.jpg").write_text("not a jpeg")
    r = run("image", tmp_path / "in", "-o", tmp_path / "out", "--model", tiny, *TINY_FAST)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "2.jpg is not an image" in r.output and "(skipped)" in r.output
    assert r.output.strip().splitlines()[-1].startswith("Error: 1 of 3 photos could not be dreamed (2.jpg)")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{p.stem}.dream.png" for p in good]


def test_a_decompression_bomb_in_a_batch_is_reported_and_the_good_photos_are_dreamed(tmp_path, tiny):
    from .test_media import png_bomb

    good = photos(tmp_path / "in", ["1.jpg", "3.png"])
    (tmp_path / "in" / "2.png").write_bytes(png_bomb(50000, 50000))  # 254 bytes claiming 2.5 gigapixels
    r = run("image", tmp_path / "in", "-o", tmp_path / "out", "--model", tiny, *TINY_FAST)
    assert r.exit_code == 2 and "Traceback" not in r.output and "[ WARN" not in r.output, r.output
    skipped = next(line for line in r.output.splitlines() if "(skipped)" in line)
    assert "2.png claims 50000x50000 px" in skipped and "Hint: if the picture is real" in skipped
    assert "DREAMVID_MAX_PIXELS=2500000000" in skipped
    last = r.output.strip().splitlines()[-1]
    assert last == "Error: 1 of 3 photos could not be dreamed (2.png); the other 2 were written."
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{p.stem}.dream.png" for p in good]


def test_a_batch_where_every_photo_failed_says_nothing_was_written(tmp_path, tiny):
    from .test_media import png_bomb

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_text("not a jpeg")
    (folder / "b.png").write_bytes(png_bomb(60000, 1000))
    r = run("image", folder, "-o", tmp_path / "out", "--model", tiny, *TINY_FAST)
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines()[-1] == ("Error: 2 of 2 photos could not be dreamed (a.jpg, b.png); "
                                                 "nothing was written.")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ext=st.sampled_from([".gif", ".mp4", ".mov", ".mkv", ".m4v"]), upper=st.booleans(), stem=st.sampled_from(
    ["x", "my dream", "a.b", "../up"]))
def test_image_refuses_a_video_or_animation_output_before_any_work(photo, tmp_path, monkeypatch, ext, upper, stem):
    monkeypatch.setattr("dreamvid.dream.octaves._dreamer", lambda *a, **k: pytest.fail("a network was loaded"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir(exist_ok=True)
    out = f"sub/{stem}{ext.upper() if upper else ext}"
    r = run("image", photo, "-o", out)
    one_line_error(r, 2, f"{Path(out).name} is a", "but a dreamed photo is a still picture", ".jpg, .png")
    assert not list(tmp_path.rglob(f"*{ext}*")) and not list(tmp_path.rglob(f"*{ext.upper()}*"))


_words = st.text(st.sampled_from("ab ./:-0123456789()"), max_size=30)


@settings(max_examples=200)
@given(message=_words, hint=st.one_of(st.none(), _words))
def test_the_error_line_keeps_every_dot_inside_and_ends_each_sentence_once(message, hint):
    """Paths (../x.jpg), ranges (25..13) and decimals pass untouched; one full stop ends each part."""
    from dreamvid.cli.common import error_text

    line = error_text(message, hint)
    body = message.rstrip()
    assert line.startswith("Error: " + body)
    first, _, rest = line[len("Error: " + body):].partition(" Hint: ")
    assert first == ("" if body.endswith((".", "!", "?")) else ".")
    if hint:
        assert rest.startswith(hint.rstrip()) and rest.endswith(".") and not rest.rstrip(".").endswith("..")
    else:
        assert " Hint: " not in line[len("Error: " + body):]


_COMMANDS = ["image", "video", "zoom", "timelapse", "sweep", "coherence", "layers", "presets"]


@settings(max_examples=60, deadline=None)
@given(command=st.sampled_from(_COMMANDS), flag=st.from_regex(r"--[a-z][a-z-]{1,14}", fullmatch=True))
def test_an_unknown_or_incomplete_flag_is_one_error_line_and_exit_2(command, flag):
    """Unknown flags, flags missing their value, missing arguments: all usage errors, one line each."""
    assume(flag not in ("--help",))
    r = run(command, flag)
    one_line_error(r, 2, f"see `", f"{command} --help` for the options")
    assert "╭" not in r.output and "Usage:" not in r.output


@settings(max_examples=60, deadline=None)
@given(command=st.sampled_from(["image", "zoom", "sweep"]),
       flag=st.sampled_from(["--step", "--iterations", "--num-octave", "--octave-scale", "--max-size", "--tile",
                             "--seed", "--jitter"]),
       value=st.one_of(st.from_regex(r"[a-z%!]{1,8}", fullmatch=True), st.just("1.5.2"), st.just("")))
def test_a_value_that_does_not_parse_is_one_error_line_and_exit_2(tmp_path_factory, command, flag, value):
    r = run(command, tmp_path_factory.getbasetemp() / "no such photo.jpg", flag, value)
    one_line_error(r, 2)  # "Invalid value for '--step': ..." or, for "inf"/"nan", the photo that does not exist
    assert "╭" not in r.output and "Usage:" not in r.output


def test_unknown_command_and_the_help_still_work():
    one_line_error(run("imagee"), 2, "No such command 'imagee'", "Did you mean 'image'", "--help")
    r = run("image", "--help")
    assert r.exit_code == 0 and "--max-size" in r.output
    r = run()
    assert r.exit_code == 2 and "Commands" in r.output  # `dreamvid` alone prints the help, as before


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ext=st.sampled_from([".tif", ".png"]), where=st.integers(8, 400), junk=st.binary(min_size=1, max_size=8))
def test_opencv_log_lines_do_not_come_before_our_error_line(tmp_path_factory, capfd, tiny, ext, where, junk):
    """OpenCV writes `[ERROR:0@0.1] global grfmt_tiff.cpp ...` to fd 2 by itself; the CLI silences it."""
    tmp = tmp_path_factory.mktemp("cv")
    rgb = cv2.GaussianBlur(np.random.default_rng(where).integers(0, 255, (40, 56, 3), dtype=np.uint8), (5, 5), 0)
    data = bytearray(cv2.imencode(ext, rgb)[1].tobytes())
    data[where:where + len(junk)] = junk
    if ext == ".png":  # IHDR not first, every CRC right: OpenCV's own readHeader complains
        data = data[:8] + data[33:-12] + data[8:33] + data[-12:]
    (tmp / f"bad{ext}").write_bytes(bytes(data))
    capfd.readouterr()
    r = run("image", tmp / f"bad{ext}", "-o", tmp / "o.png", "--model", tiny, *TINY_FAST)
    err = capfd.readouterr().err
    assert "[ERROR" not in err and "[ WARN" not in err, err
    if r.exit_code != 0:
        one_line_error(r, 2, f"bad{ext}")


def test_relative_paths_and_ranges_reach_the_error_line_intact(tmp_path, monkeypatch, make_clip):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    one_line_error(run("image", "../x.jpg"), 2, "input ../x.jpg does not exist.")
    src, _ = make_clip("c.mp4", n=30)
    r = run("video", src, "-o", tmp_path / "o.mp4", "--start", "f25", "--end", "f13")
    one_line_error(r, 2, "(frames 25..13)")


def test_a_batch_refuses_clashing_names_and_one_picture_output_before_any_work(tmp_path, tiny):
    (a,) = photos(tmp_path / "x", ["same.jpg"])
    (b,) = photos(tmp_path / "y", ["same.png"])
    one_line_error(run("image", a, b, "-o", tmp_path / "out", "--model", tiny), 2, "would both be written to",
                   "same.dream.png")
    one_line_error(run("image", a, b, "-o", tmp_path / "one.png"), 2, "names one picture, but 2 photos were given")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_interrupted_batch_resumes_with_skip_existing(tmp_path, tiny, monkeypatch):
    import shlex

    import dreamvid.dream as dream

    folder = tmp_path / "in"
    photos(folder, ["1.jpg", "2.jpg", "3.jpg"])
    real, calls = dream.dream_image, []

    def ctrl_c_on_the_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(dream, "dream_image", ctrl_c_on_the_second)
    r = run("image", folder, "-o", tmp_path / "out", "--model", tiny, *TINY_FAST)
    assert r.exit_code == 130, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("Interrupted: 1 of 3 images written. Resume with: dreamvid image ")
    assert last.endswith("--skip-existing") and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["1.dream.png"]
    first = (tmp_path / "out" / "1.dream.png").stat().st_mtime_ns
    calls.clear()
    monkeypatch.setattr(dream, "dream_image", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    r = run(*shlex.split(last.split("Resume with: ")[1])[1:])
    assert r.exit_code == 0, r.output
    assert len(calls) == 2 and (tmp_path / "out" / "1.dream.png").stat().st_mtime_ns == first
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["1.dream.png", "2.dream.png", "3.dream.png"]


def test_image_end_to_end_with_the_bundled_default_model(tmp_path):
    out = tmp_path / "cat.png"
    r = run("image", SAMPLES / "chelsea.jpg", "-o", out, "--preset", "classic", "--max-size", "128", "-i", "4")
    assert r.exit_code == 0, r.output
    dreamed = cv2.imread(str(out))
    assert dreamed.shape == (85, 128, 3)
    source = cv2.resize(cv2.imread(str(SAMPLES / "chelsea.jpg")), (128, 85), interpolation=cv2.INTER_AREA)
    diff = np.abs(dreamed.astype(int) - source.astype(int)).mean()
    assert 2 < diff < 60  # dreamed, but still the same picture


def test_models_layers_presets_listings():
    r = run("models")
    assert r.exit_code == 0 and "efficientnet_lite0 *" in r.output and "inception_v3" in r.output
    r = run("layers", "efficientnet_lite0")
    assert r.exit_code == 0 and "block4c_out" in r.output and "14 x 14 x 80" in r.output
    r = run("presets")
    assert r.exit_code == 0 and "classic" in r.output and "eyes" in r.output
    r = run("presets", "show", "classic")
    assert r.exit_code == 0 and "step = 0.01" in r.output and "num_octave = 3" in r.output


def test_models_fetch_of_a_bundled_model_needs_nothing():
    one_line_error(run("models", "fetch", "vgg16_hed"), 2, "needs no download")


# ---- bad input: one line, documented exit code, no traceback ------------------------------

def test_missing_input(tmp_path):
    one_line_error(run("image", tmp_path / "nope.jpg", "-o", tmp_path / "o.png"), 2, "nope.jpg")


def test_directory_as_input(tmp_path, photo):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pictures here")
    one_line_error(run("image", empty), 2, "holds no images", "give photos or a folder")
    one_line_error(run("image", photo.parent, "-o", tmp_path / "o.png"), 2, "names one picture",
                   "give a folder for -o")


def test_text_file_named_jpg(tmp_path):
    f = tmp_path / "notes.jpg"
    f.write_text("not a picture\n")
    one_line_error(run("image", f, "-o", tmp_path / "o.png"), 2, "notes.jpg")


def test_truncated_jpeg(tmp_path):
    data = (SAMPLES / "chelsea.jpg").read_bytes()
    f = tmp_path / "cut.jpg"
    f.write_bytes(data[: len(data) // 2])
    one_line_error(run("image", f, "-o", tmp_path / "o.png"), 2, "cut.jpg")


@pytest.mark.parametrize("size", [1, 10])
def test_image_too_small_for_the_octaves(tmp_path, size):
    f = tmp_path / "small.png"
    cv2.imwrite(str(f), np.full((size, size, 3), 128, np.uint8))
    one_line_error(run("image", f, "-o", tmp_path / "o.png"), 2, "too small")


def test_unknown_model(photo, tmp_path):
    one_line_error(run("image", photo, "-o", tmp_path / "o.png", "--model", "alexnet"), 2,
                   "unknown model 'alexnet'", "efficientnet_lite0")


def test_unknown_layer_lists_valid_ones(photo, tmp_path):
    one_line_error(run("image", photo, "-o", tmp_path / "o.png", "--layer", "block4z_out"), 2,
                   "block4z_out", "block4c_out")


def test_preset_with_a_typo_key(photo, tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text("[dream]\nsetp = 0.02\n")
    one_line_error(run("image", photo, "-o", tmp_path / "o.png", "--preset", p), 2, "setp", "step")


def test_unknown_preset(photo, tmp_path):
    one_line_error(run("image", photo, "-o", tmp_path / "o.png", "--preset", "swirly"), 2, "swirly", "swirls")


@pytest.mark.parametrize("flag,value,fragment", [
    ("--step", "0", "step must be > 0"),
    ("--step", "-0.1", "step must be > 0"),
    ("--num-octave", "0", "num_octave must be between 1"),
    ("--octave-scale", "1.0", "octave_scale must be > 1.0"),
    ("--octave-scale", "0.7", "octave_scale must be > 1.0"),
    ("--tile-batch", "0", "tile_batch must be"),
])
def test_out_of_range_values(photo, tmp_path, flag, value, fragment):
    one_line_error(run("image", photo, "-o", tmp_path / "o.png", flag, value), 2, fragment)


def test_output_into_a_missing_directory(photo, tmp_path):
    one_line_error(run("image", photo, "-o", tmp_path / "no" / "such" / "o.png"), 2, "no/such does not exist")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_output_into_an_unwritable_directory(photo, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    one_line_error(run("image", photo, "-o", ro / "o.png"), 2, "o.png")


def test_output_into_a_read_only_directory_as_root(photo, tmp_path, monkeypatch):
    """Root ignores permission bits, so refuse through the same check os.access drives."""
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == ro else real_access(p, mode, **kw))
    one_line_error(run("image", photo, "-o", ro / "o.png"), 2, "ro")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
@pytest.mark.parametrize("command,name", [("image", "x.png"), ("video", "x.mp4"), ("zoom", "z.gif")])
def test_an_output_in_a_folder_that_takes_no_files_is_not_called_missing(photo, make_clip, command, name):
    """/proc exists, and root passes its permission bits, but no file can be made there."""
    src = make_clip("c.mp4", n=3)[0] if command == "video" else photo
    r = run(command, src, "-o", f"/proc/{name}")
    line = error_line(r, 2, "/proc")
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert "does not exist" not in line and ("does not take new files" in line or "not writable" in line)


def test_output_equal_to_input_is_refused(photo):
    before = photo.read_bytes()
    one_line_error(run("image", photo, "-o", photo), 2, "photo.png")
    assert photo.read_bytes() == before


def test_unknown_output_extension(photo, tmp_path):
    one_line_error(run("image", photo, "-o", tmp_path / "o.xyz"), 2, "o.xyz")


def test_the_cli_imports_tensorflow_with_onednn_on():
    """The quiet import must go through models.setup_tensorflow, which turns oneDNN on before
    TensorFlow's first import (imported plainly, oneDNN stays off on AVX2 CPUs: steps
    1.3-1.8x slower, bench/). A fresh process, since this one has TensorFlow already."""
    import subprocess
    import sys

    code = ("from dreamvid.cli.common import import_tensorflow_quietly\n"
            "import_tensorflow_quietly()\n"
            "from tensorflow.python.util import _pywrap_util_port\n"
            "print(_pywrap_util_port.IsMklEnabled())\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "True"


# ---- a newcomer's mistakes (issue 27) --------------------------------------------------------

def test_a_forgotten_o_is_caught_before_any_work(tmp_path, monkeypatch, tiny):
    monkeypatch.chdir(tmp_path)
    (photo,) = photos(tmp_path / "in", ["a.jpg"])
    for name in ("dream.png", "dreams"):  # a picture, or a folder for a batch
        one_line_error(run("image", photo, name, "--model", tiny), 2, f"photo {name} does not exist",
                       f"did you mean `-o {name}`?")
    assert not list((tmp_path / "in").glob("*.dream.*"))  # a.jpg was not dreamed first
    # a missing name that no output could have (a video): an ordinary missing photo of a batch
    r = run("image", photo, "clip.mp4", "-o", tmp_path / "out", "--model", tiny, *TINY_FAST)
    assert r.exit_code == 2 and "clip.mp4 does not exist (skipped)" in r.output and "-o clip.mp4" not in r.output
    assert (tmp_path / "out" / "a.dream.png").is_file()


def test_a_stray_word_after_a_single_source_is_the_o_it_meant():
    for command, name in (("video", "dream.mp4"), ("zoom", "zoom.mp4"), ("timelapse", "lapse.mp4")):
        one_line_error(run(command, "in.mp4", name), 2, f"unexpected extra argument(s) ({name})",
                       f"did you mean `-o {name}`?")
    one_line_error(run("layers", "efficientnet_lite0", "more"), 2, "see `dreamvid layers --help`")  # no -o there


def test_a_folder_leaves_out_its_masks_by_name(tmp_path, tiny):
    photos(tmp_path / "in", ["cat.jpg", "cat-mask.png", "face_MASK.png", "mask.png", "damask.jpg"])
    r = run("image", tmp_path / "in", "-o", tmp_path / "out", "--model", tiny, *TINY_FAST)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cat.dream.png", "damask.dream.png"]
    assert "left out of" in r.output and "cat-mask.png, face_MASK.png, mask.png (masks, by their names" in r.output
    r = run("image", tmp_path / "in" / "cat-mask.png", "-o", tmp_path / "m.png", "--model", tiny, *TINY_FAST)
    assert r.exit_code == 0 and (tmp_path / "m.png").is_file()  # given by its path, a mask is dreamed


def test_a_video_given_to_image_gets_a_hint_to_paste(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "bunny.mp4").write_bytes((SAMPLES / "bunny.mp4").read_bytes())
    one_line_error(run("image", "clips/bunny.mp4"), 2, "`dreamvid video clips/bunny.mp4`")


def test_an_error_after_the_progress_started_is_not_preceded_by_an_empty_line(tmp_path):
    """In a pipe (a log, a script) the image command's transient progress display shows nothing:
    the one Error: line is all of stderr, even when the error comes once the work has started."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "dreamvid", "image", str(SAMPLES / "chelsea.jpg"), "-o",
                           str(tmp_path / "x.png"), "--max-size", "64", "--weights", str(tmp_path / "none.h5")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith("Error: weights file not found"), proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""
