"""A soundtrack as envelopes that a zoom's expressions can follow: rms, onset, bass, mid, treble.

`read_audio` decodes any file ffmpeg reads (mp3, wav, flac, ogg, the audio of a video) to
mono float32 at RATE Hz. `envelopes` turns it into one value per frame time, each in 0..1:

* rms     loudness: root mean square over a WINDOW_S window, divided by its PEAK_PERCENTILE
* bass    energy below 250 Hz; mid 250 Hz - 4 kHz; treble above 4 kHz (same normalisation)
* onset   beats: spectral flux (the rise of the log spectrum from one window to the next,
          summed over frequencies) above its median (the flux of steady sound), divided by
          its peak, then held with a fast attack and a DECAY_S release, so a beat is a pulse
          that fades instead of a one-frame spike

Only numpy: no new dependency for a few FFTs.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import InputError
from . import _ffmpeg

RATE = 22050  # Hz; plenty for envelopes, and a 10-minute song is 53 MB of float32
WINDOW_S = 0.046  # s; about 1024 samples: enough frequency resolution for the bass band
HOP_S = 0.0058  # s; 128 samples between spectra, so every frame at up to 120 fps sees a few
CHUNK = 2048  # spectra computed at a time (memory: CHUNK x WINDOW x 4 bytes)
DECAY_S = 0.15  # s; how long an onset pulse takes to fade to a third
BANDS = {"bass": (20.0, 250.0), "mid": (250.0, 4000.0), "treble": (4000.0, RATE / 2)}
SILENT_RMS = 1e-4  # below this the track is silence (about -80 dBFS)
PEAK_PERCENTILE = 99  # what counts as "1": the loud end of the track, not one stray peak
MAX_SECONDS = 4 * 3600  # a longer "song" is a mistake (and gigabytes of samples)


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """(mono float32 samples in [-1, 1], RATE) of a file's first audio stream.
    InputError: missing, unreadable, no audio, longer than MAX_SECONDS, or silent."""
    from .paths import require_file

    p = require_file(path, "audio")
    _require_audio_stream(p)
    cmd = _ffmpeg.base_cmd("error") + ["-i", _ffmpeg.path_arg(p), "-map", "0:a:0", "-vn", "-ac", "1",
                                       "-ar", str(RATE), "-t", str(MAX_SECONDS), "-f", "f32le", "pipe:1"]
    proc = _ffmpeg.run(cmd)
    samples = np.frombuffer(proc.stdout, np.float32)
    if proc.returncode != 0 or samples.size == 0:
        why = _ffmpeg.last_line(_ffmpeg.tail(proc.stderr)) or "no audio stream"
        raise InputError(f"cannot read audio from {p.name} ({why})", hint=_AUDIO_HINT)
    if float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) < SILENT_RMS:
        raise InputError(f"{p.name} is silent, so there is nothing for the animation to follow",
                         hint="check the file, or leave --audio out")
    return samples, RATE


_AUDIO_HINT = "give a sound file (mp3, wav, flac, ogg, m4a) or a video with a soundtrack"


def _require_audio_stream(p) -> None:
    """InputError naming what the file is when it has no audio stream (a still, a silent
    video, text): ffmpeg's own answer to `-map 0:a:0` is only "Invalid argument"."""
    from .probe import IMAGE_DEMUXERS, _read_header

    header = _read_header(p)
    if any(s.kind == "Audio" for s in header.streams):
        return
    if header.error or not header.demuxer:
        what = f" ({header.error or 'not a format ffmpeg reads'})"
    elif any(header.demuxer == d or header.demuxer.endswith(d) for d in IMAGE_DEMUXERS):
        what = ": it is a still image, not a sound file"
    elif any(s.kind == "Video" for s in header.streams):
        what = ": it is a video without a soundtrack"
    else:
        what = ": it has no audio stream"
    raise InputError(f"cannot read audio from {p.name}{what}", hint=_AUDIO_HINT)


def duration(samples: np.ndarray, rate: int) -> float:
    return samples.size / rate


def envelopes(samples: np.ndarray, rate: int, fps: float, n_frames: int) -> dict[str, np.ndarray]:
    """{name: (n_frames,) float64 in 0..1} at the frame times i / fps (see the module doc).

    The spectrum is taken every HOP_S (finer than any frame rate), then each frame gets
    what happened during its own 1/fps: the mean loudness and band energy, and the largest
    onset, so a beat that falls between two frame times still lands, at full height, on
    the frame that shows it."""
    win = int(round(WINDOW_S * rate))
    hop = max(1, int(round(HOP_S * rate)))
    padded = np.pad(samples.astype(np.float32), (win // 2, win), mode="reflect")  # no step from silence at 0
    n_hops = samples.size // hop + 1
    freqs = np.fft.rfftfreq(win, 1.0 / rate)
    bands = {name: (freqs >= lo) & (freqs < hi) for name, (lo, hi) in BANDS.items()}
    taper = np.hanning(win).astype(np.float32)
    per_hop = {name: np.zeros(n_hops) for name in ("rms", "flux", *BANDS)}
    previous = None
    for a in range(0, n_hops, CHUNK):  # bounded memory for a long song
        idx = np.arange(a, min(a + CHUNK, n_hops)) * hop
        frames = padded[idx[:, None] + np.arange(win)[None, :]]
        per_hop["rms"][a:a + len(idx)] = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
        spectrum = np.abs(np.fft.rfft(frames * taper, axis=1))
        for name, band in bands.items():
            per_hop[name][a:a + len(idx)] = np.sqrt(np.mean(spectrum[:, band] ** 2, axis=1)) if band.any() else 0.0
        log_spec = np.log1p(spectrum * 100.0)
        before = np.concatenate([log_spec[:1] if previous is None else previous, log_spec[:-1]])
        per_hop["flux"][a:a + len(idx)] = np.maximum(log_spec - before, 0.0).sum(axis=1)
        previous = log_spec[-1:]
    # Frame i shows the interval [i - 1/2, i + 1/2) / fps: the hops inside it.
    edges = np.clip(np.round((np.arange(n_frames + 1) - 0.5) / fps * rate / hop).astype(np.int64), 0, n_hops)
    edges[1:] = np.maximum(edges[1:], edges[:-1] + 1)
    edges = np.minimum(edges, n_hops)
    starts, stops = edges[:-1], np.maximum(edges[1:], np.minimum(edges[:-1] + 1, n_hops))

    def per_frame(x: np.ndarray, how) -> np.ndarray:
        return np.array([how(x[s:e]) if e > s else x[min(s, x.size - 1)] for s, e in zip(starts, stops)])

    out = {"rms": _normalise(per_frame(per_hop["rms"], np.mean))}
    for name in BANDS:
        out[name] = _normalise(per_frame(per_hop[name], np.mean))
    flux = per_frame(per_hop["flux"], np.max)
    out["onset"] = _hold(_normalise(flux, floor=float(np.median(flux))), decay=np.exp(-1.0 / max(DECAY_S * fps, 1e-6)))
    return out


def _normalise(x: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """(x - floor) / (its PEAK_PERCENTILE - floor), clipped to 0..1."""
    if not x.size:
        return x
    top = float(np.percentile(x, PEAK_PERCENTILE)) - floor
    if top <= 0:
        top = float(x.max()) - floor
    return np.clip((x - floor) / top, 0.0, 1.0) if top > 0 else np.zeros_like(x)


def _hold(x: np.ndarray, decay: float) -> np.ndarray:
    """Fast attack, exponential release: y[i] = max(x[i], decay * y[i-1])."""
    y = np.empty_like(x)
    level = 0.0
    for i, v in enumerate(x):
        level = max(float(v), level * decay)
        y[i] = level
    return y
