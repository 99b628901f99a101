"""The `dreamvid` command and `python -m dreamvid`: interrupt handlers first, then the CLI.

Nothing here may import more than the standard library before `stop_on_signals()`: the CLI's
imports (Typer, rich, the command modules) take 0.15 s and more, and Ctrl-C or SIGTERM in
that time must be the same one line and exit code (130 / 143) as later.
"""
import sys


def main() -> None:
    try:  # the imports too: a Ctrl-C while dreamvid.errors or .signals load (10-20 ms on a busy machine) is caught
        from dreamvid.signals import stop_on_signals

        stop_on_signals()  # inside the try: a Ctrl-C a moment before it is installed is caught too
        from dreamvid.cli import main as cli

        cli()
    except KeyboardInterrupt as e:  # while dreamvid or the CLI was still being imported
        _stopped(e)
    finally:
        _ignore_interrupts()


def _stopped(e: KeyboardInterrupt) -> None:
    """The one line and exit code of a stop that came before any command could handle it."""
    import _signal

    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)  # Python's own handler may still be in place
    from dreamvid.errors import interruption_exit_code
    from dreamvid.signals import stopped_line

    sys.stderr.write(stopped_line(e) + "\n")
    sys.exit(interruption_exit_code(e))


def _ignore_interrupts() -> None:
    from dreamvid.signals import ignore_interrupts

    ignore_interrupts()


if __name__ == "__main__":
    main()
