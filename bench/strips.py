"""The README's two animation strips (issue 15), made by dreamvid itself (render.sheet.grid):

* docs/gallery/cadence.jpg: frames 30-35 of samples/bunny.mp4, the source and the `video`
  preset at cadence 1 and 3 (30 and 33 dreamed, the others built from the two around them);
* docs/gallery/audio-zoom.jpg: a zoom into samples/chelsea.jpg that follows the soundtrack
  of samples/bunny.mp4 (`--zoom "1 + 0.8*onset" --rotate "12*bass"`), every 3rd frame with
  its time and onset (from OUTPUT.params.json).

`python -m bench.strips [--out docs/gallery]` (about two minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
CELL = 200  # px, longest side of a picture in a strip
QUALITY = 85  # JPEG


def _frames(folder: Path, indices) -> list[np.ndarray]:
    from dreamvid import media

    return [media.read_image(media.frame_path(folder, i)) for i in indices]


def _save(image: np.ndarray, path: Path) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    return path


def cadence_strip(out: Path, tmp: Path) -> Path:
    from dreamvid import media
    from dreamvid.render import render_video
    from dreamvid.render.sheet import grid

    shown = range(30, 36)
    rows = [[f for i, f in media.read_frames(SAMPLES / "bunny.mp4", start=30, end=36)]]
    for cadence in (1, 3):
        folder = tmp / f"bunny_c{cadence}"
        render_video(SAMPLES / "bunny.mp4", folder, preset="video", cadence=cadence, end=36)
        rows.append(_frames(folder, shown))
    sheet = grid(tuple(tuple(r) for r in rows), columns=[f"frame {i}" for i in shown],
                 rows=["source", "cadence 1", "cadence 3"], cell_size=CELL,
                 caption=[("dreamvid video samples/bunny.mp4 --cadence 3: frames 30 and 33 are dreamed, 31, 32, 34, "
                           "35 are built from the two dreamed frames around them along the source flow")])
    return _save(sheet.image, out / "cadence.jpg")


def audio_zoom_strip(out: Path, tmp: Path) -> Path:
    from dreamvid.render import render_zoom
    from dreamvid.render.sheet import grid

    folder = tmp / "zoom"
    render_zoom(SAMPLES / "chelsea.jpg", folder, audio=SAMPLES / "bunny.mp4", zoom="1 + 0.8*onset",
                rotate="12*bass", max_size=192, fps="8", duration=3.0)
    rows = json.loads((tmp / "zoom.params.json").read_text())["frames"]
    shown = list(range(0, len(rows), 3))[:8]
    pictures = _frames(folder, shown)
    under = [[[f"t {rows[i]['t']:.2f} s", f"zoom {rows[i]['zoom']:.2f}/s"] for i in shown]]
    sheet = grid((tuple(pictures),), under=under, cell_size=CELL,
                 caption=[('dreamvid zoom samples/chelsea.jpg --audio samples/bunny.mp4 --zoom "1 + 0.8*onset" '
                           '--rotate "12*bass" --fps 8 --duration 3: the zoom speeds up on each beat')])
    return _save(sheet.image, out / "audio-zoom.jpg")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.strips", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dreamvid-strips-") as tmp:
        for made in (cadence_strip(args.out, Path(tmp)), audio_zoom_strip(args.out, Path(tmp))):
            print(made, f"{made.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
