"""Named presets: TOML files -> Settings. Defaults < preset < explicit flags.

A preset is a TOML file with an optional top-level `description` and one table per
settings section (`[dream]`, `[video]`, `[zoom]`, `[timelapse]`, `[sweep]`), whose keys are
the field names of the dataclasses in settings.py. Layers are a table:
`[dream.layers] block4c_out = 1.0`; sweep axes too: `[sweep.vary] step = [0.01, 0.03]`.

`resolve_for(mode, ...)` is how every render and the CLI get their settings: defaults < the
mode's own preset (`deepdream` for the stills, `video`, `zoom`) < the named preset < a
Settings object < keyword overrides named as the CLI's flags (`step=`, `blend=`,
`checkpoints=`...). What to dream is one thing: overrides that name classes but no layers
dream the classes alone (`dreamvid image photo.jpg --class pug`), and layers without classes
the layers alone; the preset's numbers stay.
Unknown sections and keys are errors that name them (a typo must not be silently ignored).

Bundled presets live in the top-level `presets/` folder of the source tree, and are copied
into the wheel as `dreamvid/presets/`; both places are searched.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
from pathlib import Path
from typing import Any, Mapping

from . import tomltext, userfiles
from .errors import InputError, PresetError, SettingsError
from .numeric import shown
from .settings import SECTIONS, Settings, check_expressions, parse_classes, parse_layers, validate_all

# Which sections a mode reads, in the order a keyword override is looked up (`fps` of a zoom
# is the zoom's, `crf` the video section's), and the preset a mode starts from.
MODE_SECTIONS: dict[str, tuple[str, ...]] = {
    "image": ("dream",), "video": ("video", "dream"), "zoom": ("zoom", "video", "dream"),
    "timelapse": ("timelapse", "dream"), "sweep": ("sweep", "dream"),
}
# deepdream: the 2015 look (eyes, animal faces) for every still mode; `classic` is the Keras example's numbers.
MODE_PRESET = {"image": "deepdream", "timelapse": "deepdream", "sweep": "deepdream", "video": "video", "zoom": "zoom"}
# A zoom with a still preset (coral...) keeps zoom's short per-frame dream: without this,
# every frame would get the full still dream (very slow).
ZOOM_FRAME_KEYS = ("frame_iterations", "frame_num_octave")
TOP_LEVEL_KEYS = {"description"}
_PACKAGE_DIR = Path(__file__).resolve().parent


def preset_dirs() -> list[Path]:
    """Where bundled presets are found: inside the installed package, then the source tree."""
    return [d for d in (_PACKAGE_DIR / "presets", _PACKAGE_DIR.parent / "presets") if d.is_dir()]


def available() -> dict[str, Path]:
    """{preset name: file} for every bundled preset."""
    found: dict[str, Path] = {}
    for d in reversed(preset_dirs()):
        for f in sorted(d.glob("*.toml")):
            found[f.stem] = f
    return dict(sorted(found.items()))


def find(name_or_path: str) -> Path:
    """A bundled preset by name, or a .toml file by path."""
    if name_or_path.endswith(".toml") or "/" in name_or_path:
        if not os.path.lexists(name_or_path):
            raise PresetError(f"preset file not found: {name_or_path}", hint="check the path given to --preset")
        try:  # a regular file: a pipe or a device is named as such, never opened
            return userfiles.check(name_or_path, "preset")
        except InputError as e:
            raise PresetError(e.message, hint=e.hint) from None
    known = available()
    if name_or_path not in known:
        close = difflib.get_close_matches(name_or_path, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise PresetError(f"unknown preset {shown(name_or_path)}; presets: {', '.join(known)}",
                          hint=hint + "run `dreamvid presets`, or pass a .toml file")
    return known[name_or_path]


def read(name_or_path: str) -> dict[str, Any]:
    """The raw, key-checked contents of a preset."""
    path = find(name_or_path)
    try:  # bounded: size, encoding, nesting (tomltext)
        data = tomltext.load(path, "preset", PresetError, hint="fix the file's syntax")
    except InputError as e:
        raise PresetError(e.message, hint=e.hint) from None
    check_keys(data, str(path))
    return data


def check_keys(data: Mapping[str, Any], where: str) -> None:
    for key, value in data.items():
        if key in TOP_LEVEL_KEYS:
            continue
        if key not in SECTIONS:
            raise PresetError(f"{where}: unknown section or key {shown(key)}",
                              hint=_suggest(key, [*SECTIONS, *TOP_LEVEL_KEYS]))
        if not isinstance(value, Mapping):
            raise PresetError(f"{where}: {shown(key)} must be a table ([{key}])", hint=None)
        fields = {f.name for f in dataclasses.fields(SECTIONS[key])}
        for k in value:
            if k not in fields:
                raise PresetError(f"{where}: unknown key {key}.{shown(k, quote=False)}", hint=_suggest(k, fields))


def _suggest(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return (f"did you mean {close[0]!r}? " if close else "") + f"known: {', '.join(sorted(known))}"


def resolve(preset: str | None = None, *, underlay: Mapping[str, Mapping[str, Any]] | None = None,
            **sections: Mapping[str, Any]) -> Settings:
    """Settings from defaults, then `underlay`, then the preset, then explicit values (None
    values are ignored).

    resolve("classic", dream={"step": 0.02}, video={"blend": 0.8})
    """
    merged: dict[str, dict[str, Any]] = {name: dict((underlay or {}).get(name, {})) for name in SECTIONS}
    if preset:
        data = read(preset)
        for name in SECTIONS:
            merged[name].update(data.get(name, {}))
    check_keys({k: v for k, v in sections.items()}, "settings")
    for name, values in sections.items():
        merged[name].update({k: v for k, v in values.items() if v is not None})
    return build(merged, where=f"preset {preset!r}" if preset else "settings")


def resolve_for(mode: str, settings: Settings | None = None, preset: str | None = None,
                overrides: Mapping[str, Any] | None = None) -> Settings:
    """The validated Settings of a `mode` render ("image", "video", "zoom", "timelapse",
    "sweep"): `settings` (or the preset, default the mode's own) with `overrides` applied.

    overrides are keyed by field name, looked up in MODE_SECTIONS[mode] order; None values
    are ignored; an unknown name is a SettingsError that suggests the nearest one.
    """
    if settings is not None and preset is not None:
        raise SettingsError("give settings or a preset, not both",
                            hint="apply a preset with preset=NAME and change it with keywords, e.g. step=0.02")
    if settings is None:
        underlay = None
        if mode == "zoom":
            zoom_video = read(MODE_PRESET["zoom"]).get("video", {})
            underlay = {"video": {k: zoom_video[k] for k in ZOOM_FRAME_KEYS if k in zoom_video}}
        settings = resolve(preset or MODE_PRESET.get(mode), underlay=underlay)
    names = MODE_SECTIONS[mode]
    changes: dict[str, dict[str, Any]] = {n: {} for n in names}
    fields = {n: {f.name for f in dataclasses.fields(SECTIONS[n])} for n in names}
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        section = next((n for n in names if key in fields[n]), None)
        if section is None:
            known = sorted(set().union(*fields.values()))
            raise SettingsError(f"{shown(key)} is not a setting of {mode}", hint=_suggest(key, known))
        changes[section][key] = value
    if changes.get("dream", {}).get("layers") is not None:
        changes["dream"]["layers"] = parse_layers(changes["dream"]["layers"])
    if changes.get("dream", {}).get("classes") is not None:
        changes["dream"]["classes"] = parse_classes(changes["dream"]["classes"])
    _objective_from_flags(changes["dream"], settings.dream.model)
    current = {n: dataclasses.asdict(getattr(settings, n)) for n in SECTIONS}
    current["dream"]["layers"] = list(settings.dream.layers)
    current["dream"]["classes"] = list(settings.dream.classes)
    for n, values in changes.items():
        current[n].update(values)
    return check_expressions(mode, build(current))


def _objective_from_flags(dream: dict[str, Any], model: str) -> None:
    """What to dream is one thing: flags that name classes and no layers replace the preset's
    layers with none (`--class pug` alone dreams a pug, not the preset's layers with a pug in
    them), and layers without classes drop the preset's classes. Another --model without
    --layer dreams that model's own default layers (the preset's are `model`'s)."""
    if dream.get("classes") is not None and dream.get("layers") is None:
        dream["layers"] = ()
    elif dream.get("layers") is not None and dream.get("classes") is None:
        dream["classes"] = ()
    elif dream.get("model") not in (None, model) and dream.get("layers") is None:
        dream["layers"] = ()


def build(merged: Mapping[str, Mapping[str, Any]], where: str = "settings") -> Settings:
    values = {name: dict(merged.get(name, {})) for name in SECTIONS}
    try:
        if "layers" in values["dream"]:
            values["dream"]["layers"] = parse_layers(values["dream"]["layers"])
        if "classes" in values["dream"]:
            values["dream"]["classes"] = parse_classes(values["dream"]["classes"])
        if isinstance(values["sweep"].get("vary"), Mapping):  # TOML: [sweep.vary] step = [0.01, 0.03]
            values["sweep"]["vary"] = tuple((k, tuple(v) if isinstance(v, (list, tuple)) else (v,))
                                            for k, v in values["sweep"]["vary"].items())
        built = Settings(**{name: SECTIONS[name](**v) for name, v in values.items()})
        return validate_all(built)
    except TypeError as e:  # a wrong type reaching a dataclass
        raise PresetError(f"{where}: {e}", hint=None) from None
    except SettingsError as e:
        if where.startswith("preset"):
            raise PresetError(f"{where}: {e.message}", hint=e.hint) from None
        raise


def to_toml(settings: Settings, description: str | None = None) -> str:
    """The resolved settings as a preset file (what `dreamvid presets show` prints)."""
    lines = [f"description = {_toml_value(description)}", ""] if description else []
    d = settings.to_dict()
    for name in SECTIONS:
        section = d[name]
        lines.append(f"[{name}]")
        layers = section.pop("layers", None)
        classes = section.pop("classes", None)
        if name == "sweep":
            vary = section.pop("vary")
            layers = {k: list(v) for k, v in vary} if vary else None
        for k, v in section.items():
            lines.append(f"{k} = {_toml_value(v)}" if v is not None else f"# {k} = (not set)")
        if layers is not None:
            lines += ["", f"[{name}.{'vary' if name == 'sweep' else 'layers'}]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in layers.items()] or \
                ["# (the model's default layers)"]
        if classes:
            from .models.classes import name as class_name

            lines += ["", f"[{name}.classes]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}  # {class_name(int(k))}" for k, v in classes.items()]
        lines.append("")
    return "\n".join(lines)


def _toml_key(k: str) -> str:
    """A TOML key: bare where it may be ("block4c_out"), quoted otherwise ("block5c_out/17")."""
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _toml_value(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
