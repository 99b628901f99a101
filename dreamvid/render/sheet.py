"""Contact sheets and labelled grids: pictures in cells, text around them. Drawing only.

One layout serves both the timelapse contact sheet (pictures in reading order, lines of
text under each) and the sweep grid (a value per column on top, per row on the left, the
fixed settings in a caption). The result carries the box of every picture, so callers and
tests know exactly where each one landed.

Text is Pillow's bundled TrueType font (`ImageFont.load_default(size=...)`, Pillow >= 10.1),
crisp at any size and needing no system fonts.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..dream import fit_max_size

BACKGROUND = (22, 22, 24)  # near-black: dream colours read best on dark
TEXT = (236, 236, 236)  # first line under a picture, axis values
TEXT_DIM = (150, 150, 156)  # further lines, caption
PAD = 12  # px; margin around the sheet and gap between cells
LINE_GAP = 3  # px between text lines
FONT_SIZE = 15  # px; labels under pictures and axis values
SMALL_FONT_SIZE = 13  # px; second and later lines, caption
MAX_ROW_LABEL = 220  # px; row labels wrap beyond this width
DEFAULT_CELL_SIZE = 384  # px; longest side of a picture in a sheet (the full-size files are kept apart)

Box = tuple[int, int, int, int]  # (x, y, width, height) in sheet pixels


@dataclass(frozen=True)
class Sheet:
    """A drawn sheet: `image` (H, W, 3) uint8 RGB; `boxes[r][c]` the (x, y, w, h) of each picture."""

    image: np.ndarray
    boxes: tuple[tuple[Box, ...], ...]


@functools.lru_cache(maxsize=8)
def font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def text_width(text: str, size: int = FONT_SIZE) -> int:
    return int(np.ceil(font(size).getlength(text)))


def line_height(size: int) -> int:
    return int(round(size * 1.25))


def wrap(text: str, width: int, size: int = FONT_SIZE, sep: str = " · ") -> list[str]:
    """Break `text` into lines no wider than `width` px, at `sep` first, then at spaces.

    A single word wider than `width` stays on its own line (never cut mid-word).
    """
    return [short for line in _greedy(text, sep, width, size)
            for short in (_greedy(line, " ", width, size) if text_width(line, size) > width else [line])]


def _greedy(text: str, sep: str, width: int, size: int) -> list[str]:
    """Fill lines piece by piece, breaking at `sep` before a line would pass `width` px."""
    lines, current = [], ""
    for piece in text.split(sep):
        candidate = f"{current}{sep}{piece}" if current else piece
        if current and text_width(candidate, size) > width:
            lines.append(current)
            current = piece
        else:
            current = candidate
    return lines + [current]


def fit(image: np.ndarray, cell_size: int | None) -> np.ndarray:
    """Shrink (H, W, 3) uint8 so its longest side is at most cell_size px (never enlarges)."""
    return fit_max_size(image, cell_size)


def _text_block_height(lines: Sequence[tuple[str, int, tuple]]) -> int:
    return sum(line_height(size) + LINE_GAP for _, size, _ in lines)


def grid(cells: Sequence[Sequence[np.ndarray]], *, under: Sequence[Sequence[Sequence[str]]] | None = None,
         columns: Sequence[str] | None = None, rows: Sequence[str] | None = None,
         caption: Sequence[str] = (), cell_size: int | None = DEFAULT_CELL_SIZE) -> Sheet:
    """Draw pictures in a grid with labels; returns the Sheet.

    cells: rows of (H, W, 3) uint8 RGB pictures (a row may be shorter than the others);
    each is shrunk to `cell_size` and centred in its cell. under[r][c]: lines of text under
    picture (r, c), the first in the bright font. columns / rows: one label per column (on
    top) / per row (on the left). caption: paragraphs at the bottom, wrapped to the width.
    """
    pics = [[fit(np.asarray(c, np.uint8), cell_size) for c in row] for row in cells]
    n_rows, n_cols = len(pics), max((len(r) for r in pics), default=0)
    if not n_rows or not n_cols:
        raise ValueError("a sheet needs at least one picture")
    cell_w = max(p.shape[1] for row in pics for p in row)
    cell_h = max(p.shape[0] for row in pics for p in row)
    # Text under pictures is wrapped to the cell width, so every label stays in its column.
    under_lines = [[_wrap_lines(under[r][c] if under and c < len(under[r]) else (), cell_w)
                    for c in range(len(pics[r]))] for r in range(n_rows)]
    under_h = max((_text_block_height(ls) for row in under_lines for ls in row), default=0)
    row_lines = [wrap(label, MAX_ROW_LABEL) for label in rows] if rows else []
    row_w = max((text_width(ln) for ls in row_lines for ln in ls), default=0)
    left = PAD + (row_w + PAD if rows else 0)
    col_lines = [wrap(label, cell_w) for label in columns] if columns else []
    head_h = max((len(ls) * (line_height(FONT_SIZE) + LINE_GAP) for ls in col_lines), default=0)
    top = PAD + (head_h + LINE_GAP if columns else 0)
    step_x = cell_w + PAD
    step_y = cell_h + (under_h + LINE_GAP if under_h else 0) + PAD
    width = left + n_cols * step_x
    caption_w = width - 2 * PAD
    caption_lines = [ln for para in caption for ln in wrap(para, caption_w, SMALL_FONT_SIZE)]
    caption_h = len(caption_lines) * (line_height(SMALL_FONT_SIZE) + LINE_GAP)
    height = top + n_rows * step_y + (caption_h + PAD // 2 if caption_lines else 0)

    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = BACKGROUND
    boxes = []
    for r, row in enumerate(pics):
        row_boxes = []
        for c, pic in enumerate(row):
            h, w = pic.shape[:2]
            x = left + c * step_x + (cell_w - w) // 2
            y = top + r * step_y + (cell_h - h) // 2
            canvas[y:y + h, x:x + w] = pic
            row_boxes.append((x, y, w, h))
        boxes.append(tuple(row_boxes))

    texts = []  # (x, y, text, size, colour, anchor)
    for r in range(n_rows):
        for c in range(len(pics[r])):
            cx = left + c * step_x + cell_w // 2
            y = top + r * step_y + cell_h + LINE_GAP * 2
            for line, size, colour in under_lines[r][c]:
                texts.append((cx, y, line, size, colour, "ma"))
                y += line_height(size) + LINE_GAP
    for c, lines in enumerate(col_lines):
        cx = left + c * step_x + cell_w // 2
        y = PAD
        for line in lines:
            texts.append((cx, y, line, FONT_SIZE, TEXT, "ma"))
            y += line_height(FONT_SIZE) + LINE_GAP
    for r, lines in enumerate(row_lines):
        block = len(lines) * (line_height(FONT_SIZE) + LINE_GAP)
        y = top + r * step_y + (cell_h - block) // 2
        for line in lines:
            texts.append((PAD + row_w, y, line, FONT_SIZE, TEXT, "ra"))
            y += line_height(FONT_SIZE) + LINE_GAP
    y = top + n_rows * step_y
    for line in caption_lines:
        texts.append((PAD, y, line, SMALL_FONT_SIZE, TEXT_DIM, "la"))
        y += line_height(SMALL_FONT_SIZE) + LINE_GAP
    return Sheet(_draw_texts(canvas, texts), tuple(boxes))


def contact_sheet(pictures: Sequence[np.ndarray], labels: Sequence[Sequence[str]], *, columns: int | None = None,
                  caption: Sequence[str] = (), cell_size: int | None = DEFAULT_CELL_SIZE) -> Sheet:
    """Pictures in reading order, `labels[i]` (lines) under picture i; `columns` defaults
    to the count that makes the sheet closest to 16:9."""
    n = len(pictures)
    if n == 0:
        raise ValueError("a contact sheet needs at least one picture")
    if columns is None:
        h, w = fit(np.asarray(pictures[0]), cell_size).shape[:2]
        columns = min(range(1, n + 1),
                      key=lambda c: abs(np.log((c * w) / (-(-n // c) * h)) - np.log(16 / 9)))
    rows = [list(pictures[i:i + columns]) for i in range(0, n, columns)]
    under = [list(labels[i:i + columns]) for i in range(0, n, columns)]
    return grid(rows, under=under, caption=caption, cell_size=cell_size)


def label_frame(image: np.ndarray, text: str, size: int = FONT_SIZE) -> np.ndarray:
    """`image` (H, W, 3) uint8 with `text` in its bottom-left corner on a dark band (video frames)."""
    from PIL import Image, ImageDraw

    pil = Image.fromarray(np.asarray(image, np.uint8)).convert("RGBA")
    overlay = Image.new("RGBA", pil.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    f = font(size)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=f)
    margin = max(4, size // 3)
    h = pil.size[1]
    box = (0, h - (y1 - y0) - 3 * margin, x1 - x0 + 2 * margin + margin, h)
    draw.rectangle(box, fill=(0, 0, 0, 150))
    draw.text((margin - x0 + margin // 2, h - (y1 - y0) - 1.5 * margin - y0), text, font=f, fill=TEXT + (255,))
    return np.asarray(Image.alpha_composite(pil, overlay).convert("RGB"))


def _wrap_lines(lines: Sequence[str], width: int) -> list[tuple[str, int, tuple]]:
    """(text, font size, colour) per drawn line: the first given line bright, the rest small."""
    out = []
    for k, line in enumerate(lines):
        size, colour = (FONT_SIZE, TEXT) if k == 0 else (SMALL_FONT_SIZE, TEXT_DIM)
        out += [(piece, size, colour) for piece in wrap(line, width, size)]
    return out


def _draw_texts(canvas: np.ndarray, texts) -> np.ndarray:
    from PIL import Image, ImageDraw

    pil = Image.fromarray(canvas)
    draw = ImageDraw.Draw(pil)
    for x, y, text, size, colour, anchor in texts:
        draw.text((x, y), text, font=font(size), fill=colour, anchor=anchor)
    return np.asarray(pil).copy()


# ---- the words drawn: settings as short labels ---------------------------------------------

def value_text(key: str, value) -> str:
    """One setting's value as a label shows it: 0.01, 3, block4c_out+block5c_out:0.5, none."""
    if value is None:
        return "none"
    if key == "layers":
        items = value.items() if isinstance(value, dict) else value
        return "+".join(name if w == 1 else f"{name}:{w:g}" for name, w in items) or "default"
    if key in ("model", "weights") and isinstance(value, str):
        return value.replace("\\", "/").rsplit("/", 1)[-1]  # a .keras path: its file name
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def setting_text(key: str, value) -> str:
    """`step 0.01`, `layers block4c_out`: a key and its value, in the users' vocabulary."""
    if key == "model":
        return value_text(key, value)
    return f"{key} {value_text(key, value)}"


def settings_text(settings, keys) -> str:
    """Several settings of a DreamSettings-like object as one line joined by ' · '."""
    return " · ".join(setting_text(k, getattr(settings, k)) for k in keys)
