"""How options read in `--help`: click's metavars, not Python types.

Typer 0.29 prints every option's Python annotation as its type (`--version <bool>`,
`<list[Path]>`, `<float>`), which tells a user nothing and repeats itself on every flag.
Here, as in click and in most CLIs users know: flags show nothing, values show an upper-case
word (FLOAT, N, PATH, TEXT) unless the option names its own metavar. One hook, applied once
when the app is built (cli/__init__.py), so every command, present and future, reads alike.
"""
from __future__ import annotations

from pathlib import Path
from typing import get_args, get_origin

from typer.core import TyperArgument, TyperOption

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
    word = _word(self.type_descriptor.annotation)
    return word if word and word != "TEXT" else None


def install() -> None:
    TyperOption.display_type_rich = _option_type
    TyperArgument.display_type_rich = _argument_type
