"""`render_sweep`: one image dreamed over a grid of settings, drawn as one labelled picture.

    render_sweep("cat.jpg", "grid.png", vary=["step=0.01,0.06", "num_octave=3,6,10"])

The first axis runs along the columns; further axes multiply into the rows (a row label
then names every value that row holds). Any DreamSettings field can be an axis, `model`
and `layers` included. Cells that share a model and layers share one compiled Dreamer
(dream.get_dreamer), so a step x num_octave sweep traces the network once.

Everything is checked before the first step: each axis, each cell's settings, every model
and layer named (the networks are loaded up front), and the size of the whole job. A grid
over MAX_CELLS cells, or one that would take more than MAX_WORK megapixel-steps, is refused
with the numbers, rather than discovered an hour in.

Cells are the items of the render engine (engine.py): each finished cell goes to a work
folder beside the output (grid.png.dreamvid-work/, cell k as frame k, with render.json): an
interrupted or failed sweep run again dreams only the missing cells; changed axes or
settings are refused unless `restart`. The grid is drawn from the folder, which goes once
the grid is written. The settings are the `sweep` section of settings.Settings.
"""
from __future__ import annotations

import difflib
import itertools
import logging
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from ..errors import OutputError, SettingsError
from ..numeric import literal, number, shown
from ..settings import DreamSettings, Settings, parse_classes, parse_layers, refuse_layer_expressions, validate
from . import engine, sheet, workdir
from .still import load_still

log = logging.getLogger("dreamvid")

MAX_CELLS = 64  # an 8 x 8 grid; past that the pictures are too small to compare anyway
# Megapixel-steps: pixels x gradient steps summed over cells and octaves. 2 CPU cores do
# about 1.1 per second with efficientnet_lite0 (a 320x240 step takes ~0.07 s), so the limit is
# about 13 hours there (a GPU is many times faster, but past this the grid is a typo anyway).
MAX_WORK = 50_000
ALIASES = {"layer": "layers", "class": "classes"}  # --vary layer=... reads naturally too
CHANNEL = "channel"  # --vary channel=0-15: channels of the one --layer (its entries NAME/0 .. NAME/15)
NONE_WORDS = ("none", "off")  # max_loss=none: never stop early; max_size=none: keep the size
CAPTION_KEYS = ("model", "layers", "step", "num_octave", "octave_scale", "iterations", "max_loss",
                "jitter", "seed")  # the fixed settings worth printing (tile and precision do not change the look)


@dataclass(frozen=True)
class Axis:
    """One swept setting: its DreamSettings field name and the values it takes."""

    key: str
    values: tuple

    def label(self, k: int) -> str:
        return f"{self.key} = {sheet.value_text(self.key, self.values[k])}"


def sweepable() -> list[str]:
    """The setting names an axis can vary (every DreamSettings field, and `channel`)."""
    return [f.name for f in fields(DreamSettings)] + [CHANNEL]


def parse_vary(spec: str) -> Axis:
    """'step=0.01,0.06' -> Axis("step", (0.01, 0.06)); layers values join layers with '+':
    'layers=block4c_out,block5c_out+block6d_out:0.5'. SettingsError for a missing '=',
    an unknown key, no values or a value of the wrong type."""
    key, sep, rest = spec.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SettingsError(f"--vary {shown(spec)} is not KEY=VALUE,VALUE,...",
                            hint="e.g. --vary step=0.01,0.06")
    values = [v.strip() for v in rest.split(",")]
    _check_count(key, len(values))  # before anything is parsed or expanded
    if ALIASES.get(key, key) == CHANNEL:  # ranges: channel=0-7,12
        values = [str(c) for v in values for c in _channel_range(v)]
    return make_axis(key, values)


def _channel_range(text: str) -> list:
    a, sep, b = text.partition("-")
    if sep and all(x.strip().isascii() and x.strip().isdigit() for x in (a, b)):
        lo, hi = number(a, "--vary channel"), number(b, "--vary channel")
        if hi < lo or hi - lo >= MAX_CELLS:
            raise SettingsError(f"--vary channel={text}: a range goes up, by at most {MAX_CELLS} channels",
                                hint="e.g. --vary channel=0-15")
        return list(range(lo, hi + 1))
    return [text]


def make_axis(key: str, values: Sequence[Any]) -> Axis:
    """An Axis from a key and values (strings are parsed, other values taken as they are)."""
    key = ALIASES.get(key, key)
    known = sweepable()
    if key not in known:
        close = difflib.get_close_matches(key, known, n=1)
        raise SettingsError(f"cannot vary {shown(key)}: it is not a setting",
                            hint=(f"did you mean {close[0]!r}? " if close else "") + f"settings: {', '.join(known)}")
    if isinstance(values, (str, bytes)) or not [v for v in values if v != ""]:
        raise SettingsError(f"--vary {key} has no values", hint=f"give at least one, e.g. --vary {_example(key)}")
    if any(v == "" for v in values):
        raise SettingsError(f"--vary {key} has an empty value", hint=f"separate values with single commas, "
                                                                     f"e.g. --vary {_example(key)}")
    _check_count(key, len(values))
    parsed = tuple(_value(key, v) for v in values)
    labels = Counter(sheet.value_text(key, v) for v in parsed)
    twice = next((t for t, n in labels.items() if n > 1), None)  # one pass: no count() per value
    if twice is not None:
        raise SettingsError(f"--vary {key} has the value {twice} twice (as written in the grid)",
                            hint="give each value once; values that differ only past the printed digits look alike")
    return Axis(key, parsed)


def _check_count(key: str, n: int) -> None:
    """SettingsError at once for an axis of more values than a whole sweep may have cells."""
    if n > MAX_CELLS:
        raise SettingsError(f"--vary {key} has {n} values, more than the {MAX_CELLS} cells a sweep may have",
                            hint="use fewer values, or split it into several sweeps")


def _example(key: str) -> str:
    return {"layers": "layers=block4c_out,block6d_out", "model": "model=efficientnet_lite0,vgg16_hed",
            "step": "step=0.01,0.06"}.get(key, f"{key}=V1,V2")


def _layers(v: Any):
    """parse_layers, numbers only: a sweep cell is a still, with no time for an expression."""
    layers = parse_layers(v)
    refuse_layer_expressions(layers, "sweep")
    return layers


def _value(key: str, v: Any) -> Any:
    """A value for field `key`, parsed from text if it is text."""
    if not isinstance(v, str):
        return _layers(v) if key == "layers" else parse_classes(v) if key == "classes" else v
    if key == CHANNEL:
        if not (v.isascii() and v.isdigit()):
            raise SettingsError(f"--vary channel: {shown(v)} is not a channel number", hint="e.g. --vary channel=0-15")
        return number(v, "--vary channel")
    default = getattr(DreamSettings(), key)
    if key == "layers":
        return _layers([part for part in v.split("+") if part])
    if key == "classes":
        return parse_classes([part for part in v.split("+") if part])
    if v.lower() in NONE_WORDS and key in ("max_loss", "max_size", "weights"):
        return None
    kind = type(default) if default is not None else {"max_loss": float, "max_size": int}.get(key, str)
    if kind in (int, float):
        parsed = literal(v, f"--vary {key}")  # bounded: no 5000-digit int()
        if parsed is None or (kind is int and not isinstance(parsed, int)):
            what = "a whole number" if kind is int else "a number"
            raise SettingsError(f"--vary {key}: {shown(v)} is not {what}", hint=f"e.g. --vary {_example(key)}")
        return kind(parsed)
    return v


def cell_settings(base: DreamSettings, axes: Sequence[Axis]) -> list[list[DreamSettings]]:
    """[row][column] settings: columns from axes[0], rows from the product of the others.
    Validated (SettingsError naming the cell's value); limits checked."""
    if not axes:
        raise SettingsError("a sweep needs at least one axis", hint="e.g. --vary step=0.01,0.06")
    keys = [a.key for a in axes]
    for k in keys:
        if keys.count(k) > 1:
            raise SettingsError(f"{k} is varied twice", hint=f"put all its values in one --vary {k}=...")
    n_cells = math.prod(len(a.values) for a in axes)
    if n_cells > MAX_CELLS:
        shape = " x ".join(str(len(a.values)) for a in axes)
        raise SettingsError(f"the sweep has {n_cells} cells ({shape}), more than the limit of {MAX_CELLS}",
                            hint="use fewer values per --vary, or split it into several sweeps")
    rows = []
    for row_values in itertools.product(*(range(len(a.values)) for a in axes[1:])):
        row = []
        for c in range(len(axes[0].values)):
            picks = [(axes[0], c), *zip(axes[1:], row_values)]
            values = {a.key: a.values[k] for a, k in picks}
            if CHANNEL in values:
                layer, weight = _channel_layer(base)
                values["layers"] = ((f"{layer}/{values.pop(CHANNEL)}", weight),)
            cs = replace(base, **values)
            try:
                row.append(validate(cs))
            except SettingsError as e:
                where = ", ".join(a.label(k) for a, k in picks)
                raise SettingsError(f"sweep cell {where}: {e.message}", hint=e.hint) from None
        rows.append(row)
    return rows


def _channel_layer(base: DreamSettings) -> tuple[str, float]:
    """The layer whose channels --vary channel sweeps: the one --layer, or the model's default."""
    from ..models import get_spec

    layers = base.layers or get_spec(base.model).default_layers
    if len(layers) != 1 or "/" in layers[0][0]:
        raise SettingsError("--vary channel sweeps the channels of one layer, and there are "
                            f"{len(layers)} ({', '.join(n for n, _ in layers) or 'none'})",
                            hint="give one --layer NAME, e.g. --layer block5c_out --vary channel=0-15")
    return layers[0]


def row_labels(axes: Sequence[Axis]) -> list[str] | None:
    if len(axes) < 2:
        return None
    return [" · ".join(a.label(k) for a, k in zip(axes[1:], ks))
            for ks in itertools.product(*(range(len(a.values)) for a in axes[1:]))]


def work(image_size: tuple[int, int], cells: Sequence[Sequence[DreamSettings]]) -> float:
    """Megapixel-steps of a sweep on an (H, W) image (octaves summed, early stops ignored)."""
    total = 0.0
    for cs in itertools.chain.from_iterable(cells):
        h, w = _fitted(image_size, cs.max_size)
        pyramid = sum(cs.octave_scale ** (-2 * i) for i in range(cs.num_octave))
        total += h * w / 1e6 * pyramid * cs.iterations
    return total


def _fitted(size: tuple[int, int], max_size: int | None) -> tuple[int, int]:
    h, w = size
    if not max_size or max(h, w) <= max_size:
        return h, w
    scale = max_size / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def axes_of(vary: Any) -> list[Axis]:
    """Axes from "key=v1,v2" strings, Axis objects, (key, values) pairs or a {key: values} dict."""
    if isinstance(vary, Mapping):
        vary = list(vary.items())
    if isinstance(vary, (str, Axis)):
        vary = [vary]
    return [parse_vary(a) if isinstance(a, str) else a if isinstance(a, Axis) else make_axis(*a) for a in vary]


def render_sweep(source, output: str | os.PathLike, settings: Settings | None = None, *,
                 preset: str | None = None, progress: engine.ProgressFn | None = None, restart: bool = False,
                 work_dir: str | os.PathLike | None = None, workers: int | None = None, ray: str | None = None,
                 **overrides) -> engine.Result:
    """Dream `source` (an image path, or (H, W, 3) uint8 RGB) once per cell and draw the grid.

    Keyword overrides are named as the CLI's flags: `vary` (axes as "key=v1,v2" strings,
    Axis objects, (key, values) pairs or {"step": [0.01, 0.02]}; the first runs along the
    columns), `save_cells` (a folder that receives every cell at full size, named by its
    values: step=0.01_num_octave=3.png), `cell_size` (px, each picture in the grid), and every
    dream setting. output: an image file (.png, .jpg, .webp): the labelled grid. Finished
    cells wait in `work_dir` (default OUTPUT.dreamvid-work) until the grid is written, so a
    second call after an interruption dreams only the missing ones; `restart` discards cells
    of a different sweep there.
    workers, ray: render on a Ray cluster (render/cluster.py): `workers` tasks at once on a local
    cluster, or on the one at `ray` ("auto" or "HOST:PORT"); the result is the same render.
    """
    from ..presets import resolve_for
    from . import cluster

    if "vary" in overrides:
        overrides["vary"] = tuple((a.key, a.values) for a in axes_of(overrides["vary"]))
    plan = SweepPlan(source, output, resolve_for("sweep", settings, preset, overrides))
    return cluster.render(plan, workers=workers, ray=ray, progress=progress, work_dir=work_dir, restart=restart)


class SweepPlan(engine.Plan):
    """The cells of a grid, row by row; each is an independent dream of the same picture."""

    mode = "sweep"

    def __init__(self, source, output, settings: Settings):
        from .. import media

        self.axes = axes = axes_of(settings.sweep.vary)
        self.output, self.image, self.src_name = load_still(source, output)
        if media.output_kind(self.output) != "image":
            raise OutputError(f"a sweep is one picture, not a {media.output_kind(self.output)} ({self.output.name})",
                              hint="write it as .png or .jpg; --save-cells DIR keeps every cell as well")
        self.settings, self.base = settings, settings.dream
        self.grid = cell_settings(self.base, axes)
        amount = work(self.image.shape[:2], self.grid)
        if amount > MAX_WORK:
            raise SettingsError(f"the sweep would take about {amount:,.0f} megapixel-steps, more than the limit of "
                                f"{MAX_WORK:,} (about half a day on a 2-core CPU)",
                                hint="use --max-size, fewer --iterations or fewer values")
        self.amount = amount
        self.cells = list(itertools.chain.from_iterable(self.grid))
        from .. import models

        for cs in self.cells:  # every cell's model and entries (no TensorFlow for a known model)
            models.check_targets(cs.model, cs.targets())
        self.picks = [[(axes[0], c), *zip(axes[1:], _row_index(axes, r))]
                      for r, row in enumerate(self.grid) for c in range(len(row))]
        self.end, self.seed = len(self.cells), self.base.seed
        self.cells_dir = _cells_dir(settings.sweep.save_cells)
        self.fingerprint = workdir.still_fingerprint(source, self.image)

    def prepare(self) -> None:
        from ..dream import fit_max_size, get_dreamer, octave_sizes

        source_f = self.image.astype(np.float32)
        self.sizes = {cs.max_size: fit_max_size(source_f, cs.max_size) for cs in self.cells}
        from ..dream import check_objective

        for cs in self.cells:
            check_objective(cs, "sweep", self._size(cs))
        self.dreamers = {self._key(cs): get_dreamer(cs, size=self._size(cs)) for cs in self.cells}  # all load first
        self.steps_of = [cs.iterations * len(octave_sizes(*self.sizes[cs.max_size].shape[:2], cs.num_octave,
                                                          cs.octave_scale, self.dreamers[self._key(cs)].min_size))
                         for cs in self.cells]
        log.info("sweep: %d cells, %d steps, about %.0f megapixel-steps", len(self.cells), sum(self.steps_of),
                 self.amount)

    def _size(self, cs: DreamSettings) -> tuple[int, int]:
        return self.sizes[cs.max_size].shape[:2]

    def _key(self, cs: DreamSettings) -> tuple:
        """The compiled network of cell settings `cs` (dream.network_key at the cell's size, and its objective)."""
        from ..dream import network_key, objective_for

        return network_key(cs, self._size(cs)), objective_for(cs)

    def resume_key(self) -> dict[str, Any]:
        return resume_key(self.base, self.axes)

    def source(self) -> dict[str, Any]:
        return self.fingerprint

    def make(self, todo: list[int], ctx: engine.Context) -> Iterator[engine.Item]:
        from ..dream import to_uint8
        from ..mask import for_still

        ctx.total_steps = sum(self.steps_of)
        ctx.steps = sum(n for k, n in enumerate(self.steps_of) if k not in todo)
        for k in todo:
            cs, where = self.cells[k], ", ".join(a.label(i) for a, i in self.picks[k])
            base = ctx.steps

            def on_step(p, k=k, where=where):
                ctx.step(k, f"cell {k + 1}/{self.end} ({where}), octave {p.octave + 1}/{p.num_octave}, "
                            f"loss {p.loss:.2f}")

            mask = for_still(cs.mask, self._size(cs)) if cs.mask else None
            picture = to_uint8(self.dreamers[self._key(cs)].dream(self.sizes[cs.max_size], cs, progress=on_step,
                                                                  mask=mask))
            ctx.steps = base + self.steps_of[k]  # early stops (max_loss) skip steps: keep the count honest
            yield engine.Item(k, picture, info=f"cell {k + 1}/{self.end} ({where}) done")

    def finish(self, ctx: engine.Context) -> engine.Result:
        from .. import media

        store, cell_size, axes = ctx.store, self.settings.sweep.cell_size, self.axes
        thumbs: list[list[np.ndarray]] = []
        k = 0
        for row in self.grid:
            thumbs.append([])
            for _ in row:
                picture = store.read(k)
                if self.cells_dir is not None:
                    media.write_image(self.cells_dir / cell_name(self.picks[k]), picture)
                thumbs[-1].append(sheet.fit(picture, cell_size))
                k += 1
        base = self.base
        h, w = self.sizes[base.max_size].shape[:2] if base.max_size in self.sizes \
            else _fitted(self.image.shape[:2], base.max_size)
        varied = {a.key for a in axes}
        shown = self.dreamers.get(self._key(base)) if base.max_size in self.sizes else None
        layers = tuple(shown.model.layers) if shown is not None else base.layers
        fixed = sheet.settings_text(replace(base, layers=layers), [k for k in CAPTION_KEYS if k not in varied])
        caption = fixed + (f" · {self.src_name}" if self.src_name else "") + f" · {w}x{h}"
        drawn = sheet.grid(thumbs, columns=[axes[0].label(k) for k in range(len(axes[0].values))],
                           rows=row_labels(axes), caption=[caption], cell_size=None)
        media.write_image(self.output, drawn.image)
        store.remove()  # the grid is written: the cells are in it (and in --save-cells when asked)
        return engine.Result(self.output, self.mode, self.end, ctx.rendered, ctx.resumed_from, ctx.elapsed,
                             size=(w, h))


def resume_key(base: DreamSettings, axes: Sequence[Axis]) -> dict[str, Any]:
    """Everything a sweep's cells depend on, for its work folder's manifest (cell_size and
    save_cells only change how the cells are shown, so they are left out)."""
    from ..dream import input_files

    return {"base": {**Settings(base).to_dict()["dream"], **input_files(base)},
            "axes": [[a.key, [_plain(v) for v in a.values]] for a in axes]}


def _plain(v: Any) -> Any:
    """An axis value as JSON: layers ((name, weight), ...) as [[name, weight], ...]."""
    return [list(x) if isinstance(x, tuple) else x for x in v] if isinstance(v, tuple) else v


def _row_index(axes: Sequence[Axis], r: int) -> tuple[int, ...]:
    return list(itertools.product(*(range(len(a.values)) for a in axes[1:])))[r]


def cell_name(picks) -> str:
    """A file name from a cell's values: step=0.01_num_octave=3.png (safe characters only)."""
    text = "_".join(f"{a.key}={sheet.value_text(a.key, a.values[k])}" for a, k in picks)
    return re.sub(r"[^A-Za-z0-9._=+-]", "-", text) + ".png"


def _cells_dir(save_cells) -> Path | None:
    from ..media.paths import output_folder

    if save_cells is None:
        return None
    return output_folder(save_cells, "--save-cells", hint="give a folder for the cell pictures")
