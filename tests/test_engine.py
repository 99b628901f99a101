"""The render engine's contract (dreamvid/render/engine.py), tested once with a toy mode
instead of four times: resume at the first missing item, interruption keeps what is done,
ranges and make_items, clean-up, one Progress type; and the one function that picks a
compiled network (dream.get_dreamer / network_key), with the precision bugs it fixed."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dreamvid import backends, presets
from dreamvid.dream import EasedMeanSquares, MeanSquares, get_dreamer, network_key
from dreamvid.errors import ModelError, OutputError, ResumeMismatchError, SettingsError
from dreamvid.render import engine, workdir
from dreamvid.settings import DreamSettings, Settings


class Toy(engine.Plan):
    """Item i is a flat picture of value (item i-1) + 1 when chained, i * 10 otherwise."""

    mode = "toy"

    def __init__(self, output: Path, n: int = 5, chained: bool = True, key: str = "a", fail_at: int | None = None):
        self.output, self.end, self.chained, self.key, self.fail_at = output, n, chained, key, fail_at
        self.made: list[int] = []

    def resume_key(self):
        return {"key": self.key}

    def make(self, todo, ctx):
        previous = ctx.read(todo[0] - 1) if self.chained and todo[0] > 0 and ctx.store.has(todo[0] - 1) else None
        for i in todo:
            if i == self.fail_at:
                raise KeyboardInterrupt
            value = (int(previous[0, 0, 0]) + 1) if self.chained and previous is not None else i * 10
            previous = np.full((4, 4, 3), value, np.uint8)
            self.made.append(i)
            yield engine.Item(i, previous, note={"value": value})

    def finish(self, ctx):
        values = [int(ctx.store.read(i)[0, 0, 0]) for i in range(self.start, self.end)]
        notes = [ctx.store.noted(i)["value"] for i in range(self.start, self.end)]
        assert values == notes
        self.values = values
        ctx.store.remove()
        return engine.Result(self.output, self.mode, self.end, ctx.rendered, ctx.resumed_from, ctx.elapsed)


def test_a_chained_plan_resumes_at_the_first_missing_item_and_matches_an_uninterrupted_run(tmp_path):
    whole = Toy(tmp_path / "whole")
    engine.render(whole)
    assert whole.values == [0, 1, 2, 3, 4]

    events = []
    cut = Toy(tmp_path / "cut", fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        engine.render(cut, progress=events.append)
    work = workdir.default_work_dir(tmp_path / "cut")
    assert sorted(p.name for p in work.glob("frame_*.png")) == [f"frame_{i:05d}.png" for i in range(3)]
    assert [e.stage for e in events] == ["start", "item", "item", "item"]
    assert all(isinstance(e, engine.Progress) and e.mode == "toy" and e.total == 5 for e in events)
    assert [e.done for e in events] == [0, 1, 2, 3]

    again = Toy(tmp_path / "cut")
    result = engine.render(again)
    assert again.made == [3, 4] and again.values == whole.values
    assert result.resumed_from == 3 and result.rendered == 2 and not work.exists()


def test_an_independent_plan_makes_only_the_missing_items(tmp_path):
    out = tmp_path / "grid"
    plan = Toy(out, chained=False)
    plan.prepare()
    with plan.open_store() as store:
        store.write(1, np.full((4, 4, 3), 10, np.uint8))
        store.note(1, {"value": 10})
        store.write(3, np.full((4, 4, 3), 30, np.uint8))
        store.note(3, {"value": 30})
    engine.render(plan)
    assert plan.made == [0, 2, 4] and plan.values == [0, 10, 20, 30, 40]


def test_a_range_leaves_the_output_to_whoever_renders_the_rest(tmp_path):
    out = tmp_path / "range"
    first = Toy(out, chained=False)
    partial = engine.render(first, items=range(0, 2))
    assert not partial.complete and first.made == [0, 1] and not hasattr(first, "values")
    second = Toy(out, chained=False)
    done = engine.render(second, items=range(2, 5))
    assert done.complete and second.made == [2, 3, 4] and second.values == [0, 10, 20, 30, 40]


def test_make_items_needs_no_store(tmp_path):
    items = list(engine.make_items(Toy(tmp_path / "mem"), range(5)))
    assert [int(i.image[0, 0, 0]) for i in items] == [0, 1, 2, 3, 4]
    assert not workdir.default_work_dir(tmp_path / "mem").exists()


def test_changed_resume_key_is_refused_and_restart_clears(tmp_path):
    out = tmp_path / "k"
    with pytest.raises(KeyboardInterrupt):
        engine.render(Toy(out, fail_at=2))
    with pytest.raises(ResumeMismatchError, match="settings have changed"):
        engine.render(Toy(out, key="b"))
    fresh = Toy(out, key="b")
    engine.render(fresh, restart=True)
    assert fresh.made == [0, 1, 2, 3, 4]


def test_a_failure_before_the_first_item_leaves_no_folder(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        engine.render(Toy(tmp_path / "f", fail_at=0))
    assert not workdir.default_work_dir(tmp_path / "f").exists()


class Loading(Toy):
    """A Toy whose prepare() stands for loading the network: it records the call, or fails."""

    def __init__(self, output: Path, fail: bool = False):
        super().__init__(output)
        self.fail, self.prepared = fail, False

    def prepare(self):
        self.prepared = True
        if self.fail:
            raise ModelError("the network would not load")


def test_a_render_already_running_is_refused_before_the_network_loads(tmp_path):
    out = tmp_path / "busy"
    held = workdir.reserve(out)  # another render of the same output, still loading its network
    try:
        second = Loading(out)
        with pytest.raises(OutputError, match="another dreamvid render is using the work folder"):
            engine.render(second)
        assert not second.prepared
    finally:
        held.release()
    assert not workdir.default_work_dir(out).exists()  # the folder made for the first is gone with it
    engine.render(Loading(out))  # released: the next render runs


def test_the_lock_taken_before_loading_is_held_through_the_render(tmp_path):
    out = tmp_path / "held"
    refusals = []

    def another(p):
        if p.stage == "item" and p.index == 1:
            with pytest.raises(OutputError, match="another dreamvid render"):
                workdir.reserve(out)
            refusals.append(p.index)

    engine.render(Loading(out), progress=another)
    assert refusals == [1]


def test_a_network_that_fails_to_load_leaves_no_folder(tmp_path):
    plan = Loading(tmp_path / "bad", fail=True)
    with pytest.raises(ModelError):
        engine.render(plan)
    assert plan.prepared and not workdir.default_work_dir(tmp_path / "bad").exists()


def test_a_whole_plan_keeps_nothing_of_an_unfinished_run(tmp_path):
    plan = Toy(tmp_path / "w", fail_at=3)
    plan.whole = True
    with pytest.raises(KeyboardInterrupt):
        engine.render(plan)
    assert not workdir.default_work_dir(tmp_path / "w").exists()


def test_a_damaged_manifest_gives_way_to_restart(tmp_path):
    out = tmp_path / "d"
    with pytest.raises(KeyboardInterrupt):
        engine.render(Toy(out, fail_at=2))
    (workdir.default_work_dir(out) / "render.json").write_bytes(b"\xff\xfe not json \x80")
    with pytest.raises(ResumeMismatchError, match="damaged"):
        engine.render(Toy(out))
    engine.render(Toy(out), restart=True)


# ---- which compiled network serves which settings ------------------------------------------

def test_network_key_holds_everything_that_changes_the_network():
    # "auto" would resolve by loading the network
    s = DreamSettings(layers=(("a", 1.0),), precision="float32", backend="tensorflow")
    keys = {network_key(s), network_key(replace(s, precision="mixed")), network_key(replace(s, layers=(("b", 1.0),))),
            network_key(replace(s, weights="w.h5")), network_key(replace(s, model="vgg16_hed"))}
    assert len(keys) == 5
    if backends.installed("torch"):
        assert network_key(replace(s, backend="torch")) not in keys
    assert network_key(replace(s, step=0.5, iterations=3, tile=128, seed=7)) == network_key(s)


def test_precision_and_layers_pick_their_own_dreamer(tiny):
    base = DreamSettings(model=tiny, layers=(("conv3", 1.0),), precision="float32")
    f32, mixed = get_dreamer(base), get_dreamer(replace(base, precision="mixed"))
    assert f32 is not mixed
    assert getattr(f32.model, "compute_dtype", "float32") == "float32"
    assert mixed.model.compute_dtype != "float32"
    assert get_dreamer(replace(base, step=0.3)) is f32  # the step is an argument of the traced step
    assert get_dreamer(replace(base, layers=(("conv2", 1.0),))) is not f32
    eased = get_dreamer(replace(base, precision="mixed"), EasedMeanSquares((("conv3", 1.0),)))
    assert eased is not mixed and eased.model.compute_dtype != "float32"
    assert isinstance(f32.objective, MeanSquares)


def test_sweep_over_precision_dreams_each_cell_with_its_own_network(tiny, photo, tmp_path, monkeypatch):
    from dreamvid.dream import Dreamer
    from dreamvid.render import render_sweep

    used = []
    dream = Dreamer.dream

    def spy(self, image, s, **kw):
        used.append((s.precision, getattr(self.model, "compute_dtype", "float32")))
        return dream(self, image, s, **kw)

    monkeypatch.setattr(Dreamer, "dream", spy)
    s = Settings(DreamSettings(model=tiny, layers=(("conv3", 1.0),), num_octave=1, iterations=1))
    render_sweep(photo, tmp_path / "g.png", s, vary={"precision": ["float32", "mixed"]})
    assert used[0] == ("float32", "float32") and used[1][0] == "mixed" and used[1][1] != "float32"


def test_zoom_with_eased_layers_keeps_the_precision_asked_for(tiny, photo):
    from dreamvid.render import zoom

    from .test_render_animate import EASED_LAYERS as toml

    s = presets.resolve_for("zoom", Settings(DreamSettings(model=tiny, precision="mixed", num_octave=1,
                                                           iterations=1), zoom=replace(Settings().zoom, fps="2")))
    plan = zoom.ZoomPlan(photo, photo.with_name("z.mp4"), s, keyframes=toml)
    plan.prepare()
    assert plan.maker.eased and plan.maker.dreamer.model.compute_dtype != "float32"


# ---- one API shape -----------------------------------------------------------------------------

def test_overrides_are_named_as_the_flags_and_unknown_ones_are_refused():
    s = presets.resolve_for("zoom", overrides={"fps": "12", "crf": 20, "step": 0.02, "pan": (1, 2), "frames": 4})
    assert (s.zoom.fps, s.video.crf, s.dream.step, s.zoom.pan, s.zoom.frames) == ("12", 20, 0.02, (1.0, 2.0), 4)
    assert s.video.frame_iterations == 4  # the zoom preset's per-frame dream
    coral = presets.resolve_for("zoom", preset="coral")
    assert coral.video.frame_iterations == 4 and coral.dream.layers != s.dream.layers
    with pytest.raises(SettingsError, match="did you mean 'blend'"):
        presets.resolve_for("video", overrides={"blendd": 0.5})
    with pytest.raises(SettingsError, match="not a setting of image"):
        presets.resolve_for("image", overrides={"blend": 0.5})
    with pytest.raises(SettingsError, match="settings or a preset"):
        presets.resolve_for("video", Settings(), "classic")


def test_presets_hold_every_section(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text("[dream]\nstep = 0.02\n[zoom]\nzoom = 1.1\npan = [3, 4]\n[timelapse]\ncheckpoints = [1, 2]\n"
                 "[sweep.vary]\nstep = [0.01, 0.02]\n")
    s = presets.resolve(str(p))
    assert s.zoom.pan == (3.0, 4.0) and s.timelapse.checkpoints == (1, 2)
    assert s.sweep.vary == (("step", (0.01, 0.02)),)
    import tomllib

    assert presets.build(tomllib.loads(presets.to_toml(s))) == s  # `presets show` round-trips
    p.write_text("[zoom]\nzom = 1.1\n")
    with pytest.raises(Exception, match="did you mean 'zoom'"):
        presets.resolve(str(p))
