"""The web studio (dreamvid/web): API mechanics with the tiny network, one end-to-end still with
the bundled model, cancel/resume/restart, the queue, and each security measure; then a real
browser (Debian's Chromium, headless, through its chromedriver) dreaming a still on the page.

The API is driven through FastAPI's test client (its Host is a loopback address, as a browser
on this machine sends); a real uvicorn on a free loopback port serves the streaming-upload and
browser tests. Every wait is bounded in time.
"""
from __future__ import annotations

import http.client
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed: pip install 'dreamvid[web]'")
from fastapi.testclient import TestClient  # noqa: E402

from dreamvid.web import uploads  # noqa: E402
from dreamvid.web.jobs import Studio  # noqa: E402
from dreamvid.web.server import Guard, create_app, running  # noqa: E402

from .webtools import LOCAL, SAMPLE, WAIT, client, png_header, studio, submit, upload, wait  # noqa: E402,F401,F811


# ---- what the page offers -------------------------------------------------------------------

def test_options_list_modes_presets_models_and_parameters_with_ranges(client):
    o = client.get("/api/options").json()
    assert [m["name"] for m in o["modes"]] == ["image", "video", "zoom", "timelapse", "sweep"]
    assert {"classic", "coral"} <= {p["name"] for p in o["presets"]}
    assert {"efficientnet_lite0", "tiny"} <= {m["name"] for m in o["models"]}
    image = {p["name"]: p for p in o["modes"][0]["params"]}
    step = image["step"]
    assert step["flag"] == "--step" and (step["lo"], step["lo_open"], step["hi"]) == (0, True, 1)
    assert step["essential"] and step["label"] == "Strength" and "0.05 strong" in step["help"]
    assert (image["num_octave"]["lo"], image["num_octave"]["hi"]) == (1, 20)
    assert not {"weights", "guide", "guide_weight", "mask", "model", "layers"} & set(image)  # files, or widgets
    video = {p["name"]: p for p in o["modes"][1]["params"]}
    assert video["mask"]["choices"] == ["motion", "still"] and video["start"]["section"] == "render"
    defaults = client.get("/api/defaults", params={"mode": "image", "preset": "coral"}).json()
    assert defaults["step"] == 0.02 and defaults["model"] == "efficientnet_lite0"
    # the page's "Default" card is the preset each mode starts from (presets.MODE_PRESET)
    assert {m["name"]: m["preset"] for m in o["modes"]} == {"image": "deepdream", "video": "video", "zoom": "zoom",
                                                           "timelapse": "deepdream", "sweep": "deepdream"}


def test_every_look_the_page_offers_has_its_picture(client):
    from bench.studio_presets import bundled_presets

    cards = {p["name"]: p for p in client.get("/api/options").json()["presets"]}
    for name in bundled_presets():
        assert cards[name]["picture"] == f"/static/presets/{name}.jpg", f"{name}: run `make studio-presets`"
        picture = client.get(cards[name]["picture"])
        assert picture.status_code == 200 and picture.content[:3] == b"\xff\xd8\xff" and len(picture.content) < 30_000
    assert cards["inception"]["picture"] is None  # its network downloads: its words only


def test_layers_are_listed_from_the_model(client):
    layers = client.get("/api/models/tiny/layers").json()
    assert [entry["name"] for entry in layers if entry["name"].startswith("conv")] == ["conv1", "conv2", "conv3"]
    assert [entry["name"] for entry in layers if entry["default"]] == ["conv2"]
    assert [entry["name"] for entry in layers if entry["short"]] == ["conv1", "conv2", "conv3"]  # not the input: the stem
    assert client.get("/api/models/nope/layers").status_code == 404


def test_the_short_list_of_layers_is_each_stage_s_last_shallow_to_deep():
    from dreamvid.web.options import short_layers

    names = ["stem_act", "block1a_out", "block2a_out", "block2b_out", "block3a_out", "block3b_out", "block4a_out",
             "block4b_out", "block4c_out", "block5a_out", "block5b_out", "block5c_out", "block6a_out", "block6d_out",
             "block7a_out", "top_act"]
    short = short_layers(names, {"block4c_out"})
    assert list(short) == ["block1a_out", "block2b_out", "block3b_out", "block4c_out", "block5c_out", "block6d_out",
                           "block7a_out", "top_act"]
    assert short["block2b_out"] == "lines and fine texture" and short["top_act"] == "whole objects, abstract"
    vgg = [f"block{b}_{k}" for b in range(1, 6) for k in ("conv1", "conv2", "pool")]
    assert list(short_layers(vgg, {"block4_conv2"})) == ["block2_conv2", "block3_conv2", "block4_conv2",
                                                          "block5_conv2"]


# ---- jobs ---------------------------------------------------------------------------------------

def test_a_still_is_dreamed_with_progress_preview_toml_and_the_equivalent_command(client, studio, tmp_path, tiny,
                                                                                    monkeypatch):
    from typer.testing import CliRunner

    from dreamvid import presets
    from dreamvid.cli import app
    from dreamvid.media import read_image

    seen = []
    report = studio._progress

    def progress(job, p):  # what a poll would see after each report (polling alone misses them on a busy CPU)
        report(job, p)
        seen.append(client.get(f"/api/jobs/{job.id}").json()["progress"])

    studio._progress = progress
    job = wait(client, submit(client, params={"iterations": 6, "num_octave": 2, "max_size": 96})["id"])  # 2 octaves
    assert job["status"] == "done", job
    assert job["progress"]["preview"] == 2  # one picture after each octave
    assert any(0 < p.get("fraction", 0) < 1 and p.get("total_steps") == 12 for p in seen), seen
    out = client.get(f"/api/jobs/{job['id']}/files/output")
    assert out.status_code == 200 and out.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/api/jobs/{job['id']}/files/preview").content[:3] == b"\xff\xd8\xff"
    download = client.get(f"/api/jobs/{job['id']}/files/output?download=1")
    assert download.headers["content-disposition"].startswith("attachment")

    folder = studio.folder(job["id"])
    record = json.loads((folder / "job.json").read_text())
    assert record["status"] == "done" and record["command"] == job["command"]
    resolved = presets.resolve(str(folder / "settings.toml"))  # the TOML is a usable preset
    assert (resolved.dream.iterations, resolved.dream.max_size) == (6, 96)

    words = shlex.split(job["command"])
    assert words[:3] == ["dreamvid", "image", "input/chelsea.jpg"] and str(tmp_path) not in job["command"]
    assert words[words.index("--model") + 1] == Path(tiny).name  # the server's own model, by its file name
    again = tmp_path / "again.png"
    words[words.index("-o") + 1] = str(again)
    words[words.index("--model") + 1] = tiny  # where this machine keeps that file
    monkeypatch.chdir(folder)  # the command is written for the job's folder
    result = CliRunner().invoke(app, ["-q", *words[1:]])
    assert result.exit_code == 0, result.output
    web = read_image(folder / "output" / job["output"])
    assert np.array_equal(read_image(again), web)  # the command is the same render

    token = upload(client).json()["upload"]  # the TOML, pasted back as a preset, makes the same picture
    r = client.post("/api/jobs", json={"upload": token, "mode": "image", "toml": job["settings_toml"]})
    assert r.status_code == 201, r.text
    reused = wait(client, r.json()["id"])
    assert np.array_equal(read_image(studio.folder(reused["id"]) / "output" / reused["output"]), web)


@pytest.mark.slow
def test_end_to_end_with_the_bundled_model(client):
    job = submit(client, model=None, params={"iterations": 1, "num_octave": 1, "max_size": 64})
    job = wait(client, job["id"])
    assert job["status"] == "done", job
    assert "efficientnet_lite0" in job["settings_toml"]
    assert client.get(f"/api/jobs/{job['id']}/files/output").status_code == 200


def test_a_clip_is_dreamed_in_video_mode(client, studio, make_clip):
    clip, frames = make_clip("clip.mp4", n=6, width=64, height=48)
    token = upload(client, clip, "clip.mp4").json()
    assert (token["kind"], token["frames"], token["width"]) == ("video", 6, 64)
    r = client.post("/api/jobs", json={"upload": token["upload"], "mode": "video", "model": "tiny",
                                       "layers": {"conv2": 1.0}, "params": {"iterations": 1, "num_octave": 1,
                                                                            "frame_iterations": 1, "blend": 0.5}})
    assert r.status_code == 201, r.text
    job = wait(client, r.json()["id"])
    assert job["status"] == "done", job
    assert job["result"]["items"] == 6 and job["output"] == "clip.dream.mp4"
    assert "--blend 0.5" in job["command"] and "--layer conv2:1" in job["command"]
    assert client.get(f"/api/jobs/{job['id']}/files/output").content[4:8] == b"ftyp"


def _stop_after(studio, items: int, how):
    """Make the studio's worker call how(job) once the first run of a job has finished `items` items."""
    report = studio._progress

    def progress(job, p):
        if p.stage == "item" and p.done == items and job.runs == 1:
            how(job)
        report(job, p)

    studio._progress = progress


ZOOM = {"layers": {"conv2": 1.0}, "params": {"iterations": 1, "num_octave": 1, "max_size": 64, "frame_iterations": 1,
                   "frame_num_octave": 1, "fps": "8", "duration": 1.0}}


def test_cancel_keeps_finished_frames_and_resume_continues(client, studio):
    owner = []
    _stop_after(studio, 3, lambda job: studio.cancel(owner[0], job.id))  # what POST .../cancel calls
    job = submit(client, "zoom", **ZOOM)
    owner.append(studio.jobs[job["id"]].owner)
    job = wait(client, job["id"])
    assert job["status"] == "cancelled", (job["error"], job["hint"])
    folder = studio.folder(job["id"])
    work = folder / "output" / (job["output"] + ".dreamvid-work")
    assert len(list(work.glob("frame_*.png"))) == 3 and not (folder / "output" / job["output"]).exists()
    assert client.get(f"/api/jobs/{job['id']}/files/preview").status_code == 200  # the newest finished frame

    assert client.post(f"/api/jobs/{job['id']}/resume").json()["status"] == "queued"
    job = wait(client, job["id"])
    assert job["status"] == "done", job
    assert job["result"]["resumed_from"] == 3 and job["result"]["rendered"] == 5 and job["result"]["items"] == 8


def test_a_restarted_server_resumes_unfinished_jobs(client, studio, tiny):
    def shut_down(job):  # what stop() does on Ctrl-C, from inside the worker (stop() would wait for it)
        studio.stopping = True
        job.cancel.set()

    _stop_after(studio, 2, shut_down)
    first = submit(client, "zoom", **ZOOM)
    deadline = time.monotonic() + WAIT
    while studio.jobs[first["id"]].finished is None and time.monotonic() < deadline:
        time.sleep(0.02)
    studio.stop()
    assert json.loads((studio.folder(first["id"]) / "job.json").read_text())["status"] == "queued"

    again = Studio(studio.data, {"tiny": tiny})  # a new server on the same --data
    again.start()
    try:
        client2 = TestClient(create_app(again), base_url=LOCAL, cookies=client.cookies)
        job = wait(client2, first["id"])
        assert job["status"] == "done", job
        assert job["runs"] == 2 and job["result"]["resumed_from"] == 2
    finally:
        again.stop()


def test_the_queue_runs_one_job_at_a_time_in_order(client, studio):
    running_now, most = [0], [0]
    run = studio._run

    def counted(job):
        running_now[0] += 1
        most[0] = max(most[0], running_now[0])
        try:
            run(job)
        finally:
            running_now[0] -= 1

    studio._run = counted
    ids = [submit(client)["id"] for _ in range(3)]
    jobs = [wait(client, i) for i in ids]
    assert [j["status"] for j in jobs] == ["done"] * 3 and most[0] == 1
    for a, b in zip(jobs, jobs[1:]):
        assert a["finished"] <= b["started"]


def test_a_queued_job_is_cancelled_at_once(client, studio):
    studio.stop()  # no worker: the job stays queued
    job = submit(client)
    assert client.post(f"/api/jobs/{job['id']}/cancel").json()["status"] == "cancelled"


def test_bad_settings_are_refused_in_the_librarys_words(client):
    token = upload(client).json()["upload"]
    r = client.post("/api/jobs", json={"upload": token, "mode": "image", "params": {"octave_scale": 0.8}})
    assert r.status_code == 400 and r.json()["error"] == "octave_scale must be > 1.0 (got 0.8)"
    r = client.post("/api/jobs", json={"upload": token, "mode": "image", "params": {"blend": 0.5}})
    assert r.status_code == 400 and "'blend' is not a parameter of image" in r.json()["error"]
    r = client.post("/api/jobs", json={"upload": token, "mode": "video"})
    assert r.status_code == 400 and "made from a clip" in r.json()["error"]


# ---- security: the guard ------------------------------------------------------------------------

def test_loopback_needs_no_token_but_a_loopback_host_header(client):
    assert client.get("/api/options").status_code == 200
    rebound = client.get("/api/options", headers={"Host": "evil.example:7860"})  # DNS rebinding
    assert rebound.status_code == 421


def test_any_other_address_requires_the_token(studio):
    guard = Guard("0.0.0.0")
    assert guard.token and not guard.loopback and Guard("::1").token is None
    app = create_app(studio, host="0.0.0.0", token="s3cret-token-for-the-test")
    lan = TestClient(app, base_url="http://192.168.1.20:7860", follow_redirects=False)
    assert lan.get("/api/options").status_code == 401
    assert lan.get("/").status_code == 401
    assert lan.get("/?token=wrong").status_code == 401
    assert lan.get("/api/options", headers={"Authorization": "Bearer wrong"}).status_code == 401
    first = lan.get("/?token=s3cret-token-for-the-test")  # the printed URL: kept in a cookie, then a clean URL
    assert first.status_code == 303 and first.headers["location"] == "/"
    assert "httponly" in first.headers["set-cookie"].lower() and "samesite=lax" in first.headers["set-cookie"].lower()
    assert lan.get("/api/options").status_code == 200
    api = TestClient(app, base_url="http://192.168.1.20:7860")  # a script, without the cookie
    assert api.get("/api/options", headers={"Authorization": "Bearer s3cret-token-for-the-test"}).status_code == 200


def test_a_browser_without_the_token_gets_a_page_that_asks_for_it(studio):
    app = create_app(studio, host="0.0.0.0", token="s3cret-token-for-the-test")
    lan = TestClient(app, base_url="http://192.168.1.20:7860", follow_redirects=False)
    html = {"Accept": "text/html,application/xhtml+xml"}
    page = lan.get("/", headers=html)
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    assert '<form method="get" action="/">' in page.text and 'name="token"' in page.text
    assert "not this studio's" not in page.text and "s3cret" not in page.text
    assert "not this studio's" in lan.get("/?token=wrong", headers=html).text
    assert lan.get("/static/studio.css").status_code == 200  # the page's own style, before the token
    assert lan.get("/api/options", headers=html).json()["error"].startswith("this studio needs its token")
    typed = lan.get("/?token=s3cret-token-for-the-test", headers=html)  # what the page's form sends
    assert typed.status_code == 303 and lan.get("/", headers=html).status_code == 200


def test_no_page_or_answer_of_the_studio_may_be_framed(client, studio):
    lan = TestClient(create_app(studio, host="0.0.0.0", token="s3cret-token-for-the-test"),
                     base_url="http://192.168.1.20:7860")
    for r in (client.get("/"), client.get("/api/options"), client.get("/api/jobs/nope"), client.get("/static/studio.js"),
              lan.get("/", headers={"Accept": "text/html"})):
        assert r.headers["x-frame-options"] == "DENY", r.url
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], r.url
        assert r.headers["referrer-policy"] == "no-referrer"  # the token in a URL never leaves in a Referer


def test_the_banner_says_who_can_open_the_studio(client, studio):
    assert client.get("/api/options").json()["access"]["mode"] == "loopback"
    lan = TestClient(create_app(studio, host="0.0.0.0", token="s3cret-token-for-the-test"),
                     base_url="http://192.168.1.20:7860", headers={"Authorization": "Bearer s3cret-token-for-the-test"})
    assert lan.get("/api/options").json()["access"]["mode"] == "token"
    script = (Path(__file__).resolve().parent.parent / "dreamvid" / "web" / "static" / "studio.js").read_text()
    assert "Everything stays on this machine" not in script and "Only this computer can open" in script


def test_requests_from_another_site_are_refused(client):
    token = upload(client).json()["upload"]
    r = client.post("/api/jobs", json={"upload": token, "mode": "image"}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403


# ---- security: uploads ----------------------------------------------------------------------------

def test_uploads_over_the_size_limit_are_refused(tmp_path, tiny):
    studio = Studio(tmp_path / "small", max_upload_mb=0.01)  # 10 kB
    client = TestClient(create_app(studio), base_url=LOCAL)
    r = upload(client)  # 24 kB, announced by Content-Length: refused before it is read
    assert r.status_code == 413 and "larger than 0.01 MB" in r.json()["error"]
    with running(studio) as url:  # streamed without a length: refused as it passes the limit
        host, port = url.split("/")[2].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        chunks = (b"\xff" * 4096 for _ in range(64))
        conn.request("POST", "/api/uploads", body=chunks, headers={"X-Filename": "big.jpg"}, encode_chunked=True)
        assert conn.getresponse().status == 413
        conn.close()
    assert list((studio.uploads_dir).iterdir()) == []  # nothing left behind


@pytest.mark.parametrize("name, data, status", [
    ("program.exe", b"MZ\x90\x00", 415),
    ("noextension", b"\xff\xd8\xff", 415),
    ("notes.png", b"just some text, not a picture", 415),
    ("clip.mp4", SAMPLE.read_bytes(), 415),  # a JPEG named as a clip
])
def test_uploads_of_the_wrong_type_are_refused(client, studio, name, data, status):
    r = upload(client, data, name)
    assert r.status_code == status, r.text
    assert list(studio.uploads_dir.iterdir()) == []


@pytest.mark.parametrize("width, height", [(50_000, 50_000), (10_000, 10_000), (8_000, 7_000)])
def test_decompression_bombs_are_refused_from_their_header(client, width, height):
    r = upload(client, png_header(width, height), "bomb.png")
    assert r.status_code == 413, r.text


def test_a_picture_within_the_limits_is_accepted_by_its_header(client):
    r = upload(client, png_header(640, 480), "ok.png")
    assert r.status_code == 200 and r.json()["width"] == 640


# ---- security: paths ---------------------------------------------------------------------------------

@pytest.mark.parametrize("given, stored", [
    ("../../etc/passwd.png", "passwd.png"),
    ("..\\..\\windows\\win.ini.jpg", "win.ini.jpg"),
    ("/absolute/path/photo.JPG", "photo.jpg"),
    ("%2e%2e%2f%2e%2e%2fescape.png", "escape.png"),  # URL-encoded ../ (the header is decoded once)
    ("%252e%252e%252fliteral.png", "2e_2e_2fliteral.png"),  # encoded twice: decoded once, a plain name
    (".hidden.png", "hidden.png"),
    ("ph\u00f6to <script>.png", "ph_to__script.png"),
])
def test_upload_names_are_sanitised(client, studio, given, stored):
    from urllib.parse import quote

    r = client.post("/api/uploads", content=png_header(64, 64), headers={"X-Filename": quote(given, safe="%")})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == stored
    path = studio.uploads[r.json()["upload"]][1].path
    assert path.parent.parent == studio.uploads_dir and path.name == stored


def test_inside_refuses_paths_that_leave_their_folder(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "out").symlink_to(tmp_path)
    assert uploads.inside(root, "a", "b.png") == (root / "a" / "b.png").resolve()
    for parts in (("..", "x"), ("/etc/passwd",), ("a", "..", "..", "x"), ("out", "x")):
        with pytest.raises(uploads.UploadRefused):
            uploads.inside(root, *parts)


@pytest.mark.parametrize("path", [
    "/api/jobs/..%2f..%2fetc%2fpasswd/files/output",
    "/api/jobs/%2e%2e/files/input",
    "/api/jobs/{id}/files/..%2fjob.json",
    "/api/jobs/{id}/files/%2fetc%2fpasswd",
    "/api/jobs/{id}/files/settings.toml",
    "/static/..%2f..%2fjobs.py",
    "/static/%2e%2e/server.py",
])
def test_paths_in_requests_reach_nothing_outside_the_job(client, studio, path):
    studio.stop()
    job = submit(client)
    r = client.get(path.replace("{id}", job["id"]))
    assert r.status_code == 404, (path, r.status_code, r.text[:200])


@pytest.mark.parametrize("request_", [
    {"model": "/etc/passwd.keras"},
    {"model": "../models/tiny0.keras"},
    {"preset": "../presets/classic.toml"},
    {"preset": "/etc/hosts.toml"},
    {"toml": '[dream]\nweights = "/etc/passwd"\n'},
    {"toml": '[sweep]\nsave_cells = "/tmp/out"\n'},
    {"toml": '[dream]\nmodel = "/etc/passwd.keras"\n'},
    {"params": {"weights": "/etc/passwd"}},
])
def test_a_request_cannot_name_a_file_on_the_server(client, request_):
    token = upload(client).json()["upload"]
    r = client.post("/api/jobs", json={"upload": token, "mode": "image", **request_})
    assert r.status_code == 400, r.text


def test_one_clients_jobs_and_files_are_invisible_to_another(client, studio):
    job = wait(client, submit(client)["id"])
    mine = upload(client).json()["upload"]
    other = TestClient(create_app(studio), base_url=LOCAL)  # another browser: its own client key
    assert other.get("/api/jobs").json()["jobs"] == []
    for path in (f"/api/jobs/{job['id']}", *(f"/api/jobs/{job['id']}/files/{which}" for which in studio_files())):
        assert other.get(path).status_code == 404
    for action in ("cancel", "resume", "reuse"):
        assert other.post(f"/api/jobs/{job['id']}/{action}").status_code == 404
    assert other.delete(f"/api/jobs/{job['id']}").status_code == 404
    assert other.get(f"/api/uploads/{mine}/poster").status_code == 404
    r = other.post("/api/jobs", json={"upload": mine, "mode": "image"})  # someone else's upload token
    assert r.status_code == 404
    assert client.get(f"/api/jobs/{job['id']}/files/output").status_code == 200


def studio_files():
    from dreamvid.web.jobs import FILES

    return FILES


# ---- the command ------------------------------------------------------------------------------------

def test_serve_without_the_web_extra_says_what_to_install(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from dreamvid.cli import app

    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if it were not installed
    result = CliRunner().invoke(app, ["serve", "--data", str(tmp_path / "d"), "--port", "0"])
    assert result.exit_code == 2
    assert 'pip install "dreamvid[web]"' in result.output and len(result.output.strip().splitlines()) == 1


def test_serve_on_another_address_prints_urls_with_a_token_kept_across_restarts(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from dreamvid.cli import app
    from dreamvid.web import server

    served = []
    monkeypatch.setattr(server, "bind", lambda host, port: server.socket.socket())
    monkeypatch.setattr(server, "machine_addresses", lambda family=None: ["192.168.1.20"])

    def serve(studio, sock, *, host, token, ready):  # nothing is bound: the guard is built as it would be
        guard = Guard(host, token)
        served.append(guard)
        sock.close()
        where = "127.0.0.1" if guard.loopback else "192.168.1.20"
        ready([f"http://{where}:7860/" + (f"?token={guard.token}" if guard.token else "")])

    monkeypatch.setattr(server, "serve", serve)
    runs = [CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--data", str(tmp_path / "d")]) for _ in range(2)]
    for result in runs:
        assert result.exit_code == 0, result.output
        assert f"Open http://192.168.1.20:7860/?token={served[0].token} from any device" in result.output
    assert served[0].token == served[1].token and not served[0].loopback  # the same URL after a restart
    assert (tmp_path / "d" / "token").stat().st_mode & 0o077 == 0  # readable by its owner only
    local = CliRunner().invoke(app, ["serve", "--data", str(tmp_path / "d")])
    assert "only this computer" in local.output and "token" not in local.output and served[2].token is None


def test_a_wildcard_address_prints_this_machines_addresses_or_a_note(monkeypatch):
    from dreamvid.cli.serve import opening
    from dreamvid.web import server

    sock = server.bind("0.0.0.0", 0)
    try:
        port = sock.getsockname()[1]
        monkeypatch.setattr(server, "machine_addresses", lambda family=None: ["10.1.2.3", "192.168.0.7"])
        lines = opening("0.0.0.0", server.urls(Guard("0.0.0.0", "t" * 20), sock))
        assert f"http://10.1.2.3:{port}/?token={'t' * 20}" in lines and "192.168.0.7" in lines
        assert "0.0.0.0" not in lines
        monkeypatch.setattr(server, "machine_addresses", lambda family=None: [])
        note = opening("0.0.0.0", server.urls(Guard("0.0.0.0", "t" * 20), sock))
        assert "0.0.0.0" not in note and "THIS-COMPUTERS-ADDRESS" in note and "ip addr" in note
    finally:
        sock.close()
    assert all(not a.startswith("127.") for a in server.machine_addresses())  # the real ones: never loopback


def test_classes_smooth_and_a_motion_mask_reach_the_render_and_its_command(tmp_path):
    from dreamvid.errors import SettingsError
    from dreamvid.web.options import form_values, parse_request

    spec = parse_request({"mode": "image", "params": {"classes": "golden retriever\npug:0.5", "smooth": 1}}, {})
    assert spec.overrides["classes"] == ((207, 1.0), (254, 0.5)) and spec.overrides["smooth"] == 1.0
    command = spec.command(Path("input/a.jpg"), Path("output/a.dream.png"), None)
    assert "--class 207:1 --class 254:0.5" in command and "--smooth 1.0" in command
    assert spec.settings(tmp_path).dream.classes == ((207, 1.0), (254, 0.5))
    assert parse_request({"mode": "video", "params": {"mask": "motion"}}, {}).overrides["mask"] == "motion"
    with pytest.raises(SettingsError, match="unknown ImageNet class"):
        parse_request({"mode": "image", "params": {"classes": "golden retreiver"}}, {})
    with pytest.raises(SettingsError):
        parse_request({"mode": "image", "params": {"mask": "motion"}}, {})  # video only
    assert form_values("image", "dogs")["classes"] == "254:1\n207:1"
