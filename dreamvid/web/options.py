"""The page's vocabulary, the CLI's: modes, parameters with their ranges, and a job request
turned into the keywords of a render function (and back into the equivalent command line).

A request names things, it never gives a path: a mode, a bundled preset (or a preset's TOML
text, stored in the job's own folder), a model from the registry or one the server was
started with (`--model NAME=PATH.keras`), layers, and parameters from PARAMS. Everything
else is refused with a message naming it. Values are checked by the library itself
(`presets.resolve_for`), so the page, the CLI and the library refuse the same things with the
same words.
"""
from __future__ import annotations

import dataclasses
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import SettingsError
from ..settings import (BACKENDS, FLOW_METHODS, FLOW_QUALITIES, INTERPOLATIONS, MASK_KINDS, MAX_ITERATIONS,
                        MAX_LAPNORM, MAX_OCTAVES, MAX_TRANSFORM, MIN_TILE, PRECISIONS)

MAX_TOML = 64 * 1024  # bytes of preset text in a request; the bundled presets are < 1 KB
MAX_TEXT = 400  # characters of a text parameter (checkpoints, vary lines, start/end)
MAX_LAYERS = 32  # layers in one request (a network has at most a few dozen dreamable ones)


@dataclass(frozen=True)
class Mode:
    name: str  # the CLI command and the render function's mode
    label: str
    accepts: str  # "image" or "video": what the upload must be
    formats: tuple[str, ...]  # output extensions offered, the first is the default
    tag: str  # photo.jpg -> photo.TAG.EXT
    render: str  # the function in dreamvid.render


MODES: dict[str, Mode] = {m.name: m for m in [
    Mode("image", "Still", "image", (".png", ".jpg", ".webp"), "dream", "render_images"),
    Mode("video", "Video", "video", (".mp4", ".gif"), "dream", "render_video"),
    Mode("zoom", "Zoom", "image", (".mp4", ".gif"), "zoom", "render_zoom"),
    Mode("timelapse", "Timelapse", "image", (".mp4", ".gif", ".png"), "timelapse", "render_timelapse"),
    Mode("sweep", "Sweep", "image", (".png", ".jpg"), "sweep", "render_sweep"),
]}
ALL = tuple(MODES)
CLIPS = ("video", "zoom")


@dataclass(frozen=True)
class Param:
    """One parameter of the form: its name is the setting, the keyword and the TOML key
    (the CLI flag is --name-with-dashes). section "render": a keyword of the render
    function, not a setting (video's start/end). min/max are the library's own limits."""

    name: str
    kind: str  # "float", "int", "text", "bool", "choice"
    help: str
    modes: tuple[str, ...] = ALL
    section: str = "dream"
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["flag"] = "--" + self.name.replace("_", "-")
        return d


PARAMS: tuple[Param, ...] = (
    Param("step", "float", "gradient-ascent step size: 0.01 subtle .. 0.05 strong", min=0.0001, max=1.0),
    Param("num_octave", "int", "number of scales dreamed at", min=1, max=MAX_OCTAVES),
    Param("octave_scale", "float", "size ratio between octaves (> 1)", min=1.01, max=4.0),
    Param("iterations", "int", "gradient-ascent steps per octave", min=0, max=MAX_ITERATIONS),
    Param("max_loss", "float", "stop an octave once the loss passes this", min=0.01, max=1000.0),
    Param("jitter", "int", "random roll in px before each step", min=0, max=4096),
    Param("seed", "int", "random seed of the jitter", min=0, max=2**32 - 1),
    Param("max_size", "int", "downscale so the longest side is at most this (px)", min=32, max=1 << 16),
    Param("tile", "int", "tile size in px for large images (bounds memory)", min=MIN_TILE, max=1 << 16),
    Param("precision", "choice", "float32, or mixed (float16 compute on a GPU)", choices=PRECISIONS),
    Param("backend", "choice", "what runs the dream: auto (the faster here), tensorflow, or torch (CUDA, Apple MPS "
          "or the CPU)", choices=BACKENDS),
    Param("classes", "text", "ImageNet classes to dream, one a line: golden retriever, pug:0.5, 207 "
          "(a model with its classifier)"),
    Param("smooth", "float", "blur of each step's gradient, % of the shorter side: calmer, larger shapes",
          min=0.0, max=10.0),
    Param("lapnorm", "int", "Laplacian-pyramid levels of gradient normalisation: larger shapes (0: off)",
          min=0, max=MAX_LAPNORM),
    Param("decorrelate", "float", "0..1: the step in ImageNet's decorrelated colours: less rainbow noise",
          min=0.0, max=1.0),
    Param("transform", "float", "random scale and rotation each step, times this: creatures, not pixel patterns "
          "(0: off)", min=0.0, max=MAX_TRANSFORM),
    Param("mask", "choice", "dream only what moves (motion) or only what stands (still)", ("video",),
          choices=MASK_KINDS),
    # video
    Param("flow", "choice", "optical flow; none = independent frames (flickers)", ("video",), "video",
          choices=FLOW_METHODS),
    Param("flow_quality", "choice", "DIS preset", ("video",), "video", choices=FLOW_QUALITIES),
    Param("blend", "float", "how much of the carried dream survives, 0..1", ("video",), "video", 0.0, 1.0),
    Param("start", "text", "first frame: seconds (2.5, 1:05) or a frame index (f30)", ("video",), "render"),
    Param("end", "text", "stop before this frame: seconds or f<index>", ("video",), "render"),
    Param("scene_cuts", "bool", "restart the dream at hard cuts", ("video",), "video"),
    Param("keep_audio", "bool", "copy the source's audio", ("video",), "video"),
    # zoom
    Param("zoom", "float", "zoom factor per second: 1 still, > 1 in, < 1 out", ("zoom",), "zoom", 0.01, 100.0),
    Param("rotate", "float", "degrees per second, + counter-clockwise", ("zoom",), "zoom", -360.0, 360.0),
    Param("duration", "float", "length in seconds", ("zoom",), "zoom", 0.04, 3600.0),
    Param("fps", "text", "frames per second: 24, 30000/1001", ("zoom",), "zoom"),
    Param("interpolation", "choice", "warp kernel", ("zoom",), "zoom", choices=INTERPOLATIONS),
    Param("color_hold", "float", "0..1: how firmly colours are held to the first frame's", ("zoom",), "zoom",
          0.0, 1.0),
    Param("frame_iterations", "int", "iterations per octave of each frame after the first", CLIPS, "video",
          0, MAX_ITERATIONS),
    Param("frame_num_octave", "int", "octaves of each frame after the first", CLIPS, "video", 1, MAX_OCTAVES),
    Param("crf", "int", "H.264 quality, 0 (lossless) .. 51", (*CLIPS, "timelapse"), "video", 0, 51),
    # timelapse
    Param("checkpoints", "text", "iteration counts rendered independently: 40,80,120", ("timelapse",), "timelapse"),
    Param("every", "int", "instead: one run, a snapshot every K steps", ("timelapse",), "timelapse", 1, 1 << 30),
    Param("hold", "float", "seconds each snapshot is shown", ("timelapse",), "timelapse", 0.04, 60.0),
    Param("fade", "float", "seconds of crossfade between snapshots", ("timelapse",), "timelapse", 0.0, 60.0),
    Param("labels", "bool", "write the iteration count on video frames", ("timelapse",), "timelapse"),
    # sweep
    Param("vary", "text", "one axis a line: KEY=V1,V2 (step=0.01,0.03)", ("sweep",), "sweep"),
    Param("cell_size", "int", "longest side of each picture in a grid or sheet (px)", ("sweep", "timelapse"),
          "sweep", 16, 1 << 14),
)
BOOL_FLAGS = {"scene_cuts": ("--scene-cuts", "--no-scene-cuts"), "keep_audio": ("--keep-audio", "--no-audio"),
              "labels": ("--labels", "--no-labels")}
PATH_KEYS = {("dream", "weights"), ("sweep", "save_cells")}  # settings that name files: never from a request


def params_of(mode: str) -> dict[str, Param]:
    return {p.name: p for p in PARAMS if mode in p.modes}


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

        return resolve_for(self.mode, None, self.preset_for(job_dir), self.overrides)

    def kwargs(self, job_dir: Path) -> dict[str, Any]:
        return {"preset": self.preset_for(job_dir), **self.keywords, **self.overrides}

    def command(self, source: Path, output: Path, job_dir: Path) -> str:
        """The `dreamvid ...` command line that renders the same output."""
        words = ["dreamvid", self.mode, str(source), "-o", str(output)]
        preset = self.preset_for(job_dir)
        if preset:
            words += ["--preset", preset]
        for key, value in {**self.keywords, **self.overrides}.items():
            words += flag_words(key, value)
        return shlex.join(words)


def flag_words(key: str, value: Any) -> list[str]:
    """One keyword as the CLI's flag words: layers=[(n, w)] -> --layer n:w ...; booleans as
    their --x/--no-x pair; checkpoints as 40,80; vary as one --vary per axis."""
    if key == "layers":
        return [w for name, weight in value for w in ("--layer", f"{name}:{weight:g}")]
    if key == "classes":
        return [w for index, weight in value for w in ("--class", f"{index}:{weight:g}")]
    if key in BOOL_FLAGS:
        return [BOOL_FLAGS[key][0 if value else 1]]
    if key == "vary":
        return [w for axis in value for w in ("--vary", axis)]
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
        raise SettingsError(f"unknown field {sorted(unknown)[0]!r} in the request", hint=None)
    mode = body.get("mode")
    if mode not in MODES:
        raise SettingsError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}", hint=None)
    fmt = body.get("format") or MODES[mode].formats[0]
    if fmt not in MODES[mode].formats:
        raise SettingsError(f"a {mode} is written as {', '.join(MODES[mode].formats)} (got {fmt!r})", hint=None)
    preset, toml = _preset(body.get("preset")), _toml(body.get("toml"), models)
    if preset and toml is not None:
        raise SettingsError("give a preset or preset TOML, not both", hint="the TOML is a whole preset")
    overrides, keywords = _params(mode, body.get("params") or {})
    if body.get("model"):
        overrides["model"] = _model(body["model"], models)
    if body.get("layers"):
        overrides["layers"] = _layers(body["layers"])
    request = {"mode": mode, "preset": preset, "toml": toml is not None, "model": body.get("model") or None,
               "layers": body.get("layers") or None, "params": dict(body.get("params") or {}), "format": fmt}
    return JobSpec(mode, preset, toml, overrides, keywords, fmt, request)


def _preset(name: Any) -> str | None:
    from .. import presets

    if not name:
        return None
    if not isinstance(name, str) or name not in presets.available():
        raise SettingsError(f"unknown preset {name!r}; presets: {', '.join(presets.available())}", hint=None)
    return name


def _toml(text: Any, models: Mapping[str, str]) -> str | None:
    """Preset text, parsed and key-checked; its model must be one a request may choose (by name
    or as the server's own path), and it may name no files."""
    from .. import presets

    if not text:
        return None
    if not isinstance(text, str) or len(text.encode()) > MAX_TOML:
        raise SettingsError(f"the preset TOML must be text of at most {MAX_TOML // 1024} KB", hint=None)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"the preset TOML does not parse: {e}", hint="copy it from a result, or a preset") from None
    presets.check_keys(data, "the preset TOML")
    for section, key in PATH_KEYS:
        if data.get(section, {}).get(key) is not None:
            raise SettingsError(f"{section}.{key} names a file on the server, which a request may not do",
                                hint="remove it from the TOML")
    model = data.get("dream", {}).get("model")
    if model is not None and model not in models.values():
        raise SettingsError(f"unknown model {model!r} in the preset TOML; models: {', '.join(models)}", hint=None)
    return text


def _model(name: Any, models: Mapping[str, str]) -> str:
    if not isinstance(name, str) or name not in models:
        raise SettingsError(f"unknown model {name!r}; models: {', '.join(models)}", hint=None)
    return models[name]


def _layers(value: Any) -> list[tuple[str, float]]:
    if not isinstance(value, Mapping) or len(value) > MAX_LAYERS:
        raise SettingsError(f"layers must be {{name: weight}} with at most {MAX_LAYERS} layers", hint=None)
    out = []
    for name, weight in value.items():
        if not isinstance(weight, (int, float)) or isinstance(weight, bool):
            raise SettingsError(f"layer weight for {name!r} must be a number (got {weight!r})", hint=None)
        out.append((str(name)[:200], float(weight)))
    return out


def _params(mode: str, params: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings overrides, render keywords) from {name: value}; empty values are left out."""
    if not isinstance(params, Mapping):
        raise SettingsError("params must be {name: value}", hint=None)
    known = params_of(mode)
    overrides, keywords = {}, {}
    for name, value in params.items():
        if name not in known:
            raise SettingsError(f"{name!r} is not a parameter of {mode}; parameters: {', '.join(known)}", hint=None)
        if value is None or value == "":
            continue
        p = known[name]
        (keywords if p.section == "render" else overrides)[name] = _value(p, value)
    return overrides, keywords


def _value(p: Param, value: Any) -> Any:
    """A form value as the library's type (the library checks the range itself)."""
    wrong = SettingsError(f"{p.name} must be {_KIND_WORDS[p.kind]} (got {value!r})", hint=p.help)
    if p.kind == "bool":
        if not isinstance(value, bool):
            raise wrong
        return value
    if p.kind in ("text", "choice"):
        if not isinstance(value, str) or len(value) > MAX_TEXT or (p.choices and value not in p.choices):
            raise wrong
        return _text(p.name, value.strip())
    if isinstance(value, bool):
        raise wrong
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise wrong from None
    if p.kind == "int":
        if number != int(number):
            raise wrong
        return int(number)
    return number


def _text(name: str, value: str) -> Any:
    """Text parameters in the library's form: checkpoints -> a tuple, vary -> one axis a line."""
    if name == "checkpoints":
        from ..render.timelapse import parse_checkpoints

        return parse_checkpoints(value)
    if name == "vary":
        from ..render.sweep import parse_vary

        axes = [line.strip() for line in value.splitlines() if line.strip()]
        for axis in axes:
            parse_vary(axis)  # a bad axis is refused now, in the library's words
        return axes
    if name == "classes":
        from ..settings import parse_classes

        return parse_classes([line.strip() for line in value.splitlines() if line.strip()])
    return value


_KIND_WORDS = {"bool": "true or false", "text": f"text of at most {MAX_TEXT} characters",
               "choice": "one of the listed values", "int": "a whole number", "float": "a number"}


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
