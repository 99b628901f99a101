"""`dreamvid serve`: the local web studio (needs `pip install "dreamvid[web]"`)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import EXIT_USAGE, SettingsError
from .common import fail, handle_errors, import_tensorflow_quietly

PANEL = "Limits"


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


@handle_errors
def serve(
    data: Annotated[Path, typer.Option("--data", help="Folder of the jobs and their results (created if needed).")]
    = Path("dreamvid-studio"),
    host: Annotated[str, typer.Option("--host", help="Address to listen on; any but loopback requires the token "
                                                     "(0.0.0.0: every address of this machine).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: a free one).")] = 7860,
    token: Annotated[Optional[str], typer.Option(
        "--token", show_default=False, envvar="DREAMVID_TOKEN",
        help="Access token (default: none on loopback; on any other address the one kept in --data/token, made "
             "on first start, so the printed URL stays the same).")] = None,
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", "-m", show_default=False, help="Offer your own network too: NAME=PATH.keras; repeat for more.")]
    = None,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", rich_help_panel=PANEL,
                                                 help="Largest upload, MB.")] = 200,
    max_pixels: Annotated[int, typer.Option("--max-pixels", rich_help_panel=PANEL,
                                            help="Largest picture or frame, px (read from the header).")]
    = 50_000_000,
    max_queued: Annotated[int, typer.Option("--max-queued", rich_help_panel=PANEL,
                                            help="Jobs one browser may have waiting or running.")] = 10,
    client_uploads_mb: Annotated[float, typer.Option(
        "--client-uploads-mb", rich_help_panel=PANEL,
        help="Uploads kept per browser, MB; its oldest make room for a new one.")] = 1000,
) -> None:
    """A local web page for dreaming: drop a photo or a clip, pick a look, and Dream.

    Jobs run one at a time, browsers taking turns, and are kept in --data (input, output,
    job.json with the settings and the equivalent command); an interrupted job resumes when the
    server starts again.
    """
    try:
        import fastapi  # noqa: F401 - the web extra, imported here only: `dreamvid --help` stays fast
        import uvicorn  # noqa: F401
    except ImportError as e:
        fail(f"Error: dreamvid serve needs the web extra ({e.name} is missing): pip install \"dreamvid[web]\"",
             EXIT_USAGE)
    from ..web import server
    from ..web.jobs import Studio

    extra = {}
    for spec in model or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not Path(path).is_file():
            raise SettingsError(f"--model {spec!r} is not NAME=PATH of a .keras file", hint="e.g. --model mine=net.keras")
        extra[name] = str(Path(path).resolve())
    for flag, value in (("--max-upload-mb", max_upload_mb), ("--max-pixels", max_pixels),
                        ("--max-queued", max_queued), ("--client-uploads-mb", client_uploads_mb)):
        if not value > 0:
            raise SettingsError(f"{flag} must be > 0 (got {value})", hint=None)
    import_tensorflow_quietly()
    studio = Studio(data, extra, max_upload_mb=max_upload_mb, max_pixels=max_pixels, max_queued=max_queued,
                    client_uploads_mb=client_uploads_mb)
    if token is None and not server.is_loopback(host):
        token = server.kept_token(studio.data)
    try:
        sock = server.bind(host, port)
    except OSError as e:
        fail(f"Error: cannot listen on {host}:{port} ({e.strerror}). Hint: choose another --port.", EXIT_USAGE)
    typer.echo(f"dreamvid studio: jobs in {studio.data}; Ctrl-C stops (the job in progress resumes next time)")
    server.serve(studio, sock, host=host, token=token, ready=lambda urls: typer.echo(opening(host, urls)))


def opening(host: str, urls: list[str]) -> str:
    """What to open: on loopback, this computer's URL; on other addresses, one URL per address
    other devices can use (a wildcard bind with no address found: a note to use this machine's)."""
    from ..web.server import is_loopback

    if is_loopback(host):
        return f"Open {urls[0]} (only this computer can)"
    if host in ("0.0.0.0", "::") and urls[0].startswith(("http://0.0.0.0:", "http://[::]:")):
        return (f"Open {urls[0].replace('0.0.0.0', 'THIS-COMPUTERS-ADDRESS').replace('[::]', 'THIS-COMPUTERS-ADDRESS')}"
                " from another device (no network address of this computer was found; `ip addr` shows it)")
    lines = [f"Open {u} from any device on this network" for u in urls]
    return "\n".join(lines) + "\nThe token in the URL is the key: share it only with people who may use the studio."
