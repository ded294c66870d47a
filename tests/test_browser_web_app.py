"""End to end: the web demo (helpers.web_app) in headless Chromium, driven through Playwright as a person would.

Uploads a whole photo with a face, flags its verdict, then a text file and a photo without a face,
and checks what the page shows each time. Every request the page makes is recorded: none may leave
this machine. Screenshots go to $DEEPFAKE_SCREENSHOTS/web-app (default .cache/screenshots/web-app).
Skipped, with the reason, where Chromium or Playwright is missing; `pytest -m "not browser"` leaves it out.
"""
import json
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

from helpers import config, web_app
from helpers.detector import as_detector
from tests.conftest import free_port
from tests.test_browser_demo import browser  # noqa: F401  (a fixture: Debian's Chromium through Playwright)

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install playwright")
expect = sync_api.expect

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(os.environ.get("DEEPFAKE_SCREENSHOTS", config.REPO_ROOT / ".cache/screenshots")) / "web-app"
PAGE_LOAD_MS = 60_000
ANALYSIS_MS = 60_000  # finding faces, scoring and Grad-CAM on a busy 2-core machine


@pytest.fixture(scope="module")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the web app: {SCREENSHOTS}")
    return SCREENSHOTS


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> dict:
    return {path.name: path for path in web_app.write_examples(tmp_path_factory.mktemp("examples"))}


@pytest.fixture(scope="module")
def running_app(trained_model_dir, examples, tmp_path_factory):
    """(the app's URL, its flag folder), served on 127.0.0.1 for this module's test."""
    flag_dir = tmp_path_factory.mktemp("flags")
    app = web_app.build_app(as_detector(trained_model_dir), examples=list(examples.values()),
                            flag_dir=flag_dir)
    url = web_app.serve(app, host="127.0.0.1", port=free_port(), block=False, quiet=True)
    try:
        yield url, flag_dir
    finally:
        app.close()


def _upload(page, path: Path) -> None:
    """Clear the upload box if it holds a file, then put `path` into its file input."""
    clear = page.locator("#upload button[aria-label='Clear']")
    if clear.count():
        clear.click()
        expect(page.locator("#message")).to_contain_text("Upload a photo", timeout=ANALYSIS_MS)
    page.locator("#upload input[type=file]").set_input_files(str(path))


ALL_IDLE = ("() => [...document.querySelectorAll('[data-testid=status-tracker]')]"
            ".every(tracker => tracker.classList.contains('hide'))")


def _screenshot(page, path: Path) -> None:
    """The whole page, once no event is running (Gradio dims the outputs of a running one)."""
    page.wait_for_function(ALL_IDLE, timeout=ANALYSIS_MS)
    page.wait_for_timeout(300)  # the status overlays fade out in 0.1 s
    page.screenshot(path=path, full_page=True)


def _images_decoded(locator) -> list[int]:
    """The natural width of each image under `locator`, once decoded (0 would be a broken image)."""
    return [image.evaluate("img => img.decode().then(() => img.naturalWidth)") for image in locator.all()]


def test_the_web_app_in_chromium(browser, running_app, examples, screenshots, tmp_path):
    url, flag_dir = running_app
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list: milk, eggs\n")
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.set_default_timeout(PAGE_LOAD_MS)
    page.goto(url)
    message, table, gallery = page.locator("#message"), page.locator("#faces-table"), page.locator("#gallery")
    expect(page.locator("#model-description")).to_contain_text(re.compile(r"Model: efficientnet_lite0 at \d+ px"))

    # A whole photo with one face: boxed on the photo, one row, its crop and Grad-CAM overlay.
    _upload(page, examples["astronaut.png"])
    expect(message).to_contain_text(re.compile(r"astronaut\.png: 1 face found\. face 1: (real|fake) \(p\(fake\) "
                                               r"[01]\.\d{3}\)"), timeout=ANALYSIS_MS)
    rows = table.locator("tbody tr", has_text=re.compile(r"\S"))  # the table also holds an empty row, for sizing
    expect(rows).to_have_count(1)
    face, p_fake, label, box = (text.strip() for text in rows.locator("td").all_text_contents())
    assert face == "1" and 0 <= float(p_fake) <= 1 and label in ("real", "fake")
    assert re.fullmatch(r"(\d+, ){3}\d+", box)
    expect(gallery.locator("img")).to_have_count(2)
    widths = _images_decoded(page.locator("#photo img")) + _images_decoded(gallery.locator("img"))
    assert len(widths) == 3 and all(width > 0 for width in widths)
    _screenshot(page, screenshots / "1-photo-with-a-face.png")

    page.locator("#flag-wrongly-fake").click()
    expect(page.locator("#flag-message")).to_contain_text("Flagged astronaut.png as wrongly fake")
    (record,) = [json.loads(path.read_text()) for path in flag_dir.glob(f"*/{web_app.FLAG_RECORD}")]
    assert record["flag"] == "wrongly fake" and record["name"] == "astronaut.png" and len(record["faces"]) == 1
    _screenshot(page, screenshots / "2-flagged.png")

    # Not an image: the notebook demo's message, no picture, and nothing to flag.
    _upload(page, notes)
    expect(message).to_have_text("notes.txt was not analysed: not an image file PIL can read.", timeout=ANALYSIS_MS)
    expect(page.locator("#photo img")).to_have_count(0)
    expect(gallery.locator("img")).to_have_count(0)
    page.locator("#flag-wrongly-real").click()
    expect(page.locator("#flag-message")).to_contain_text("Nothing to flag: notes.txt got no verdict")
    _screenshot(page, screenshots / "3-not-an-image.png")

    # No face: "no face found" when asked to say so, then the whole image scored when asked to.
    page.get_by_label("find faces; if none, say 'no face found'").check()
    _upload(page, examples["coffee-no-face.png"])
    expect(message).to_contain_text("coffee-no-face.png was not analysed: no face found in this image.",
                                    timeout=ANALYSIS_MS)
    expect(page.locator("#photo img")).to_have_count(1)  # the photo, so one sees why
    expect(gallery.locator("img")).to_have_count(0)
    _screenshot(page, screenshots / "4-no-face-found.png")
    page.get_by_label("find faces; if none, score the whole image anyway").check()
    expect(message).to_contain_text(re.compile(r"coffee-no-face\.png, the whole image: (real|fake)"),
                                    timeout=ANALYSIS_MS)
    expect(message).to_contain_text("No face was found, so the whole image was scored")
    expect(rows).to_have_count(1)
    expect(rows.locator("td").first).to_have_text("whole image")
    _screenshot(page, screenshots / "5-no-face-scored-anyway.png")

    # An example is one click away.
    page.locator("#upload button[aria-label='Clear']").click()
    page.get_by_role("button", name="astronaut.png").click()
    expect(message).to_contain_text("astronaut.png: 1 face found", timeout=ANALYSIS_MS)
    _screenshot(page, screenshots / "6-example.png")
    page.close()

    assert len(requests) > 10  # the page, its scripts, styles and fonts, uploads, results
    elsewhere = [request for request in requests if not request.startswith(("data:", "blob:"))
                 and urlparse(request).hostname not in ("127.0.0.1", "localhost")]
    assert elsewhere == [], f"the page asked beyond this machine: {elsewhere}"
