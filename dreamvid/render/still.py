"""`render_images`: photos dreamed one after the other with the network loaded once.

    render_images(["a.jpg", "holiday/"], "dreams/", preset="coral")

Several photos, or folders of them, make a batch: each result goes into `output` as a folder
(NAME.dream.png), or beside its photo. Everything that can be checked without reading the
photos is checked before any work: the output folder, results that would overwrite each
other or a photo of the batch. A photo that cannot be read is reported and skipped
(`Result.failed`); the others are dreamed. The items are the photos, and each result file is
the item's store: with `skip_existing`, results already on disk count as done, which is how
an interrupted batch resumes.
"""
from __future__ import annotations

import logging
import os
import re
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import InputError, OutputError
from ..settings import Settings
from . import engine

log = logging.getLogger("dreamvid")

RESULT_TAG = ".dream"  # photo.jpg -> photo.dream.png; results are left out when a folder is read
# A folder's masks are not photos: chelsea-mask.png beside chelsea.jpg is what `--mask` reads.
# Left out by name, the rule a user can see and predict: a name that is "mask" or ends in it
# after - _ . or a space (chelsea-mask.png, face_mask.PNG, mask.png; not damask.jpg).
MASK_NAME = re.compile(r"(^|[-_. ])mask$", re.I)


def load_still(source, output) -> tuple[Path, np.ndarray, str | None]:
    """(checked output path, (H, W, 3) uint8 image, source file name or None) for a source
    given as a path or as an array; the output may never be the source file."""
    from .. import media

    if isinstance(source, (str, os.PathLike)):
        return media.check_output_path(output, source), media.read_image(source), Path(source).name
    return media.check_output_path(output), np.asarray(source), None


def default_output(source: Path, suffix: str = ".png") -> Path:
    """`photo.jpg` -> `photo.dream.png` beside the input (never the input itself)."""
    return source.with_name(f"{source.stem}{RESULT_TAG}{suffix}")


def render_images(sources: Sequence[str | os.PathLike] | str | os.PathLike, output: str | os.PathLike | None = None,
                  settings: Settings | None = None, *, preset: str | None = None,
                  progress: engine.ProgressFn | None = None, skip_existing: bool = False,
                  on_octave: Callable[[int, int, np.ndarray], None] | None = None, workers: int | None = None,
                  ray: str | None = None, **overrides) -> engine.Result:
    """Dream photos (paths or folders of them) into `output` (a file for one photo, a folder
    for a batch; default beside each photo as NAME.dream.png). settings or preset, then
    keyword overrides named as the CLI's flags (`step=0.02`, `layers=...`). Returns the
    engine's Result; `failed` lists the photos of a batch that could not be dreamed. A single
    photo's error is raised instead. on_octave(photo index, octave, (H, W, 3) uint8 RGB): the
    picture so far after each octave (a preview; the web studio shows it).
    workers, ray: render on a Ray cluster (render/cluster.py): `workers` tasks at once on a local
    cluster, or on the one at `ray` ("auto" or "HOST:PORT"); the result is the same render.
    """
    from ..presets import resolve_for
    from . import cluster

    plan = StillsPlan(sources, output, resolve_for("image", settings, preset, overrides), skip_existing=skip_existing,
                      on_octave=on_octave)
    return cluster.render(plan, workers=workers, ray=ray, progress=progress)


def plan_batch(sources: Sequence[Path], output: Path | None) -> tuple[list[tuple[Path, Path]], bool]:
    """([(photo, result path)], whether this is a batch), checked before any work.

    Folders expand to the images directly inside them, sorted, leaving out earlier results
    (NAME.dream.*) and masks (MASK_NAME). A batch (several photos, or any folder) writes into
    `output` as a folder, or beside each photo; a single photo may also be given a folder as
    `output`.
    """
    from .. import media
    from ..media.paths import require_file, require_image_output
    from ..userfiles import check_length

    for s in sources:  # before any is_dir(), which raises for a name the file system cannot hold
        check_length(s, "input")
    if output is not None:
        check_length(output, "output", OutputError)
    photos: list[Path] = []
    for s in sources:
        if s.is_dir():
            found = sorted(p for p in s.iterdir() if p.is_file() and p.suffix.lower() in media.IMAGE_EXTENSIONS
                           and not p.name.startswith(".") and not p.stem.endswith(RESULT_TAG))
            masks = [p for p in found if MASK_NAME.search(p.stem)]
            if masks:
                log.info("left out of %s: %s (masks, by their names; give one by its path to dream it)", s,
                         ", ".join(p.name for p in masks))
            found = [p for p in found if p not in masks]
            if not found:
                raise InputError(f"{s} holds no images", hint="give photos or a folder of JPEG/PNG/WebP/BMP/TIFF files")
            photos += found
        else:
            photos.append(s)
    batch = len(photos) > 1 or any(s.is_dir() for s in sources)
    folder = None
    if output is not None and (batch or output.is_dir() or media.output_kind(output) == "frames"):
        if media.output_kind(output) != "frames" and not output.is_dir():  # an existing folder is one, named x.png too
            raise OutputError(f"-o {output} names one picture, but {len(photos)} photos were given",
                              hint="give a folder for -o; each result is written into it as NAME.dream.png")
        folder = _make_folder(output)
    jobs = []
    for photo in photos:
        if not batch:
            require_file(photo)  # "does not exist" before anything about its output
        out = folder / default_output(photo).name if folder else output or default_output(photo)
        require_image_output(out)  # -o x.gif: refused now, not after the dream
        # A batch's missing photo is reported (and skipped) when its turn comes.
        jobs.append((photo, media.check_output_path(out, photo) if photo.is_file() else out))
    inputs = {_key(photo): photo for photo, _ in jobs}
    for photo, out in jobs:  # a.png a.dream.png: a.png's result would overwrite the second input
        if _key(out) in inputs and _key(out) != _key(photo):
            raise OutputError(f"the result of {photo} would be written to {out}, which is also a photo of this batch",
                              hint="dream into another folder with -o DIR, or leave the earlier result out")
    clash = [p for p, n in Counter(out for _, out in jobs).items() if n > 1]
    if clash:
        names = [str(photo) for photo, out in jobs if out == clash[0]]
        raise OutputError(f"{' and '.join(names)} would both be written to {clash[0]}",
                          hint="dream them into different folders, or rename one")
    return jobs, batch


def _key(path: Path) -> str:
    """What makes two paths the same file (resolved, case kept)."""
    from ..media.paths import resolved_output

    return str(resolved_output(path))


def _make_folder(folder: Path) -> Path:
    from ..media.paths import output_folder

    return output_folder(folder, hint="give a folder for -o; each result is written into it as NAME.dream.png")


class StillsPlan(engine.Plan):
    """Photos, each dreamed with the same settings; item k is photo k (independent)."""

    mode = "image"
    finish_needs_prepare = False  # the results are written as they come: nothing to load for finish()

    def __init__(self, sources, output, settings: Settings, *, skip_existing: bool = False, on_octave=None):
        if isinstance(sources, (str, os.PathLike)):
            sources = [sources]
        self.settings = settings
        self.jobs, self.batch = plan_batch([Path(s) for s in sources], Path(output) if output is not None else None)
        self.end = len(self.jobs)
        self.output = self.jobs[0][1] if not self.batch else Path(output) if output is not None else Path(".")
        self.skip_existing = skip_existing
        self.on_octave = on_octave
        self.dreamer = None  # loaded after the first photo is read: a bad photo is reported first
        from .. import models
        from ..dream import check_objective

        check_objective(settings.dream, "image")
        models.check_targets(settings.dream.model, settings.dream.targets())  # no TensorFlow for a known model

    def reserve(self, *, work_dir=None) -> None:
        return None  # each result is written atomically on its own: no folder to lock

    def open_store(self, *, work_dir=None, restart: bool = False, reserved=None) -> _ResultFiles:
        return _ResultFiles(self)

    def make(self, todo: list[int], ctx: engine.Context) -> Iterator[engine.Item]:
        from .. import media
        from ..dream import check_size, dream_image, get_dreamer, to_uint8
        from ..mask import for_still

        s = self.settings.dream
        per_photo = s.num_octave * s.iterations
        ctx.total_steps = per_photo * len(todo)
        for n, k in enumerate(todo):
            source, out = self.jobs[k]
            try:
                # Shrunk while decoding: memory follows max_size, not the photo (a 121-megapixel
                # JPEG with max_size 160 never becomes a 1.5 GB float32 array).
                rgb, alpha = media.read_image_alpha(source, max_size=s.max_size)
                check_size(*rgb.shape[:2], s)
                mask = for_still(s.mask, rgb.shape[:2]) if s.mask else None
            except InputError as e:  # this photo only: the others can still be dreamed
                if not self.batch:
                    raise
                yield engine.Item(k, None, error=e, info=e.message + (f"\n{e.hint}" if e.hint else ""))
                continue
            # model and layer errors surface here; the first photo's size informs precision "auto"
            self.dreamer = self.dreamer or get_dreamer(s, size=rgb.shape[:2])  # rgb is already fit to max_size
            label = f"{k + 1}/{len(self.jobs)} {source.name}" if self.batch else source.name

            def on_step(p, n=n, label=label, k=k):
                ctx.step(k, f"{label} octave {p.octave + 1}/{p.num_octave} step {p.iteration}/{p.iterations} "
                            f"loss {p.loss:.2f}", n * per_photo + p.octave * s.iterations + p.iteration)

            octave_done = None if self.on_octave is None else (
                lambda octave, image, k=k: self.on_octave(k, octave, to_uint8(image)))
            result = dream_image(rgb, s, progress=on_step, dreamer=self.dreamer, on_octave=octave_done, mask=mask)
            if alpha is not None:  # the item carries its alpha channel: (H, W, 4), split again by the store
                result = np.dstack([result, alpha])
            ctx.steps = (n + 1) * per_photo
            yield engine.Item(k, result, info=str(out))

    def finish(self, ctx: engine.Context) -> engine.Result:
        failed = tuple((str(self.jobs[k][0]), e) for k, e in ctx.failed)
        return engine.Result(self.output, self.mode, self.end, ctx.rendered, None, ctx.elapsed, failed=failed)


class _ResultFiles:
    """The store of a batch: photo k's result file (written with its alpha channel, if any)."""

    def __init__(self, plan: StillsPlan):
        self.plan = plan

    def __enter__(self) -> _ResultFiles:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pass

    def remove(self) -> None:
        pass  # results are the user's files: nothing to clean up

    def done_indices(self) -> list[int]:
        if not self.plan.skip_existing:
            return []
        return [k for k, (_, out) in enumerate(self.plan.jobs) if out.exists()]

    def has(self, k: int) -> bool:
        return k in self.done_indices()

    def read(self, k: int) -> np.ndarray:
        from .. import media

        return media.read_image(self.plan.jobs[k][1])

    def write(self, k: int, image: np.ndarray) -> Path:
        """image: (H, W, 3) uint8 RGB, or (H, W, 4) with the photo's alpha channel."""
        from .. import media

        alpha = image[..., 3] if image.shape[2] == 4 else None
        return media.write_image(self.plan.jobs[k][1], np.ascontiguousarray(image[..., :3]), alpha=alpha)
