"""Lists that fit the terminal: `models`, `layers`, `classes`, `presets`, `doctor`.

Every column but the last is as wide as its widest cell; the last one takes what is left of
the terminal's width and wraps between words. No line is padded with trailing spaces, and no
word is broken: a word wider than its column (a path, a URL) is broken only after a `/`, so
each piece still reads as a path, and a word with no `/` stands whole past the edge rather
than being cut in two. Plain text: it reads the same in a terminal, a pipe and a bug report.
"""
from __future__ import annotations

import shutil
import textwrap
from typing import Sequence

import typer

GAP = 2  # spaces between columns
MIN_LAST = 24  # columns; the last column is never squeezed narrower (the line runs past the edge instead)
MIN_WIDTH = 40  # a terminal narrower than this is treated as this wide


def width() -> int:
    """The terminal's width in columns ($COLUMNS first; 80 when stdout is not a terminal)."""
    return max(MIN_WIDTH, shutil.get_terminal_size((80, 24)).columns)


def wrap(text: str, room: int) -> list[str]:
    """`text` in lines of at most `room` columns, broken between words, or after a `/` inside
    a word wider than `room` (see the module doc); [""] for empty text."""
    lines: list[str] = []
    for word in text.split():
        pieces = _path_pieces(word) if len(word) > room else [word]
        for k, piece in enumerate(pieces):
            joined = lines[-1] + ("" if k else " ") + piece if lines else piece
            if lines and len(joined) <= room:
                lines[-1] = joined
            else:
                lines.append(piece)
    return lines or [""]


def _path_pieces(word: str) -> list[str]:
    """A word cut after each `/`: the places a long path may be broken."""
    pieces = [p + "/" for p in word.split("/")]
    pieces[-1] = pieces[-1][:-1]
    return [p for p in pieces if p]


def table(headers: Sequence[str] | None, rows: Sequence[Sequence[str]], columns: int | None = None) -> str:
    """The rows under their headers (None: no header line), fitted to `columns` (default:
    the terminal's width)."""
    columns = columns or width()
    every = ([list(headers)] if headers else []) + [list(r) for r in rows]
    widths = [max(len(r[i]) for r in every) for i in range(len(every[0]) - 1)] if every else []
    indent = sum(widths) + GAP * len(widths)
    room = max(MIN_LAST, columns - indent)
    out = []
    for r in every:
        left = "".join(cell.ljust(w + GAP) for cell, w in zip(r, widths))
        lines = wrap(r[-1], room)
        out.append((left + lines[0]).rstrip())
        out += [(" " * indent + line).rstrip() for line in lines[1:]]
    return "\n".join(out)


def paragraph(text: str, columns: int | None = None) -> str:
    """A note under a table, wrapped to the terminal between words."""
    return "\n".join(textwrap.wrap(text, columns or width(), break_long_words=False, break_on_hyphens=False))


def echo_table(headers: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> None:
    typer.echo(table(headers, rows))
