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
    host: Annotated[str, typer.Option("--host", help="Address to listen on; any but loopback requires the token.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: a free one).")] = 7860,
    token: Annotated[Optional[str], typer.Option(
        "--token", show_default=False, envvar="DREAMVID_TOKEN",
        help="Access token (default: none on loopback, a random one printed at start on any other address).")] = None,
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", "-m", show_default=False, help="Offer your own network too: NAME=PATH.keras; repeat for more.")]
    = None,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", rich_help_panel=PANEL,
                                                 help="Largest upload, MB.")] = 200,
    max_pixels: Annotated[int, typer.Option("--max-pixels", rich_help_panel=PANEL,
                                            help="Largest picture or frame, px (read from the header).")]
    = 50_000_000,
) -> None:
    """A local web page for dreaming: drop a photo or a clip, pick a mode, preset, model, layers, and Dream.

    Jobs run one at a time, are kept in --data (input, output, job.json with the settings and the
    equivalent command), and an interrupted job resumes when the server starts again.
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
    if max_upload_mb <= 0 or max_pixels <= 0:
        raise SettingsError("--max-upload-mb and --max-pixels must be > 0", hint=None)
    import_tensorflow_quietly()
    studio = Studio(data, extra, max_upload_mb=max_upload_mb, max_pixels=max_pixels)
    try:
        sock = server.bind(host, port)
    except OSError as e:
        fail(f"Error: cannot listen on {host}:{port} ({e.strerror}). Hint: choose another --port.", EXIT_USAGE)
    typer.echo(f"dreamvid studio: jobs in {studio.data}; Ctrl-C stops (the job in progress resumes next time)")
    server.serve(studio, sock, host=host, token=token, ready=lambda url: typer.echo(f"Open {url}"))
