"""Every parameter a user can set, as frozen dataclasses, and the one place they are validated.

The names are the users' own (the Keras DeepDream example's): `step`, `num_octave`,
`octave_scale`, `iterations`, `max_loss`, `layers`. CLI flags, TOML keys and library
keywords all use them. Each field is also the parameter's catalogue entry (params.py): its
kind, range, unit, help and the page's words, which the CLI's options and the studio read.
No I/O here; presets.py turns TOML into these objects.
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Mapping

from . import numeric, params
from .errors import SettingsError
from .params import CHECKED, check, param

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
# H.264 pixel formats (the one list; media.encode reads it): yuv420p plays on every phone, browser and editor;
# 4:4:4 keeps the dream's finest colour detail and 10-bit its gradients, in fewer players.
PIX_FMTS = ("yuv420p", "yuv444p", "yuv420p10le", "yuv444p10le")
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

# Each field is a catalogue entry (params.py): name, type and default here, with its kind,
# range, unit, help and the page's words in `param(...)`. A new setting is one such field.


@dataclass(frozen=True)
class DreamSettings:
    """How one image is dreamed. Defaults are the Keras DeepDream example's (the `classic` preset)."""

    model: str = param(DEFAULT_MODEL, "model", "Backbone (see `dreamvid models`) or a .keras file.",
                       flags=("--model", "-m"), metavar="NAME", label="Network")
    # ((layer name, weight), ...); empty = the model's default layers (video: a weight may be an expression)
    layers: Layers = param((), "layers", "Layer to dream on: NAME, one channel NAME/CHANNEL, with :WEIGHT (a negative "
                           "one suppresses it); repeat for several (see `dreamvid layers MODEL --channels`).",
                           flags=("--layer", "-l"), metavar="NAME[/C][:W]", label="Layers",
                           none="the model's default layers")
    # in units of the image scaled to [-1, 1]; past 1 one step jumps across the whole range
    step: float | str = param(0.01, "float", "Gradient-ascent step size (0.01 subtle .. 0.05 strong).", lo=0,
                              lo_open=True, hi=1, hint="try 0.01 (subtle) to 0.05 (strong)", label="Strength",
                              expression=("video", "zoom"))
    num_octave: int = param(3, "int", "Number of scales dreamed at.", lo=1, hi=MAX_OCTAVES, label="Scales")
    octave_scale: float = param(1.4, "float", "Size ratio between octaves.", lo=1.0, lo_open=True,
                                hint="the classic value is 1.4", label="Scale ratio")
    iterations: int | str = param(20, "int", "Gradient-ascent steps per octave.", lo=0, hi=MAX_ITERATIONS,
                                  flags=("--iterations", "-i"), label="Steps per scale", expression=("video",))
    max_loss: float | None = param(10.0, "float", "Stop an octave once the loss passes this.", lo=0, lo_open=True,
                                   hint="omit it to never stop early", label="Stop at loss", none="never stop early")
    # hides tile seams and grid artefacts
    jitter: int = param(32, "int", "Random roll in px applied before each step.", lo=0, hi=4096, unit="px",
                        label="Jitter")
    # images larger than this are processed in tiles of this size (bounded memory)
    tile: int = param(512, "int", "Tile size in px for large images (bounds memory).", lo=MIN_TILE, hi=1 << 16,
                      unit="px", label="Tile size")
    tile_batch: int | None = param(None, "int", "Tiles per network call (halved by itself if the GPU runs out of "
                                   "memory).", lo=1, hi=MAX_TILE_BATCH, label="Tiles per call",
                                   none="as many as fit on a GPU (up to 16), 1 on a CPU")
    seed: int = param(0, "int", "Random seed of the jitter (the frame index is mixed in for a video).", lo=0,
                      hi=2**32 - 1, hint="e.g. --seed 0", label="Variation (seed)")
    max_size: int | None = param(None, "int", "Downscale so the longest side is at most this (px).", lo=32,
                                 hi=1 << 16, unit="px", label="Size (longest side)", none="keep the size")
    weights: str | None = param(None, "path", "Local weights file for a downloadable model.", metavar="FILE",
                                 none="the model's own (bundled, or downloaded once)")
    # "mixed": float16 (GPU) / bfloat16 (CPU) compute; "auto": the faster here (dream/auto.py)
    precision: str = param("auto", "choice", "auto (the faster of the two on this machine and network, measured "
                           "once; see `dreamvid doctor`), float32, or mixed (float16 compute on a GPU, bfloat16 on a "
                           "CPU).", choices=PRECISIONS, metavar="MODE", label="Precision")
    # what runs the step (dreamvid/backends/); "auto": the faster here (dream/auto.py)
    backend: str = param("auto", "choice", "What runs the dream: auto (the faster here, measured once per network; "
                         "see `dreamvid doctor`), tensorflow, or torch (CUDA, Apple MPS or the CPU; pip install "
                         "'dreamvid[torch]').", choices=BACKENDS, metavar="NAME", label="Backend")
    smooth: float = param(0.0, "float", "Blur of each step's gradient, in % of the shorter side: calmer, larger "
                          "shapes (0: none).", lo=0, hi=10, unit="%", hint="0 is off; 0.3 calms a class dream",
                          label="Smoothness")
    # What to dream of besides `layers` (entries "NAME", "NAME/CHANNEL"), and where:
    classes: Classes = param((), "lines", "ImageNet class to dream, NAME[:W] or its index (a negative weight "
                             "suppresses it); repeat for several (see `dreamvid classes`). Needs a model with its "
                             "classifier.", flags=("--class",), metavar="NAME[:W]", label="Dream of (ImageNet classes)")
    guide: str | None = param(None, "path", "An image whose features the dream grows toward.", metavar="IMAGE",
                               none="no guide")
    guide_weight: float = param(1.0, "float", "How much of the dream follows the guide (1: only the guide).", lo=0,
                                hi=1, hint="1 dreams only toward the guide, 0.5 half the plain dream",
                                label="Guide weight", needs="guide")
    mask: str | None = param(None, "path", "Where to dream: a mask image (white dreams, black keeps the picture, "
                             "grey between); for a video also a mask clip, motion (what moves) or still (what "
                             "stands).", choices=MASK_KINDS, metavar="MASK", label="Dream only",
                             none="everywhere")
    # The step's techniques of the 2015 look (dream/techniques.py), 0 = off
    lapnorm: int = param(0, "int", "Laplacian-pyramid levels the gradient is normalised over, band by band (the "
                         "DeepDream notebook's lapnorm): larger shapes grow as fast as fine texture (0: off).", lo=0,
                         hi=MAX_LAPNORM, hint="0 is off; 4 is the deepdream preset's", label="Large shapes (levels)")
    decorrelate: float = param(0.0, "float", "How fully the step works in ImageNet's decorrelated colour space "
                               "(Lucid's): less rainbow pixel noise (0: off, 1: fully).", lo=0, hi=1,
                               hint="0 is off, 1 steps fully in the decorrelated colour space",
                               label="Calm colours")
    transform: float = param(0.0, "float", "Random scale (up to 10%) and rotation (up to 5 degrees) of the picture "
                             "each step, times this (Lucid's transformation robustness): creatures instead of pixel "
                             "patterns (0: off).", lo=0, hi=MAX_TRANSFORM,
                             hint="0 is off, 1 scales by up to 10% and turns by up to 5 degrees each step",
                             label="Robustness (scale, turn)")

    def layer_dict(self) -> dict[str, float]:
        return dict(self.layers)

    def targets(self) -> Layers:
        """What the network is tapped at: the layer entries, then one "logits/K" entry per class."""
        return (*self.layers, *((f"{CLASS_LAYER}/{k}", w) for k, w in self.classes))


@dataclass(frozen=True)
class VideoSettings:
    """How a clip is dreamed frame by frame (on top of DreamSettings for each frame)."""

    flow: str = param("dis", "choice", "Optical flow: dis, farneback, or none (independent frames, flickers).",
                      choices=FLOW_METHODS, label="Optical flow")
    flow_quality: str = param("fast", "choice", "DIS preset: ultrafast, fast or medium.", choices=FLOW_QUALITIES,
                              label="Flow quality")
    blend: float | str = param(0.9, "float", "How much of the propagated dream carries into the next frame.", lo=0,
                               hi=1, hint="0.9 keeps the dream coherent", label="Carry-over",
                               expression=("video",))
    frame_iterations: int | str | None = param(
        None, "int", "Iterations per octave of each frame after the first (it starts from the carried previous "
        "dream).", lo=0, hi=MAX_ITERATIONS, expression=("video",), modes=("video", "zoom"),
        label="Steps per later frame", none="as iterations")
    frame_num_octave: int | None = param(None, "int", "Octaves of each frame after the first.", lo=1, hi=MAX_OCTAVES,
                                         modes=("video", "zoom"), label="Scales per later frame",
                                         none="as num_octave")
    temporal_weight: float = param(0.9, "float", "How much less re-dreaming a reliably tracked, already dreamed "
                                   "pixel gets (0: as much as new content; steadier toward 1).", lo=0, hi=1,
                                   hint="0 = off, 1 = full (the video preset uses 0.9)", label="Temporal hold")
    strength_hold: float = param(1.0, "float", "How fully each region keeps its dream strength from frame to frame "
                                 "(0: off; 1: no fading or growing).", lo=0, hi=1,
                                 hint="0 = off, 1 = full (the video preset uses 1.0)", label="Strength hold")
    scene_cuts: bool = param(True, "bool", "Restart the dream at hard cuts.", label="Restart at cuts")
    crf: int = param(DEFAULT_CRF, "int", "H.264 quality, 0 (lossless) .. 51; 18 looks lossless.", lo=0, hi=51,
                     modes=("video", "zoom"), label="Video quality (crf)")
    pix_fmt: str = param(PIX_FMTS[0], "choice", "Pixel format of an H.264 file: yuv420p plays everywhere (the dream's "
                         "colour detail above what 4:2:0 holds is smoothed first, so it does not flicker); yuv444p "
                         "and the 10-bit ones keep it, for players such as VLC or mpv. A GIF takes only the default.",
                         choices=PIX_FMTS, modes=("video", "zoom"), label="Pixel format",
                         hint="yuv420p plays everywhere; yuv444p keeps the dream's full colour detail")
    keep_audio: bool = param(True, "bool", "Copy the source's audio, trimmed to the range.",
                             flags=("--keep-audio/--no-audio",), label="Keep the sound")
    fps: str | None = param(None, "text", "Output frame rate (24, 30000/1001) instead of the source's; drops the "
                            "audio. With interpolate: the playback rate (below the source's x K: slow motion).",
                            label="Frame rate", none="the source's")
    interpolate: int = param(1, "int", "K: write K-1 flow-interpolated frames between output frames (smooth at K x "
                             "the frame rate, or slow motion with fps; no model).", lo=1, hi=MAX_INTERPOLATE,
                             label="Smoothing frames")
    cadence: int = param(1, "int", "N: dream every Nth frame and carry the dream along the flow through the frames "
                         "between (about N x faster).", lo=1, hi=MAX_CADENCE, label="Dream every Nth frame")


@dataclass(frozen=True)
class ZoomSettings:
    """How the camera of `dreamvid zoom` moves and how frames are carried from one to the next."""

    # Each motion value is a number or an expression of t, f, fps, duration (and the audio
    # envelopes rms, onset, bass, mid, treble with --audio): "1.02 + 0.01*sin(2*pi*t/4)" (expr.py).
    zoom: float | str = param(1.25, "float", "Zoom factor per second: 1 still, 1.25 flies in, 0.8 flies out; 30 s "
                              "travel ~800x deep.", lo=0, lo_open=True,
                              hint="zoom is a factor per second: 1 is still, 1.1 zooms in, 0.9 zooms out",
                              label="Zoom per second", expression=("zoom",))
    rotate: float | str = param(0.0, "float", "Rotation in degrees per second, + counter-clockwise.",
                                label="Rotation (degrees per second)", expression=("zoom",))
    pan: tuple[float | str, float | str] = param((0.0, 0.0), "pair", "Pan in pixels per second, X,Y (right, down) "
                                                 "at the output size, e.g. 12,-4.", label="Pan")
    center: tuple[float | str, float | str] = param((0.5, 0.5), "pair", "Zoom/rotation centre as fractions of "
                                                    "width,height.", label="Centre")
    fps: str = param("24", "text", "Frames per second (24, 30000/1001); the path does not depend on it.",
                     label="Frame rate")
    duration: float | None = param(None, "float", "Length in seconds.", lo=0, lo_open=True, hi=MAX_ZOOM_SECONDS,
                                   unit="s", hint="e.g. --duration 10", flags=("--duration", "-d"), label="Length",
                                   none="the keyframes' last time, else 10 s")
    frames: int | None = param(None, "int", "Length in frames, instead of duration.", lo=1, hi=MAX_ZOOM_FRAMES,
                               label="Length in frames", none="from the duration")
    # sharpest of cv2's kernels: blur must not compound frame after frame
    interpolation: str = param("lanczos", "choice", "Warp kernel: lanczos (sharpest), cubic, linear, nearest.",
                               choices=INTERPOLATIONS, label="Warp kernel")
    edges: str = param("inpaint", "choice", "What fills the border a zoom-out, rotation or pan uncovers: inpaint "
                       "(grown from the picture, then dreamed) or reflect (mirrored).", choices=EDGES,
                       hint="inpaint grows the uncovered border from the picture; reflect mirrors it", label="Edges")
    color_hold: float = param(0.5, "float", "How firmly colours are held to the first frame's (0 lets them run to a "
                              "saturated rainbow).", lo=0, hi=1, flags=("--color-hold", "--colour-hold"),
                              hint="0 lets colours drift, 1 holds frame 0's palette; 0.5 is the default",
                              label="Colour hold")
    interpolate: int = param(1, "int", "K: write K-1 flow-interpolated frames between dreamed frames, played K times "
                             "faster (smoother at the same speed; no model).", lo=1, hi=MAX_INTERPOLATE,
                             label="Smoothing frames")


@dataclass(frozen=True)
class TimelapseSettings:
    """How `dreamvid timelapse` samples the dream as iterations grow, and shows it."""

    checkpoints: tuple[int, ...] | None = param(None, "list", "Iteration counts (per octave) rendered "
                                                "independently, increasing.", flags=("--checkpoints", "-c"),
                                                label="Checkpoints", none="40,80,120,160,200,240")
    every: int | None = param(None, "int", "Instead: ONE run of iterations, a snapshot every K steps (over all "
                              "octaves) and of the result.", lo=1, hi=1 << 30, label="Snapshot every",
                              none="independent checkpoints")
    # 25 also gives GIF its exact 4 cs frame delay
    fps: float = param(25.0, "float", "Video frame rate.", lo=float(MIN_FPS), hi=MAX_FPS, hint="e.g. --fps 25",
                       label="Frame rate")
    hold: float = param(1.0, "float", "Seconds each snapshot is shown in a video (the last one twice as long).",
                        lo=0, lo_open=True, unit="s", label="Seconds per snapshot")
    fade: float = param(0.5, "float", "Seconds of crossfade between snapshots (0 cuts).", lo=0, unit="s",
                        hint="0 cuts, 0.5 crossfades for half a second", label="Crossfade")
    labels: bool = param(True, "bool", "Write the iteration count on video frames.", label="Labels")
    cell_size: int = param(DEFAULT_CELL_SIZE, "int", "Longest side of each picture in a contact sheet.", lo=16,
                           hi=1 << 14, unit="px", label="Picture size")
    columns: int | None = param(None, "int", "Pictures per row of a contact sheet.", lo=1, hi=1000, label="Columns",
                                none="about 16:9")
    crf: int = param(DEFAULT_CRF, "int", "H.264 quality, 0 (lossless) .. 51.", lo=0, hi=51,
                     label="Video quality (crf)")


@dataclass(frozen=True)
class SweepSettings:
    """The axes of `dreamvid sweep` and how its grid is drawn."""

    # ((setting, values), ...); the first axis runs along the columns
    vary: tuple[tuple[str, tuple], ...] = param((), "lines", "KEY=V1,V2,... a setting and its values; repeat for "
                                                "more axes (the first runs along the columns). Any setting: step, "
                                                "num_octave, octave_scale, iterations, max_loss, layers (join with "
                                                "+), model, seed, ...", label="Vary (one axis a line)")
    cell_size: int = param(DEFAULT_CELL_SIZE, "int", "Longest side of each picture in the grid.", lo=16, hi=1 << 14,
                           unit="px", label="Picture size")
    save_cells: str | None = param(None, "path", "Also save every cell at full size into this folder.",
                                     none="the grid only")


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
        items = [_weighted(v, lambda v: _refuse(
            f"layers must name layers (got {numeric.shown(v)} in {numeric.shown(value)})", how)) for v in value]
    else:
        raise SettingsError(f"layers must be layer names with weights (got {numeric.shown(value)})", hint=how)
    out = []
    for name, weight in items:
        if not isinstance(name, str) or not name:
            raise SettingsError(f"layers must name layers (got {numeric.shown(name)})", hint=how)
        out.append((str(name), _layer_weight(str(name), weight)))
    return tuple(out)


def _layer_weight(name: str, weight: Any) -> float | str:
    """A layer weight: a number, or (a string that is not one) an expression of time, checked
    here for syntax and names (`--layer "block4c_out:0.5+0.5*onset"`); `check_expressions`
    decides whether the mode can evaluate it, render/values.py evaluates it per frame."""
    if isinstance(weight, str):
        number = numeric.literal(weight, f"layers.{name}")  # bounded: 400 digits is refused, not inf
        if number is not None:
            return float(number)
        from .expr import parse

        parse(weight, f"layers.{name}")
        return weight.strip()
    return _weight(weight, f"layer weight for {numeric.shown(name)} must be a number or an expression "
                           f"(got {numeric.shown(weight)})",
                   "write --layer NAME:WEIGHT, e.g. --layer block4c_out:1.0 (video: or block4c_out:0.5+0.5*onset)")


def _weighted(v: Any, other):
    """"name", "name:w" or (name, w) -> (name, w); anything else -> other(v)."""
    if isinstance(v, str):
        return _parse_layer_spec(v)
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return tuple(v)
    return other(v)


def _weight(weight: Any, message: str, hint: str) -> float:
    """A weight as a finite float (not a bool; text as numeric.literal reads it), or SettingsError(message)."""
    try:
        value = numeric.literal(weight, "weight") if isinstance(weight, str) else weight
        return numeric.real(value, "weight")
    except SettingsError:
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
    if not base or not (index.strip().isascii() and index.strip().isdigit()):
        raise SettingsError(f"layer {numeric.shown(entry)}: after the '/' comes a channel number, e.g. "
                            f"{numeric.shown(base or 'block5c_out', quote=False)}/17",
                            hint="`dreamvid layers MODEL --channels` lists each layer's channels")
    return base, numeric.number(index, f"layer {numeric.shown(entry)}")  # bounded: no 5000-digit int()


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
        w = _weight(weight, f"classes: the weight of {numeric.shown(spec)} must be a number "
                            f"(got {numeric.shown(weight)})",
                    'write --class "NAME:WEIGHT", e.g. --class "golden retriever:1.5"')
        k = index(spec)
        out[k] = out.get(k, 0.0) + w
    return tuple(out.items())


def check_fields(section: str, obj: Any, skip: tuple[str, ...] = ()) -> None:
    """Every field of a settings section whose kind the catalogue checks alone (params.CHECKED),
    in its range; a value that may be an expression in some mode is checked for syntax here and
    for its values where it is evaluated (render/values.py, render/zoom.py)."""
    for f in dataclasses.fields(obj):
        p = f.metadata["param"]
        if p.kind not in CHECKED or f.name in skip:
            continue
        value = getattr(obj, f.name)
        if p.expression and _expression(value, f.name):
            continue
        check(params.of(f, section), value)


def validate(s: DreamSettings) -> DreamSettings:
    """Return `s` if every value is in range, else raise SettingsError naming the key."""
    check_fields("dream", s)
    _check(isinstance(s.model, str) and s.model != "", "model", s.model, "must be a model name or a .keras path",
           "see `dreamvid models`")
    _check(s.weights is None or isinstance(s.weights, str), "weights", s.weights, "must be a file path", None)
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
    _check(s.guide is None or (isinstance(s.guide, str) and s.guide != ""), "guide", s.guide,
           "must be an image file", "e.g. --guide flowers.jpg")
    _check(s.mask is None or (isinstance(s.mask, str) and s.mask != ""), "mask", s.mask,
           "must be an image, a clip, motion or still", "e.g. --mask mask.png (white dreams, black keeps)")
    return s


def validate_video(v: VideoSettings) -> VideoSettings:
    check_fields("video", v)
    if v.fps is not None:
        parse_fps(v.fps)
    return v


def validate_zoom(z: ZoomSettings) -> ZoomSettings:
    """Return `z` with pan/center as pairs if every value is in range, else SettingsError.
    Expressions are checked for syntax and names here, for their values at every frame when
    the zoom is planned (render/zoom.py)."""
    check_fields("zoom", z)
    pan, center = _pair(z.pan, "pan"), _pair(z.center, "center")
    _check(all(isinstance(c, str) or 0.0 <= c <= 1.0 for c in center), "center", z.center,
           "must be fractions of width and height in [0, 1]",
           "center = [0.5, 0.5] is the middle of the frame, [0, 0] its top-left corner")
    parse_fps(z.fps)
    _check(z.duration is None or z.frames is None, "duration", z.duration, "and frames cannot both be given",
           "give --duration in seconds or --frames, not both")
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
    check_fields("timelapse", t)
    return t


def validate_sweep(s: SweepSettings) -> SweepSettings:
    ok = isinstance(s.vary, (list, tuple)) and all(
        isinstance(a, (list, tuple)) and len(a) == 2 and isinstance(a[0], str) and isinstance(a[1], (list, tuple))
        for a in s.vary)
    _check(ok, "vary", s.vary, "must be axes of values", "in a preset: [sweep.vary] step = [0.01, 0.03]")
    check_fields("sweep", s)
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
    fps = numeric.fraction(text, "fps", hint="e.g. --fps 24 or --fps 30000/1001")  # bounded: never 10**100000000
    if not MIN_FPS <= fps <= MAX_FPS:
        raise SettingsError(f"fps must be between {float(MIN_FPS):g} and {MAX_FPS} (got {numeric.shown(text)})",
                            hint="e.g. --fps 24")
    return fps


def _pair(value: Any, key: str) -> tuple:
    """Two numbers (floats) or expressions (checked, kept as text)."""
    ok = isinstance(value, (tuple, list)) and len(value) == 2
    _check(ok, key, value, "must be two numbers", "e.g. --pan 12,-4")
    out = []
    for v in value:
        if not _expression(v, key):
            _check(isinstance(v, numbers.Real) and not isinstance(v, bool), key, value, "must be two numbers",
                   "e.g. --pan 12,-4")  # not None, a list or a table (float() would say only that it failed)
            _finite(v, key)
            v = float(v)
        out.append(v)
    return tuple(out)


def _check(ok: bool, key: str, value: Any, what: str, hint: str | None) -> None:
    if not ok:
        params.refuse(key, value, what, hint)


def _finite(value: Any, key: str) -> None:
    check(params.Param("float", "", name=key), value)


def _expression_keys() -> dict[str, tuple[tuple[str, str], ...]]:
    out: dict[str, list] = {}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            for mode in f.metadata["param"].expression:
                out.setdefault(mode, []).append((section, f.name))
    return {mode: tuple(keys) for mode, keys in out.items()}


# Values that may be expressions of time (expr.py), per mode, from the catalogue (`expression=`);
# other modes have no time and refuse them.
EXPRESSION_KEYS: dict[str, tuple[tuple[str, str], ...]] = _expression_keys()


def check_expressions(mode: str, s: Settings) -> Settings:
    """`s` if its expressions are all where `mode` evaluates them, else SettingsError naming the key."""
    allowed = set(EXPRESSION_KEYS.get(mode, ()))
    for section in ("dream", "video"):
        for f in dataclasses.fields(SECTIONS[section]):
            value = getattr(getattr(s, section), f.name)
            if isinstance(value, str) and f.metadata["param"].expression and (section, f.name) not in allowed:
                where = {"video": "dreamvid video", "zoom": "dreamvid zoom (step only)"}
                raise SettingsError(f"{f.name} = {value!r} is an expression, but {mode} has no time to evaluate it in",
                                    hint=f"give a number; expressions work in {' and '.join(where.values())}",
                                    key=f.name)
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
                            hint=hint, key="layers")
