"""A newcomer's first commands, scripted (issue 27): help, a typo, a forgotten -o, a layer
list, a misspelt layer, a channel out of range, a misspelt class, and a second render of an
output already being rendered. Each is a fresh process, as typed (bench/newcomer.py, which
the benchmark times); none of them dreams, so each answers before TensorFlow is imported."""
from __future__ import annotations

import pytest

from bench import newcomer


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("first-hour")
    return folder, newcomer.first_hour(folder)


@pytest.mark.parametrize("k", range(len(newcomer.FIRST)), ids=[what for what, *_ in newcomer.FIRST])
def test_each_first_command_answers_without_tensorflow(answers, k):
    _, got = answers
    what, args, code, words = newcomer.FIRST[k]
    a = got[k]
    text = a.stdout + a.stderr
    assert a.code == code, text
    assert words in text, text
    assert a.imported == (), f"{what} imported {a.imported}"
    assert "Traceback" not in text
    if code != 0:  # one Error: line, and nothing before it (no empty line, no progress)
        assert a.stdout == "" and a.stderr.startswith("Error: ") and a.stderr.count("\n") == 1, a.stderr


def test_nothing_was_written_by_the_refused_commands(answers):
    folder, _ = answers
    assert not (folder / "dream.png").exists() and not list((folder / "samples").glob("*.dream.*"))


def test_the_probe_sees_tensorflow_when_a_command_does_import_it(tmp_path):
    """The check above can fail: `doctor` reports TensorFlow's version, so it imports it."""
    a = newcomer.run(["doctor"], tmp_path)
    assert a.code == 0 and "tensorflow" in a.imported


@pytest.mark.parametrize("args,words", [
    (["video", "samples/bunny.mp4", "-o", "v.mp4", "--layer", "block5c_out/200"], "has 112 channels"),
    (["zoom", "samples/chelsea.jpg", "-o", "z.mp4", "--layer", "block5c_outt"], "did you mean 'block5c_out'"),
    (["timelapse", "samples/chelsea.jpg", "-o", "t.png", "--layer", "logits/1000"], "class index 1000 is out of range"),
    (["sweep", "samples/chelsea.jpg", "-o", "s.png", "--layer", "block5c_out", "--vary", "channel=110-113"],
     "has 112 channels"),
    (["sweep", "samples/chelsea.jpg", "-o", "s.png", "--vary", "layers=block4c_out,mixed4"], "no dreamable layer"),
])
def test_every_dreaming_command_checks_its_layers_before_tensorflow(args, words, tmp_path):
    import shutil

    shutil.copytree(newcomer.common.ROOT / "samples", tmp_path / "samples")
    a = newcomer.run(args, tmp_path)
    assert a.code == 2 and words in a.stderr and a.stderr.startswith("Error: "), a.stderr
    assert a.imported == (), a.imported
