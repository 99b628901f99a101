"""How `--help` reads: click's metavars, not Python types, and prose the terminal wraps.

Typer 0.29 prints every option's Python annotation as its type (`--version <bool>`,
`<list[Path]>`, `<float>`), which tells a user nothing and repeats itself on every flag.
Here, as in click and in most CLIs users know: flags show nothing, values show an upper-case
word (FLOAT, N, PATH, TEXT) unless the option names its own metavar. Arguments show their
type the same way, and the usage line names them in upper case (`SOURCES...`, `MODEL`,
`[MODEL]`) where Typer 0.29 writes `{sources}...`. A command's docstring is prose: each
paragraph is joined into one line that the terminal wraps, instead of keeping the source's
line breaks in the middle of a sentence (a paragraph that starts with click's \b keeps its
lines). The hooks are applied once when the app is built (cli/__init__.py), so every
command, present and future, reads alike.
"""
from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import get_args, get_origin

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

_WORDS = {int: "N", float: "X", str: "TEXT", Path: "PATH", bool: ""}


def _word(annotation) -> str:
    if get_origin(annotation) is list:
        return _word(get_args(annotation)[0])
    args = [a for a in get_args(annotation) if a is not type(None)]  # Optional[X] -> X
    if args:
        return _word(args[0])
    return _WORDS.get(annotation, "VALUE")


def _option_type(self, ctx) -> str | None:
    if self.metavar is not None:
        return self.metavar or None
    if self.is_flag:
        return None
    return _word(self.type_descriptor.annotation) or None


def _argument_type(self, ctx) -> str | None:
    return _word(self.type_descriptor.annotation) or None


def _argument_usage(self) -> str:
    """SOURCES..., MODEL, [MODEL]: the argument as click names it in the usage line."""
    name = (self.metavar or self.name or "").upper() + ("..." if self.nargs != 1 else "")
    return name if self.required else f"[{name}]"


def reflow(text: str | None) -> str | None:
    """A docstring's paragraphs with their line breaks turned into spaces (see the module doc)."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def _reflowing(init):
    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        for key in ("help", "short_help"):
            if kwargs.get(key):
                kwargs[key] = reflow(kwargs[key])
        init(self, *args, **kwargs)

    __init__.reflows = True
    return __init__


def install() -> None:
    TyperOption.display_type_rich = _option_type
    TyperArgument.display_type_rich = _argument_type
    TyperArgument._usage_display_name = _argument_usage
    for cls in (TyperCommand, TyperGroup):
        if not getattr(cls.__init__, "reflows", False):  # once, however often the CLI is imported
            cls.__init__ = _reflowing(cls.__init__)
