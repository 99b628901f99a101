"""The parameter catalogue (dreamvid/params.py): one declaration per setting, and the three
readers agree with it: the library's validation, the CLI's options and help, the studio's fields."""
from __future__ import annotations

import dataclasses
import math

import pytest
import typer

from dreamvid import params, presets
from dreamvid.errors import DreamvidError, SettingsError
from dreamvid.settings import SECTIONS

CATALOGUE = params.catalogue()
MODES = tuple(presets.MODE_SECTIONS)
RANGED = [(mode, p) for mode in MODES for p in params.of_mode(mode).values()
          if p.kind in ("int", "float") and (p.lo is not None or p.hi is not None)]


def test_every_setting_is_in_the_catalogue_with_a_kind_that_fits_its_type():
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            p = CATALOGUE[(section, f.name)]
            assert p.kind in params.KINDS and p.help.endswith((".", ")")), (section, f.name)
            python = {"int": "int", "float": "float", "bool": "bool", "choice": "str", "text": "str"}.get(p.kind)
            if python:
                assert python in f.type, (section, f.name, f.type)
            if p.kind == "choice":
                assert f.default in p.choices
            if f.default is None:
                assert p.optional and p.none, f"{section}.{f.name}: say what None means (none=...)"
            assert p.flag == "--" + f.name.replace("_", "-") or p.flags, (section, f.name)
    assert [p.name for p in params.of_mode("zoom").values()][:3] == ["zoom", "rotate", "pan"]  # the zoom's own first
    assert params.of_mode("zoom")["fps"].section == "zoom" and params.of_mode("zoom")["crf"].section == "video"


def _inside(p) -> list:
    values = [v for v in (p.lo, p.hi) if v is not None and not (v == p.lo and p.lo_open)]
    return [int(v) if p.kind == "int" else float(v) for v in values]


def _outside(p) -> list:
    eps = 1 if p.kind == "int" else 1e-6
    out = []
    if p.lo is not None:
        out.append(p.lo if p.lo_open else p.lo - eps)
    if p.hi is not None:
        out.append(p.hi + eps)
    return out


@pytest.mark.parametrize("mode, p", RANGED, ids=[f"{m}-{p.section}.{p.name}" for m, p in RANGED])
def test_the_library_takes_the_catalogues_range_and_nothing_past_it(mode, p):
    for value in _inside(p):
        presets.resolve_for(mode, overrides={p.name: value})
    for value in _outside(p):
        with pytest.raises(SettingsError) as e:
            presets.resolve_for(mode, overrides={p.name: value})
        assert e.value.message.startswith(f"{p.name} must be") and e.value.key == p.name, e.value.message
        assert p.range_text().split(" ")[-1].split("..")[-1] in e.value.message or p.lo_open


def _command(mode: str):
    from dreamvid.cli import app

    return typer.main.get_command(app).commands[mode]


@pytest.mark.parametrize("mode", MODES)
def test_each_command_offers_every_setting_its_mode_reads_with_the_catalogues_help_and_range(mode):
    options = {opt: o for o in _command(mode).params for opt in (*o.opts, *o.secondary_opts)}
    for name, p in params.of_mode(mode).items():
        flag = p.flag
        assert flag in options, f"{mode} has no {flag}"
        option = options[flag]
        assert p.help in option.help, (mode, name)
        if p.range_text():
            assert f"Range: {p.range_text()}" in option.help, (mode, name, option.help)
        if p.kind == "bool":
            assert option.secondary_opts, (mode, name)


def test_the_help_shows_the_default_each_command_starts_from():
    flow = next(o for o in _command("video").params if "--flow" in o.opts)
    assert "[default: dis, the video preset's]" in flow.help
    size = next(o for o in _command("image").params if "--max-size" in o.opts)
    assert "Range: 32..65536 px." in size.help and "[default: keep the size]" in size.help
    audio = next(o for o in _command("video").params if "--keep-audio" in o.opts)
    assert "[default: --keep-audio, the video preset's]" in audio.help


@pytest.mark.parametrize("mode", MODES)
def test_the_studio_offers_the_catalogues_fields_and_refuses_in_the_librarys_words(mode, tmp_path):
    from dreamvid.web.options import options_of, parse_request

    offered = {f["name"]: f for f in options_of(mode)}
    for name, field in offered.items():
        p = params.of_mode(mode)[name]
        assert (field["lo"], field["hi"], field["lo_open"], field["range"], field["help"]) == \
            (p.lo, p.hi, p.lo_open, p.range_text(), p.help) or name == "mask", name
    for m, p in RANGED:
        if m != mode or p.name not in offered:
            continue
        for value in _outside(p):
            with pytest.raises(SettingsError) as library:  # a float field's text is read as a float
                presets.resolve_for(mode, overrides={p.name: float(value) if p.kind == "float" else value})
            with pytest.raises(SettingsError) as page:
                parse_request({"mode": mode, "params": {p.name: str(value)}}, {}).settings(tmp_path)
            assert page.value.message == library.value.message and page.value.key == p.name


def test_a_values_text_is_bounded_before_it_is_converted():
    from dreamvid.web.options import number

    for text in ("inf", "-inf", "nan", "1e400", "1e999999999", "9" * 500, "0x10", "1_000", "", " ", "1.5.2"):
        with pytest.raises(SettingsError, match="must be a whole number"):
            number(text, "iterations", "int")
    for value in (math.inf, math.nan, 1.5, True, None, [], 10**400 + 0.0 if False else 1.5):
        with pytest.raises(SettingsError):
            number(value, "iterations", "int")
    with pytest.raises(SettingsError, match="step is too large"):
        number(10**400, "step", "float")
    assert number("12", "iterations", "int") == 12 and number(12.0, "iterations", "int") == 12
    assert number("1e-3", "step", "float") == 0.001 and number(" 2 ", "step", "float") == 2.0
    assert number(10**300, "seed", "int") == 10**300  # a whole number: its range is the library's to refuse
    with pytest.raises(SettingsError, match="seed is too large"):  # past numeric.MAX_INT_BITS: never converted
        number(10**400, "seed", "int")


def test_huge_values_make_one_short_line():
    with pytest.raises(DreamvidError) as e:
        presets.resolve_for("image", overrides={"iterations": 10**400})
    assert len(e.value.message) < 120 and "\n" not in e.value.message
    with pytest.raises(DreamvidError, match="step must be a finite number"):
        presets.resolve_for("image", overrides={"step": 10**400})  # math.isfinite would raise OverflowError
