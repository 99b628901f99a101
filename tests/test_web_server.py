"""The studio through a real server: uvicorn on a free loopback port, spoken to over HTTP, and
for the crash case `dreamvid serve` itself in a process of its own, killed with SIGKILL.

Each case here once failed a person: a sweep from the form, a double submit that made two
jobs, a Cancel lost when the server died a moment later, and request bodies that got a 500
(inf, nan or 1e400 in a whole-number field, a TOML nested 30,000 deep). A fuzz of the JSON
endpoints shows no body gets a 500. Every wait is bounded in time.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .webtools import SAMPLE, TINY, WAIT, Studio, wait

httpx = pytest.importorskip("httpx")


@pytest.fixture
def served(tmp_path, tiny):
    """(an HTTP client of a real studio server on the tiny network, the studio)."""
    from dreamvid.web.server import running

    studio = Studio(tmp_path / "data", {"tiny": tiny})
    with running(studio) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http, studio


def photo(http, data: bytes | None = None, name: str = "chelsea.jpg") -> str:
    r = http.post("/api/uploads", content=data or SAMPLE.read_bytes(), headers={"X-Filename": name})
    assert r.status_code == 200, r.text
    return r.json()["upload"]


def test_a_sweep_from_the_form_is_made(served):
    http, studio = served
    r = http.post("/api/jobs", json={"upload": photo(http), "mode": "sweep", "model": "tiny",
                                     "params": {"vary": "step=0.01,0.03\nnum_octave=1,2", "max_size": "64",
                                                "iterations": "1"}})
    assert r.status_code == 201, r.text
    job = wait(http, r.json()["id"])
    assert job["status"] == "done", job
    assert job["result"]["items"] == 4 and "--vary step=0.01,0.03 --vary num_octave=1,2" in job["command"]
    grid = http.get(f"/api/jobs/{job['id']}/files/output")
    assert grid.status_code == 200 and grid.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_two_submits_with_one_key_make_one_job(served):
    http, studio = served
    studio.stop()  # no worker: both requests meet a queued job
    body = {"upload": photo(http), "mode": "image", **TINY}
    answers, start = [], threading.Barrier(4)

    def send(key):
        start.wait()
        answers.append(http.post("/api/jobs", json=body, headers={"Idempotency-Key": key}))

    threads = [threading.Thread(target=send, args=(key,)) for key in ("click-1", "click-1", "click-1", "click-2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert [a.status_code for a in answers] == [201] * 4
    ids = [a.json()["id"] for a in answers]
    assert len(set(ids)) == 2  # the three "click-1" requests share one job; "click-2" is a second Dream
    assert len(http.get("/api/jobs").json()["jobs"]) == 2


@pytest.mark.parametrize("params", [
    {"iterations": "inf"}, {"iterations": "nan"}, {"iterations": "1e400"}, {"iterations": "-inf"},
    {"num_octave": "9" * 5000}, {"seed": "1e400"}, {"step": "1e999999999"}, {"jitter": 1.5},
])
def test_absurd_numbers_are_a_400_naming_the_field(served, params):
    http, _ = served
    body = json.dumps({"upload": photo(http), "mode": "image", "params": params})
    r = http.post("/api/jobs", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == next(iter(params)) and len(r.json()["error"]) < 160


@pytest.mark.parametrize("raw", [
    b'{"mode": "image", "params": {"iterations": Infinity}}',
    b'{"mode": "image", "params": {"iterations": NaN}}',
    b'{"mode": "image", "params": {"iterations": 1e400}}',
    b'{"mode": "image", "params": {"iterations": ' + b"9" * 5000 + b"}}",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"mode": "image", "toml": "a = ' + b"[" * 30_000 + b'"}',
    b'{"mode": "image", "toml": "' + b"[a." * 10_000 + b'"}',
    b'{"mode": "image", "toml": "x = ' + b"{a=" * 3_000 + b'"}',
    b'{"mode": "image", "toml": "[dream]\\nstep = ' + b"9" * 400 + b'"}',
    b'\xff\xfe not json',
])
def test_bodies_that_used_to_crash_the_server_are_a_400(served, raw):
    http, _ = served
    token = photo(http).encode()
    raw = raw.replace(b'{"mode"', b'{"upload": "' + token + b'", "mode"', 1)
    r = http.post("/api/jobs", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 413), (r.status_code, r.text[:300])
    assert r.json()["error"]


def test_a_json_body_past_the_limit_is_refused_unread(served):
    http, _ = served
    r = http.post("/api/jobs", content=b"{" + b" " * 300_000 + b"}", headers={"Content-Type": "application/json"})
    assert r.status_code == 413


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.sampled_from(["image", "video", "sweep", "tiny", "coral", "step=0.01,0.03", "1e400", "inf", "../x", ""]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["upload", "mode", "preset", "toml", "model", "layers", "params", "format", "step",
                         "iterations", "vary", "max_size", "classes", "start", "x"]) | st.text(max_size=8),
        inner, max_size=5), max_leaves=12)
PARAMS = st.dictionaries(st.sampled_from(["step", "iterations", "num_octave", "max_size", "vary", "checkpoints",
                                          "classes", "seed", "smooth", "zoom", "start", "scene_cuts", "mask", "fps"]),
                         JSON, max_size=4)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(body=JSON | st.fixed_dictionaries({"mode": st.sampled_from(["image", "video", "zoom", "timelapse", "sweep"]),
                                          "params": PARAMS}, optional={"toml": JSON, "layers": JSON, "model": JSON}),
       query=st.text(max_size=30), since=st.one_of(st.integers(), st.text(max_size=10)))
def test_no_json_body_or_query_gets_a_500(served_once, body, query, since):
    http, token = served_once
    if isinstance(body, dict) and "mode" in body:
        body = {"upload": token, **body}
    r = http.post("/api/jobs", content=json.dumps(body, allow_nan=True), headers={"Content-Type": "application/json"})
    assert r.status_code < 500, (body, r.text[:300])
    assert r.status_code in (201, 400, 404, 413, 429), (body, r.status_code)
    for path, params in (("/api/defaults", {"mode": query, "preset": query}), ("/api/jobs", {"since": since}),
                         (f"/api/models/{quote(query, safe='') or 'x'}/layers", {})):
        r = http.get(path, params=params)
        assert r.status_code < 500, (path, params, r.text[:300])


@pytest.fixture(scope="module")
def served_once(tmp_path_factory):
    """One real studio server for the fuzz (no worker: accepted jobs just wait), and an upload."""
    from dreamvid.web.server import running

    studio = Studio(tmp_path_factory.mktemp("fuzz") / "data", max_queued=10_000)
    with running(studio) as url, httpx.Client(base_url=url, timeout=30) as http:
        studio.stop()
        yield http, photo(http)


# ---- a Cancel, then the server dies -------------------------------------------------------------------

def start_server(data: Path, tiny: str) -> tuple[subprocess.Popen, str]:
    """`dreamvid serve` on a free port in a process of its own; (the process, its URL)."""
    proc = subprocess.Popen([sys.executable, "-m", "dreamvid", "serve", "--data", str(data), "--port", "0",
                             "--model", f"tiny={tiny}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, seen = time.monotonic() + WAIT, []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        found = re.search(r"Open (http://127\.0\.0\.1:\d+/)", line)
        if found:
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep its pipe drained
            return proc, found.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("dreamvid serve did not start: " + "".join(seen))


def test_a_cancel_just_before_the_server_dies_is_kept(tmp_path, tiny, make_clip):
    import cv2
    import numpy as np

    big = tmp_path / "big.png"  # large enough that one step of the tiny network takes a while
    cv2.imwrite(str(big), cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (1200, 1600, 3), np.uint8),
                                           (9, 9), 0))
    proc, url = start_server(tmp_path / "data", tiny)
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            token = photo(http, big.read_bytes(), "big.png")
            r = http.post("/api/jobs", json={"upload": token, "mode": "image", "model": "tiny",
                                             "params": {"iterations": 5000, "num_octave": 1}})
            assert r.status_code == 201, r.text
            job = r.json()
            wait(http, job["id"], until=("running",))
            deadline = time.monotonic() + WAIT
            while http.get(f"/api/jobs/{job['id']}").json()["progress"].get("steps", 0) < 1:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert http.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
            os.kill(proc.pid, signal.SIGKILL)  # the server dies before the render reaches its next step
            cookies = dict(http.cookies)
    finally:
        proc.kill()
        proc.wait(WAIT)
    proc, url = start_server(tmp_path / "data", tiny)
    try:
        with httpx.Client(base_url=url, timeout=30, cookies=cookies) as http:
            time.sleep(1.0)  # a re-run would have started by now
            again = http.get(f"/api/jobs/{job['id']}").json()
            assert again["status"] == "cancelled" and again["runs"] == 1, again
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(WAIT)
