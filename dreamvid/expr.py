"""Schedules written as expressions of time: `zoom = "1.02 + 0.01*sin(2*pi*t/4)"`.

An expression is parsed with Python's own parser (`ast.parse(mode="eval")`) and then
checked node by node against a short list of what is allowed; anything else (attribute
access, subscripts, comprehensions, lambdas, keyword arguments, strings, names not listed)
is refused with one line naming the expression and the column. The checked tree is turned
into a tree of small Python closures: nothing is ever handed to `eval` or `exec`.

    e = parse("1.02 + 0.01*sin(2*pi*t/4)", "zoom")
    e(t=1.5, f=36, fps=24, duration=10)          # -> float
    e.at(times, f=..., fps=24, ...)              # -> numpy array, one value per time

Names: t (seconds), f (frame index), fps, duration, pi, e, and any envelope the caller
provides (rms, onset, bass, mid, treble for audio-driven zooms: each a value in 0..1 at t).
Operators: + - * / ** % and unary -, +, parentheses. Functions: sin cos tan exp log sqrt
abs min max clip(x, lo, hi) floor ceil round, smoothstep(a, b, x), where(c, a, b) is not
offered (no comparisons): use min/max/clip.
"""
from __future__ import annotations

import ast
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from . import numeric
from .errors import SettingsError

MAX_LENGTH = 500  # characters; a schedule is a formula, not a program
MAX_NODES = 200  # parsed nodes
MAX_POWER = 1e6  # |exponent| above this is refused at evaluation (10**10**10 would hang a big-int pow)
TIME_NAMES = ("t", "f", "fps", "duration")
CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
AUDIO_NAMES = ("rms", "onset", "bass", "mid", "treble")


def _clip(x, lo, hi):
    return np.minimum(np.maximum(x, lo), hi)


def _smoothstep(a, b, x):
    u = _clip((np.asarray(x, float) - a) / np.where(b == a, 1.0, b - a), 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


FUNCTIONS: dict[str, tuple[Callable, int, int]] = {  # name -> (numpy function, min args, max args)
    "sin": (np.sin, 1, 1), "cos": (np.cos, 1, 1), "tan": (np.tan, 1, 1), "exp": (np.exp, 1, 1),
    "log": (np.log, 1, 1), "sqrt": (np.sqrt, 1, 1), "abs": (np.abs, 1, 1), "floor": (np.floor, 1, 1),
    "ceil": (np.ceil, 1, 1), "round": (np.round, 1, 1),
    "min": (lambda *a: _reduce(np.minimum, a), 2, 8), "max": (lambda *a: _reduce(np.maximum, a), 2, 8),
    "clip": (_clip, 3, 3), "smoothstep": (_smoothstep, 3, 3),
}
_BINARY = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide,
           ast.Mod: np.mod}
_UNARY = {ast.USub: np.negative, ast.UAdd: np.positive}


def _reduce(fn, args):
    out = args[0]
    for a in args[1:]:
        out = fn(out, a)
    return out


@dataclass(frozen=True)
class Expression:
    """A checked expression; call it with the names' values (numbers or equal-length arrays)."""

    text: str
    key: str  # what it schedules ("zoom", "rotate", ...), for messages
    names: frozenset[str]  # the names it uses
    _fn: Callable = field(repr=False, compare=False)

    def __call__(self, **values) -> float:
        return float(self.evaluate(values))

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        missing = sorted(self.names - set(values) - set(CONSTANTS))
        if missing:
            raise SettingsError(f"{self.key} = {self.text!r} uses {', '.join(missing)}, which is not available here",
                                hint=_AUDIO_HINT if set(missing) & set(AUDIO_NAMES) else None)
        with np.errstate(all="ignore"):  # non-finite results are reported by `at`, naming the frame
            return self._fn(values)

    def at(self, times: np.ndarray, fps: float, **values) -> np.ndarray:
        """Values at each time of `times` (seconds) with f = round(t * fps): one array.
        SettingsError naming the first frame where the value is not a finite number."""
        times = np.asarray(times, np.float64)
        out = np.broadcast_to(np.asarray(self.evaluate({"t": times, "f": np.floor(times * fps + 0.5), "fps": fps,
                                                        **values}), np.float64), times.shape)
        bad = ~np.isfinite(out)
        if bad.any():
            k = int(np.argmax(bad))
            raise SettingsError(f"{self.key} = {self.text!r} is {out[k]} at frame {int(round(times[k] * fps))} "
                                f"(t = {times[k]:.3f} s)",
                                hint="keep the expression finite there: e.g. guard a division with max(x, 0.001)")
        return np.array(out)


_AUDIO_HINT = "rms, onset, bass, mid and treble come from --audio FILE (dreamvid zoom --audio song.mp3)"


def number_or_text(value: Any, key: str = "value") -> Any:
    """A command-line value that may be an expression: "12" -> 12, "0.5" -> 0.5, anything else
    as it is. A number too long to be meant is SettingsError naming `key` (numeric.literal)."""
    if not isinstance(value, str):
        return value
    number = numeric.literal(value, key)
    return value if number is None else number


def parse(text: str, key: str = "value", names: tuple[str, ...] = (*TIME_NAMES, *AUDIO_NAMES)) -> Expression:
    """Check `text` and build its Expression, or SettingsError naming the column."""
    if isinstance(text, Expression):
        return text
    if not isinstance(text, str):
        raise SettingsError(f"{key} must be a number or an expression in t (got {text!r})", hint=None)
    if len(text) > MAX_LENGTH:
        raise SettingsError(f"{key}: the expression is {len(text)} characters, more than {MAX_LENGTH}",
                            hint="write a shorter formula")
    try:
        with warnings.catch_warnings():  # "invalid decimal literal" and the like: the SyntaxError says it
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        col = (e.offset or 1)
        raise SettingsError(f"{key} = {text!r} is not a valid expression (column {col}: {e.msg})",
                            hint="e.g. 1.02 + 0.01*sin(2*pi*t/4)") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise SettingsError(f"{key} = {text!r} is too long ({len(nodes)} parts, at most {MAX_NODES})", hint=None)
    allowed = set(names) | set(CONSTANTS)
    used: set[str] = set()
    fn = _build(tree.body, text, key, allowed, used)
    return Expression(text, key, frozenset(used), fn)


def _refuse(node: ast.AST, text: str, key: str, what: str, hint: str | None = None) -> SettingsError:
    col = getattr(node, "col_offset", 0) + 1
    return SettingsError(f"{key} = {text!r}: {what} (column {col})", hint=hint)


def _build(node: ast.AST, text: str, key: str, allowed: set[str], used: set[str]) -> Callable:
    """A closure computing `node` from a dict of name values (numbers or numpy arrays)."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise _refuse(node, text, key, f"{numeric.shown(node.value)} is not a number")
        if not numeric.is_finite(node.value):  # 1e999 is inf; 400 digits overflow float()
            raise _refuse(node, text, key, f"the number {numeric.shown(node.value)} is too large",
                          hint="numbers in an expression are ordinary floats, below 1e308")
        value = float(node.value)
        return lambda v: value
    if isinstance(node, ast.Name):
        if node.id not in allowed:
            raise _refuse(node, text, key, f"unknown name {node.id!r}",
                          hint=f"names: {', '.join(sorted(allowed))}; functions: {', '.join(FUNCTIONS)}")
        used.add(node.id)
        name = node.id
        if name in CONSTANTS:
            c = CONSTANTS[name]
            return lambda v: c
        return lambda v: v[name]
    if isinstance(node, ast.BinOp):
        a, b = _build(node.left, text, key, allowed, used), _build(node.right, text, key, allowed, used)
        if isinstance(node.op, ast.Pow):
            return lambda v: _power(a(v), b(v))
        op = _BINARY.get(type(node.op))
        if op is None:
            raise _refuse(node, text, key, f"the operator {type(node.op).__name__} is not allowed",
                          hint="use + - * / ** % and parentheses")
        return lambda v: op(a(v), b(v))
    if isinstance(node, ast.UnaryOp):
        op = _UNARY.get(type(node.op))
        if op is None:
            raise _refuse(node, text, key, f"the operator {type(node.op).__name__} is not allowed", hint=None)
        x = _build(node.operand, text, key, allowed, used)
        return lambda v: op(x(v))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise _refuse(node, text, key, "only the listed functions can be called",
                          hint=f"functions: {', '.join(FUNCTIONS)}")
        if node.func.id not in FUNCTIONS:
            raise _refuse(node, text, key, f"unknown function {node.func.id!r}",
                          hint=f"functions: {', '.join(FUNCTIONS)}")
        if node.keywords:
            raise _refuse(node, text, key, "keyword arguments are not allowed", hint=None)
        fn, lo, hi = FUNCTIONS[node.func.id]
        if not lo <= len(node.args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise _refuse(node, text, key, f"{node.func.id}() takes {want} arguments, not {len(node.args)}", hint=None)
        args = [_build(a, text, key, allowed, used) for a in node.args]
        return lambda v: fn(*(a(v) for a in args))
    if isinstance(node, ast.Attribute):
        raise _refuse(node, text, key, "attribute access is not allowed", hint="only numbers, names and functions")
    raise _refuse(node, text, key, f"{type(node).__name__} is not allowed in an expression",
                  hint="only numbers, t, f, fps, duration, + - * / ** %, and functions")


def _power(a, b):
    if np.any(np.abs(np.asarray(b, float)) > MAX_POWER):
        return np.full(np.shape(a) if np.ndim(a) else np.shape(b), np.inf)  # reported as non-finite, frame named
    return np.power(np.asarray(a, np.float64), b)
