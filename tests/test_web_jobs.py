"""The studio's jobs (dreamvid/web/jobs.py, fairqueue.py): clients take turns, each within its
limits; delete; the gallery as changes; a Cancel on disk at once; failures that say whether
Resume can help; the pictures beside a result; and no server path in anything sent."""
from __future__ import annotations

import json
import re
import time

from .webtools import LOCAL, SAMPLE, TINY, Studio, client, studio, submit, upload, wait  # noqa: F401,F811

from fastapi.testclient import TestClient  # noqa: E402  (webtools skips without the web extra)

from dreamvid.web.fairqueue import FairQueue  # noqa: E402
from dreamvid.web.server import create_app  # noqa: E402


def browser(studio) -> TestClient:
    """Another browser: its own client key."""
    return TestClient(create_app(studio), base_url=LOCAL)


# ---- turns and limits ------------------------------------------------------------------------------

def test_the_queue_serves_clients_in_turn():
    q = FairQueue()
    for owner, job in [("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1"), ("c", "c1"), ("b", "b2")]:
        q.put(owner, job)
    assert q.ahead("b1") == 1 and q.ahead("a3") == 5 and q.ahead("zz") is None
    q.remove("a2")
    assert [q.get() for _ in range(5)] == ["a1", "b1", "c1", "a3", "b2"]
    q.close()
    assert q.get() is None


def test_a_second_browsers_job_runs_after_one_job_of_the_first_not_all_of_them(studio):
    a, b = TestClient(create_app(studio), base_url=LOCAL), browser(studio)
    first = [submit(a)["id"] for _ in range(3)]
    other = submit(b)["id"]
    ran = []
    run = studio._run
    studio._run = lambda job: (ran.append(job.id), run(job))
    studio.start()
    for job_id, who in [*((i, a) for i in first), (other, b)]:
        assert wait(who, job_id)["status"] == "done"
    assert ran == [first[0], other, first[1], first[2]]


def test_one_browser_may_queue_only_so_many_jobs(tmp_path, tiny):
    studio = Studio(tmp_path / "data", {"tiny": tiny}, max_queued=2)
    a, b = TestClient(create_app(studio), base_url=LOCAL), browser(studio)
    submit(a), submit(a)
    token = upload(a).json()["upload"]
    r = a.post("/api/jobs", json={"upload": token, "mode": "image", **TINY})
    assert r.status_code == 429 and "2 jobs waiting or running" in r.json()["error"]
    submit(b)  # another browser is not held back
    a.post(f"/api/jobs/{a.get('/api/jobs').json()['jobs'][0]['id']}/cancel")
    assert a.post("/api/jobs", json={"upload": token, "mode": "image", **TINY}).status_code == 201


def test_a_browsers_oldest_uploads_make_room_for_a_new_one(tmp_path):
    studio = Studio(tmp_path / "data", max_upload_mb=0.1, client_uploads_mb=0.11)  # 110 kB for all of them
    a, b = TestClient(create_app(studio), base_url=LOCAL), browser(studio)
    photo = SAMPLE.read_bytes()  # 35 kB
    tokens = [upload(a, photo).json()["upload"] for _ in range(4)]
    theirs = upload(b, photo).json()["upload"]
    kept = [t for t in tokens if t in studio.uploads]
    assert kept == tokens[1:]  # 4 x 35 kB > 110 kB: the first went, the newest three stay
    assert not (studio.uploads_dir / tokens[0]).exists() and theirs in studio.uploads
    r = a.post("/api/jobs", json={"upload": tokens[0], "mode": "image"})
    assert r.status_code == 404 and r.json()["field"] == "upload"


# ---- delete, and the gallery as changes --------------------------------------------------------------

def test_delete_removes_a_job_and_its_files(client, studio):
    job = wait(client, submit(client)["id"])
    folder = studio.folder(job["id"])
    assert (folder / "output" / job["output"]).is_file()
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert not folder.exists() and client.get(f"/api/jobs/{job['id']}").status_code == 404
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 404


def test_deleting_a_running_job_stops_it_and_removes_it(client, studio):
    started = []
    report = studio._progress

    def slow(job, p):
        started.append(job.id)
        time.sleep(0.05)
        report(job, p)

    studio._progress = slow
    job = submit(client, params={"iterations": 200, "num_octave": 1, "max_size": 64})
    deadline = time.monotonic() + 30
    while not started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert client.get(f"/api/jobs/{job['id']}").status_code == 404  # gone for the page at once
    while studio.current is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not studio.folder(job["id"]).exists() and job["id"] not in studio.jobs


def test_the_gallery_comes_as_changes(client, studio):
    studio.stop()  # no worker: the jobs wait, nothing changes by itself
    ids = [submit(client)["id"] for _ in range(3)]
    everything = client.get("/api/jobs").json()
    assert [j["id"] for j in everything["jobs"]] == ids[::-1] and not everything["removed"]
    version = everything["version"]
    assert client.get(f"/api/jobs?since={version}").json() == {"version": version, "reset": False, "jobs": [],
                                                              "removed": []}
    client.post(f"/api/jobs/{ids[1]}/cancel")
    client.delete(f"/api/jobs/{ids[2]}")
    changes = client.get(f"/api/jobs?since={version}").json()
    assert [j["id"] for j in changes["jobs"]] == [ids[1]] and changes["removed"] == [ids[2]]
    assert changes["version"] > version
    assert browser(studio).get(f"/api/jobs?since={version}").json()["removed"] == []  # not another's deletions
    stale = client.get("/api/jobs?since=5").json()  # a version from before this server started
    assert stale["reset"] and len(stale["jobs"]) == 2


def test_a_poll_of_a_hundred_jobs_is_small_when_nothing_changed(client, studio):
    studio.stop()
    token = upload(client).json()["upload"]
    studio.max_queued = 200
    for _ in range(100):
        assert client.post("/api/jobs", json={"upload": token, "mode": "image", **TINY}).status_code == 201
    whole = client.get("/api/jobs")
    quiet = client.get(f"/api/jobs?since={whole.json()['version']}")
    assert len(whole.json()["jobs"]) == 100 and len(whole.content) > 100_000
    assert len(quiet.content) < 100  # what the page fetches every few seconds


# ---- a Cancel, a failure, a resume -------------------------------------------------------------------

def test_a_cancel_of_a_running_job_is_on_disk_before_the_render_stops(client, studio, tiny):
    studio.stop()
    job = submit(client)
    record = studio.jobs[job["id"]]
    record.status = "running"  # as the worker has it mid-render (it stops at its next step)
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    assert json.loads((studio.folder(job["id"]) / "job.json").read_text())["cancel_requested"] is True
    record.status = "running"
    studio._save(record)  # the server dies here, before the worker marks it cancelled
    again = Studio(studio.data, {"tiny": tiny})
    assert again.jobs[job["id"]].status == "cancelled"


def test_a_job_the_library_refuses_at_run_time_fails_without_a_resume_that_cannot_work(client, studio):
    job = submit(client, layers={"no_such_layer": 1.0})
    job = wait(client, job["id"])
    assert job["status"] == "failed" and "no_such_layer" in job["error"] and job["resumable"] is False
    assert job["progress"]["info"] == "" and "loading the model" not in json.dumps(job)
    assert client.post(f"/api/jobs/{job['id']}/resume").json()["status"] == "failed"


def test_max_size_too_small_for_the_photo_is_refused_before_the_job_is_made(client, studio):
    token = upload(client).json()["upload"]
    r = client.post("/api/jobs", json={"upload": token, "mode": "image", "params": {"max_size": 32}})
    assert r.status_code == 400 and r.json()["field"] == "max_size"
    assert r.json()["error"].startswith("max_size 32 makes this photo 32x21 px") and "48" in r.json()["hint"]
    assert list(studio.jobs_dir.iterdir()) == []
    assert client.post("/api/jobs", json={"upload": token, "mode": "image", "params": {"max_size": 48}}).status_code == 201


# ---- pictures beside a result, reuse ------------------------------------------------------------------

def test_a_still_has_its_before_picture_and_a_clip_its_poster(client, studio, make_clip):
    import cv2
    import numpy as np

    job = wait(client, submit(client)["id"])
    before = client.get(f"/api/jobs/{job['id']}/files/before")
    assert before.status_code == 200 and before.content[:3] == b"\xff\xd8\xff"
    clip, frames = make_clip("clip.mp4", n=4, width=64, height=48)
    token = upload(client, clip, "clip.mp4").json()
    poster = client.get(f"/api/uploads/{token['upload']}/poster")  # the drop zone's preview of a clip
    first = cv2.imdecode(np.frombuffer(poster.content, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    assert first.shape == (48, 64, 3) and np.abs(first.astype(int) - frames[0]).mean() < 8
    r = client.post("/api/jobs", json={"upload": token["upload"], "mode": "video", "model": "tiny",
                                       "layers": {"conv2": 1}, "params": {"iterations": 1, "num_octave": 1,
                                                                          "frame_iterations": 1}})
    done = wait(client, r.json()["id"])
    assert done["status"] == "done" and done["clip"]
    assert client.get(f"/api/jobs/{done['id']}/files/poster").content[:3] == b"\xff\xd8\xff"
    assert client.get(f"/api/jobs/{done['id']}/files/before").status_code == 404  # a clip has a poster instead


def test_reuse_gives_the_jobs_input_back_as_a_new_upload(client, studio):
    job = wait(client, submit(client)["id"])
    again = client.post(f"/api/jobs/{job['id']}/reuse").json()
    assert again["name"] == "chelsea.jpg" and again["upload"] in studio.uploads
    assert studio.uploads[again["upload"]][1].path.read_bytes() == SAMPLE.read_bytes()
    assert client.post("/api/jobs", json={"upload": again["upload"], "mode": "image", **TINY}).status_code == 201


# ---- no server path in anything a browser receives -----------------------------------------------------

def test_no_server_path_reaches_the_browser(client, studio, tiny, tmp_path):
    seen = []

    def got(r):
        seen.append(r.text if "json" in r.headers.get("content-type", "") or "text" in r.headers.get(
            "content-type", "") else "")
        return r

    token = got(upload(client)).json()["upload"]
    got(upload(client, b"\x00\x00\x00\x18ftypmp42 damaged", "h.mp4"))  # ffmpeg's words name the file
    got(upload(client, b"not a picture", "x.png"))
    for body in ({"mode": "image", "toml": "[dream]\nstep = -1\n"},  # the preset file's path in the library's words
                 {"mode": "image", "toml": f'[dream]\nmodel = "{Path_name(tiny)}"\nstep = 2\n'},
                 {"mode": "image", "params": {"max_size": 32}}, {"mode": "image", "layers": {"nope": 1}, **TINY},
                 {"mode": "image", **TINY}):
        r = got(client.post("/api/jobs", json={"upload": token, **body}))
        if r.status_code == 201:
            got(client.get(f"/api/jobs/{wait(client, r.json()['id'])['id']}"))
    for path in ("/api/options", "/api/jobs", "/api/models/tiny/layers", "/api/defaults?mode=zoom&preset=coral",
                 "/", "/static/studio.js"):
        got(client.get(path))
    text = "\n".join(seen)
    assert "internal error" not in text and len(seen) > 12
    for secret in (str(studio.data), str(tmp_path), str(Path_parent(tiny))):
        assert secret not in text
    assert not re.findall(r"(?<![\w.:/~-])(?:/[\w.~-]+){2,}", text.replace("/api/", "").replace("/static/", "")), \
        re.findall(r"(?<![\w.:/~-])(?:/[\w.~-]+){2,}", text)[:5]


def Path_name(path: str) -> str:  # noqa: N802 - reads as Path(path).name in the test
    from pathlib import Path

    return Path(path).name


def Path_parent(path: str):  # noqa: N802
    from pathlib import Path

    return Path(path).parent
