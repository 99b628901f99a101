"""Every error a user can cause or meet, as one exception family.

Each message says what is wrong; `hint` says what to do about it. The CLI prints both on
one line each and exits with `exit_code`; `--debug` adds the traceback and `detail`
(for example ffmpeg's own command line and stderr tail).
"""
from __future__ import annotations

# Exit codes (documented in the README): 0 success, 1 runtime failure, 2 usage,
# 130 interrupted (Ctrl-C), 143 terminated (SIGTERM: `kill`, a batch scheduler's time limit).
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C, so that the same clean-up runs: the
    finished frames stay on disk, ffmpeg children are stopped, the resume command is printed."""


def interruption_exit_code(e: BaseException | None) -> int:
    return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED


class DreamvidError(Exception):
    """Base of every expected failure. Never raised for programming errors."""

    exit_code = EXIT_RUNTIME

    def __init__(self, message: str, hint: str | None = None, detail: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.detail = detail  # long diagnostic text (tool stderr) shown with --debug

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class InputError(DreamvidError):
    """A missing, unreadable, corrupt or unsuitable input file."""

    exit_code = EXIT_USAGE


class OutputError(DreamvidError):
    """An output path that cannot be written (missing folder, no permission, equals input)."""

    exit_code = EXIT_USAGE


class SettingsError(DreamvidError):
    """An out-of-range or malformed parameter value; `key`: the setting it concerns, where one
    does (the studio shows the message beside that field)."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None, detail: str | None = None, key: str | None = None):
        super().__init__(message, hint=hint, detail=detail)
        self.key = key


class PresetError(DreamvidError):
    """An unknown preset, a preset file that does not parse, or an unknown key in one."""

    exit_code = EXIT_USAGE


class ModelError(DreamvidError):
    """An unknown model or layer, or weights that cannot be had (offline, bad file)."""

    exit_code = EXIT_USAGE


class DownloadError(ModelError):
    """Weights could not be downloaded (no network, the host refused): a runtime failure."""

    exit_code = EXIT_RUNTIME


class EncoderError(DreamvidError):
    """ffmpeg failed while decoding or encoding; `detail` carries its command and stderr."""

    exit_code = EXIT_RUNTIME


class ResumeMismatchError(DreamvidError):
    """A work folder holds frames from another source or other settings."""

    exit_code = EXIT_USAGE


class DecodeError(EncoderError):
    """A video that stopped decoding part way (truncated or corrupt). Frames already read are good."""

    exit_code = EXIT_RUNTIME
