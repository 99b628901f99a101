"""One way to turn what a user wrote into a number: bounded BEFORE it is converted.

Python converts some numbers in time or memory that grows with what was written, or fails
with an exception no message was written for:

* `Fraction("1e100000000")` builds 10**100000000 exactly (12 s for 1e10000000);
* `int()` of more than 4300 digits raises ValueError (the integer-string limit), as do
  `repr()` and `str()` of such an int;
* `float()` of an int past 1.8e308 raises OverflowError (`math.isfinite` does too).

Every number a user gives (flags, presets and keyframes, expressions, time ranges, `--fps`,
the studio's JSON and TOML) is read through here: a number written as text is at most
MAX_LITERAL characters with an exponent of at most MAX_EXPONENT, an int read by a parser
(TOML, JSON, Python's own for an expression) is at most MAX_INT_BITS bits, and anything shown
in a message goes through `shown`, which never prints more than a few dozen characters.
The range a value must lie in is its setting's business (settings.py); here it is only made
safe to hold, compare and print.
"""
from __future__ import annotations

import math
import re
import reprlib
from fractions import Fraction
from typing import Any

from .errors import SettingsError

MAX_LITERAL = 64  # characters of a number written as text: 17 significant digits and an exponent need 25
MAX_EXPONENT = 400  # |e| of a decimal exponent: past every float (1e308) both ways, and 10**400 is instant
MAX_INT_BITS = 1000  # an int a parser read: below float's 1024-bit limit, so float(x) never overflows
MAX_SHOWN = 40  # characters of a value quoted in a message

# Unambiguous (no two quantifiers compete for a digit), so a match is linear in the text's length.
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE](?P<exp>[+-]?\d+))?")
_NON_FINITE = ("inf", "infinity", "nan")  # what float() reads besides decimals
_RATIO = re.compile(r"(?P<num>[+-]?\d+)\s*/\s*(?P<den>\d+)")


class _Short(reprlib.Repr):
    """reprlib with an int rule that never calls repr() on a huge int (which raises past 4300 digits)."""

    def __init__(self):
        super().__init__()
        self.maxstring = self.maxother = MAX_SHOWN
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple = 3, 4, 6, 6

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:  # ~39 digits: more is never a value a user meant
            return f"{'-' if x < 0 else ''}<an integer of {_digits(x)} digits>"
        return repr(x)


_SHORT = _Short()


def _digits(x: int) -> int:
    """Decimal digits of |x|, from its bit length (no conversion to text)."""
    return max(1, int(abs(x).bit_length() * math.log10(2)) + 1)


def shown(value: Any, quote: bool = True) -> str:
    """`value` as a message quotes it: repr, at most about MAX_SHOWN characters, a huge int by
    its number of digits, a deep structure cut at three levels (quote=False: text as it is, cut
    the same way). Never raises."""
    if not quote and isinstance(value, str):
        half = MAX_SHOWN // 2
        return value if len(value) <= MAX_SHOWN else f"{value[:half]}...{value[-half:]}"
    try:
        return _SHORT.repr(value)
    except Exception:  # noqa: BLE001 - a message must never fail on what it quotes
        return f"<{type(value).__name__}>"


def is_finite(value: Any) -> bool:
    """True for an int or float (not a bool) that is finite and fits a float; never raises."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return value.bit_length() <= MAX_INT_BITS
    return math.isfinite(value)


def real(value: Any, key: str, hint: str | None = None) -> float:
    """A finite float from a value a parser gave (int, float, numpy scalar; not a bool, not
    text), or SettingsError naming `key`: "must be a number", "is too large", "must be finite"."""
    if isinstance(value, bool) or not hasattr(value, "__float__") or isinstance(value, (str, bytes)):
        raise SettingsError(f"{key} must be a number (got {shown(value)})", hint=hint)
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise SettingsError(f"{key} is too large (got {shown(value)})", hint=hint or "give an ordinary number")
    try:
        number = float(value)
    except (OverflowError, ValueError, TypeError):
        raise SettingsError(f"{key} must be a number (got {shown(value)})", hint=hint) from None
    if not math.isfinite(number):
        raise SettingsError(f"{key} must be a finite number (got {shown(value)})", hint=hint)
    return number


def literal(text: str, key: str) -> int | float | None:
    """A number written as text -> int (digits only) or float; None if `text` is not written
    as a decimal number at all (an expression, a word), so a caller can take it as text.
    SettingsError if it is a number too long (MAX_LITERAL) or with too large an exponent."""
    s = text.strip()
    if s.lower().lstrip("+-") in _NON_FINITE:  # a number, which its setting refuses as not finite
        return float(s)
    m = _DECIMAL.fullmatch(s)
    if m is None:
        return None
    if len(s) > MAX_LITERAL:
        raise SettingsError(f"{key}: the number {shown(s)} is {len(s)} characters long, more than {MAX_LITERAL}",
                            hint="write it with an exponent, e.g. 1.5e-7")
    exp = m["exp"]
    if exp is not None and abs(int(exp)) > MAX_EXPONENT:
        raise SettingsError(f"{key}: the exponent of {s} is out of range (at most e±{MAX_EXPONENT})",
                            hint="give an ordinary number")
    if "." in s or exp is not None:
        return float(s)
    return int(s)


def number(text: Any, key: str, hint: str | None = None) -> int | float:
    """`literal`, with anything that is not a number refused: SettingsError naming `key`."""
    value = literal(text, key) if isinstance(text, str) else None
    if value is None:
        raise SettingsError(f"{key} {shown(text)} is not a number", hint=hint)
    return value


def fraction(value: Any, key: str, hint: str | None = None) -> Fraction:
    """An exact rational from "24", "29.97", "30000/1001", 25 or 23.976 (text bounded as in
    `literal`, each side of a ratio too); SettingsError naming `key` otherwise."""
    if isinstance(value, bool):
        raise SettingsError(f"{key} {shown(value)} is not a number", hint=hint)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not is_finite(value):
            raise SettingsError(f"{key} must be a finite number (got {shown(value)})", hint=hint)
        return Fraction(value)
    text = str(value).strip() if isinstance(value, (str, Fraction)) else None
    if text is None:
        raise SettingsError(f"{key} {shown(value)} is not a number", hint=hint)
    ratio = _RATIO.fullmatch(text) if len(text) <= 2 * MAX_LITERAL + 3 else None
    if ratio is not None:
        num, den = number(ratio["num"], key, hint), number(ratio["den"], key, hint)
        if den == 0:
            raise SettingsError(f"{key} {text!r} divides by zero", hint=hint)
        return Fraction(num, den)
    parsed = number(text, key, hint)
    if not is_finite(parsed):  # "nan", "inf": Fraction() has no such values
        raise SettingsError(f"{key} must be a finite number (got {shown(text)})", hint=hint)
    return Fraction(text) if isinstance(parsed, float) else Fraction(parsed)
