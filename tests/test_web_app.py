"""The web demo: its prediction and flag functions called directly, then the running app through gradio_client."""
import html
import json
import os
import socket
from contextlib import contextmanager
from datetime import datetime

import numpy as np
import pytest
import skimage.data
import yaml
from packaging.requirements import Requirement
from packaging.version import Version
from PIL import Image

from helpers import config, demo, web_app
from helpers.detector import as_detector
from tests.conftest import free_port
from tests.test_packaging import _environment_pins, _pyproject_requirements

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(scope="module")
def detector(trained_model_dir):
    return as_detector(trained_model_dir)


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> dict:
    """The app's own examples (a photo with one face, one without), by name."""
    return {path.name: path for path in web_app.write_examples(tmp_path_factory.mktemp("examples"))}


@pytest.fixture
def web(detector, tmp_path):
    return web_app.WebDemo(detector, tmp_path / "flags")


def test_a_whole_photo_gets_its_face_boxed_cropped_and_scored(web, detector, examples):
    page = web.analyse(examples["astronaut.png"], "auto")
    expected = detector.predict_photo(skimage.data.astronaut())  # the same finding, cropping and scoring
    assert len(expected) == 1
    assert page.table.to_dict("records") == [{
        "face": "1", "p(fake)": round(expected[0].p_fake, 3), "label": expected[0].label,
        "box (x, y, width, height)": ", ".join(map(str, expected[0].box))}]
    assert "<b>astronaut.png</b>: 1 face found" in page.message and f"{expected[0].p_fake:.3f}" in page.message
    plain = demo._for_display(skimage.data.astronaut())
    assert page.photo.shape == plain.shape and not np.array_equal(page.photo, plain)  # the box is drawn
    (crop, crop_caption), (overlay, overlay_caption) = page.gallery
    assert crop.shape[0] == crop.shape[1] and overlay.shape == crop.shape  # a square face crop, not the photo
    assert crop_caption == f"face 1: p(fake) {expected[0].p_fake:.3f}, {expected[0].label}"
    assert "Grad-CAM" in overlay_caption and not np.array_equal(crop, overlay)
    assert page.analysis.result.faces[0].box == expected[0].box


def test_a_non_image_gets_the_notebook_demos_message(web, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list: milk, eggs\n")
    huge = tmp_path / "huge.png"
    with huge.open("wb") as file:  # sparse: 30 MB that take no time to write
        file.truncate(30 * 2**20)
    for path, words in ((notes, "not an image file"), (huge, "larger than 20 MB")):
        page = web.analyse(path, "auto")
        assert page.message.startswith(f"<b>{path.name}</b> was not analysed: ") and words in page.message
        assert page.photo is None and page.table.empty and page.gallery == []
    assert "Upload a photo" in web.analyse(None, "auto").message  # the upload was cleared


def test_no_face_scores_the_whole_image_or_says_so(web, examples):
    scored = web.analyse(examples["coffee-no-face.png"], "auto")
    assert html.escape(demo.NO_FACE_NOTE) in scored.message
    assert scored.table["face"].tolist() == ["whole image"] and scored.table["box (x, y, width, height)"][0] == ""
    assert [caption.split(":")[0] for _, caption in scored.gallery] == ["whole image"] * 2
    refused = web.analyse(examples["coffee-no-face.png"], "on")
    assert html.escape(demo.NO_FACE_ERROR) in refused.message and "score the whole image anyway" in refused.message
    assert refused.photo is not None and refused.table.empty and refused.gallery == []  # the photo, so one sees why


def test_flagging_saves_the_upload_and_a_record_under_new_names(web, detector, examples, monkeypatch, tmp_path):
    assert "Nothing to flag yet" in web.flag(None, "wrongly real")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    assert "Nothing to flag: notes.txt got no verdict" in web.flag(web.analyse(notes).analysis, "wrongly real")
    assert not web.flag_dir.exists()  # nothing written for either

    analysis = web.analyse(examples["astronaut.png"], "auto").analysis

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2024, 5, 1, 12, 0, 0, tzinfo=tz)

    tokens = iter(["same", "same", "other"])  # the second flag, in the same second, draws the first one's name
    monkeypatch.setattr(web_app, "datetime", Frozen)
    monkeypatch.setattr(web_app.secrets, "token_hex", lambda _: next(tokens))
    messages = [web.flag(analysis, "wrongly real"), web.flag(analysis, "wrongly fake")]
    assert messages == ["Flagged astronaut.png as wrongly real: saved as 20240501-120000-same. Thank you.",
                        "Flagged astronaut.png as wrongly fake: saved as 20240501-120000-other. Thank you."]
    records = {folder.name: json.loads((folder / web_app.FLAG_RECORD).read_text()) for folder in web.flag_dir.iterdir()}
    assert {name: record["flag"] for name, record in records.items()} == {
        "20240501-120000-same": "wrongly real", "20240501-120000-other": "wrongly fake"}  # the first one kept
    for name, record in records.items():
        folder = web.flag_dir / name
        assert sorted(path.name for path in folder.iterdir()) == [web_app.FLAG_RECORD, "upload.png"]
        assert (folder / record["file"]).read_bytes() == examples["astronaut.png"].read_bytes()
        assert record["truth"] == web_app.FLAGS[record["flag"]] and record["name"] == "astronaut.png"
        assert record["faces"] == [{"face": 1, "box": list(analysis.result.faces[0].box),
                                    "p_fake": analysis.result.faces[0].p_fake, "label": analysis.result.faces[0].label}]
        assert record["model"]["threshold"] == detector.threshold and record["model"]["backbone"] == detector.backbone
        assert record["faces_mode"] == "auto" and record["time"] == "2024-05-01T12:00:00+00:00"


def test_the_model_is_described_in_one_line(detector):
    line = web_app.describe_model(detector)
    assert len(line.splitlines()) == 1
    assert detector.backbone in line and f"{detector.threshold:.3f}" in line
    assert f"{detector.metadata['validation']['roc_auc']:.3f}" in line and "dfdc-faces" in line


def test_examples_add_test_faces_when_a_data_root_is_given(dfdc, tmp_path):
    names = [path.name for path in web_app.write_examples(tmp_path, data_root=dfdc)]
    assert names == ["astronaut.png", "coffee-no-face.png", "test-real.jpg", "test-fake.jpg"]
    real = sorted((dfdc / "Test" / "Real").iterdir())[0]
    assert (tmp_path / "test-real.jpg").read_bytes() == real.read_bytes()


def test_a_spaces_model_folder_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(config.MODEL_REPO_ENV, raising=False)
    monkeypatch.setenv(config.MODEL_DIR_ENV, str(tmp_path))
    assert web_app.model_dir_from_env() == tmp_path
    monkeypatch.setenv(config.MODEL_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(web_app.ModelSourceError, match=f"no model folder at {tmp_path / 'missing'}: .*"
                                                        f"{config.MODEL_REPO_ENV}"):
        web_app.model_dir_from_env()


def _front_matter(readme: str) -> dict:
    _, front, _ = readme.split("---\n", 2)
    return yaml.safe_load(front)


def test_the_space_is_configured_for_the_gradio_we_test():
    space = config.REPO_ROOT / "space"
    front = _front_matter((space / "README.md").read_text())
    assert front["sdk"] == "gradio" and (space / front["app_file"]).is_file() and front["license"] == "apache-2.0"
    assert front["title"] and len(front["short_description"]) <= 60  # the Hub's limit
    gradio = _pyproject_requirements()["gradio"]
    assert Version(front["sdk_version"]) in gradio.specifier
    assert front["sdk_version"].startswith(_environment_pins()["gradio"] + ".")  # the version environment.yml pins


def test_the_spaces_requirements_use_pyprojects_ranges():
    lines = (config.REPO_ROOT / "space" / "requirements.txt").read_text().splitlines()
    requirements = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    ours = _pyproject_requirements()
    assert "gradio" not in {requirement.name for requirement in requirements}  # sdk_version installs it
    for requirement in requirements:
        if requirement.name == "huggingface_hub":  # comes with gradio; app.py downloads models with it
            continue
        assert requirement.name.lower() in ours, f"{requirement.name} is not a dependency in pyproject.toml"
        assert requirement.specifier == ours[requirement.name.lower()].specifier, requirement.name


# ----------------------------------------------------------------------------- the running app
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


def test_the_running_app_answers_gradio_client(detector, examples, tmp_path):
    from gradio_client import Client, handle_file

    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list: milk, eggs\n")
    with outbound_connections() as outbound:
        app = web_app.build_app(detector, examples=list(examples.values()), flag_dir=tmp_path / "flags")
        url = web_app.serve(app, host="127.0.0.1", port=free_port(), block=False, quiet=True)
        try:
            client = Client(url, verbose=False, analytics_enabled=False)
            assert "Nothing to flag yet" in client.predict(api_name="/flag_wrongly_fake")

            message, photo, table, gallery = client.predict(handle_file(str(examples["astronaut.png"])), "auto",
                                                            api_name="/analyse")
            assert "1 face found" in message and Image.open(photo).size[0] == demo.DISPLAY_SIZE
            direct = web_app.WebDemo(detector).analyse(examples["astronaut.png"]).table
            assert table["headers"] == list(direct.columns) and table["data"] == direct.values.tolist()
            p_fake = table["data"][0][1]
            assert [item["caption"].split(":")[0] for item in gallery] == ["face 1", "face 1"]
            assert all(Image.open(item["image"]).size[0] == Image.open(item["image"]).size[1] for item in gallery)
            assert client.predict(api_name="/flag_wrongly_fake").startswith("Flagged astronaut.png as wrongly fake")
            (saved,) = (tmp_path / "flags").glob(f"*/{web_app.FLAG_RECORD}")
            assert json.loads(saved.read_text())["faces"][0]["p_fake"] == pytest.approx(p_fake, abs=5e-4)

            message, photo, table, gallery = client.predict(handle_file(str(notes)), "auto", api_name="/analyse")
            assert "notes.txt</b> was not analysed: not an image file" in message
            assert photo is None and table["data"] == [] and gallery == []

            message, photo, table, _ = client.predict(handle_file(str(examples["coffee-no-face.png"])), "on",
                                                      api_name="/analyse")
            assert demo.NO_FACE_ERROR in message and photo is not None and table["data"] == []
        finally:
            app.close()
    assert outbound == []  # no analytics, no version check, nothing else beyond this machine
    assert os.environ[config.GRADIO_ANALYTICS_ENV] == "False"
    assert os.environ[config.HF_TELEMETRY_ENV] in ("1", "True")  # gradio writes True when analytics are off
