"""The studio's preset pictures (dreamvid/web/static/presets/NAME.jpg): samples/chelsea.jpg
dreamed by dreamvid itself with each bundled preset whose network is bundled (a preset that
downloads its network shows its words only), small, so the page can show a look as a picture.

`make studio-presets` or `python -m bench.studio_presets [--out DIR]` (about a minute on 2 cores).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "samples" / "chelsea.jpg"
OUT = ROOT / "dreamvid" / "web" / "static" / "presets"
SIZE = 240  # px, longest side: the page shows them ~120 px wide, twice that for sharp screens
QUALITY = 80  # JPEG; ~10 KB a picture


def bundled_presets() -> list[str]:
    from dreamvid import models, presets

    return [n for n in presets.available()
            if models.MODELS.get(presets.resolve(n).dream.model, models.MODELS["efficientnet_lite0"]).source == "bundled"]


def make(name: str, out: Path) -> Path:
    """`out`/NAME.jpg: the sample dreamed with preset `name` by the CLI (as a user would)."""
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / f"{name}.png"
        subprocess.run([sys.executable, "-m", "dreamvid", "-q", "image", str(SOURCE), "-o", str(png), "--preset",
                        name, "--max-size", str(SIZE)], check=True, stdout=subprocess.DEVNULL)
        image = cv2.imread(str(png))
        target = out / f"{name}.jpg"
        cv2.imwrite(str(target), image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in bundled_presets():
        path = make(name, args.out)
        print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
