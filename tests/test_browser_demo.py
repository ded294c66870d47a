"""End to end: lesson 07's upload app in real JupyterLab, driven by headless Chromium through Playwright.

Starts a JupyterLab server on the repository, opens notebooks/07_upload_demo.ipynb, runs every cell,
then uploads a face, a text file and another face through the FileUpload button, as a person would.
Screenshots of each state go to $DEEPFAKE_SCREENSHOTS/browser-demo (default .cache/screenshots/browser-demo).
Skipped, with the reason, where Chromium or Playwright is missing; `pytest -m "not browser"` leaves it out.
"""
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import config
from tests.conftest import free_port

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install playwright")
expect = sync_api.expect

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")  # the Debian package; Playwright's own browser downloads are not used
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
NOTEBOOK = "notebooks/07_upload_demo.ipynb"
KERNEL_STATUS = ".jp-StatusBar-TextItem[title^='Change kernel']"  # "Python 3 (ipykernel) | Idle"
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"  # warnings and tracebacks
SCREENSHOTS = Path(os.environ.get("DEEPFAKE_SCREENSHOTS", config.REPO_ROOT / ".cache/screenshots")) / "browser-demo"

# Generous: on a busy 2-core machine the kernel imports TensorFlow and may train the smoke model first.
SERVER_START_S = 120
PAGE_LOAD_S = 120
RUN_ALL_S = 600
UPLOAD_S = 120
RENDER_MS = 30_000  # for widgets to appear once the kernel has sent them

# JupyterLab user settings for the test server: never save the notebook (it is committed without
# outputs), start its kernel without the "Select Kernel" dialog, keep every cell in the DOM so that
# locators find them, and make no requests for news.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"autoStartDefaultKernel": True,
                                                                    "windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}


def _write_lab_settings(folder: Path) -> None:
    for name, values in LAB_SETTINGS.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _wait_until_ready(server: subprocess.Popen, base_url: str, token: str, log: Path) -> None:
    """Poll /api with the token until the server answers; fail early if it exits."""
    deadline = time.monotonic() + SERVER_START_S
    request = urllib.request.Request(f"{base_url}/api", headers={"Authorization": f"token {token}"})
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:  # not listening yet
            pass
        time.sleep(1)
    pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


def _stop(server: subprocess.Popen) -> None:
    """Terminate the server (it shuts its kernels down on SIGTERM); kill it if it does not stop."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def lab_url(dfdc, tmp_path_factory):
    """The URL of the upload notebook in a JupyterLab server on the repository, token included."""
    home = tmp_path_factory.mktemp("jupyterlab")
    _write_lab_settings(home / "settings")
    env = {**os.environ,
           "DEEPFAKE_PROFILE": "smoke",  # the timeouts above are sized for it
           "DEEPFAKE_DATA": str(dfdc),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    token, port = secrets.token_hex(16), free_port()
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--IdentityProvider.token={token}",
               f"--port={port}", "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={config.REPO_ROOT}",
               # JupyterLab checkpoints a notebook on opening it: keep that out of the repository
               f"--FileCheckpoints.checkpoint_dir={home / 'checkpoints'}"]
    if os.geteuid() == 0:  # CI containers run as root, which JupyterLab refuses unless told
        command.append("--allow-root")
    notebook = config.REPO_ROOT / NOTEBOOK
    committed = notebook.read_bytes()
    log = home / "server.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_until_ready(server, base_url, token, log)
            yield f"{base_url}/lab/tree/{NOTEBOOK}?token={token}"
        finally:
            _stop(server)
            if notebook.read_bytes() != committed:  # autosave is off; this guards the committed file anyway
                notebook.write_bytes(committed)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: install it with `apt-get install chromium`")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the upload demo: {SCREENSHOTS}")
    return SCREENSHOTS


RUN_ALL_FINISHED = """stderr => {
    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
    const failed = [...document.querySelectorAll(stderr)].some(output => output.textContent.includes('Traceback'));
    return !prompts.some(text => text.includes('*')) && (/\\d/.test(prompts.at(-1)) || failed);
}"""


def _run_all_cells(page) -> None:
    """Run > Run All Cells, then wait until the last code cell has run, or a cell has failed."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    # Cells are queued one after another, so only the last prompt's number says the run is over;
    # a traceback stops the run, leaving the cells after it with an empty prompt.
    page.wait_for_function(RUN_ALL_FINISHED, arg=STDERR, timeout=RUN_ALL_S * 1000)
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
    if not all(re.search(r"\d", prompt) for prompt in prompts):
        stderr = "\n".join(page.locator(STDERR).all_inner_texts())
        pytest.fail(f"a cell failed; prompts {prompts}; stderr:\n{stderr[-3000:]}")


def _upload(page, app, path: Path) -> None:
    """Click the app's upload button and pick `path` in the file chooser it opens."""
    with page.expect_file_chooser() as chooser:  # the widget's <input type=file> is never attached to the page
        app.locator(".widget-upload").click()
    chooser.value.set_files(str(path))


def _cards(app):
    """The app's cards, newest first: the children of its third child, the card list."""
    return app.locator(":scope > .widget-vbox > *")


def _card(app, name: str):
    """The app's card for an uploaded file, waited for (the kernel decodes, scores and explains it first)."""
    card = _cards(app).filter(has_text=name)
    card.wait_for(timeout=UPLOAD_S * 1000)
    return card


def _check_scored(card) -> None:
    """The card holds the upload, the face's crop and its overlay (all decoded), p(fake) in [0, 1], the
    label, and a p(fake) bar coloured by the label."""
    # The card's widgets render one by one: expect() retries until each part is there.
    expect(card).to_contain_text(re.compile(r"p\(fake\) = [01]\.\d{3}.*label: (real|fake)", re.S), timeout=RENDER_MS)
    text = card.inner_text()
    p_fake, label = float(re.search(r"p\(fake\) = (\S+)", text)[1]), re.search(r"label: (\w+)", text)[1]
    assert 0.0 <= p_fake <= 1.0
    pictures = card.locator("img")
    expect(pictures).to_have_count(3, timeout=RENDER_MS)
    for picture in pictures.all():
        assert picture.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
    colour = "danger" if label == "fake" else "success"
    expect(card.locator(f".widget-hprogress .progress-bar-{colour}")).to_have_count(1, timeout=RENDER_MS)


def _screenshot(page, app, path: Path) -> None:
    """The page with the app's upload button mid-screen: the newest cards are right below it."""
    app.locator(".widget-upload").evaluate("button => button.scrollIntoView({block: 'center'})")
    page.screenshot(path=path)


def test_upload_demo_in_jupyterlab(browser, lab_url, screenshots, dfdc, tmp_path):
    # Copies under names the notebook's own sample cards do not use, so each card is the upload's.
    fake_face, real_face = (shutil.copy(sorted((dfdc / "Test" / label).iterdir())[-1],
                                        tmp_path / f"upload-{label.lower()}.jpg") for label in ("Fake", "Real"))
    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("shopping list: milk, eggs\n")

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(PAGE_LOAD_S * 1000)
    page.goto(lab_url)
    # Run All before the kernel is connected runs the first cell only: wait for the status bar's "Idle".
    page.locator(KERNEL_STATUS, has_text=re.compile(r"^(?!No Kernel).+ \| Idle$")).wait_for()

    _run_all_cells(page)
    app = page.locator(".widget-vbox", has=page.locator(".widget-upload"))
    expect(app).to_have_count(1, timeout=RENDER_MS)
    cards = _cards(app)
    expect(cards.first).to_be_visible(timeout=RENDER_MS)  # the notebook's own sample files
    _screenshot(page, app, screenshots / "1-after-run-all.png")

    _upload(page, app, Path(fake_face))
    _check_scored(_card(app, "upload-fake.jpg"))
    expect(cards.first).to_contain_text("upload-fake.jpg")
    _screenshot(page, app, screenshots / "2-after-good-upload.png")

    _upload(page, app, not_an_image)
    error = _card(app, "notes.txt")
    expect(error).to_have_text(re.compile(r"notes\.txt was not analysed: .*not an image file"))
    assert error.locator("img").count() == 0
    expect(cards.first).to_contain_text("notes.txt")
    _screenshot(page, app, screenshots / "3-after-bad-upload.png")

    _upload(page, app, Path(real_face))
    _check_scored(_card(app, "upload-real.jpg"))
    expect(cards.first).to_contain_text("upload-real.jpg")
    for name in ("upload-fake.jpg", "notes.txt", "upload-real.jpg"):
        expect(cards.filter(has_text=name)).to_have_count(1)  # each upload analysed once
    _screenshot(page, app, screenshots / "4-after-second-good-upload.png")
