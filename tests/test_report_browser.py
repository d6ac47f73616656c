"""The report in a real browser: headless Chromium loads it offline, every image decodes, no console errors.

Chromium comes from Debian (`make browser` installs `chromium` and `chromium-driver` where missing; `make
test` depends on it). A full-page screenshot of each report is kept in reports/artifacts/ for a person to
look at.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.scenarios import ROOT

from sim.cli import main

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "reports" / "artifacts"
#: Flags for a closed network and a throw-away profile (the machine has no network but package registries).
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1200,900")

#: In CI (`CI` set, `make test` having run `make browser` as root) a missing browser is a failure, not a skip.
pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()) and not os.environ.get("CI"),
                                reason="Chromium not installed: run `make browser` (Debian: chromium, chromium-driver)")


def render(html: Path, screenshot: Path) -> dict:
    """Open ``html`` in headless Chromium; the images' load state, the console errors, a full-page screenshot."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.get(html.resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => ({src: i.src.slice(0, 40), complete: i.complete, "
            "width: i.naturalWidth}))")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1200, min(int(height) + 40, 30000))
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshot))
        errors = [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
        external = driver.execute_script(
            "return performance.getEntriesByType('resource').map(r => r.name)"
            ".filter(n => !n.startsWith('data:') && !n.startsWith('file:'))")
        return {"images": images, "errors": errors, "external": external}
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """A run report (scenario with a baseline), a comparison report and a sweep report (synthetic directory),
    built by the CLI."""
    from support.reports import small_comparison, small_run, synthetic_sweep

    base = tmp_path_factory.mktemp("browser")
    run_dir = small_run(base / "run")
    comparison_dir = small_comparison(base / "comparison")
    sweep_dir = synthetic_sweep(base / "sweep", points=40, replications=3)
    built = {}
    for kind, folder in (("run", run_dir), ("comparison", comparison_dir), ("sweep", sweep_dir)):
        result = CliRunner().invoke(main, ["report", str(folder), "-o", str(base / f"{kind}.html")])
        assert result.exit_code == 0, result.output
        built[kind] = base / f"{kind}.html"
    return built


@pytest.mark.parametrize("kind", ["run", "comparison", "sweep"])
def test_report_renders_in_chromium(reports: dict[str, Path], kind: str) -> None:
    screenshot = ARTIFACTS / f"report-{kind}.png"
    page = render(reports[kind], screenshot)
    assert page["images"], "the report has no images"
    broken = [image for image in page["images"] if not image["complete"] or image["width"] <= 0]
    assert not broken, f"images that did not load: {broken}"
    assert all(image["src"].startswith("data:image/png;base64,") for image in page["images"])
    assert not page["errors"], f"console errors: {page['errors']}"
    assert not page["external"], f"the page fetched: {page['external']}"
    assert screenshot.stat().st_size > 10_000


def navigate(html: Path) -> dict:
    """Scroll ``html`` to its end in headless Chromium and follow the contents' link to the last chart: where
    the contents bar and that chart's heading are then."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.get(html.resolve().as_uri())
        bar = "return document.querySelector('nav.contents').getBoundingClientRect().toJSON()"
        page_height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.execute_script("window.scrollTo(0, document.documentElement.scrollHeight)")
        at_end = driver.execute_script(bar)
        links = driver.find_elements(By.CSS_SELECTOR, "nav.contents a")
        chart_links = [link for link in links if link.get_attribute("href").split("#")[-1] not in
                       ("top", "assumptions", "methods")]
        target = chart_links[-1].get_attribute("href").split("#")[-1]
        driver.execute_script("window.scrollTo(0, 0)")
        chart_links[-1].click()
        heading = driver.execute_script(f"return document.querySelector('#{target} h2').getBoundingClientRect()"
                                        ".toJSON()")
        return {"height": page_height, "bar_at_end": at_end, "links": len(links), "bar": driver.execute_script(bar),
                "heading": heading, "scrolled": driver.execute_script("return window.scrollY")}
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.parametrize("kind", ["run", "sweep"])
def test_the_contents_stay_in_view_on_a_long_page(reports: dict[str, Path], kind: str) -> None:
    """Was: a list of charts at the top of a page of about 11,500 px, gone once the reader scrolled."""
    seen = navigate(reports[kind])
    assert seen["height"] > 5_000                                        # a long page
    assert seen["bar_at_end"]["top"] == 0 and seen["bar_at_end"]["height"] < 90   # the bar at the end too
    assert seen["links"] >= 5
    assert seen["scrolled"] > 2_000                                      # the link took the reader there
    assert seen["bar"]["bottom"] <= seen["heading"]["top"] < seen["bar"]["bottom"] + 100   # not under the bar
