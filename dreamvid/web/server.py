"""The studio's HTTP side: a FastAPI app around a `jobs.Studio`, and `serve()`.

    GET  /                               the page (static/index.html, studio.js, studio.css)
    GET  /api/options                    modes, presets, models, parameters with ranges, limits
    GET  /api/defaults?mode=&preset=     the values a preset gives each parameter of a mode
    GET  /api/models/{name}/layers       the model's dreamable layers, the default ones marked
    POST /api/uploads                    the file as the raw body, its name in X-Filename
    POST /api/jobs                       {"upload", "mode", "preset", "model", "layers", "params", ...}
    GET  /api/jobs, /api/jobs/{id}       the gallery, one job with its progress
    POST /api/jobs/{id}/cancel | resume
    GET  /api/jobs/{id}/files/{input|output|preview}[?download=1]

The guard in front of every request (`Guard`): bound to a loopback address, the Host header
must name loopback (a DNS-rebinding page cannot reach the API); bound to any other address,
every request needs the token (`?token=` once, then a cookie; or `Authorization: Bearer`).
A request that changes something and carries an Origin must come from the page's own origin.
Each browser gets a random client key in a cookie; its jobs are the ones it sees.
"""
from __future__ import annotations

import functools
import ipaddress
import json
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ..errors import DreamvidError
from .jobs import Studio, owner_key
from .options import MAX_TOML, MODES, PARAMS, form_values
from .uploads import UploadRefused, too_large

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_PORT = 7860  # what the field's local dream tools (Gradio apps) use; --port changes it
TOKEN_COOKIE, CLIENT_COOKIE = "dreamvid_token", "dreamvid_client"
COOKIE_AGE = 365 * 24 * 3600  # s; the client key keeps a browser's gallery across server restarts
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
MAX_REQUEST = 2 * MAX_TOML  # bytes of a job request: its preset TOML (options.MAX_TOML) and room for the rest


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Guard:
    """Who may talk to the studio: the host rule and the token (see the module doc).

    token: required where `host` is not loopback; one is made (and should be printed) when
    none is given. On loopback a given token is required too."""

    def __init__(self, host: str, token: str | None = None):
        self.host = host
        self.loopback = is_loopback(host)
        self.token = token or (None if self.loopback else secrets.token_urlsafe(24))

    def refuse(self, request: Request) -> Response | None:
        """The response that refuses `request`, or None to let it through."""
        hostname = urlsplit("//" + request.headers.get("host", "")).hostname or ""
        if self.loopback and not is_loopback(hostname):
            return _error(421, f"this studio answers on {self.host} only, not {hostname!r}")
        origin = request.headers.get("origin")
        if request.method not in ("GET", "HEAD") and origin and urlsplit(origin).netloc != request.headers.get("host"):
            return _error(403, "requests from other sites are refused")
        if self.token is None:
            return None
        given = request.cookies.get(TOKEN_COOKIE) or request.query_params.get("token") or ""
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            given = auth[len("Bearer "):]
        if secrets.compare_digest(given.encode(), self.token.encode()):
            return None
        return _error(401, "this studio needs its token: open the URL printed when it started")


def _error(status: int, message: str, hint: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "hint": hint}, status_code=status)


def create_app(studio: Studio, *, host: str = "127.0.0.1", token: str | None = None) -> FastAPI:
    """The app for `studio`, guarded as for a server bound to `host` (nothing is bound here)."""
    guard = Guard(host, token)
    app = FastAPI(title="dreamvid studio", docs_url=None, redoc_url=None, openapi_url=None)  # no CDN pages
    app.state.guard, app.state.studio = guard, studio

    @app.middleware("http")
    async def guarded(request: Request, call_next):
        refused = guard.refuse(request)
        if refused is not None:
            return refused
        client = request.cookies.get(CLIENT_COOKIE)
        new_client = None if client and 16 <= len(client) <= 64 else secrets.token_urlsafe(24)
        request.state.owner = owner_key(new_client or client)
        if request.url.path == "/" and "token" in request.query_params:  # the printed URL: keep it in a cookie
            response = RedirectResponse("/", status_code=303)
        else:
            response = await call_next(request)
        if guard.token and request.cookies.get(TOKEN_COOKIE) != guard.token:
            response.set_cookie(TOKEN_COOKIE, guard.token, max_age=COOKIE_AGE, httponly=True, samesite="strict")
        if new_client:
            response.set_cookie(CLIENT_COOKIE, new_client, max_age=COOKIE_AGE, httponly=True, samesite="strict")
        return response

    @app.exception_handler(DreamvidError)
    async def dreamvid_error(request: Request, e: DreamvidError):
        return _error(e.status if isinstance(e, UploadRefused) else 400, e.message, e.hint)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/")
    def page():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/api/options")
    def options():
        from .. import models, presets

        return {
            "modes": [{"name": m.name, "label": m.label, "accepts": m.accepts, "formats": m.formats}
                      for m in MODES.values()],
            "presets": [{"name": n, "description": presets.read(n).get("description", "")}
                        for n in presets.available()],
            "models": [{"name": n, "look": models.MODELS[n].look if n in models.MODELS else "your own network",
                        "ready": n not in models.MODELS or models.is_cached(models.MODELS[n])}
                       for n in studio.models],
            "params": [p.to_dict() for p in PARAMS],
            "limits": {"max_upload_mb": studio.max_upload_bytes / 1e6, "max_pixels": studio.max_pixels},
        }

    @app.get("/api/defaults")
    def defaults(mode: str, preset: str | None = None):
        from .options import _preset

        if mode not in MODES:
            raise UploadRefused(f"unknown mode {mode!r}", status=404)
        return form_values(mode, _preset(preset))

    @app.get("/api/models/{name}/layers")
    def layers(name: str):
        if name not in studio.models:
            raise UploadRefused(f"unknown model {name!r}", status=404)
        return _layers(studio.models[name])

    @app.post("/api/uploads")
    async def upload(request: Request):
        length = request.headers.get("content-length", "")
        if length.isascii() and length.isdigit() and int(length[:20]) > studio.max_upload_bytes:
            raise too_large(studio.max_upload_bytes)  # refused before a byte is read
        sink = studio.upload_sink(unquote(request.headers.get("x-filename", "")))
        try:
            async for chunk in request.stream():
                sink.write(chunk)
        except BaseException:
            sink.discard()
            raise
        return (await run_in_threadpool(studio.add_upload, request.state.owner, sink)).to_dict()

    @app.post("/api/jobs", status_code=201)
    async def create(request: Request):
        text = b""
        async for chunk in request.stream():  # bounded: a request is a few hundred bytes and a preset's TOML
            text += chunk
            if len(text) > MAX_REQUEST:
                return _error(413, f"a job request is at most {MAX_REQUEST // 1024} KB")
        try:
            body = json.loads(text)
        except (ValueError, RecursionError):  # not JSON, a number past 4300 digits, arrays nested thousands deep
            return _error(400, "the request must be JSON")
        return (await run_in_threadpool(studio.create, request.state.owner, body)).public()

    @app.get("/api/jobs")
    def jobs(request: Request):
        return [j.public() for j in studio.list(request.state.owner)]

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str, request: Request):
        return studio.get(request.state.owner, job_id).public()

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel(job_id: str, request: Request):
        return studio.cancel(request.state.owner, job_id).public()

    @app.post("/api/jobs/{job_id}/resume")
    def resume(job_id: str, request: Request):
        return studio.resume(request.state.owner, job_id).public()

    @app.get("/api/jobs/{job_id}/files/{which}")
    def file(job_id: str, which: str, request: Request, download: bool = False):
        path = studio.file(request.state.owner, job_id, which)
        return FileResponse(path, filename=path.name if download else None,
                            content_disposition_type="attachment" if download else "inline",
                            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    return app


@functools.lru_cache(maxsize=16)
def _layers(model: str) -> list[dict]:
    from .. import models

    default = {n for n, _ in models.default_layers(model)}
    return [{"name": n, "shape": [d for d in shape], "default": n in default}
            for n, shape in models.dreamable_layers(model)]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(64)
    return sock


def url(guard: Guard, sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={guard.token}" if guard.token else "")


def serve(studio: Studio, sock: socket.socket, *, host: str, token: str | None = None, ready=None) -> None:
    """Run the studio on `sock` (bound to `host`) until Ctrl-C or SIGTERM; the job in progress
    stops at its next step and stays queued, so the next start resumes it. ready(url) is
    called once it listens (the URL carries the token where one is needed)."""
    server, address = _server(studio, sock, host, token)
    studio.start()
    if ready is not None:
        ready(address)
    try:
        server.run(sockets=[sock])
    finally:
        studio.stop()


@contextmanager
def running(studio: Studio, *, token: str | None = None, timeout: float = 10.0) -> Iterator[str]:
    """The studio served from a thread on a free loopback port (tests, embedding): yields its URL."""
    sock = bind("127.0.0.1", 0)
    server, address = _server(studio, sock, "127.0.0.1", token)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    studio.start()
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            raise RuntimeError(f"the studio did not start within {timeout} s")
        yield address
    finally:
        server.should_exit = True
        thread.join(timeout)
        studio.stop()
        sock.close()


def _server(studio: Studio, sock: socket.socket, host: str, token: str | None):
    """(the uvicorn server of the studio's app, the URL to print) for a socket bound to `host`."""
    import uvicorn

    app = create_app(studio, host=host, token=token)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    return server, url(app.state.guard, sock)
