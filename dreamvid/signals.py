"""Ctrl-C and SIGTERM: handlers installed before anything slow is imported.

`python -m dreamvid` and the `dreamvid` command start in `dreamvid.__main__`, which installs
these handlers before it imports the CLI (Typer, rich, the command modules: 0.15 s and more
on a busy machine). Ctrl-C or `kill` in that time is the same one line and exit code
(130 / 143, errors.py) as later. Standard library only.
"""
from __future__ import annotations

from .errors import Terminated


def stopped_line(e: BaseException) -> str:
    """The one line for a stop that no command handled: "Interrupted." or "Terminated."
    (its exit code is errors.interruption_exit_code(e))."""
    return "Terminated." if isinstance(e, Terminated) else "Interrupted."


def stop_on_signals() -> None:
    """Ctrl-C raises KeyboardInterrupt and SIGTERM raises `Terminated` in the main thread,
    once: the clean-up that follows (finished frames kept, worker threads joined, ffmpeg
    reaped, the resume command printed) then runs to its end, and the exit code is 130/143.

    Later Ctrl-Cs are ignored (SIG_IGN). With Python's own handler a second Ctrl-C 10 ms
    after the first raised a second KeyboardInterrupt inside that clean-up (a thread join,
    ffmpeg's reaping), or arrived while the interpreter shut down, when Python has put
    SIGINT back to its default action: dreamvid died by the signal (no exit code), or, with
    a worker thread still inside OpenCV or TensorFlow, C++ aborted it ("terminate called
    without an active exception", exit 134). SIG_IGN, unlike a Python handler, survives the
    shutdown. A second SIGTERM still kills at once, as `kill` twice means; Ctrl-\ (SIGQUIT)
    always does. Ctrl-C stays ignored where it was ignored at start (nohup, a background job).
    """
    signal = _signal_module()

    def interrupt(signum, frame):
        if _swallowed(frame):
            return _later(signum)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    def terminate(signum, frame):
        if _swallowed(frame):
            return _later(signum)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise Terminated()

    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, terminate)
    except (ValueError, OSError):  # not the main thread (an embedding program): leave it alone
        pass


# Where an exception is printed as "Exception ignored in ..." and lost: weakref callbacks (importlib
# runs one, `cb`, after every import: a Ctrl-C there was lost, the command ran on) and __del__.
_CALLBACKS = frozenset({"cb", "remove", "_remove", "__del__", "_callback"})


def _swallowed(frame) -> bool:
    return frame is not None and frame.f_code.co_name in _CALLBACKS


def _later(signum: int) -> None:
    """Deliver `signum` to our handler again at the next check, outside the callback."""
    import _thread

    _thread.interrupt_main(signum)


def _signal_module():
    """The C module under `signal`: the same functions and constants, without `signal`'s enums,
    whose import (enum, collections, functools) took 48 ms of the start on a busy machine, time in
    which a Ctrl-C found no handler yet."""
    import _signal

    return _signal


def ignore_interrupts() -> None:
    """Once the command has its result and exit code: a Ctrl-C or SIGTERM while the interpreter
    shuts down (TensorFlow's teardown takes a moment; Python puts the default actions back as
    it finalises) must not turn them into death by the signal: a SIGTERM 1.4 s in, just after
    an `Error:` line, ended a command that had chosen exit 2 with -15."""
    signal = _signal_module()

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                signal.signal(signum, signal.SIG_IGN)
        except (ValueError, OSError):
            pass
