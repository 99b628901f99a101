"""`dreamvid video` and `dreamvid coherence` through Typer's CliRunner: a real end-to-end
render with the bundled model, and every bad input as one `Error:` line with its exit code.
"""
from __future__ import annotations

import errno
import json
import shlex
import subprocess
from fractions import Fraction

import pytest

from dreamvid import media

from .clitools import error_line, one_line_error, run
from .conftest import FFMPEG

# The tiny network, dreamed briefly; --layer because the `video` preset names efficientnet's layers.
FAST = ("--layer", "conv3", "--iterations", "2", "--num-octave", "1", "--frame-iterations", "1",
        "--frame-num-octave", "1")


def test_layer_weights_of_time_end_to_end_with_the_bundled_model(make_clip, tmp_path):
    src, _ = make_clip("beat.mp4", n=3, width=64, height=48, audio_hz=110, audio_step_hz=4000)
    out = tmp_path / "beat dream.mp4"
    r = run("video", src, "-o", out, "-l", "block4c_out:0.5+0.5*onset", "-l", "block6d_out:1-0.5*onset",
            "--iterations", "2", "--frame-iterations", "1")
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "beat dream.mp4.params.json").read_text())["frames"]
    assert len(rows) == 3 and all(r["layers"]["block4c_out"] + r["layers"]["block6d_out"] == pytest.approx(1.5)
                                  for r in rows)
    assert media.probe_video(out).n_frames == 3
    r = run("video", src, "-o", tmp_path / "bad.mp4", "-l", "block4c_out:log(f)")  # -inf at frame 0
    one_line_error(r, 2, "layers.block4c_out = 'log(f)' is -inf at frame 0")


def test_end_to_end_with_the_bundled_model_then_coherence(make_clip, tmp_path):
    src, _ = make_clip("walk.mp4", n=6, width=96, height=64, fps=Fraction(30000, 1001), audio_hz=330)
    out = tmp_path / "walk dream.mp4"
    r = run("video", src, "-o", out)  # the `video` preset, efficientnet_lite0
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines()[-1] == str(out)
    info = media.probe_video(out)
    assert (info.n_frames, info.fps, info.has_audio, info.width, info.height) == (6, Fraction(30000, 1001),
                                                                                   True, 96, 64)
    assert not (tmp_path / "walk dream.mp4.dreamvid-work").exists()
    dreamed = next(media.read_frames(out))[1].astype(float)
    source = next(media.read_frames(src))[1].astype(float)
    assert 3 < abs(dreamed - source).mean() < 80  # dreamed, still the same picture
    r = run("coherence", src, out, "--json")
    assert r.exit_code == 0, r.output
    numbers = json.loads(r.output)
    assert numbers["pairs"] == 5 and numbers["warping_error"]["output"] > numbers["warping_error"]["source"] > 0
    r = run("coherence", src, out)
    assert r.exit_code == 0 and "Warping error" in r.output and "/source" in r.output
    assert "Dream strength" in r.output and "later/first" in r.output
    assert numbers["strength"]["later_over_first"] > 0.6 and len(numbers["strength"]["per_frame"]) == 6


def test_options_reach_the_render(make_clip, tiny, tmp_path):
    src, _ = make_clip("o.mp4", n=10, audio_hz=440)
    out = tmp_path / "o.gif"
    r = run("video", src, "-o", out, "--model", tiny, *FAST, "--start", "f2", "--end", "0.32", "--flow", "farneback",
            "--flow-quality", "ultrafast", "--blend", "0.5", "--fps", "10", "--keep-frames", "--seed", "3",
            "--temporal-weight", "0.5", "--strength-hold", "0.25")
    assert r.exit_code == 0, r.output
    assert media.probe_video(out).n_frames == 6  # frames 2..7: 0.32 s is frame 8 at 25 fps
    manifest = json.loads((tmp_path / "o.gif.dreamvid-work" / "render.json").read_text())
    assert manifest["settings"]["video"] == {"blend": 0.5, "flow": "farneback", "flow_quality": "ultrafast",
                                             "frame_iterations": 1, "frame_num_octave": 1, "scene_cuts": True,
                                             "temporal_weight": 0.5, "strength_hold": 0.25, "cadence": 1}
    assert (manifest["seed"], manifest["start"], manifest["end"]) == (3, 2, 8)
    r = run("video", src, "-o", tmp_path / "silent.mp4", "--model", tiny, *FAST, "--no-audio", "--end", "f2",
            "--crf", "30")
    assert r.exit_code == 0, r.output
    assert not media.probe_video(tmp_path / "silent.mp4").has_audio
    r = run("video", src, "--model", tiny, *FAST, "--end", "f2")  # default output beside the source
    assert r.exit_code == 0 and (src.parent / "o.dream.mp4").is_file()


def test_ctrl_c_keeps_frames_prints_the_resume_command_and_it_resumes(make_clip, tiny, tmp_path, monkeypatch,
                                                                      ffmpeg_children):
    import dreamvid.render.video as video

    src, _ = make_clip("c.mp4", n=6)
    out = tmp_path / "c_dream.mp4"
    real, calls = video._dream_frame, []

    def ctrl_c_on_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(video, "_dream_frame", ctrl_c_on_the_third)
    r = run("video", src, "-o", out, "--model", tiny, *FAST, "--restart", "--blend", "0.8")
    assert r.exit_code == 130, r.output
    assert "Traceback" not in r.output and ffmpeg_children() == []
    line = next(line for line in r.output.splitlines() if line.startswith("Interrupted: "))
    assert "2 finished frames kept in" in line
    command = shlex.split(line.split("Resume with: ")[1])
    assert command[:3] == ["dreamvid", "video", str(src)] and "--restart" not in command
    assert "--blend" in command and "0.8" in command
    monkeypatch.setattr(video, "_dream_frame", real)
    r = run(*command[1:])
    assert r.exit_code == 0, r.output
    assert media.probe_video(out).n_frames == 6


def processes_reading(path) -> list[int]:
    """pids of live processes whose command line names `path` (an orphaned ffmpeg would)."""
    import os

    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                words = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if not zombie and os.fsencode(str(path)) in words and int(entry) != os.getpid():
            found.append(int(entry))
    return found


def test_sigterm_is_an_interruption_exit_143_with_frames_kept(make_clip, tiny, tmp_path):
    import os
    import signal
    import sys
    import time

    if not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc to list processes")
    src, _ = make_clip("term.mp4", n=60)
    out, work = tmp_path / "term_dream.mp4", tmp_path / "term_dream.mp4.dreamvid-work"
    proc = subprocess.Popen([sys.executable, "-m", "dreamvid", "video", str(src), "-o", str(out), "--model", tiny,
                             *FAST], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180  # a guard against a hang, not a speed check
        while len(list(work.glob("frame_*.png"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the render ended before it could be terminated: " + proc.stderr.read()
        proc.send_signal(signal.SIGTERM)  # what `kill` and a batch scheduler's time limit send
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("Terminated: ") and "finished frames kept in" in last and "Traceback" not in err
    assert "Resume with: dreamvid video" in last
    kept = len(list(work.glob("frame_*.png")))
    assert kept >= 2 and f"{kept} finished frames" in last
    assert processes_reading(src) == []  # its ffmpeg decoder went with it


@pytest.mark.parametrize("when", ["frame 2", "frame 3", "frame 5", "encoding"])
def test_a_double_ctrl_c_is_handled_like_one(make_clip, tiny, tmp_path, when):
    """Two SIGINTs 10 ms apart: exit 130, frames kept, the resume command; never death by SIGINT
    or C++'s abort (exit 134) from a second KeyboardInterrupt inside the clean-up."""
    import os
    import signal
    import sys
    import time

    if not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc to list processes")
    n = 40
    src, _ = make_clip("dbl.mp4", n=n, width=160, height=96)  # large enough for a visible encode
    out, work = tmp_path / "dbl_dream.mp4", tmp_path / "dbl_dream.mp4.dreamvid-work"
    proc = subprocess.Popen([sys.executable, "-m", "dreamvid", "video", str(src), "-o", str(out), "--model", tiny,
                             *FAST], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as from a terminal
    wanted = n if when == "encoding" else int(when.split()[1])
    try:
        deadline = time.monotonic() + 180  # a guard against a hang, not a speed check
        while len(list(work.glob("frame_*.png"))) < wanted and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if proc.poll() is not None:
            pytest.skip(f"the render ended before {when}")  # a fast machine: nothing to interrupt
        proc.send_signal(signal.SIGINT)
        time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    if proc.returncode == 0 and when == "encoding":
        pytest.skip("the encode finished before the interrupt landed")
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "terminate called" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("Interrupted: ") and "finished frames kept in" in last and "Resume with:" in last, err
    kept = len(list(work.glob("frame_*.png")))
    assert kept >= wanted and f"{kept} finished frame" in last
    assert not out.exists() and not list(tmp_path.glob(".dbl_dream.mp4.*"))  # no partial output, no temp
    assert processes_reading(src) == []


def test_changed_settings_are_refused_until_restart(make_clip, tiny, tmp_path, monkeypatch):
    src, _ = make_clip("s.mp4", n=4)
    out = tmp_path / "s_dream.mp4"
    r = run("video", src, "-o", out, "--model", tiny, *FAST, "--keep-frames")
    assert r.exit_code == 0, r.output
    (out.parent / "s_dream.mp4.dreamvid-work" / "frame_00003.png").unlink()  # as if interrupted
    r = run("video", src, "-o", out, "--model", tiny, *FAST, "--step", "0.05")
    one_line_error(r, 2, "settings have changed (dream.step:", "-> 0.05)", "--restart")
    r = run("video", src, "-o", out, "--model", tiny, *FAST, "--step", "0.05", "--restart")
    assert r.exit_code == 0, r.output


def test_bad_inputs_are_one_line_errors(tmp_path, tiny, make_clip, image_files, ffmpeg_children):
    _, images = image_files
    clip, _ = make_clip("ok.mp4", n=4)
    (tmp_path / "notes.mp4").write_text("hello\n")
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=0.5",
                    str(tmp_path / "tone.m4a")], check=True)
    data = make_clip("z.mp4", n=10)[0].read_bytes()
    (tmp_path / "empty.mp4").write_bytes(data[: data.index(b"mdat") + 4])
    small, _ = make_clip("small.mp4", n=3, width=32, height=24)
    m = ("--model", tiny, *FAST)
    cases = [
        (("video", small), 2, "too small to dream"),
        (("video", tmp_path / "missing.mp4"), 2, "does not exist"),
        (("video", tmp_path / "notes.mp4"), 2, "not a video"),
        (("video", images[".png"]), 2, "still image"),
        (("video", tmp_path / "tone.m4a"), 2, "audio only"),
        (("video", tmp_path / "empty.mp4"), 2, "no video frames"),
        (("video", clip, "--start", "10s"), 2, "beyond the end"),
        (("video", clip, "--start", "f2", "--end", "f1"), 2, "not after"),
        (("video", clip, "--start", "soon"), 2, "neither a time nor a frame index"),
        (("video", clip, "--flow", "magic"), 2, "flow must be one of"),
        (("video", clip, "--flow-quality", "best"), 2, "flow_quality must be one of"),
        (("video", clip, "--blend", "1.5"), 2, "blend must be between 0 and 1"),
        (("video", clip, "--frame-iterations", "-1"), 2, "frame_iterations"),
        (("video", clip, "--temporal-weight", "1.5"), 2, "temporal_weight must be between 0 and 1"),
        (("video", clip, "--strength-hold", "-1"), 2, "strength_hold must be between 0 and 1"),
        (("video", clip, "--fps", "fast"), 2, "fps 'fast' is not a number"),
        (("video", clip, "--crf", "60"), 2, "crf must be between 0 and 51"),
        (("video", clip, "-o", tmp_path / "still.png"), 2, "still image name"),
        (("video", clip, "-o", tmp_path / "gone" / "o.mp4"), 2, "does not exist"),
        (("video", clip, "-o", clip), 2, "is the input file"),
        (("video", clip, "--preset", "nope"), 2, "unknown preset"),
        (("coherence", clip, tmp_path / "missing.mp4"), 2, "does not exist"),
        (("coherence", tmp_path / "notes.mp4", clip), 2, "not a video"),
    ]
    for args, code, words in cases:
        if args[0] == "video":  # the bad flag comes last, so it wins over m's
            args = (*args[:2], *m, *args[2:])
        one_line_error(run(*args), code, words)
    assert ffmpeg_children() == []
    assert not list(tmp_path.glob("*.dreamvid-work"))


def test_awkward_sources_render(make_clip, tiny, tmp_path):
    """Normal, if unusual: one frame, odd sizes, rotation metadata, variable frame rate."""
    cases = {
        "one.mp4": dict(n=1),
        "rot.mp4": dict(n=3, rotation=90),
        "vfr.mp4": dict(n=6, vfr_gap_after=2),
    }
    for name, options in cases.items():
        src, _ = make_clip(name, **options)
        out = tmp_path / f"out_{name}"
        r = run("video", src, "-o", out, "--model", tiny, *FAST)
        assert r.exit_code == 0, (name, r.output)
        info, got = media.probe_video(src), media.probe_video(out)
        assert (got.width, got.height, got.n_frames) == (info.width, info.height, info.n_frames), name
    r = run("video", src, "-o", tmp_path / "odd.mp4", "--model", tiny, *FAST, "--max-size", "63", "--end", "f1")
    assert r.exit_code == 0, r.output
    assert (media.probe_video(tmp_path / "odd.mp4").width, media.probe_video(tmp_path / "odd.mp4").height) == (64, 48)


def test_truncated_source_keeps_what_decoded_and_exits_1(make_clip, tiny, tmp_path, ffmpeg_children):
    path, _ = make_clip("t.mp4", n=30, crf=0)
    data = path.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: (data.index(b"mdat") + len(data)) // 2])
    r = run("video", tmp_path / "cut.mp4", "-o", tmp_path / "o.mp4", "--model", tiny, *FAST)
    line = error_line(r, 1, "stopped decoding after frame", "frames that decoded")
    n = int(line.split("has the ")[1].split()[0])
    assert media.probe_video(tmp_path / "o.mp4").n_frames == n
    assert ffmpeg_children() == []


def test_disk_full_mid_render(make_clip, tiny, tmp_path, monkeypatch, ffmpeg_children):
    import dreamvid.media.images as images

    src, _ = make_clip("d.mp4", n=5)
    real, calls = images.atomic_destination, []

    def filling_up(dest, suffix=""):
        calls.append(dest)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(dest, suffix)

    monkeypatch.setattr(images, "atomic_destination", filling_up)
    r = run("video", src, "-o", tmp_path / "o.mp4", "--model", tiny, *FAST)
    error_line(r, 1, "No space left on device", "run the same command again to resume")
    assert len(list((tmp_path / "o.mp4.dreamvid-work").glob("frame_*.png"))) == 2
    assert ffmpeg_children() == []


def test_out_of_memory_is_a_clear_error(make_clip, tiny, tmp_path, monkeypatch):
    from dreamvid.dream import Dreamer

    def no_memory(*args, **kwargs):
        raise MemoryError

    src, _ = make_clip("m.mp4", n=3)
    monkeypatch.setattr(Dreamer, "dream", no_memory)
    r = run("video", src, "-o", tmp_path / "o.mp4", "--model", tiny, *FAST)
    error_line(r, 1, "out of memory dreaming a 64x48 frame", "--tile")
    assert not (tmp_path / "o.mp4.dreamvid-work").exists()


def test_help_documents_the_position_syntax():
    r = run("video", "--help")
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    assert "f30" in text and "1:05.5" in text and "--keep-audio" in text and "--no-audio" in text


def test_an_end_past_the_clip_says_it_was_cut_in_one_line(make_clip, tiny, tmp_path):
    src, _ = make_clip("short.mp4", n=5)  # 0.2 s at 25 fps
    r = run("video", src, "-o", tmp_path / "o.mp4", "--model", tiny, *FAST, "--end", "8s")
    assert r.exit_code == 0, r.output
    said = [line for line in r.output.splitlines() if "--end" in line]
    assert said == ["--end 8s is beyond the end of short.mp4 (0.20 s, 5 frames): dreaming to its last frame"], r.output
    assert media.probe_video(tmp_path / "o.mp4").n_frames == 5
    r = run("video", src, "-o", tmp_path / "p.mp4", "--model", tiny, *FAST, "--end", "f5")  # exactly its end
    assert r.exit_code == 0 and "--end" not in r.output, r.output
