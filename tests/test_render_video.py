"""Tests for dreamvid.render (frames.py, video.py, coherence.py): work folders and resume, the
coherence chain through the real render path, outputs, truncated sources, failures mid-render.

Clips are tiny synthetic videos from conftest.py with known motion; the network is a small
random-weight Keras model (tests/tinymodel.py): the mechanics need no trained weights.
"""
from __future__ import annotations

import errno
import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dreamvid import media
from dreamvid.errors import DecodeError, DreamvidError, InputError, OutputError, ResumeMismatchError, SettingsError
from dreamvid.render import workdir as work_folder
from dreamvid.render.measure import coherence
from dreamvid.render.video import frame_index, parse_fps, render_video
from dreamvid.settings import DreamSettings, Settings, VideoSettings

from .conftest import DAMAGE, damage_file, moving_frames, texture, write_clip

FPS = Fraction(25)


def tiny_settings(tiny: str, **video) -> Settings:
    """A strong, fast dream (2 octaves of 3 steps) and 2 steps per later frame."""
    video = {"frame_iterations": 2, "frame_num_octave": 1, **video}
    return Settings(DreamSettings(model=tiny, step=0.08, num_octave=2, iterations=3, max_loss=None),
                    VideoSettings(**video))


def count_dreams(monkeypatch) -> list:
    """From now on, the frame index of every Dreamer.dream call, in order."""
    from dreamvid.dream import Dreamer

    calls, dream = [], Dreamer.dream

    def counted(self, image, st, **kw):
        calls.append(kw.get("frame"))
        return dream(self, image, st, **kw)

    monkeypatch.setattr(Dreamer, "dream", counted)
    return calls


def work_frames(folder, indices) -> list[np.ndarray]:
    return [media.read_image(media.frame_path(folder, i)) for i in indices]


class Interrupt:
    """A progress callback that presses Ctrl-C after `after` frames of this run."""

    def __init__(self, after: int):
        self.after, self.seen = after, []

    def __call__(self, p):
        if p.rendered == 0:  # the start event
            return
        self.seen.append(p.index)
        if p.rendered == self.after:
            raise KeyboardInterrupt


# ---- positions and rates --------------------------------------------------------------------

def test_frame_index_reads_times_and_frame_numbers():
    assert frame_index("f30", FPS) == 30
    assert frame_index(7, FPS) == 7
    assert frame_index("12s", FPS) == 300 and frame_index("12", FPS) == 300
    assert frame_index("1.5", FPS) == 38  # 37.5: the first frame at or after 1.5 s
    assert frame_index("1:05.5", FPS) == 1638  # 65.5 s
    assert frame_index("1:00:00", Fraction(30000, 1001)) == 107893  # 3600 s * 30000/1001 = 107892.1 frames
    assert frame_index("1", Fraction(30000, 1001)) == 30
    assert frame_index(None, FPS) is None
    for bad in ("abc", "f-3", "-2", "1:2:3:4", "12 s"):
        with pytest.raises(SettingsError, match="neither a time nor a frame index"):
            frame_index(bad, FPS)
    with pytest.raises(SettingsError):
        frame_index(-1, FPS)


def test_parse_fps():
    assert parse_fps("30000/1001") == Fraction(30000, 1001)
    assert parse_fps("24") == 24 and parse_fps(None) is None
    for bad in ("fast", "0", "-5", "1/0", "5000"):
        with pytest.raises(SettingsError):
            parse_fps(bad)


# ---- the work folder ----------------------------------------------------------------------------

def open_test_work(tmp_path, **changes):
    args = dict(kind="video", settings={"dream": {"step": 0.01}}, source={"size": 10, "sample_sha256": "ab"},
                seed=0, start=2, end=6, fps=FPS)
    args.update(changes)
    return work_folder.open_work(tmp_path / "out.mp4", **args)


def test_work_folder_resume_queries_and_finish(tmp_path, moving_frames):
    work = open_test_work(tmp_path)
    assert work.path == tmp_path / "out.mp4.dreamvid-work"
    manifest = json.loads((work.path / "render.json").read_text())
    assert manifest["format"] == work_folder.FORMAT_VERSION and manifest["fps"] == "25/1" and (manifest["start"], manifest["end"]) == (2, 6)
    assert manifest["digest"] == work_folder.settings_digest({"dream": {"step": 0.01}})
    assert work.first_missing() == 2 and not work.done()
    clip = moving_frames(4)
    for i, frame in zip(range(2, 4), clip):
        work.write(i, frame)
    (work.path / ".frame_00004.png.1234abcd.dreamvid-tmp").write_bytes(b"half a frame")  # a killed write
    with pytest.raises(OutputError, match=r"another dreamvid render is using the work folder .*\(pid \d+ on ") as e:
        open_test_work(tmp_path)  # a second render into the same folder, while this one holds it
    assert "another output or --work-dir" in e.value.hint
    assert (work.path / ".frame_00004.png.1234abcd.dreamvid-tmp").exists()  # the refused one touched nothing
    work.close()
    work = open_test_work(tmp_path)  # reopen: resume
    assert work.done_indices() == [2, 3] and work.first_missing() == 4
    assert not list(work.path.glob(".*dreamvid-tmp*"))
    assert np.array_equal(work.read(3), clip[1])
    for i, frame in zip(range(4, 6), clip[2:]):
        work.write(i, frame)
    assert work.done()
    out = work.finish(tmp_path / "frames", fps=FPS)  # a folder output keeps source numbering
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{i:05d}.png" for i in range(2, 6)]
    assert not work.path.exists()


def test_work_folder_refuses_other_renders_and_restart_clears_only_its_files(tmp_path, moving_frames):
    work = open_test_work(tmp_path)
    work.write(2, moving_frames(1)[0])
    (work.path / "notes.txt").write_text("mine")
    work.close()
    cases = {
        "settings have changed (dream.step: 0.01 -> 0.02)": dict(settings={"dream": {"step": 0.02}}),
        "source has changed (sample_sha256": dict(source={"size": 10, "sample_sha256": "cd"}),
        "seed has changed": dict(seed=1),
        "starts at frame 2": dict(start=0),
        "a video render, not zoom": dict(kind="zoom"),
    }
    for words, change in cases.items():
        with pytest.raises(ResumeMismatchError, match=r"\(?" + words.replace("(", r"\(").replace(")", r"\)")) as e:
            open_test_work(tmp_path, **change)
        assert "--restart" in e.value.hint
    assert open_test_work(tmp_path, end=9).end == 9  # a longer (or shorter) range resumes
    assert open_test_work(tmp_path, source={"size": 10, "sample_sha256": "ab", "path": "/moved"}).done_indices() == [2]
    work = open_test_work(tmp_path, seed=5, restart=True)
    assert work.done_indices() == [] and (work.path / "notes.txt").read_text() == "mine"
    work.close()
    (work.path / "render.json").write_text("{not json")
    with pytest.raises(ResumeMismatchError, match="damaged"):
        open_test_work(tmp_path)


_damages = st.dictionaries(st.integers(2, 7), st.tuples(st.sampled_from(DAMAGE), st.floats(0, 1), st.integers(0, 7)),
                           max_size=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damages=_damages, missing=st.sets(st.integers(2, 7), max_size=2))
def test_a_damaged_frame_counts_as_missing_and_is_never_encoded(tmp_path_factory, damages, missing):
    """Frames cut short, bit-flipped, zero-filled, emptied or replaced: not done, dreamed again; finish refuses."""
    tmp = tmp_path_factory.mktemp("damaged")
    work = open_test_work(tmp, end=8)
    clip = moving_frames(6)
    for i, frame in zip(range(2, 8), clip):
        work.write(i, frame)
    for i, (kind, where, bit) in damages.items():
        damage_file(work.frame_path(i), kind, where, bit)
    for i in missing:
        work.frame_path(i).unlink()
    bad = set(damages) | missing
    good = [i for i in range(2, 8) if i not in bad]
    assert work.done_indices() == good and [work.has(i) for i in range(2, 8)] == [i in good for i in range(2, 8)]
    assert work.first_missing() == (min(bad) if bad else None)
    out = tmp / "frames"
    if bad:
        with pytest.raises(InputError, match=f"frame_{min(bad):05d}.png") as e:
            work.finish(out, fps=FPS)
        assert work.path.is_dir() and not out.exists()
        if min(bad) in missing:
            assert "is missing" in e.value.message and "resume the render" in e.value.hint
        else:
            assert "dreamed again" in e.value.hint and "get a complete copy" not in e.value.hint
        work.close()
        work = open_test_work(tmp, end=8)  # the resumed render: it dreams the missing frames again
        for i in sorted(bad):
            work.write(i, clip[i - 2])
    assert work.done()
    work.finish(out, fps=FPS)
    assert [media.read_image(out / f"frame_{i:05d}.png").tobytes() for i in range(2, 8)] == [c.tobytes() for c in clip]


def test_a_frame_that_is_intact_but_does_not_decode_is_not_encoded(tmp_path, moving_frames):
    """Every CRC right, the pixel data wrong: only a full decode sees it, and finish decodes every frame."""
    import struct
    import zlib

    work = open_test_work(tmp_path, start=0, end=2)
    for i, frame in enumerate(moving_frames(2)):
        work.write(i, frame)
    path = work.frame_path(1)
    data = bytearray(path.read_bytes())
    i = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[i:i + 4])[0]
    data[i + 8:i + 8 + length] = zlib.compress(b"too short")[:length].ljust(length, b"\0")
    data[i + 8 + length:i + 12 + length] = struct.pack(">I", zlib.crc32(bytes(data[i + 4:i + 8 + length])))
    path.write_bytes(bytes(data))
    assert work.has(1)  # the cheap check passes
    with pytest.raises(InputError, match="frame_00001.png .* does not decode"):
        work.finish(tmp_path / "o.mp4", fps=FPS)
    with pytest.raises(InputError, match="frame_00001.png in the work folder .* is damaged") as e:
        work.read(1)
    assert "get a complete copy" not in e.value.hint and "--restart" in e.value.hint
    assert work.path.is_dir() and not (tmp_path / "o.mp4").exists() and not list(tmp_path.glob(".o.mp4*"))


def test_fingerprint_sees_content_not_path(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"x" * 1000)
    b.write_bytes(b"x" * 1000)
    fa, fb = work_folder.fingerprint(a, {"fps": FPS}), work_folder.fingerprint(b, {"fps": FPS})
    assert fa["path"] != fb["path"] and {**fa, "path": 0} == {**fb, "path": 0} and fa["fps"] == "25/1"
    b.write_bytes(b"x" * 999 + b"y")
    assert work_folder.fingerprint(b)["sample_sha256"] != fa["sample_sha256"]


# ---- the coherence chain through render_video ------------------------------------------------------

def detail_of(folder, source_frames, index) -> np.ndarray:
    """Dreamed minus source, as float, for one frame."""
    return work_frames(folder, [index])[0].astype(np.float32) - source_frames[index].astype(np.float32)


def test_warp_direction_dream_travels_with_the_content(tmp_path, tiny):
    """With per-frame dreaming off, frame t's dream detail is frame 0's moved by t * motion."""
    dx, dy = 2, 1
    src = write_clip(tmp_path / "move.mp4", moving_frames(6, 96, 64, (dx, dy), seed=2), FPS, crf=0)
    settings = tiny_settings(tiny, blend=1.0, frame_iterations=0)
    render_video(src, tmp_path / "out.mp4", settings, keep_frames=True)
    folder = tmp_path / "out.mp4.dreamvid-work"
    decoded = [f for _, f in media.read_frames(src)]
    d0, d4 = detail_of(folder, decoded, 0), detail_of(folder, decoded, 4)
    assert d0.std() > 8  # the dream is there
    m = 12  # px: away from the edges, where content enters the frame

    def error(sx, sy):  # d4(x) vs d0(x - s)
        a = d4[m:-m, m:-m]
        b = d0[m - sy:d0.shape[0] - m - sy, m - sx:d0.shape[1] - m - sx]
        return float(np.abs(a - b).mean())

    right, wrong, still = error(4 * dx, 4 * dy), error(-4 * dx, -4 * dy), error(0, 0)
    assert right < 0.35 * min(wrong, still), (right, wrong, still)


def test_occluded_region_starts_from_the_fresh_source(tmp_path, tiny):
    """A square slides over a static background: the background it uncovers gets no carried
    dream (blend 1, no per-frame dreaming: uncovered pixels equal the source)."""
    bg = texture(64, 96, seed=4)
    fg = texture(24, 24, seed=9)
    clip = []
    for t in range(4):
        frame = bg.copy()
        frame[20:44, 10 + 6 * t:34 + 6 * t] = fg
        clip.append(frame)
    src = write_clip(tmp_path / "slide.mp4", clip, FPS, crf=0)
    render_video(src, tmp_path / "out.mp4", tiny_settings(tiny, blend=1.0, frame_iterations=0), keep_frames=True)
    decoded = [f for _, f in media.read_frames(src)]
    d3 = detail_of(tmp_path / "out.mp4.dreamvid-work", decoded, 3)
    uncovered = np.abs(d3[24:40, 30:34])  # covered by the square in frame 2, background in frame 3
    carried = np.abs(d3[24:40, 50:60])  # background visible all along
    assert uncovered.mean() < 2.0 < carried.mean()


def test_a_region_hidden_for_a_moment_gets_its_dream_back_and_resume_stays_exact(tmp_path, tiny):
    """A bar sweeps over a still background: where it has passed, frame t-1 showed the bar,
    so only the long-term link (temporal.RECALL_FRAMES back) can return the background's dream."""
    from dreamvid.temporal import RECALL_FRAMES

    bg, bar = texture(64, 96, seed=4), texture(64, 10, seed=9)
    n = RECALL_FRAMES + 3
    clip = []
    for t in range(n):  # 8 px a frame: the strip it uncovers is wider than the reliability's safety margin
        frame = bg.copy()
        x = 4 + 8 * t
        frame[:, x:x + 10] = bar[:, :min(10, 96 - x)]
        clip.append(frame)
    src = write_clip(tmp_path / "bar.mp4", clip, FPS, crf=0)
    settings = tiny_settings(tiny, blend=1.0, frame_iterations=0)
    render_video(src, tmp_path / "whole.mp4", settings, keep_frames=True)
    folder = tmp_path / "whole.mp4.dreamvid-work"
    decoded = [f for _, f in media.read_frames(src)]
    t = RECALL_FRAMES + 2
    x = 4 + 8 * (t - 1)  # the bar's place in frame t-1: background again in frame t
    uncovered = detail_of(folder, decoded, t)[8:-8, x:x + 3]
    before = detail_of(folder, decoded, t - RECALL_FRAMES)[8:-8, x:x + 3]  # the same background then
    assert np.abs(uncovered).mean() > 2.0  # not restarted from the bare source ...
    assert np.abs(uncovered - before).mean() < 0.5 * np.abs(before).mean()  # ... but its old dream
    out = tmp_path / "cut.mp4"
    with pytest.raises(KeyboardInterrupt):
        render_video(src, out, settings, progress=Interrupt(after=RECALL_FRAMES + 1))
    render_video(src, out, settings, keep_frames=True)  # resumes: re-reads the earlier frames from disk
    a = work_frames(folder, range(n))
    b = work_frames(tmp_path / "cut.mp4.dreamvid-work", range(n))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def two_shot_clip(path, n1=4, n2=4):
    shot1 = moving_frames(n1, 64, 48, (2, 1), seed=0)
    shot2 = [(f.astype(np.float32) * (0.3, 0.6, 1.0)).astype(np.uint8) for f in moving_frames(n2, 64, 48, (-1, 2), seed=7)]
    return write_clip(path, shot1 + shot2, FPS, crf=0)


def test_scene_cut_restarts_the_chain(tmp_path, tiny):
    src = two_shot_clip(tmp_path / "cut.mp4")
    settings = tiny_settings(tiny)
    full = render_video(src, tmp_path / "full.mp4", settings, keep_frames=True)
    assert full.chain_starts == (0, 4)
    part = render_video(src, tmp_path / "part.mp4", settings, start="f4", keep_frames=True)
    assert part.chain_starts == (4,)
    # After the cut nothing of shot 1 remains: frames 4.. equal a render that starts there.
    a = work_frames(tmp_path / "full.mp4.dreamvid-work", range(4, 8))
    b = work_frames(tmp_path / "part.mp4.dreamvid-work", range(4, 8))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    no_cuts = render_video(src, tmp_path / "nc.mp4", tiny_settings(tiny, scene_cuts=False))
    assert no_cuts.chain_starts == (0,)


def test_flow_none_dreams_every_frame_from_its_source(tmp_path, tiny, make_clip):
    src, _ = make_clip("i.mp4", n=4)
    r = render_video(src, tmp_path / "ind.mp4", tiny_settings(tiny, flow="none"))
    assert r.chain_starts == (0, 1, 2, 3)


# ---- resume -----------------------------------------------------------------------------------------

def test_interrupted_render_keeps_frames_and_resumes_bit_identically(tmp_path, tiny, make_clip, ffmpeg_children):
    src, _ = make_clip("r.mp4", n=9, motion=(1.5, -1.0))
    settings = tiny_settings(tiny)
    whole = render_video(src, tmp_path / "whole.mp4", settings, keep_frames=True)
    assert (whole.rendered, whole.resumed_from, whole.n_frames) == (9, None, 9)

    out = tmp_path / "cut.mp4"
    stop = Interrupt(after=4)
    with pytest.raises(KeyboardInterrupt):
        render_video(src, out, settings, progress=stop)
    work = tmp_path / "cut.mp4.dreamvid-work"
    assert stop.seen == [0, 1, 2, 3]
    assert sorted(p.name for p in work.glob("frame_*.png")) == [f"frame_{i:05d}.png" for i in range(4)]
    assert not out.exists() and ffmpeg_children() == []
    with pytest.raises(KeyboardInterrupt):  # interrupted again, right after resuming
        render_video(src, out, settings, progress=Interrupt(after=1))
    resumed = render_video(src, out, settings, keep_frames=True)
    assert (resumed.rendered, resumed.resumed_from, resumed.chain_starts) == (4, 5, ())
    a = work_frames(tmp_path / "whole.mp4.dreamvid-work", range(9))
    b = work_frames(work, range(9))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert media.probe_video(out).n_frames == 9
    again = render_video(src, out, settings)  # every frame on disk: only encodes
    assert again.rendered == 0 and not work.exists()


@pytest.mark.parametrize("kind,where", [("truncate", 0.6), ("flip", 0.5), ("zero_tail", 0.9), ("empty", 0)])
def test_a_damaged_previous_frame_is_dreamed_again_on_resume(tmp_path, tiny, make_clip, kind, where):
    """Resume reads frame t-1 from disk to continue the chain: a damaged t-1 is dreamed again first."""
    src, _ = make_clip("p.mp4", n=7, motion=(1.5, -1.0))
    settings = tiny_settings(tiny)
    whole = render_video(src, tmp_path / "whole.mp4", settings, keep_frames=True)
    out = tmp_path / "cut.mp4"
    with pytest.raises(KeyboardInterrupt):
        render_video(src, out, settings, progress=Interrupt(after=4))
    work = tmp_path / "cut.mp4.dreamvid-work"
    damage_file(media.frame_path(work, 3), kind, where)  # frame 4 would start from it
    resumed = render_video(src, out, settings, keep_frames=True)
    assert (resumed.resumed_from, resumed.rendered) == (3, 4)
    a = work_frames(whole.work_dir, range(7))
    b = work_frames(work, range(7))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert media.probe_video(out).n_frames == 7


def test_a_second_render_into_the_same_output_is_refused_while_the_first_runs(tmp_path, tiny, make_clip):
    src, _ = make_clip("twice.mp4", n=5)
    out = tmp_path / "o.mp4"
    refusals = []

    def start_another(p):
        if p.rendered == 2:
            for restart in (False, True):  # not even --restart may clear a folder in use
                with pytest.raises(OutputError, match="another dreamvid render is using the work folder") as e:
                    render_video(src, out, tiny_settings(tiny), restart=restart)
                refusals.append(e.value)

    first = render_video(src, out, tiny_settings(tiny), progress=start_another)
    assert len(refusals) == 2 and first.rendered == 5 and media.probe_video(out).n_frames == 5
    assert not (tmp_path / "o.mp4.dreamvid-work").exists()
    assert render_video(src, out, tiny_settings(tiny)).rendered == 5  # released: the next render runs


def test_resume_refuses_changed_settings_or_source_unless_restarted(tmp_path, tiny, make_clip):
    src, _ = make_clip("s.mp4", n=6)
    out = tmp_path / "o.mp4"
    with pytest.raises(KeyboardInterrupt):
        render_video(src, out, tiny_settings(tiny), progress=Interrupt(after=2))
    with pytest.raises(ResumeMismatchError, match="video.blend: 0.9 -> 0.5"):
        render_video(src, out, tiny_settings(tiny, blend=0.5))
    with pytest.raises(ResumeMismatchError, match="starts at frame 0"):
        render_video(src, out, tiny_settings(tiny), start="f1")
    # Output-only options do not touch the frames: a different crf resumes.
    with pytest.raises(KeyboardInterrupt):
        render_video(src, out, tiny_settings(tiny, crf=30), progress=Interrupt(after=1))
    write_clip(src, moving_frames(6, 64, 48, seed=3), FPS)  # the source is replaced
    with pytest.raises(ResumeMismatchError, match="source has changed"):
        render_video(src, out, tiny_settings(tiny))
    r = render_video(src, out, tiny_settings(tiny), restart=True)
    assert (r.rendered, r.resumed_from) == (6, None)


# ---- outputs ----------------------------------------------------------------------------------------

def test_output_keeps_frame_count_exact_fps_and_trimmed_audio(tmp_path, tiny, make_clip):
    src, _ = make_clip("a.mp4", n=20, fps=Fraction(30000, 1001), audio_hz=440)
    r = render_video(src, tmp_path / "o.mp4", tiny_settings(tiny), start="f5", end="f15")
    info = media.probe_video(r.output)
    assert (info.n_frames, info.fps, info.has_audio, r.audio) == (10, Fraction(30000, 1001), True, True)
    assert abs(info.duration - 10 * 1001 / 30000) < 1e-6
    muted = render_video(src, tmp_path / "m.mp4", tiny_settings(tiny, keep_audio=False), end=3)
    assert not media.probe_video(muted.output).has_audio
    retimed = render_video(src, tmp_path / "r.mp4", tiny_settings(tiny, fps="12"), end=3)
    info = media.probe_video(retimed.output)
    assert (info.fps, info.has_audio) == (12, False)  # another speed: the sound would not match


def test_source_without_audio_gives_a_silent_video(tmp_path, tiny, make_clip):
    src, _ = make_clip("q.mp4", n=3)
    r = render_video(src, tmp_path / "q.mkv", tiny_settings(tiny))
    assert not r.audio and not media.probe_video(r.output).has_audio


def test_odd_frame_size_is_padded_not_rescaled(tmp_path, tiny, make_clip):
    src, _ = make_clip("odd.mp4", n=3)
    settings = tiny_settings(tiny)
    settings = Settings(DreamSettings(**{**settings.to_dict()["dream"], "layers": (), "max_size": 63}), settings.video)
    r = render_video(src, tmp_path / "odd_out.mp4", settings, keep_frames=True)
    assert r.size == (63, 47)
    assert work_frames(r.work_dir, [0])[0].shape == (47, 63, 3)
    info = media.probe_video(r.output)
    assert (info.width, info.height, info.n_frames) == (64, 48, 3)


def test_gif_and_frame_folder_outputs(tmp_path, tiny, make_clip):
    src, _ = make_clip("g.mp4", n=5)
    gif = render_video(src, tmp_path / "g.gif", tiny_settings(tiny), end=3)
    assert media.probe_video(gif.output).n_frames == 3
    folder = render_video(src, tmp_path / "frames", tiny_settings(tiny), start="f2")
    assert sorted(p.name for p in folder.output.iterdir()) == [f"frame_{i:05d}.png" for i in (2, 3, 4)]


def test_bad_ranges(tmp_path, tiny, make_clip):
    src, _ = make_clip("b.mp4", n=5)
    with pytest.raises(InputError, match="beyond the end"):
        render_video(src, tmp_path / "o.mp4", tiny_settings(tiny), start="10s")
    with pytest.raises(SettingsError, match="not after"):
        render_video(src, tmp_path / "o.mp4", tiny_settings(tiny), start="f3", end="f3")
    with pytest.raises(OutputError, match="still image"):
        render_video(src, tmp_path / "o.png", tiny_settings(tiny))
    assert not (tmp_path / "o.mp4.dreamvid-work").exists()


# ---- failures -----------------------------------------------------------------------------------------

def test_truncated_source_renders_what_decodes_then_says_so(tmp_path, tiny, make_clip, ffmpeg_children):
    path, _ = make_clip("t.mp4", n=30, crf=0)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: (data.index(b"mdat") + len(data)) // 2])
    with pytest.raises(DecodeError, match=r"has the \d+ frames that decoded") as e:
        render_video(cut, tmp_path / "o.mp4", tiny_settings(tiny))
    n = int(e.value.message.split("has the ")[1].split()[0])
    assert 3 < n < 30 and media.probe_video(tmp_path / "o.mp4").n_frames == n
    assert not (tmp_path / "o.mp4.dreamvid-work").exists() and ffmpeg_children() == []


def test_disk_full_mid_render_is_one_clear_error_and_frames_stay(tmp_path, tiny, make_clip, monkeypatch,
                                                                  ffmpeg_children):
    import dreamvid.media.images as images

    src, _ = make_clip("d.mp4", n=6)
    real = images.atomic_destination
    calls = []

    def filling_up(dest, suffix=""):
        calls.append(dest)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(dest, suffix)

    monkeypatch.setattr(images, "atomic_destination", filling_up)
    with pytest.raises(DreamvidError, match="No space left on device") as e:
        render_video(src, tmp_path / "o.mp4", tiny_settings(tiny))
    assert "run the same command again to resume" in e.value.hint and e.value.exit_code == 1
    assert len(list((tmp_path / "o.mp4.dreamvid-work").glob("frame_*.png"))) == 3
    assert ffmpeg_children() == []


def test_output_folder_disappearing_mid_render(tmp_path, tiny, make_clip, ffmpeg_children):
    src, _ = make_clip("v.mp4", n=6)
    outdir = tmp_path / "renders"
    outdir.mkdir()

    def pull_the_drive(p):
        # One atomic rename, not rmtree: the PNG writer thread may add a frame while a
        # recursive delete walks the folder, which made the test itself fail with ENOTEMPTY.
        if p.rendered == 2:
            outdir.rename(tmp_path / "unplugged")

    with pytest.raises(DreamvidError, match="disappeared|does not exist"):
        render_video(src, outdir / "o.mp4", tiny_settings(tiny), progress=pull_the_drive)
    assert ffmpeg_children() == []


# ---- coherence ------------------------------------------------------------------------------------------

def test_coherence_of_a_clip_against_itself_and_a_smaller_render(tmp_path, tiny, make_clip):
    src, _ = make_clip("c.mp4", n=6, width=96, height=64)
    same = coherence(src, src)
    assert same["ratio_to_source"] == pytest.approx(1.0) and same["resized"] is None
    assert same["pairs"] == 5 and 0 < same["warping_error"]["source"] < 1e-2
    settings = tiny_settings(tiny)
    small = Settings(DreamSettings(**{**settings.to_dict()["dream"], "layers": (), "max_size": 63}), settings.video)
    out = render_video(src, tmp_path / "s.mp4", small).output  # 63x42 frames, encoded 64x42
    result = coherence(src, out, max_frames=4)
    assert result["size"] == [63, 42] and "cropped" in result["resized"] and result["frames"] == 4
    assert result["warping_error"]["output"] > result["warping_error"]["source"]
    assert same["long_term"]["ratio_to_source"] == pytest.approx(1.0) or same["long_term"]["pairs"] == 0
    s = result["strength"]
    assert len(s["per_frame"]) == 4 and s["shot_starts"] == [0] and s["first"] > 1 and s["p90_over_p10"] >= 1
    assert same["strength"]["first"] == 0 and same["brightness"]["max_abs"] == 0
    with pytest.raises(InputError):
        coherence(src, tmp_path / "missing.mp4")


def test_coherence_of_a_range_render_measures_from_where_it_was_rendered(tmp_path, tiny, make_clip):
    """The mp4 says which source frames it holds; measuring from frame 0 instead compared the
    wrong frames without a word (a 74x "ratio" in the old README example)."""
    src, _ = make_clip("r.mp4", n=12, width=96, height=64)
    out = render_video(src, tmp_path / "part.mp4", tiny_settings(tiny), start="f4", end="f9").output
    told = work_folder.parse_comment(media.probe_video(out).comment)
    assert told == {"version": told["version"], "kind": "video", "source": "r.mp4", "start": 4, "frames": 5}
    auto = coherence(src, out)
    assert auto["start"] == 4 and auto["frames"] == 5
    assert any("rendered from frame 4" in n for n in auto["notes"])
    assert any("has 5 frames, the source 8" in n for n in auto["notes"])  # frames 4..11 of the source
    wrong = coherence(src, out, start=0)
    assert any("says it was rendered from frame 4, not 0" in n for n in wrong["notes"])


def test_coherence_says_when_the_output_is_not_a_render_of_the_source(tmp_path, make_clip):
    src, _ = make_clip("a.mp4", n=6, width=96, height=64)
    rng = np.random.default_rng(5)
    other = [np.clip(rng.normal(128, 60, (64, 96, 3)), 0, 255).astype(np.uint8) for _ in range(6)]
    folder = tmp_path / "other"
    folder.mkdir()
    for i, f in enumerate(other):
        media.write_image(media.frame_path(folder, i), f)
    result = coherence(src, folder)
    assert any("does not look like frame 0" in n for n in result["notes"]), result["notes"]
    assert not any("does not look like" in n for n in coherence(src, src)["notes"])


def test_anamorphic_video_keeps_its_display_aspect(tmp_path, tiny):
    """A 96x64 clip with 4:3 pixels displays as 128x64: the output keeps the sample aspect
    (mp4), or is resampled to square pixels where the format has no such field (GIF)."""
    from .conftest import run_ffmpeg

    src = tmp_path / "ana.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x64:rate=25", "-frames:v", "6", "-vf", "setsar=4/3",
               "-c:v", "libx264", "-pix_fmt", "yuv420p", str(src))
    assert media.probe_video(src).sar == Fraction(4, 3)
    out = render_video(src, tmp_path / "o.mp4", tiny_settings(tiny)).output
    info = media.probe_video(out)
    assert info.sar == Fraction(4, 3) and (info.width, info.height) == (96, 64)
    gif = render_video(src, tmp_path / "o.gif", tiny_settings(tiny), end=3).output
    g = media.probe_video(gif)
    assert (g.width, g.height) == (128, 64) and g.sar == 1


def test_a_work_dir_where_nothing_can_be_created_is_named_as_such(tmp_path, tiny, make_clip):
    src, _ = make_clip("w.mp4", n=3)
    with pytest.raises(OutputError, match="/proc does not take new folders"):
        render_video(src, tmp_path / "o.mp4", tiny_settings(tiny), work_dir="/proc/dreamvid-work")


def test_cadence_dreams_every_nth_frame_and_resumes_exactly(tmp_path, tiny, make_clip, monkeypatch):
    """--cadence 3: frames 0, 3, 6 and the last one (7) go through the network, the others are
    built from the two around them; frames 4 and 5 wait for frame 6, and an interrupted render
    that stopped after frame 4 re-dreams 6 from the stored frame 3 and resumes to exactly the
    frames of an uninterrupted one."""
    src, _ = make_clip("cad.mp4", n=8, width=96, height=64)
    s = tiny_settings(tiny, cadence=3)
    whole = render_video(src, tmp_path / "whole.mp4", s, keep_frames=True)
    calls = count_dreams(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        render_video(src, tmp_path / "cut.mp4", s, progress=Interrupt(after=5))
    assert calls == [0, 3, 6]
    resumed = render_video(src, tmp_path / "cut.mp4", s, keep_frames=True)
    assert calls == [0, 3, 6, 6, 7] and resumed.resumed_from == 5
    for a, b in zip(work_frames(whole.work_dir, range(8)), work_frames(resumed.work_dir, range(8))):
        assert np.array_equal(a, b)
    with pytest.raises(SettingsError, match="cadence must be between 1 and 12"):
        render_video(src, tmp_path / "x.mp4", tiny_settings(tiny), cadence=0)


def test_cadence_ends_a_group_at_a_cut_and_resumes_exactly_across_it(tmp_path, tiny, monkeypatch):
    """Shots of 5 and 4 frames at --cadence 3: frames 0, 3, 6 (every 3rd from the start), 4 (the
    shot's last), 5 (the cut) and 8 (the range's last) are dreamed. Interrupted after frame 5, the
    resume reads back from frame 3, takes the stored cut frame 5 as the group's start, dreams 6
    and 8 from it and gives the same frames as an uninterrupted render."""
    src = two_shot_clip(tmp_path / "cut.mp4", n1=5, n2=4)
    s = tiny_settings(tiny, cadence=3)
    calls = count_dreams(monkeypatch)
    whole = render_video(src, tmp_path / "whole.mp4", s, keep_frames=True)
    assert calls == [0, 3, 4, 5, 6, 8] and whole.chain_starts == (0, 5)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        render_video(src, tmp_path / "again.mp4", s, progress=Interrupt(after=6))
    assert calls == [0, 3, 4, 5]
    resumed = render_video(src, tmp_path / "again.mp4", s, keep_frames=True)
    assert calls == [0, 3, 4, 5, 6, 8] and resumed.resumed_from == 6
    for a, b in zip(work_frames(whole.work_dir, range(9)), work_frames(resumed.work_dir, range(9))):
        assert np.array_equal(a, b)
