"""Running the CLI in-process and checking its failures: one `Error:` line, the documented exit code."""
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
