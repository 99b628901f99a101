"""`dreamvid image`: dream a still, or a batch of them with the network loaded once."""

from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError, OutputError, interruption_exit_code
from .common import (default_output, error_text, fail, handle_errors, progress_bar, resume_command,
                     with_dream_options)


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
    dream: dict = None,
    preset: Optional[str] = None,
) -> None:
    """Dream a still image: multi-octave gradient ascent on a CNN's layers.

    Several photos (or folders of them) are dreamed one after the other with the network
    loaded once; a photo that cannot be read is reported and skipped, and the command exits
    with its error code at the end.
    """
    from .. import presets

    settings = presets.resolve(preset, dream=dream).dream
    jobs, batch = plan(sources, output)
    dreamer, failures, written = None, [], 0
    for k, (source, out) in enumerate(jobs):
        if skip_existing and out.exists():
            continue
        try:
            dreamer = dream_one(source, out, settings, dreamer, f"{k + 1}/{len(jobs)} " if batch else "")
        except InputError as e:  # this photo only: the others can still be dreamed
            if not batch:
                raise
            failures.append((source.name, e.exit_code))
            typer.echo(error_text(e.message, e.hint, " (skipped)"), err=True)
            continue
        except KeyboardInterrupt as e:
            if not batch:
                raise
            again = resume_command(ctx) + ("" if skip_existing else " --skip-existing")
            fail(f"Interrupted: {written} of {len(jobs)} images written. Resume with: {again}",
                 interruption_exit_code(e))
        written += 1
        typer.echo(str(out))
    if failures:
        names = ", ".join(name for name, _ in failures[:5]) + (", ..." if len(failures) > 5 else "")
        ok = len(jobs) - len(failures)  # dreamed now, or kept by --skip-existing
        rest = "nothing was written" if ok == 0 else f"the other {ok} {'was' if ok == 1 else 'were'} written"
        fail(f"Error: {len(failures)} of {len(jobs)} photos could not be dreamed ({names}); {rest}.",
             failures[0][1])


def plan(sources: list[Path], output: Optional[Path]) -> tuple[list[tuple[Path, Path]], bool]:
    """([(photo, result path)], whether this is a batch), checked before any work.

    Folders expand to the images directly inside them, sorted, leaving out earlier results
    (NAME.dream.*). A batch (several photos, or any folder) writes into `output` as a folder,
    or beside each photo; a single photo may also be given a folder as `output`.
    """
    from .. import media
    from ..media.paths import require_file, require_image_output

    photos: list[Path] = []
    for s in sources:
        if s.is_dir():
            found = sorted(p for p in s.iterdir() if p.is_file() and p.suffix.lower() in media.IMAGE_EXTENSIONS
                           and not p.name.startswith(".") and not p.stem.endswith(".dream"))
            if not found:
                raise InputError(f"{s} holds no images", hint="give photos or a folder of JPEG/PNG/WebP/BMP/TIFF files")
            photos += found
        else:
            photos.append(s)
    batch = len(photos) > 1 or any(s.is_dir() for s in sources)
    folder = None
    if output is not None and (batch or output.is_dir() or media.output_kind(output) == "frames"):
        if media.output_kind(output) != "frames":
            raise OutputError(f"-o {output} names one picture, but {len(photos)} photos were given",
                              hint="give a folder for -o; each result is written into it as NAME.dream.png")
        folder = make_folder(output)
    jobs = []
    for photo in photos:
        if not batch:
            require_file(photo)  # "does not exist" before anything about its output
        out = folder / default_output(photo, ".png").name if folder else output or default_output(photo, ".png")
        require_image_output(out)  # -o x.gif: refused now, not after the dream
        # A batch's missing photo is reported (and skipped) when its turn comes.
        jobs.append((photo, media.check_output_path(out, photo) if photo.is_file() else out))
    clash = [p for p, n in Counter(out for _, out in jobs).items() if n > 1]
    if clash:
        names = [str(photo) for photo, out in jobs if out == clash[0]]
        raise OutputError(f"{' and '.join(names)} would both be written to {clash[0]}",
                          hint="dream them into different folders, or rename one")
    return jobs, batch


def make_folder(folder: Path) -> Path:
    from ..media.paths import writable_dir_or_raise

    folder = folder.expanduser()
    if not folder.is_dir():
        writable_dir_or_raise(folder.resolve().parent)
        folder.mkdir()
    return folder


def dream_one(source: Path, out: Path, settings, dreamer, label: str):
    """Dream `source` into `out` with a progress bar; returns the Dreamer (loaded on first use,
    after the first photo was read, so that a bad photo is reported before a network loads)."""
    from .. import media
    from ..dream import check_size, dream_image, get_dreamer

    # Shrunk while decoding: memory follows --max-size, not the photo (a 121-megapixel JPEG
    # with --max-size 160 no longer becomes a 1.5 GB float32 array first).
    rgb, alpha = media.read_image_alpha(source, max_size=settings.max_size)
    check_size(*rgb.shape[:2], settings)
    dreamer = dreamer or get_dreamer(settings)  # model and layer errors surface here, before any progress
    total = settings.num_octave * settings.iterations
    with progress_bar(transient=True) as bar:
        task = bar.add_task(f"dreaming {label}{source.name}" if label else "dreaming", total=total, info="")

        def on_step(p):
            done = p.octave * settings.iterations + p.iteration
            bar.update(task, completed=done, info=f"octave {p.octave + 1}/{p.num_octave} "
                                                  f"step {p.iteration}/{p.iterations} loss {p.loss:.2f}")

        result = dream_image(rgb, settings, progress=on_step, dreamer=dreamer)
        bar.update(task, completed=total)
    media.write_image(out, result, alpha=alpha)
    return dreamer
