"""Every parameter a user can set, as frozen dataclasses, and the one place they are validated.

The names are the users' own (the Keras DeepDream example's): `step`, `num_octave`,
`octave_scale`, `iterations`, `max_loss`, `layers`. CLI flags, TOML keys and library
keywords all use them. No I/O here; presets.py turns TOML into these objects.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import SettingsError

DEFAULT_MODEL = "efficientnet_lite0"
MAX_ITERATIONS = 10_000  # per octave; past this a typo is likelier than intent
MAX_OCTAVES = 20
MIN_TILE = 64  # px; smaller tiles give the network too little context to dream anything
MAX_TILE_BATCH = 64  # tiles per network call, at most (a 4K image in 512-px tiles is 40)
FLOW_METHODS = ("dis", "farneback", "none")
FLOW_QUALITIES = ("ultrafast", "fast", "medium")
PRECISIONS = ("float32", "mixed")

Layers = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class DreamSettings:
    """How one image is dreamed. Defaults are the Keras DeepDream example's (the `classic` preset)."""

    model: str = DEFAULT_MODEL  # registry name (see `dreamvid models`) or a path to a .keras file
    layers: Layers = ()  # ((layer name, weight), ...); empty = the model's default layers
    step: float = 0.01  # gradient-ascent step size, in units of the image scaled to [-1, 1]
    num_octave: int = 3  # number of scales the image is dreamed at
    octave_scale: float = 1.4  # size ratio between successive octaves
    iterations: int = 20  # gradient-ascent steps per octave
    max_loss: float | None = 10.0  # stop an octave early once the loss passes this (None: never)
    jitter: int = 32  # px; random roll applied before each step, hides tile seams and grid artefacts
    tile: int = 512  # px; images larger than this are processed in tiles of this size (bounded memory)
    tile_batch: int | None = None  # tiles per network call; None: as many as fit on a GPU (<= 16), 1 on a CPU
    seed: int = 0  # seeds the jitter; frame index is mixed in for video
    max_size: int | None = None  # px; downscale so the longest side is at most this (None: keep size)
    weights: str | None = None  # a local weights file for a downloadable model, instead of fetching it
    precision: str = "float32"  # "mixed": float16/bfloat16 compute on GPU, float32 image

    def layer_dict(self) -> dict[str, float]:
        return dict(self.layers)


@dataclass(frozen=True)
class VideoSettings:
    """How a clip is dreamed frame by frame (on top of DreamSettings for each frame)."""

    flow: str = "dis"  # optical flow: dis | farneback | none (independent frames, flickers)
    flow_quality: str = "fast"  # DIS preset: ultrafast | fast | medium
    blend: float = 0.9  # how much of the propagated dream carries into the next frame, 0..1
    frame_iterations: int | None = None  # iterations per octave after the first frame (None: as DreamSettings)
    frame_num_octave: int | None = None  # octaves after the first frame (None: as DreamSettings)
    temporal_weight: float = 0.9  # 0..1: how much less re-dreaming a tracked, dreamed pixel gets (0: none less)
    strength_hold: float = 1.0  # 0..1: how fully each region keeps its dream strength from frame to frame (0: off)
    scene_cuts: bool = True  # reset the chain at hard cuts
    crf: int = 18  # x264 quality, 0 (lossless) .. 51
    keep_audio: bool = True
    fps: str | None = None  # override the source frame rate ("24", "30000/1001")


@dataclass(frozen=True)
class Settings:
    """Everything a render depends on; its hash keys the resume manifest."""

    dream: DreamSettings = field(default_factory=DreamSettings)
    video: VideoSettings = field(default_factory=VideoSettings)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["dream"]["layers"] = dict(self.dream.layers)
        return d

    def digest(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def parse_layers(value: Any) -> Layers:
    """Accept {name: weight}, [(name, weight)], ["name", "name:0.5"] -> ((name, weight), ...)."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, str):
        items = [_parse_layer_spec(value)]
    else:
        items = [_parse_layer_spec(v) if isinstance(v, str) else tuple(v) for v in value]
    out = []
    for name, weight in items:
        try:
            w = float(weight)
        except (TypeError, ValueError):
            raise SettingsError(f"layer weight for {name!r} must be a number (got {weight!r})",
                                hint="write --layer NAME:WEIGHT, e.g. --layer block4c_out:1.0") from None
        out.append((str(name), w))
    return tuple(out)


def _parse_layer_spec(spec: str) -> tuple[str, float]:
    name, sep, weight = spec.partition(":")
    return name.strip(), (weight if sep else 1.0)


def validate(s: DreamSettings) -> DreamSettings:
    """Return `s` if every value is in range, else raise SettingsError naming the key."""
    _finite(s.step, "step")
    _check(s.step > 0, "step", s.step, "must be > 0", "try 0.01 (subtle) to 0.05 (strong)")
    _int_in(s.num_octave, "num_octave", 1, MAX_OCTAVES)
    _finite(s.octave_scale, "octave_scale")
    _check(s.octave_scale > 1.0, "octave_scale", s.octave_scale, "must be > 1.0", "the classic value is 1.4")
    _int_in(s.iterations, "iterations", 0, MAX_ITERATIONS)
    if s.max_loss is not None:
        _finite(s.max_loss, "max_loss")
        _check(s.max_loss > 0, "max_loss", s.max_loss, "must be > 0", "omit it to never stop early")
    _int_in(s.jitter, "jitter", 0, 4096)
    _int_in(s.tile, "tile", MIN_TILE, 1 << 16)
    if s.tile_batch is not None:
        _int_in(s.tile_batch, "tile_batch", 1, MAX_TILE_BATCH)
    _check(isinstance(s.seed, int), "seed", s.seed, "must be an integer", "e.g. --seed 0")
    if s.max_size is not None:
        _int_in(s.max_size, "max_size", 32, 1 << 16)
    _check(s.precision in PRECISIONS, "precision", s.precision, f"must be one of {', '.join(PRECISIONS)}", None)
    for name, w in s.layers:
        _finite(w, f"layers.{name}")
    if s.layers and not any(w != 0 for _, w in s.layers):
        raise SettingsError("every layer weight is 0, so there is nothing to dream",
                            hint="give at least one layer a non-zero weight")
    return s


def validate_video(v: VideoSettings) -> VideoSettings:
    _check(v.flow in FLOW_METHODS, "flow", v.flow, f"must be one of {', '.join(FLOW_METHODS)}", None)
    _check(v.flow_quality in FLOW_QUALITIES, "flow_quality", v.flow_quality,
           f"must be one of {', '.join(FLOW_QUALITIES)}", None)
    _finite(v.blend, "blend")
    _check(0.0 <= v.blend <= 1.0, "blend", v.blend, "must be between 0 and 1", "0.9 keeps the dream coherent")
    for key in ("temporal_weight", "strength_hold"):
        value = getattr(v, key)
        _finite(value, key)
        _check(0.0 <= value <= 1.0, key, value, "must be between 0 and 1",
               "0 = off, 1 = full (the video preset uses " + ("0.9)" if key == "temporal_weight" else "1.0)"))
    if v.frame_iterations is not None:
        _int_in(v.frame_iterations, "frame_iterations", 0, MAX_ITERATIONS)
    if v.frame_num_octave is not None:
        _int_in(v.frame_num_octave, "frame_num_octave", 1, MAX_OCTAVES)
    _int_in(v.crf, "crf", 0, 51)
    return v


def _check(ok: bool, key: str, value: Any, what: str, hint: str | None) -> None:
    if not ok:
        raise SettingsError(f"{key} {what} (got {value!r})", hint=hint)


def _finite(value: Any, key: str) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    _check(ok, key, value, "must be a finite number", None)


def _int_in(value: Any, key: str, lo: int, hi: int) -> None:
    _check(isinstance(value, int) and not isinstance(value, bool), key, value, "must be a whole number", None)
    _check(lo <= value <= hi, key, value, f"must be between {lo} and {hi}", None)
