"""TOML from users (presets, keyframes, the studio's preset text), bounded before it is parsed.

`tomllib` parses nested arrays and inline tables by recursion: `x = [[[[...]]]]` 5000 deep
is a RecursionError traceback, and a dotted key `a.b.c...` 10000 long parses into a dict so
deep that printing it in a message is one. So nesting is bounded twice: brackets and
the parts of dotted keys are counted before parsing (outside strings and comments, in linear
time), and the parsed document is walked (without recursion) for what the two make together. A number too long for
Python's integer conversion (over 4300 digits) is a parse error here too, not a ValueError.
The size of a file is bounded where it is read (userfiles.MAX_TEXT_BYTES).
"""
from __future__ import annotations

import os
import re
import tomllib
from typing import Any

from . import userfiles
from .errors import DreamvidError, SettingsError

MAX_DEPTH = 16  # levels of tables and arrays; dreamvid's deepest is 3 ([[keyframe]] -> layers -> weight)
# Strings and comments, whose brackets are text, not nesting. Multi-line forms first; a basic
# string's escapes are skipped as pairs, so \" does not end it. No two parts compete for a
# character, so the scan is linear.
_NOT_STRUCTURE = re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*"""|\'\'\'(?:[^\']|\'(?!\'\'))*\'\'\''
                            r'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*', re.DOTALL)
_OTHER = re.compile(r"[^\[\]{}]+")
_KEY_END = re.compile(r"[=,\[\]{}\n]")  # what ends a (dotted) key; floats have one dot, times one


def nesting(text: str, stop: int = MAX_DEPTH) -> int:
    """How deep `text` nests, read before parsing: the deepest nesting of [ ] and { }, or the
    most parts of one dotted key, outside strings and comments (counting stops past `stop`)."""
    structure = _NOT_STRUCTURE.sub("", text)
    dotted = max((piece.count(".") for piece in _KEY_END.split(structure)), default=0)
    if dotted > stop:
        return dotted
    brackets = _OTHER.sub("", structure)
    depth = deepest = 0
    for ch in brackets:
        depth = depth + 1 if ch in "[{" else max(0, depth - 1)
        if depth > deepest:
            deepest = depth
            if deepest > stop:
                break
    return deepest


def data_depth(data: Any, stop: int = MAX_DEPTH) -> int:
    """How deep tables and arrays nest in parsed TOML, found without recursion (stops past `stop`)."""
    deepest, todo = 0, [(data, 1)]
    while todo:
        node, depth = todo.pop()
        deepest = max(deepest, depth)
        if deepest > stop:
            break
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        todo.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def loads(text: str, origin: str, error: type[DreamvidError] = SettingsError,
          hint: str | None = None) -> dict[str, Any]:
    """The TOML document `text`, or `error` naming `origin` ("preset x.toml") and what is wrong:
    it does not parse (hint), or it nests more than MAX_DEPTH levels."""
    deep = f"{origin} nests tables or arrays more than {MAX_DEPTH} levels deep"
    flat = "no setting needs more than a few levels; check the file"
    if nesting(text) > MAX_DEPTH:
        raise error(deep, hint=flat)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise error(f"{origin} is not valid TOML: {e}", hint=hint) from None
    except ValueError:  # tomllib's int() of more than 4300 digits
        raise error(f"{origin} is not valid TOML: it holds a number thousands of digits long",
                    hint="give ordinary numbers") from None
    except RecursionError:  # not reached past `nesting`; kept so nothing else can escape
        raise error(deep, hint=flat) from None
    if data_depth(data) > MAX_DEPTH:
        raise error(deep, hint=flat)
    return data


def load(path: str | os.PathLike, what: str, error: type[DreamvidError] = SettingsError,
         hint: str | None = None) -> dict[str, Any]:
    """A TOML file a user named: read as userfiles reads (a regular file, at most
    MAX_TEXT_BYTES, UTF-8; InputError otherwise), then `loads`."""
    text = userfiles.read_text(path, what)
    return loads(text, f"{what} {os.fspath(path)}", error, hint)
