"""The studio's HTTP side: a FastAPI app around a `jobs.Studio`, and `serve()`.

    GET  /                               the page (static/index.html, studio.js, studio.css)
    GET  /api/options                    modes, presets, models, each mode's fields (the catalogue's), limits, access
    GET  /api/defaults?mode=&preset=     the values a preset gives each parameter of a mode
    GET  /api/models/{name}/layers       the model's dreamable layers: the default and the short list marked
    POST /api/uploads                    the file as the raw body, its name in X-Filename
    GET  /api/uploads/{token}/poster     a small JPEG of an upload (a clip's first frame)
    POST /api/jobs                       {"upload", "mode", "preset", "model", "layers", "params", ...};
                                         an Idempotency-Key header makes a repeat return the same job
    GET  /api/jobs?since=VERSION         the gallery: the jobs changed since VERSION, the ids removed
    GET  /api/jobs/{id}                  one job with its progress
    POST /api/jobs/{id}/cancel | resume | reuse (its input as a new upload)
    DELETE /api/jobs/{id}                the job and its files
    GET  /api/jobs/{id}/files/{input|output|preview|before|poster}[?download=1]

The guard in front of every request (`Guard`): bound to a loopback address, the Host header
must name loopback (a DNS-rebinding page cannot reach the API); bound to any other address,
every request needs the token (`?token=` once, then a cookie; or `Authorization: Bearer`), and
a browser without it gets a small page that asks for it. A request that changes something and
carries an Origin must come from the page's own origin. Each browser gets a random client key
in a cookie (SameSite=Lax: a link from another site still brings it, so the gallery is still
there; a cross-site POST does not); its jobs are the ones it sees. No response may be framed.
"""
from __future__ import annotations

import functools
import ipaddress
import json
import os
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
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ..errors import DreamvidError
from .jobs import Studio, owner_key
from .options import MODES, form_values, options_of, short_layers
from .uploads import UploadRefused, too_large

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_PORT = 7860  # what the field's local dream tools (Gradio apps) use; --port changes it
TOKEN_COOKIE, CLIENT_COOKIE = "dreamvid_token", "dreamvid_client"
COOKIE_AGE = 365 * 24 * 3600  # s; the client key keeps a browser's gallery across server restarts
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
MAX_JSON = 256 * 1024  # bytes of a JSON request: a job request with a 64 KB preset TOML fits
TOKEN_FILE = "token"  # in --data: a server on another address keeps its token across restarts
PAGE_CSP = ("default-src 'self'; img-src 'self' blob:; media-src 'self' blob:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": PAGE_CSP}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def kept_token(data: Path) -> str:
    """The token kept in DATA/token (made, readable by the owner only, on first use): a server
    on another address keeps its URL across restarts."""
    path = Path(data) / TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if len(token) < 16:
        token = secrets.token_urlsafe(24)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(token + "\n")
    return token


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
        if self.token is None or self.allowed(request):
            return None
        if request.url.path.startswith("/static/") and request.method == "GET":
            return None  # the page's own style and icon: the token page uses them (nothing in them is private)
        if request.method == "GET" and not request.url.path.startswith("/api/") \
                and "text/html" in request.headers.get("accept", ""):
            wrong = "token" in request.query_params
            return HTMLResponse(token_page(wrong), status_code=401, headers={"Cache-Control": "no-store"})
        return _error(401, "this studio needs its token: open the URL printed when it started")

    def allowed(self, request: Request) -> bool:
        given = request.cookies.get(TOKEN_COOKIE) or request.query_params.get("token") or ""
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            given = auth[len("Bearer "):]
        return secrets.compare_digest(given.encode(), self.token.encode())


def token_page(wrong: bool) -> str:
    """The small page a browser without the token gets: a field for it (sent as ?token=)."""
    note = "<p class=error>That token is not this studio's.</p>" if wrong else ""
    return (STATIC / "token.html").read_text(encoding="utf-8").replace("<!--note-->", note)


def _error(status: int, message: str, hint: str | None = None, key: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "hint": hint, "field": key}, status_code=status)


def create_app(studio: Studio, *, host: str = "127.0.0.1", token: str | None = None) -> FastAPI:
    """The app for `studio`, guarded as for a server bound to `host` (nothing is bound here)."""
    guard = Guard(host, token)
    app = FastAPI(title="dreamvid studio", docs_url=None, redoc_url=None, openapi_url=None)  # no CDN pages
    app.state.guard, app.state.studio = guard, studio

    @app.middleware("http")
    async def guarded(request: Request, call_next):
        response = guard.refuse(request)
        if response is None:
            response = await _through(request, call_next)
        response.headers.update(HEADERS)
        return response

    async def _through(request: Request, call_next) -> Response:
        client = request.cookies.get(CLIENT_COOKIE)
        new_client = None if client and 16 <= len(client) <= 64 else secrets.token_urlsafe(24)
        request.state.owner = owner_key(new_client or client)
        if request.url.path == "/" and "token" in request.query_params:  # the printed URL: keep it in a cookie
            response = RedirectResponse("/", status_code=303)
        else:
            response = await call_next(request)
        if guard.token and request.cookies.get(TOKEN_COOKIE) != guard.token and guard.allowed(request):
            response.set_cookie(TOKEN_COOKIE, guard.token, max_age=COOKIE_AGE, httponly=True, samesite="lax")
        if new_client:
            response.set_cookie(CLIENT_COOKIE, new_client, max_age=COOKIE_AGE, httponly=True, samesite="lax")
        return response

    @app.exception_handler(DreamvidError)
    async def dreamvid_error(request: Request, e: DreamvidError):
        return _error(e.status if isinstance(e, UploadRefused) else 400, studio.scrub(e.message), studio.scrub(e.hint),
                      getattr(e, "key", None))

    @app.exception_handler(RequestValidationError)
    async def bad_query(request: Request, e: RequestValidationError):
        where = ".".join(str(x) for x in (e.errors() or [{}])[0].get("loc", ()) if x not in ("query", "path"))
        return _error(400, f"{where or 'the request'} is not valid here")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/")
    def page():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/api/options")
    def options():
        from .. import models, presets

        return {
            "modes": [{"name": m.name, "label": m.label, "about": m.about, "accepts": m.accepts, "formats": m.formats,
                       "preset": presets.MODE_PRESET.get(m.name), "params": options_of(m.name)}
                      for m in MODES.values()],
            "presets": [_preset_card(n) for n in presets.available()],
            "models": [{"name": n, "look": models.MODELS[n].look if n in models.MODELS else "your own network",
                        "ready": n not in models.MODELS or models.is_cached(models.MODELS[n])}
                       for n in studio.models],
            "limits": {"max_upload_mb": studio.max_upload_bytes / 1e6, "max_pixels": studio.max_pixels,
                       "max_queued": studio.max_queued, "client_uploads_mb": studio.client_upload_bytes / 1e6},
            "access": {"mode": "token" if guard.token and not guard.loopback else "loopback", "host": host},
        }

    @app.get("/api/defaults")
    def defaults(mode: str, preset: str | None = None):
        from .options import _preset

        if mode not in MODES:
            raise UploadRefused(f"unknown mode {mode[:40]!r}", status=404)
        return form_values(mode, _preset(preset))

    @app.get("/api/models/{name}/layers")
    def layers(name: str):
        if name not in studio.models:
            raise UploadRefused(f"unknown model {name[:40]!r}", status=404)
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

    @app.get("/api/uploads/{token}/poster")
    def upload_poster(token: str, request: Request):
        return _file(studio.upload_poster(request.state.owner, token))

    @app.post("/api/jobs", status_code=201)
    async def create(request: Request):
        body = await _json(request)
        key = request.headers.get("idempotency-key")
        return (await run_in_threadpool(studio.create, request.state.owner, body, key)).public(studio.scrub)

    @app.get("/api/jobs")
    def jobs(request: Request, since: int = 0):
        return studio.changes(request.state.owner, since)

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str, request: Request):
        return studio.get(request.state.owner, job_id).public(studio.scrub)

    @app.delete("/api/jobs/{job_id}", status_code=204)
    def delete(job_id: str, request: Request):
        studio.delete(request.state.owner, job_id)
        return Response(status_code=204)

    @app.post("/api/jobs/{job_id}/{action}")
    def act(job_id: str, action: str, request: Request):
        if action == "reuse":
            return studio.reuse_input(request.state.owner, job_id).to_dict()
        if action not in ("cancel", "resume"):
            raise UploadRefused("no such action", status=404)
        return getattr(studio, action)(request.state.owner, job_id).public(studio.scrub)

    @app.get("/api/jobs/{job_id}/files/{which}")
    def file(job_id: str, which: str, request: Request, download: bool = False):
        return _file(studio.file(request.state.owner, job_id, which), download)

    return app


async def _json(request: Request):
    """The request's JSON body: at most MAX_JSON bytes, and nested no deeper than the parser's
    stack allows (a 400, never a 500)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_JSON:
        raise UploadRefused(f"the request is larger than {MAX_JSON // 1024} KB", status=413)
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_JSON:
            raise UploadRefused(f"the request is larger than {MAX_JSON // 1024} KB", status=413)
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # not JSON, a 5000-digit number, or 100,000 nested brackets
        raise UploadRefused("the request must be JSON", status=400) from None


def _file(path: Path, download: bool = False) -> FileResponse:
    return FileResponse(path, filename=path.name if download else None,
                        content_disposition_type="attachment" if download else "inline",
                        headers={"Cache-Control": "no-store"})


def _preset_card(name: str) -> dict:
    """A bundled preset as the page shows it: its words, and its picture where one was made
    (`make studio-presets`: samples/chelsea.jpg dreamed with it)."""
    from .. import presets

    data = presets.read(name)
    picture = STATIC / "presets" / f"{name}.jpg"
    return {"name": name, "description": data.get("description", ""),
            "model": data.get("dream", {}).get("model"),
            "picture": f"/static/presets/{name}.jpg" if picture.is_file() else None}


@functools.lru_cache(maxsize=16)
def _layers(model: str) -> list[dict]:
    from .. import models

    default = {n for n, _ in models.default_layers(model)}
    listing = models.dreamable_layers(model)
    short = short_layers([n for n, _ in listing], default)
    return [{"name": n, "shape": list(shape), "default": n in default, "short": n in short, "words": short.get(n)}
            for n, shape in listing]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(64)
    return sock


def urls(guard: Guard, sock: socket.socket) -> list[str]:
    """The URLs to print: one per address another device can use (for a wildcard bind, this
    machine's addresses, found without sending anything), with the token where one is needed."""
    host, port = sock.getsockname()[:2]
    hosts = [host]
    if host in ("0.0.0.0", "::"):
        hosts = machine_addresses(socket.AF_INET6 if host == "::" else socket.AF_INET) or [host]
    query = f"?token={guard.token}" if guard.token else ""
    return [f"http://{f'[{h}]' if ':' in h else h}:{port}/{query}" for h in hosts]


def machine_addresses(family: int = socket.AF_INET) -> list[str]:
    """This machine's non-loopback addresses: the one its default route uses (a UDP socket's
    connect sends no packet), then those its host name resolves to."""
    found = []
    probe = ("10.255.255.255", 1) if family == socket.AF_INET else ("fd00::1", 1)
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect(probe)
            found.append(s.getsockname()[0])
    except OSError:
        pass
    try:
        for *_, address in socket.getaddrinfo(socket.gethostname(), None, family):
            found.append(address[0])
    except OSError:
        pass
    return list(dict.fromkeys(a for a in found if not is_loopback(a) and not a.startswith("fe80")))


def url(guard: Guard, sock: socket.socket) -> str:
    return urls(guard, sock)[0]


def serve(studio: Studio, sock: socket.socket, *, host: str, token: str | None = None, ready=None) -> None:
    """Run the studio on `sock` (bound to `host`) until Ctrl-C or SIGTERM; the job in progress
    stops at its next step and stays queued, so the next start resumes it. ready(urls) is
    called once it listens (each URL carries the token where one is needed; the first is the
    one to open)."""
    server, app = _server(studio, sock, host, token)
    studio.start()
    if ready is not None:
        ready(urls(app.state.guard, sock))
    try:
        server.run(sockets=[sock])
    finally:
        studio.stop()


@contextmanager
def running(studio: Studio, *, token: str | None = None, timeout: float = 10.0) -> Iterator[str]:
    """The studio served from a thread on a free loopback port (tests, embedding): yields its URL."""
    sock = bind("127.0.0.1", 0)
    server, app = _server(studio, sock, "127.0.0.1", token)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    studio.start()
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            raise RuntimeError(f"the studio did not start within {timeout} s")
        yield url(app.state.guard, sock)
    finally:
        server.should_exit = True
        thread.join(timeout)
        studio.stop()
        sock.close()


def _server(studio: Studio, sock: socket.socket, host: str, token: str | None):
    """(the uvicorn server of the studio's app, the app) for a socket bound to `host`."""
    import uvicorn

    app = create_app(studio, host=host, token=token)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    return server, app

