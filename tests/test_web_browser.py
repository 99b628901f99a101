"""The studio's page in a real browser: Debian's Chromium, headless, through its chromedriver,
against the studio served by uvicorn on a free loopback port. One browser for the module
(a fresh profile, so no cookie survives from another test module); each test a fresh studio.

What a person meets is checked where they meet it: the sweep made from the form, an upload
error beside the drop zone with the refused file gone, a refused value beside its field, the
new job's card in sight, a double click that makes one job, and the gallery still there after
a link from another site. Every wait is bounded in time.
"""
from __future__ import annotations

import http.server
import shutil
import threading
from pathlib import Path

import pytest

from .webtools import SAMPLE, WAIT, Studio

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1000")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver "
                                "(apt-get install chromium chromium-driver; .ci/run installs them)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROME_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # no driver download
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, tmp_path, tiny):
    """(driver, url, studio): the page of a fresh studio offering the tiny network, ready."""
    from dreamvid.web.server import running

    studio = Studio(tmp_path / "data", {"tiny": tiny})
    with running(studio) as url:
        browser.delete_all_cookies()
        browser.set_window_size(1400, 1000)
        browser.get(url)
        until(browser, "#layers-short input:checked")
        yield browser, url, studio


def until(driver, css: str = None, script: str = None, timeout: float = WAIT):
    """Wait for a CSS selector to match (returns the elements) or a script to return true."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout)
    if css is not None:
        return wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, css))
    return wait.until(lambda d: d.execute_script(script))


def find(driver, css: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def click(driver, css: str) -> None:
    """Click as a person does: the element scrolled to the middle of the window first."""
    element = find(driver, css)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def choose_photo(driver, path: Path = SAMPLE) -> None:
    find(driver, "#file").send_keys(str(path))


def use_tiny(driver, **values) -> None:
    """Advanced: the tiny network; then type `values` into their fields (essential or advanced)."""
    from selenium.webdriver.support.ui import Select

    click(driver, "#advanced > summary")
    Select(find(driver, "#model")).select_by_value("tiny")
    until(driver, script="return [...document.querySelectorAll('#layers-box .layer span')]"
                         ".some(s => s.textContent === 'conv2')")
    for name, value in values.items():
        field = find(driver, f"#new .field [name={name}]")
        field.clear()
        field.send_keys(str(value))


def in_view(driver, element) -> bool:
    return driver.execute_script("const r = arguments[0].getBoundingClientRect();"
                                 "return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight", element)


def jobs(driver) -> list:
    return driver.execute_script("const r = await fetch('/api/jobs'); return (await r.json()).jobs")


def test_the_pages_fields_take_their_limits_and_help_from_the_catalogue(page):
    from dreamvid import params

    driver, _, _ = page
    octaves, step = params.get("dream", "num_octave"), params.get("dream", "step")
    box = find(driver, "#f-num_octave")
    assert (box.get_attribute("min"), box.get_attribute("max")) == (str(octaves.lo), str(octaves.hi))
    assert find(driver, "#f-step").get_attribute("max") == "1" and not find(driver, "#f-step").get_attribute("min")
    help_line = find(driver, ".field[data-name=step] .help").text
    assert step.help in help_line and f"Range: {step.range_text()}." in help_line
    assert find(driver, "#f-step").get_attribute("placeholder") == "0.02"  # the deepdream preset's, greyed


def test_a_sweep_is_made_from_the_form(page):
    driver, _, _ = page
    choose_photo(driver)
    until(driver, script="return !document.querySelector('#dream').disabled")
    click(driver, "#modes [data-mode=sweep]")
    use_tiny(driver, vary="step=0.01,0.03", max_size=64, iterations=1, num_octave=1)
    click(driver, "#dream")
    until(driver, script="const i = document.querySelector('.job[data-status=done] img.result');"
                         "return i !== null && !i.hidden && i.complete && i.naturalWidth > 0")
    [job] = jobs(driver)
    assert job["mode"] == "sweep" and job["result"]["items"] == 2, job
    assert "--vary step=0.01,0.03" in job["command"]


def test_an_upload_error_shows_beside_the_drop_zone_and_the_refused_file_goes(page, tmp_path):
    driver, _, _ = page
    choose_photo(driver)
    until(driver, script="const t = document.querySelector('#thumb'); return !t.hidden && t.naturalWidth > 0")
    driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")  # wherever the user is on the page
    bad = tmp_path / "notes.png"
    bad.write_text("just some text, not a picture")
    choose_photo(driver, bad)
    error = until(driver, "#upload-error:not(:empty)")[0]
    assert "notes.png" in error.text and "not a complete" in error.text
    assert in_view(driver, error)
    gap = driver.execute_script("return arguments[0].getBoundingClientRect().top - "
                                "document.querySelector('#drop').getBoundingClientRect().bottom", error)
    assert 0 <= gap < 40  # right under the drop zone
    assert not find(driver, "#thumb").is_displayed() and "Drop a photo" in find(driver, "#drop-text").text
    assert not find(driver, "#dream").is_enabled()


def test_a_refused_value_shows_beside_its_field_and_a_new_jobs_card_comes_into_sight(page):
    driver, _, _ = page
    driver.set_window_size(420, 900)  # a phone: the gallery is below the form
    choose_photo(driver)
    until(driver, script="return !document.querySelector('#dream').disabled")
    use_tiny(driver, max_size=32, iterations=1, num_octave=1)
    click(driver, "#dream")
    error = until(driver, ".field[data-name=max_size] .field-error:not(:empty)")[0]
    assert "max_size 32 makes this photo 32x21 px" in error.text and in_view(driver, error)
    assert jobs(driver) == []
    field = find(driver, "#f-max_size")
    field.clear()
    field.send_keys("64")
    click(driver, "#dream")
    card = until(driver, ".job")[0]
    until(driver, script="const r = document.querySelector('.job').getBoundingClientRect();"
                         "return r.top >= 0 && r.top < window.innerHeight - 40", timeout=5)
    assert driver.switch_to.active_element == card  # focused too: a screen reader hears it


def test_a_double_click_on_dream_makes_one_job(page):
    from selenium.webdriver import ActionChains

    driver, _, _ = page
    choose_photo(driver)
    until(driver, script="return !document.querySelector('#dream').disabled")
    use_tiny(driver, max_size=64, iterations=1, num_octave=1)
    ActionChains(driver).double_click(find(driver, "#dream")).perform()
    until(driver, ".job[data-status=done]")
    assert len(jobs(driver)) == 1


class _Other(http.server.BaseHTTPRequestHandler):
    """Another site: a page with a link to the studio."""

    target = ""

    def do_GET(self):  # noqa: N802 - http.server's name
        body = f'<!doctype html><a id="go" href="{self.target}">my studio</a>'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_gallery_is_still_there_after_a_link_from_another_site(page):
    driver, url, _ = page
    choose_photo(driver)
    until(driver, script="return !document.querySelector('#dream').disabled")
    use_tiny(driver, max_size=64, iterations=1, num_octave=1)
    click(driver, "#dream")
    until(driver, ".job[data-status=done]")
    [job] = jobs(driver)

    handler = type("Other", (_Other,), {"target": url})
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    try:
        driver.get(f"http://localhost:{other.server_address[1]}/")  # another site: localhost is not 127.0.0.1
        click(driver, "#go")
        until(driver, f".job[data-id='{job['id']}']")
        for typed in range(2):  # and again, typed in the address bar
            driver.get(url)
            until(driver, f".job[data-id='{job['id']}']")
    finally:
        other.shutdown()


@pytest.mark.slow
def test_a_browser_dreams_a_photo_with_the_bundled_model_and_compares_before_and_after(page, tmp_path):
    driver, _, _ = page
    choose_photo(driver)
    until(driver, script="return !document.querySelector('#dream').disabled")
    for name, value in (("max_size", "128"), ("iterations", "3"), ("num_octave", "2"), ("step", "0.05")):
        find(driver, f"#essentials [name={name}]").send_keys(value)
    click(driver, "#dream")
    until(driver, script="const i = document.querySelector('.job[data-status=done] .compare img.after');"
                         "return i !== null && i.complete && i.naturalWidth > 0 && !i.closest('.compare').hidden")
    size = driver.execute_script("const i = document.querySelector('.compare img.after');"
                                 "return [i.naturalWidth, i.naturalHeight]")
    assert size == [128, 85]  # chelsea.jpg (451x300) dreamed at max_size 128
    assert "made in" in find(driver, ".job .info").text
    clip = driver.execute_script("return getComputedStyle(document.querySelector('.compare img.after')).clipPath")
    assert clip.startswith("inset(0") and "50%" in clip  # the slider starts half way: before | after
    shot = tmp_path / "studio.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
