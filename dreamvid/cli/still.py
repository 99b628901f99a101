"""`dreamvid image`: dream a still, or a batch of them with the network loaded once."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import interruption_exit_code
from .common import (RenderBar, dream_flags, error_text, fail, forgotten_output, handle_errors, ray_option,
                     resume_command, with_dream_options, workers_option)


def register(app: typer.Typer) -> None:
    app.command("image")(image)


@handle_errors
@with_dream_options
def image(
    ctx: typer.Context,
    sources: Annotated[list[Path], typer.Argument(
        help="Photos to dream (JPEG, PNG, WebP, BMP, TIFF), or folders of them.", show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", show_default=False,
        help="Result; format from the extension (default: SOURCE.dream.png beside the source). With several "
             "photos or a folder: a folder (created if needed) that receives NAME.dream.png for each.")] = None,
    skip_existing: Annotated[bool, typer.Option(
        "--skip-existing", help="Leave results that already exist alone (resumes an interrupted batch).")] = False,
    workers: workers_option() = None,
    ray: ray_option() = None,
    dream: dict = None,
    preset: Optional[str] = None,
) -> None:
    """Dream a still image: multi-octave gradient ascent on a CNN's layers.

    Several photos (or folders of them) are dreamed one after the other with the network
    loaded once; a photo that cannot be read is reported and skipped, and the command exits
    with its error code at the end.
    """
    from ..render.still import render_images

    forgotten_output(sources, output)
    written, total = [], [0]

    def on_item(p):
        if p.failed:
            message, _, hint = p.info.partition("\n")
            typer.echo(error_text(message, hint or None, " (skipped)"), err=True)
        else:
            written.append(p.info)
            typer.echo(p.info)

    bar = RenderBar("dreaming", on_item=on_item, transient=True)

    def progress(p):
        total[0] = p.total
        bar(p)

    try:
        result = render_images(sources, output, preset=preset, progress=progress, skip_existing=skip_existing,
                               workers=workers, ray=ray, **dream_flags(dream))
    except KeyboardInterrupt as e:
        bar.stop()
        if len(sources) == 1 and not sources[0].is_dir():
            raise
        again = resume_command(ctx) + ("" if skip_existing else " --skip-existing")
        fail(f"Interrupted: {len(written)} of {total[0]} images written. Resume with: {again}",
             interruption_exit_code(e))
    finally:
        bar.stop()
    if result.failed:
        names = ", ".join(Path(name).name for name, _ in result.failed[:5]) + (", ..." if len(result.failed) > 5 else "")
        ok = result.items - len(result.failed)  # dreamed now, or kept by --skip-existing
        rest = "nothing was written" if ok == 0 else f"the other {ok} {'was' if ok == 1 else 'were'} written"
        fail(f"Error: {len(result.failed)} of {result.items} photos could not be dreamed ({names}); {rest}.",
             result.failed[0][1].exit_code)
