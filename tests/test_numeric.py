"""Numbers too long or too large to handle (issue 25, class 1): dreamvid/numeric.py bounds every
number a user gives before it is converted, so each is a value or one line, at once.

The cases of the issue are regular tests; then the class is fuzzed over the CLI's parsers and
the studio's JSON: one line, exit 2 (HTTP 400), no traceback, in bounded time."""
from __future__ import annotations

import json
import time
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dreamvid import numeric
from dreamvid.errors import SettingsError

from .clitools import refused_or_planned, within

BIG = "1" + "0" * 400  # past float's range: float(int) overflows
HUGE = "1" * 5000  # past Python's integer-string limit (4300 digits)


# ---- the parser itself ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [("12", 12), (" -3 ", -3), ("0.5", 0.5), (".5", 0.5), ("1e3", 1000.0),
                                         ("2.5E-2", 0.025), ("+7", 7), ("inf", float("inf"))])
def test_literal_reads_numbers(text, value):
    assert numeric.literal(text, "k") == value and type(numeric.literal(text, "k")) is type(value)


@pytest.mark.parametrize("text", ["1.02+0.01*sin(t)", "t", "1_000", "f30", "1e", "--1", "", "0x10", "\u00b2"])
def test_literal_leaves_what_is_not_a_number_as_text(text):
    assert numeric.literal(text, "k") is None


@pytest.mark.parametrize("text, words", [(HUGE, "5000 characters"), (BIG, "401 characters"),
                                         ("1e100000000", "exponent"), ("1e-100000000", "exponent")])
def test_literal_refuses_a_number_too_long_or_too_large_at_once(text, words):
    t = time.perf_counter()
    with pytest.raises(SettingsError, match=words) as e:
        numeric.literal(text, "fps")
    assert time.perf_counter() - t < 0.05 and len(str(e.value)) < 200 and e.value.message.startswith("fps")


@pytest.mark.parametrize("value, want", [("24", Fraction(24)), ("30000/1001", Fraction(30000, 1001)),
                                         ("29.97", Fraction(2997, 100)), (25, Fraction(25)), (12.5, Fraction(25, 2)),
                                         (" 24 / 1 ", Fraction(24))])
def test_fraction_is_exact(value, want):
    assert numeric.fraction(value, "fps") == want


@pytest.mark.parametrize("value", ["1e100000000", "1e10000000", "1e-100000000", HUGE, "nan", "inf", "1/0", "x",
                                   "30000/1001" + "0" * 5000, True, None, float("nan"), 10 ** 400])
def test_fraction_refuses_what_cannot_be_a_rate_at_once(value):
    """Fraction("1e10000000") alone took 12 s; every refusal here is instant."""
    t = time.perf_counter()
    with pytest.raises(SettingsError):
        numeric.fraction(value, "fps")
    assert time.perf_counter() - t < 0.05


def test_real_and_is_finite_never_overflow():
    assert numeric.real(10 ** 300, "k") == 1e300 and numeric.is_finite(10 ** 300)
    for bad in (10 ** 400, -(10 ** 400), float("inf"), float("nan")):
        assert not numeric.is_finite(bad)
        with pytest.raises(SettingsError):
            numeric.real(bad, "k")
    for wrong in (True, "1", None, [1]):
        assert not numeric.is_finite(wrong)
        with pytest.raises(SettingsError, match="must be a number"):
            numeric.real(wrong, "k")


def test_shown_is_short_and_never_raises():
    deep: dict = {}
    node = deep
    for _ in range(10_000):  # repr() of this is a RecursionError
        node["a"] = node = {}
    for value in (10 ** 5000, -(10 ** 5000), "x" * 100_000, deep, [[[[[[1]]]]]], b"\0" * 9999):
        assert len(numeric.shown(value)) < 80
    assert numeric.shown(10 ** 5000) == "<an integer of 5001 digits>"
    assert numeric.shown("ab") == "'ab'" and numeric.shown("ab", quote=False) == "ab"


# ---- the cases ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["zoom", "timelapse"])
def test_fps_1e100000000_is_refused_at_once(command, photo, tmp_path):
    """It hung: Fraction() built 10**100000000 exactly."""
    out = tmp_path / ("o.mp4")
    line = refused_or_planned(command, photo, "-o", out, "--fps", "1e100000000", seconds=5)
    assert "fps" in line and "exponent" in line


def test_fps_in_a_preset_is_refused_at_once(photo, tmp_path):
    preset = tmp_path / "fast.toml"
    preset.write_text('[zoom]\nfps = "1e100000000"\n')
    line = refused_or_planned("zoom", photo, "-o", tmp_path / "z.mp4", "--preset", preset, seconds=5)
    assert "fast.toml" in line and "fps" in line


@pytest.mark.parametrize("where, toml, key", [
    ("preset", f"[dream]\nstep = {BIG}\n", "step"),
    ("preset", f"[dream]\niterations = {BIG}\n", "iterations"),
    ("preset", f"[dream.layers]\nblock4c_out = {BIG}\n", "block4c_out"),
    ("preset", f'[zoom]\nzoom = "{BIG}*t+1"\nduration = 1\n', "zoom"),
    ("keyframes", f"[[keyframe]]\ntime = {BIG}\n", "time"),
    ("keyframes", f"[[keyframe]]\ntime = 0\nzoom = {BIG}\n", "zoom"),
    ("keyframes", f'[[keyframe]]\ntime = 0\nstep = "{BIG[:350]}*t"\n', "step"),
])
def test_a_400_digit_integer_is_one_line_not_an_overflow_error(where, toml, key, photo, tmp_path):
    """float(int) and math.isfinite raised OverflowError: a traceback and exit 1 in 17 places."""
    path = tmp_path / "big.toml"
    path.write_text(toml)
    flag = "--preset" if where == "preset" else "--keyframes"
    line = refused_or_planned("zoom", photo, "-o", tmp_path / "z.mp4", flag, path, seconds=10)
    assert key in line


@pytest.mark.parametrize("expression", [f"{BIG[:300]}**2", "1e400*t", f"{BIG[:250]}*t+1e999"])
def test_an_expression_with_an_overflowing_number_is_refused(expression):
    from dreamvid.expr import parse

    import numpy as np

    with pytest.raises(SettingsError, match="too large|is inf"):  # at parse, or at the frame it overflows
        parse(expression, "zoom").at(np.array([1.0]), 24.0, duration=1.0)


@pytest.mark.parametrize("flag", ["--start", "--end"])
@pytest.mark.parametrize("value", [HUGE, "f" + HUGE, "1:" + HUGE, "f\u00b2"])
def test_start_and_end_with_5000_digits_are_one_line(flag, value, make_clip, tmp_path):
    clip, _ = make_clip("c.mp4", n=3)
    line = refused_or_planned("video", clip, "-o", tmp_path / "o.mp4", flag, value, seconds=10)
    assert flag in line


# ---- fuzzed: the CLI's number parsers ------------------------------------------------------------------------------

NUMBER_TEXT = st.one_of(
    st.integers(-(10 ** 30), 10 ** 30).map(str),
    st.integers(1, 6000).map(lambda n: "9" * n),  # up to past the integer-string limit
    st.tuples(st.integers(1, 80).map(lambda n: "1" * n), st.integers(-10 ** 12, 10 ** 12)).map(lambda p: f"{p[0]}e{p[1]}"),
    st.tuples(st.integers(0, 10 ** 70), st.integers(0, 10 ** 70)).map(lambda p: f"{p[0]}/{p[1]}"),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "-inf", "1e", "f" + HUGE, "1:" + HUGE, "\u00b2", "\u0663", "1_0", "0x10", "", " "]),
    st.text(alphabet="0123456789.e+-/:f", max_size=30),
)
FLAGS = [("zoom", "--fps"), ("timelapse", "--fps"), ("zoom", "--zoom"), ("zoom", "--rotate"), ("zoom", "--duration"),
         ("zoom", "--pan"), ("zoom", "--center"), ("image", "--step"), ("image", "--seed"), ("image", "--layer"),
         ("image", "--class"), ("image", "--max-size"), ("sweep", "--vary"), ("timelapse", "--checkpoints")]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(flag=st.sampled_from(FLAGS), text=NUMBER_TEXT)
def test_any_number_on_the_command_line_is_a_value_or_one_line(flag, text, photo, tmp_path):
    command, name = flag
    value = {"--layer": f"block4c_out:{text}", "--vary": f"seed={text}", "--pan": f"{text},0",
             "--center": f"0.5,{text}"}.get(name, text)
    out = tmp_path / ("o.png" if command in ("image", "sweep") else "o.mp4")
    t = time.perf_counter()
    refused_or_planned(command, photo, "-o", out, name, value, "--max-size", "64", seconds=20)
    assert time.perf_counter() - t < 20


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(flag=st.sampled_from(["--start", "--end", "--fps", "--blend", "--step"]), text=NUMBER_TEXT)
def test_any_number_given_to_a_video_is_a_value_or_one_line(flag, text, make_clip, tmp_path):
    clip = tmp_path / "c.mp4"
    if not clip.exists():
        make_clip("c.mp4", n=3)
    refused_or_planned("video", clip, "-o", tmp_path / "o.mp4", flag, text, seconds=20)


# ---- fuzzed: the studio's JSON --------------------------------------------------------------------------------------

JSON_NUMBER = st.one_of(st.integers(-(10 ** 500), 10 ** 500), st.floats(allow_nan=False), st.sampled_from(
    ["1e400", "-1e400", "1" + "0" * 4400, "[" * 50_000, "{\"a\":" * 5000]))


@pytest.fixture(scope="module")
def studio_client(tmp_path_factory):
    """The studio's app with its worker stopped: a job is checked and queued, never run."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from dreamvid.web.jobs import Studio
    from dreamvid.web.server import create_app

    studio = Studio(tmp_path_factory.mktemp("studio") / "data")
    client = TestClient(create_app(studio), base_url="http://127.0.0.1:7860")
    from pathlib import Path

    sample = Path(__file__).resolve().parent.parent / "samples" / "chelsea.jpg"
    token = client.post("/api/uploads", content=sample.read_bytes(), headers={"X-Filename": "c.jpg"}).json()["upload"]
    yield client, token
    studio.stop()


def _body(token: str, name: str, value) -> bytes:
    raw = value if isinstance(value, str) and value[:1] in "[{1-" else json.dumps(value)
    return ('{"upload": "%s", "mode": "zoom", "params": {"%s": %s}}' % (token, name, raw)).encode()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(["step", "iterations", "seed", "zoom", "rotate", "duration", "fps", "max_size", "crf",
                             "color_hold", "jitter"]), value=JSON_NUMBER)
def test_any_number_in_a_studio_request_is_201_or_400_never_500(studio_client, name, value):
    client, token = studio_client
    t = time.perf_counter()
    with within(20):
        r = client.post("/api/jobs", content=_body(token, name, value), headers={"content-type": "application/json"})
    assert r.status_code in (201, 400, 413), (r.status_code, r.text[:300])
    if r.status_code != 201:
        assert "\n" not in r.json()["error"] and len(r.json()["error"]) < 400
    assert time.perf_counter() - t < 20


@pytest.mark.parametrize("toml, key", [(f"[dream]\nstep = {BIG}\n", "step"), (f"[dream]\nseed = {BIG}\n", "seed"),
                                       ('[zoom]\nfps = "1e100000000"\n', "fps"), (f"[dream]\nseed = {HUGE}\n", "TOML")])
def test_studio_toml_with_a_huge_number_is_a_400_not_a_500(studio_client, toml, key):
    """The studio's TOML answered 500 (OverflowError), and an fps of 1e100000000 held the server for 40 s."""
    client, token = studio_client
    with within(10):
        r = client.post("/api/jobs", json={"upload": token, "mode": "zoom", "toml": toml})
    assert r.status_code == 400 and key in r.json()["error"], r.text
