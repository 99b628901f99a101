"""dreamvid.trajectory: affine conventions, keyframes, fps independence. Plain numpy, fast."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dreamvid.errors import InputError, SettingsError
from dreamvid.trajectory import (
    EASINGS,
    Keyframes,
    Motion,
    Trajectory,
    apply,
    apply_points,
    compose,
    ease,
    frame_affine,
    identity,
    invert,
    parse_keyframes,
)

# What a caller (render) passes: the dream parameters keyframes may set, by type.
DREAM_KEYS = {"step": float, "iterations": int, "num_octave": int, "octave_scale": float,
              "jitter": int, "layers": dict, "model": str}

SIZE = (64, 48)  # (width, height) as cv2 takes it
W, H = SIZE
CENTER = ((W - 1) / 2, (H - 1) / 2)  # pixel centres on integers


def corners(size=SIZE):
    """The four outer corners of a frame, in pixel coordinates."""
    w, h = size
    return np.array([[-0.5, -0.5], [w - 0.5, -0.5], [-0.5, h - 0.5], [w - 0.5, h - 0.5]])


@pytest.fixture
def keyframes_toml():
    return """
    # times in seconds; a key holds until changed
    [[keyframe]]
    time = 0
    zoom = 1.05
    rotate = 0.0
    pan = [0, 0]
    center = [0.5, 0.5]
    easing = "ease-in-out"
    step = 0.02
    iterations = 10
    layers = { block4c_out = 1.0 }

    [[keyframe]]
    time = 5
    zoom = 1.3
    rotate = 8.0
    easing = "linear"
    iterations = 21
    layers = { block6d_out = 1.0 }

    [[keyframe]]
    time = 7
    center = [0.3, 0.6]
    pan = [12, -6]
    """


def cv2_or_skip():
    return pytest.importorskip("cv2")


# ----------------------------------------------------------------------------- Motion

@pytest.mark.parametrize("kwargs, key", [
    ({"zoom": 0}, "zoom"), ({"zoom": -1}, "zoom"), ({"zoom": float("nan")}, "zoom"),
    ({"zoom": float("inf")}, "zoom"), ({"rotate": float("nan")}, "rotate"),
    ({"pan": (1.0, float("inf"))}, "pan"), ({"pan": (1.0,)}, "pan"), ({"pan": "0,0"}, "pan"),
    ({"center": (1.5, 0.5)}, "center"), ({"center": (0.5, -0.1)}, "center"),
    ({"zoom": "1.1"}, "zoom"), ({"zoom": True}, "zoom"),
])
def test_motion_rejects_bad_values(kwargs, key):
    with pytest.raises(SettingsError) as e:
        Motion(**kwargs)
    assert key in e.value.message and e.value.hint


def test_motion_message_style_and_normalisation():
    with pytest.raises(SettingsError, match=r"zoom must be > 0 \(got -1\)"):
        Motion(zoom=-1)
    m = Motion(zoom=2, rotate=1, pan=[3, 4], center=[0, 1])
    assert m.pan == (3.0, 4.0) and m.center == (0.0, 1.0) and isinstance(m.zoom, float)


# ----------------------------------------------------------------------------- affines

def test_zoom_in_2x_about_centre_fills_frame_with_central_half():
    m = frame_affine(Motion(zoom=2.0), 1.0, SIZE)
    half = np.array([[W / 4 - 0.5, H / 4 - 0.5], [3 * W / 4 - 0.5, H / 4 - 0.5],
                     [W / 4 - 0.5, 3 * H / 4 - 0.5], [3 * W / 4 - 0.5, 3 * H / 4 - 0.5]])
    np.testing.assert_allclose(apply_points(m, half), corners(), atol=1e-12)
    np.testing.assert_allclose(apply_points(m, [CENTER]), [CENTER], atol=1e-12)


def test_zoom_about_top_left_corner_fills_frame_with_top_left_quadrant():
    m = frame_affine(Motion(zoom=2.0, center=(0.0, 0.0)), 1.0, SIZE)
    quadrant = np.array([[-0.5, -0.5], [W / 2 - 0.5, -0.5], [-0.5, H / 2 - 0.5],
                         [W / 2 - 0.5, H / 2 - 0.5]])
    np.testing.assert_allclose(apply_points(m, quadrant), corners(), atol=1e-12)


def test_zoom_is_per_second_and_off_centre_point_stays_fixed():
    m = frame_affine(Motion(zoom=4.0, center=(0.25, 0.75)), 0.5, SIZE)
    np.testing.assert_allclose(m[:, :2], 2.0 * np.eye(2), atol=1e-12)  # 4 ** 0.5
    fixed = (0.25 * W - 0.5, 0.75 * H - 0.5)
    np.testing.assert_allclose(apply_points(m, [fixed]), [fixed], atol=1e-12)


def test_positive_rotation_is_counter_clockwise_on_screen():
    # y points down, so a point right of the centre moves UP (smaller y) under +90 degrees.
    m = frame_affine(Motion(rotate=90.0), 1.0, SIZE)
    cx, cy = CENTER
    moved = apply_points(m, [[cx + 10, cy], [cx, cy - 10]])
    np.testing.assert_allclose(moved, [[cx, cy - 10], [cx - 10, cy]], atol=1e-9)


def test_pan_moves_the_picture_right_and_down_per_second():
    m = frame_affine(Motion(pan=(10.0, -4.0)), 0.5, SIZE)
    np.testing.assert_allclose(m, [[1, 0, 5.0], [0, 1, -2.0]], atol=1e-12)


def test_steps_compose_exactly_for_constant_motion():
    motion = Motion(zoom=1.3, rotate=-17.0, pan=(9.0, 4.0), center=(0.2, 0.7))
    a, b = frame_affine(motion, 0.3, SIZE), frame_affine(motion, 0.45, SIZE)
    np.testing.assert_allclose(compose(b, a), frame_affine(motion, 0.75, SIZE), atol=1e-10)
    np.testing.assert_allclose(frame_affine(motion, 0.0, SIZE), identity(), atol=1e-15)


def random_affine(rng):
    m = rng.normal(size=(2, 3))
    m[:, :2] += 2 * np.eye(2)  # comfortably invertible
    return m


def test_compose_and_invert_laws():
    rng = np.random.default_rng(0)
    a, b, c = (random_affine(rng) for _ in range(3))
    p = rng.uniform(-50, 50, size=(7, 2))
    np.testing.assert_allclose(apply_points(compose(a, b), p), apply_points(a, apply_points(b, p)))
    np.testing.assert_allclose(compose(compose(a, b), c), compose(a, compose(b, c)))
    np.testing.assert_allclose(compose(a, identity()), a)
    np.testing.assert_allclose(compose(identity(), a), a)
    np.testing.assert_allclose(compose(invert(a), a), identity(), atol=1e-12)
    np.testing.assert_allclose(compose(a, invert(a)), identity(), atol=1e-12)
    np.testing.assert_allclose(invert(compose(a, b)), compose(invert(b), invert(a)), atol=1e-12)
    assert compose(a, b).shape == (2, 3) and compose(a, b).dtype == np.float64


def test_apply_zoom_2x_matches_resized_central_half():
    cv2 = cv2_or_skip()
    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), (0, 0), 1.5)
    out = apply(image, frame_affine(Motion(zoom=2.0), 1.0, SIZE), "linear")
    expected = cv2.resize(image[H // 4:3 * H // 4, W // 4:3 * W // 4], SIZE,
                          interpolation=cv2.INTER_LINEAR)
    assert out.shape == image.shape and out.dtype == np.uint8
    inner = (slice(2, -2), slice(2, -2))  # the borders differ: reflect vs replicate
    assert np.abs(out[inner].astype(int) - expected[inner].astype(int)).max() <= 1


def test_apply_moves_a_dot_the_documented_way():
    cv2_or_skip()
    image = np.zeros((H, W), np.float32)
    cx, cy = int(CENTER[0] + 0.5), int(CENTER[1] + 0.5)
    image[cy - 1:cy + 1, cx + 11:cx + 13] = 1.0  # a 2x2 dot right of the centre
    for motion, (dx, dy) in [(Motion(rotate=90.0), (-12, -12)),  # rotation: right -> above
                             (Motion(pan=(5.0, 3.0)), (5, 3))]:
        out = apply(image, frame_affine(motion, 1.0, SIZE), "linear")
        ys, xs = np.nonzero(image > 0.5)
        yo, xo = np.nonzero(out > 0.5)
        if motion.rotate:
            # The dot's centre (CENTER + (12, 0)) lands at CENTER + (0, -12).
            got = (np.average(xo), np.average(yo))
            np.testing.assert_allclose(got, (CENTER[0], CENTER[1] - 12), atol=0.6)
        else:
            np.testing.assert_array_equal((yo, xo), (ys + dy, xs + dx))


def test_apply_unknown_interpolation():
    cv2_or_skip()
    with pytest.raises(SettingsError, match="interpolation"):
        apply(np.zeros((4, 4, 3), np.uint8), identity(), "bicubic-ish")


# ----------------------------------------------------------------------------- easing

@pytest.mark.parametrize("name", sorted(EASINGS))
def test_easing_endpoints_and_monotonic(name):
    assert ease(name, 0.0) == 0.0 and ease(name, 1.0) == 1.0
    assert ease(name, -3.0) == 0.0 and ease(name, 7.0) == 1.0  # clipped
    values = [ease(name, u) for u in np.linspace(0, 1, 101)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert all(0.0 <= v <= 1.0 for v in values)


def test_easing_shapes():
    assert ease("linear", 0.3) == pytest.approx(0.3)
    assert ease("ease-in", 0.3) < 0.3 < ease("ease-out", 0.3)
    assert ease("ease-in-out", 0.5) == pytest.approx(0.5)
    assert ease("ease-in-out", 0.25) == pytest.approx(0.15625)  # smoothstep
    assert ease("hold", 0.999) == 0.0
    with pytest.raises(SettingsError, match="wobble"):
        ease("wobble", 0.5)


# ----------------------------------------------------------------------------- keyframes

def test_keyframe_values_at_chosen_times(keyframes_toml):
    kf = parse_keyframes(keyframes_toml, DREAM_KEYS)
    assert kf.times == (0.0, 5.0, 7.0)
    v0 = kf.at(0.0)
    assert v0 == {"zoom": 1.05, "rotate": 0.0, "pan": (0.0, 0.0), "center": (0.5, 0.5),
                  "step": 0.02, "iterations": 10, "layers": {"block4c_out": 1.0}}
    w = ease("ease-in-out", 0.25)  # 0 -> 5 s eases in and out
    v = kf.at(1.25)
    assert v["rotate"] == pytest.approx(8.0 * w)
    assert v["zoom"] == pytest.approx(math.exp((1 - w) * math.log(1.05) + w * math.log(1.3)))
    assert v["iterations"] == math.floor(10 + 11 * w + 0.5)
    assert v["layers"] == pytest.approx({"block4c_out": 1 - w, "block6d_out": w})
    assert v["step"] == 0.02  # set once: constant
    # 5 -> 7 s is linear; pan and center change only at 7 s, so they travel from 5 s on
    v = kf.at(6.0)
    assert v["pan"] == pytest.approx((6.0, -3.0)) and v["center"] == pytest.approx((0.4, 0.55))
    assert v["zoom"] == 1.3 and v["rotate"] == 8.0 and v["layers"] == {"block6d_out": 1.0}
    # after the last keyframe everything holds
    assert kf.at(100.0) == kf.at(7.0)
    assert kf.at(7.0)["center"] == (0.3, 0.6)


def test_zoom_travels_geometrically():
    kf = Keyframes.from_list([{"time": 0, "zoom": 0.8}, {"time": 2, "zoom": 1.25}], {})
    assert kf.at(1.0)["zoom"] == pytest.approx(1.0)


def test_layers_interpolate_per_name():
    kf = Keyframes.from_list([
        {"time": 0, "layers": {"a": 1.0, "b": 0.5}},
        {"time": 4, "layers": {"b": 1.5, "c": 2.0}},
    ], DREAM_KEYS)
    assert kf.at(1.0)["layers"] == pytest.approx({"a": 0.75, "b": 0.75, "c": 0.5})
    assert kf.at(0.0)["layers"] == {"a": 1.0, "b": 0.5}  # no zero-weight layers
    assert kf.at(4.0)["layers"] == {"b": 1.5, "c": 2.0}


def test_hold_easing_and_easing_holds_until_changed():
    kf = Keyframes.from_list([
        {"time": 0, "rotate": 0, "easing": "hold", "model": "a"},
        {"time": 1, "rotate": 10},
        {"time": 2, "rotate": 20, "easing": "linear", "model": "b"},
        {"time": 3, "rotate": 40},
    ], DREAM_KEYS)
    assert kf.easings == ("hold", "hold", "linear", "linear")
    assert kf.at(0.99)["rotate"] == 0.0 and kf.at(1.0)["rotate"] == 10.0
    assert kf.at(1.5)["rotate"] == 10.0 and kf.at(2.5)["rotate"] == pytest.approx(30.0)
    assert kf.at(1.9)["model"] == "a" and kf.at(2.0)["model"] == "b"  # strings switch


def test_defaults_and_values_before_first_set():
    items = [{"time": 1, "zoom": 1.2}, {"time": 3, "rotate": 10, "step": 0.05}]
    kf = Keyframes.from_list(items, DREAM_KEYS, defaults={"step": 0.01, "rotate": 2.0})
    assert kf.at(0.0) == kf.at(1.0)  # before the first keyframe: its values
    assert kf.at(2.0)["rotate"] == pytest.approx(6.0)  # from the default 2 to 10
    assert kf.at(2.0)["step"] == pytest.approx(0.03)
    assert kf.at(2.0)["center"] == (0.5, 0.5)  # never set: the still camera
    # without a default, a dream key has its first keyframe value from the start
    kf = Keyframes.from_list(items, DREAM_KEYS)
    assert kf.at(2.0)["step"] == 0.05 and "iterations" not in kf.at(2.0)
    assert kf.dream_at(2.0) == {"step": 0.05}
    assert kf.motion_at(2.0) == Motion(zoom=1.2, rotate=5.0)


def test_parse_from_file(tmp_path, keyframes_toml):
    path = tmp_path / "zoom.toml"
    path.write_text(keyframes_toml)
    assert parse_keyframes(path, DREAM_KEYS) == parse_keyframes(keyframes_toml, DREAM_KEYS)
    assert parse_keyframes(str(path), DREAM_KEYS).times == (0.0, 5.0, 7.0)
    with pytest.raises(InputError, match="missing.toml"):
        parse_keyframes(tmp_path / "missing.toml", DREAM_KEYS)


BAD_KEYFRAMES = [
    ("[[keyframe]]\ntime = 0\nzoon = 1.1", r"keyframe 1: unknown key 'zoon'", "zoom"),
    ("[[keyframe]]\ntime = 0\n[[keyframe]]\ntime = 2\n[[keyframe]]\ntime = 1",
     r"keyframe 3 has time 1 but keyframe 2 has time 2", "increase"),
    ("[[keyframe]]\ntime = 0\n[[keyframe]]\ntime = 0", r"keyframe 2 has time 0", "increase"),
    ("[[keyframe]]\ntime = 0\n[[keyframe]]\ntime = 1\nzoom = -1",
     r"keyframe 2: zoom must be > 0 \(got -1\)", "zoom"),
    ("[[keyframe]]\ntime = 0\nzoom = 0", r"keyframe 1: zoom must be > 0", "zoom"),
    ("[[keyframe]]\ntime = 0\neasing = 'bouncy'", r"keyframe 1: easing 'bouncy'", "ease-in-out"),
    ("[[keyframe]]\nzoom = 1.1", r"keyframe 1: time is missing", "time"),
    ("[[keyframe]]\ntime = -1", r"keyframe 1: time must be >= 0", "seconds"),
    ("[[keyframe]]\ntime = nan", r"keyframe 1: time must be a finite", "time"),
    ("[[keyframe]]\ntime = 0\nstep = inf", r"keyframe 1: step must be a finite", "step"),
    ("[[keyframe]]\ntime = 0\niterations = 2.5", r"keyframe 1: iterations must be a whole", ""),
    ("[[keyframe]]\ntime = 0\nlayers = 1.0", r"keyframe 1: layers must be a non-empty table", ""),
    ("[[keyframe]]\ntime = 0\nlayers = { a = 'x' }", r"keyframe 1: layers.a = 'x': unknown name 'x'", ""),
    ("[[keyframe]]\ntime = 0\nlayers = { a = true }", r"keyframe 1: layers.a must be a number", ""),
    ("[[keyframe]]\ntime = 0\ncenter = [0.5, 2]", r"keyframe 1: center must be fractions", ""),
    ("[[keyframe]]\ntime = 0\npan = [1, 2, 3]", r"keyframe 1: pan must be two numbers", ""),
    ("[[keyframe]]\ntime = 0\nmodel = 3", r"keyframe 1: model must be a string", ""),
    ("[[keyframe]\ntime = 0", r"not valid TOML", ""),
    ("fps = 24\n[[keyframe]]\ntime = 0", r"unknown top-level key 'fps'", "keyframe"),
    ("# nothing\n", r"at least one \[\[keyframe\]\]", ""),
]


@pytest.mark.parametrize("text, message, hint", BAD_KEYFRAMES)
def test_bad_keyframes_raise_settings_error(text, message, hint):
    with pytest.raises(SettingsError, match=message) as e:
        parse_keyframes(text, DREAM_KEYS)
    assert hint in (e.value.hint or "")


def test_unknown_key_lists_known_ones():
    with pytest.raises(SettingsError) as e:
        parse_keyframes("[[keyframe]]\ntime = 0\nsteps = 0.1", DREAM_KEYS)
    assert "'steps'" in e.value.message
    assert all(k in e.value.hint for k in ("step", "layers", "zoom", "easing"))


# ----------------------------------------------------------------------------- Trajectory

def test_trajectory_frames_and_times():
    tr = Trajectory(Motion(zoom=1.25), 24, SIZE, duration=10)
    assert tr.n_frames == len(tr) == 240
    np.testing.assert_allclose(tr.times[:3], [0, 1 / 24, 2 / 24])
    np.testing.assert_array_equal(tr.affine(0), identity())
    np.testing.assert_array_equal(tr.cumulative(0), identity())
    np.testing.assert_allclose(tr.cumulative(3),
                               compose(tr.affine(3), compose(tr.affine(2), tr.affine(1))))
    assert tr.params(5) == {} and tr.motion(5) == Motion(zoom=1.25)
    assert Trajectory(Motion(), 30, SIZE, n_frames=7).n_frames == 7
    with pytest.raises(IndexError):
        tr.affine(240)


def test_constant_motion_cumulative_is_the_exact_path():
    motion = Motion(zoom=1.25, rotate=2.0, pan=(10.0, -5.0), center=(0.3, 0.6))
    tr = Trajectory(motion, 24, SIZE, duration=10)
    np.testing.assert_allclose(tr.cumulative(239), frame_affine(motion, 239 / 24, SIZE),
                               rtol=1e-9, atol=1e-7)


def path_at(source, fps, seconds, size=SIZE):
    tr = Trajectory(source, fps, size, duration=seconds + 1)
    i = round(seconds * fps)
    assert tr.times[i] == pytest.approx(seconds)
    return apply_points(tr.cumulative(i), corners(size))


def test_fps_independence_constant_motion():
    motion = Motion(zoom=1.25, rotate=2.0, pan=(10.0, -5.0), center=(0.3, 0.6))
    np.testing.assert_allclose(path_at(motion, 24, 9.5), path_at(motion, 60, 9.5), atol=1e-6)


def test_fps_independence_keyframed_motion(keyframes_toml):
    kf = parse_keyframes(keyframes_toml, DREAM_KEYS)
    a, b = path_at(kf, 24, 9.0), path_at(kf, 60, 9.0)
    assert np.abs(a).max() > 200  # the path goes somewhere (magnified about 5x)
    np.testing.assert_allclose(a, b, atol=0.01)  # px, over 9 s of eased zoom and rotation


def test_fps_independence_with_hold_jump_between_frames():
    # 2.01 s falls inside a frame step at both 24 and 60 fps: the step is split there.
    kf = Keyframes.from_list([{"time": 0, "zoom": 1.5, "rotate": 20, "easing": "hold"},
                              {"time": 2.01, "zoom": 0.7, "rotate": -30}], {})
    np.testing.assert_allclose(path_at(kf, 24, 4.0), path_at(kf, 60, 4.0), atol=1e-6)


def test_params_follow_keyframes_at_frame_times(keyframes_toml):
    kf = parse_keyframes(keyframes_toml, DREAM_KEYS)
    tr = Trajectory(kf, 10, SIZE)  # duration from the last keyframe
    assert tr.n_frames == 70
    assert tr.params(25) == kf.dream_at(2.5)
    assert tr.params(50) == {"step": 0.02, "iterations": 21, "layers": {"block6d_out": 1.0}}
    assert tr.motion(60).center == pytest.approx((0.4, 0.55))


@pytest.mark.parametrize("kwargs, key", [
    ({"fps": 0, "duration": 10}, "fps"), ({"fps": -24, "duration": 10}, "fps"),
    ({"fps": float("nan"), "duration": 10}, "fps"),
    ({"fps": 24, "duration": 0}, "duration"), ({"fps": 24, "duration": -1}, "duration"),
    ({"fps": 24, "duration": 0.01}, "less than one frame"),
    ({"fps": 24, "n_frames": 0}, "frames"), ({"fps": 24, "n_frames": 2.5}, "frames"),
    ({"fps": 24, "duration": 1, "n_frames": 24}, "not both"),
    ({"fps": 24}, "duration"),
    ({"fps": 24, "duration": 1, "size": (0, 48)}, "size"),
    ({"fps": 24, "duration": 1, "size": (64.5, 48)}, "size"),
])
def test_trajectory_rejects_bad_settings(kwargs, key):
    size = kwargs.pop("size", SIZE)
    with pytest.raises(SettingsError) as e:
        Trajectory(Motion(), size=size, **kwargs)
    assert key in e.value.message and e.value.hint
