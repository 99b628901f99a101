"""The parameter catalogue: what each setting is, declared once, read by every surface.

A setting is declared in ONE place, as a field of its section in settings.py:

    step: float | str = param(0.01, "float", "Gradient-ascent step size (0.01 subtle .. 0.05 strong).",
                              lo=0, lo_open=True, hi=1, label="Strength", expression=("video", "zoom"))

The field gives the name (the TOML key, the library keyword and, with dashes, the CLI flag
`--step`), the Python type and the default. `param` adds what the three surfaces need
besides: the kind of value, the range, the unit, one help line, the page's words for it, and
the modes that read it. Its readers:

- settings.py validates every field by `check` (range and kind, in the same words everywhere);
  only values with a structure of their own (layers, classes, pairs, fps text, checkpoints)
  have code of their own there;
- cli/common.py `option()` builds each Typer option: its flags, metavar, help ending in the
  range, and the default of that command's preset;
- web/options.py offers every parameter a mode reads, with these ranges, words and help
  (GET /api/options), and the page's inputs take their limits from there.

Why field metadata and not a table of its own: the field already is where the name, type and
default live; a separate table would repeat every name and could drift from the dataclass.
Adding a parameter is one `param(...)` field in its section (docs/architecture.md).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Iterator

from .errors import SettingsError
from .numeric import is_finite, shown

KINDS = ("int", "float", "bool", "choice", "text", "list", "lines", "model", "layers", "path", "pair")  # list: 40,80,120
CHECKED = ("int", "float", "bool", "choice")  # kinds `check` validates alone; the others have code in settings.py


@dataclass(frozen=True)
class Param:
    """What one setting is, besides its name, type and default (which its field holds)."""

    kind: str  # one of KINDS: how a value is read, checked and shown
    help: str  # one or two sentences, for --help and shown under the page's field
    lo: float | None = None  # the range; None: unbounded on that side
    hi: float | None = None
    lo_open: bool = False  # lo itself is refused (step > 0)
    unit: str = ""  # "px", "s", "%": said after the range and in a range error
    choices: tuple[str, ...] = ()  # kind "choice" (and "path" values with a meaning of their own: mask)
    hint: str | None = None  # the way out, given with a range or choice error
    label: str = ""  # the page's words for it ("Strength" for step)
    none: str = ""  # what None means ("keep the size"); set: None is a value
    expression: tuple[str, ...] = ()  # modes in which the value may be an expression of time (expr.py)
    modes: tuple[str, ...] | None = None  # modes that read it; None: every mode that reads its section
    needs: str = ""  # the setting this one only matters with (guide_weight: guide)
    flags: tuple[str, ...] = ()  # CLI flags; () -> --name-with-dashes (--name/--no-name for a bool)
    metavar: str = ""  # CLI metavar; "" -> N for an int, X for a float, TEXT otherwise
    # filled in by `catalogue()` from the field:
    name: str = ""
    section: str = ""
    default: Any = None

    @property
    def optional(self) -> bool:
        """None is a value of this setting (it means `none`)."""
        return bool(self.none) or self.default is None

    @property
    def flag(self) -> str:
        """The long CLI flag: --octave-scale (a bool: the --x of its --x/--no-x pair)."""
        return self.cli_flags()[0].split("/")[0]

    def cli_flags(self) -> tuple[str, ...]:
        if self.flags:
            return self.flags
        dashed = self.name.replace("_", "-")
        return (f"--{dashed}/--no-{dashed}",) if self.kind == "bool" else (f"--{dashed}",)

    def range_text(self) -> str:
        """The range in words: "1..20", "> 0", "> 0, at most 1", "64..65536 px"; "" if none."""
        lo, hi, unit = _g(self.lo), _g(self.hi), f" {self.unit}" if self.unit else ""
        if self.kind == "choice":
            return "|".join(self.choices)
        if self.lo is None and self.hi is None:
            return ""
        if self.lo is None:
            return f"at most {hi}{unit}"
        if self.hi is None:
            return f"{'>' if self.lo_open else '>='} {lo}{unit}"
        return f"> {lo}, at most {hi}{unit}" if self.lo_open else f"{lo}..{hi}{unit}"

    def to_dict(self) -> dict[str, Any]:
        """What the page gets (GET /api/options): JSON values only."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("flags", "metavar", "default", "hint")}
        d.update(flag=self.flag, range=self.range_text(), optional=self.optional, label=self.label or self.name)
        for key in ("lo", "hi"):
            if isinstance(d[key], float) and d[key].is_integer():
                d[key] = int(d[key])
        return d


def param(default: Any, kind: str, help: str, **facts: Any) -> Any:
    """A settings field with its catalogue entry (see the module doc); `facts` are Param's fields."""
    if kind not in KINDS:
        raise ValueError(f"unknown parameter kind {kind!r}")
    return dataclasses.field(default=default, metadata={"param": Param(kind, help, **facts)})


def of(field: dataclasses.Field, section: str) -> Param:
    """The field's Param, with its name, section and default filled in."""
    return dataclasses.replace(field.metadata["param"], name=field.name, section=section, default=field.default)


@functools.lru_cache(maxsize=None)
def catalogue() -> dict[tuple[str, str], Param]:
    """{(section, name): Param} for every setting, in section and field order (made once: the
    CLI reads it for every option when it starts; do not change the dict)."""
    from .settings import SECTIONS

    return {(section, f.name): of(f, section) for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}


def get(section: str, name: str) -> Param:
    return catalogue()[(section, name)]


def of_mode(mode: str) -> dict[str, Param]:
    """{name: Param} of every setting a `mode` render reads, looked up as a keyword override is
    (presets.MODE_SECTIONS order: a zoom's `fps` is the zoom section's), then its render keywords."""
    from .presets import MODE_SECTIONS

    out: dict[str, Param] = {}
    for section in MODE_SECTIONS[mode]:
        for (sec, name), p in catalogue().items():
            if sec == section and name not in out and mode in modes_of(p):
                out[name] = p
    out.update({p.name: p for p in KEYWORDS if mode in (p.modes or ())})
    return out


def modes_of(p: Param) -> tuple[str, ...]:
    """The modes that read `p`: its own `modes`, else those whose sections hold it; a zoom reads
    the video section only for what a field names (frame_iterations, frame_num_octave, crf)."""
    from .presets import MODE_SECTIONS

    if p.modes is not None:
        return p.modes
    return tuple(m for m, secs in MODE_SECTIONS.items() if p.section == secs[0] or p.section == "dream")


def expression_keys() -> dict[str, tuple[tuple[str, str], ...]]:
    """{mode: ((section, name), ...)}: the values that may be expressions of time in each mode."""
    out: dict[str, list] = {}
    for key, p in catalogue().items():
        for mode in p.expression:
            out.setdefault(mode, []).append(key)
    return {mode: tuple(keys) for mode, keys in out.items()}


def fields_of(section: str, cls) -> Iterator[Param]:
    for f in dataclasses.fields(cls):
        yield of(f, section)


# ---- checking -----------------------------------------------------------------------------

def check(p: Param, value: Any) -> None:
    """SettingsError naming the setting unless `value` is of its kind and in its range (kinds
    in CHECKED; None passes where it is a value). The messages are the library's, so the
    CLI, a preset and the page refuse a value in the same words."""
    if value is None and p.optional:
        return
    key = p.name
    if p.kind == "int":
        _refuse_unless(isinstance(value, int) and not isinstance(value, bool), key, value, "must be a whole number", None)
    elif p.kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and is_finite(value)
        _refuse_unless(ok, key, value, "must be a finite number", None)
    elif p.kind == "bool":
        _refuse_unless(isinstance(value, bool), key, value, "must be true or false", None)
        return
    elif p.kind == "choice":
        _refuse_unless(value in p.choices, key, value, f"must be one of {', '.join(p.choices)}",
                       _did_you_mean(value, p.choices) or p.hint)
        return
    else:
        return
    unit = f" {p.unit}" if p.unit else ""
    if p.lo is not None and p.hi is not None and not p.lo_open:
        _refuse_unless(p.lo <= value <= p.hi, key, value, f"must be between {p.lo} and {p.hi}{unit}", p.hint)
        return
    if p.lo is not None:
        above = value > p.lo if p.lo_open else value >= p.lo
        _refuse_unless(above, key, value, f"must be {'>' if p.lo_open else '>='} {p.lo}{unit}", p.hint)
    if p.hi is not None:
        _refuse_unless(value <= p.hi, key, value, f"must be at most {p.hi}{unit}", p.hint)


def refuse(key: str, value: Any, what: str, hint: str | None) -> None:
    """SettingsError "KEY WHAT (got VALUE)", with the key kept for whoever shows it beside its field."""
    raise SettingsError(f"{key} {what} (got {shown(value)})", hint=hint, key=key)


def _did_you_mean(value: Any, choices: tuple[str, ...]) -> str | None:
    """"did you mean 'torch'?" for a mistyped choice, or None."""
    import difflib

    close = difflib.get_close_matches(value, list(choices), n=1) if isinstance(value, str) else []
    return f"did you mean {close[0]!r}?" if close else None


def _refuse_unless(ok: bool, key: str, value: Any, what: str, hint: str | None) -> None:
    if not ok:
        refuse(key, value, what, hint)


def _g(x: float | None) -> str:
    return "" if x is None else str(x) if isinstance(x, int) else f"{x:g}"


# ---- render keywords that are not settings (a video's range), in the same form -------------------

POSITION = "seconds (12, 1.5, 12s, 1:05.5) or a frame index (f30)"
KEYWORDS: tuple[Param, ...] = (
    Param("text", f"First frame to dream: {POSITION}.", name="start", section="render", modes=("video",),
          label="Start at", none="the first frame"),
    Param("text", f"Stop before this frame: {POSITION}.", name="end", section="render", modes=("video",),
          label="End before", none="the last frame"),
)
