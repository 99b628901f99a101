"""Renders on a real local Ray cluster (dreamvid/render/cluster.py): two workers, the tiny
random-weight network, clips of a few dozen frames. What is tested: the same items as one
process (bit for bit where nothing is split), each frame written once, resume after the
driver stops, a worker killed with SIGKILL, and the failures that must be one line."""
from __future__ import annotations

import importlib.util
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dreamvid import media
from dreamvid.errors import DreamvidError, ModelError, SettingsError
from dreamvid.render import cluster, workdir
from dreamvid.render.still import render_images
from dreamvid.render.sweep import render_sweep
from dreamvid.render.timelapse import render_timelapse
from dreamvid.render.video import render_video
from dreamvid.settings import DreamSettings, Settings, VideoSettings

from .clitools import one_line_error, run
from .conftest import moving_frames, write_clip

ray = pytest.importorskip("ray")

N = 16  # frames: two chunks of 8 at MIN_CHUNK 6


@pytest.fixture(scope="module")
def local_cluster():
    """One local Ray cluster for the module, started as `--workers 2` starts one."""
    if ray.is_initialized():
        ray.shutdown()
    pool = cluster.connect(2)
    yield pool
    ray.shutdown()


@pytest.fixture
def small_split(monkeypatch):
    """Chunks small enough that a 16-frame clip is split in two (overlap 3)."""
    monkeypatch.setattr(cluster, "MIN_CHUNK", 6)
    monkeypatch.setattr(cluster, "OVERLAP", 3)


@pytest.fixture
def writes(monkeypatch):
    """Every index the work folder is asked to write, in order (the driver alone writes)."""
    seen: list[int] = []
    original = workdir.WorkFolder.write

    def write(self, index, image):
        seen.append(index)
        return original(self, index, image)

    monkeypatch.setattr(workdir.WorkFolder, "write", write)
    return seen


def tiny_settings(tiny: str) -> Settings:
    return Settings(DreamSettings(model=tiny, step=0.08, num_octave=2, iterations=2, max_loss=None),
                    VideoSettings(blend=0.9, frame_iterations=1, frame_num_octave=1))


def frames_of(folder: Path) -> list[np.ndarray]:
    return [media.read_image(p) for p in sorted(Path(folder).glob("frame_*.png"))]


def test_workers_10000_on_this_machine_are_capped_with_a_note(local_cluster, caplog):
    """--workers 10000 on 2 CPUs started up to 200 Ray workers (an 8-cell sweep peaked at 6 GB)."""
    import logging

    with caplog.at_level(logging.WARNING, logger="dreamvid"):
        pool = cluster.connect(10_000)
    cores = int(ray.cluster_resources()["CPU"])
    assert pool.workers <= cores and pool.options["num_cpus"] >= 1
    notes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("--workers 10000:")]
    assert len(notes) == 1 and f"{pool.workers} at a time" in notes[0]


def test_workers_import_this_checkout(local_cluster):
    @ray.remote
    def where():
        import dreamvid

        return dreamvid.__file__

    import dreamvid

    assert ray.get(where.remote()) == dreamvid.__file__


def test_video_on_two_workers_writes_each_frame_once_and_encodes(tmp_path, tiny, make_clip, local_cluster,
                                                                 small_split, writes):
    src, _ = make_clip(n=N)
    settings = tiny_settings(tiny)
    single = render_video(src, tmp_path / "single", settings)
    writes.clear()
    events = []
    result = render_video(src, tmp_path / "dist.mp4", settings, workers=2, progress=events.append,
                          keep_frames=True)
    assert result.complete and result.items == N and result.rendered == N
    assert sorted(writes) == list(range(N))  # every frame once, none twice
    assert media.probe_video(result.output).n_frames == N
    # the first chunk is the one-process chain itself, bit for bit, up to where the second fades in
    one, two = frames_of(single.output), frames_of(result.work_dir)
    assert all(np.array_equal(a, b) for a, b in zip(one[:N // 2 - 3], two))
    assert not np.array_equal(one[-1], two[-1])  # the second chunk is its own chain
    items = [e for e in events if e.stage == "item"]
    assert [e.done for e in items] == list(range(1, N + 1)) and all(e.total == N for e in items)
    assert items[-1].rates and all(r > 0 for r in items[-1].rates)
    assert result.chain_starts == (0,)  # the second chunk's fresh start is an overlap frame, not kept


def test_resume_after_the_driver_stops_makes_only_the_missing_frames(tmp_path, tiny, make_clip, local_cluster,
                                                                      small_split, writes):
    src, _ = make_clip(n=N)
    out = tmp_path / "dist.mp4"

    def stop_after(k):
        def progress(p):
            if p.stage == "item" and p.done >= k:
                raise KeyboardInterrupt
        return progress

    with pytest.raises(KeyboardInterrupt):
        render_video(src, out, tiny_settings(tiny), workers=2, progress=stop_after(5))
    work = workdir.default_work_dir(out)
    kept = {p.name: p.stat().st_mtime_ns for p in work.glob("frame_*.png")}
    assert 5 <= len(kept) < N
    writes.clear()
    result = render_video(src, out, tiny_settings(tiny), workers=2)
    assert result.rendered == N - len(kept) and sorted(writes) == sorted(set(range(N)) - {
        int(n[6:11]) for n in kept})
    assert media.probe_video(out).n_frames == N and not work.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="no SIGKILL")
def test_a_worker_killed_with_sigkill_has_its_range_retried(tmp_path, tiny, make_clip, local_cluster, small_split,
                                                            writes, caplog, monkeypatch):
    src, _ = make_clip(n=N)
    settings = tiny_settings(tiny)
    clean = render_video(src, tmp_path / "clean", settings, workers=2)
    # A worker makes at most one frame ahead of the driver: killed while the driver takes its
    # first frame, it has frames of its chunk left for certain (the tiny network is quick).
    monkeypatch.setattr(cluster, "STREAM_AHEAD", 1)
    senders, killed = [], []
    take = cluster._Run._take

    def note_sender(self, made, stream, writer):
        senders.append(int(made.worker.rsplit(":", 1)[1]))
        return take(self, made, stream, writer)

    def kill_a_worker(p):
        if p.stage == "item" and not killed:
            os.kill(senders[-1], signal.SIGKILL)
            killed.append(senders[-1])

    monkeypatch.setattr(cluster._Run, "_take", note_sender)
    writes.clear()
    with caplog.at_level("INFO", logger="dreamvid"):
        result = render_video(src, tmp_path / "killed", settings, workers=2, progress=kill_a_worker)
    assert killed and "starting the rest again" in caplog.text  # the rest of its chunk, from the frames back
    assert result.complete and sorted(writes) == list(range(N))
    # the rest continues the chain from the frames that came back: the clean render, bit for bit
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(clean.output), frames_of(result.output)))


def test_the_rest_of_a_job_continues_from_the_items_that_came_back_bit_for_bit(tmp_path, tiny, make_clip):
    """What the driver restarts after a worker died mid-job (_Stream.rest): the chain goes on
    from the last items it received, and makes the frames the uninterrupted job makes."""
    from dreamvid.media.images import encode_image
    from dreamvid.render import engine
    from dreamvid.render.video import VideoPlan
    from dreamvid.temporal import RECALL_FRAMES

    src, _ = make_clip(n=N)
    plan = VideoPlan(src, tmp_path / "o", tiny_settings(tiny))
    whole = [it.image for it in engine.make_items(plan, range(N))]
    for came_back in (3, RECALL_FRAMES + 3):  # the rest given fewer than RECALL_FRAMES items, and all of them
        stream = cluster._Stream(cluster.Job(0, 0, N), None)
        for item in engine.make_items(VideoPlan(src, tmp_path / "o", tiny_settings(tiny)), range(came_back)):
            stream.took(item, encode_image(item.image) if came_back > RECALL_FRAMES else None)  # as workers send it
        job, given = stream.rest()
        assert job == cluster.Job(came_back, came_back, N) and len(given) == min(came_back, RECALL_FRAMES)
        rest = engine.make_items(VideoPlan(src, tmp_path / "o", tiny_settings(tiny)), range(job.start, job.end),
                                 given=given)
        assert all(np.array_equal(a.image, b) for a, b in zip(rest, whole[came_back:], strict=True))
    # an overlap job keeps its boundary frame: the rest's first items still fade
    stream = cluster._Stream(cluster.Job(4, 8, 12), {3: whole[3]})
    assert stream.rest() == (cluster.Job(4, 8, 12), {3: whole[3]})
    stream.took(engine.Item(5, whole[5]))
    assert stream.rest() == (cluster.Job(6, 8, 12), {5: whole[5]})


def _rgba(path: Path, seed: int) -> Path:
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 255, (40, 56, 4), dtype=np.uint8), (5, 5), 0)
    cv2.imwrite(str(path), img)
    return path


def test_image_batch_sweep_and_checkpoints_are_the_one_process_results(tmp_path, tiny, photo, local_cluster):
    s = Settings(DreamSettings(model=tiny, step=0.05, num_octave=2, iterations=2, max_loss=None))
    photos = [photo, _rgba(tmp_path / "alpha.png", 1), _rgba(tmp_path / "more.png", 2)]
    one = render_images(photos, tmp_path / "one", s)
    two = render_images(photos, tmp_path / "two", s, workers=2)
    assert one.items == two.items == 3 and not two.failed
    for p in photos:
        name = f"{p.stem}.dream.png"
        a, b = media.read_image_alpha(tmp_path / "one" / name), media.read_image_alpha(tmp_path / "two" / name)
        assert np.array_equal(a[0], b[0])
        assert (a[1] is None and b[1] is None) or np.array_equal(a[1], b[1])  # the alpha channel came along

    vary = ["step=0.02,0.06", "num_octave=1,2"]
    render_sweep(photo, tmp_path / "g1.png", s, vary=vary, save_cells=str(tmp_path / "c1"))
    render_sweep(photo, tmp_path / "g2.png", s, vary=vary, save_cells=str(tmp_path / "c2"), workers=2)
    assert np.array_equal(media.read_image(tmp_path / "g1.png"), media.read_image(tmp_path / "g2.png"))
    cells = sorted(p.name for p in (tmp_path / "c1").iterdir())
    assert len(cells) == 4 and cells == sorted(p.name for p in (tmp_path / "c2").iterdir())
    assert all(np.array_equal(media.read_image(tmp_path / "c1" / c), media.read_image(tmp_path / "c2" / c))
               for c in cells)

    lapse = dict(checkpoints=[1, 2, 3], labels=True)
    render_timelapse(photo, tmp_path / "t1", s, **lapse)
    render_timelapse(photo, tmp_path / "t2", s, workers=2, **lapse)
    snaps = sorted(p.name for p in (tmp_path / "t1").iterdir())
    assert len(snaps) == 3 and all(np.array_equal(media.read_image(tmp_path / "t1" / n),
                                                  media.read_image(tmp_path / "t2" / n)) for n in snaps)


def test_zoom_and_a_continuous_timelapse_render_in_one_process_and_say_so(tmp_path, tiny, photo, caplog):
    s = Settings(DreamSettings(model=tiny, step=0.05, num_octave=1, iterations=2, max_loss=None))
    with caplog.at_level("WARNING", logger="dreamvid"):
        r = render_timelapse(photo, tmp_path / "t", s, every=1, workers=2)
    assert r.items == 2 and "cannot be split across workers" in caplog.text


def test_a_bad_model_is_the_workers_own_error_and_leaves_no_folder(tmp_path, tiny, make_clip, local_cluster):
    src, _ = make_clip(n=4)
    settings = tiny_settings(tiny)
    bad = replace(settings, dream=replace(settings.dream, model=str(tmp_path / "missing.keras")))
    with pytest.raises(ModelError):
        render_video(src, tmp_path / "o.mp4", bad, workers=2)
    assert not workdir.default_work_dir(tmp_path / "o.mp4").exists()


BROKEN_SITE = """
import sys


class NoDreamvid:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "dreamvid":
            raise ImportError("dreamvid is broken on this node")


sys.meta_path.insert(0, NoDreamvid())
"""


def test_a_worker_that_cannot_import_dreamvid_stops_the_render_with_one_line_and_keeps_frames(
        tmp_path, tiny, make_clip, local_cluster, monkeypatch):
    src, _ = make_clip(n=8)
    out = tmp_path / "o.mp4"
    settings = tiny_settings(tiny)

    def stop(p):
        if p.stage == "item" and p.done >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_video(src, out, settings, progress=stop)  # three frames kept, in one process
    # Workers whose Python cannot import dreamvid: a sitecustomize on their path refuses it
    # (a plain broken package would lose to the driver's folder, which Ray puts first).
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "sitecustomize.py").write_text(BROKEN_SITE)
    connect = cluster.connect

    def broken_nodes(*a, **kw):
        pool = connect(*a, **kw)
        pool.options["runtime_env"] = {"env_vars": {"PYTHONPATH": str(broken)}}
        return pool

    monkeypatch.setattr(cluster, "connect", broken_nodes)
    with pytest.raises(DreamvidError) as e:
        render_video(src, out, settings, workers=2)
    assert "\n" not in e.value.message and "dreamvid is broken on this node" in e.value.message
    assert len(list(workdir.default_work_dir(out).glob("frame_*.png"))) == 3


def test_bad_cluster_options_are_one_line_and_exit_2(tmp_path, make_clip, photo, monkeypatch):
    src, _ = make_clip(n=3)
    one_line_error(run("video", src, "-o", tmp_path / "o.mp4", "--workers", "0"), 2, "--workers")
    result = run("video", src, "-o", tmp_path / "o.mp4", "--ray", "127.0.0.1:1")
    one_line_error(result, 2, "127.0.0.1:1")
    assert "ray start" in result.output
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    one_line_error(run("sweep", photo, "--vary", "step=0.01,0.02", "--workers", "2"), 2, "dreamvid[ray]")
    assert not workdir.default_work_dir(photo.with_name("photo.sweep.png")).exists()
    with pytest.raises(SettingsError, match="Ray"):
        cluster.connect(2)


def test_the_video_split_cuts_runs():
    assert cluster._runs([0, 1, 2, 5, 6, 7, 8], {7}) == [(0, 3), (5, 7), (7, 9)]


def test_a_long_run_is_split_with_an_overlap_and_a_resumed_gap_fades_into_the_stored_frames():
    Job = cluster.Job
    plan = SimpleNamespace(start=0, end=40, settings=Settings(video=VideoSettings(scene_cuts=False)))
    split = cluster._Split(overlap=4, fade=True, min_chunk=6, chunks=2)

    fresh = cluster._video_chunks(plan, SimpleNamespace(has=lambda i: False), list(range(40)), split)
    assert sorted(fresh, key=lambda j: j.first) == [Job(0, 0, 20), Job(16, 20, 40)]
    # (the second chunk starts 4 frames early; it goes first, being the longest)

    stored = set(range(10)) | set(range(20, 40))  # the driver stopped: a gap 10..19 between stored frames
    gap = cluster._video_chunks(plan, SimpleNamespace(has=stored.__contains__), list(range(10, 20)), split)
    # the gap continues from frame 9 (one chunk: too short to split), and frame 20's chain, which
    # started at 16, is dreamed again for the fade into it
    assert gap == [Job(10, 10, 20), Job(16, 20, 20)]


def test_a_node_without_the_clip_dreams_a_copy_sent_through_ray(tmp_path, make_clip, local_cluster):
    src, _ = make_clip(n=3)
    plan = SimpleNamespace(info=media.probe_video(src))
    data = ray.put(src.read_bytes())
    gone = tmp_path / "elsewhere" / src.name  # the driver's path, which this "node" does not have
    plan.info = replace(plan.info, path=gone)
    cluster._use_local_copy(plan, [data])
    assert plan.info.path != gone and plan.info.path.read_bytes() == src.read_bytes()


def test_the_scene_cut_scan_in_stretches_finds_the_cuts_of_one_pass(tmp_path, monkeypatch):
    from dreamvid.render.video import VideoPlan

    shot = moving_frames(20, 64, 48, (2, 1), seed=0)
    tinted = [(f.astype(np.float32) * (0.3, 0.6, 1.0)).astype(np.uint8) for f in shot]
    src = write_clip(tmp_path / "cuts.mp4", shot + tinted + shot, crf=0)  # cuts at frames 20 and 40
    plan = VideoPlan(src, tmp_path / "o", Settings())
    monkeypatch.setattr(cluster, "SCAN_MIN_FRAMES", 5)
    found = {}
    for threads in (1, 3, 4):  # 3: the stretches meet at the cuts (0..20, 20..40, 40..59)
        monkeypatch.setattr(cluster, "SCAN_THREADS", threads)
        found[threads] = cluster._scene_cuts(plan, list(range(60)))
    assert found[1] == {20, 40} and found[3] == found[4] == found[1]
    assert cluster._scene_cuts(plan, list(range(30, 60))) == {40}  # from the frame before the first missing one


def test_a_masked_video_on_two_workers_keeps_each_frames_mask(tmp_path, tiny, make_clip, local_cluster, small_split):
    """Masked frames travel as PNGs with their mask as alpha, crossfades included; what shows is
    the source where the mask is black, in every frame of both chunks."""
    import cv2

    src, _ = make_clip(n=N)
    half = np.zeros((48, 64), np.uint8)
    half[:, 32:] = 255
    cv2.imwrite(str(tmp_path / "half.png"), half)
    settings = tiny_settings(tiny)
    settings = Settings(replace(settings.dream, mask=str(tmp_path / "half.png")), settings.video)
    result = render_video(src, tmp_path / "shown", settings, workers=2)
    decoded = [f for _, f in media.read_frames(src)]
    shown = frames_of(result.output)
    assert len(shown) == N
    for k, (out, source) in enumerate(zip(shown, decoded)):
        assert np.abs(out[:, :26].astype(int) - source[:, :26].astype(int)).mean() < 1.0, k
        assert np.abs(out[:, 40:].astype(int) - source[:, 40:].astype(int)).mean() > 1.0, k


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_ray_workers_dream_on_the_torch_backend_as_one_process_does(tmp_path, tiny, photo, local_cluster):
    """The backend is a setting like any other: a worker loads the plan's backend (torch on
    the CPU here, bit for bit as in one process)."""
    s = Settings(DreamSettings(model=tiny, step=0.05, num_octave=1, iterations=2, max_loss=None, backend="torch",
                               precision="float32"))
    photos = [photo, _rgba(tmp_path / "alpha.png", 1)]
    one = render_images(photos, tmp_path / "one", s)
    two = render_images(photos, tmp_path / "two", s, workers=2)
    assert one.items == two.items == 2 and not two.failed
    for p in photos:
        name = f"{p.stem}.dream.png"
        assert np.array_equal(media.read_image(tmp_path / "one" / name), media.read_image(tmp_path / "two" / name))


def test_workers_dream_on_what_auto_chose_in_this_process(tmp_path, tiny, photo, local_cluster, monkeypatch):
    """`--backend auto` is resolved once, by the driver (as its work folder's key records it),
    and the workers get the answer: a fresh worker left to choose for itself took the first
    backend and precision for a picture under 224 px, while this process had chosen others for
    the network on a larger one before (the full suite's order did that: a 1-level difference)."""
    from dreamvid.dream import auto

    s = Settings(DreamSettings(model=tiny, step=0.05, num_octave=2, iterations=2, max_loss=None))
    key = (tiny, tuple(s.dream.targets()), None, "auto", "auto")
    chosen = ("torch", "mixed")  # what this process chose earlier; a fresh worker's own choice: tensorflow, float32
    monkeypatch.setitem(auto._memo, key, auto.Choice(*chosen, "chosen earlier in this process"))
    photos = [photo, _rgba(tmp_path / "alpha.png", 1)]
    two = render_images(photos, tmp_path / "two", s, workers=2)
    for b, p in (chosen, ("tensorflow", "float32")):  # in this process, each named
        render_images(photos, tmp_path / f"{b}-{p}", Settings(replace(s.dream, backend=b, precision=p)))
    assert two.items == 2 and not two.failed

    def read(folder, p):
        return media.read_image(tmp_path / folder / f"{p.stem}.dream.png")

    assert all(np.array_equal(read("two", p), read("torch-mixed", p)) for p in photos)
    assert not all(np.array_equal(read("two", p), read("tensorflow-float32", p)) for p in photos)  # it can tell
