"""`dreamvid image`: dream a still."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import default_output, handle_errors, progress_bar, with_dream_options


def register(app: typer.Typer) -> None:
    app.command("image")(image)


@handle_errors
@with_dream_options
def image(
    source: Annotated[Path, typer.Argument(help="Photo to dream (JPEG, PNG, WebP, BMP, TIFF).", show_default=False)],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", show_default=False,
                                                   help="Result; format from the extension "
                                                        "(default: SOURCE.dream.png beside the source).")] = None,
    dream: dict = None,
    preset: Optional[str] = None,
) -> None:
    """Dream a still image: multi-octave gradient ascent on a CNN's layers."""
    from .. import media, presets
    from ..dream import check_size, dream_image, fit_max_size, get_dreamer

    settings = presets.resolve(preset, dream=dream).dream
    output = media.check_output_path(output or default_output(source, ".png"), source)
    rgb, alpha = media.read_image_alpha(source)
    check_size(*fit_max_size(rgb, settings.max_size).shape[:2], settings)
    dreamer = get_dreamer(settings)  # model and layer errors surface here, before any progress
    total = settings.num_octave * settings.iterations
    with progress_bar(transient=True) as bar:
        task = bar.add_task("dreaming", total=total, info="")

        def on_step(p):
            done = p.octave * settings.iterations + p.iteration
            bar.update(task, completed=done, info=f"octave {p.octave + 1}/{p.num_octave} "
                                                  f"step {p.iteration}/{p.iterations} loss {p.loss:.2f}")

        result = dream_image(rgb, settings, progress=on_step, dreamer=dreamer)
        bar.update(task, completed=total)
    if alpha is not None:
        alpha = fit_max_size(alpha, settings.max_size)
    media.write_image(output, result, alpha=alpha)
    typer.echo(str(output))
