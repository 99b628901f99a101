"""What a newcomer meets first: --help, names with a "did you mean", `dreamvid doctor`, shell
completion, quiet library use, a progress line that keeps its numbers, models fetch offline."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .clitools import error_line, run

BIN = Path(sys.executable).parent
COMMANDS = ["image", "video", "zoom", "timelapse", "sweep", "coherence", "layers", "models", "presets", "doctor"]


@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]])
def test_help_shows_metavars_not_python_types(command):
    out = run(*command, "--help").output
    for python_type in ("<bool>", "<list[", "<float>", "<int>", "<str>", "<path>"):
        assert python_type not in out, (command, python_type)


def wide_help(command: str) -> str:
    from dreamvid.cli import app

    from .clitools import runner

    return runner.invoke(app, [command, "--help"], env={"COLUMNS": "300"}).output


def test_dream_options_show_their_range_and_the_default_of_that_command():
    video = wide_help("video")
    assert "Range: 1..20" in video and "[default: 0.006, the video preset's]" in video
    image = wide_help("image")
    assert "[default: 0.02, the deepdream preset's]" in image and "(default: deepdream)" in image
    assert "Range: 0..8" in image and "--lapnorm" in image and "--decorrelate" in image and "--transform" in image
    assert "(default: zoom)" in wide_help("zoom")


def narrow(*args: str) -> str:
    """What a command prints in an 80-column terminal."""
    from dreamvid.cli import app

    from .clitools import runner

    r = runner.invoke(app, list(args), env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    return r.output


@pytest.mark.parametrize("command", [["presets"], ["models"], ["doctor"], ["layers", "vgg16_hed", "--channels"],
                                     ["classes", "--search", "retriever"]])
def test_lists_fit_80_columns_without_padding(command):
    out = narrow(*command)
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    assert not [line for line in lines if line != line.rstrip()]  # no trailing spaces
    assert lines[0].strip()  # no empty line first


def test_doctor_breaks_no_value_inside_a_word():
    """A value wider than its column wraps between words, or after a `/` of a path: joined
    again at those places, every value of the JSON report reads whole."""
    report = json.loads(run("doctor", "--json").stdout)
    text = narrow("doctor")
    joined = " ".join(line[17:].strip() if line.startswith(" " * 17) else line.split(None, 2)[-1] if
                      line.split()[0] in ("dreamvid", "CPU", "GPUs", "TensorFlow", "ffmpeg", "extras") else line
                      for line in text.splitlines()).replace("/ ", "/")
    for value in (report["models"]["bundled"]["efficientnet_lite0"], report["models"]["bundled"]["vgg16_hed"],
                  report["ffmpeg"]["path"], report["platform"]):
        assert value in joined, value


def test_wrap_breaks_between_words_and_after_slashes_only():
    from dreamvid.cli.listing import table, wrap

    words = "a long sentence of ordinary words that must wrap somewhere"
    for room in (10, 24, 40):
        lines = wrap(words, room)
        assert " ".join(lines) == words and all(len(line) <= room for line in lines)
    path = "/usr/lib/python3/site-packages/some_package/weights/model-file-1234.pth"
    lines = wrap(f"weights: {path}; done", 30)
    assert "".join(line + ("" if line.endswith("/") else " ") for line in lines).strip() == f"weights: {path}; done"
    assert all(len(line) <= 30 for line in lines) and all(line.endswith("/") for line in lines[1:-2])
    assert wrap("unbreakable_" * 5, 20) == ["unbreakable_" * 5]  # no / in it: it stands whole
    assert table(["a", "b"], [["x", words]], 30).splitlines() == [
        "a  b", "x  a long sentence of ordinary", "   words that must wrap", "   somewhere"]


def test_help_names_arguments_in_upper_case_with_their_type():
    image = narrow("image", "--help")
    assert "Usage: dreamvid image [OPTIONS] SOURCES..." in image and "{sources}" not in image
    layers = narrow("layers", "--help")
    assert "Usage: dreamvid layers [OPTIONS] MODEL" in layers and "{model}" not in layers
    assert re.search(r"model +TEXT +Model name or \.keras file", layers), layers
    assert "Usage: dreamvid classes [OPTIONS] [MODEL]" in narrow("classes", "--help")


def test_help_prose_has_no_line_break_inside_a_sentence():
    """Docstrings are joined into paragraphs the terminal wraps: the doctor's summary fills its
    line in the command list, and image's second paragraph is not broken at the source's breaks."""
    top = narrow("--help")
    assert "model cache, ffmpeg, extras): paste it into a bug report." in top, top
    image = narrow("image", "--help")
    assert "the other with the\n network\n" not in image
    assert re.search(r"one after the other with the\s+network loaded once", image)
    assert not [line for line in image.splitlines() if re.fullmatch(r" \w+ *", line)]  # no one-word lines


@pytest.mark.parametrize("command,flags", [
    ("video", ("--flow", "--blend", "--crf", "--fps")),
    ("serve", ("--data", "--host", "--max-pixels")),
])
def test_options_show_their_defaults(command, flags):
    text = wide_help(command)
    for flag in flags:
        line = next(line for line in text.splitlines() if re.match(rf"│ {flag} ", line))
        assert "[default: " in line, line


def test_a_near_miss_layer_or_model_name_gets_a_suggestion(photo, tmp_path):
    error_line(run("image", photo, "-o", tmp_path / "x.png", "--layer", "block5c"), 2, "did you mean 'block5c_out'")
    error_line(run("image", photo, "-o", tmp_path / "x.png", "--model", "efficientnet_lite"), 2,
               "did you mean 'efficientnet_lite0'")


def test_doctor_reports_the_machine():
    r = run("doctor", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert {"dreamvid", "python", "cpu", "tensorflow", "models", "ffmpeg", "extras"} <= set(report)
    assert report["tensorflow"]["version"] and "gpus" in report["tensorflow"]
    assert report["models"]["bundled"]["efficientnet_lite0"] != "missing"
    table = run("doctor")
    assert table.exit_code == 0 and "TensorFlow" in table.stdout and "ffmpeg" in table.stdout


def _complete(words: str) -> list[str]:
    env = {**os.environ, "_DREAMVID_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - 1 + words.endswith(" "))}
    proc = subprocess.run([str(BIN / "dreamvid")], env=env, capture_output=True, text=True, timeout=120)
    return proc.stdout.split()


@pytest.mark.skipif(not (BIN / "dreamvid").exists(), reason="the dreamvid script is not installed beside python")
def test_shell_completion_knows_commands_presets_models_and_layers():
    assert "video" in _complete("dreamvid vi")
    assert set(_complete("dreamvid image x.jpg --preset c")) == {"classic", "coral"}
    assert "vgg16_hed" in _complete("dreamvid image x.jpg --model vgg")
    assert "block5c_out" in _complete("dreamvid image x.jpg --layer block5")
    assert "block4_conv3" in _complete("dreamvid image x.jpg --model vgg16_hed --layer block4_c")


def test_the_library_is_as_quiet_as_the_cli(tmp_path):
    code = ("import numpy as np, dreamvid; "
            "print(dreamvid.dream_image(np.full((40, 40, 3), 99, np.uint8), iterations=1, num_octave=1).shape)")
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "DREAMVID_TF_LOGS")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(40, 40, 3)"
    assert "oneDNN" not in proc.stderr and "cuda" not in proc.stderr.lower(), proc.stderr
    assert "absl" not in proc.stderr, proc.stderr


def test_the_progress_line_keeps_its_numbers_at_80_columns():
    from rich.console import Console

    from dreamvid.cli.common import progress_bar

    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=False)
    bar = progress_bar(console=console)
    bar.add_task("dreaming", total=1250, completed=317, info="frame 316 (new shot), 1.23 fps, " + "x" * 80)
    console.print(bar.make_tasks_table(bar.tasks))
    line = buf.getvalue().splitlines()[0]
    assert "317/1250" in line and "0:00:00" in line and "-:--:--" in line, line


def test_models_fetch_offline_is_a_runtime_failure_with_its_output_on_stderr(monkeypatch):
    from dreamvid import models

    spec = models.MODELS["inception_v3"]

    def no_network(weights):
        print("Downloading data from https://example.invalid/weights.h5")  # what Keras prints, on stdout
        raise OSError("URL fetch failure: [Errno -2] Name or service not known")

    monkeypatch.setitem(models.MODELS, "inception_v3", type(spec)(**{**spec.__dict__, "build": no_network}))
    monkeypatch.setattr(models, "is_cached", lambda s: False)
    models.load_trunk.cache_clear()
    r = run("models", "fetch", "inception_v3")
    assert r.exit_code == 1, r.output
    assert "Downloading" not in r.stdout and r.stdout.strip() == ""
    assert "could not download the weights of inception_v3" in r.stderr
