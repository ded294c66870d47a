"""End to end: lesson 07's upload app in real JupyterLab, driven by headless Chromium through Playwright.

Starts a JupyterLab server on the repository, opens notebooks/07_upload_demo.ipynb, runs every cell,
then, as a person would, uploads a photo of three faces through the FileUpload button (a card per
face), flags one face, and uploads a text file; the header describes the model and warns exactly
when its validation ROC-AUC is low. At desktop and at phone width it measures that nothing in the
cards is cut off and every picture keeps its shape (`layout_problems`, shared with the web app's test).
Screenshots of each state go to $DEEPFAKE_SCREENSHOTS/browser-demo (default .cache/screenshots/browser-demo).
Skipped, with the reason, where Chromium or Playwright is missing; `pytest -m "not browser"` leaves it out.
"""
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import config
from tests.conftest import check_face_card, free_port, layout_problems

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install playwright")
expect = sync_api.expect

pytestmark = pytest.mark.browser

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
def flag_dir(tmp_path_factory) -> Path:
    """Where the notebook's flag buttons save, in this test."""
    return tmp_path_factory.mktemp("flags")


@pytest.fixture(scope="module")
def lab_url(dfdc, flag_dir, tmp_path_factory):
    """The URL of the upload notebook in a JupyterLab server on the repository, token included."""
    home = tmp_path_factory.mktemp("jupyterlab")
    _write_lab_settings(home / "settings")
    env = {**os.environ,
           "DEEPFAKE_PROFILE": "smoke",  # the timeouts above are sized for it
           "DEEPFAKE_DATA": str(dfdc),
           config.FLAG_DIR_ENV: str(flag_dir),
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
    """The app's cards, one per uploaded file, newest first."""
    return app.locator(".demo-card")


def _card(app, name: str):
    """The app's card for an uploaded file, waited for (the kernel decodes, scores and explains it first)."""
    card = _cards(app).filter(has_text=name)
    card.wait_for(timeout=UPLOAD_S * 1000)
    return card


def _check_faces(card, count: int) -> list[str]:
    """The card of an upload: one card per face, each checked as both demos draw it (`check_face_card`)."""
    faces = card.locator(".face-card")
    expect(faces).to_have_count(count, timeout=RENDER_MS)
    verdicts = []
    for number in range(count):
        verdicts.append(check_face_card(faces.nth(number), number + 1, RENDER_MS))
    return verdicts


def _screenshot(page, locator, path: Path) -> None:
    """The window with `locator` at its top."""
    locator.evaluate("element => element.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    page.screenshot(path=path)


def test_upload_demo_in_jupyterlab(browser, lab_url, screenshots, dfdc, flag_dir, tmp_path):
    from helpers import model_folders, web_app

    three_faces = next(path for path in web_app.write_examples(tmp_path / "examples", data_roots=[dfdc])
                       if path.name == "dfdc-faces-three-faces.png")
    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("shopping list: milk, eggs\n")

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(PAGE_LOAD_S * 1000)
    page.goto(lab_url)
    # Run All before the kernel is connected runs the first cell only: wait for the status bar's "Idle".
    page.locator(KERNEL_STATUS, has_text=re.compile(r"^(?!No Kernel).+ \| Idle$")).wait_for()

    _run_all_cells(page)
    app = page.locator(".demo-app")
    expect(app).to_have_count(1, timeout=RENDER_MS)  # build_app's (the lesson's own app is built in the open)
    cards = _cards(app)
    expect(cards.first).to_be_visible(timeout=RENDER_MS)  # the notebook's own sample files

    # The header: the model in a sentence, and a warning exactly when its validation ROC-AUC is low.
    header = app.locator(":scope > .widget-html").first
    expect(header).to_contain_text(re.compile(r"The model is efficientnet_lite0 at \d+ px, trained on dfdc-faces"))
    model_dir = model_folders.model_dir(dfdc, config.get_profile("smoke"), "real+fake")  # the one the lesson loads
    roc_auc = json.loads((model_dir / "model.json").read_text())["validation"]["roc_auc"]
    expect(header.locator(".model-warning")).to_have_count(1 if roc_auc < 0.70 else 0)
    _screenshot(page, app, screenshots / "1-after-run-all.png")

    # Three faces in one photo: a card each; each keeps its shape and nothing in it is cut off.
    _upload(page, app, three_faces)
    card = _card(app, "dfdc-faces-three-faces.png")
    verdicts = _check_faces(card, 3)
    expect(cards.first).to_contain_text("dfdc-faces-three-faces.png: 3 faces found")
    assert layout_problems(page, ".demo-app .demo-card", window=False) == []
    _screenshot(page, card, screenshots / "2-three-faces.png")

    # A flag per face: face 2's disagreeing button saves face 2 alone.
    face = card.locator(".face-card").nth(1)
    truth = "real" if verdicts[1] == "fake" else "fake"
    face.get_by_role("button", name=f"It is {truth}").click()
    expect(face).to_contain_text(f"Flagged face 2 of dfdc-faces-three-faces.png as {truth}", timeout=RENDER_MS)
    (record,) = [json.loads(path.read_text()) for path in flag_dir.glob("*/flag.json")]
    assert record["face"] == 2 and record["truth"] == truth and record["name"] == "dfdc-faces-three-faces.png"
    _screenshot(page, face, screenshots / "3-flagged-face-2.png")

    # Not an image: a card with the reason in plain words.
    _upload(page, app, not_an_image)
    error = _card(app, "notes.txt")
    expect(error).to_have_text(re.compile(r"notes\.txt was not analysed: this is not an image file"))
    assert error.locator("img").count() == 0
    expect(cards.first).to_contain_text("notes.txt")
    _screenshot(page, error, screenshots / "4-not-an-image.png")

    # A phone-sized window, the file browser folded: the cards still read, nothing cut off, every picture in
    # its own shape.
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()  # fold the file browser away
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(1000)
    _screenshot(page, card, screenshots / "5-phone-three-faces.png")
    problems = layout_problems(page, ".demo-app .demo-card", window=False)
    assert problems == [], "cut off or squashed at phone width:\n" + "\n".join(problems)
    for name in ("dfdc-faces-three-faces.png", "notes.txt"):
        expect(cards.filter(has_text=name)).to_have_count(1)  # each upload analysed once
