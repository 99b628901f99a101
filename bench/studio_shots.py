"""Screenshots of the studio's page in each state a person meets, at a desktop and a phone width,
in headless Chromium against a real studio with the bundled model (docs/studio/*.jpg, for
docs/web.md; look at them after a change to the page).

    python -m bench.studio_shots [--out docs/studio]     (about 3 minutes on 2 cores)

States: the first screen; a photo chosen (looks, essentials); a refused upload; a refused
value; a still dreaming; a still done (before/after); advanced open; a clip done (poster);
a sweep done; the token page.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "studio"
SIZES = {"desktop": (1280, 860), "phone": (390, 800)}
WIDTH = {"desktop": 960, "phone": 390}  # px of the kept picture
QUALITY = 72  # JPEG
WAIT = 300  # s


class Page:
    def __init__(self, url: str, size: tuple[int, int], profile: Path):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                     "--disable-background-networking", f"--user-data-dir={profile}", "--force-device-scale-factor=1"):
            options.add_argument(flag)
        self.d = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        self.d.set_window_size(*size)
        inner = self.d.execute_script("return [window.innerWidth, window.innerHeight]")
        self.d.set_window_size(2 * size[0] - inner[0], 2 * size[1] - inner[1])  # the viewport is `size`
        self.url = url

    def until(self, script: str, timeout: float = WAIT):
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.d, timeout).until(lambda d: d.execute_script(script))

    def css(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.d.find_element(By.CSS_SELECTOR, selector)

    def type(self, name: str, value: str) -> None:
        box = self.css(f"#new .field [name={name}]")
        box.clear()
        box.send_keys(value)

    def click(self, selector: str) -> None:
        element = self.css(selector)
        self.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def show(self, selector: str, block: str = "start") -> None:
        self.d.execute_script(f"document.querySelector({selector!r}).scrollIntoView({{block: {block!r}}})")
        time.sleep(0.4)

    def shot(self, path: Path, width: int) -> None:
        png = path.with_suffix(".png")
        self.d.save_screenshot(str(png))
        image = cv2.imread(str(png))
        h, w = image.shape[:2]
        if w > width:
            image = cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
        png.unlink()
        print(f"{path} ({path.stat().st_size // 1024} KB)")

    def quit(self) -> None:
        self.d.quit()


def states(page: Page, out: Path, kind: str, tmp: Path) -> None:
    """Walk one browser through the states, a picture of each."""
    width = WIDTH[kind]
    page.d.get(page.url)
    page.until("return document.querySelectorAll('#layers-short input:checked').length > 0")
    time.sleep(0.5)
    page.shot(out / f"{kind}-1-first-screen.jpg", width)

    bad = tmp / "holiday.png"
    bad.write_text("not a picture")
    page.css("#file").send_keys(str(bad))
    page.until("return document.querySelector('#upload-error').textContent !== ''")
    page.show("#drop", "start")
    page.shot(out / f"{kind}-2-refused-upload.jpg", width)

    page.css("#file").send_keys(str(ROOT / "samples" / "chelsea.jpg"))
    page.until("const t = document.querySelector('#thumb'); return !t.hidden && t.naturalWidth > 0")
    page.show("#presets", "start")
    page.shot(out / f"{kind}-3-looks.jpg", width)

    page.click("#presets [data-preset=coral]")
    page.type("max_size", "32")
    page.click("#dream")
    page.until("return document.querySelector('.field[data-name=max_size] .field-error').textContent !== ''")
    time.sleep(0.4)
    page.shot(out / f"{kind}-4-refused-value.jpg", width)

    page.type("max_size", "320")
    page.click("#dream")
    page.until("const j = document.querySelector('.job[data-status=running] img.result');"
               "return j !== null && !j.hidden && j.naturalWidth > 0")
    time.sleep(1.0)
    page.shot(out / f"{kind}-5-dreaming.jpg", width)
    page.until("return document.querySelector('.job[data-status=done] .compare:not([hidden])') !== null")
    page.show(".job", "start")
    page.d.execute_script("const s = document.querySelector('.job .split'); s.value = 35;"
                          "s.dispatchEvent(new Event('input'))")
    time.sleep(0.4)
    page.shot(out / f"{kind}-6-before-after.jpg", width)

    page.click(".job .reuse")  # "reuse these settings": the form fills in again, Advanced open
    time.sleep(1.0)
    page.click("#advanced > summary")
    page.show("#advanced", "start")
    page.shot(out / f"{kind}-7-advanced.jpg", width)


def clip_and_sweep(page: Page, out: Path, kind: str) -> None:
    width = WIDTH[kind]
    page.d.get(page.url)
    page.until("return document.querySelectorAll('#layers-short input:checked').length > 0")
    page.css("#file").send_keys(str(ROOT / "samples" / "bunny.mp4"))
    page.until("return document.querySelector('#modes [data-mode=video]').getAttribute('aria-checked') === 'true'")
    page.until("const t = document.querySelector('#thumb'); return !t.hidden && t.naturalWidth > 0")
    page.type("max_size", "192")
    page.type("end", "f12")
    dream(page, "return document.querySelector('.job[data-status=done] video:not([hidden])') !== null",
          out / f"{kind}-8-clip.jpg", width)

    page.css("#file").send_keys(str(ROOT / "samples" / "astronaut.jpg"))
    page.until("return document.querySelector('#drop-text').textContent.startsWith('astronaut')")
    page.click("#modes [data-mode=sweep]")
    page.type("vary", "step=0.01,0.03\nnum_octave=2,4")
    page.type("max_size", "160")
    dream(page, "const i = document.querySelector('.job[data-status=done][data-id] img.result');"
                "return i !== null && !i.hidden && i.naturalWidth > 0", out / f"{kind}-9-sweep.jpg", width)


def dream(page: Page, done: str, path: Path, width: int) -> None:
    """Dream, wait for `done` (a script) and take the newest card."""
    page.click("#dream")
    page.until(done, WAIT * 2)
    time.sleep(1.0)
    page.show(".job", "start")
    page.shot(path, width)


def token_page(url: str, out: Path, profile: Path) -> None:
    page = Page(url.split("?")[0], SIZES["phone"], profile)
    try:
        page.d.get(page.url)
        page.until("return document.querySelector('#token') !== null")
        page.shot(out / "phone-10-token.jpg", WIDTH["phone"])
    finally:
        page.quit()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--kinds", nargs="*", default=list(SIZES))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from dreamvid.cli.common import import_tensorflow_quietly
    from dreamvid.web.jobs import Studio
    from dreamvid.web.server import running

    import_tensorflow_quietly()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for kind in args.kinds:
            studio = Studio(tmp / f"data-{kind}")
            with running(studio) as url:
                page = Page(url, SIZES[kind], tmp / f"profile-{kind}")
                try:
                    states(page, args.out, kind, tmp)
                    if kind == "desktop":
                        clip_and_sweep(page, args.out, kind)
                finally:
                    page.quit()
        studio = Studio(tmp / "data-token")
        with running(studio, token="a-token-for-the-screenshot") as url:
            token_page(url, args.out, tmp / "profile-token")
    return 0


if __name__ == "__main__":
    sys.exit(main())
