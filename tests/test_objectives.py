"""What to dream of and where: channels, ImageNet classes, a guide image, negative weights, masks.

Mechanics on the tiny random network (tests/tinymodel.py); the class objective and one run of
every command on the bundled efficientnet_lite0, at tiny sizes.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from dreamvid import dream, mask, media, models
from dreamvid.errors import InputError, ModelError, SettingsError
from dreamvid.settings import DreamSettings, parse_classes, split_entry, validate

from .clitools import one_line_error, run
from .conftest import texture, write_clip
from .tinymodel import build as build_tiny

FAST = DreamSettings(iterations=3, num_octave=1, jitter=0, max_loss=None, step=0.05, precision="float32")


@pytest.fixture(scope="module")
def net():
    return build_tiny(0)


def tiny_dreamer(net, layers, objective=None):
    return dream.Dreamer(models.from_keras(net, layers), objective)


def source(h=48, w=64, seed=3):
    return texture(h, w, seed).astype(np.float32)


# ---- the vocabulary ------------------------------------------------------------------------

def test_entries_and_classes_parse():
    assert split_entry("block5c_out") == ("block5c_out", None)
    assert split_entry("block5c_out/17") == ("block5c_out", 17)
    for bad in ("block5c_out/x", "/3", "logits"):
        with pytest.raises(SettingsError):
            split_entry(bad)
    assert parse_classes(["golden retriever", "207:0.5", "n02099601:-0.25", "Tabby Cat"]) == ((207, 1.25), (281, 1.0))
    assert parse_classes({"pug": 2}) == ((254, 2.0),)
    with pytest.raises(SettingsError, match="golden retriever"):
        parse_classes("golden retreiver")  # the nearest names are suggested
    with pytest.raises(SettingsError, match="0..999"):
        parse_classes(1000)
    s = validate(DreamSettings(layers=(("block5c_out/3", 1.0),), classes=((207, -0.5),)))
    assert s.targets() == (("block5c_out/3", 1.0), ("logits/207", -0.5))
    assert validate(DreamSettings(layers=(("block4c_out", -1.0),))).layers == (("block4c_out", -1.0),)  # suppress only
    for bad in (dict(guide_weight=1.5), dict(smooth=-1.0), dict(smooth=11.0)):
        with pytest.raises(SettingsError):
            validate(DreamSettings(**bad))


def test_objective_fields_at_their_defaults_leave_the_resume_key_alone():
    from dreamvid.settings import Settings

    plain = Settings().to_dict()["dream"]
    assert not {"classes", "guide", "guide_weight", "mask", "smooth"} & set(plain)
    assert Settings(DreamSettings(classes=((207, 1.0),))).to_dict()["dream"]["classes"] == {"207": 1.0}


def test_presets_write_classes_and_channels_back_as_toml():
    import tomllib

    from dreamvid import presets

    s = presets.resolve("dogs")
    assert dict(s.dream.classes) == {254: 1.0, 207: 1.0} and s.dream.smooth > 0
    text = presets.to_toml(presets.resolve(None, dream={"layers": {"block5c_out/7": 1.0}, "classes": ["pug"]}))
    data = tomllib.loads(text)
    assert data["dream"]["layers"] == {"block5c_out/7": 1.0} and data["dream"]["classes"] == {"254": 1.0}


# ---- channels, negative weights, guide: the mechanics ------------------------------------------

def test_a_channel_entry_is_exactly_that_channel(net):
    whole = models.from_keras(net, (("conv3", 1.0),))
    picked = models.from_keras(net, (("conv3/5", 1.0), ("conv2/0", 1.0)))
    x = dream.to_dream_space(source())[None]
    a = np.asarray(whole(x)[0])
    b, c = (np.asarray(t) for t in picked(x))
    np.testing.assert_array_equal(b[..., 0], a[..., 5])
    assert c.shape[-1] == 1


def test_a_channel_dream_raises_that_channel_more_than_its_neighbours(net):
    layer = models.from_keras(net, (("conv3", 1.0),))
    img = source()
    out = tiny_dreamer(net, (("conv3/5", 1.0),)).dream(img, FAST)

    def energy(x):
        return (np.asarray(layer(dream.to_dream_space(x)[None])[0])[0] ** 2).mean((0, 1))

    gain = energy(out) / energy(img)
    assert gain[5] > 1.5 * np.median(np.delete(gain, 5)), gain


def test_a_negative_weight_suppresses(net):
    layer = models.from_keras(net, (("conv2", 1.0),))
    img = source()
    out = tiny_dreamer(net, (("conv3", 1.0), ("conv2", -1.0))).dream(img, FAST)
    grown = tiny_dreamer(net, (("conv3", 1.0),)).dream(img, FAST)

    def energy(x):
        return float((np.asarray(layer(dream.to_dream_space(x)[None])[0]) ** 2).mean())

    assert energy(out) < energy(grown)


def test_a_guided_dream_moves_toward_the_guide(net):
    img, guide = source(seed=3), source(seed=11)
    tap = models.from_keras(net, (("conv3", 1.0),))

    def best_cosine(x):
        f = np.asarray(tap(dream.to_dream_space(x)[None])[0])[0].reshape(-1, 16)
        g = np.asarray(tap(dream.to_dream_space(guide)[None])[0])[0].reshape(-1, 16)
        f = f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-9)
        g = g / (np.linalg.norm(g, axis=1, keepdims=True) + 1e-9)
        return float((f @ g.T).max(1).mean())

    objective = dream.MeanSquares(guide=dream.Guide.of(guide.astype(np.uint8)))
    longer = FAST.__class__(**{**FAST.__dict__, "iterations": 12})
    guided = tiny_dreamer(net, (("conv3", 1.0),), objective).dream(img, longer)
    plain = tiny_dreamer(net, (("conv3", 1.0),)).dream(img, longer)
    assert best_cosine(guided) - best_cosine(img) > 2 * (best_cosine(plain) - best_cosine(img)) + 0.005
    assert hash(objective) == hash(dream.MeanSquares(guide=dream.Guide.of(guide.astype(np.uint8))))


# ---- masks ---------------------------------------------------------------------------------------

def test_a_mask_keeps_the_black_part_exactly_and_ones_change_nothing(net):
    d = tiny_dreamer(net, (("conv3", 1.0),))
    img = source()
    m = np.zeros(img.shape[:2], np.float32)
    m[:, 32:] = 1.0
    out = d.dream(img, FAST, mask=m)
    np.testing.assert_allclose(out[:, :30], img[:, :30], atol=1e-3)
    assert np.abs(out[:, 34:] - img[:, 34:]).mean() > 2
    np.testing.assert_array_equal(d.dream(img, FAST, mask=np.ones(img.shape[:2], np.float32)), d.dream(img, FAST))
    with pytest.raises(InputError, match="the mask is"):
        d.dream(img, FAST, mask=np.ones((10, 10), np.float32))


def test_mask_files_are_fitted_feathered_and_checked(tmp_path):
    import cv2

    m = np.zeros((60, 80), np.uint8)
    m[:, 40:] = 255
    cv2.imwrite(str(tmp_path / "m.png"), m)
    fitted = mask.read(tmp_path / "m.png", (30, 40))  # half the size, same aspect
    assert fitted.shape == (30, 40) and fitted[:, :15].max() < 0.02 and fitted[:, 25:].min() > 0.98
    assert 0.1 < fitted[15, 20] < 0.9  # a soft edge, not a step
    with pytest.raises(InputError, match="aspect ratio"):
        mask.read(tmp_path / "m.png", (40, 40))
    cv2.imwrite(str(tmp_path / "black.png"), np.zeros((6, 8), np.uint8))
    with pytest.raises(InputError, match="black everywhere"):
        mask.read(tmp_path / "black.png", (6, 8))


def test_motion_mask_finds_what_moves_apart_from_the_camera():
    import cv2

    from dreamvid.flow import FlowEstimator, motion_between

    h, w = 96, 128
    background = texture(h + 40, w + 40, seed=1)
    thing = texture(28, 28, seed=2)
    est = FlowEstimator("dis", "medium")

    def frame(cam, pos):
        f = background[20 + cam:20 + cam + h, 20 + cam:20 + cam + w].copy()
        f[30:58, pos:pos + 28] = thing
        return f

    for cam_speed in (0, 2):  # a still camera, then one panning by 2 px per frame
        frames = [frame(cam_speed * i, 20 + 4 * i) for i in range(3)]
        masks = mask.MotionMasks("motion", (h, w))
        ms = [masks.next(0, motion_between(frames[1], frames[0], est), linked=False)]
        for i in (1, 2):
            ms.append(masks.next(i, motion_between(frames[i - 1], frames[i], est), linked=True))
        m = ms[2]
        inside = m[34:54, 20 + 8 + 4:20 + 8 + 20].mean()
        outside = np.concatenate([m[:20].ravel(), m[70:].ravel()]).mean()
        assert inside > 0.6 and outside < 0.15, (cam_speed, inside, outside)
        still = mask.MotionMasks("still", (h, w)).next(0, motion_between(frames[1], frames[0], est), False)
        assert still[:20].mean() > 0.85
    assert cv2 is not None


# ---- the bundled model: classes, and every command ----------------------------------------------

@pytest.fixture(scope="module")
def classifier():
    from dreamvid.models import efficientnet_lite

    return efficientnet_lite.pretrained(include_top=True)


def test_a_class_dream_raises_that_class_far_above_the_source(classifier):
    img = media.read_image("samples/chelsea.jpg", max_size=128)
    s = DreamSettings(classes=((207, 1.0),), iterations=8, num_octave=2, max_loss=None)
    out = dream.dream_image(img, s)

    def logits(x):
        return np.asarray(classifier(dream.to_dream_space(x.astype(np.float32))[None], training=False))[0]

    before, after = logits(img), logits(out)
    assert after[207] > before[207] + 5 and int(np.argmax(after)) == 207, (before[207], after[207])


def test_class_and_channel_input_is_checked_before_any_work(tmp_path):
    out = tmp_path / "x.png"
    one_line_error(run("image", "samples/chelsea.jpg", "-o", out, "--class", "golden retreiver"), 2,
                   "unknown ImageNet class", "golden retriever")
    one_line_error(run("image", "samples/chelsea.jpg", "-o", out, "--class", "pug", "-m", "vgg16_hed"), 2,
                   "no ImageNet classifier", "efficientnet_lite0")
    one_line_error(run("image", "samples/chelsea.jpg", "-o", out, "--layer", "block5c_out/112"), 2,
                   "has 112 channels", "block5c_out/111")
    one_line_error(run("image", "samples/chelsea.jpg", "-o", out, "--guide", tmp_path / "none.jpg"), 2,
                   "--guide", "does not exist")
    one_line_error(run("image", "samples/chelsea.jpg", "-o", out, "--mask", "motion"), 2, "is for videos")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    one_line_error(run("image", "samples/chelsea.jpg", "-o", out, "--mask", tmp_path / "bad.png"), 2, "bad.png")
    assert not out.exists()


def test_classes_and_channels_are_listed():
    r = run("classes", "--search", "retriever")
    assert r.exit_code == 0 and "207" in r.output and "golden retriever" in r.output
    assert run("classes", "vgg16_hed").exit_code == 2
    r = run("layers", "efficientnet_lite0", "--channels")
    assert r.exit_code == 0 and "logits/0" in r.output
    assert re.search(r"^block5c_out +14 x 14 x 112 +0 \.\. 111$", r.output, re.M), r.output


def test_every_command_takes_objectives_and_masks(tmp_path):
    import cv2

    small = ["--max-size", "64", "-i", "2", "--num-octave", "1"]
    m = np.zeros((300, 451), np.uint8)  # chelsea.jpg's shape
    m[:, 226:] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), m)
    cases = {
        "image": ["image", "samples/chelsea.jpg", "-o", tmp_path / "i.png", "--mask", tmp_path / "mask.png",
                  "--class", "pug", "--layer", "block5c_out/3"],
        "sweep": ["sweep", "samples/chelsea.jpg", "-o", tmp_path / "s.png", "--layer", "block5c_out",
                  "--vary", "channel=0-1"],
        "timelapse": ["timelapse", "samples/chelsea.jpg", "-o", tmp_path / "t.png", "--checkpoints", "1,2",
                      "--guide", "samples/coffee.jpg", "--mask", tmp_path / "mask.png"],
        "zoom": ["zoom", "samples/chelsea.jpg", "-o", tmp_path / "z", "--frames", "2", "--class", "pug",
                 "--mask", tmp_path / "mask.png"],
    }
    for name, args in cases.items():
        r = run(*args, *(small[:2] + small[4:] if name == "timelapse" else small))
        assert r.exit_code == 0, (name, r.output)
    src = media.read_image("samples/chelsea.jpg", max_size=64).astype(int)
    out = media.read_image(tmp_path / "i.png").astype(int)
    assert np.abs(out[:, :26] - src[:, :26]).mean() < 1.0 and np.abs(out[:, 40:] - src[:, 40:]).mean() > 0.5
    cells = sorted((tmp_path / "s.png").parent.glob("s.png"))
    assert cells and media.read_image(tmp_path / "s.png").shape[1] > 64


def test_video_masks_keep_the_masked_part_and_check_the_clip(tmp_path):
    import cv2

    frames = [texture(48, 64, seed=5)] * 6  # a still shot: --mask still dreams all of it, motion none
    clip = write_clip(tmp_path / "still.mp4", frames, 25)
    half = np.zeros((48, 64), np.uint8)
    half[:, 32:] = 255
    cv2.imwrite(str(tmp_path / "half.png"), half)
    small = ["--max-size", "64", "-i", "2", "--frame-iterations", "1", "--num-octave", "1"]
    r = run("video", clip, "-o", tmp_path / "f", "--mask", tmp_path / "half.png", *small)
    assert r.exit_code == 0, r.output
    decoded = [f for _, f in media.read_frames(clip)]
    for k, src in enumerate(decoded):
        out = media.read_image(tmp_path / "f" / f"frame_{k:05d}.png").astype(int)
        assert np.abs(out[:, :26] - src[:, :26].astype(int)).mean() < 1.0, k
        assert np.abs(out[:, 40:] - src[:, 40:].astype(int)).mean() > 1.0, k
    r = run("video", clip, "-o", tmp_path / "c", "--mask", tmp_path / "half.png", "--cadence", "2", *small)
    assert r.exit_code == 0, r.output
    for k, src in enumerate(decoded):  # the frames built between keyframes are masked too
        out = media.read_image(tmp_path / "c" / f"frame_{k:05d}.png").astype(int)
        assert np.abs(out[:, :26] - src[:, :26].astype(int)).mean() < 1.0, k
    r = run("video", clip, "-o", tmp_path / "g", "--mask", "motion", *small)
    assert r.exit_code == 0, r.output
    out = media.read_image(tmp_path / "g" / "frame_00003.png").astype(int)
    assert np.abs(out - decoded[3].astype(int)).mean() < 1.0  # nothing moves, so nothing dreams
    short = write_clip(tmp_path / "short.mp4", frames[:3], 25)
    one_line_error(run("video", clip, "-o", tmp_path / "h.mp4", "--mask", short, *small), 2,
                   "has 3 frames, the video needs 6")
    one_line_error(run("video", clip, "-o", tmp_path / "h.mp4", "--mask", "motion", "--flow", "none", *small), 2,
                   "optical flow")


def test_check_objective_refuses_clip_masks_for_stills():
    with pytest.raises(SettingsError, match="is for videos"):
        dream.check_objective(DreamSettings(mask="mask.mp4"), "image")
    with pytest.raises(ModelError):
        models.resolve_layers("efficientnet_lite0", (("block5c_out/112", 1.0),))


def test_a_motion_mask_video_resumes_exactly(tmp_path, tiny):
    from dreamvid.render.video import render_video
    from dreamvid.settings import Settings, VideoSettings

    from .test_render_video import Interrupt, work_frames

    bg, thing = texture(48, 64, seed=4), texture(14, 14, seed=9)
    clip = []
    for t in range(8):
        f = bg.copy()
        f[16:30, 4 + 5 * t:18 + 5 * t] = thing
        clip.append(f)
    src = write_clip(tmp_path / "m.mp4", clip, 25, crf=0)
    settings = Settings(DreamSettings(model=tiny, step=0.08, num_octave=2, iterations=3, max_loss=None, mask="motion"),
                        VideoSettings(frame_iterations=2, frame_num_octave=1))
    render_video(src, tmp_path / "whole.mp4", settings, keep_frames=True)
    with pytest.raises(KeyboardInterrupt):
        render_video(src, tmp_path / "cut.mp4", settings, progress=Interrupt(after=4))
    render_video(src, tmp_path / "cut.mp4", settings, keep_frames=True)
    a = work_frames(tmp_path / "whole.mp4.dreamvid-work", range(8))
    b = work_frames(tmp_path / "cut.mp4.dreamvid-work", range(8))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    render_video(src, tmp_path / "shown", settings)  # a folder of the frames as shown
    decoded = [f for _, f in media.read_frames(src)]
    shown = media.read_image(tmp_path / "shown" / "frame_00005.png")
    moved = np.abs(shown.astype(int) - decoded[5].astype(int)).mean(-1)
    assert moved[16:30, 29:43].mean() > 3 * moved[36:].mean() + 0.5  # the moving square dreams, the rest barely


def test_zoom_keyframes_ease_a_class_in(tmp_path):
    (tmp_path / "kf.toml").write_text('[[keyframe]]\ntime = 0\nlayers = { block4c_out = 1.0 }\n'
                                      '[[keyframe]]\ntime = 0.5\nlayers = { "logits/254" = 1.0, block4c_out = 0.2 }\n')
    r = run("zoom", "samples/chelsea.jpg", "-o", tmp_path / "z", "--keyframes", tmp_path / "kf.toml", "--max-size", "64",
            "--fps", "4", "--duration", "0.75", "-i", "2")
    assert r.exit_code == 0, r.output
    import json

    rows = json.loads((tmp_path / "z.params.json").read_text())["frames"]
    assert rows[0]["layers"].get("logits/254", 0.0) == 0.0 and rows[0]["layers"]["block4c_out"] == 1.0
    assert rows[-1]["layers"]["logits/254"] == 1.0


def test_a_mask_clip_that_breaks_midway_is_named_and_the_frames_before_it_stay(tmp_path):
    from .clitools import error_line

    frames = [texture(48, 64, seed=s) for s in range(12)]
    clip = write_clip(tmp_path / "c.mp4", frames, 25)
    whole = write_clip(tmp_path / "m.mp4", frames, 25).read_bytes()
    (tmp_path / "m.mp4").write_bytes(whole[:len(whole) * 2 // 3])  # the mask clip's end is lost
    out = tmp_path / "o.mp4"
    r = run("video", clip, "-o", out, "--mask", tmp_path / "m.mp4", "--max-size", "64", "-i", "1",
            "--num-octave", "1", "--frame-iterations", "1")
    error_line(r, 2, "the mask clip m.mp4 stopped decoding", "run the same command again")
    kept = sorted((tmp_path / "o.mp4.dreamvid-work").glob("frame_*.png"))
    assert kept and not out.exists()
