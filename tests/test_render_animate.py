"""Zoom, timelapse, sweep and their sheets (dreamvid/render/{zoom,lapse,sweep,sheet}.py).

The dreaming runs on a tiny random-weight network (tests/tinymodel.py): these tests pin the
machinery (frame counts, sizes, resume, grids, labels, limits), not the look.
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from dreamvid import media, models
from dreamvid.dream import Dreamer, EasedMeanSquares, dream_image, get_dreamer
from dreamvid.errors import OutputError, ResumeMismatchError, SettingsError
from dreamvid.render import measure, sheet, sweep, zoom
from dreamvid.render import timelapse as lapse
from dreamvid.settings import DreamSettings, Settings, VideoSettings, ZoomSettings
from dreamvid.trajectory import Motion, Trajectory, apply_points

W, H = 64, 48


@pytest.fixture
def picture():
    """(H, W, 3) uint8: smooth colour stripes plus a little noise."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:H, 0:W]
    base = np.stack([128 + 60 * np.sin(x / 5), 128 + 60 * np.cos(y / 7), 128 + 40 * np.sin((x + y) / 9)], -1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def dream_settings(tiny, **kw):
    base = dict(model=tiny, layers=(("conv3", 1.0),), step=0.05, num_octave=2, octave_scale=1.4, iterations=3,
                max_loss=None, jitter=4, seed=0)
    return DreamSettings(**{**base, **kw})


def settings(tiny, **kw):
    """Settings whose dream section is dream_settings(tiny, **kw)."""
    return Settings(dream_settings(tiny, **kw))


# ---- sheet -------------------------------------------------------------------------------------

def is_background(region):
    return np.all(region == np.array(sheet.BACKGROUND, np.uint8))


def test_grid_puts_each_picture_in_its_box_with_labels_around():
    colours = [[(200, 30, 30), (30, 200, 30), (30, 30, 200)], [(200, 200, 30), (30, 200, 200), (200, 30, 200)]]
    cells = [[np.full((30, 40, 3), c, np.uint8) for c in row] for row in colours]
    s = sheet.grid(cells, columns=["step = 0.01", "step = 0.03", "step = 0.06"],
                   rows=["num_octave = 3", "num_octave = 6"], caption=["model tiny · seed 0"])
    assert len(s.boxes) == 2 and all(len(r) == 3 for r in s.boxes)
    for r, row in enumerate(s.boxes):
        for c, (x, y, w, h) in enumerate(row):
            assert (w, h) == (40, 30)
            assert np.all(s.image[y:y + h, x:x + w] == colours[r][c])
            # a background gutter on each side: cells never touch
            assert is_background(s.image[y:y + h, x - 2:x])
            assert is_background(s.image[y:y + h, x + w:x + w + 2])
    xs = [b[0] for b in s.boxes[0]]
    ys = [row[0][1] for row in s.boxes]
    assert len(set(np.diff(xs))) == 1 and xs == [b[0] for b in s.boxes[1]]  # regular columns
    assert ys[1] > ys[0] + 30
    first_x, first_y = s.boxes[0][0][:2]
    assert not is_background(s.image[:first_y, first_x:first_x + 40])  # column label above
    assert not is_background(s.image[first_y:first_y + 30, :first_x])  # row label on the left
    below = s.boxes[1][0][1] + 30
    assert not is_background(s.image[below:, :])  # the caption
    assert is_background(s.image[:first_y, :first_x])  # the corner stays empty


def test_contact_sheet_reads_left_to_right_and_labels_under_each_picture():
    pics = [np.full((20, 30, 3), 40 * k, np.uint8) for k in range(1, 6)]
    s = sheet.contact_sheet(pics, [[f"{k} iterations", "step 0.01"] for k in range(5)], columns=3)
    order = [box for row in s.boxes for box in row]
    assert len(s.boxes) == 2 and len(order) == 5
    for k, (x, y, w, h) in enumerate(order):
        assert np.all(s.image[y:y + h, x:x + w] == 40 * (k + 1))
        assert not is_background(s.image[y + h + 2:y + h + 2 * sheet.FONT_SIZE, x:x + w])  # its label


def test_wrap_keeps_every_line_within_the_width():
    text = "efficientnet_lite0 · layers block4c_out · octave_scale 1.4 · iterations 20 · max_loss 10 · seed 0"
    lines = sheet.wrap(text, 160)
    assert len(lines) > 1 and all(sheet.text_width(ln) <= 160 for ln in lines)
    assert " · ".join(lines).replace("  ", " ") == text


def test_value_text_uses_the_users_words():
    assert sheet.value_text("layers", (("block4c_out", 1.0), ("block6d_out", 0.5))) == "block4c_out+block6d_out:0.5"
    assert sheet.value_text("max_loss", None) == "none"
    assert sheet.value_text("model", "/a/b/mine.keras") == "mine.keras"
    assert sheet.setting_text("step", 0.01) == "step 0.01"


# ---- timelapse ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, words", [
    ((80, 40), "must increase"), ((40, 40), "must increase"), ((), "empty"), ((-1, 4), "whole numbers"),
])
def test_checkpoints_must_increase(bad, words):
    with pytest.raises(SettingsError, match=words):
        lapse.check_checkpoints(bad)


def test_parse_checkpoints():
    assert lapse.parse_checkpoints("40, 80,120") == (40, 80, 120)
    for bad in ("", "40,x", "40,,80", "80,40"):
        with pytest.raises(SettingsError):
            lapse.parse_checkpoints(bad)


def test_timelapse_plan_refuses_nonsense_before_work(tiny):
    s = dream_settings(tiny, iterations=5)
    with pytest.raises(SettingsError, match="not both"):
        lapse.plan(s, (1, 2), 2)
    with pytest.raises(SettingsError, match="every"):
        lapse.plan(s, None, 0)
    with pytest.raises(SettingsError, match="more than the whole run"):
        lapse.plan(s, None, 11)  # 2 octaves x 5 iterations = 10 steps
    assert lapse.snapshot_count(s, None, 3) == 4  # 3, 6, 9 and the result at 10


def test_continuous_last_snapshot_is_the_direct_render(tiny, picture):
    s = dream_settings(tiny, iterations=4)
    snaps = lapse.timelapse(picture, s, every=3)
    assert [x.steps for x in snaps] == [3, 6, 8]
    assert snaps[-1].label == "step 8 · octave 2/2" and snaps[0].label == "step 3 · octave 1/2"
    assert np.array_equal(snaps[-1].image, dream_image(picture, s))
    assert not np.array_equal(snaps[0].image, snaps[-1].image)


def test_the_dreamers_snapshot_at_the_final_step_is_its_result(tiny, picture):
    """dream.py's promise that continuous mode relies on, checked at the source."""
    s = dream_settings(tiny, iterations=4)
    got = {}
    result = get_dreamer(s).dream(picture.astype(np.float32), s, snapshot_every=8,
                                  on_snapshot=lambda k, img: got.setdefault(k, img))
    assert list(got) == [8] and np.array_equal(got[8], result)


def test_checkpoints_are_independent_renders(tiny, picture):
    s = dream_settings(tiny)
    snaps = lapse.timelapse(picture, s, checkpoints=(1, 4))
    assert [x.label for x in snaps] == ["1 iteration", "4 iterations"]
    assert np.array_equal(snaps[1].image, dream_image(picture, replace(s, iterations=4)))


def test_timelapse_progress_counts_every_step(tiny, picture, tmp_path):
    steps = []
    lapse.render_timelapse(picture, tmp_path / "t.png", settings(tiny), checkpoints=(1, 4),
                           progress=lambda p: steps.append((p.steps, p.total_steps)) if p.stage == "step" else None)
    assert steps[-1] == (10, 10)  # (1 + 4) iterations x 2 octaves


def test_crossfade_timing():
    a, b = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 200, np.uint8)
    out = lapse.frames([a, b], hold_n=3, fade_n=4)
    assert len(out) == 3 + 4 + 3 + 3  # hold a, fade, hold b, hold b again at the end
    assert all(np.array_equal(f, a) for f in out[:3]) and all(np.array_equal(f, b) for f in out[7:])
    fades = [int(f[0, 0, 0]) for f in out[3:7]]
    assert fades == [40, 80, 120, 160]


def test_timelapse_outputs(tiny, picture, tmp_path):
    s = settings(tiny)
    sheet_path = lapse.render_timelapse(picture, tmp_path / "sheet.png", s, checkpoints=(1, 2, 3)).output
    drawn = media.read_image(sheet_path)
    assert drawn.shape[0] > 2 * H and drawn.shape[1] > 2 * W  # 2 x 2 tiles plus labels
    gif = lapse.render_timelapse(picture, tmp_path / "lapse.gif", s, every=2, fps=10, hold=0.3, fade=0.2).output
    assert gif.stat().st_size > 0
    folder = lapse.render_timelapse(picture, tmp_path / "snaps", s, checkpoints=(1, 3)).output
    assert sorted(p.name for p in folder.iterdir()) == ["iterations_0001.png", "iterations_0003.png"]


def test_timelapse_video_checks(tiny, picture, tmp_path):
    s = settings(tiny)
    for kw, words in [({"fps": 0}, "fps must be between 0.1 and 1000"), ({"hold": 0}, "hold"), ({"fade": -1}, "fade")]:
        with pytest.raises(SettingsError, match=words):
            lapse.render_timelapse(picture, tmp_path / "x.mp4", s, checkpoints=(1,), **kw)
    with pytest.raises(SettingsError, match="limit of 100"):
        lapse.render_timelapse(picture, tmp_path / "x.png", s, checkpoints=tuple(range(101)))


# ---- sweep -------------------------------------------------------------------------------------

def test_parse_vary():
    assert sweep.parse_vary("step=0.01,0.06") == sweep.Axis("step", (0.01, 0.06))
    assert sweep.parse_vary("num_octave=3, 6").values == (3, 6)
    assert sweep.parse_vary("layer=a,b+c:0.5").values == ((("a", 1.0),), (("b", 1.0), ("c", 0.5)))
    assert sweep.parse_vary("max_loss=none,5").values == (None, 5.0)
    assert sweep.parse_vary("model=efficientnet_lite0,vgg16_hed").values == ("efficientnet_lite0", "vgg16_hed")


@pytest.mark.parametrize("spec, words", [
    ("step", "KEY=VALUE"), ("step=", "no values"), ("step=,", "no values"), ("step=0.1,,0.2", "empty value"),
    ("stepp=0.1", "did you mean 'step'"), ("num_octave=3.5", "whole number"), ("step=abc", "not a number"),
])
def test_bad_axes(spec, words):
    with pytest.raises(SettingsError, match=words):
        sweep.parse_vary(spec)


def test_cells_are_checked_and_limited_before_any_work(tiny, monkeypatch):
    base = dream_settings(tiny)
    grid = sweep.cell_settings(base, [sweep.parse_vary("step=0.01,0.06"), sweep.parse_vary("num_octave=1,2,3")])
    assert [[c.step for c in row] for row in grid] == [[0.01, 0.06]] * 3
    assert [row[0].num_octave for row in grid] == [1, 2, 3]
    with pytest.raises(SettingsError, match="step must be > 0"):
        sweep.cell_settings(base, [sweep.parse_vary("step=0.01,-1")])
    with pytest.raises(SettingsError, match="varied twice"):
        sweep.cell_settings(base, [sweep.parse_vary("step=1"), sweep.parse_vary("step=2")])

    def no_model(*a, **k):
        raise AssertionError("the sweep loaded a model before refusing the grid")

    monkeypatch.setattr("dreamvid.dream.octaves._dreamer", no_model)
    nine = ",".join(str(k) for k in range(1, 10))
    with pytest.raises(SettingsError, match=r"81 cells \(9 x 9\), more than the limit of 64"):
        sweep.render_sweep(np.zeros((H, W, 3), np.uint8), "/tmp/never.png", Settings(base),
                           vary=[f"seed={nine}", f"jitter={nine}"])
    with pytest.raises(SettingsError, match="megapixel-steps"):
        sweep.render_sweep(np.zeros((4000, 4000, 3), np.uint8), "/tmp/never.png", Settings(base),
                           vary=["iterations=5000,6000"])


def test_sweep_grid_layout_labels_and_one_compiled_step(tiny, picture, tmp_path):
    base = dream_settings(tiny)
    dreamer = get_dreamer(base)
    traces = dreamer.traces
    out = sweep.render_sweep(picture, tmp_path / "grid.png", Settings(base), vary=["step=0.01,0.2", "num_octave=1,2"],
                             save_cells=str(tmp_path / "cells")).output
    assert dreamer.traces == max(traces, 1)  # four cells, one traced step (whatever ran before)
    names = sorted(p.name for p in (tmp_path / "cells").iterdir())
    assert names == ["step=0.01_num_octave=1.png", "step=0.01_num_octave=2.png",
                     "step=0.2_num_octave=1.png", "step=0.2_num_octave=2.png"]
    grid = media.read_image(out)
    cells = [[media.read_image(tmp_path / "cells" / f"step={s}_num_octave={n}.png") for s in ("0.01", "0.2")]
             for n in (1, 2)]
    # the same layout as sheet.grid draws it: find each cell in the picture where grid() puts it
    layout = sheet.grid(cells, columns=["step = 0.01", "step = 0.2"], rows=["num_octave = 1", "num_octave = 2"],
                        caption=["x"], cell_size=None)
    for r in range(2):
        for c in range(2):
            x, y, w, h = layout.boxes[r][c]
            assert np.array_equal(grid[y:y + h, x:x + w], cells[r][c])
    assert not np.array_equal(cells[0][0], cells[0][1])  # step changed the dream


class StopAfter:
    """A progress callback that presses Ctrl-C once `n` cells or checkpoints are done."""

    def __init__(self, n: int):
        self.n, self.finished = n, 0

    def __call__(self, p):
        if p.stage == "item":
            self.finished += 1
        elif p.stage == "step" and self.finished >= self.n:
            raise KeyboardInterrupt


def counting_dreams(monkeypatch):
    calls = []
    dream = Dreamer.dream

    def counted(self, image, s, **kw):
        calls.append(s)
        return dream(self, image, s, **kw)

    monkeypatch.setattr(Dreamer, "dream", counted)
    return calls


def test_interrupted_sweep_resumes_with_only_the_missing_cells(tiny, picture, tmp_path, monkeypatch):
    base = settings(tiny)
    vary = ["step=0.01,0.2", "num_octave=1,2"]
    whole = media.read_image(sweep.render_sweep(picture, tmp_path / "whole.png", base, vary=vary).output)
    assert not (tmp_path / "whole.png.dreamvid-work").exists()  # the cells went once the grid was written

    out, work = tmp_path / "grid.png", tmp_path / "grid.png.dreamvid-work"
    with pytest.raises(KeyboardInterrupt):
        sweep.render_sweep(picture, out, base, vary=vary, progress=StopAfter(3))
    assert sorted(p.name for p in work.glob("frame_*.png")) == [f"frame_{i:05d}.png" for i in range(3)]
    assert not out.exists()
    with pytest.raises(ResumeMismatchError, match="settings have changed") as e:
        sweep.render_sweep(picture, out, base, vary=["step=0.01,0.3", "num_octave=1,2"])
    assert "--restart" in e.value.hint
    calls = counting_dreams(monkeypatch)
    resumed = sweep.render_sweep(picture, out, base, vary=vary, cell_size=200).output  # a display option may change
    assert [(c.step, c.num_octave) for c in calls] == [(0.2, 2)]  # only the missing fourth cell was dreamed
    assert np.array_equal(media.read_image(resumed), whole) and not work.exists()


def test_sweep_restart_discards_the_cells_of_another_sweep(tiny, picture, tmp_path, monkeypatch):
    base, out = settings(tiny), tmp_path / "grid.png"
    with pytest.raises(KeyboardInterrupt):
        sweep.render_sweep(picture, out, base, vary=["step=0.01,0.2"], progress=StopAfter(1))
    calls = counting_dreams(monkeypatch)
    sweep.render_sweep(picture, out, base, vary=["step=0.05,0.2"], restart=True)
    assert [c.step for c in calls] == [0.05, 0.2]


def test_interrupted_checkpoints_resume_and_match_an_uninterrupted_timelapse(tiny, picture, tmp_path, monkeypatch):
    s = settings(tiny)
    whole = media.read_image(lapse.render_timelapse(picture, tmp_path / "whole.png", s, checkpoints=(1, 2, 3)).output)
    out, work = tmp_path / "lapse.png", tmp_path / "lapse.png.dreamvid-work"

    def ctrl_c_at_the_third(p):
        if p.stage == "step" and p.index == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lapse.render_timelapse(picture, out, s, checkpoints=(1, 2, 3), progress=ctrl_c_at_the_third)
    assert sorted(p.name for p in work.glob("frame_*.png")) == ["frame_00000.png", "frame_00001.png"]
    calls = counting_dreams(monkeypatch)
    lapse.render_timelapse(picture, out, s, checkpoints=(1, 2, 3))
    assert [c.iterations for c in calls] == [3]
    assert np.array_equal(media.read_image(out), whole) and not work.exists()
    with pytest.raises(KeyboardInterrupt):  # a continuous run leaves nothing: it is one computation
        lapse.render_timelapse(picture, tmp_path / "c.png", s, every=2, progress=ctrl_c_at_the_third_step)
    assert not (tmp_path / "c.png.dreamvid-work").exists()


def ctrl_c_at_the_third_step(p):
    if p.steps == 3:
        raise KeyboardInterrupt


def test_sweep_output_must_be_a_picture(tiny, picture, tmp_path):
    with pytest.raises(OutputError, match="one picture"):
        sweep.render_sweep(picture, tmp_path / "grid.mp4", settings(tiny), vary=["step=0.01"])


# ---- zoom --------------------------------------------------------------------------------------

def zoom_settings(tiny, **zoom_fields):
    return Settings(dream_settings(tiny), VideoSettings(frame_iterations=1, frame_num_octave=1),
                    ZoomSettings(**zoom_fields))


def test_zoom_path_does_not_depend_on_fps():
    """One second of a zoom + turn + pan lands on the same transform at 24 and 60 fps."""
    motion = ZoomSettings(zoom=1.5, rotate=20, pan=(10, -4), center=(0.3, 0.6), duration=1.05)
    ends = []
    for fps in ("24", "60"):
        plan = zoom.plan_zoom((W, H), Settings(zoom=replace(motion, fps=fps)))
        n = int(fps)
        ends.append(plan.trajectory.cumulative(n))
        assert plan.n_frames == round(1.05 * n)
    corners = np.array([[0, 0], [W, 0], [0, H], [W, H]], float)
    assert np.abs(apply_points(ends[0], corners) - apply_points(ends[1], corners)).max() < 1e-6


@pytest.mark.parametrize("kwargs, words", [
    ({"zoom": 0}, "zoom must be > 0"), ({"zoom": -2}, "zoom must be > 0"), ({"fps": "0"}, "fps"),
    ({"fps": "-24"}, "fps"), ({"center": (1.5, 0.5)}, "center"), ({"color_hold": 2}, "color_hold"),
    ({"interpolation": "bicubic"}, "interpolation"),
])
def test_zoom_settings_refused(kwargs, words):
    with pytest.raises(SettingsError, match=words):
        zoom.plan_zoom((W, H), Settings(zoom=ZoomSettings(**kwargs, duration=1)))


@pytest.mark.parametrize("kwargs, words", [
    ({"duration": 0}, "duration must be > 0"), ({"frames": 0}, "frames"),
    ({"duration": 1, "frames": 3}, "not both"), ({"duration": 1e15}, "at most"),
])
def test_zoom_length_refused(kwargs, words):
    with pytest.raises(SettingsError, match=words):
        zoom.plan_zoom((W, H), Settings(zoom=ZoomSettings(**kwargs)))


@pytest.mark.parametrize("toml, words", [
    ("[[keyframe]]\ntime = 2\n[[keyframe]]\ntime = 1\n", "must strictly increase"),
    ("[[keyframe]]\ntime = 0\nspeed = 3\n", "unknown key 'speed'"),
    ("[[keyframe]]\ntime = 0\nzoom = 0\n", "zoom must be > 0"),
    ("[[keyframe]]\ntime = 0\nstep = -1\n[[keyframe]]\ntime = 1\n", "step must be > 0"),
    ("[[keyframe]]\ntime = 0\nlayers = { conv3 = 1.0 }\n[[keyframe]]\ntime = 1\nlayers = { conv3 = -1.0 }\n",
     "changes sign"),
    ('[[keyframe]]\ntime = 0\nlayers = { conv3 = "0.5-t" }\n[[keyframe]]\ntime = 1\n',  # a weight of time too
     r"frame \d+ \(t = 0.5\d s\): the weight of layer 'conv3' changes sign"),
])
def test_bad_keyframes_refused(toml, words):
    with pytest.raises(SettingsError, match=words):
        zoom.plan_zoom((W, H), Settings(), keyframes=toml)


def test_keyframes_ease_the_per_frame_dream(tiny):
    toml = """
    [[keyframe]]
    time = 0
    step = 0.02
    iterations = 2
    easing = "linear"
    [[keyframe]]
    time = 1
    step = 0.04
    iterations = 6
    """
    plan = zoom.plan_zoom((W, H), zoom_settings(tiny, fps="4"), keyframes=toml)
    assert plan.n_frames == 4  # the keyframes' 1 s at 4 fps
    assert [round(plan.frame_settings(i).step, 4) for i in range(4)] == [0.02, 0.025, 0.03, 0.035]
    assert [plan.frame_settings(i).iterations for i in range(1, 4)] == [3, 4, 5]
    assert plan.frame_settings(0).iterations == 3  # frame 0 keeps the full still dream


def test_zoom_frames_count_size_and_motion(tiny, picture):
    frames = list(zoom.zoom_frames(picture, zoom_settings(tiny, zoom=2.0, fps="8"), frames=5))
    assert len(frames) == 5 and all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in frames)
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))


def test_zoom_render_resume_equals_uninterrupted(tiny, picture, tmp_path):
    s = zoom_settings(tiny, zoom=1.5, rotate=10, fps="6", frames=5)
    whole = zoom.render_zoom(picture, tmp_path / "whole", s)
    assert whole.n_frames == 5 and not (tmp_path / "whole.dreamvid-work").exists()

    def stop_after_two(p):
        if p.done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        zoom.render_zoom(picture, tmp_path / "cut", s, progress=stop_after_two)
    work = tmp_path / "cut.dreamvid-work"
    assert sorted(p.name for p in work.glob("frame_*.png")) == ["frame_00000.png", "frame_00001.png"]
    with pytest.raises(ResumeMismatchError, match="settings have changed"):
        zoom.render_zoom(picture, tmp_path / "cut", replace(s, zoom=replace(s.zoom, zoom=1.6)))
    resumed = zoom.render_zoom(picture, tmp_path / "cut", s)
    assert resumed.resumed_from == 2 and resumed.rendered == 3
    for i in range(5):
        a = media.read_image(media.frame_path(tmp_path / "whole", i))
        b = media.read_image(media.frame_path(tmp_path / "cut", i))
        assert np.array_equal(a, b), f"frame {i} differs after resume"


def test_zoom_gif_output(tiny, picture, tmp_path):
    r = zoom.render_zoom(picture, tmp_path / "z.gif", zoom_settings(tiny, fps="5", frames=3))
    assert r.output.stat().st_size > 0 and r.size == (W, H)
    with pytest.raises(OutputError, match="a zoom is a clip"):
        zoom.render_zoom(picture, tmp_path / "z.png", zoom_settings(tiny, frames=3))


EASED_LAYERS = """
[[keyframe]]
time = 0
layers = { conv3 = 1.0 }
[[keyframe]]
time = 1
layers = { conv2 = 1.0 }
"""  # keyframes that ease from conv3 to conv2 over one second


def gains_seen(monkeypatch) -> list:
    """The gains every dream of an eased objective gets as its step's input, in order."""
    seen = []
    gains = EasedMeanSquares.gains
    monkeypatch.setattr(EasedMeanSquares, "gains", lambda self, m, s: seen.append(gains(self, m, s)) or seen[-1])
    return seen


def test_eased_layer_weights_reuse_one_traced_step(tiny, picture, monkeypatch):
    seen = gains_seen(monkeypatch)
    plan = zoom.plan_zoom((W, H), zoom_settings(tiny, fps="4"), keyframes=EASED_LAYERS)
    maker = zoom.Frames(plan, picture)
    assert maker.eased and maker.dreamer.model.layers == (("conv3", 1.0), ("conv2", 1.0))
    traces = maker.dreamer.traces
    previous = None
    for i in range(4):
        previous = maker.make(i, previous)
    assert maker.dreamer.traces == max(traces, 1)  # traced once, whatever the weights
    assert np.allclose(seen[3] ** 2, [0.25, 0.75])  # frame 3 of 4: 3/4 of the way


def test_a_keyframe_weight_of_time_is_eased_per_frame(tiny, picture, monkeypatch):
    """A layer weight given as an expression in a keyframe (issue 15) eases with one trace too."""
    seen = gains_seen(monkeypatch)
    toml = '[[keyframe]]\ntime = 0\nlayers = { conv3 = "0.5+0.5*sin(t)", conv2 = 0.2 }\n'
    plan = zoom.plan_zoom((W, H), zoom_settings(tiny, fps="4", frames=4), keyframes=toml)
    maker = zoom.Frames(plan, picture)
    assert maker.eased and plan.signs == (("conv2", 1.0), ("conv3", 1.0))
    previous = None
    for i in range(3):
        previous = maker.make(i, previous)
    assert np.allclose(seen[2] ** 2, [0.5 + 0.5 * np.sin(0.5), 0.2], atol=1e-6)


def test_eased_weights_match_a_plain_dreamer(tiny, picture):
    """Gains on one traced step give the same dream as a Dreamer built for those weights."""
    weights = (("conv2", 0.3), ("conv3", 1.0))
    plain = Dreamer(models.load(tiny, weights))
    eased = Dreamer(models.load(tiny, (("conv2", 1.0), ("conv3", 1.0))), EasedMeanSquares())
    s = dream_settings(tiny, layers=weights)  # the eased objective's weights come with the settings
    a = plain.dream(picture.astype(np.float32), s)
    b = eased.dream(picture.astype(np.float32), s)
    assert np.abs(a - b).max() < 0.05


def test_hold_colors_pulls_statistics_towards_the_reference(picture):
    washed = (picture.astype(np.float32) * 0.3 + 90)
    ref = zoom.lab_stats(picture)
    for strength, expect in ((0.0, 0.0), (0.5, 0.5), (1.0, 1.0)):
        held = zoom.hold_colors(washed, ref, strength)
        before, after = zoom.lab_stats(washed)[1], zoom.lab_stats(held)[1]
        # std moves geometrically: log-ratio closes by `strength`
        closed = np.log(after / before) / np.log(ref[1] / before)
        assert np.allclose(closed, expect, atol=0.05)


def laplacian_var(x):
    return cv2.Laplacian(x.mean(-1).astype(np.float64), cv2.CV_64F).var()


def test_lanczos_warps_do_not_compound_blur():
    """Why the zoom warps with Lanczos: 60 frames of turning and panning keep most of the
    detail, where bilinear resampling smears it away and OpenCV's cubic (a = -0.75) boosts
    the upper band a little per pass until it rings (measured: 0.005x, 7.6x, 0.71x)."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (96, 128, 3)).astype(np.float32), (0, 0), 1.2)
    traj = Trajectory(Motion(rotate=15, pan=(7.3, 3.1)), 12, (128, 96), n_frames=61)
    kept = {}
    for kernel in ("linear", "cubic", "lanczos"):
        x = img.copy()
        for i in range(1, 61):
            x = zoom.move(x, traj.affine(i), kernel)
        inner = (slice(20, -20), slice(20, -20))  # away from the mirrored borders
        kept[kernel] = laplacian_var(x[inner]) / laplacian_var(img[inner])
    assert 0.4 < kept["lanczos"] < 1.5 and kept["linear"] < 0.1 and kept["cubic"] > 2, kept


def test_frame_measures():
    flat = np.full((32, 32, 3), 128, np.uint8)
    assert measure.sharpness(flat) == 0 and measure.colorfulness(flat) == 0
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    assert measure.sharpness(noisy) > 1000 and measure.colorfulness(noisy) > 50
    m = np.array([[1.0, 0, 2], [0, 1, 1]])
    moved = cv2.warpAffine(noisy, m, (32, 32))
    assert measure.motion_error(noisy, moved, m) < 1e-6 < measure.motion_error(noisy, noisy, m)


def test_the_border_a_zoom_out_uncovers_is_grown_from_the_picture_not_mirrored(picture):
    """edges="inpaint": the pixels a zoom-out brings from outside the frame (and only those,
    with a 1-px rim) are filled from their surroundings; the inside is the plain warp."""
    m = Trajectory(Motion(zoom=0.8, rotate=10), 4, (W, H), n_frames=2).affine(1)
    mask = zoom.uncovered(m, (W, H))
    assert mask[0, 0] and mask[-1, -1] and not mask[H // 2, W // 2] and 0.05 < mask.mean() < 0.6
    plain = zoom.move(picture, m, "lanczos", "reflect")
    grown = zoom.move(picture, m, "lanczos", "inpaint")
    assert np.array_equal(plain[~mask], grown[~mask])
    assert not np.array_equal(plain[mask], grown[mask])
    inner = grown[~mask].reshape(-1, 3)
    assert grown[mask].min() >= inner.min() - 1 and grown[mask].max() <= inner.max() + 1  # its own colours
    still = zoom.uncovered(np.array([[1.0, 0, 0], [0, 1, 0]]), (W, H))
    assert not still.any()
