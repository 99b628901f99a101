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
