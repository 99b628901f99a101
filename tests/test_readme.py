"""The README's examples, run as printed, so the README cannot drift from the code.

Every ```python block runs in a fresh folder holding a copy of samples/ (the examples use
sample paths); every `dreamvid ...` line of a ```sh block is parsed by the real CLI, so a
renamed or removed flag, command or argument fails here. Then every command the README shows
(the ```sh lines and the whole commands in its prose and tables) runs, its placeholders
(photo.jpg, clip.mp4, holiday/) filled in with the samples and made small (FILES, SMALL), and
what can be measured is checked against what the README says: a visible change, strong for
the class and channel commands; a mask that keeps the photo outside it; frame counts; the
coherence table, flow-guided far below independent frames. Clusters, the server and
downloads are not run here (NOT_RUN names where they are tested).
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import click
import numpy as np
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


# ---- every command the README shows, run at small sizes, checked where it can be measured ----

# The README's placeholders as files of samples/ (each script runs in a folder with a copy of it)
FILES = {"photo.jpg": "samples/chelsea.jpg", "chelsea.jpg": "samples/chelsea.jpg", "coffee.jpg": "samples/coffee.jpg",
         "astronaut.jpg": "samples/astronaut.jpg", "more.jpg": "samples/coffee.jpg", "clip.mp4": "samples/bunny.mp4",
         "song.mp3": "samples/bunny.mp4", "MODEL": "efficientnet_lite0", "NAME": "classic"}
# What makes a command small (appended: the last of a repeated option wins). Objectives at 128 px:
# the size at which "visible" is checked.
SMALL = {"image": ["--max-size", "64"], "video": ["--max-size", "64"],
         "zoom": ["--max-size", "64", "--fps", "4", "--duration", "1"],
         "timelapse": ["--max-size", "48", "--num-octave", "1"], "sweep": ["--max-size", "64", "--cell-size", "64"]}
OBJECTIVE_SIZE = ["--max-size", "128"]
NOT_RUN = {"--workers": "a Ray cluster: tests/test_distributed.py", "--ray": "a Ray cluster: tests/test_distributed.py",
           "serve": "a server: tests/test_web.py", "fetch": "a download"}
VISIBLE = 6.0  # levels of 255: mean |dream - photo| that reads as a changed picture at 64..128 px
STRONG = 12.0  # levels: what the README's class and channel commands give at 128 px (14.6-16.6 measured)
REFUSED = {"dreamvid image photo.jpg dream.png": "did you mean `-o dream.png`"}  # the README's own mistakes
DREAMS = ("image", "video", "zoom", "timelapse", "sweep", "coherence")  # need a file to work on


def inline_commands() -> list[str]:
    """`dreamvid ...` in the README's prose and tables that are whole commands (a fragment such
    as `dreamvid zoom` or `dreamvid coherence SOURCE OUTPUT` names one; it is not run)."""
    out = []
    for text in re.findall(r"`(dreamvid [^`]+)`", README):
        words = shlex.split(" ".join(text.split()))
        placeholders = [w for w in words[1:] if w.isupper() and w not in FILES]
        files = [w for w in words[2:] if not w.startswith("-") and ("." in w or "/" in w)]
        if len(words) > 2 and not placeholders and (words[1] not in DREAMS or files):
            out.append(" ".join(text.split()))
    return out


def scripts() -> list[tuple[str, list[str]]]:
    """(id, lines): each ```sh block, whose lines run in order in one folder (a coherence line
    measures the video a line above made), and each whole inline command on its own."""
    out = [(f"sh block {k + 1}", [line for line in _block_lines(b)]) for k, b in enumerate(blocks("sh"))]
    seen = {line for _, lines in out for line in lines}
    out += [(cmd, [cmd]) for cmd in dict.fromkeys(inline_commands()) if cmd not in seen]
    return [(name, lines) for name, lines in out if lines]


def _block_lines(block: str) -> list[str]:
    lines = []
    for line in block.splitlines():
        line = line.split("  #")[0].strip()
        if line.startswith("dreamvid "):
            lines.append(line)
    return lines


def runs(line: str) -> list[list[str]]:
    """The argument lists a README line stands for, placeholders filled in and made small: its
    optional parts included, one per `|` alternative; [] for what is not run here (NOT_RUN)."""
    out = []
    for argv in _expand(line):  # each alternative, with and without its optional parts
        if any(w in NOT_RUN for w in argv) or argv in out:
            continue
        argv = [FILES.get(w, w) for w in argv]
        small = OBJECTIVE_SIZE if any(w in ("--class", "--guide", "--mask") or w.startswith("channel=")
                                      for w in argv) and argv[0] != "video" else SMALL.get(argv[0], [])
        if argv[0] == "video" and "--end" not in argv:
            small = [*small, "--end", "f8"]
        if argv[0] == "zoom" and "--frames" in argv:
            small = [w for w in small if w not in ("--duration", "1")]
        out.append(argv + small)
    return list({tuple(a): a for a in out}.values())


def _source(argv: list[str]) -> Path | None:
    return next((Path(w) for w in argv[1:] if w.startswith("samples/") and w.endswith((".jpg", ".png"))), None)


def _change(result: Path, photo: Path) -> float:
    """Mean |result - photo| in levels, the photo shrunk to the result's size."""
    import cv2

    from dreamvid import media

    got = media.read_image(result).astype(np.float32)
    ref = cv2.resize(media.read_image(photo), got.shape[1::-1], interpolation=cv2.INTER_AREA).astype(np.float32)
    return float(np.abs(got - ref).mean())


def _output(argv: list[str]) -> Path | None:
    if "-o" in argv:
        return Path(argv[argv.index("-o") + 1])
    src = _source(argv)
    return src.with_name(f"{src.stem}.dream.png") if src is not None and argv[0] == "image" else None


def check(argv: list[str], output: str) -> dict:
    """What can be measured of one command's result; AssertionError where it is not what the
    README says. Returns the measurements (for the README's figures and the failure message)."""
    from dreamvid import media

    kind, out, got = argv[0], _output(argv), {}
    if kind == "image":
        if out.is_dir():  # a batch: NAME.dream.png for each photo given or found in a folder given
            given = [p for w in argv[1:] for p in (sorted(Path(w).iterdir()) if Path(w).is_dir() else [Path(w)])]
            pairs = [(r, next(p for p in given if p.stem == r.name.split(".dream")[0]))
                     for r in sorted(out.glob("*.dream.png"))]
            assert len(pairs) == len([p for p in given if p.suffix == ".jpg"]), pairs  # a folder's mask is no photo
        else:
            pairs = [(out, _source(argv))]
        strong = "--class" in argv
        for result, photo in pairs:
            got[result.name] = _change(result, photo)
            assert got[result.name] >= (STRONG if strong else VISIBLE), got
        if "--mask" in argv:  # white dreams, black stays the photo (what is left: our resize against dreamvid's)
            got["inside"], got["outside"] = _inside_outside(out, _source(argv), argv[argv.index("--mask") + 1])
            assert got["inside"] >= VISIBLE and got["outside"] < min(2.0, 0.1 * got["inside"]), got
    elif kind == "video":
        info = media.probe_video(out or Path("samples/bunny.dream.mp4"))
        got["frames"] = info.n_frames
        assert info.n_frames >= 8 or "--start" in argv, got
    elif kind == "coherence":
        if "--json" in argv:
            got["vs_source"] = json.loads(output)["ratio_to_source"]
        else:  # the table's output row: warping error, then its ratio to the source's
            m = re.search(r"output:\s*\S+\s+([\d.]+)\s+([\d.]+)x", output)
            assert m, output
            got["vs_source"] = float(m.group(2))
        assert 0 < got["vs_source"] < 100, got
    elif kind == "zoom":
        if "--dry-run" in argv:
            frames = int(argv[argv.index("--frames") + 1])
            got["rows"] = len([line for line in output.splitlines() if re.match(r"^\s*\d+\s", line)])
            assert got["rows"] == frames, output
        else:
            beside = "samples/chelsea.zoom.preview.mp4" if "--preview" in argv else "samples/chelsea.zoom.mp4"
            got["frames"] = media.probe_video(out or Path(beside)).n_frames
            assert got["frames"] >= 4, got
    elif kind == "timelapse":
        got["frames"] = media.probe_video(out).n_frames
        assert got["frames"] > 6, got  # six checkpoints, each held and crossfaded
    elif kind == "sweep":
        cells = Path("cells")
        got["cells"] = [round(_change(c, _source(argv)), 1) for c in sorted(cells.glob("*.png"))]
        strong = any(w.startswith("channel=") for w in argv)
        assert got["cells"] and min(got["cells"]) >= (STRONG if strong else VISIBLE), got
    return got


def _inside_outside(result: Path, photo: Path, mask: str) -> tuple[float, float]:
    """Mean |result - photo| where the mask is white, and where it is black (levels)."""
    import cv2

    from dreamvid import media

    got = media.read_image(result).astype(np.float32)
    size = got.shape[1::-1]
    ref = cv2.resize(media.read_image(photo), size, interpolation=cv2.INTER_AREA).astype(np.float32)
    m = cv2.resize(cv2.imread(mask, cv2.IMREAD_GRAYSCALE), size, interpolation=cv2.INTER_AREA)
    diff = np.abs(got - ref).mean(axis=2)
    inside, outside = cv2.erode((m > 250).astype(np.uint8), np.ones((5, 5))), cv2.erode((m < 5).astype(np.uint8),
                                                                                           np.ones((5, 5)))
    return float(diff[inside > 0].mean()), float(diff[outside > 0].mean())


@pytest.mark.slow
@pytest.mark.parametrize("name,lines", scripts(), ids=[name for name, _ in scripts()])
def test_readme_command_gives_what_the_readme_says(name, lines, tmp_path, monkeypatch):
    from .clitools import run

    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    (tmp_path / "holiday").mkdir()
    for f in ("astronaut.jpg", "chelsea.jpg", "chelsea-mask.png"):  # a folder of photos, with a mask beside them
        shutil.copy(ROOT / "samples" / f, tmp_path / "holiday" / f)
    monkeypatch.chdir(tmp_path)
    ran, flicker = 0, {}
    for line in lines:
        for argv in runs(line):
            if argv[0] == "sweep":
                argv += ["--save-cells", "cells"]
            result = run(*argv)
            if line in REFUSED:
                assert result.exit_code == 2 and REFUSED[line] in result.output, result.output
            else:
                assert result.exit_code == 0, f"{line}\n-> dreamvid {shlex.join(argv)}\n{result.output}"
                got = check(argv, result.output)
                if argv[0] == "coherence":
                    flicker[argv[2]] = got["vs_source"]
            ran += 1
    if {"dream.mp4", "independent.mp4"} <= set(flicker):  # the README's table: flow-guided flickers far less
        assert flicker["dream.mp4"] <= 2.0 and flicker["dream.mp4"] < 0.5 * flicker["independent.mp4"], flicker
    if not ran:
        pytest.skip(f"{name}: " + "; ".join(sorted({v for k, v in NOT_RUN.items() if k in " ".join(lines)})))


@pytest.mark.slow
def test_the_class_command_is_visible_from_the_default(tmp_path, monkeypatch):
    """The README's class command (`--class pug` alone, on the `deepdream` preset's numbers) at
    128 px is a strong dream; on the Keras example's numbers (`--preset classic`: max_loss 10
    ends each octave within a few steps) the same flag barely shows (README, "Channels and
    classes need `--max-loss` on the Keras example's numbers"). Measured: 32.1 against 5.0 levels."""
    from .clitools import run

    line = next(c for c in inline_commands() if "--class" in c)
    argv = runs(line)[0]
    assert "--preset" not in argv and "--max-loss" not in argv
    monkeypatch.chdir(tmp_path)
    (tmp_path / "samples").mkdir()
    shutil.copy(ROOT / "samples" / "chelsea.jpg", tmp_path / "samples")
    change = {}
    for name, args in (("as written", argv), ("classic", [*argv, "--preset", "classic"])):
        assert run(*args, "-o", f"{name}.png").exit_code == 0
        change[name] = _change(Path(f"{name}.png"), Path("samples/chelsea.jpg"))
    assert change["as written"] >= STRONG and change["classic"] < 0.5 * change["as written"], change


def test_make_demo_installs_only_what_the_demo_needs(tmp_path):
    """README, Two commands: `make demo` installs dreamvid alone; `make test` adds the extras."""
    def recipe(target: str) -> str:
        proc = subprocess.run(["make", "-n", target, f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    demo, test = recipe("demo"), recipe("test")
    assert 'pip install --quiet -e "."' in demo and "[test" not in demo and "dreamvid video samples/bunny.mp4" in demo
    assert 'pip install --quiet -e ".[test,web,ray]"' in test and "pytest" in test
