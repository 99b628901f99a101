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

Frames go through the render engine (engine.py) exactly like video: atomic PNGs in a work
folder with render.json, resume at the first missing frame with a result identical to an
uninterrupted run (the chain continues from the uint8 frame on disk; the jitter is seeded by
(seed, frame index)). The settings are the `zoom` section of settings.Settings.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from ..errors import OutputError, SettingsError
from ..settings import MAX_ZOOM_FRAMES, DreamSettings, Settings, ZoomSettings, parse_fps
from ..expr import Expression
from ..trajectory import Envelope, Keyframes, Motion, Trajectory, apply, parse_keyframes
from . import engine, workdir
from .still import load_still

log = logging.getLogger("dreamvid")

DEFAULT_DURATION = 10.0  # s, when neither a duration, a frame count nor keyframes say
ALGORITHM = 1  # bump when the same settings would give different frames (invalidates resumes)
INPAINT_RADIUS = 5  # px; how far inpainting looks for the colours it grows into an uncovered border
RANGE_KEYS = ("duration", "frames", "interpolate")  # ZoomSettings fields that do not change the dreamed frames

# Dream parameters a keyframe may set, with their types (trajectory.parse_keyframes).
# iterations / num_octave are the per-frame amounts of frames after the first.
KEYFRAME_DREAM_KEYS: dict[str, type] = {
    "step": float, "iterations": int, "num_octave": int, "octave_scale": float,
    "max_loss": float, "jitter": int, "layers": dict,
}


def motion(z: ZoomSettings) -> Motion:
    return Motion(zoom=z.zoom, rotate=z.rotate, pan=z.pan, center=z.center)


def _is_expression(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, tuple) and any(isinstance(x, str) for x in value))


def _plain(v: Any) -> Any:
    """A keyframe value as JSON (expressions as their text)."""
    if isinstance(v, Expression):
        return v.text
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


class _Soundtrack:
    """An audio file a zoom follows: its samples, length, fingerprint and envelopes."""

    def __init__(self, path: str | os.PathLike):
        from ..media.audio import read_audio

        self.path = Path(path)
        self.samples, self.rate = read_audio(self.path)
        self.seconds = self.samples.size / self.rate
        self.fingerprint = workdir.fingerprint(self.path)

    def envelopes(self, fps: float, n_frames: int) -> dict[str, Envelope]:
        from ..media.audio import envelopes

        times = np.arange(n_frames) / fps
        return {k: Envelope(times, v) for k, v in envelopes(self.samples, self.rate, fps, n_frames).items()}


# ---- the plan: everything checked before the first frame -----------------------------------------

@dataclass
class ZoomPath:
    """Per-frame settings and motion of one zoom, validated."""

    settings: Settings  # dream (frame 0) + video (per-frame amounts, crf) + zoom (motion, fps, kernel)
    trajectory: Trajectory
    keyframes: Keyframes | None
    first: DreamSettings  # frame 0's settings (keyframe values at t = 0 applied)
    layer_names: tuple[str, ...]  # every layer dreamed at some point (their union)
    sound: _Soundtrack | None = None  # the audio the expressions follow (and the output carries)
    signs: tuple[tuple[str, float], ...] = ()  # each layer's sign over the frames (eased weights keep it)

    @property
    def n_frames(self) -> int:
        return len(self.trajectory)

    def frame_settings(self, i: int) -> DreamSettings:
        """The DreamSettings of frame i (i > 0: the per-frame amounts; keyframes applied)."""
        if i == 0:
            return self.first
        return _with_params(self.settings.frame_dream(), self.trajectory.params(i))

    @property
    def zoom(self) -> ZoomSettings:
        return self.settings.zoom

    def resume_key(self) -> dict[str, Any]:
        """Everything the frames depend on (output-only options and the length left out)."""
        d = self.settings.to_dict()
        d = {"dream": d["dream"], "frame": {k: d["video"][k] for k in ("frame_iterations", "frame_num_octave")}}
        z = {k: v for k, v in asdict(self.zoom).items() if k not in RANGE_KEYS}
        z["fps"] = workdir.fps_text(parse_fps(self.zoom.fps))
        d["zoom"] = z
        d["algorithm"] = ALGORITHM
        from ..dream import input_files

        files = input_files(self.settings.dream)  # digests: read each file once
        if files:
            d["files"] = files
        if self.keyframes is not None:
            kf = self.keyframes
            d["keyframes"] = {"times": list(kf.times), "easings": list(kf.easings),
                              "states": [{k: _plain(v) for k, v in st.items()} for st in kf.states]}
        if self.sound is not None:
            d["audio"] = self.sound.fingerprint
        return d


def plan_zoom(size: tuple[int, int], settings: Settings | None = None, *,
              keyframes: Keyframes | str | os.PathLike | None = None, default_layers: tuple = (),
              audio: str | os.PathLike | None = None) -> ZoomPath:
    """Check a zoom of a (width, height) picture before any work; returns its ZoomPath.

    keyframes: parsed Keyframes, TOML text or a .toml path; the motion flags and settings
    are their defaults. Any motion value (settings.zoom or a keyframe's) may be an
    expression of t (expr.py). audio: a sound file whose envelopes (rms, onset, bass, mid,
    treble) the expressions may use. The length: settings.zoom.duration (s) or .frames;
    else the audio's length; else the keyframes' last time; else DEFAULT_DURATION.
    default_layers: the model's default layers (what empty `layers` means).
    """
    from ..settings import validate, validate_all

    settings = validate_all(settings or Settings())
    if settings.dream.classes:  # class entries are layer entries ("logits/207"), keyframeable as any
        settings = replace(settings, dream=replace(settings.dream, layers=settings.dream.targets(), classes=()))
    zoom, d = settings.zoom, settings.dream
    duration, n_frames = zoom.duration, zoom.frames
    layers = dict(d.layers or default_layers)
    fps = float(parse_fps(zoom.fps))
    sound = _Soundtrack(audio) if audio is not None else None
    if duration is None and n_frames is None and sound is not None:
        duration = sound.seconds
    expressive = any(_is_expression(v) for v in (zoom.zoom, zoom.rotate, zoom.pan, zoom.center, d.step))
    if (keyframes is not None and not isinstance(keyframes, Keyframes)) or (keyframes is None and expressive):
        base = settings.frame_dream()
        defaults = {"zoom": zoom.zoom, "rotate": zoom.rotate, "pan": zoom.pan, "center": zoom.center,
                    "step": d.step, "iterations": base.iterations, "num_octave": base.num_octave,
                    "octave_scale": d.octave_scale, "jitter": d.jitter}
        if d.max_loss is not None:
            defaults["max_loss"] = d.max_loss
        if layers:
            defaults["layers"] = layers
        if keyframes is None:  # expressions on the command line: one keyframe that holds them for ever
            keyframes = Keyframes.from_list([{"time": 0.0}], KEYFRAME_DREAM_KEYS, defaults)
            if duration is None and n_frames is None:
                duration = DEFAULT_DURATION
        else:
            keyframes = parse_keyframes(keyframes, KEYFRAME_DREAM_KEYS, defaults)
    if duration is None and n_frames is None and keyframes is None:
        duration = DEFAULT_DURATION
    length = duration if duration is not None or n_frames is not None else keyframes.duration  # to the last keyframe
    if length is not None and length * fps > MAX_ZOOM_FRAMES:  # before the path allocates anything
        raise SettingsError(f"the zoom would have {math.ceil(length * fps)} frames, more than the limit of "
                            f"{MAX_ZOOM_FRAMES}", hint="check --duration, --fps and the keyframes' times")
    n_guess = n_frames or (round(duration * fps) if duration is not None else round(keyframes.duration * fps) + 1)
    trajectory = Trajectory(keyframes if keyframes is not None else motion(zoom), fps, size,
                            duration=duration, n_frames=n_frames,
                            envelopes=sound.envelopes(fps, max(1, n_guess)) if sound is not None else None)
    if len(trajectory) > MAX_ZOOM_FRAMES:
        raise SettingsError(f"the zoom would have {len(trajectory)} frames, more than the limit of "
                            f"{MAX_ZOOM_FRAMES}", hint="check --duration and --fps")
    first = _with_params(d, trajectory.params(0), keep_amount=True)
    plan = ZoomPath(settings, trajectory, keyframes, first, tuple(layers), sound)
    names = set(layers)
    _check_signs(plan)
    signs: dict[str, float] = {}
    for i in range(len(trajectory)):  # every frame's settings, checked now rather than an hour in
        try:
            s = validate(plan.frame_settings(i))
            if keyframes is not None and keyframes.has_expressions:
                trajectory.affine(i)  # the motion between frames, its expressions evaluated
            for name, w in s.layers:  # a weight of time (an expression in a keyframe) keeps its sign too
                if w != 0 and signs.setdefault(name, math.copysign(1.0, w)) != math.copysign(1.0, w):
                    raise SettingsError(f"the weight of layer {name!r} changes sign ({w:.3g})",
                                        hint="keep a layer's weight on one side of 0 through the zoom")
        except SettingsError as e:
            message = e.message.split(": ", 1)[1] if e.message.startswith("at t = ") else e.message
            raise SettingsError(f"frame {i} (t = {i / fps:.2f} s): {message}", hint=e.hint) from None
        names |= {n for n, _ in s.layers}
    plan.layer_names = tuple(dict.fromkeys([*layers, *sorted(names - set(layers))]))
    plan.signs = tuple(sorted(signs.items()))
    return plan


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


def _check_signs(plan: ZoomPath) -> None:
    """Eased layer weights are applied as gains on one traced step (dream.EasedMeanSquares); a weight whose
    sign flips between keyframes cannot be, and is refused up front."""
    if plan.keyframes is None:
        return
    signs: dict[str, float] = {}
    for state in plan.keyframes.states:
        for name, w in dict(state.get("layers") or {}).items():
            if isinstance(w, Expression) or w == 0:  # an expression's signs: plan_zoom checks every frame's
                continue
            if signs.setdefault(name, math.copysign(1.0, w)) != math.copysign(1.0, w):
                raise SettingsError(f"keyframes: the weight of layer {name!r} changes sign",
                                    hint="ease a layer between 0 and a positive (or a negative) weight, not across 0")


# ---- one frame ----------------------------------------------------------------------------------

def move(previous: np.ndarray, m: np.ndarray, interpolation: str = "lanczos", edges: str = "reflect") -> np.ndarray:
    """Frame i's start: the previous frame (H, W, 3) uint8 moved by forward affine m -> float32 0..255.

    edges: what fills the border a zoom-out, rotation or pan uncovers. "reflect" mirrors the
    picture (a fresh mirror band every frame: over seconds the border turns kaleidoscopic);
    "inpaint" grows the band from its surroundings (OpenCV's Telea inpainting, a few px a
    frame), which the dream then fills with its own detail: no mirror seams, no stripes."""
    moved = apply(previous.astype(np.float32), m, interpolation)
    np.clip(moved, 0.0, 255.0, out=moved)  # Lanczos rings slightly past the range at hard edges
    if edges == "inpaint":
        moved = _inpaint_uncovered(moved, m)
    return moved


def uncovered(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the pixels of the next frame that forward affine m brings from outside the
    previous one (plus a 1-px rim the resampling kernel smears), size = (width, height)."""
    import cv2

    w, h = size
    inside = cv2.warpAffine(np.ones((h, w), np.uint8), np.asarray(m, np.float64), (w, h), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.dilate((inside == 0).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def _inpaint_uncovered(moved: np.ndarray, m: np.ndarray) -> np.ndarray:
    import cv2

    h, w = moved.shape[:2]
    mask = uncovered(m, (w, h))
    if not mask.any():
        return moved
    filled = cv2.inpaint(np.rint(moved).astype(np.uint8), mask.astype(np.uint8), INPAINT_RADIUS, cv2.INPAINT_TELEA)
    moved[mask] = filled[mask]
    return moved


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


class Frames:
    """Makes the frames of a plan, one at a time: `make(i, previous)` -> (H, W, 3) uint8."""

    def __init__(self, plan: ZoomPath, source: np.ndarray):
        from ..dream import get_dreamer, objective_for
        from ..mask import for_still

        self.plan = plan
        self.source = np.asarray(source, np.float32)
        self.mask = for_still(plan.first.mask, self.source.shape[:2]) if plan.first.mask else None
        self.eased = plan.keyframes is not None and (len({_layer_key(st) for st in plan.keyframes.states}) > 1 or any(
            isinstance(w, Expression) for st in plan.keyframes.states for w in dict(st.get("layers") or {}).values()))
        if self.eased:  # one network tapped at every layer named, weights eased by gains: one trace
            network = replace(plan.first, layers=tuple((n, 1.0) for n in plan.layer_names))
            self.dreamer = get_dreamer(network, objective_for(network, plan.signs), size=self.source.shape[:2])
        else:  # one layer set for the whole zoom: the shared, cached Dreamer
            self.dreamer = get_dreamer(plan.first, size=self.source.shape[:2])
        self.reference: tuple[np.ndarray, np.ndarray] | None = None

    def make(self, i: int, previous: np.ndarray | None, frame0: np.ndarray | None = None) -> np.ndarray:
        """Frame i from frame i - 1 (`previous`, uint8; None for i = 0). `frame0` (uint8) is
        the colour reference; it defaults to the first frame this object made."""
        from ..dream import to_uint8

        s = self.plan.frame_settings(i)  # an eased objective reads this frame's layer weights from it
        if i == 0:
            out = to_uint8(self.dreamer.dream(self.source, s, frame=0, mask=self.mask))
            self.reference = lab_stats(out)
            return out
        if self.reference is None:
            if frame0 is None:
                raise ValueError("frame 0 is needed as the colour reference")
            self.reference = lab_stats(frame0)
        start = move(previous, self.plan.trajectory.affine(i), self.plan.zoom.interpolation, self.plan.zoom.edges)
        dreamed = self.dreamer.dream(start, s, frame=i, mask=self.mask)
        return to_uint8(hold_colors(dreamed, self.reference, self.plan.zoom.color_hold))


def _layer_key(state: Mapping[str, Any]) -> tuple:
    return tuple(sorted(dict(state.get("layers") or {}).items()))


def zoom_frames(image: np.ndarray, settings: Settings | None = None, *, preset: str | None = None,
                keyframes=None, **overrides) -> Iterator[np.ndarray]:
    """The frames of a zoom of `image` ((H, W, 3) uint8 RGB, fit to max_size first), in memory:
    a generator of (H, W, 3) uint8 RGB. render_zoom writes them to a file and can resume."""
    from ..presets import resolve_for

    plan = ZoomPlan(np.asarray(image), None, resolve_for("zoom", settings, preset, overrides), keyframes=keyframes)
    for item in engine.make_items(plan, range(plan.end)):
        yield item.image


def schedule(plan: ZoomPath) -> list[dict[str, Any]]:
    """Every frame's resolved parameters: time, motion, and the dream settings it gets."""
    rows = []
    for i in range(plan.n_frames):
        m, s = plan.trajectory.motion(i), plan.frame_settings(i)
        rows.append({"frame": i, "t": round(i / plan.trajectory.fps, 6), "zoom": m.zoom, "rotate": m.rotate,
                     "pan": list(m.pan), "center": list(m.center), "step": s.step, "iterations": s.iterations,
                     "num_octave": s.num_octave, "octave_scale": s.octave_scale, "max_loss": s.max_loss,
                     "jitter": s.jitter, "layers": dict(s.layers) or "the model's default layers"})
    return rows


def zoom_schedule(source, settings: Settings | None = None, *, preset: str | None = None, keyframes=None,
                  audio: str | os.PathLike | None = None, **overrides) -> list[dict[str, Any]]:
    """The per-frame schedule of a zoom (what --dry-run prints), without dreaming anything."""
    from ..presets import resolve_for

    return schedule(ZoomPlan(source, None, resolve_for("zoom", settings, preset, overrides), keyframes=keyframes,
                             audio=audio, read=True).path)


PREVIEW_SIZE = 320  # px, longest side of a --preview: the camera path, quickly


def render_zoom_preview(source, output: str | os.PathLike, settings: Settings | None = None, *,
                        preset: str | None = None, keyframes=None, audio: str | os.PathLike | None = None,
                        **overrides) -> engine.Result:
    """The camera path of a zoom on the undreamed photo, at most PREVIEW_SIZE px: each frame
    is the photo moved by the path's transform from frame 0 (one resampling, no dream), so a
    path can be checked in seconds before an hour of dreaming. Same arguments as render_zoom."""
    import time

    from .. import media
    from ..presets import resolve_for

    t0 = time.perf_counter()
    s = resolve_for("zoom", settings, preset, overrides)
    size = min(s.dream.max_size or PREVIEW_SIZE, PREVIEW_SIZE)
    s = replace(s, dream=replace(s.dream, max_size=size))
    plan = ZoomPlan(source, output, s, keyframes=keyframes, audio=audio)
    picture = plan.picture
    path = plan.path
    with media.VideoWriter(plan.output, fps=plan.fps, crf=s.video.crf, pix_fmt=s.video.pix_fmt) as writer:
        for i in range(plan.end):
            frame = apply(picture, path.trajectory.cumulative(i), path.zoom.interpolation)
            writer.write(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    return engine.Result(plan.output, "zoom", plan.end, plan.end, None, time.perf_counter() - t0, fps=plan.fps,
                         size=plan.size)


def write_params(output: Path, rows: list[dict[str, Any]]) -> Path:
    """OUTPUT.params.json beside a clip (or a frame folder): every frame's resolved parameters."""
    import json

    from ..media.paths import atomic_destination

    dest = output.with_name(output.name + ".params.json")  # beside a file or a frame folder alike
    with atomic_destination(dest) as tmp:
        tmp.write_text(json.dumps({"frames": rows}, indent=1) + "\n", encoding="utf-8")
    return dest


def _default_layers(d: DreamSettings) -> tuple:
    """What `layers` means for d's model: its own, else the registry default (no model load),
    else (a user's .keras file) the default found by loading it."""
    from .. import models
    from ..dream import get_dreamer

    if d.layers or d.classes:
        return tuple(d.targets())
    spec = models.get_spec(d.model)
    return tuple(spec.default_layers) or tuple(get_dreamer(d).model.layers)


# ---- the library function ---------------------------------------------------------------------------

def render_zoom(source, output: str | os.PathLike, settings: Settings | None = None, *, preset: str | None = None,
                progress: engine.ProgressFn | None = None, keyframes=None, audio: str | os.PathLike | None = None,
                restart: bool = False, keep_frames: bool = False, work_dir: str | os.PathLike | None = None,
                workers: int | None = None, ray: str | None = None, **overrides) -> engine.Result:
    """Render the infinite zoom into `source` (an image path, or (H, W, 3) uint8 RGB).

    output: .mp4/.mov/.mkv/.m4v (H.264), .gif, or a folder for PNG frames. settings or
    preset (default `zoom`; another preset keeps zoom's short per-frame dream unless it sets
    its own), then keyword overrides named as the CLI's flags: motion (`zoom=1.1`,
    `rotate=3`, `pan=(12, -4)`, `center=(0.5, 0.4)`), `fps`, `duration` or `frames`,
    `interpolation`, `color_hold`, the per-frame amounts (`frame_iterations`,
    `frame_num_octave`), `crf` and every dream setting. keyframes: Keyframes, TOML text or a
    .toml path (see trajectory.parse_keyframes; KEYFRAME_DREAM_KEYS may be keyed). Every
    motion value and keyframe value may be an expression of t (`zoom="1.02+0.01*sin(t)"`,
    expr.py). audio: a sound file: the length follows it unless given, expressions may use
    its envelopes (rms, onset, bass, mid, treble), and the output carries it. Frames go
    to a work folder (`work_dir`, default OUTPUT.dreamvid-work); a second call resumes at the
    first missing frame; `restart` discards frames of another render there.
    `progress(engine.Progress)` after each frame; whatever it raises stops the render with
    every finished frame on disk. workers, ray: accepted for one vocabulary with the other
    renders, but a zoom's frames are each made from the one before: it renders in this
    process and says so (a warning).
    """
    from ..presets import resolve_for
    from . import cluster

    plan = ZoomPlan(source, output, resolve_for("zoom", settings, preset, overrides), keyframes=keyframes,
                    audio=audio)
    return cluster.render(plan, workers=workers, ray=ray, progress=progress, work_dir=work_dir, restart=restart,
                          keep=keep_frames)


class ZoomPlan(engine.Plan):
    """The frames of a zoom; frame i is made from frame i - 1 (chained)."""

    mode = "zoom"
    chained = True

    def __init__(self, source, output, settings: Settings, *, keyframes=None, audio=None, read: bool = False):
        from .. import media, models
        from ..dream import fit_max_size

        if read:  # only the plan (zoom_schedule): the photo is read, nothing is written
            picture, self.output, self.fingerprint = (media.read_image(source) if isinstance(source, (str, os.PathLike))
                                                      else np.asarray(source)), None, None
        elif output is None:  # in memory (zoom_frames): nothing is read from or written to disk
            picture, self.output, self.fingerprint = np.asarray(source), None, None
        else:
            self.output, picture, _ = load_still(source, output)
            picture = np.ascontiguousarray(picture, np.uint8)
            self.fingerprint = workdir.still_fingerprint(source, picture)
            if media.output_kind(self.output) == "image":
                raise OutputError(f"{self.output.name} is a still image name, but a zoom is a clip",
                                  hint="use .mp4, .mov, .mkv, .gif, or a folder name for PNG frames")
            media.check_pix_fmt(self.output, settings.video.pix_fmt)
        self.picture = fit_max_size(picture.astype(np.float32), settings.dream.max_size)
        h, w = self.picture.shape[:2]
        self.size = (w, h)
        from ..dream import check_objective

        check_objective(settings.dream, "zoom", (h, w))
        self.path = plan_zoom((w, h), settings, keyframes=keyframes, default_layers=_default_layers(settings.dream),
                              audio=audio)
        self.settings, self.end = self.path.settings, self.path.n_frames
        # every entry of every keyframe exists (no TensorFlow for a known model)
        models.check_targets(settings.dream.model, tuple((name, 1.0) for name in self.path.layer_names))
        self.fps, self.seed = parse_fps(settings.zoom.fps), settings.dream.seed

    def prepare(self) -> None:
        self.maker = Frames(self.path, self.picture)  # loads the network

    def resume_key(self) -> dict[str, Any]:
        return self.path.resume_key()

    def source(self) -> dict[str, Any] | None:
        return self.fingerprint

    def make(self, todo: list[int], ctx: engine.Context) -> Iterator[engine.Item]:
        first = todo[0]
        previous = ctx.read(first - 1) if first > 0 else None
        frame0 = ctx.read(0) if first > 1 else previous
        for i in todo:
            previous = self.maker.make(i, previous, frame0)
            yield engine.Item(i, previous)

    def finish(self, ctx: engine.Context) -> engine.Result:
        sound, k = self.path.sound, self.settings.zoom.interpolate
        ctx.store.finish(self.output, fps=self.fps * k, crf=self.settings.video.crf, pix_fmt=self.settings.video.pix_fmt,
                         keep=ctx.keep, interpolate=k,
                         audio_source=sound.path if sound is not None else None, audio_start=0.0,
                         audio_duration=float(self.end / self.fps))
        write_params(self.output, schedule(self.path))
        return engine.Result(self.output, self.mode, self.end, ctx.rendered, ctx.resumed_from, ctx.elapsed,
                             ctx.store.path if ctx.keep else None, fps=self.fps * k, size=self.size)
