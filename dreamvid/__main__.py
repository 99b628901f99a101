"""The `dreamvid` command and `python -m dreamvid`: interrupt handlers first, then the CLI.

Nothing here may import more than the standard library before `stop_on_signals()`: the CLI's
imports (Typer, rich, the command modules) take 0.15 s and more, and Ctrl-C or SIGTERM in
that time must be the same one line and exit code (130 / 143) as later.
"""
import sys


def main() -> None:
    from dreamvid.errors import interruption_exit_code
    from dreamvid.signals import ignore_interrupts, stop_on_signals, stopped_line

    try:
        stop_on_signals()  # inside the try: a Ctrl-C a moment before it is installed is caught too
        from dreamvid.cli import main as cli

        cli()
    except KeyboardInterrupt as e:  # while the CLI was still being imported
        sys.stderr.write(stopped_line(e) + "\n")
        sys.exit(interruption_exit_code(e))
    finally:
        ignore_interrupts()


if __name__ == "__main__":
    main()
