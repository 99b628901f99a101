"""The README's examples, run as printed, so the README cannot drift from the code.

Every ```python block runs in a fresh folder holding a copy of samples/ (the examples use
sample paths); every `dreamvid ...` line of a ```sh block is parsed by the real CLI, so a
renamed or removed flag, command or argument fails here. (The shell lines are not run:
several are full-size dreams of files a reader brings.)
"""
from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import click
import pytest
import typer

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def dreamvid_lines() -> list[str]:
    lines = []
    for block in blocks("sh"):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("dreamvid "):
                lines.append(line)
    return lines


def test_the_readme_has_examples():
    assert len(blocks("python")) >= 2 and len(dreamvid_lines()) >= 8


@pytest.mark.slow
@pytest.mark.parametrize("k", range(len(blocks("python"))))
def test_python_example_runs_as_printed(k, tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks("python")[k], f"README.md python block {k + 1}", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out
    if "render_video" in blocks("python")[k]:
        n_frames, fps, rendered = printed.splitlines()[0].split()
        assert (n_frames, fps, rendered) == ("25", "25", "25")  # what the comment in the README says
        assert 0 < float(printed.splitlines()[1]) < 5


def _expand(line: str) -> list[list[str]]:
    """`a [--x 1] [--y 2 ...]` -> the command with and without its optional parts; `a | b` -> both."""
    out = []
    for alternative in line.split(" | "):
        words = alternative if alternative.startswith("dreamvid") else "dreamvid " + alternative
        words = words.replace(" ...]", "]")
        bare = re.sub(r"\[[^\]]*\]", "", words)
        full = re.sub(r"\[([^\]]*)\]", r"\1", words)
        out += [shlex.split(bare)[1:], shlex.split(full)[1:]]
    return out


@pytest.mark.parametrize("line", dreamvid_lines())
def test_shell_example_parses(line):
    from dreamvid.cli import app

    root = typer.main.get_command(app)
    for argv in _expand(line):
        parent = click.Context(root, info_name="dreamvid")
        cmd, rest = root.get_command(parent, argv[0]), argv[1:]
        assert cmd is not None, f"{line}: no command {argv[0]!r}"
        while isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
            cmd, rest = cmd.get_command(parent, rest[0]), rest[1:]
            assert cmd is not None, f"{line}: no subcommand in {argv}"
        ctx = cmd.make_context(argv[0], list(rest), parent=parent)  # raises on an unknown flag or a bad value
        assert not [a for a in ctx.args if a.startswith("-")], f"{line}: {ctx.args}"


def test_the_parse_check_catches_a_flag_that_does_not_exist():
    with pytest.raises(Exception, match="No such option: --blendd"):
        test_shell_example_parses("dreamvid video clip.mp4 --blendd 0.9")
    with pytest.raises(AssertionError):
        test_shell_example_parses("dreamvid vidoe clip.mp4")
