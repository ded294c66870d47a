"""Fixtures and helpers shared by the tests: the real face data, small synthetic images and folders,
a trained smoke model, running a command as a user does, the lessons' tagged cells, and Chromium.

Test modules import the plain helpers from here (`from tests.conftest import ...`), never from each other.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tomllib
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml
from packaging.requirements import Requirement
from PIL import Image
from scipy.ndimage import uniform_filter

from helpers import cli, config, files
from helpers.detector import as_detector

# Set by the conftest.py at the repository root when the shared face sets are found, or by you; unset otherwise.
TEST_DATA = os.environ.get("DEEPFAKE_TEST_DATA") or None


@pytest.fixture(autouse=True)
def course_settings_kept():
    """No test leaves the course's variables ($DEEPFAKE_...) changed: a $DEEPFAKE_DATA lost in one test
    sends every later test on that worker to an empty data/ folder."""
    before = {name: value for name, value in os.environ.items() if name.startswith("DEEPFAKE_")}
    yield
    after = {name: value for name, value in os.environ.items() if name.startswith("DEEPFAKE_")}
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, f"this test changed {changed}"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder holding the shared face sets (dfdc-faces, ffhq-stylegan2).

    Without them the tests that need real faces are skipped. In CI, a $DEEPFAKE_TEST_DATA that names a
    folder without them fails instead; leaving it unset (a fresh clone, on the stand-in set) skips.
    """
    if TEST_DATA is None:
        pytest.skip("needs the shared face sets: none beside the checkout (../shared/data); set "
                    "DEEPFAKE_TEST_DATA to the folder holding dfdc-faces/ and ffhq-stylegan2/")
    if not (Path(TEST_DATA) / "dfdc-faces").is_dir():
        message = (f"no face data at {TEST_DATA}: set DEEPFAKE_TEST_DATA to the folder holding "
                   "dfdc-faces/ and ffhq-stylegan2/")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(TEST_DATA)


@pytest.fixture(scope="session")
def dfdc(shared_data) -> Path:
    return shared_data / "dfdc-faces"


@pytest.fixture(scope="session")
def ffhq(shared_data) -> Path:
    return shared_data / "ffhq-stylegan2"


def write_jpeg(path: Path, seed: int, size: int = 32, quality: int = 90) -> Path:
    """A small random-noise JPEG (a stand-in image for layout tests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=quality)
    return path


@pytest.fixture
def flat_root(tmp_path) -> Path:
    """A flat real/ + fake/ folder with 40 small images per class."""
    for label in ("real", "fake"):
        for i in range(40):
            write_jpeg(tmp_path / "flat" / label / f"{label}_{i:03d}.jpg", seed=zlib.crc32(f"{label}{i}".encode()))
    return tmp_path / "flat"


# ----------------------------------------------------------------------------- a trained model (predict, evaluate)
@pytest.fixture(scope="session")
def trained_model_dir(dfdc, tmp_path_factory) -> Path:
    """A smoke-profile efficientnet_lite0 model folder, trained once per session on dfdc-faces (about 20 s).

    Shared by every test that needs one: copy it before damaging it.
    """
    from helpers import train

    out_dir = tmp_path_factory.mktemp("trained") / "smoke-dfdc"
    train.train(dfdc, "smoke", out_dir, backbone="efficientnet_lite0", verbose=0)
    return out_dir


@pytest.fixture(scope="session")
def trained_ffhq_model_dir(ffhq, tmp_path_factory) -> Path:
    """The same on ffhq-stylegan2, whose faces are cropped loosely and aligned (about 20 s)."""
    from helpers import train

    out_dir = tmp_path_factory.mktemp("trained") / "smoke-ffhq"
    train.train(ffhq, "smoke", out_dir, backbone="efficientnet_lite0", verbose=0)
    return out_dir


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for the servers the tests start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ----------------------------------------------------------------------------- moved here from the test modules
NOISE_SIZE = 64


def noise(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, NOISE_SIZE, NOISE_SIZE, 3), dtype=np.uint8)


def blurred(images: np.ndarray) -> np.ndarray:
    return uniform_filter(images.astype(np.float32), size=(1, 5, 5, 1)).astype(np.uint8)


def textured_images(count: int = 8, size: int = 48) -> np.ndarray:
    """uint8 images with both smooth shading and fine detail (no symmetry to hide a flip)."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 160, size)[None, :, None, None] + np.linspace(0, 60, size)[None, None, :, None]
    detail = rng.normal(0, 25, (count, size, size, 3))
    return np.clip(ramp + detail + 20, 0, 255).astype(np.uint8)


def write_bad_files(folder, jpeg_bytes: bytes) -> dict:
    """An empty file, a text file and a truncated JPEG (from real bytes), each named like an image."""
    folder.mkdir(parents=True, exist_ok=True)
    contents = {"empty.jpg": b"", "notes.jpg": b"shopping list: eggs, milk\n",
                "truncated.jpg": jpeg_bytes[: len(jpeg_bytes) // 2]}
    for name, content in contents.items():
        (folder / name).write_bytes(content)
    return {"empty.jpg": "empty", "notes.jpg": "not an image", "truncated.jpg": "truncated or corrupt"}


@pytest.fixture(scope="session")
def detector(trained_model_dir):
    """The smoke model of `trained_model_dir`, loaded once."""
    return as_detector(trained_model_dir)


byte_names = pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="file names must be Unicode here")


def undecodable(folder: Path, name: bytes = b"bad\xff.jpg") -> Path:
    """The path of a file named with bytes that are not UTF-8, as Python holds it (undecodable bytes as surrogates)."""
    return Path(os.fsdecode(os.fsencode(folder) + b"/" + name))


GREY_MISS = "Test/Fake/fake_00879.jpg"  # a dfdc-faces test face MTCNN finds in colour, not in plain grey


def grey(photo: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(Image.fromarray(photo).convert("L"))[..., None], 3, axis=-1)


def lesson_code(notebook: str) -> list[str]:
    """The sources of a notebook's cells tagged `lesson-code`, in order."""
    cells = json.loads((config.REPO_ROOT / "notebooks" / notebook).read_text())["cells"]
    return ["".join(cell["source"]) for cell in cells if "lesson-code" in cell["metadata"].get("tags", [])]


def run_lesson_code(sources: list[str], namespace: dict) -> dict:
    for number, source in enumerate(sources):
        exec(compile(source, f"<lesson-code cell {number}>", "exec"), namespace)
    return namespace


def run_in_process(args: list, capsys) -> subprocess.CompletedProcess:
    """The same command through `cli.main` in this process (what `python -m helpers` calls)."""
    try:
        status = cli.main([str(arg) for arg in args], prog="python -m helpers")
    except SystemExit as stopped:  # argparse's refusals
        status = stopped.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, status, out, err)


def the_error_line(stderr: str) -> str:
    """The one line of stderr holding `error:`: all of stderr, or the line after argparse's usage.

    Stderr is read as a terminal shows it: a progress bar that rewrites its line (a carriage return) and
    clears it at the end leaves nothing.
    """
    assert "Traceback" not in stderr, stderr
    lines = [shown for line in stderr.split("\n") if (shown := line.split("\r")[-1].strip())]
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    if not lines[0].startswith("usage:"):
        assert len(lines) == 1, stderr
    return errors[0]


def tree(folder: Path) -> dict[str, str]:
    """Every entry below `folder`: a file's sha256, a link's target, or "folder"."""
    found = {}
    for top, folders, names in os.walk(folder):
        for name in folders + names:
            path = Path(top, name)
            key = path.relative_to(folder).as_posix()
            if path.is_symlink():
                found[key] = f"link to {os.readlink(path)}"
            else:
                found[key] = "folder" if path.is_dir() else files.sha256_of(path)
    return found


def environment_pins() -> dict[str, str]:
    """name -> pinned version (as a minor series like '2.4' or an exact version) from environment.yml."""
    environment = yaml.safe_load((config.REPO_ROOT / "environment.yml").read_text())
    pins = {}
    for entry in environment["dependencies"]:
        specs = entry["pip"] if isinstance(entry, dict) else [entry]
        for spec in specs:
            match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*=?=\s*([0-9.]+)(\.\*)?", spec.strip())
            if match:
                pins[match[1].lower()] = match[2]
    return pins


def pyproject_requirements() -> dict[str, Requirement]:
    """The core requirements and dev's, with the extras dev names (`deepfake-lessons[app]`) expanded."""
    project = tomllib.loads((config.REPO_ROOT / "pyproject.toml").read_text())["project"]
    requirements, extras = list(project["dependencies"]), ["dev"]
    while extras:
        for spec in project["optional-dependencies"][extras.pop()]:
            if Requirement(spec).name == project["name"]:
                extras += sorted(Requirement(spec).extras)
            else:
                requirements.append(spec)
    return {Requirement(r).name.lower(): Requirement(r) for r in requirements}


CHROMIUM = Path("/usr/bin/chromium")  # the Debian package; Playwright's own browser downloads are not used


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: install it with `apt-get install chromium`")
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


LAYOUT_PROBLEMS = """([selector, window]) => {
    const problems = [];
    const name = element => element.tagName.toLowerCase() + (element.id ? '#' + element.id : '')
        + [...element.classList].slice(0, 2).map(c => '.' + c).join('')
        + ` "${(element.textContent || element.alt || '').trim().slice(0, 40)}"`;
    const width = document.documentElement.clientWidth;
    if (window && document.documentElement.scrollWidth > width + 1)
        problems.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} px in a ${width} px window`);
    for (const root of document.querySelectorAll(selector)) {
        const frame = (root.closest('.jp-OutputArea-output') || document.documentElement).getBoundingClientRect();
        const [left, right] = window ? [0, width] : [frame.left, frame.right];
        for (const element of [root, ...root.querySelectorAll('*')]) {
            const box = element.getBoundingClientRect(), style = getComputedStyle(element);
            if (!box.width || !box.height || style.visibility === 'hidden') continue;
            if (box.left < left - 1 || box.right > right + 1)
                problems.push(`${name(element)} spans ${Math.round(box.left)}-${Math.round(box.right)} px, `
                              + `outside ${Math.round(left)}-${Math.round(right)}`);
            const clips = [style.overflowX, style.overflowY].some(value => value === 'hidden' || value === 'clip')
                || style.textOverflow === 'ellipsis';
            if (clips && element.scrollWidth > element.clientWidth + 1)
                problems.push(`${name(element)} is cut at the side: ${element.scrollWidth} px in ${element.clientWidth}`);
            if (clips && element.scrollHeight > element.clientHeight + 1)
                problems.push(`${name(element)} is cut at the bottom: ${element.scrollHeight} px in ${element.clientHeight}`);
        }
        for (const image of root.querySelectorAll('img')) {
            const box = image.getBoundingClientRect();
            const fit = getComputedStyle(image).objectFit;  // contain and scale-down keep the shape in any box
            if (!image.naturalWidth || !box.width || fit === 'contain' || fit === 'scale-down') continue;
            const ratio = (box.width / box.height) / (image.naturalWidth / image.naturalHeight);
            if (Math.abs(ratio - 1) > 0.02)
                problems.push(`${name(image)} is drawn ${Math.round(box.width)}x${Math.round(box.height)}, `
                              + `its own shape is ${image.naturalWidth}x${image.naturalHeight}`);
        }
    }
    return problems;
}"""


def check_face_card(card, number: int, timeout_ms: int) -> str:
    """One face's card as both demos draw it: its number, the crop and the Grad-CAM map decoded, a verdict
    badge, the bar with the threshold's mark, the line that reads the number, and two flag buttons.
    Returns the verdict."""
    from playwright.sync_api import expect

    expect(card).to_contain_text(f"Face {number}", timeout=timeout_ms)
    pictures = card.locator("img")
    expect(pictures).to_have_count(2, timeout=timeout_ms)
    assert all(picture.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0 for picture in pictures.all())
    verdict = card.locator(".verdict").get_attribute("data-verdict")
    assert verdict in ("fake", "real", "uncertain")
    expect(card.locator(".badge")).to_have_text(verdict.upper())
    expect(card.locator(".bar .threshold")).to_have_count(1)
    expect(card.locator(".reading")).to_have_text(re.compile(r"^fake from \S+ up; (< )?[01]\.\d{3} is (above|below|at) it"))
    expect(card.get_by_role("button")).to_have_text(["It is real", "It is fake"])
    return verdict


def layout_problems(page, selector: str, window: bool = True) -> list[str]:
    """What is cut off or squashed in the elements `selector` finds, measured in the browser: any element
    reaching beyond the window (window=True; else beyond the notebook output holding it), any element whose
    content overflows a box that hides the overflow, and any picture drawn in another shape than its own."""
    return page.evaluate(LAYOUT_PROBLEMS, [selector, window])


LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@contextmanager
def outbound_connections():
    """A list that fills with every host this process looks up or connects to, other than this machine."""
    seen = []
    connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def recording_connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
            seen.append(f"connect {address}")
        return connect(sock, address)

    def recording_getaddrinfo(host, *args, **kwargs):
        if host not in LOOPBACK and host is not None:
            seen.append(f"lookup {host}")
        return getaddrinfo(host, *args, **kwargs)

    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as patch:
        # The test's own gradio_client would ask the Hub for its list of AI agents and send telemetry
        # (helpers.web_app's environment turns both off only when it is imported before huggingface_hub).
        patch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
        patch.setattr(socket.socket, "connect", recording_connect)
        patch.setattr(socket, "getaddrinfo", recording_getaddrinfo)
        yield seen
