"""Running the CLI in-process and checking its failures: one `Error:` line, the documented exit code."""
import contextlib
import signal

import pytest
from typer.testing import CliRunner

from dreamvid.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def error_line(result, code, *fragments) -> str:
    """The documented exit code, an `Error:` line naming the problem last, no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("Error: "), result.output
    for f in fragments:
        assert f in lines[-1], lines[-1]
    return lines[-1]


def one_line_error(result, code, *fragments) -> None:
    """As error_line, for failures before any work: nothing else is printed."""
    error_line(result, code, *fragments)
    assert len([line for line in result.output.strip().splitlines() if line.strip()]) == 1, result.output


# ---- hostile input (issue 25): run a command only as far as its plan, bounded in time ------------------

class Planned(Exception):
    """Raised in place of the render once a command's plan is built and checked."""


def _planned(*args, **kwargs):
    raise Planned()


def _no_model(*args, **kwargs):
    raise AssertionError("a network was loaded before the input was refused")


@contextlib.contextmanager
def within(seconds: float):
    """Fail (TimeoutError) instead of hanging: SIGALRM interrupts even a blocking open() of a pipe."""
    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def plan_only(*args, seconds: float = 10.0):
    """Run `dreamvid ARGS` in this process up to its plan: nothing loads a network or renders
    (cluster.render, the door every render goes through, raises Planned), within `seconds`.
    Returns (result, planned: whether the input was accepted)."""
    with pytest.MonkeyPatch.context() as m, within(seconds):
        m.setattr("dreamvid.render.cluster.render", _planned)
        m.setattr("dreamvid.dream.octaves._dreamer", _no_model)
        result = run(*args)
    planned = isinstance(result.exception, Planned)
    return result, planned


def refused_or_planned(*args, seconds: float = 10.0, code: int = 2) -> str | None:
    """The property of every hostile input: `dreamvid ARGS` is either planned (accepted) or
    refused with one `Error:` line, the documented exit code, no traceback, within `seconds`.
    Returns the error line (None when planned)."""
    result, planned = plan_only(*args, seconds=seconds)
    if planned:
        return None
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    one_line_error(result, code)
    return result.output.strip()
