"""`dreamvid zoom | timelapse | sweep` through Typer's CliRunner: bad input and one real run each.

Every refused input exits with its documented code and ONE `Error:` line, no traceback, and
is refused before a network is loaded (the bad-input tests do not pay for TensorFlow).
The end-to-end runs use the bundled efficientnet_lite0 on a tiny picture.
"""

import cv2
import numpy as np
import pytest

from dreamvid import media

from .clitools import one_line_error, run

def keyframes_file(tmp_path, text):
    path = tmp_path / "keys.toml"
    path.write_text(text)
    return path


# ---- zoom: bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragments", [
    (["--zoom", "0"], ["zoom must be > 0"]),
    (["--zoom", "-1.5"], ["zoom must be > 0"]),
    (["--fps", "0"], ["fps must be between 0.1 and"]),
    (["--fps", "-24"], ["fps"]),
    (["--fps", "fast"], ["is not a number"]),
    (["--duration", "0"], ["duration must be > 0"]),
    (["--duration", "-3"], ["duration must be > 0"]),
    (["--frames", "0"], ["frames must be between 1 and"]),
    (["--duration", "2", "--frames", "10"], ["not both"]),
    (["--pan", "12"], ["--pan must be two numbers"]),
    (["--center", "0.5,1.5"], ["center must be fractions"]),
    (["--color-hold", "3"], ["color_hold must be between 0 and 1"]),
    (["--interpolation", "bicubic"], ["interpolation must be one of"]),
    (["--frame-iterations", "-1"], ["frame_iterations"]),
    (["--step", "0"], ["step must be > 0"]),
    (["--preset", "nope"], ["unknown preset"]),
    (["--zoom", "__import__('os')"], ["unknown function '__import__' (column 1)"]),
    (["--rotate", "t.real"], ["attribute access is not allowed"]),
    (["--zoom", "1 +"], ["not a valid expression (column"]),
    (["--zoom", "1 - t", "--duration", "3"], ["frame", "zoom must be > 0"]),
    (["--rotate", "1/(t-1)", "--duration", "2"], ["is inf at frame 24"]),
    (["--zoom", "1 + onset"], ["uses onset", "--audio"]),
    (["--audio", "{tmp}/none.mp3"], ["does not exist"]),
    (["--pan", "sin(t, 1), 0"], ["sin() takes 1 arguments"]),
    (["-o", "{tmp}/zoom.png"], ["a zoom is a clip"]),
    (["-o", "{tmp}/missing/zoom.mp4"], ["does not exist"]),
])
def test_zoom_refuses(photo, tmp_path, args, fragments):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "-o" not in args:
        args += ["-o", tmp_path / "z.mp4"]
    one_line_error(run("zoom", photo, *args), 2, *fragments)
    assert not list(tmp_path.glob("*.dreamvid-work"))


@pytest.mark.parametrize("text, fragments", [
    ("[[keyframe]]\ntime = 2\nzoom = 1.2\n[[keyframe]]\ntime = 1\nzoom = 1.5\n", ["keyframe 2 has time 1", "time 2"]),
    ("[[keyframe]]\ntime = 0\nzom = 1.2\n", ["keyframe 1: unknown key 'zom'"]),
    ("[[keyframe]]\ntime = 0\neasing = \"bouncy\"\n", ["easing 'bouncy' is not known"]),
    ("[[keyframe]]\ntime = 0\nzoom = -1\n", ["zoom must be > 0"]),
    ("[camera]\nzoom = 1\n", ["unknown top-level key 'camera'"]),
    ("[[keyframe]]\ntime = 0\niterations = 2.5\n", ["iterations must be a whole number"]),
    ("this is not toml", ["not valid TOML"]),
])
def test_zoom_refuses_bad_keyframes(photo, tmp_path, text, fragments):
    r = run("zoom", photo, "-o", tmp_path / "z.mp4", "--keyframes", keyframes_file(tmp_path, text))
    one_line_error(r, 2, *fragments)


def test_zoom_refuses_what_image_refuses(tmp_path, photo):
    one_line_error(run("zoom", tmp_path / "nope.jpg", "-o", tmp_path / "z.mp4"), 2, "does not exist")
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("hello")
    one_line_error(run("zoom", not_image, "-o", tmp_path / "z.mp4"), 2, "not an image")
    one_line_error(run("zoom", photo, "-o", tmp_path / "z.mp4", "--keyframes", tmp_path / "none.toml"), 2,
                   "keyframes file", "does not exist")


def test_zoom_interrupted_keeps_frames_and_resumes(photo, tiny, tmp_path, monkeypatch):
    from dreamvid.render import zoom

    out = tmp_path / "frames"
    args = ["zoom", photo, "-o", out, "--model", tiny, "--layer", "conv3", "--frames", "4", "--fps", "6",
            "-i", "2", "--frame-iterations", "1", "--zoom", "1.5"]
    make = zoom.Frames.make

    def ctrl_c_at_frame_2(self, i, *a, **k):
        if i == 2:
            raise KeyboardInterrupt
        return make(self, i, *a, **k)

    monkeypatch.setattr(zoom.Frames, "make", ctrl_c_at_frame_2)
    r = run(*args)
    assert r.exit_code == 130, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("Interrupted: 2 finished frames kept in") and "Resume with: dreamvid zoom" in last
    assert "--frames 4" in last and "Traceback" not in r.output
    monkeypatch.setattr(zoom.Frames, "make", make)
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == [f"frame_0000{i}.png" for i in range(4)]
    assert media.read_image(out / "frame_00003.png").shape == (48, 64, 3)
    assert not (tmp_path / "frames.dreamvid-work").exists()


# ---- timelapse: bad input ----------------------------------------------------------------------

@pytest.mark.parametrize("args, fragments", [
    (["--checkpoints", "80,40"], ["checkpoints must increase, but 40 comes after 80"]),
    (["--checkpoints", "40,40"], ["checkpoints must increase"]),
    (["--checkpoints", ""], ["checkpoints is empty"]),
    (["--checkpoints", "40,lots"], ["checkpoints must be whole numbers"]),
    (["--checkpoints", "-5,10"], ["checkpoints must be whole numbers"]),
    (["--checkpoints", "40,80", "--every", "5"], ["not both"]),
    (["--checkpoints", "40,80", "--iterations", "5"], ["--iterations does nothing with --checkpoints"]),
    (["--every", "0"], ["every must be between 1 and"]),
    (["--every", "500", "--iterations", "10"], ["more than the whole run's 60 steps (6 octaves x 10"]),
    (["--fps", "0"], ["fps must be between 0.1 and"]),
    (["--hold", "0"], ["hold must be > 0"]),
    (["--fade", "-1"], ["fade must be >= 0"]),
    (["--cell-size", "0"], ["cell_size must be between 16 and"]),
    (["-o", "{tmp}/lapse.txt"], ["cannot write '.txt' files"]),
])
def test_timelapse_refuses(photo, tmp_path, args, fragments):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "-o" not in args:
        args += ["-o", tmp_path / "lapse.mp4"]
    one_line_error(run("timelapse", photo, *args), 2, *fragments)


# ---- sweep: bad input --------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragments", [
    (["--vary", "step="], ["--vary step has no values"]),
    (["--vary", "step=,"], ["--vary step has no values"]),
    (["--vary", "step"], ["is not KEY=VALUE"]),
    (["--vary", "stepsize=0.1,0.2"], ["cannot vary 'stepsize'"]),
    (["--vary", "num_octave=3,six"], ["'six' is not a whole number"]),
    (["--vary", "step=0.01,-0.5"], ["sweep cell step = -0.5: step must be > 0"]),
    (["--vary", "step=0.01", "--vary", "step=0.02"], ["step is varied twice"]),
    (["--vary", "seed=" + ",".join(map(str, range(9))), "--vary", "jitter=" + ",".join(map(str, range(9)))],
     ["81 cells (9 x 9), more than the limit of 64"]),
    (["--vary", "iterations=9000,10000", "--vary", "num_octave=10,20"], ["megapixel-steps, more than the limit"]),
    (["--vary", "step=0.01", "-o", "{tmp}/grid.mp4"], ["a sweep is one picture"]),
])
def test_sweep_refuses(tmp_path, args, fragments):
    big = tmp_path / "big.png"  # large enough that the work limit bites
    cv2.imwrite(str(big), np.full((2000, 3000, 3), 128, np.uint8))
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "-o" not in args:
        args += ["-o", tmp_path / "grid.png"]
    one_line_error(run("sweep", big, *args), 2, *fragments)


def ctrl_c_on_dream(monkeypatch, at: int):
    """Make the `at`-th Dreamer.dream call (1-based) raise KeyboardInterrupt."""
    from dreamvid.dream import Dreamer

    dream, calls = Dreamer.dream, []

    def pressed(self, *a, **k):
        calls.append(1)
        if len(calls) == at:
            raise KeyboardInterrupt
        return dream(self, *a, **k)

    monkeypatch.setattr(Dreamer, "dream", pressed)
    return lambda: monkeypatch.setattr(Dreamer, "dream", dream)


def test_sweep_interrupted_keeps_cells_and_resumes(photo, tiny, tmp_path, monkeypatch):
    out = tmp_path / "grid.png"
    args = ["sweep", photo, "-o", out, "--model", tiny, "--layer", "conv3", "--vary", "step=0.01,0.05,0.1",
            "-i", "1", "--num-octave", "1"]
    release = ctrl_c_on_dream(monkeypatch, at=3)
    r = run(*args)
    assert r.exit_code == 130, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("Interrupted: 2 finished cells kept in") and "Resume with: dreamvid sweep" in last
    assert "--vary step=0.01,0.05,0.1" in last and "Traceback" not in r.output
    release()
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert out.is_file() and not (tmp_path / "grid.png.dreamvid-work").exists()


def test_timelapse_interrupted_before_a_checkpoint_or_in_a_continuous_run(photo, tiny, tmp_path, monkeypatch):
    common = ["--model", tiny, "--layer", "conv3", "--num-octave", "1"]
    release = ctrl_c_on_dream(monkeypatch, at=1)
    r = run("timelapse", photo, "-o", tmp_path / "a.png", "--checkpoints", "1,2", *common)
    assert r.exit_code == 130 and r.output.strip().splitlines()[-1] == "Interrupted before the first checkpoint " \
        "was finished.", r.output
    assert not (tmp_path / "a.png.dreamvid-work").exists()
    release()
    release = ctrl_c_on_dream(monkeypatch, at=1)
    r = run("timelapse", photo, "-o", tmp_path / "b.png", "--every", "1", "-i", "2", *common)
    assert r.exit_code == 130 and r.output.strip().splitlines()[-1] == "Interrupted.", r.output
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "b.png.dreamvid-work").exists()
    release()


def test_sweep_needs_an_axis(photo, tmp_path):
    r = run("sweep", photo, "-o", tmp_path / "grid.png")
    assert r.exit_code == 2 and "--vary" in r.output and "Traceback" not in r.output


# ---- one real run of each with the bundled network ---------------------------------------------

@pytest.mark.slow
def test_zoom_end_to_end_gif(photo, tmp_path):
    out = tmp_path / "zoom.gif"
    r = run("zoom", photo, "-o", out, "--frames", "4", "--fps", "8", "-i", "2", "--num-octave", "1",
            "--frame-iterations", "1", "--frame-num-octave", "1")
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines()[-1] == str(out.resolve())
    import imageio_ffmpeg

    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == 4
    assert not (tmp_path / "zoom.gif.dreamvid-work").exists()


@pytest.mark.slow
def test_timelapse_end_to_end_contact_sheet(photo, tmp_path):
    out = tmp_path / "lapse.png"
    r = run("timelapse", photo, "-o", out, "--checkpoints", "1,2,3", "--num-octave", "1")
    assert r.exit_code == 0, r.output
    sheet = media.read_image(out)
    assert sheet.shape[0] > 2 * 48 and sheet.shape[1] > 2 * 64


@pytest.mark.slow
def test_sweep_end_to_end(photo, tmp_path):
    out, cells = tmp_path / "grid.png", tmp_path / "cells"
    r = run("sweep", photo, "-o", out, "--vary", "step=0.01,0.05", "-i", "2", "--num-octave", "1",
            "--save-cells", cells)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in cells.iterdir()) == ["step=0.01.png", "step=0.05.png"]
    assert media.read_image(out).shape[1] > 2 * 64


def test_zoom_dry_run_prints_the_schedule_and_preview_draws_the_path(photo, tmp_path):
    import json

    r = run("zoom", photo, "--dry-run", "--json", "--frames", "4", "--fps", "4", "--zoom", "1 + 0.5*t",
            "--pan", "10*cos(t), 0")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [round(x["zoom"], 3) for x in rows] == [1.0, 1.125, 1.25, 1.375]
    assert rows[0]["pan"] == [10.0, 0.0] and not list(tmp_path.glob("*.dreamvid-work"))
    table = run("zoom", photo, "--dry-run", "--frames", "3")
    assert table.exit_code == 0 and "frame" in table.stdout and "iterations" in table.stdout
    out = tmp_path / "p.mp4"
    r = run("zoom", photo, "--preview", "--frames", "6", "-o", out)
    assert r.exit_code == 0, r.output
    from dreamvid import media

    assert media.probe_video(out).n_frames == 6
