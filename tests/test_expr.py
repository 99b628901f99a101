"""Expressions of time (dreamvid/expr.py): what is allowed, what is refused, and how fast."""
from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dreamvid import expr
from dreamvid.errors import SettingsError


def test_numbers_names_operators_and_functions():
    e = expr.parse("1.02 + 0.01*sin(2*pi*t/4)", "zoom")
    assert e(t=1.0, f=24, fps=24, duration=10) == pytest.approx(1.03)
    assert expr.parse("clip(3*t, 0, 1) + max(f, 2) % 5 - -2**2", "x")(t=2.0, f=7, fps=1, duration=1) == \
        pytest.approx(1 + 2 - (-4) * 1 * 0 - 4 * -1 + 0)  # 1 + (7 % 5) + 4
    assert expr.parse("smoothstep(0, 2, t)", "x")(t=1.0, f=0, fps=1, duration=1) == pytest.approx(0.5)


@pytest.mark.parametrize("text, words", [
    ("__import__('os')", "unknown function '__import__' (column 1)"),
    ("__import__('os').system('echo hi')", "only the listed functions can be called (column 1)"),
    ("t.real", "attribute access is not allowed (column 1)"),
    ("().__class__", "attribute access is not allowed"),
    ("[1, 2][0]", "Subscript is not allowed"),
    ("[1, 2]", "List is not allowed"),
    ("(lambda: 1)()", "only the listed functions can be called"),
    ("open('x')", "unknown function 'open'"),
    ("speed * t", "unknown name 'speed' (column 1)"),
    ("1 +", "not a valid expression (column"),
    ("'text'", "is not a number"),
    ("t if t else 1", "IfExp is not allowed"),
    ("t < 1", "Compare is not allowed"),
    ("sin(t, 2)", "sin() takes 1 arguments, not 2"),
    ("max(t)", "max() takes 2 to 8 arguments, not 1"),
    ("round(t, ndigits=2)", "keyword arguments are not allowed"),
    ("x" * 600, "more than 500"),
])
def test_anything_else_is_refused_in_one_line_naming_the_expression(text, words):
    with pytest.raises(SettingsError) as e:
        expr.parse(text, "zoom")
    assert words in e.value.message and e.value.message.startswith("zoom")
    assert "\n" not in e.value.message


def test_non_finite_values_name_the_frame():
    e = expr.parse("1/(t-0.5)", "rotate")
    with pytest.raises(SettingsError, match=r"is inf at frame 12 \(t = 0.500 s\)"):
        e.at(np.arange(48) / 24, 24, duration=2)
    with pytest.raises(SettingsError, match="is inf at frame 0"):
        expr.parse("10**10**10", "zoom").at(np.arange(3) / 24, 24, duration=1)
    with pytest.raises(SettingsError, match="nan at frame 0"):
        expr.parse("log(-1 - t)", "zoom").at(np.arange(3) / 24, 24, duration=1)


def test_audio_names_say_where_they_come_from():
    with pytest.raises(SettingsError) as e:
        expr.parse("1 + onset", "zoom").at(np.arange(3) / 24, 24, duration=1)
    assert "onset" in e.value.message and "--audio" in e.value.hint


def test_every_frame_of_a_ten_minute_60_fps_schedule_in_well_under_a_second():
    times = np.arange(10 * 60 * 60) / 60
    e = expr.parse("1.02 + 0.01*sin(2*pi*t/4) + 0.005*max(0, cos(t*3))**2", "zoom")
    t0 = time.perf_counter()
    values = e.at(times, 60, duration=600)
    assert time.perf_counter() - t0 < 1.0 and values.shape == (36000,)
    assert values[240] == pytest.approx(e(t=4.0, f=240, fps=60, duration=600))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="tf0123456789.+-*/%() ,sincoxpmlaqrbdu_e", max_size=40))
def test_any_text_either_parses_or_is_one_settings_error(text):
    try:
        e = expr.parse(text, "zoom")
    except SettingsError as err:
        assert err.message.startswith("zoom") and "\n" not in err.message
        return
    try:
        e.at(np.arange(4) / 4.0, 4.0, duration=1.0)
    except SettingsError as err:
        assert "at frame" in err.message or "not available" in err.message
