"""The page's vocabulary, the CLI's: modes, the parameters a mode offers (the catalogue's,
params.py), and a job request turned into the keywords of a render function (and back into
the equivalent command line).

A request names things, it never gives a path: a mode, a bundled preset (or a preset's TOML
text, stored in the job's own folder), a model from the registry or one the server was
started with (`--model NAME=PATH.keras`), layers, and parameters of the catalogue. Everything
else is refused with a message naming it. Values are checked by the library itself
(`presets.resolve_for`), so the page, the CLI and the library refuse the same things with the
same words; this module only turns the page's text into the library's types.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .. import numeric, tomltext
from .. import params as catalogue
from ..errors import SettingsError
from ..params import Param
from ..numeric import shown as _short

MAX_TOML = 64 * 1024  # bytes of preset text in a request; the bundled presets are < 1 KB
MAX_TEXT = 400  # characters of a text parameter (checkpoints, vary lines, start/end)
MAX_LAYERS = 32  # layers in one request (a network has at most a few dozen dreamable ones)
MAX_NUMBER_TEXT = 40  # characters of a number typed in a field: more is not a number anyone means
NOT_OFFERED = ("path", "pair", "model", "layers")  # kinds without a form field (model, layers: widgets of their own)


@dataclass(frozen=True)
class Mode:
    name: str  # the CLI command and the render function's mode
    label: str
    about: str  # one line for the page
    accepts: str  # "image" or "video": what the upload must be
    formats: tuple[str, ...]  # output extensions offered, the first is the default
    tag: str  # photo.jpg -> photo.TAG.EXT
    render: str  # the function in dreamvid.render


MODES: dict[str, Mode] = {m.name: m for m in [
    Mode("image", "Still picture", "dream a photo", "image", (".png", ".jpg", ".webp"), "dream", "render_images"),
    Mode("video", "Video", "dream a clip, frame by frame, steady along its motion", "video", (".mp4", ".gif"),
         "dream", "render_video"),
    Mode("zoom", "Zoom", "fly into a photo as it dreams", "image", (".mp4", ".gif"), "zoom", "render_zoom"),
    Mode("timelapse", "Timelapse", "watch the dream grow, step by step", "image", (".mp4", ".gif", ".png"),
         "timelapse", "render_timelapse"),
    Mode("sweep", "Sweep", "one photo, a grid of settings side by side", "image", (".png", ".jpg"), "sweep",
         "render_sweep"),
]}
# The fields a beginner sees first, per mode (the rest are under "Advanced"): layout, not facts.
ESSENTIAL: dict[str, tuple[str, ...]] = {
    "image": ("step", "iterations", "num_octave", "max_size"),
    "video": ("step", "max_size", "cadence", "start", "end"),
    "zoom": ("zoom", "rotate", "duration", "max_size"),
    "timelapse": ("checkpoints", "max_size"),
    "sweep": ("vary", "max_size"),
}
PATH_KEYS = {("dream", "weights"), ("dream", "guide"), ("dream", "mask"), ("sweep", "save_cells")}  # never from a TOML


def params_of(mode: str) -> dict[str, Param]:
    """The parameters the page offers for `mode`: every one of the catalogue's the mode reads,
    except those that name a file on the server (a mask only as motion or still, for a video)
    and the model and layers (widgets of their own)."""
    out = {}
    for name, p in catalogue.of_mode(mode).items():
        if name == "mask" and mode == "video":
            out[name] = Param("choice", "Dream only what moves (motion) or only what stands (still).",
                              choices=p.choices, label=p.label, name=name, section=p.section, none="everywhere")
        elif p.kind not in NOT_OFFERED and not (p.needs and catalogue.of_mode(mode)[p.needs].kind == "path"):
            out[name] = p
    return out


def options_of(mode: str) -> list[dict[str, Any]]:
    """The page's fields of `mode`: the catalogue's facts plus whether the field is essential."""
    return [{**p.to_dict(), "essential": name in ESSENTIAL[mode]} for name, p in params_of(mode).items()]


@dataclass(frozen=True)
class JobSpec:
    """A checked request: what to render and how, in the library's words."""

    mode: str
    preset: str | None  # a bundled preset's name; None: the mode's own (or `toml`)
    toml: str | None  # a preset's text, stored as the job's preset.toml
    overrides: dict[str, Any] = field(default_factory=dict)  # settings keywords, named as the flags
    keywords: dict[str, Any] = field(default_factory=dict)  # render keywords that are not settings (start, end)
    format: str = ".png"
    request: dict[str, Any] = field(default_factory=dict)  # the cleaned request, kept in job.json

    def preset_for(self, job_dir: Path) -> str | None:
        """What the render's `preset=` is: the bundled name, or the job's own preset.toml."""
        return str(job_dir / "preset.toml") if self.toml is not None else self.preset

    def settings(self, job_dir: Path):
        """The validated Settings of this job (what the render will resolve)."""
        from ..presets import resolve_for

        overrides = dict(self.overrides)
        if "vary" in overrides:  # "step=0.01,0.03" lines, as render_sweep reads them
            from ..render.sweep import axes_of

            overrides["vary"] = tuple((a.key, a.values) for a in axes_of(overrides["vary"]))
        return resolve_for(self.mode, None, self.preset_for(job_dir), overrides)

    def kwargs(self, job_dir: Path) -> dict[str, Any]:
        return {"preset": self.preset_for(job_dir), **self.keywords, **self.overrides}

    def command(self, source: Path, output: Path, preset: str | None, model: str | None = None) -> str:
        """The `dreamvid ...` command line that renders the same output. preset: as the
        command names it (the job's preset.toml, relative to its folder); model: as the
        command names it (a server's own model by its file name)."""
        words = ["dreamvid", self.mode, str(source), "-o", str(output)]
        if preset:
            words += ["--preset", preset]
        values = {**self.keywords, **self.overrides}
        if model is not None:
            values["model"] = model
        for key, value in values.items():
            words += flag_words(key, value)
        return shlex.join(words)


def flag_words(key: str, value: Any) -> list[str]:
    """One keyword as the CLI's flag words: layers=[(n, w)] -> --layer n:w ...; booleans as
    their --x/--no-x pair; checkpoints as 40,80; vary as one --vary per axis."""
    if key == "layers":
        return [w for name, weight in value for w in ("--layer", f"{name}:{weight:g}")]
    if key == "classes":
        return [w for index, weight in value for w in ("--class", f"{index}:{weight:g}")]
    if key == "vary":
        return [w for axis in value for w in ("--vary", axis)]
    p = next((p for p in catalogue.catalogue().values() if p.name == key), None)
    if p is not None and p.kind == "bool":
        return [p.cli_flags()[0].split("/")[0 if value else 1]]
    if key == "checkpoints":
        value = ",".join(str(v) for v in value)
    return ["--" + key.replace("_", "-"), str(value)]


def parse_request(body: Any, models: Mapping[str, str]) -> JobSpec:
    """A job request (decoded JSON) -> JobSpec, or SettingsError naming what is wrong.

    body: {"mode", "preset"?, "toml"?, "model"?, "layers"? {name: weight}, "params"? {name: value},
    "format"?}. models: the names a request may choose -> the model the library loads."""
    if not isinstance(body, Mapping):
        raise SettingsError("the request must be a JSON object", hint=None)
    unknown = set(body) - {"upload", "mode", "preset", "toml", "model", "layers", "params", "format"}
    if unknown:
        raise SettingsError(f"unknown field {sorted(map(str, unknown))[0]!r} in the request", hint=None)
    mode = body.get("mode")
    if not isinstance(mode, str) or mode not in MODES:
        raise SettingsError(f"unknown mode {_short(mode)}; modes: {', '.join(MODES)}", hint=None, key="mode")
    fmt = body.get("format") or MODES[mode].formats[0]
    if not isinstance(fmt, str) or fmt not in MODES[mode].formats:
        raise SettingsError(f"a {mode} is written as {', '.join(MODES[mode].formats)} (got {_short(fmt)})", hint=None,
                            key="format")
    preset = _preset(body.get("preset"))
    toml, toml_model = _toml(body.get("toml"), models)
    if preset and toml is not None:
        raise SettingsError("give a preset or preset TOML, not both", hint="the TOML is a whole preset", key="toml")
    overrides, keywords = _params(mode, body.get("params") or {})
    if toml_model is not None:
        overrides["model"] = toml_model
    if body.get("model"):
        overrides["model"] = _model(body["model"], models)
    if body.get("layers"):
        overrides["layers"] = _layers(body["layers"])
    request = {"mode": mode, "preset": preset, "toml": toml is not None, "model": body.get("model") or None,
               "layers": dict(overrides["layers"]) if "layers" in overrides else None,
               "params": {k: v for k, v in dict(body.get("params") or {}).items() if v is not None and v != ""},
               "format": fmt}
    return JobSpec(mode, preset, toml, overrides, keywords, fmt, request)


def _preset(name: Any) -> str | None:
    from .. import presets

    if not name:
        return None
    if not isinstance(name, str) or name not in presets.available():
        raise SettingsError(f"unknown preset {_short(name)}; presets: {', '.join(presets.available())}", hint=None,
                            key="preset")
    return name


def _toml(text: Any, models: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(preset text, the model it names as the library loads it, or None): parsed, bounded and
    key-checked; its model must be one a request may choose (by name, by the file name of a
    server's own model, or as its path), and it may name no files."""
    from .. import presets

    if not text:
        return None, None
    if not isinstance(text, str) or len(text.encode(errors="replace")) > MAX_TOML:
        raise SettingsError(f"the preset TOML must be text of at most {MAX_TOML // 1024} KB", hint=None, key="toml")
    data = loads_toml(text)
    presets.check_keys(data, "the preset TOML")
    for section, key in PATH_KEYS:
        value = data.get(section, {}).get(key)
        if value is not None and not (key == "mask" and value in catalogue.get("dream", "mask").choices):
            raise SettingsError(f"{section}.{key} names a file on the server, which a request may not do",
                                hint="remove it from the TOML", key="toml")
    model = data.get("dream", {}).get("model")
    if model is None:
        return text, None
    by_file = {Path(path).name: path for path in models.values() if path.endswith(".keras")}
    if isinstance(model, str) and (model in models or model in by_file or model in models.values()):
        return text, models.get(model) or by_file.get(model) or model
    raise SettingsError(f"unknown model {_short(model)} in the preset TOML; models: {', '.join(models)}", hint=None,
                        key="toml")


def loads_toml(text: str) -> dict[str, Any]:
    """TOML text -> data through the shared bounded reader (tomltext.py: nesting refused before
    Python's recursive parser sees it, numbers bounded), or SettingsError beside the TOML field."""
    try:
        return tomltext.loads(text, "the preset TOML", hint="copy it from a result, or a preset")
    except SettingsError as e:
        e.key = "toml"
        raise


def _model(name: Any, models: Mapping[str, str]) -> str:
    if not isinstance(name, str) or name not in models:
        raise SettingsError(f"unknown model {_short(name)}; models: {', '.join(models)}", hint=None, key="model")
    return models[name]


def _layers(value: Any) -> list[tuple[str, float]]:
    if not isinstance(value, Mapping) or len(value) > MAX_LAYERS:
        raise SettingsError(f"layers must be {{name: weight}} with at most {MAX_LAYERS} layers", hint=None,
                            key="layers")
    return [(str(name)[:200], number(weight, f"layer weight for {str(name)[:40]!r}", "float", "layers"))
            for name, weight in value.items()]


def _params(mode: str, values: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings overrides, render keywords) from {name: value}; empty values are left out."""
    if not isinstance(values, Mapping):
        raise SettingsError("params must be {name: value}", hint=None)
    known = params_of(mode)
    overrides, keywords = {}, {}
    for name, value in values.items():
        if name not in known:
            raise SettingsError(f"{_short(name)} is not a parameter of {mode}; parameters: {', '.join(known)}",
                                hint=None)
        if value is None or value == "":
            continue
        p = known[name]
        (keywords if p.section == "render" else overrides)[name] = _value(p, value, mode)
    return overrides, keywords


def _value(p: Param, value: Any, mode: str) -> Any:
    """A form value as the library's type (the library checks the range itself)."""
    if p.kind in ("int", "float"):
        if mode in p.expression and isinstance(value, str) and not _looks_numeric(value):
            return _text(p, value)  # an expression of time (video, zoom): the library parses it
        return number(value, p.name, p.kind)
    if p.kind == "bool":
        if value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            raise SettingsError(f"{p.name} must be true or false (got {_short(value)})", hint=None, key=p.name)
        return value
    if not isinstance(value, str):
        raise SettingsError(f"{p.name} must be text (got {_short(value)})", hint=p.help, key=p.name)
    if p.kind == "choice" and value not in p.choices:
        raise SettingsError(f"{p.name} must be one of {', '.join(p.choices)} (got {_short(value)})", hint=None,
                            key=p.name)
    return _parsed(p.name, _text(p, value))


def _text(p: Param, value: str) -> str:
    if len(value) > MAX_TEXT:
        raise SettingsError(f"{p.name} must be at most {MAX_TEXT} characters (got {len(value)})", hint=None,
                            key=p.name)
    return value.strip()


def _parsed(name: str, value: str) -> Any:
    """Text parameters in the library's form: checkpoints -> a tuple, vary -> one axis a line."""
    try:
        if name == "checkpoints":
            from ..render.timelapse import parse_checkpoints

            return parse_checkpoints(value)
        if name == "vary":
            from ..render.sweep import parse_vary

            axes = [line.strip() for line in value.splitlines() if line.strip()]
            for axis in axes:
                parse_vary(axis)  # a bad axis is refused now, in the library's words
            return axes
        if name in ("start", "end"):  # checked now (syntax, length), where the CLI checks them when it plans
            from ..render.video import frame_index

            frame_index(value, 1, name)
            return value
        if name == "classes":
            from ..settings import parse_classes

            return parse_classes([line.strip() for line in value.splitlines() if line.strip()])
    except SettingsError as e:
        e.key = e.key or name
        raise
    return value


NUMBER_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _looks_numeric(text: str) -> bool:
    return bool(NUMBER_RE.fullmatch(text.strip()))


def number(value: Any, name: str, kind: str, key: str | None = None) -> int | float:
    """A number from a field, a JSON number or text, read by the shared bounded parser
    (numeric.py: "1e400", "inf", "nan" and a 5000-digit integer are refused with the setting's
    name, never an OverflowError), and 1.5 refused in a whole-number field; its range is the
    library's to check."""
    key = key or name
    whole = kind == "int"
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise SettingsError("not a number", hint=None)
        value = numeric.number(value.strip(), name) if isinstance(value, str) else value
        x = numeric.real(value, name)
        if whole and not float(x).is_integer():
            raise SettingsError("not whole", hint=None)
    except SettingsError:
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > numeric.MAX_INT_BITS:
            raise SettingsError(f"{name} is too large (got {_short(value)})", hint=None, key=key) from None
        what = "a whole number" if whole else "a finite number"
        raise SettingsError(f"{name} must be {what} (got {_short(value)})", hint=None, key=key) from None
    if whole:
        return value if isinstance(value, int) else int(x)
    return x


def form_values(mode: str, preset: str | None) -> dict[str, Any]:
    """The value of each of the mode's parameters under `preset` (None: the mode's own), as
    the form shows them: what a field left empty will be."""
    from ..presets import resolve_for

    s = resolve_for(mode, None, preset, {})
    out = {}
    for name, p in params_of(mode).items():
        if p.section == "render":
            continue
        value = getattr(getattr(s, p.section), name)
        if name == "checkpoints" and value is not None:
            value = ",".join(str(v) for v in value)
        elif name == "vary":
            value = "\n".join(f"{k}={','.join(str(v) for v in vs)}" for k, vs in value)
        elif name == "classes":
            value = "\n".join(f"{k}:{w:g}" for k, w in value)
        out[name] = value
    out["model"], out["layers"] = s.dream.model, dict(s.dream.layers)
    return out


SHORT_LIST = 8  # layers offered first; the model's full list stays one click away
DEPTH_WORDS = ((0.25, "lines and fine texture"), (0.5, "patterns and swirls"), (0.8, "eyes, fur and creature parts"),
               (1.01, "whole objects, abstract"))  # what DeepDream on a layer at that depth tends to grow


def short_layers(names: list[str], default: set[str]) -> dict[str, str]:
    """{layer: words} for the few layers worth offering first, shallow to deep: the last layer
    of each stage of the network (the name up to its first number: block4 of block4c_out; a
    pooling layer only where the stage has nothing else), without the stem, at most SHORT_LIST
    spread over the depth, and the model's default layers; the words say what a layer at that
    depth tends to dream."""
    stages: dict[str, str] = {}
    for name in names:
        stage = re.match(r"\D*\d*", name).group(0) or name
        if "pool" not in name or stage not in stages:
            stages[stage] = name
    picked = list(stages.values())
    if len(picked) > 2:
        picked = picked[1:]  # the stem: colour noise more than a dream
    if len(picked) > SHORT_LIST:
        picked = [picked[round(k * (len(picked) - 1) / (SHORT_LIST - 1))] for k in range(SHORT_LIST)]
    chosen = [n for n in names if n in set(picked) | default]
    out = {}
    for k, name in enumerate(chosen):
        depth = k / max(1, len(chosen) - 1)
        out[name] = next(words for limit, words in DEPTH_WORDS if depth < limit)
    return out
