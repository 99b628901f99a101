"""Camera paths for `dreamvid zoom`: zoom / rotate / pan per second -> one affine per frame.

Conventions (pinned by tests/test_trajectory.py):

* Pixel coordinates are OpenCV's: x right, y down, pixel centres on integers, so a W x H
  frame covers [-0.5, W - 0.5] x [-0.5, H - 0.5]. `center` (cx, cy) in fractions of width and
  height is the point (cx * W - 0.5, cy * H - 0.5): (0.5, 0.5) is the middle, (0, 0) the
  top-left corner of the frame.
* Every affine here is a (2, 3) float64 FORWARD map: it sends a pixel position in the
  previous frame to its position in the next one, which is exactly what
  `cv2.warpAffine(prev, M, (W, H))` (default flags) expects. `apply(prev, M)` does that.
* Motion describes how the PICTURE moves, per second:
  - zoom > 1 magnifies the picture about `center` (the camera flies into that point),
    zoom < 1 shrinks it, 1 is still; after t seconds the scale is zoom ** t.
  - rotate > 0 turns the picture counter-clockwise as the viewer sees it (degrees / s),
    the same sign as cv2.getRotationMatrix2D.
  - pan (dx, dy) moves the picture right / down (pixels / s at the output size); it is the
    velocity of the picture at `center`.
* fps independence: a step of dt seconds is the EXACT flow over dt of the velocity field
  "grow at log(zoom) and turn at rotate about c, plus pan", so for constant motion N steps
  of 1/fps compose to the same transform at every fps (up to rounding). With keyframes a
  step is split at keyframe times and each piece uses the rates at its mid-time
  (second-order accurate); 24 and 60 fps agree to a small fraction of a pixel.

Keyframes (TOML, `parse_keyframes`): see that function's docstring.
"""
from __future__ import annotations

import bisect
import functools
import math
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from dreamvid import tomltext, userfiles
from dreamvid.errors import SettingsError
from dreamvid.expr import Expression
from dreamvid.expr import parse as parse_expression
from dreamvid.numeric import is_finite, shown

# Motion defaults: a still camera looking at the middle of the frame.
DEFAULT_ZOOM = 1.0  # factor per second; 1 = still
DEFAULT_ROTATE = 0.0  # degrees per second, + = counter-clockwise on screen
DEFAULT_PAN = (0.0, 0.0)  # pixels per second (right, down) at the output size
DEFAULT_CENTER = (0.5, 0.5)  # fractions of (width, height)

MOTION_KEYS = ("zoom", "rotate", "pan", "center")
KEYFRAME_KEYS = ("time", "easing")  # per-keyframe keys that are not values
DEFAULT_EASING = "linear"

# Below this |z| the series of (e^z - 1) / z is used: the direct formula loses digits.
_PHI_SERIES_BELOW = 1e-5


# --------------------------------------------------------------------------- easing

def _linear(u: float) -> float:
    return u


def _ease_in_out(u: float) -> float:
    return u * u * (3.0 - 2.0 * u)  # smoothstep: flat at both ends


def _ease_in(u: float) -> float:
    return u * u


def _ease_out(u: float) -> float:
    return 1.0 - (1.0 - u) * (1.0 - u)


def _hold(u: float) -> float:
    return 1.0 if u >= 1.0 else 0.0  # keep this keyframe's value, jump at the next one


# How values travel from one keyframe to the next: u in [0, 1] -> weight of the next one.
EASINGS: dict[str, Callable[[float], float]] = {
    "linear": _linear,
    "ease-in-out": _ease_in_out,
    "ease-in": _ease_in,
    "ease-out": _ease_out,
    "hold": _hold,
}


def ease(name: str, u: float) -> float:
    """Eased weight in [0, 1] of the next keyframe at fraction u (clipped to [0, 1])."""
    if name not in EASINGS:
        raise SettingsError(
            f"easing {name!r} is not known",
            hint=f"use one of: {', '.join(EASINGS)}",
        )
    return EASINGS[name](min(1.0, max(0.0, float(u))))


# --------------------------------------------------------------------------- motion

def _number(key: str, value: Any, where: str = "") -> float:
    """A finite float from a user value, or SettingsError naming the key."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SettingsError(f"{where}{key} must be a number (got {shown(value)})",
                            hint=f"write {key} as a plain number, e.g. {key} = 1.0")
    if isinstance(value, int) and not is_finite(value):  # 400 digits in a TOML file: float() would overflow
        raise SettingsError(f"{where}{key} is too large (got {shown(value)})", hint=f"give {key} an ordinary number")
    value = float(value)
    if not math.isfinite(value):
        raise SettingsError(f"{where}{key} must be a finite number (got {value})",
                            hint=f"give {key} an ordinary number")
    return value


def _pair(key: str, value: Any, where: str = "") -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)) \
            or len(value) != 2:
        raise SettingsError(f"{where}{key} must be two numbers (got {shown(value)})",
                            hint=f"write {key} as [x, y], e.g. {key} = [0, 0]")
    return (_number(key, value[0], where), _number(key, value[1], where))


@dataclass(frozen=True)
class Motion:
    """Constant camera motion, per second (see the module docstring for the signs)."""

    zoom: float = DEFAULT_ZOOM  # scale factor per second, > 0; > 1 zooms in
    rotate: float = DEFAULT_ROTATE  # degrees per second, + = counter-clockwise on screen
    pan: tuple[float, float] = DEFAULT_PAN  # picture velocity (px/s right, px/s down)
    center: tuple[float, float] = DEFAULT_CENTER  # zoom/rotation centre, fractions of (W, H)

    def __post_init__(self) -> None:
        validate_motion(self)


def validate_motion(motion: Motion) -> None:
    """Check a Motion and normalise it in place (floats, tuples of floats)."""
    zoom = _number("zoom", motion.zoom)
    if zoom <= 0:
        raise SettingsError(
            f"zoom must be > 0 (got {motion.zoom})",
            hint="zoom is a factor per second: 1 is still, 1.1 zooms in, 0.9 zooms out",
        )
    rotate = _number("rotate", motion.rotate)
    pan = _pair("pan", motion.pan)
    center = _pair("center", motion.center)
    if not all(0.0 <= c <= 1.0 for c in center):
        raise SettingsError(
            f"center must be fractions of width and height in [0, 1] (got {motion.center})",
            hint="center = [0.5, 0.5] is the middle of the frame, [0, 0] its top-left corner",
        )
    for name, value in (("zoom", zoom), ("rotate", rotate), ("pan", pan), ("center", center)):
        object.__setattr__(motion, name, value)


# --------------------------------------------------------------------------- affines

def identity() -> np.ndarray:
    """The (2, 3) float64 identity affine."""
    return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _h(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (2, 3):
        raise ValueError(f"an affine must have shape (2, 3), got {m.shape}")
    return np.vstack([m, [0.0, 0.0, 1.0]])


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a o b: first b, then a (the matrix product a @ b in homogeneous coordinates)."""
    return (_h(a) @ _h(b))[:2]


def invert(a: np.ndarray) -> np.ndarray:
    """The inverse affine: compose(invert(a), a) == identity()."""
    return np.linalg.inv(_h(a))[:2]


def apply_points(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) float (x, y) pixel positions through affine m -> (N, 2) float64."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    m = np.asarray(m, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


# cv2 interpolation flags by name; imported lazily so this module needs no cv2 to load.
from .settings import INTERPOLATIONS, MAX_ZOOM_SECONDS  # noqa: E402  (validated in settings.py)

# Keyframes in one file: a keyframe a frame for 7 minutes at 24 fps (music is followed with expressions
# of its envelopes, not a keyframe a beat). Planning costs ~0.4 ms a keyframe (its expressions parsed).
MAX_KEYFRAMES = 10_000
_FEWER_KEYFRAMES = "ease between fewer keyframes, or follow a song with expressions of its envelopes (--audio)"


def apply(image: np.ndarray, m: np.ndarray, interpolation: str = "cubic") -> np.ndarray:
    """Move `image` by forward affine m: (H, W[, C]) uint8 or float -> same shape and dtype.

    Uncovered pixels (zooming out, rotating, panning) are filled by mirroring the picture
    at its edges (cv2.BORDER_REFLECT), which dreams better than a black border.
    """
    import cv2

    flags = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR,
             "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}
    if interpolation not in flags:
        raise SettingsError(f"interpolation {interpolation!r} is not known",
                            hint=f"use one of: {', '.join(INTERPOLATIONS)}")
    h, w = image.shape[:2]
    return cv2.warpAffine(image, np.asarray(m, dtype=np.float64), (w, h),
                          flags=flags[interpolation], borderMode=cv2.BORDER_REFLECT)


def _phi(z: complex) -> complex:
    """(e^z - 1) / z, with its limit 1 at z = 0."""
    if abs(z) < _PHI_SERIES_BELOW:
        return 1.0 + z / 2.0 + z * z / 6.0
    return (np.exp(z) - 1.0) / z


def center_px(center: tuple[float, float], size: tuple[int, int]) -> tuple[float, float]:
    """Fractions of (width, height) -> pixel position (pixel centres on integers)."""
    return (center[0] * size[0] - 0.5, center[1] * size[1] - 0.5)


def frame_affine(motion: Motion, dt: float, size: tuple[int, int]) -> np.ndarray:
    """The forward (2, 3) float64 affine moving the previous frame onto the next, dt s later.

    size: (width, height) in pixels, as cv2 takes it. Scale zoom ** dt and rotation
    rotate * dt about `center`; the translation is pan integrated along the same flow
    (pan * dt exactly when zoom == 1 and rotate == 0), which keeps N steps of dt equal to
    one step of N * dt.
    """
    # As complex numbers x + iy (y down), the picture's velocity is lam (p - c) + pan with
    # lam = log(zoom) - i omega: a counter-clockwise turn on screen is e^{-i theta} in y-down.
    lam = complex(math.log(motion.zoom), -math.radians(motion.rotate))
    grow = np.exp(lam * dt)
    shift = _phi(lam * dt) * dt * complex(*motion.pan)
    a, b = grow.real, -grow.imag  # [[a, b], [-b, a]] multiplies by grow
    cx, cy = center_px(motion.center, size)
    return np.array([
        [a, b, cx - (a * cx + b * cy) + shift.real],
        [-b, a, cy - (-b * cx + a * cy) + shift.imag],
    ])


# --------------------------------------------------------------------------- schedules

@dataclass(frozen=True)
class Envelope:
    """A signal sampled at `times` (seconds), e.g. the loudness of a soundtrack: value(t) by
    linear interpolation, held before the first and after the last sample."""

    times: np.ndarray
    values: np.ndarray

    def __call__(self, t):
        return np.interp(t, self.times, self.values)


class Schedule:
    """What expressions see: t, f = round(t * fps), fps, duration and envelopes. Each
    expression is evaluated once, vectorised, at the frame times where it is used (all of
    them, or its `Span`): the work is the frames times the expressions live at once, not
    times every keyframe's. Other times (the mid-step rates of an affine) are evaluated on demand."""

    def __init__(self, fps: float, duration: float, envelopes: Mapping[str, Envelope], expressions):
        self.fps, self.duration, self.envelopes = float(fps), float(duration), envelopes
        n = max(1, int(math.floor(duration * fps + 0.5)))
        self.frame_times = np.arange(n) / self.fps
        env = {name: e(self.frame_times) for name, e in envelopes.items()}
        self._frames: dict[int, tuple[int, np.ndarray]] = {}  # id -> (first frame, values from it)
        spans = [x if isinstance(x, Span) else Span(x) for x in expressions]
        for span in spans:
            a, b = np.searchsorted(self.frame_times, (span.start, span.end), side="left")
            b = max(a, int(np.searchsorted(self.frame_times, span.end, side="right")))
            cut = {name: v[a:b] for name, v in env.items()}
            self._frames[id(span.expression)] = (int(a), span.expression.at(
                self.frame_times[a:b], self.fps, duration=self.duration, **cut))
        self._keep = spans  # the ids above stay valid while this lives

    def value(self, x: Expression, t: float) -> float:
        i = t * self.fps
        k = int(round(i))
        first, cached = self._frames.get(id(x), (0, None))
        if cached is not None and abs(i - k) < 1e-9 and 0 <= k - first < len(cached):
            return float(cached[k - first])
        env = {name: float(e(t)) for name, e in self.envelopes.items()}
        out = x.at(np.array([t]), self.fps, duration=self.duration, **env)
        return float(out[0])


@dataclass(frozen=True)
class Span:
    """An expression and the times (seconds, inclusive) at which keyframes may evaluate it."""

    expression: Expression
    start: float = -math.inf
    end: float = math.inf


# --------------------------------------------------------------------------- keyframes

@dataclass(frozen=True)
class Keyframes:
    """Values over time: motion and dream parameters, eased between keyframes.

    Built by `parse_keyframes` (TOML) or `Keyframes.from_list` (Python); the rules for
    keys a keyframe leaves out are in parse_keyframes. Each state here is complete.
    """

    times: tuple[float, ...]  # seconds, strictly increasing
    states: tuple[dict, ...]  # full value set at each time (a value may be an expr.Expression of t)
    easings: tuple[str, ...]  # how values travel from keyframe k to k + 1
    dream_keys: Mapping[str, type] = field(default_factory=dict)
    context: Schedule | None = field(default=None, compare=False)  # fps, duration, envelopes (bind)

    def bind(self, fps: float, duration: float, envelopes: Mapping[str, Any] | None = None) -> "Keyframes":
        """These keyframes with what their expressions may use: fps, duration, and audio
        envelopes (name -> Envelope). Each expression is evaluated once for every frame time
        between the keyframes around the states that hold it (`spans`)."""
        return replace(self, context=Schedule(fps, duration, dict(envelopes or {}), self.spans))

    @functools.cached_property
    def spans(self) -> tuple[Span, ...]:
        """Each expression once (a value held from keyframe to keyframe is one object), with the
        times `at` may need it: from the keyframe before the first state holding it to the
        keyframe after the last one (open-ended at the first and last keyframe). One pass over
        the states: planning stays linear in frames plus keyframes."""
        held: dict[int, list] = {}  # id -> [expression, first state, last state]
        for k, state in enumerate(self.states):
            for v in state.values():
                for x in (v.values() if isinstance(v, dict) else v if isinstance(v, tuple) else (v,)):
                    if isinstance(x, Expression):
                        held.setdefault(id(x), [x, k, k])[2] = k
        last = len(self.times) - 1
        return tuple(Span(x, self.times[a - 1] if a > 0 else -math.inf, self.times[b + 1] if b < last else math.inf)
                     for x, a, b in held.values())

    @property
    def has_expressions(self) -> bool:
        return bool(self.spans)

    @classmethod
    def from_list(cls, items: Sequence[Mapping[str, Any]], dream_keys: Mapping[str, type],
                  defaults: Mapping[str, Any] | None = None) -> "Keyframes":
        """Validate keyframe dicts (the TOML [[keyframe]] tables) into Keyframes.

        defaults: values before any keyframe sets them (see parse_keyframes).
        """
        _check_dream_keys(dream_keys)
        defaults = dict(defaults or {})
        for key in defaults:
            if key not in MOTION_KEYS and key not in dream_keys:
                raise ValueError(f"default for unknown key {key!r}")
        start = {"zoom": DEFAULT_ZOOM, "rotate": DEFAULT_ROTATE,
                 "pan": DEFAULT_PAN, "center": DEFAULT_CENTER,
                 **_check_values(defaults, dream_keys, "")}
        if isinstance(items, Mapping) or not isinstance(items, Sequence) or not items:
            raise SettingsError("keyframes need at least one [[keyframe]] table",
                                hint="start with [[keyframe]] then time = 0 and the values")
        if len(items) > MAX_KEYFRAMES:  # before any is read: the plan's size is known from the count
            raise SettingsError(f"there are {len(items)} keyframes, more than the {MAX_KEYFRAMES} a zoom may have",
                                hint=_FEWER_KEYFRAMES)
        times: list[float] = []
        easings: list[str] = []
        raw: list[dict] = []
        for n, item in enumerate(items, start=1):
            t, easing, values = _read_keyframe(n, item, dream_keys, times[-1] if times else None)
            times.append(t)
            easings.append(easing if easing is not None else (easings or [DEFAULT_EASING])[-1])
            raw.append(values)
        states = _fill(raw, start, dream_keys)
        return cls(tuple(times), tuple(states), tuple(easings), dict(dream_keys))

    @property
    def duration(self) -> float:
        """Time of the last keyframe, seconds."""
        return self.times[-1]

    def at(self, t: float) -> dict[str, Any]:
        """Every value at time t seconds (motion keys always, dream keys that were set).
        Expressions are evaluated at t; between two keyframes the two values (numbers or
        expressions) are eased into each other."""
        k = bisect.bisect_right(self.times, t) - 1
        if k < 0 or k == len(self.times) - 1:  # before the first / after the last: hold
            return self._values(self.states[max(k, 0)], t)
        u = (t - self.times[k]) / (self.times[k + 1] - self.times[k])
        w = ease(self.easings[k], u)
        a, b = self._values(self.states[k], t), self._values(self.states[k + 1], t)
        return {key: _interp(key, a[key], b[key], w, self.dream_keys.get(key)) for key in a}

    def _values(self, state: Mapping[str, Any], t: float) -> dict[str, Any]:
        """A state with its expressions evaluated at t (numbers as they are)."""
        out = {}
        for key, v in state.items():
            if isinstance(v, dict):
                out[key] = {n: self._number_at(x, t) for n, x in v.items()}
            elif isinstance(v, tuple):
                out[key] = tuple(self._number_at(x, t) for x in v)
            else:
                out[key] = self._number_at(v, t)
            if key in self.dream_keys and self.dream_keys[key] is int and isinstance(state[key], Expression):
                out[key] = int(math.floor(out[key] + 0.5))
        return out

    def _number_at(self, v: Any, t: float) -> Any:
        if not isinstance(v, Expression):
            return v
        if self.context is None:
            raise ValueError("keyframes with expressions must be bound (Keyframes.bind) before use")
        return self.context.value(v, t)

    def motion_at(self, t: float) -> Motion:
        """The motion rates at time t (SettingsError naming t when an expression leaves the range)."""
        values = self.at(t)
        try:
            return Motion(**{k: values[k] for k in MOTION_KEYS})
        except SettingsError as e:
            if not self.has_expressions:
                raise
            raise SettingsError(f"at t = {t:.3f} s: {e.message}",
                                hint=e.hint or "check the expressions that set the motion") from None

    def dream_at(self, t: float) -> dict[str, Any]:
        """The dream-parameter values at time t (keys set by a keyframe or in defaults)."""
        values = self.at(t)
        return {k: v for k, v in values.items() if k not in MOTION_KEYS}


def parse_keyframes(text_or_path: str | os.PathLike, dream_keys: Mapping[str, type],
                    defaults: Mapping[str, Any] | None = None) -> Keyframes:
    """Keyframes from TOML text or a TOML file.

    A str with a newline or '=' in it is TOML text; anything else is a path.
    dream_keys: name -> type of every dream parameter a keyframe may set (float, int -> lerp,
    int rounded; bool, str -> hold; dict -> {name: weight} table lerped per name, a name
    missing on one side weighing 0 there). The document is a list of [[keyframe]] tables:

        [[keyframe]]
        time = 0                  # seconds; strictly increasing; values hold before the first
        zoom = 1.05               # zoom, rotate, pan = [dx, dy], center = [cx, cy]: see Motion
        easing = "ease-in-out"    # from this keyframe to the next: linear (default), ease-in-out,
                                  # ease-in, ease-out, hold; like any key it holds until changed
        step = 0.02               # any dream key
        layers = { block4c_out = 1.0 }

    A key holds until a keyframe changes it. Before a keyframe sets a key it has its value
    in `defaults` (typically the resolved settings and motion flags), else for motion keys
    the still camera (zoom 1, rotate 0, pan [0, 0], center [0.5, 0.5]), else (a dream key
    with no default) its first keyframe value. Before the first keyframe and after the last
    the values hold. zoom travels geometrically (it is a rate, log(zoom)), so 0.8 -> 1.25
    passes through 1.0 halfway; int keys are rounded (half up) after blending.
    Unknown keys, bad values, unknown easings and times that do not strictly increase raise
    SettingsError naming the keyframe (1-based) and the key; an unreadable file InputError.
    """
    how = "each keyframe starts with [[keyframe]]; see toml.io"
    if isinstance(text_or_path, os.PathLike) or (
            isinstance(text_or_path, str) and "\n" not in text_or_path and "=" not in text_or_path):
        origin = f"keyframes file {str(text_or_path)!r}"  # a regular file, bounded, UTF-8 (userfiles)
        text = userfiles.read_text(text_or_path, "keyframes file")
    else:
        text, origin = str(text_or_path), "keyframes"
    if text.count("[[keyframe]]") > MAX_KEYFRAMES:  # before parsing: a 4 MB file of them parses for seconds
        raise SettingsError(f"{origin} has {text.count('[[keyframe]]')} keyframes, more than the {MAX_KEYFRAMES} "
                            "a zoom may have", hint=_FEWER_KEYFRAMES)
    doc = tomltext.loads(text, origin, hint=how)
    for key in doc:
        if key != "keyframe":
            raise SettingsError(f"{origin}: unknown top-level key {shown(key)}",
                                hint="the file holds only [[keyframe]] tables")
    return Keyframes.from_list(doc.get("keyframe", []), dream_keys, defaults)


def _read_keyframe(n: int, item: Any, dream_keys: Mapping[str, type],
                   previous_time: float | None) -> tuple[float, str | None, dict]:
    """Check keyframe number n (1-based) -> (time, easing or None if unset, values)."""
    where = f"keyframe {n}: "
    if not isinstance(item, Mapping):
        raise SettingsError(f"keyframe {n} must be a table of values (got {shown(item)})",
                            hint="write each keyframe as a [[keyframe]] table")
    known = (*KEYFRAME_KEYS, *MOTION_KEYS, *dream_keys)
    for key in item:
        if key not in known:
            raise SettingsError(f"{where}unknown key {shown(key)}",
                                hint=f"known keys: {', '.join(known)}")
    if "time" not in item:
        raise SettingsError(f"{where}time is missing", hint="every keyframe needs time = SECONDS")
    t = _number("time", item["time"], where)
    if t < 0:
        raise SettingsError(f"{where}time must be >= 0 seconds (got {t:g})",
                            hint="times are seconds from the start of the animation")
    if t > MAX_ZOOM_SECONDS:  # the zoom lasts to the last keyframe: held to the limit of --duration
        raise SettingsError(f"{where}time {t:g} s is past the {MAX_ZOOM_SECONDS // 3600} h a zoom may last",
                            hint="times are seconds from the start of the animation, e.g. time = 90")
    if previous_time is not None and t <= previous_time:
        raise SettingsError(
            f"keyframe {n} has time {t:g} but keyframe {n - 1} has time {previous_time:g}",
            hint="keyframe times must strictly increase, in file order")
    easing = item.get("easing")
    if easing is not None and (not isinstance(easing, str) or easing not in EASINGS):
        raise SettingsError(f"{where}easing {shown(easing)} is not known",
                            hint=f"use one of: {', '.join(EASINGS)}")
    values = {k: v for k, v in item.items() if k not in KEYFRAME_KEYS}
    return t, easing, _check_values(values, dream_keys, where)


def _check_dream_keys(dream_keys: Mapping[str, type]) -> None:
    # Programming errors (the caller's table), not user errors.
    for key, kind in dream_keys.items():
        if key in MOTION_KEYS or key in KEYFRAME_KEYS:
            raise ValueError(f"dream key {key!r} clashes with a keyframe key")
        if kind not in (float, int, bool, str, dict):
            raise TypeError(f"dream key {key!r} has unsupported type {kind!r}")


def _dream_value(key: str, value: Any, kind: type, where: str) -> Any:
    if kind in (float, int) and isinstance(value, (str, Expression)):
        return _expression(key, value, where)  # evaluated per frame (int: rounded half up)
    if kind is float:
        return _number(key, value, where)
    if kind is int:
        v = _number(key, value, where)
        if v != int(v):
            raise SettingsError(f"{where}{key} must be a whole number (got {shown(value)})",
                                hint=f"write {key} without a fractional part")
        return int(v)
    if kind is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"{where}{key} must be true or false (got {shown(value)})",
                                hint=f"write {key} = true or {key} = false")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise SettingsError(f"{where}{key} must be a string (got {shown(value)})",
                                hint=f'write {key} = "..."')
        return value
    # dict: a {name: weight} table such as layers
    if not isinstance(value, Mapping) or not value:
        raise SettingsError(f"{where}{key} must be a non-empty table of name = weight "
                            f"(got {shown(value)})", hint=f"write {key} = {{ name = 1.0 }}")
    return {str(name): _expression(f"{key}.{name}", w, where) if isinstance(w, (str, Expression))
            else _number(f"{key}.{name}", w, where) for name, w in value.items()}


def _check_values(values: Mapping[str, Any], dream_keys: Mapping[str, type],
                  where: str) -> dict[str, Any]:
    """Checked, normalised copy of motion and dream values (keys already known). A number
    may be given as an expression of t (a string, see expr.py): it is parsed here and its
    range checked once it is evaluated (every frame, before the render)."""
    out = {}
    constant = {k: values[k] for k in MOTION_KEYS if k in values and not _has_expression(values[k])}
    try:  # the motion keys given, checked against defaults for the rest
        motion = Motion(**constant)
    except SettingsError as e:
        raise SettingsError(where + e.message, hint=e.hint) from None
    for key, value in values.items():
        if key in MOTION_KEYS:
            out[key] = getattr(motion, key) if key in constant else _motion_expression(key, value, where)
        else:
            out[key] = _dream_value(key, value, dream_keys[key], where)
    return out


def _has_expression(value: Any) -> bool:
    return isinstance(value, (str, Expression)) or (
        isinstance(value, (list, tuple)) and any(isinstance(x, (str, Expression)) for x in value))


def _expression(key: str, value: Any, where: str) -> Expression:
    try:
        return parse_expression(value, key)
    except SettingsError as e:
        raise SettingsError(where + e.message, hint=e.hint) from None


def _motion_expression(key: str, value: Any, where: str) -> Any:
    if key in ("zoom", "rotate"):
        return _expression(key, value, where)
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) != 2:
        raise SettingsError(f"{where}{key} must be two numbers or expressions (got {shown(value)})",
                            hint=f'write {key} as [x, y], e.g. {key} = ["10*sin(t)", 0]')
    return tuple(_expression(key, x, where) if isinstance(x, (str, Expression)) else _number(key, x, where)
                 for x in value)


def _fill(raw: list[dict], start: dict, dream_keys: Mapping[str, type]) -> list[dict]:
    """Complete states: a key holds until changed, starting from `start`; a dream key
    with no start value has its first keyframe value from the beginning."""
    current = dict(start)
    for key in dream_keys:
        if key not in current:
            first = next((item[key] for item in raw if key in item), None)
            if first is not None:
                current[key] = first
    states = []
    for item in raw:
        current = {**current, **item}
        states.append(current)
    return states


def _interp(key: str, a: Any, b: Any, w: float, kind: type | None) -> Any:
    """Value between a (w = 0) and b (w = 1)."""
    if key == "zoom":  # a rate: travel in log space
        v = a if w == 0 else b if w == 1 else math.exp((1 - w) * math.log(a) + w * math.log(b))
    elif key in ("pan", "center"):
        v = tuple((1 - w) * x + w * y for x, y in zip(a, b))
    elif key == "rotate" or kind is float:
        v = (1 - w) * a + w * b
    elif kind is int:
        v = int(math.floor((1 - w) * a + w * b + 0.5))  # round half up, never banker's
    elif kind is dict:
        v = {}
        for name in (*a, *(n for n in b if n not in a)):
            weight = (1 - w) * a.get(name, 0.0) + w * b.get(name, 0.0)
            if weight != 0.0:  # a layer fully faded out is not computed at all
                v[name] = weight
    else:  # bool, str: cannot be blended, switch at the next keyframe
        v = b if w >= 1 else a
    return v


# --------------------------------------------------------------------------- trajectory

class Trajectory:
    """One affine and one set of dream overrides per output frame.

    Frame i is at time i / fps; frame 0 is the input picture. `affine(i)` moves frame i - 1
    onto frame i (identity for i = 0); `cumulative(i)` moves frame 0 onto frame i.
    """

    def __init__(self, source: Motion | Keyframes, fps: float, size: tuple[int, int], *,
                 duration: float | None = None, n_frames: int | None = None,
                 envelopes: Mapping[str, Envelope] | None = None):
        """source: constant Motion or Keyframes; size: output (width, height) in pixels.

        Give duration (seconds; frames = round(duration * fps)) or n_frames; with Keyframes
        and neither, the duration is the last keyframe's time. envelopes: signals the
        keyframes' expressions may use by name (audio: rms, onset, bass, mid, treble).
        """
        if not isinstance(source, (Motion, Keyframes)):
            raise TypeError(f"source must be Motion or Keyframes, got {type(source).__name__}")
        fps = _number("fps", fps)
        if fps <= 0:
            raise SettingsError(f"fps must be > 0 (got {fps:g})",
                                hint="frames per second of the output, e.g. --fps 24")
        self.size = _size(size)
        self.source = source
        self.fps = fps
        self.n_frames = _frame_count(source, fps, duration, n_frames)
        self.times = np.arange(self.n_frames) / fps  # (n_frames,) float64 seconds
        if isinstance(source, Keyframes) and (source.has_expressions or envelopes):
            self.source = source = source.bind(fps, self.n_frames / fps, envelopes)
        self._cumulative = [identity()]

    def __len__(self) -> int:
        return self.n_frames

    def _index(self, i: int) -> int:
        if not 0 <= i < self.n_frames:
            raise IndexError(f"frame {i} is outside 0..{self.n_frames - 1}")
        return int(i)

    def motion(self, i: int) -> Motion:
        """The motion rates at frame i's time."""
        i = self._index(i)
        if isinstance(self.source, Motion):
            return self.source
        return self.source.motion_at(float(self.times[i]))

    def params(self, i: int) -> dict[str, Any]:
        """Dream-parameter overrides at frame i ({} for constant Motion)."""
        i = self._index(i)
        if isinstance(self.source, Motion):
            return {}
        return self.source.dream_at(float(self.times[i]))

    def affine(self, i: int) -> np.ndarray:
        """(2, 3) float64 forward affine from frame i - 1 to frame i; identity for i = 0."""
        i = self._index(i)
        if i == 0:
            return identity()
        t0, t1 = (i - 1) / self.fps, i / self.fps
        if isinstance(self.source, Motion):
            return frame_affine(self.source, t1 - t0, self.size)
        # Split the step where a keyframe falls inside it, so 'hold' jumps and the kinks of
        # linear easing land on the right side at every fps; each piece uses mid-time rates.
        times = self.source.times  # the keyframes inside the step, found by bisection (not a scan per frame)
        cuts = times[bisect.bisect_right(times, t0):bisect.bisect_left(times, t1)]
        m = identity()
        for a, b in zip([t0, *cuts], [*cuts, t1]):
            m = compose(frame_affine(self.source.motion_at((a + b) / 2), b - a, self.size), m)
        return m

    def cumulative(self, i: int) -> np.ndarray:
        """(2, 3) float64 forward affine from frame 0 to frame i."""
        i = self._index(i)
        while len(self._cumulative) <= i:
            k = len(self._cumulative)
            self._cumulative.append(compose(self.affine(k), self._cumulative[-1]))
        return self._cumulative[i].copy()


def _frame_count(source: Motion | Keyframes, fps: float, duration: float | None,
                 n_frames: int | None) -> int:
    if duration is not None and n_frames is not None:
        raise SettingsError("give duration or a frame count, not both",
                            hint="drop one of --duration and --frames")
    if duration is None and n_frames is None:
        if not isinstance(source, Keyframes) or source.duration <= 0:
            raise SettingsError("duration is missing",
                                hint="give a duration in seconds, e.g. --duration 10")
        duration = source.duration
    if duration is not None:
        duration = _number("duration", duration)
        if duration <= 0:
            raise SettingsError(f"duration must be > 0 seconds (got {duration:g})",
                                hint="e.g. --duration 10")
        n_frames = int(math.floor(duration * fps + 0.5))
        if n_frames < 1:
            raise SettingsError(
                f"duration {duration:g} s at {fps:g} fps is less than one frame",
                hint="give a longer duration or a higher fps")
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) \
            or n_frames < 1:
        raise SettingsError(f"frames must be a whole number > 0 (got {shown(n_frames)})",
                            hint="e.g. --frames 240")
    return int(n_frames)


def _size(size: Any) -> tuple[int, int]:
    ok = (isinstance(size, Sequence) and len(size) == 2
          and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
                  for s in size))
    if not ok:
        raise SettingsError(f"size must be (width, height) in whole pixels >= 1 (got {size!r})",
                            hint="pass the output frame size, e.g. (1280, 720)")
    return (int(size[0]), int(size[1]))
