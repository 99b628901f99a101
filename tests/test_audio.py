"""Soundtracks as envelopes (dreamvid/media/audio.py) and a zoom that follows one."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from dreamvid import media
from dreamvid.errors import InputError
from dreamvid.media import audio

RATE = 22050
CLICKS = (0.5, 1.25, 2.0, 2.75)  # s


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


@pytest.fixture
def click_track(tmp_path) -> Path:
    """3.5 s: quiet noise with a 10 ms click (a decaying 2 kHz burst) at each of CLICKS."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.002, int(3.5 * RATE))
    burst = np.sin(2 * np.pi * 2000 * np.arange(220) / RATE) * np.exp(-np.arange(220) / 60)
    for t in CLICKS:
        i = int(t * RATE)
        x[i:i + burst.size] += 0.8 * burst
    return write_wav(tmp_path / "clicks.wav", x)


@pytest.mark.parametrize("fps", [24, 30, 60])
def test_onset_pulses_land_on_the_clicks_within_one_frame(click_track, fps):
    samples, rate = audio.read_audio(click_track)
    assert rate == RATE and abs(samples.size / rate - 3.5) < 0.01
    n = int(3.5 * fps)
    env = audio.envelopes(samples, rate, fps, n)
    assert set(env) == {"rms", "onset", "bass", "mid", "treble"}
    assert all(v.shape == (n,) and v.min() >= 0 and v.max() <= 1 for v in env.values())
    onset = env["onset"]
    rises = [i for i in range(1, n) if onset[i] > 0.5 and onset[i - 1] <= 0.5]
    assert len(rises) == len(CLICKS), rises
    for i, t in zip(rises, CLICKS):
        assert abs(i - t * fps) <= 1.0, (i, t * fps)
    assert onset[int(CLICKS[0] * fps) + int(0.5 * fps)] < 0.2  # the pulse fades between beats


def test_bands_follow_what_plays(tmp_path):
    t = np.arange(2 * RATE) / RATE
    low = np.where(t < 1, 0.5 * np.sin(2 * np.pi * 80 * t), 0)  # bass, then treble
    high = np.where(t >= 1, 0.5 * np.sin(2 * np.pi * 6000 * t), 0)
    samples, rate = audio.read_audio(write_wav(tmp_path / "bands.wav", low + high))
    env = audio.envelopes(samples, rate, 10, 20)
    assert env["bass"][:8].mean() > 0.5 > env["bass"][12:].mean()
    assert env["treble"][12:].mean() > 0.5 > env["treble"][:8].mean()


def test_missing_unreadable_and_silent_audio_are_one_line(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        audio.read_audio(tmp_path / "none.mp3")
    (tmp_path / "junk.mp3").write_bytes(b"not audio at all" * 10)
    with pytest.raises(InputError, match="cannot read audio from junk.mp3"):
        audio.read_audio(tmp_path / "junk.mp3")
    with pytest.raises(InputError, match="is silent"):
        audio.read_audio(write_wav(tmp_path / "quiet.wav", np.zeros(RATE)))


def test_a_zoom_follows_the_song_and_carries_it(tiny, photo, click_track, tmp_path):
    from dreamvid.render import zoom as zooming
    from dreamvid.settings import DreamSettings, Settings, VideoSettings

    s = Settings(DreamSettings(model=tiny, num_octave=1, iterations=1, max_loss=None),
                 VideoSettings(frame_iterations=1, frame_num_octave=1))
    rows = zooming.zoom_schedule(photo, s, audio=click_track, fps="8", zoom="1 + 0.5*onset")
    assert len(rows) == 28  # 3.5 s at 8 fps: the length is the song's
    zooms = [r["zoom"] for r in rows]
    assert max(zooms) > 1.4 and min(zooms) < 1.05
    beat = round(CLICKS[1] * 8)
    assert zooms[beat] > 1.3 and zooms[beat - 3] < 1.1
    out = zooming.render_zoom(photo, tmp_path / "song.mp4", s, audio=click_track, fps="8", frames=6,
                              zoom="1 + 0.5*onset").output
    info = media.probe_video(out)
    assert info.has_audio and info.n_frames == 6
    params = (tmp_path / "song.mp4.params.json")
    assert params.is_file() and '"zoom"' in params.read_text()
