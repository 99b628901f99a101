"""Plans that grew without bound (issue 25, class 3): planning is linear in frames plus keyframes,
and every plan's size is checked before any work. A keyframes file's planning cost frames x
keyframes (10k keyframes took 104 s in --dry-run); the last keyframe's time was not held to the
24 h limit (1e9 was a numpy MemoryError); --vary with 20k values was refused after 14 s;
--workers 10000 on 2 CPUs started 200 Ray workers. Then the class is fuzzed."""
from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dreamvid.errors import SettingsError
from dreamvid.render.zoom import KEYFRAME_DREAM_KEYS, plan_zoom
from dreamvid.settings import Settings, ZoomSettings
from dreamvid.trajectory import MAX_KEYFRAMES, Keyframes, Span, parse_keyframes

from .clitools import refused_or_planned

LAYERS = (("block4c_out", 1.0),)


def keyframes_text(n: int, spacing: float = 0.05, zoom: str = "1.01") -> str:
    return "".join(f"[[keyframe]]\ntime = {i * spacing:.4f}\nzoom = {zoom}\n" for i in range(n))


def plan_seconds(text: str) -> float:
    t = time.perf_counter()
    plan_zoom((64, 48), Settings(zoom=ZoomSettings(fps="24")), keyframes=text, default_layers=LAYERS)
    return time.perf_counter() - t


def test_planning_is_linear_in_keyframes_with_expressions():
    """Ten times the keyframes (and frames) cost about ten times, not a hundred: measured side by
    side in one run (the smaller first, so a warm-up favours the larger)."""
    z = '"1.01+0.01*sin(t)"'
    small, large = plan_seconds(keyframes_text(200, zoom=z)), plan_seconds(keyframes_text(2000, zoom=z))
    assert large < 25 * small, (small, large)  # quadratic would be ~100x


def test_each_expression_is_evaluated_only_where_its_keyframes_use_it():
    kf = parse_keyframes(keyframes_text(5, spacing=1.0, zoom='"1+0.01*t"'), KEYFRAME_DREAM_KEYS)
    spans = kf.spans
    assert len(spans) == 5 and all(isinstance(s, Span) for s in spans)
    assert (spans[0].start, spans[0].end) == (float("-inf"), 1.0)  # held before the first keyframe
    assert (spans[2].start, spans[2].end) == (1.0, 3.0)
    assert (spans[4].start, spans[4].end) == (3.0, float("inf"))  # held after the last
    held = Keyframes.from_list([{"time": 0, "zoom": "1+0.01*t"}, {"time": 1, "rotate": 2}, {"time": 2}],
                               KEYFRAME_DREAM_KEYS)
    assert [(s.start, s.end) for s in held.spans] == [(float("-inf"), float("inf"))]  # one object, held throughout


def test_a_bound_path_gives_the_same_values_as_evaluating_everywhere():
    kf = parse_keyframes(keyframes_text(6, spacing=0.5, zoom='"1.02+0.01*sin(3*t)"'), KEYFRAME_DREAM_KEYS)
    bound = kf.bind(24.0, 3.0)
    for t in (0.0, 0.25, 0.5, 1.0, 1.7, 2.5, 2.9):
        direct = {k: v for k, v in kf.bind(24.0, 3.0).at(t).items()}
        assert bound.at(t) == direct


def test_the_last_keyframe_is_held_to_24_hours():
    with pytest.raises(SettingsError, match="past the 24 h"):
        parse_keyframes("[[keyframe]]\ntime = 0\n[[keyframe]]\ntime = 1e9\n", KEYFRAME_DREAM_KEYS)
    with pytest.raises(SettingsError, match="the zoom would have 1920000 frames"):  # before any allocation
        plan_zoom((64, 48), Settings(), keyframes="[[keyframe]]\ntime = 0\n[[keyframe]]\ntime = 80000\n",
                  default_layers=LAYERS)


def test_too_many_keyframes_are_counted_before_parsing():
    text = keyframes_text(MAX_KEYFRAMES + 1)
    t = time.perf_counter()
    with pytest.raises(SettingsError, match=f"{MAX_KEYFRAMES + 1} keyframes, more than"):
        parse_keyframes(text, KEYFRAME_DREAM_KEYS)
    assert time.perf_counter() - t < 0.5
    with pytest.raises(SettingsError, match="more than"):  # a list handed over in Python
        Keyframes.from_list([{"time": i} for i in range(MAX_KEYFRAMES + 1)], KEYFRAME_DREAM_KEYS)


def test_vary_with_20k_values_is_refused_at_once():
    from dreamvid.render.sweep import make_axis, parse_vary

    t = time.perf_counter()
    with pytest.raises(SettingsError, match="20000 values, more than the 64"):
        parse_vary("seed=" + ",".join(str(i) for i in range(20_000)))
    with pytest.raises(SettingsError, match="300 values"):
        parse_vary("channel=" + ",".join(["0-63"] * 300))  # counted before the ranges are expanded
    with pytest.raises(SettingsError, match="values, more than"):
        make_axis("step", [0.01] * 20_000)
    assert time.perf_counter() - t < 0.5


def test_the_duplicate_check_is_linear():
    from dreamvid.render.sweep import make_axis

    with pytest.raises(SettingsError, match="twice"):
        make_axis("seed", [str(i) for i in range(63)] + ["5"])


@pytest.mark.parametrize("asked, gpus, cpus, memory, want, words", [
    (10_000, 0, 2, 24e9, 2, "2 cores"),
    (10_000, 0, 64, 6e9, 4, "6.0 GB of memory"),
    (10_000, 4, 16, 64e9, 4, "4 GPUs"),
    (8, 0, 8, 0, 8, None),  # memory unknown: cores alone
    (2, 0, 2, 24e9, 2, None),
    (3, 0, 2.5, 24e9, 2, "2.5 cores"),
])
def test_workers_are_capped_by_cores_and_memory_with_a_note(asked, gpus, cpus, memory, want, words):
    from dreamvid.render.cluster import cap_workers

    n, note = cap_workers(asked, gpus, cpus, memory)
    assert n == want
    if words is None:
        assert note is None
    else:
        assert words in note and note.startswith(f"--workers {asked}: {want} at a time") and "\n" not in note


# ---- fuzzed: plan sizes on the command line ----------------------------------------------------------------------

@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(n=st.one_of(st.integers(1, 150), st.integers(MAX_KEYFRAMES + 1, 40_000)),
       last=st.one_of(st.floats(0.01, 30), st.floats(3600, 1e300), st.integers(10 ** 20, 10 ** 400)),
       fps=st.sampled_from(["24", "1000", "0.1", "30000/1001"]))
def test_any_keyframes_plan_is_planned_or_refused_in_bounded_time(n, last, fps, photo, tmp_path):
    step = (lambda i: last * i // (n - 1)) if isinstance(last, int) else (lambda i: last * i / (n - 1))
    times = [step(i) for i in range(n)] if n > 1 else [0]
    text = "".join(f"[[keyframe]]\ntime = {t!r}\nzoom = 1.01\n" for t in times)
    path = tmp_path / "k.toml"
    path.write_text(text)
    t0 = time.perf_counter()
    refused_or_planned("zoom", photo, "-o", tmp_path / "z.mp4", "--keyframes", path, "--fps", fps,
                       "--max-size", "64", seconds=30)
    assert time.perf_counter() - t0 < 30


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(flag=st.sampled_from(["--vary", "--checkpoints", "--frames", "--duration"]),
       n=st.one_of(st.integers(1, 70), st.integers(1000, 20_000), st.integers(10 ** 6, 10 ** 30)))
def test_any_plan_size_on_the_command_line_is_planned_or_refused_at_once(flag, n, photo, tmp_path):
    command = {"--vary": "sweep", "--checkpoints": "timelapse"}.get(flag, "zoom")
    value = {"--vary": "seed=" + ",".join(str(i) for i in range(min(n, 20_000))),
             "--checkpoints": ",".join(str(i) for i in range(1, min(n, 20_000) + 1))}.get(flag, str(n))
    out = tmp_path / ("s.png" if command == "sweep" else "o.mp4")
    t0 = time.perf_counter()
    refused_or_planned(command, photo, "-o", out, flag, value, "--max-size", "64", seconds=30)
    assert time.perf_counter() - t0 < 30
