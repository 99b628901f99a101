"""What the studio's tests share: a Studio on the tiny network, an in-process client, and
helpers to upload, submit and wait (every wait bounded in time)."""
from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed: pip install 'dreamvid[web]'")
from fastapi.testclient import TestClient  # noqa: E402

from dreamvid.web.jobs import Studio  # noqa: E402
from dreamvid.web.server import create_app  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "chelsea.jpg"
LOCAL = "http://127.0.0.1:7860"
TINY = {"model": "tiny", "params": {"iterations": 2, "num_octave": 2, "max_size": 64}}
WAIT = 60.0  # s; the longest any job here may take on a 2-core CPU


@pytest.fixture
def studio(tmp_path, tiny):
    s = Studio(tmp_path / "data", {"tiny": tiny})
    yield s
    s.stop()


@pytest.fixture
def client(studio):
    studio.start()
    return TestClient(create_app(studio), base_url=LOCAL)


def upload(client, data: bytes | Path = SAMPLE, name: str = "chelsea.jpg"):
    body = data.read_bytes() if isinstance(data, Path) else data
    return client.post("/api/uploads", content=body, headers={"X-Filename": name})


def submit(client, mode: str = "image", **request) -> dict:
    token = upload(client).json()["upload"]
    r = client.post("/api/jobs", json={"upload": token, "mode": mode, **TINY, **request})
    assert r.status_code == 201, r.text
    return r.json()


def wait(client, job_id: str, until=("done", "failed", "cancelled"), timeout: float = WAIT) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in until:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s: {job}")


def png_header(width: int, height: int) -> bytes:
    """A valid little PNG whose header claims width x height (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


