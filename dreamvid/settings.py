"""Every parameter a user can set, as frozen dataclasses, and the one place they are validated.

The names are the users' own (the Keras DeepDream example's): `step`, `num_octave`,
`octave_scale`, `iterations`, `max_loss`, `layers`. CLI flags, TOML keys and library
keywords all use them. No I/O here; presets.py turns TOML into these objects.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Mapping

from .errors import SettingsError

DEFAULT_MODEL = "efficientnet_lite0"
MAX_ITERATIONS = 10_000  # per octave; past this a typo is likelier than intent
MAX_OCTAVES = 20
MIN_TILE = 64  # px; smaller tiles give the network too little context to dream anything
MAX_TILE_BATCH = 64  # tiles per network call, at most (a 4K image in 512-px tiles is 40)
FLOW_METHODS = ("dis", "farneback", "none")
FLOW_QUALITIES = ("ultrafast", "fast", "medium")
PRECISIONS = ("auto", "float32", "mixed")
BACKENDS = ("auto", "tensorflow", "torch")  # what runs the step (dreamvid/backends/); auto: the faster here
INTERPOLATIONS = ("nearest", "linear", "cubic", "lanczos")  # cv2 warp kernels (trajectory.py)
EDGES = ("inpaint", "reflect")  # how a zoom fills the border it uncovers (render/zoom.py move)
DEFAULT_CRF = 18  # x264 quality that looks lossless
DEFAULT_CELL_SIZE = 384  # px; longest side of a picture in a contact sheet or grid
MAX_FPS = 1000  # frames per second; more is a typo
MIN_FPS = Fraction(1, 10)  # a frame every 10 s; slower is a typo (1e-9 only failed at the encode)
MAX_ZOOM_FRAMES = 100_000  # ~70 min at 24 fps; more is a typo in --duration or --fps
MAX_ZOOM_SECONDS = 24 * 3600  # s; checked before the frame count so 1e15 never allocates
MAX_CADENCE = 12  # frames per dreamed frame with --cadence; past this the carried frames drift too far
MAX_INTERPOLATE = 16  # frames per dreamed frame with --interpolate; more is a typo
MAX_SNAPSHOTS = 1000  # timelapse pictures; more is a typo (--every 1 on a long run)

Layers = tuple[tuple[str, float | str], ...]  # a str weight is an expression of time (video only)
Classes = tuple[tuple[int, float], ...]
CLASS_LAYER = "logits"  # the entry "logits/207" is ImageNet class 207's logit (models.classifier_entry)
MASK_KINDS = ("motion", "still")  # --mask computed from a clip's own flow (video only; dreamvid/mask.py)
OBJECTIVE_FIELDS = ("smooth", "classes", "guide", "guide_weight", "mask")  # left out of to_dict at their defaults
# The step's techniques of the 2015 look (dream/techniques.py), also left out of to_dict when off
TECHNIQUE_FIELDS = ("lapnorm", "decorrelate", "transform")
MAX_LAPNORM = 8  # pyramid levels; 2^8 = 256x coarser than the octave, past any picture's useful band
MAX_TRANSFORM = 3.0  # x (10% scale, 5 degrees) per step; more turns the picture too far for the network to follow


@dataclass(frozen=True)
class DreamSettings:
    """How one image is dreamed. Defaults are the Keras DeepDream example's (the `classic` preset)."""

    model: str = DEFAULT_MODEL  # registry name (see `dreamvid models`) or a path to a .keras file
    layers: Layers = ()  # ((layer name, weight), ...); empty = the model's default layers (video: a weight may be an expression)
    step: float | str = 0.01  # gradient-ascent step size, in units of the image scaled to [-1, 1] (video, zoom: or an expression)
    num_octave: int = 3  # number of scales the image is dreamed at
    octave_scale: float = 1.4  # size ratio between successive octaves
    iterations: int | str = 20  # gradient-ascent steps per octave (video: or an expression)
    max_loss: float | None = 10.0  # stop an octave early once the loss passes this (None: never)
    jitter: int = 32  # px; random roll applied before each step, hides tile seams and grid artefacts
    tile: int = 512  # px; images larger than this are processed in tiles of this size (bounded memory)
    tile_batch: int | None = None  # tiles per network call; None: as many as fit on a GPU (<= 16), 1 on a CPU
    seed: int = 0  # seeds the jitter; frame index is mixed in for video
    max_size: int | None = None  # px; downscale so the longest side is at most this (None: keep size)
    weights: str | None = None  # a local weights file for a downloadable model, instead of fetching it
    precision: str = "auto"  # "mixed": float16 (GPU) / bfloat16 (CPU) compute; "auto": the faster here (dream/auto.py)
    backend: str = "auto"  # "tensorflow", "torch" (CUDA, Apple MPS or CPU), or "auto": the faster here (dream/auto.py)
    smooth: float = 0.0  # blur of each step's gradient, % of the shorter side (0: none); calmer, larger shapes
    # What to dream of besides `layers` (entries "NAME", "NAME/CHANNEL"), and where:
    classes: Classes = ()  # ((ImageNet class index, weight), ...): --class "golden retriever"
    guide: str | None = None  # an image whose features the dream grows toward (--guide)
    guide_weight: float = 1.0  # 0..1: how much of the objective is the guide's (1: all of it)
    mask: str | None = None  # a mask image (white dreams, black keeps the picture), a mask clip, "motion", "still"
    # The step's techniques (dream/techniques.py), 0 = off: larger shapes, fewer rainbow pixels, creatures
    lapnorm: int = 0  # Laplacian-pyramid levels the gradient is normalised over band by band (the DeepDream notebook's)
    decorrelate: float = 0.0  # 0..1: the step in ImageNet's decorrelated colour space (Lucid): less rainbow noise
    transform: float = 0.0  # random scale (+-10%) and rotation (+-5 degrees) per step, times this (Lucid's robustness)

    def layer_dict(self) -> dict[str, float]:
        return dict(self.layers)

    def targets(self) -> Layers:
        """What the network is tapped at: the layer entries, then one "logits/K" entry per class."""
        return (*self.layers, *((f"{CLASS_LAYER}/{k}", w) for k, w in self.classes))


@dataclass(frozen=True)
class VideoSettings:
    """How a clip is dreamed frame by frame (on top of DreamSettings for each frame)."""

    flow: str = "dis"  # optical flow: dis | farneback | none (independent frames, flickers)
    flow_quality: str = "fast"  # DIS preset: ultrafast | fast | medium
    blend: float | str = 0.9  # how much of the propagated dream carries into the next frame, 0..1 (or an expression)
    frame_iterations: int | str | None = None  # iterations per octave after the first frame (None: as DreamSettings)
    frame_num_octave: int | None = None  # octaves after the first frame (None: as DreamSettings)
    temporal_weight: float = 0.9  # 0..1: how much less re-dreaming a tracked, dreamed pixel gets (0: none less)
    strength_hold: float = 1.0  # 0..1: how fully each region keeps its dream strength from frame to frame (0: off)
    scene_cuts: bool = True  # reset the chain at hard cuts
    crf: int = DEFAULT_CRF  # x264 quality, 0 (lossless) .. 51
    keep_audio: bool = True
    fps: str | None = None  # override the source frame rate ("24", "30000/1001"); with interpolate: the playback rate
    interpolate: int = 1  # K > 1: K - 1 flow-interpolated frames between output frames (smooth, or slow with fps)
    cadence: int = 1  # N > 1: dream every Nth frame, carry the dream along the flow through the frames between


@dataclass(frozen=True)
class ZoomSettings:
    """How the camera of `dreamvid zoom` moves and how frames are carried from one to the next."""

    # Each motion value is a number or an expression of t, f, fps, duration (and the audio
    # envelopes rms, onset, bass, mid, treble with --audio): "1.02 + 0.01*sin(2*pi*t/4)" (expr.py).
    zoom: float | str = 1.25  # scale factor per second, > 0 (1 still, > 1 in, < 1 out); 30 s travel ~800x deep
    rotate: float | str = 0.0  # degrees per second, + counter-clockwise
    pan: tuple[float | str, float | str] = (0.0, 0.0)  # px per second (right, down) at the output size
    center: tuple[float | str, float | str] = (0.5, 0.5)  # zoom/rotation centre, fractions of (width, height)
    fps: str = "24"  # frames per second: "24", "30000/1001" (the path does not depend on it)
    duration: float | None = None  # s; None: the keyframes' last time, else DEFAULT_ZOOM_DURATION
    frames: int | None = None  # length in frames, instead of duration
    interpolation: str = "lanczos"  # warp kernel: sharpest of cv2's; blur must not compound frame after frame
    edges: str = "inpaint"  # what fills a border that zoom-out, rotation or pan uncovers: inpaint | reflect
    color_hold: float = 0.5  # fraction of the colour gap to frame 0 closed per frame: 0 free (rainbow) .. 1 locked
    interpolate: int = 1  # K > 1: K - 1 flow-interpolated frames between dreamed frames, played K times faster


@dataclass(frozen=True)
class TimelapseSettings:
    """How `dreamvid timelapse` samples the dream as iterations grow, and shows it."""

    checkpoints: tuple[int, ...] | None = None  # iterations per octave, each an independent render
    every: int | None = None  # instead: ONE run of dream.iterations, a snapshot every K steps
    fps: float = 25.0  # of a video output; 25 also gives GIF its exact 4 cs frame delay
    hold: float = 1.0  # s each snapshot stays on screen (the last one twice as long)
    fade: float = 0.5  # s of crossfade between snapshots (0 cuts)
    labels: bool = True  # write the count on video frames
    cell_size: int = DEFAULT_CELL_SIZE  # px, longest side of a picture in a contact sheet
    columns: int | None = None  # pictures per row of a contact sheet (None: about 16:9)
    crf: int = DEFAULT_CRF


@dataclass(frozen=True)
class SweepSettings:
    """The axes of `dreamvid sweep` and how its grid is drawn."""

    vary: tuple[tuple[str, tuple], ...] = ()  # ((setting, values), ...); the first axis runs along the columns
    cell_size: int = DEFAULT_CELL_SIZE  # px, longest side of a picture in the grid
    save_cells: str | None = None  # a folder that also receives every cell at full size


@dataclass(frozen=True)
class Settings:
    """Everything a render depends on, one section per concern (presets may hold each as a
    TOML table of the same name). Each mode reads the sections it needs."""

    dream: DreamSettings = field(default_factory=DreamSettings)
    video: VideoSettings = field(default_factory=VideoSettings)
    zoom: ZoomSettings = field(default_factory=ZoomSettings)
    timelapse: TimelapseSettings = field(default_factory=TimelapseSettings)
    sweep: SweepSettings = field(default_factory=SweepSettings)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["dream"]["layers"] = dict(self.dream.layers)
        d["dream"]["classes"] = {str(k): w for k, w in self.dream.classes}
        for key in (*OBJECTIVE_FIELDS, *TECHNIQUE_FIELDS):  # a render without them keeps the resume key it had
            if getattr(self.dream, key) == getattr(DreamSettings, key):
                del d["dream"][key]
        return d

    def frame_dream(self) -> DreamSettings:
        """The DreamSettings of a video or zoom frame that starts from the carried previous
        dream: video.frame_iterations / frame_num_octave where set (it is half-dreamed already)."""
        d, v = self.dream, self.video
        return dataclasses.replace(
            d, iterations=d.iterations if v.frame_iterations is None else v.frame_iterations,
            num_octave=d.num_octave if v.frame_num_octave is None else v.frame_num_octave)


SECTIONS: dict[str, type] = {"dream": DreamSettings, "video": VideoSettings, "zoom": ZoomSettings,
                             "timelapse": TimelapseSettings, "sweep": SweepSettings}


def parse_layers(value: Any) -> Layers:
    """Accept {name: weight}, [(name, weight)], ["name", "name:0.5"] -> ((name, weight), ...)."""
    if value is None:
        return ()
    how = "write layers as {name = weight} in a preset, or --layer NAME:WEIGHT (video: WEIGHT may be an expression)"
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, str):
        items = [_parse_layer_spec(value)]
    elif isinstance(value, (list, tuple)):
        items = [_weighted(v, lambda v: _refuse(f"layers must name layers (got {v!r} in {value!r})", how))
                 for v in value]
    else:
        raise SettingsError(f"layers must be layer names with weights (got {value!r})", hint=how)
    out = []
    for name, weight in items:
        if not isinstance(name, str) or not name:
            raise SettingsError(f"layers must name layers (got {name!r})", hint=how)
        out.append((str(name), _layer_weight(str(name), weight)))
    return tuple(out)


def _layer_weight(name: str, weight: Any) -> float | str:
    """A layer weight: a number, or (a string that is not one) an expression of time, checked
    here for syntax and names (`--layer "block4c_out:0.5+0.5*onset"`); `check_expressions`
    decides whether the mode can evaluate it, render/values.py evaluates it per frame."""
    if isinstance(weight, str):
        try:
            return float(weight)
        except ValueError:
            from .expr import parse

            parse(weight, f"layers.{name}")
            return weight.strip()
    return _weight(weight, f"layer weight for {name!r} must be a number or an expression (got {weight!r})",
                   "write --layer NAME:WEIGHT, e.g. --layer block4c_out:1.0 (video: or block4c_out:0.5+0.5*onset)")


def _weighted(v: Any, other):
    """"name", "name:w" or (name, w) -> (name, w); anything else -> other(v)."""
    if isinstance(v, str):
        return _parse_layer_spec(v)
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return tuple(v)
    return other(v)


def _weight(weight: Any, message: str, hint: str) -> float:
    """A weight as a float (not a bool), or SettingsError(message)."""
    try:
        if isinstance(weight, bool):
            raise TypeError
        return float(weight)
    except (TypeError, ValueError):
        raise SettingsError(message, hint=hint) from None


def _refuse(message: str, hint: str):
    raise SettingsError(message, hint=hint)


def _parse_layer_spec(spec: str) -> tuple[str, float]:
    name, sep, weight = spec.rpartition(":") if ":" in spec else (spec, "", "")
    return name.strip(), (weight if sep else 1.0)


def split_entry(entry: str) -> tuple[str, int | None]:
    """"block5c_out" -> ("block5c_out", None); "block5c_out/17" -> ("block5c_out", 17): a
    single channel; "logits/207": ImageNet class 207. SettingsError for another suffix."""
    base, sep, index = entry.partition("/")
    if not sep:
        if base == CLASS_LAYER:
            raise SettingsError(f"the layer {CLASS_LAYER!r} needs a class: {CLASS_LAYER}/207",
                                hint='or name the class: --class "golden retriever"')
        return base, None
    if not base or not index.strip().isdigit():
        raise SettingsError(f"layer {entry!r}: after the '/' comes a channel number, e.g. {base or 'block5c_out'}/17",
                            hint="`dreamvid layers MODEL --channels` lists each layer's channels")
    return base, int(index)


def parse_classes(value: Any) -> Classes:
    """Accept {name: weight}, ["golden retriever", "207:0.5"], "tabby", 207 -> ((index, weight), ...):
    a class is named by any of its ImageNet names, its index or its WordNet id."""
    from .models.classes import index

    if value is None:
        return ()
    if isinstance(value, Mapping):
        items = list(value.items())
    else:
        values = value if isinstance(value, (list, tuple)) else [value]
        items = [_weighted(v, lambda v: (v, 1.0)) for v in values]
    out: dict[int, float] = {}
    for spec, weight in items:
        w = _weight(weight, f"classes: the weight of {spec!r} must be a number (got {weight!r})",
                    'write --class "NAME:WEIGHT", e.g. --class "golden retriever:1.5"')
        k = index(spec)
        out[k] = out.get(k, 0.0) + w
    return tuple(out.items())


def validate(s: DreamSettings) -> DreamSettings:
    """Return `s` if every value is in range, else raise SettingsError naming the key."""
    if not _expression(s.step, "step"):  # an expression's values are checked per frame (render/values.py)
        _finite(s.step, "step")
        _check(s.step > 0, "step", s.step, "must be > 0", "try 0.01 (subtle) to 0.05 (strong)")
    _int_in(s.num_octave, "num_octave", 1, MAX_OCTAVES)
    _finite(s.octave_scale, "octave_scale")
    _check(s.octave_scale > 1.0, "octave_scale", s.octave_scale, "must be > 1.0", "the classic value is 1.4")
    if not _expression(s.iterations, "iterations"):
        _int_in(s.iterations, "iterations", 0, MAX_ITERATIONS)
    if s.max_loss is not None:
        _finite(s.max_loss, "max_loss")
        _check(s.max_loss > 0, "max_loss", s.max_loss, "must be > 0", "omit it to never stop early")
    _int_in(s.jitter, "jitter", 0, 4096)
    _int_in(s.tile, "tile", MIN_TILE, 1 << 16)
    if s.tile_batch is not None:
        _int_in(s.tile_batch, "tile_batch", 1, MAX_TILE_BATCH)
    _check(isinstance(s.model, str) and s.model != "", "model", s.model, "must be a model name or a .keras path",
           "see `dreamvid models`")
    _check(s.weights is None or isinstance(s.weights, str), "weights", s.weights, "must be a file path", None)
    _check(isinstance(s.seed, int) and not isinstance(s.seed, bool), "seed", s.seed, "must be an integer",
           "e.g. --seed 0")
    _check(0 <= s.seed < 2**32, "seed", s.seed, f"must be between 0 and {2**32 - 1}", "e.g. --seed 0")
    if s.max_size is not None:
        _int_in(s.max_size, "max_size", 32, 1 << 16)
    _check(s.precision in PRECISIONS, "precision", s.precision, f"must be one of {', '.join(PRECISIONS)}", None)
    _check(s.backend in BACKENDS, "backend", s.backend, f"must be one of {', '.join(BACKENDS)}",
           _close(s.backend, BACKENDS))
    for name, w in s.layers:
        if not _expression(w, f"layers.{name}"):  # an expression's values are checked per frame (render/values.py)
            _finite(w, f"layers.{name}")
        split_entry(name)
    for k, w in s.classes:
        _check(isinstance(k, int) and not isinstance(k, bool) and 0 <= k < 1000, "classes", k,
               "must be ImageNet class indices 0..999", '--class "golden retriever" or --class 207')
        _finite(w, f"classes.{k}")
    targets = s.targets()
    if targets and not any(w != 0 for _, w in targets):
        raise SettingsError("every layer weight is 0, so there is nothing to dream",
                            hint="give at least one layer a non-zero weight")
    _finite(s.smooth, "smooth")
    _check(0.0 <= s.smooth <= 10.0, "smooth", s.smooth, "must be between 0 and 10 (% of the shorter side)",
           "0 is off; 0.3 calms a class dream")
    _check(s.guide is None or (isinstance(s.guide, str) and s.guide != ""), "guide", s.guide,
           "must be an image file", "e.g. --guide flowers.jpg")
    _finite(s.guide_weight, "guide_weight")
    _check(0.0 <= s.guide_weight <= 1.0, "guide_weight", s.guide_weight, "must be between 0 and 1",
           "1 dreams only toward the guide, 0.5 half the plain dream")
    _check(s.mask is None or (isinstance(s.mask, str) and s.mask != ""), "mask", s.mask,
           "must be an image, a clip, motion or still", "e.g. --mask mask.png (white dreams, black keeps)")
    _int_in(s.lapnorm, "lapnorm", 0, MAX_LAPNORM)
    _finite(s.decorrelate, "decorrelate")
    _check(0.0 <= s.decorrelate <= 1.0, "decorrelate", s.decorrelate, "must be between 0 and 1",
           "0 is off, 1 steps fully in the decorrelated colour space")
    _finite(s.transform, "transform")
    _check(0.0 <= s.transform <= MAX_TRANSFORM, "transform", s.transform, f"must be between 0 and {MAX_TRANSFORM:g}",
           "0 is off, 1 scales by up to 10% and turns by up to 5 degrees each step")
    return s


def validate_video(v: VideoSettings) -> VideoSettings:
    _check(v.flow in FLOW_METHODS, "flow", v.flow, f"must be one of {', '.join(FLOW_METHODS)}", None)
    _check(v.flow_quality in FLOW_QUALITIES, "flow_quality", v.flow_quality,
           f"must be one of {', '.join(FLOW_QUALITIES)}", None)
    if not _expression(v.blend, "blend"):  # an expression's values are checked per frame (render/values.py)
        _finite(v.blend, "blend")
        _check(0.0 <= v.blend <= 1.0, "blend", v.blend, "must be between 0 and 1", "0.9 keeps the dream coherent")
    for key in ("temporal_weight", "strength_hold"):
        value = getattr(v, key)
        _finite(value, key)
        _check(0.0 <= value <= 1.0, key, value, "must be between 0 and 1",
               "0 = off, 1 = full (the video preset uses " + ("0.9)" if key == "temporal_weight" else "1.0)"))
    if v.frame_iterations is not None and not _expression(v.frame_iterations, "frame_iterations"):
        _int_in(v.frame_iterations, "frame_iterations", 0, MAX_ITERATIONS)
    if v.frame_num_octave is not None:
        _int_in(v.frame_num_octave, "frame_num_octave", 1, MAX_OCTAVES)
    _int_in(v.crf, "crf", 0, 51)
    _int_in(v.interpolate, "interpolate", 1, MAX_INTERPOLATE)
    _int_in(v.cadence, "cadence", 1, MAX_CADENCE)
    for key in ("scene_cuts", "keep_audio"):
        _check(isinstance(getattr(v, key), bool), key, getattr(v, key), "must be true or false", None)
    if v.fps is not None:
        parse_fps(v.fps)
    return v


def validate_zoom(z: ZoomSettings) -> ZoomSettings:
    """Return `z` with pan/center as pairs if every value is in range, else SettingsError.
    Expressions are checked for syntax and names here, for their values at every frame when
    the zoom is planned (render/zoom.py)."""
    if not _expression(z.zoom, "zoom"):
        _finite(z.zoom, "zoom")
        _check(z.zoom > 0, "zoom", z.zoom, "must be > 0",
               "zoom is a factor per second: 1 is still, 1.1 zooms in, 0.9 zooms out")
    if not _expression(z.rotate, "rotate"):
        _finite(z.rotate, "rotate")
    pan, center = _pair(z.pan, "pan"), _pair(z.center, "center")
    _check(all(isinstance(c, str) or 0.0 <= c <= 1.0 for c in center), "center", z.center,
           "must be fractions of width and height in [0, 1]",
           "center = [0.5, 0.5] is the middle of the frame, [0, 0] its top-left corner")
    parse_fps(z.fps)
    if z.duration is not None:
        _finite(z.duration, "duration")
        _check(z.duration > 0, "duration", z.duration, "must be > 0", "e.g. --duration 10")
        _check(z.duration <= MAX_ZOOM_SECONDS, "duration", z.duration, f"must be at most {MAX_ZOOM_SECONDS} s",
               "e.g. --duration 10")
    if z.frames is not None:
        _int_in(z.frames, "frames", 1, MAX_ZOOM_FRAMES)
    _check(z.duration is None or z.frames is None, "duration", z.duration, "and frames cannot both be given",
           "give --duration in seconds or --frames, not both")
    _check(z.interpolation in INTERPOLATIONS, "interpolation", z.interpolation,
           f"must be one of {', '.join(INTERPOLATIONS)}", None)
    _check(z.edges in EDGES, "edges", z.edges, f"must be one of {', '.join(EDGES)}",
           "inpaint grows the uncovered border from the picture; reflect mirrors it")
    _int_in(z.interpolate, "interpolate", 1, MAX_INTERPOLATE)
    _finite(z.color_hold, "color_hold")
    _check(0.0 <= z.color_hold <= 1.0, "color_hold", z.color_hold, "must be between 0 and 1",
           "0 lets colours drift, 1 holds frame 0's palette; 0.5 is the default")
    return dataclasses.replace(z, pan=pan, center=center, zoom=z.zoom if isinstance(z.zoom, str) else float(z.zoom),
                               rotate=z.rotate if isinstance(z.rotate, str) else float(z.rotate))


def _expression(value: Any, key: str) -> bool:
    """True if `value` is an expression (and it parses), False for anything else."""
    if not isinstance(value, str):
        return False
    from .expr import parse

    parse(value, key)
    return True


def validate_timelapse(t: TimelapseSettings) -> TimelapseSettings:
    """Return `t` (checkpoints as a tuple) if every value is in range, else SettingsError."""
    if t.checkpoints is not None:
        _check(isinstance(t.checkpoints, (list, tuple)), "checkpoints", t.checkpoints,
               "must be a list of iteration counts", "e.g. checkpoints = [40, 80, 120]")
        _check(t.every is None, "checkpoints", list(t.checkpoints), "and every cannot both be given",
               "--checkpoints renders each count anew; --every K samples one run")
        values = tuple(t.checkpoints)
        _check(bool(values), "checkpoints", [], "is empty", "give iteration counts, e.g. --checkpoints 40,80,120")
        _check(len(values) <= MAX_SNAPSHOTS, "checkpoints", f"{len(values)} values",
               f"must be at most {MAX_SNAPSHOTS} values", "use fewer checkpoints")
        for v in values:
            ok = isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_ITERATIONS
            _check(ok, "checkpoints", v, f"must be whole numbers between 0 and {MAX_ITERATIONS}",
                   "e.g. --checkpoints 40,80,120,160,200,240")
        for a, b in zip(values, values[1:]):
            if b <= a:
                raise SettingsError(f"checkpoints must increase, but {b} comes after {a}",
                                    hint="list iteration counts in increasing order, e.g. 40,80,120")
        t = dataclasses.replace(t, checkpoints=values)
    if t.every is not None:
        _int_in(t.every, "every", 1, 1 << 30)
    for key, lo in (("fps", 0.0), ("hold", 0.0)):
        _finite(getattr(t, key), key)
        _check(getattr(t, key) > lo, key, getattr(t, key), "must be > 0", None)
    _check(MIN_FPS <= t.fps <= MAX_FPS, "fps", t.fps, f"must be between {float(MIN_FPS):g} and {MAX_FPS}",
           "e.g. --fps 25")
    _finite(t.fade, "fade")
    _check(t.fade >= 0, "fade", t.fade, "must be >= 0 seconds", "0 cuts, 0.5 crossfades for half a second")
    _check(isinstance(t.labels, bool), "labels", t.labels, "must be true or false", None)
    _int_in(t.cell_size, "cell_size", 16, 1 << 14)
    if t.columns is not None:
        _int_in(t.columns, "columns", 1, 1000)
    _int_in(t.crf, "crf", 0, 51)
    return t


def validate_sweep(s: SweepSettings) -> SweepSettings:
    ok = isinstance(s.vary, (list, tuple)) and all(
        isinstance(a, (list, tuple)) and len(a) == 2 and isinstance(a[0], str) and isinstance(a[1], (list, tuple))
        for a in s.vary)
    _check(ok, "vary", s.vary, "must be axes of values", "in a preset: [sweep.vary] step = [0.01, 0.03]")
    _int_in(s.cell_size, "cell_size", 16, 1 << 14)
    _check(s.save_cells is None or isinstance(s.save_cells, str), "save_cells", s.save_cells,
           "must be a folder name", None)
    return s


def validate_all(s: Settings) -> Settings:
    """Every section of `s` validated: the one place a value is checked."""
    return Settings(validate(s.dream), validate_video(s.video), validate_zoom(s.zoom),
                    validate_timelapse(s.timelapse), validate_sweep(s.sweep))


def parse_fps(text: str | float | None) -> Fraction | None:
    """"24", "30000/1001", "29.97", 25 -> Fraction; None stays None; SettingsError unless 0 < fps <= MAX_FPS."""
    if text is None:
        return None
    try:
        if isinstance(text, bool):
            raise ValueError
        fps = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError):
        raise SettingsError(f"fps {text!r} is not a number", hint="e.g. --fps 24 or --fps 30000/1001") from None
    if not MIN_FPS <= fps <= MAX_FPS:
        raise SettingsError(f"fps must be between {float(MIN_FPS):g} and {MAX_FPS} (got {text})", hint="e.g. --fps 24")
    return fps


def _pair(value: Any, key: str) -> tuple:
    """Two numbers (floats) or expressions (checked, kept as text)."""
    ok = isinstance(value, (tuple, list)) and len(value) == 2
    _check(ok, key, value, "must be two numbers", "e.g. --pan 12,-4")
    out = []
    for v in value:
        if not _expression(v, key):
            _finite(v, key)
            v = float(v)
        out.append(v)
    return tuple(out)


def _check(ok: bool, key: str, value: Any, what: str, hint: str | None) -> None:
    if not ok:
        raise SettingsError(f"{key} {what} (got {value!r})", hint=hint)


def _close(value: Any, known) -> str | None:
    """"did you mean 'torch'?" for a mistyped choice, or None."""
    import difflib

    close = difflib.get_close_matches(str(value), list(known), n=1) if isinstance(value, str) else []
    return f"did you mean {close[0]!r}?" if close else None


def _finite(value: Any, key: str) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    _check(ok, key, value, "must be a finite number", None)


def _int_in(value: Any, key: str, lo: int, hi: int) -> None:
    _check(isinstance(value, int) and not isinstance(value, bool), key, value, "must be a whole number", None)
    _check(lo <= value <= hi, key, value, f"must be between {lo} and {hi}", None)


# Values that may be expressions of time (expr.py), per mode; other modes have no time and refuse them.
EXPRESSION_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "video": (("dream", "step"), ("dream", "iterations"), ("video", "blend"), ("video", "frame_iterations")),
    "zoom": (("dream", "step"),),  # and every keyframe value (trajectory.py)
}


def check_expressions(mode: str, s: Settings) -> Settings:
    """`s` if its expressions are all where `mode` evaluates them, else SettingsError naming the key."""
    allowed = set(EXPRESSION_KEYS.get(mode, ()))
    for section in ("dream", "video"):
        for f in dataclasses.fields(SECTIONS[section]):
            value = getattr(getattr(s, section), f.name)
            if isinstance(value, str) and f.name in ("step", "iterations", "blend", "frame_iterations") \
                    and (section, f.name) not in allowed:
                where = {"video": "dreamvid video", "zoom": "dreamvid zoom (step only)"}
                raise SettingsError(f"{f.name} = {value!r} is an expression, but {mode} has no time to evaluate it in",
                                    hint=f"give a number; expressions work in {' and '.join(where.values())}")
    if mode != "video":  # a layer weight of time: the video plan eases it per frame (render/values.py)
        refuse_layer_expressions(s.dream.layers, mode)
    return s


def layer_expressions(layers: Layers) -> dict[str, str]:
    """{name: expression} of the layer entries whose weight is an expression of time."""
    return {name: w for name, w in layers if isinstance(w, str)}


def refuse_layer_expressions(layers: Layers, mode: str) -> None:
    """SettingsError if a layer weight is an expression: `mode` has no time to evaluate it in."""
    for name, w in layer_expressions(layers).items():
        hint = ("ease layers over time in --keyframes: layers = { NAME = \"EXPRESSION\" }" if mode == "zoom"
                else "give a number; layer weights may be expressions in dreamvid video")
        raise SettingsError(f"layers.{name} = {w!r} is an expression, but {mode} has no time to evaluate it in",
                            hint=hint)
