"""Settings validation and presets: strict keys, ranges, precedence."""
import dataclasses
import tomllib

import pytest

from dreamvid import presets
from dreamvid.errors import PresetError, SettingsError
from dreamvid.settings import DreamSettings, VideoSettings, parse_layers, validate, validate_video

EXPECTED = {"classic", "swirls", "coral", "eyes", "inception", "deep-octaves", "video", "deepdream", "dogs"}


def test_bundled_presets_are_found():
    assert EXPECTED <= set(presets.available())


@pytest.mark.parametrize("name", sorted(presets.available()))
def test_every_preset_loads_validates_and_round_trips(name):
    s = presets.resolve(name)
    assert presets.read(name).get("description")
    again = presets.build(tomllib.loads(presets.to_toml(s)))
    assert again == s


def test_classic_is_exactly_the_keras_baseline():
    d = presets.resolve("classic").dream
    assert (d.model, d.step, d.num_octave, d.octave_scale, d.iterations, d.max_loss) == \
        ("efficientnet_lite0", 0.01, 3, 1.4, 20, 10.0)
    assert DreamSettings() == dataclasses.replace(d, layers=())  # the library defaults are the same numbers


@pytest.mark.parametrize("mode", ["image", "timelapse", "sweep"])
def test_the_stills_start_from_the_deepdream_look(mode):
    d = presets.resolve_for(mode).dream
    assert d == presets.resolve("deepdream").dream
    assert (d.lapnorm, d.decorrelate, d.transform) == (4, 1.0, 1.0) and d.layers == (("block5c_out", 1.0),)
    assert presets.resolve_for(mode, preset="classic").dream.lapnorm == 0


def test_what_to_dream_comes_from_the_flags_as_one_thing():
    """--class alone dreams the class (not the preset's layers with it), --layer alone the
    layers (not the preset's classes), both together both; the preset's numbers stay. Another
    --model without --layer dreams its own default layers, not the preset's model's."""
    pug = presets.resolve_for("image", overrides={"classes": ["pug"]}).dream
    assert pug.layers == () and pug.classes == ((254, 1.0),) and pug.lapnorm == 4
    assert presets.resolve_for("image", preset="deepdream", overrides={"classes": ["pug"]}).dream == pug
    video = presets.resolve_for("video", overrides={"classes": ["pug"]}).dream
    assert video.layers == () and video.step == presets.resolve("video").dream.step
    layer = presets.resolve_for("image", preset="dogs", overrides={"layers": ["block4c_out"]}).dream
    assert layer.classes == () and layer.layers == (("block4c_out", 1.0),)
    both = presets.resolve_for("image", overrides={"classes": ["pug"], "layers": ["block4c_out:0.5"]}).dream
    assert both.layers == (("block4c_out", 0.5),) and both.classes == ((254, 1.0),)
    assert presets.resolve_for("image", overrides={"model": "vgg16_hed"}).dream.layers == ()  # its defaults
    assert presets.resolve_for("image", overrides={"model": "efficientnet_lite0"}).dream.layers != ()
    assert presets.resolve_for("image", overrides={"step": 0.03}).dream.layers == (("block5c_out", 1.0),)


def test_precedence_defaults_then_preset_then_flags():
    s = presets.resolve("swirls", dream={"step": 0.05, "iterations": None})
    assert s.dream.step == 0.05  # flag wins
    assert s.dream.iterations == 25  # preset wins over default (None = flag not given)
    assert s.dream.jitter == DreamSettings().jitter  # default where neither says


def test_unknown_key_in_a_preset_names_it(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text("[dream]\nstep = 0.02\nocatve_scale = 1.3\n")
    with pytest.raises(PresetError, match="unknown key dream.ocatve_scale") as e:
        presets.resolve(str(f))
    assert "octave_scale" in e.value.hint


def test_unknown_section_and_bad_toml(tmp_path):
    f = tmp_path / "a.toml"
    f.write_text("[draem]\nstep = 0.02\n")
    with pytest.raises(PresetError, match="'draem'"):
        presets.resolve(str(f))
    f.write_text("[dream\nstep = \n")
    with pytest.raises(PresetError, match="not valid TOML"):
        presets.resolve(str(f))


def test_out_of_range_value_in_a_preset_names_the_key(tmp_path):
    f = tmp_path / "a.toml"
    f.write_text("[dream]\nnum_octave = 0\n")
    with pytest.raises(PresetError, match="num_octave must be between 1"):
        presets.resolve(str(f))


def test_unknown_preset_suggests_the_closest():
    with pytest.raises(PresetError, match="unknown preset 'swirl'") as e:
        presets.resolve("swirl")
    assert "swirls" in e.value.hint


@pytest.mark.parametrize("field,value,message", [
    ("step", 0.0, "step must be > 0"),
    ("step", -0.01, "step must be > 0"),
    ("step", float("nan"), "step must be a finite number"),
    ("num_octave", 0, "num_octave must be between 1"),
    ("octave_scale", 1.0, "octave_scale must be > 1.0"),
    ("octave_scale", 0.8, "octave_scale must be > 1.0"),
    ("iterations", -1, "iterations must be between 0"),
    ("max_loss", 0.0, "max_loss must be > 0"),
    ("tile", 16, "tile must be between 64"),
    ("precision", "half", "precision must be one of"),
])
def test_out_of_range_values_are_refused(field, value, message):
    with pytest.raises(SettingsError, match=message):
        validate(DreamSettings(**{field: value}))


@pytest.mark.parametrize("field,value", [("blend", 1.5), ("flow", "lk"), ("crf", 60), ("flow_quality", "best")])
def test_out_of_range_video_values(field, value):
    with pytest.raises(SettingsError, match=field):
        validate_video(VideoSettings(**{field: value}))


def test_layer_specs():
    assert parse_layers(["block4c_out", "block6d_out:0.5"]) == (("block4c_out", 1.0), ("block6d_out", 0.5))
    assert parse_layers({"mixed4": 1, "mixed5": 1.5}) == (("mixed4", 1.0), ("mixed5", 1.5))
    with pytest.raises(SettingsError, match="layers.block4c_out = 'lots': unknown name"):  # nor an expression
        parse_layers(["block4c_out:lots"])
    with pytest.raises(SettingsError, match="layer weight for 'block4c_out' must be a number or an expression"):
        parse_layers({"block4c_out": True})
    assert parse_layers(["block4c_out: 0.5+0.5*onset "]) == (("block4c_out", "0.5+0.5*onset"),)  # video's
    with pytest.raises(SettingsError, match="every layer weight is 0"):
        validate(DreamSettings(layers=(("block4c_out", 0.0),)))


def test_settings_digest_changes_with_any_value():
    from dreamvid.render.workdir import settings_digest

    def digest(s):
        return settings_digest(s.to_dict())

    a = presets.resolve("video")
    b = presets.resolve("video", video={"blend": 0.5})
    assert digest(a) == digest(presets.resolve("video")) and digest(a) != digest(b)
