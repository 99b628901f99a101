"""render_zoom: the infinite dream zoom. Each frame is the previous dream moved a little along
the camera path (trajectory.py: zoom about a centre, rotation, pan) and dreamed a few
iterations more, so new detail keeps growing out of the old.

Frame 0 is the source dreamed with the full DreamSettings, as a still. Frame i > 0 starts
from frame i - 1 moved by `Trajectory.affine(i)` and gets the per-frame amount of dreaming
(`frame_iterations` per octave over `frame_num_octave` octaves, the same fields as video).
Motion is per second, so 24 and 60 fps travel the same path. Keyframes (TOML) ease the
motion and the dream parameters over time; in a zoom, a keyframe's `iterations` and
`num_octave` are the PER-FRAME amounts (frame 0's full dream keeps the settings' own).

Two things go wrong in long zooms:
* Resampling blur. Each frame is resampled once, from the previous frame, so the kernel's
  response compounds: after 60 turn-and-pan warps (no dreaming) bilinear keeps 0.5 % of the
  Laplacian variance, OpenCV's cubic (a = -0.75, boosts the upper band) inflates it 7.6x into
  ringing, Lanczos keeps 71 % (tests/test_render_animate.py). We warp with Lanczos and the
  dream re-adds fine detail every frame, so sharpness settles in a band instead of decaying.
* Colour drift. Every frame adds dream on top of an already dreamed picture, and the colours
  run away to a saturated rainbow within seconds. `color_hold` pulls each new frame's colour
  statistics (mean and spread of L*, a*, b*) part of the way back to frame 0's, so the palette
  stays that of the dreamed photo while the content keeps changing.
Measured over a 30 s zoom (chelsea, 320x213, 12 fps, 360 frames, the zoom preset): with the
defaults, from 3 s on the variance of the Laplacian stays within 3986..4446 and Hasler-
Süsstrunk colourfulness within 54.9..56.5 (frame 0: 2525 and 52.9); with color_hold 0 the
colourfulness climbs to 129 and the channel spread doubles (38 -> 78).

Frames go through a work folder (frames.py) exactly like video: atomic PNGs, render.json,
resume at the first missing frame with a result identical to an uninterrupted run (the chain
continues from the uint8 frame on disk; the jitter is seeded by (seed, frame index)).
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from ..errors import OutputError, SettingsError
from ..settings import DreamSettings, Settings, validate, validate_video
from ..trajectory import INTERPOLATIONS, Keyframes, Motion, Trajectory, apply, parse_keyframes
from . import frames as work_folder
from .lapse import load_still

log = logging.getLogger("dreamvid")

DEFAULT_FPS = "24"
DEFAULT_DURATION = 10.0  # s, when neither a duration, a frame count nor keyframes say
DEFAULT_ZOOM = 1.25  # x per second: 30 s travel ~800x deep, slow enough for detail to grow
DEFAULT_INTERPOLATION = "lanczos"  # sharpest of cv2's kernels; blur must not compound frame after frame
DEFAULT_COLOR_HOLD = 0.5  # fraction of the colour-statistics gap to frame 0 closed per frame
MAX_FRAMES = 100_000  # ~70 min at 24 fps; more is a typo in --duration or --fps
FRAME_KEYS = ("frame_iterations", "frame_num_octave")  # the VideoSettings fields a zoom uses (and crf)
ZOOM_PRESET = "zoom"  # presets/zoom.toml: the default look, and the per-frame amounts of any preset lacking them
ALGORITHM = 1  # bump when the same settings would give different frames (invalidates resumes)

# Dream parameters a keyframe may set, with their types (trajectory.parse_keyframes).
# iterations / num_octave are the per-frame amounts of frames after the first.
KEYFRAME_DREAM_KEYS: dict[str, type] = {
    "step": float, "iterations": int, "num_octave": int, "octave_scale": float,
    "max_loss": float, "jitter": int, "layers": dict,
}


@dataclass(frozen=True)
class ZoomSettings:
    """How the camera moves and how frames are carried from one to the next."""

    zoom: float = DEFAULT_ZOOM  # scale factor per second, > 0 (1 still, > 1 in, < 1 out)
    rotate: float = 0.0  # degrees per second, + counter-clockwise
    pan: tuple[float, float] = (0.0, 0.0)  # px per second (right, down) at the output size
    center: tuple[float, float] = (0.5, 0.5)  # zoom/rotation centre, fractions of (width, height)
    fps: str = DEFAULT_FPS  # frames per second: "24", "30000/1001"
    interpolation: str = DEFAULT_INTERPOLATION  # warp kernel: nearest, linear, cubic, lanczos
    color_hold: float = DEFAULT_COLOR_HOLD  # 0: free colours (they run to a saturated rainbow) .. 1: locked to frame 0

    def motion(self) -> Motion:
        return Motion(zoom=self.zoom, rotate=self.rotate, pan=self.pan, center=self.center)


@dataclass(frozen=True)
class ZoomProgress:
    """Reported after each frame is stored."""

    done: int  # frames finished, resumed ones included
    total: int
    index: int  # the frame just made
    rendered: int  # frames made by this run
    elapsed: float  # s since this run's first frame started

    @property
    def fps(self) -> float:
        return self.rendered / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(frozen=True)
class ZoomResult:
    output: Path
    n_frames: int
    fps: Fraction
    size: tuple[int, int]  # (width, height) of the frames (the mp4 pads odd sides by 1 px)
    rendered: int  # frames made by this run
    resumed_from: int | None  # first frame this run made, when earlier ones were on disk
    seconds: float
    work_dir: Path | None  # the kept work folder (keep_frames), else None


ProgressFn = Callable[[ZoomProgress], None]


def resolve_settings(preset: str | None = None, dream: Mapping[str, Any] | None = None,
                     video: Mapping[str, Any] | None = None) -> Settings:
    """Settings for a zoom: defaults < the zoom preset's per-frame amounts < `preset` (default:
    the zoom preset) < explicit values (None ignored). A still preset such as `coral` has no
    frame_iterations; without this, every frame would get the full still dream (very slow).
    """
    from .. import presets

    merged: dict[str, dict[str, Any]] = {"dream": {}, "video": {}}
    zoom_video = presets.read(ZOOM_PRESET).get("video", {})
    merged["video"].update({k: zoom_video[k] for k in FRAME_KEYS if k in zoom_video})
    data = presets.read(preset or ZOOM_PRESET)
    for name in merged:
        merged[name].update(data.get(name, {}))
    explicit = {"dream": dict(dream or {}), "video": dict(video or {})}
    presets.check_keys(explicit, "settings")
    for name, values in explicit.items():
        merged[name].update({k: v for k, v in values.items() if v is not None})
    return presets.build(merged, where=f"preset {preset!r}" if preset else "settings")


def parse_fps(fps) -> Fraction:
    """24, 23.976, "30000/1001" -> Fraction; SettingsError unless 0 < fps <= 1000."""
    from .video import parse_fps as parse

    return parse(str(fps))


def validate_zoom(z: ZoomSettings) -> ZoomSettings:
    z.motion()  # zoom > 0, finite rotate/pan, center in [0, 1]: SettingsError naming the key
    parse_fps(z.fps)
    if z.interpolation not in INTERPOLATIONS:
        raise SettingsError(f"interpolation {z.interpolation!r} is not known",
                            hint=f"use one of: {', '.join(INTERPOLATIONS)}")
    hold = z.color_hold
    if isinstance(hold, bool) or not isinstance(hold, (int, float)) or not 0.0 <= hold <= 1.0:
        raise SettingsError(f"color_hold must be between 0 and 1 (got {hold!r})",
                            hint="0 lets colours drift, 1 holds frame 0's palette; 0.5 is the default")
    return z


# ---- the plan: everything checked before the first frame -----------------------------------------

@dataclass
class ZoomPlan:
    """Per-frame settings and motion of one zoom, validated."""

    settings: Settings  # dream (frame 0) + video (per-frame amounts, crf)
    zoom: ZoomSettings
    trajectory: Trajectory
    keyframes: Keyframes | None
    first: DreamSettings  # frame 0's settings (keyframe values at t = 0 applied)
    layer_names: tuple[str, ...]  # every layer dreamed at some point (their union)

    @property
    def n_frames(self) -> int:
        return len(self.trajectory)

    def frame_settings(self, i: int) -> DreamSettings:
        """The DreamSettings of frame i (i > 0: the per-frame amounts; keyframes applied)."""
        if i == 0:
            return self.first
        return _with_params(_frame_base(self.settings), self.trajectory.params(i))

    def resume_key(self) -> dict[str, Any]:
        """Everything the frames depend on (output-only options left out): the manifest's settings."""
        d = self.settings.to_dict()
        v = d.pop("video")
        d["frame"] = {k: v[k] for k in FRAME_KEYS}  # flow, blend etc. do not touch a zoom
        z = asdict(self.zoom)
        z["fps"] = work_folder.fps_text(parse_fps(self.zoom.fps))
        d["zoom"] = z
        d["algorithm"] = ALGORITHM
        if self.keyframes is not None:
            kf = self.keyframes
            d["keyframes"] = {"times": list(kf.times), "easings": list(kf.easings),
                              "states": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in st.items()}
                                         for st in kf.states]}
        return d


def plan_zoom(size: tuple[int, int], settings: Settings | None = None, zoom: ZoomSettings | None = None, *,
              keyframes: Keyframes | str | os.PathLike | None = None, duration: float | None = None,
              n_frames: int | None = None, default_layers: tuple = ()) -> ZoomPlan:
    """Check a zoom of a (width, height) picture before any work; returns its ZoomPlan.

    keyframes: parsed Keyframes, TOML text or a .toml path; the motion flags and settings
    are their defaults. duration (s) or n_frames; neither: the keyframes' last time, else
    DEFAULT_DURATION. default_layers: the model's default layers (what empty `layers` means).
    """
    settings = settings or Settings()
    settings = Settings(validate(settings.dream), validate_video(settings.video))
    zoom = validate_zoom(zoom or ZoomSettings())
    d = settings.dream
    layers = dict(d.layers or default_layers)
    if keyframes is not None and not isinstance(keyframes, Keyframes):
        base = _frame_base(settings)
        defaults = {"zoom": zoom.zoom, "rotate": zoom.rotate, "pan": zoom.pan, "center": zoom.center,
                    "step": d.step, "iterations": base.iterations, "num_octave": base.num_octave,
                    "octave_scale": d.octave_scale, "jitter": d.jitter}
        if d.max_loss is not None:
            defaults["max_loss"] = d.max_loss
        if layers:
            defaults["layers"] = layers
        keyframes = parse_keyframes(keyframes, KEYFRAME_DREAM_KEYS, defaults)
    fps = float(parse_fps(zoom.fps))
    if duration is None and n_frames is None and keyframes is None:
        duration = DEFAULT_DURATION
    trajectory = Trajectory(keyframes if keyframes is not None else zoom.motion(), fps, size,
                            duration=duration, n_frames=n_frames)
    if len(trajectory) > MAX_FRAMES:
        raise SettingsError(f"the zoom would have {len(trajectory)} frames, more than the limit of {MAX_FRAMES}",
                            hint="check --duration and --fps")
    first = _with_params(d, trajectory.params(0), keep_amount=True)
    plan = ZoomPlan(settings, zoom, trajectory, keyframes, first, tuple(layers))
    names = set(layers)
    for i in range(len(trajectory)):  # every frame's settings, checked now rather than an hour in
        try:
            s = validate(plan.frame_settings(i))
        except SettingsError as e:
            raise SettingsError(f"frame {i} (t = {i / fps:.2f} s): {e.message}", hint=e.hint) from None
        names |= {n for n, _ in s.layers}
    plan.layer_names = tuple(dict.fromkeys([*layers, *sorted(names - set(layers))]))
    _check_signs(plan)
    return plan


def _frame_base(settings: Settings) -> DreamSettings:
    d, v = settings.dream, settings.video
    return replace(d, iterations=d.iterations if v.frame_iterations is None else v.frame_iterations,
                   num_octave=d.num_octave if v.frame_num_octave is None else v.frame_num_octave)


def _with_params(s: DreamSettings, params: Mapping[str, Any], keep_amount: bool = False) -> DreamSettings:
    """s with keyframe values applied (keep_amount: not iterations/num_octave: frame 0's full dream)."""
    if not params:
        return s
    values = {k: v for k, v in params.items() if k in KEYFRAME_DREAM_KEYS}
    if keep_amount:
        values.pop("iterations", None)
        values.pop("num_octave", None)
    if "layers" in values:
        values["layers"] = tuple(values["layers"].items())
    return replace(s, **values)


def _check_signs(plan: ZoomPlan) -> None:
    """Eased layer weights are applied as gains on one traced step (LayerMix); a weight whose
    sign flips between keyframes cannot be, and is refused up front."""
    if plan.keyframes is None:
        return
    signs: dict[str, float] = {}
    for state in plan.keyframes.states:
        for name, w in dict(state.get("layers") or {}).items():
            if w != 0 and signs.setdefault(name, math.copysign(1.0, w)) != math.copysign(1.0, w):
                raise SettingsError(f"keyframes: the weight of layer {name!r} changes sign",
                                    hint="ease a layer between 0 and a positive (or a negative) weight, not across 0")


# ---- one frame ----------------------------------------------------------------------------------

def move(previous: np.ndarray, m: np.ndarray, interpolation: str = DEFAULT_INTERPOLATION) -> np.ndarray:
    """Frame i's start: the previous frame (H, W, 3) uint8 moved by forward affine m -> float32 0..255."""
    moved = apply(previous.astype(np.float32), m, interpolation)
    return np.clip(moved, 0.0, 255.0, out=moved)  # Lanczos rings slightly past the range at hard edges


def lab_stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of L*, a*, b* over an (H, W, 3) RGB 0..255 picture: its colour statistics."""
    import cv2

    lab = cv2.cvtColor(np.asarray(image, np.float32) / 255.0, cv2.COLOR_RGB2LAB).reshape(-1, 3)
    return lab.mean(0).astype(np.float64), lab.std(0).astype(np.float64)


def hold_colors(image: np.ndarray, reference: tuple[np.ndarray, np.ndarray], strength: float) -> np.ndarray:
    """Pull `image`'s L*a*b* mean and spread `strength` of the way (geometrically, for the
    spread) towards `reference` = lab_stats(frame 0). (H, W, 3) float 0..255 -> float32 0..255."""
    import cv2

    if strength <= 0:
        return np.asarray(image, np.float32)
    lab = cv2.cvtColor(np.clip(image, 0, 255).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    mean, std = lab.reshape(-1, 3).mean(0), np.maximum(lab.reshape(-1, 3).std(0), 1e-3)
    ref_mean, ref_std = reference
    target_mean = mean + strength * (ref_mean - mean)
    target_std = std * (np.maximum(ref_std, 1e-3) / std) ** strength
    lab = (lab - mean) * (target_std / std) + target_mean
    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB) * 255.0
    return np.clip(rgb, 0.0, 255.0, out=rgb)


class LayerMix:
    """A DreamModel tapped at every layer any keyframe names, each output scaled by a gain held in
    a tf.Variable. Easing layer weights then changes the variable, not the traced step: a new
    weight set per frame would otherwise build and trace a new Dreamer per frame.

    loss = sum sign_l * gain_l² / scale_l * mean(a_l²), gain_l = sqrt(|weight_l|); the sign
    of each layer is fixed for the render (plan_zoom refuses weights crossing 0).
    """

    def __init__(self, model, signs: Mapping[str, float]):
        import tensorflow as tf

        self._model = model
        self.name, self.min_size, self.scales = model.name, model.min_size, model.scales
        self.layers = tuple((n, signs.get(n, 1.0)) for n, _ in model.layers)
        self.gains = tf.Variable(tf.ones([len(self.layers)]), trainable=False, name="layer_gains")

    def set_weights(self, layers: Mapping[str, float]) -> None:
        self.gains.assign([math.sqrt(abs(layers.get(n, 0.0))) for n, _ in self.layers])

    def __call__(self, x):
        import tensorflow as tf

        return [a * tf.cast(self.gains[k], a.dtype) for k, a in enumerate(self._model(x))]


class Frames:
    """Makes the frames of a plan, one at a time: `make(i, previous)` -> (H, W, 3) uint8."""

    def __init__(self, plan: ZoomPlan, source: np.ndarray):
        from ..dream import Dreamer, get_dreamer

        self.plan = plan
        self.source = np.asarray(source, np.float32)
        d = plan.settings.dream
        self.mix: LayerMix | None = None
        if plan.keyframes is not None and len({_layer_key(st) for st in plan.keyframes.states}) > 1:
            from .. import models

            signs = {}
            for st in plan.keyframes.states:
                signs.update({n: math.copysign(1.0, w) for n, w in dict(st.get("layers") or {}).items() if w})
            model = models.load(d.model, tuple((n, 1.0) for n in plan.layer_names), d.weights)
            self.mix = LayerMix(model, signs)
            self.dreamer = Dreamer(self.mix)
        else:  # one layer set for the whole zoom: the shared, cached Dreamer
            self.dreamer = get_dreamer(plan.first)
        self.reference: tuple[np.ndarray, np.ndarray] | None = None

    def make(self, i: int, previous: np.ndarray | None, frame0: np.ndarray | None = None) -> np.ndarray:
        """Frame i from frame i - 1 (`previous`, uint8; None for i = 0). `frame0` (uint8) is
        the colour reference; it defaults to the first frame this object made."""
        from ..dream import to_uint8

        s = self.plan.frame_settings(i)
        if self.mix is not None:
            self.mix.set_weights(dict(s.layers))
        if i == 0:
            out = to_uint8(self.dreamer.dream(self.source, s, frame=0))
            self.reference = lab_stats(out)
            return out
        if self.reference is None:
            if frame0 is None:
                raise ValueError("frame 0 is needed as the colour reference")
            self.reference = lab_stats(frame0)
        start = move(previous, self.plan.trajectory.affine(i), self.plan.zoom.interpolation)
        dreamed = self.dreamer.dream(start, s, frame=i)
        return to_uint8(hold_colors(dreamed, self.reference, self.plan.zoom.color_hold))


def _layer_key(state: Mapping[str, Any]) -> tuple:
    return tuple(sorted(dict(state.get("layers") or {}).items()))


def zoom_frames(image: np.ndarray, settings: Settings | None = None, zoom: ZoomSettings | None = None, *,
                keyframes=None, duration: float | None = None, n_frames: int | None = None) -> Iterator[np.ndarray]:
    """The frames of a zoom of `image` ((H, W, 3) uint8 RGB, fit to max_size first), in memory:
    a generator of (H, W, 3) uint8 RGB. render_zoom writes them to a file and can resume."""
    from ..dream import fit_max_size

    settings = settings or Settings()
    picture = fit_max_size(np.asarray(image, np.float32), settings.dream.max_size)
    h, w = picture.shape[:2]
    plan = plan_zoom((w, h), settings, zoom, keyframes=keyframes, duration=duration, n_frames=n_frames,
                     default_layers=_default_layers(validate(settings.dream)))
    maker = Frames(plan, picture)
    previous = None
    for i in range(plan.n_frames):
        previous = maker.make(i, previous)
        yield previous


def _default_layers(d: DreamSettings) -> tuple:
    """What `layers` means for d's model: its own, else the registry default (no model load),
    else (a user's .keras file) the default found by loading it."""
    from .. import models
    from ..dream import get_dreamer

    if d.layers:
        return tuple(d.layers)
    spec = models.get_spec(d.model)
    return tuple(spec.default_layers) or tuple(get_dreamer(d).model.layers)


# ---- the library function ---------------------------------------------------------------------------

def render_zoom(source, output: str | os.PathLike, settings: Settings | None = None,
                zoom: ZoomSettings | None = None, *, keyframes=None, duration: float | None = None,
                n_frames: int | None = None, restart: bool = False, keep_frames: bool = False,
                work_dir: str | os.PathLike | None = None, progress: ProgressFn | None = None) -> ZoomResult:
    """Render the infinite zoom into `source` (an image path, or (H, W, 3) uint8 RGB).

    output: .mp4/.mov/.mkv/.m4v (H.264), .gif, or a folder for PNG frames. settings: dream
    (frame 0, and the base of every frame) and video (frame_iterations, frame_num_octave,
    crf). zoom: motion, fps, interpolation, color_hold. keyframes: Keyframes, TOML text or a
    .toml path (see trajectory.parse_keyframes; KEYFRAME_DREAM_KEYS may be keyed).
    duration (s) or n_frames. Frames go to a work folder (`work_dir`, default
    OUTPUT.dreamvid-work); a second call resumes at the first missing frame; `restart`
    discards frames of another render there. `progress(ZoomProgress)` after each frame;
    whatever it raises stops the render with every finished frame on disk.
    """
    from .. import media
    from ..dream import fit_max_size

    settings = settings or Settings()
    settings = Settings(validate(settings.dream), validate_video(settings.video))
    zoom = validate_zoom(zoom or ZoomSettings())
    out, picture, _ = load_still(source, output)
    picture = np.ascontiguousarray(picture, np.uint8)
    fingerprint = work_folder.still_fingerprint(source, picture)
    if media.output_kind(out) == "image":
        raise OutputError(f"{out.name} is a still image name, but a zoom is a clip",
                          hint="use .mp4, .mov, .mkv, .gif, or a folder name for PNG frames")
    picture = fit_max_size(picture.astype(np.float32), settings.dream.max_size)
    h, w = picture.shape[:2]
    plan = plan_zoom((w, h), settings, zoom, keyframes=keyframes, duration=duration, n_frames=n_frames,
                     default_layers=_default_layers(validate(settings.dream)))
    fps = parse_fps(zoom.fps)
    maker = Frames(plan, picture)  # loads the network: a bad model or layer fails before any folder exists
    work = work_folder.open_work(out, kind="zoom", settings=plan.resume_key(), source=fingerprint,
                                 seed=settings.dream.seed, start=0, end=plan.n_frames, fps=fps,
                                 work_dir=work_dir, restart=restart)
    with work:  # holds the folder's lock until the frames are encoded or the render fails
        first = work.first_missing()
        if first is not None and first > 0:
            log.info("resuming at frame %d: %d of %d frames are already in %s", first, first, plan.n_frames, work.path)
        t0, rendered = time.perf_counter(), 0
        try:
            if first is not None:
                previous = work.read(first - 1) if first > 0 else None
                frame0 = work.read(0) if first > 1 else previous
                for i in range(first, plan.n_frames):
                    previous = maker.make(i, previous, frame0)
                    work.write(i, previous)
                    rendered += 1
                    if progress:
                        progress(ZoomProgress(i + 1, plan.n_frames, i, rendered, time.perf_counter() - t0))
        except BaseException:
            if not work.done_indices():  # leave no empty work folder behind a render that made nothing
                work.remove()
            raise
        work.finish(out, fps=fps, crf=settings.video.crf, keep=keep_frames)
    return ZoomResult(out, plan.n_frames, fps, (w, h), rendered, first if first not in (None, 0) else None,
                      time.perf_counter() - t0, work.path if keep_frames else None)


# ---- measures: is a long zoom still sharp and colourful? ---------------------------------------

def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey picture ((H, W, 3) uint8): falls as blur sets in."""
    import cv2

    grey = cv2.cvtColor(np.asarray(image, np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def colorfulness(image: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness of (H, W, 3) uint8 RGB: ~0 grey, 50 moderate, 100+ vivid."""
    rgb = np.asarray(image, np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def frame_stats(image: np.ndarray) -> dict[str, float]:
    """Sharpness, colourfulness, mean channel spread and mean saturation of one frame."""
    import cv2

    u8 = np.asarray(image, np.uint8)
    hsv = cv2.cvtColor(u8, cv2.COLOR_RGB2HSV)
    return {"sharpness": sharpness(u8), "colorfulness": colorfulness(u8),
            "channel_std": float(u8.reshape(-1, 3).std(0).mean()), "saturation": float(hsv[..., 1].mean()),
            "brightness": float(u8.mean())}


def motion_error(previous: np.ndarray, current: np.ndarray, m: np.ndarray) -> float:
    """Mean squared difference (0..1 scale) between `current` and `previous` moved by the known
    affine m, on the pixels that came from inside the previous frame: the zoom's coherence."""
    import cv2

    h, w = current.shape[:2]
    moved = apply(np.asarray(previous, np.float32) / 255.0, m, DEFAULT_INTERPOLATION)
    inside = cv2.warpAffine(np.ones((h, w), np.float32), np.asarray(m, np.float64), (w, h),
                            flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.5
    diff = (np.asarray(current, np.float32) / 255.0 - moved) ** 2
    return float(diff[inside].mean()) if inside.any() else 0.0
