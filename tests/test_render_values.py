"""Tests for dreamvid/render/values.py: a video's step, iterations, blend and frame_iterations as
expressions of time and of the clip's own soundtrack, checked before any work."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from dreamvid import media
from dreamvid.errors import InputError, SettingsError
from dreamvid.render.values import FrameValues
from dreamvid.render.video import render_video

from .clitools import one_line_error, run
from .conftest import run_ffmpeg
from .test_render_video import Interrupt, tiny_settings


@pytest.fixture
def song_clip(make_clip):
    """24 frames (0.96 s) whose tone is low (110 Hz, bass) for 0.5 s, then high (4110 Hz, treble)."""
    src, _ = make_clip("song.mp4", n=24, width=64, height=48, audio_hz=110, audio_step_hz=8000)
    return src


def test_expressions_follow_time_and_the_clips_own_soundtrack(tiny, make_clip, tmp_path, monkeypatch):
    from dreamvid.dream import Dreamer

    src, _ = make_clip("tone.mp4", n=50, width=64, height=48, audio_hz=110, audio_step_hz=4000)  # 2 s
    s = tiny_settings(tiny, blend="0.95-0.5*treble")
    values = FrameValues(replace(s, dream=replace(s.dream, step="0.01+0.04*bass", iterations="2+f")),
                         media.probe_video(src), 0, 50)
    first, second = values.at(5), values.at(40)  # 0.2 s: 110 Hz; 1.6 s: 4110 Hz
    assert first.dream.step > 0.04 and second.dream.step < 0.02
    assert first.video.blend > 0.9 and second.video.blend < 0.6
    assert (first.dream.iterations, second.dream.iterations) == (7, 42)
    seen = {}
    dream = Dreamer.dream

    def record(self, image, st, **kw):
        seen[kw["frame"]] = st.step
        return dream(self, image, st, **kw)

    monkeypatch.setattr(Dreamer, "dream", record)
    out = tmp_path / "o.mp4"
    r = render_video(src, out, s, step="0.01+0.04*bass", end=4, keep_frames=True)
    assert seen == {i: pytest.approx(values.at(i).dream.step) for i in range(4)}
    params = json.loads((tmp_path / "o.mp4.params.json").read_text())["frames"]
    assert [p["frame"] for p in params] == [0, 1, 2, 3] and params[2]["step"] == pytest.approx(seen[2])
    manifest = json.loads((r.work_dir / "render.json").read_text())
    assert manifest["settings"]["dream"]["step"] == "0.01+0.04*bass"  # the resume key holds the expression


def test_a_preset_may_hold_expressions(tiny, song_clip, tmp_path):
    preset = tmp_path / "pulse.toml"
    preset.write_text(f'[dream]\nmodel = "{tiny}"\nlayers = {{ conv3 = 1.0 }}\nstep = "0.02 + 0.03*mid"\n'
                      'num_octave = 1\niterations = 1\n[video]\nblend = "0.9 - 0.2*rms"\nframe_iterations = 1\n'
                      'frame_num_octave = 1\n')
    render_video(song_clip, tmp_path / "p.mp4", preset=str(preset), end=3)
    rows = json.loads((tmp_path / "p.mp4.params.json").read_text())["frames"]
    assert len(rows) == 3 and all(0.7 <= r["blend"] <= 0.9 and 0.02 <= r["step"] <= 0.05 for r in rows)


@pytest.mark.parametrize(("change", "words"), [
    ({"step": "0.01 +* 2"}, r"step = '0.01 \+\* 2' is not a valid expression \(column"),
    ({"step": "0.01*wobble"}, "unknown name 'wobble'"),
    ({"step": "0.01/(f-3)"}, r"is inf at frame 3 \(t = 0.120 s\)"),
    ({"blend": "0.5+t"}, r"frame 13 \(t = 0.52 s\): blend must be between 0 and 1"),
    ({"frame_iterations": "-1+f"}, r"frame 0 \(t = 0.00 s\): frame_iterations must be between 0"),
])
def test_bad_expressions_are_one_line_naming_what_and_where(tiny, song_clip, tmp_path, change, words):
    with pytest.raises(SettingsError, match=words):
        render_video(song_clip, tmp_path / "x.mp4", tiny_settings(tiny), **change)
    assert not (tmp_path / "x.mp4.dreamvid-work").exists()


def test_an_audio_envelope_needs_a_soundtrack(tiny, make_clip, tmp_path):
    quiet, _ = make_clip("quiet.mp4", n=4)
    with pytest.raises(InputError, match="quiet.mp4 has no audio track, so step = '0.01.0.02.onset' cannot use onset"):
        render_video(quiet, tmp_path / "x.mp4", tiny_settings(tiny), step="0.01+0.02*onset")
    render_video(quiet, tmp_path / "t.mp4", tiny_settings(tiny), step="0.01+0.02*t", end=2)  # time alone is fine
    silent = tmp_path / "silent.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono",
               "-frames:v", "4", "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(silent))
    with pytest.raises(InputError, match="uses bass, but silent.mp4 is silent"):
        render_video(silent, tmp_path / "y.mp4", tiny_settings(tiny), blend="0.9-0.1*bass")


def test_modes_without_time_refuse_expressions(tiny, tmp_path):
    from dreamvid.presets import resolve_for

    with pytest.raises(SettingsError, match="step = '0.01.t' is an expression, but image has no time"):
        resolve_for("image", overrides={"step": "0.01+t"})
    with pytest.raises(SettingsError, match="blend = '0.9' is an expression, but zoom"):
        resolve_for("zoom", overrides={"blend": "0.9"})
    assert resolve_for("zoom", overrides={"step": "0.01+0.01*t"}).dream.step == "0.01+0.01*t"


def test_the_command_line_takes_expressions(tiny, song_clip, tmp_path):
    fast = ("--model", tiny, "--layer", "conv3", "--iterations", "1", "--num-octave", "1", "--frame-iterations",
            "1", "--frame-num-octave", "1")
    out = tmp_path / "cli.mp4"
    r = run("video", song_clip, "-o", out, *fast, "--step", "0.01+0.02*onset", "--blend", "0.9-0.3*bass",
            "--end", "f3")
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "cli.mp4.params.json").read_text())["frames"]
    assert len(rows) == 3 and rows[0]["iterations"] == 1 and rows[0]["blend"] < 0.8  # 110 Hz: bass
    r = run("video", song_clip, "-o", tmp_path / "bad.mp4", *fast, "--blend", "0.9-bass(")
    one_line_error(r, 2, "blend = '0.9-bass(' is not a valid expression")


# ---- layer weights of time (issue 15) ---------------------------------------------------------

PULSE = {"conv3": "0.5+0.5*onset", "conv2": "1-0.5*t", "conv1": 0.25}  # two expressions and a number


def test_layer_weights_follow_the_soundtrack_frame_by_frame(tiny, song_clip):
    s = tiny_settings(tiny)
    values = FrameValues(replace(s, dream=replace(s.dream, layers=tuple(PULSE.items()))), media.probe_video(song_clip),
                         0, 24)
    weights = [dict(values.at(i).dream.layers) for i in (0, 20)]
    assert [w["conv1"] for w in weights] == [0.25, 0.25]  # a number stays as it is
    assert weights[0]["conv2"] == pytest.approx(1.0) and weights[1]["conv2"] == pytest.approx(1 - 0.5 * 20 / 25)
    assert all(0.5 <= w["conv3"] <= 1.0 for w in weights)
    assert values.signs == (("conv1", 1.0), ("conv2", 1.0), ("conv3", 1.0)) and values.expressive
    assert values.rows(0, 2)[1]["layers"]["conv2"] == pytest.approx(1 - 0.5 / 25)
    plain = FrameValues(s, media.probe_video(song_clip), 0, 24)  # numbers only: nothing eased, the settings as given
    assert plain.signs is None and plain.at(7) is s


def test_a_video_eases_layer_weights_in_one_trace_and_resumes_exactly(tiny, song_clip, tmp_path, monkeypatch):
    from dreamvid.dream import EasedMeanSquares

    seen = []
    gains = EasedMeanSquares.gains

    def record(self, model, s):  # the weights each dream gets as its step's input
        seen.append(dict(s.targets()))
        return gains(self, model, s)

    monkeypatch.setattr(EasedMeanSquares, "gains", record)
    settings = tiny_settings(tiny)
    whole = render_video(song_clip, tmp_path / "whole", settings, layers=PULSE, end=6)
    values = FrameValues(replace(settings, dream=replace(settings.dream, layers=tuple(PULSE.items()))),
                         media.probe_video(song_clip), 0, 6)
    assert seen == [dict(values.at(i).dream.layers) for i in range(6)]  # every frame its own weights
    assert (whole.rendered, len(seen)) == (6, 6)
    rows = json.loads((tmp_path / "whole.params.json").read_text())["frames"]
    assert [r["layers"] for r in rows] == seen
    from dreamvid.dream import get_dreamer

    network = replace(settings.dream, layers=(("conv3", 1.0), ("conv2", 1.0), ("conv1", 1.0)))
    from dreamvid.dream import objective_for

    assert get_dreamer(network, objective_for(network, values.signs), size=(48, 64)).traces == 1

    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        render_video(song_clip, out, settings, layers=PULSE, end=6, progress=Interrupt(after=3))
    manifest = json.loads((tmp_path / "cut.dreamvid-work" / "render.json").read_text())
    assert manifest["settings"]["dream"]["layers"]["conv3"] == "0.5+0.5*onset"  # the resume key holds it
    from dreamvid.errors import ResumeMismatchError

    with pytest.raises(ResumeMismatchError):  # another expression is another render
        render_video(song_clip, out, settings, layers={**PULSE, "conv3": "0.5+0.4*onset"}, end=6)
    resumed = render_video(song_clip, out, settings, layers=PULSE, end=6)
    assert resumed.resumed_from == 3
    assert all(np.array_equal(media.read_image(tmp_path / "whole" / f), media.read_image(out / f))
               for f in (f"frame_{i:05d}.png" for i in range(6)))


def test_cadence_and_a_cluster_job_get_the_same_per_frame_weights(tiny, song_clip, tmp_path, monkeypatch):
    from dreamvid.dream import EasedMeanSquares
    from dreamvid.render import engine
    from dreamvid.render.video import VideoPlan

    seen = []
    gains = EasedMeanSquares.gains
    monkeypatch.setattr(EasedMeanSquares, "gains", lambda self, m, s: (seen.append(dict(s.targets())), gains(self, m, s))[1])
    settings = tiny_settings(tiny, cadence=3)
    settings = replace(settings, dream=replace(settings.dream, layers=tuple(PULSE.items())))
    plan = VideoPlan(song_clip, tmp_path / "o", settings, end=7)
    plan.prepare()
    made = list(engine.make_items(plan, range(7)))
    assert [it.index for it in made] == list(range(7))
    assert seen == [dict(plan.values.at(i).dream.layers) for i in (0, 3, 6)]  # the keyframes dream
    import pickle

    worker = pickle.loads(pickle.dumps(VideoPlan(song_clip, tmp_path / "o", settings, end=7)))  # as a Ray task gets it
    worker.prepare()
    again = list(engine.make_items(worker, range(7)))
    assert all(np.array_equal(a.image, b.image) for a, b in zip(made, again, strict=True))


@pytest.mark.parametrize(("layers", "words"), [
    ({"conv3": "1/(f-3)"}, r"layers.conv3 = '1/\(f-3\)' is inf at frame 3"),
    ({"conv3": "0.5-t"}, r"frame 13 \(t = 0.52 s\): layers.conv3 = '0.5-t' changes sign"),
    ({"conv3": "0.5*wobble"}, "unknown name 'wobble'"),
])
def test_a_bad_layer_weight_fails_before_any_work(tiny, song_clip, tmp_path, layers, words):
    with pytest.raises(SettingsError, match=words):
        render_video(song_clip, tmp_path / "x.mp4", tiny_settings(tiny), layers=layers)
    assert not (tmp_path / "x.mp4.dreamvid-work").exists()


def test_layer_weights_of_time_on_the_command_line_and_in_a_preset(tiny, song_clip, tmp_path):
    fast = ("--model", tiny, "--iterations", "1", "--num-octave", "1", "--frame-iterations", "1",
            "--frame-num-octave", "1", "--end", "f3")
    r = run("video", song_clip, "-o", tmp_path / "cli.mp4", *fast, "-l", "conv3:0.5+0.5*onset", "-l", "conv2:1-0.5*t")
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "cli.mp4.params.json").read_text())["frames"]
    assert [round(r["layers"]["conv2"], 6) for r in rows] == [1.0, 0.98, 0.96]
    preset = tmp_path / "pulse.toml"
    preset.write_text(f'[dream]\nmodel = "{tiny}"\nlayers = {{ conv3 = "0.5+0.5*onset", conv1 = 0.2 }}\n'
                      'num_octave = 1\niterations = 1\n[video]\nframe_iterations = 1\nframe_num_octave = 1\n')
    render_video(song_clip, tmp_path / "p.mp4", preset=str(preset), end=2)
    rows = json.loads((tmp_path / "p.mp4.params.json").read_text())["frames"]
    assert [r["layers"]["conv1"] for r in rows] == [0.2, 0.2]
    r = run("video", song_clip, "-o", tmp_path / "bad.mp4", *fast[:-2], "-l", "conv3:1/(f-2)")
    one_line_error(r, 2, "layers.conv3 = '1/(f-2)' is inf at frame 2")
    r = run("image", song_clip, "-o", tmp_path / "x.png", "-l", "conv3:0.5+t")
    one_line_error(r, 2, "layers.conv3 = '0.5+t' is an expression, but image has no time")


def test_modes_without_time_refuse_layer_weights_of_time():
    from dreamvid.presets import resolve_for
    from dreamvid.render.sweep import _value

    for mode in ("image", "zoom", "timelapse", "sweep"):
        with pytest.raises(SettingsError, match=f"layers.block4c_out = '0.5.t' is an expression, but {mode}"):
            resolve_for(mode, overrides={"layers": ["block4c_out:0.5+t"]})
    with pytest.raises(SettingsError, match="but sweep has no time"):
        _value("layers", "block4c_out:sin(t)")
    assert resolve_for("video", overrides={"layers": ["block4c_out:0.5+t"]}).dream.layers == (("block4c_out",
                                                                                              "0.5+t"),)
