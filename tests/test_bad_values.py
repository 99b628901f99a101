"""Values that pass a type check and used to crash later (issue 10), as classes, fuzzed:
any value of any setting, from a preset or a keyword, either works or is one DreamvidError
naming the key; on the command line, one `Error:` line and exit 2 before any work."""
from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dreamvid import presets
from dreamvid.errors import DreamvidError
from dreamvid.settings import SECTIONS, validate_all

from .clitools import error_line, one_line_error, run

ANY = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12) | st.sampled_from(["auto", "none", "1e15", "-1", "nan", "block4c_out", "0"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=5)
FIELDS = [(section, f.name) for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FIELDS), value=ANY)
def test_any_preset_value_works_or_is_one_error_naming_its_key(field, value):
    section, key = field
    try:
        s = presets.build({section: {key: value}}, where="preset 'fuzz'")
    except DreamvidError as e:
        assert "\n" not in e.message and key.rstrip("s") in e.message + (e.hint or ""), (key, value, e.message)
        return
    assert validate_all(s) == s  # what was accepted is valid everywhere it is used


@settings(max_examples=300, deadline=None)
@given(mode=st.sampled_from(sorted(presets.MODE_SECTIONS)), data=st.data())
def test_any_keyword_override_works_or_is_one_error(mode, data):
    names = [f.name for n in presets.MODE_SECTIONS[mode] for f in dataclasses.fields(SECTIONS[n])]
    key = data.draw(st.sampled_from(names))
    value = data.draw(ANY)
    try:
        presets.resolve_for(mode, overrides={key: value})
    except DreamvidError as e:
        assert "\n" not in e.message


@pytest.mark.parametrize("args, words", [
    (["image", "{photo}", "--seed", "-1"], "seed must be between 0 and"),
    (["image", "{photo}", "--seed", str(2**40)], "seed must be between 0 and"),
    (["image", "{photo}", "--max-loss", "nan"], "max_loss must be a finite number"),
    (["image", "{photo}", "--step", "inf"], "step must be a finite number"),
    (["image", "{photo}", "--octave-scale", "1"], "octave_scale must be > 1.0"),
    (["image", "{photo}", "--tile", "8"], "tile must be between 64"),
    (["image", "{photo}", "-o", "{tmp}/x.gif"], "a dreamed photo is a still picture"),
    (["zoom", "{photo}", "--duration", "1e15"], "duration must be at most"),
    (["zoom", "{photo}", "--fps", "1e-9"], "fps must be between 0.1 and"),
    (["zoom", "{photo}", "--frames", "1000000000"], "frames must be between 1 and"),
    (["timelapse", "{photo}", "--hold", "1e12"], "more than the limit of"),
    (["sweep", "{photo}", "--vary", "step=0.01000001,0.01000002"], "twice"),
    (["sweep", "{photo}", "--vary", "seed=1,1"], "twice"),
    (["image", "{photo}", "--lapnorm", "9"], "lapnorm must be between 0 and 8"),
    (["video", "{photo}", "--lapnorm", "-1"], "lapnorm must be between 0 and 8"),
    (["image", "{photo}", "--decorrelate", "1.5"], "decorrelate must be between 0 and 1"),
    (["zoom", "{photo}", "--decorrelate", "nan"], "decorrelate must be a finite number"),
    (["timelapse", "{photo}", "--transform", "-0.5"], "transform must be between 0 and 3"),
    (["sweep", "{photo}", "--vary", "transform=1,4"], "transform must be between 0 and 3"),
])
def test_values_that_pass_the_type_check_are_refused_before_any_work(args, words, photo, tmp_path, monkeypatch):
    def no_model(*a, **k):
        raise AssertionError("a network was loaded before the value was refused")

    monkeypatch.setattr("dreamvid.dream.octaves._dreamer", no_model)
    argv = [a.replace("{photo}", str(photo)).replace("{tmp}", str(tmp_path)) for a in args]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / ("out.png" if argv[0] in ("image", "sweep") else "out.mp4"))]
    one_line_error(run(*argv), 2, words)


@pytest.mark.parametrize("toml, words", [
    ("[dream]\nlayers = 5\n", "layers must be layer names"),
    ('[dream]\nlayers = ["block4c_out", 5]\n', "layers must name layers"),
    ("[dream]\nmodel = 5\n", "model must be a model name"),
    ("[dream]\nweights = 5\n", "weights must be a file path"),
    ('[video]\nkeep_audio = "no"\n', "keep_audio must be true or false"),
    ('[video]\nscene_cuts = 1\n', "scene_cuts must be true or false"),
    ("[zoom]\npan = [1, 2, 3]\n", "pan must be two numbers"),
    ('[zoom]\nzoom = "__import__(\'os\')"\n', "unknown function '__import__'"),
    ("[timelapse]\ncheckpoints = [3, 2]\n", "must increase"),
    ("[dream]\nlapnorm = 2.5\n", "lapnorm must be a whole number"),
    ('[dream]\ndecorrelate = "full"\n', "decorrelate must be a finite number"),
    ("[dream]\ntransform = true\n", "transform must be a finite number"),
])
def test_preset_values_of_the_wrong_kind_name_the_preset_and_the_key(toml, words, tmp_path, photo):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    line = error_line(run("image", photo, "-o", tmp_path / "x.png", "--preset", path), 2, words)
    assert "bad.toml" in line


def test_a_flag_is_never_blamed_on_a_preset_the_user_did_not_name(tmp_path):
    from .conftest import moving_frames, write_clip

    clip = write_clip(tmp_path / "c.mp4", moving_frames(3))
    line = error_line(run("video", clip, "-o", tmp_path / "o.mp4", "--crf", "99"), 2, "crf must be between 0")
    assert "preset" not in line


def test_infinite_and_nan_never_reach_the_work():
    for value in (math.inf, -math.inf, math.nan):
        for key in ("step", "octave_scale", "max_loss"):
            with pytest.raises(DreamvidError):
                presets.resolve_for("image", overrides={key: value})


def test_a_batch_never_writes_over_one_of_its_own_photos(tmp_path, photo, monkeypatch):
    """`image a.png a.dream.png`: a.png's result would replace the second photo before its turn."""
    import shutil

    def no_model(*a, **k):
        raise AssertionError("a network was loaded before the clash was refused")

    monkeypatch.setattr("dreamvid.dream.octaves._dreamer", no_model)
    a = shutil.copy(photo, tmp_path / "a.png")
    b = shutil.copy(photo, tmp_path / "a.dream.png")
    before = (tmp_path / "a.dream.png").read_bytes()
    one_line_error(run("image", a, b), 2, "which is also a photo of this batch")
    assert (tmp_path / "a.dream.png").read_bytes() == before


def test_coherence_refuses_no_flow_with_a_way_out(tmp_path):
    from .conftest import moving_frames, write_clip

    clip = write_clip(tmp_path / "c.mp4", moving_frames(3))
    one_line_error(run("coherence", clip, clip, "--flow", "none"), 2, "cannot measure", "--flow dis")


@pytest.mark.parametrize("value", [[None, None], [[1], 2], [{"x": 1}, 0], [True, 1]])
def test_a_pair_of_something_else_than_numbers_names_its_key(value):
    """Found by the fuzz above: `pan = [None, None]` in a preset said only that float() failed."""
    with pytest.raises(DreamvidError) as e:
        presets.build({"zoom": {"pan": value}}, where="preset 'p'")
    assert e.value.message.startswith("preset 'p': pan must be two numbers"), e.value.message
