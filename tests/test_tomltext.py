"""Nesting and encodings (issue 25, class 5): dreamvid/tomltext.py bounds how deep a user's TOML
nests before it is parsed, and userfiles reads it as UTF-8 naming what else it is. A keyframes
file or preset nested 5000-10000 deep was a RecursionError traceback; a keyframes file in
Latin-1 or UTF-16 a UnicodeDecodeError traceback. Then the class is fuzzed over presets,
keyframes and the studio's preset text."""
from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dreamvid import tomltext
from dreamvid.errors import PresetError, SettingsError

from .clitools import refused_or_planned, within

KF = "[[keyframe]]\ntime = {t}\nzoom = 1.1\n"


@pytest.mark.parametrize("text", [
    "x = " + "[" * 10_000 + "]" * 10_000,
    "x = " + "{a=" * 6000 + "1" + "}" * 6000,
    "x." + ".".join(["a"] * 10_000) + " = 1",
    "[" + ".".join(["a"] * 10_000) + "]\nv = 1",
    "x = {" + ".".join(["a"] * 10_000) + " = 1}",
    "x = " + "[{a.b.c.d.e = " * 4 + "1" + "}]" * 4,
])
def test_deep_nesting_is_refused_before_parsing_at_once(text):
    t = time.perf_counter()
    with pytest.raises(SettingsError, match="more than 16 levels deep"):
        tomltext.loads(text, "preset x.toml")
    assert time.perf_counter() - t < 0.5


@pytest.mark.parametrize("text", [
    'x = "' + "[" * 10_000 + '"',  # brackets in a string are text
    "# " + "[{" * 10_000 + "\nx = 1",  # and in a comment
    "x = '''\n" + "[" * 10_000 + "\n'''",
    'x = """\\"' + "[" * 50 + '"""',  # an escaped quote inside a multi-line string
    "t = 1979-05-27T07:32:00.999\n[a.b.c]\nx = [[1, 2], [3]]\ny = { a.b = 1.5 }",
])
def test_what_only_looks_deep_parses(text):
    assert isinstance(tomltext.loads(text, "preset"), dict)


def test_a_number_thousands_of_digits_long_is_a_parse_error():
    with pytest.raises(SettingsError, match="thousands of digits"):
        tomltext.loads("x = " + "1" * 5000, "preset")


def test_the_bundled_presets_and_the_readme_keyframes_parse():
    from dreamvid import presets

    for name in presets.available():
        presets.read(name)


# ---- the cases --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, words", [
    ("[[keyframe]]\ntime = 0\nzoom = " + "[" * 5000 + "]" * 5000, "levels deep"),
    ("[[keyframe]]\ntime = 0\nlayers = " + "{a=" * 10_000 + "1" + "}" * 10_000, "levels deep"),
    ("[[keyframe]]\ntime = 0\nlayers." + ".".join(["a"] * 10_000) + " = 1", "levels deep"),
])
def test_a_keyframes_file_nested_thousands_deep_is_one_line(body, words, photo, tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text(body)
    line = refused_or_planned("zoom", photo, "-o", tmp_path / "z.mp4", "--keyframes", path, seconds=10)
    assert words in line and "deep.toml" in line


@pytest.mark.parametrize("encoding, words", [("latin-1", "not UTF-8 text (byte 0xe9 on line 1"),
                                             ("utf-16", "UTF-16"), ("utf-16-be", "not UTF-8")])
@pytest.mark.parametrize("flag", ["--keyframes", "--preset"])
def test_a_file_in_another_encoding_is_one_line_naming_it(encoding, words, flag, photo, tmp_path):
    path = tmp_path / "enc.toml"
    body = "# caf\u00e9\n" + (KF.format(t=0) + KF.format(t=2) if flag == "--keyframes" else "[dream]\nstep = 0.02\n")
    path.write_bytes(body.encode(encoding))
    line = refused_or_planned("zoom", photo, "-o", tmp_path / "z.mp4", flag, path, seconds=10)
    assert words in line and "enc.toml" in line and "UTF-8" in line


def test_a_utf8_file_with_a_byte_order_mark_is_read(photo, tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + (KF.format(t=0) + KF.format(t=1)).encode())
    assert refused_or_planned("zoom", photo, "-o", tmp_path / "z.mp4", "--keyframes", path) is None


def test_a_preset_nested_thousands_deep_is_a_preset_error(tmp_path):
    from dreamvid import presets

    path = tmp_path / "deep.toml"
    path.write_text("[dream]\nlayers = " + "[" * 10_000 + "]" * 10_000)
    with pytest.raises(PresetError, match="deep.toml nests"):
        presets.read(str(path))


# ---- fuzzed: presets, keyframes and the studio's preset text --------------------------------------------------------

def _nested(depth: int, kind: str) -> str:
    return {"array": "[" * depth + "]" * depth, "table": "{a=" * depth + "1" + "}" * depth,
            "dotted": "{" + ".".join(["a"] * depth) + " = 1}"}[kind]


TOML_TEXT = st.one_of(
    st.tuples(st.integers(1, 12_000), st.sampled_from(["array", "table", "dotted"])).map(lambda p: _nested(*p)),
    st.integers(1, 6000).map(lambda n: "9" * n),
    st.text(max_size=60).map(lambda s: '"' + s.replace("\\", "").replace('"', "") + '"'),
    st.sampled_from(["1e400", "-1e400", "nan", "inf", "1979-05-27", "[1, [2, [3]]]", '"1e100000000"', "true"]),
)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "utf-32", "cp1252"])


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=st.sampled_from(["step", "layers", "fps", "zoom", "iterations", "classes", "vary"]), value=TOML_TEXT,
       encoding=ENCODINGS, accent=st.booleans())
def test_any_preset_text_is_a_value_or_one_line(key, value, encoding, accent, photo, tmp_path):
    section = {"fps": "zoom", "zoom": "zoom", "vary": "sweep"}.get(key, "dream")
    text = ("# r\u00e9glages\n" if accent else "") + f"[{section}]\n{key} = {value}\n"
    path = tmp_path / "p.toml"
    try:
        path.write_bytes(text.encode(encoding))
    except UnicodeEncodeError:
        return
    t = time.perf_counter()
    refused_or_planned("zoom", photo, "-o", tmp_path / "z.mp4", "--preset", path, "--frames", "2", seconds=15)
    assert time.perf_counter() - t < 15


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=st.sampled_from(["zoom", "pan", "layers", "step", "time", "easing"]), value=TOML_TEXT, encoding=ENCODINGS)
def test_any_keyframes_file_is_a_plan_or_one_line(key, value, encoding, photo, tmp_path):
    first = f"[[keyframe]]\ntime = 0\n{key} = {value}\n" if key != "time" else f"[[keyframe]]\ntime = {value}\n"
    path = tmp_path / "k.toml"
    try:
        path.write_bytes((first + KF.format(t=100)).encode(encoding))
    except UnicodeEncodeError:
        return
    refused_or_planned("zoom", photo, "-o", tmp_path / "z.mp4", "--keyframes", path, "--frames", "2", seconds=15)


@pytest.fixture(scope="module")
def studio_client(tmp_path_factory):
    pytest.importorskip("fastapi")
    from pathlib import Path

    from fastapi.testclient import TestClient

    from dreamvid.web.jobs import Studio
    from dreamvid.web.server import create_app

    studio = Studio(tmp_path_factory.mktemp("studio") / "data")  # its worker never starts: jobs are only checked
    client = TestClient(create_app(studio), base_url="http://127.0.0.1:7860")
    sample = Path(__file__).resolve().parent.parent / "samples" / "chelsea.jpg"
    token = client.post("/api/uploads", content=sample.read_bytes(), headers={"X-Filename": "c.jpg"}).json()["upload"]
    yield client, token
    studio.stop()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=st.sampled_from(["step", "layers", "fps", "zoom", "iterations", "seed"]), value=TOML_TEXT)
def test_any_preset_text_sent_to_the_studio_is_201_or_400_never_500(studio_client, key, value):
    client, token = studio_client
    section = {"fps": "zoom", "zoom": "zoom"}.get(key, "dream")
    with within(20):
        r = client.post("/api/jobs", json={"upload": token, "mode": "zoom", "toml": f"[{section}]\n{key} = {value}\n"})
    assert r.status_code in (201, 400), (r.status_code, r.text[:300])
    if r.status_code == 400:
        assert "\n" not in r.json()["error"] and len(r.json()["error"]) < 600
