"""The web demo: its analysis, flag and example functions called directly, then the running app through
gradio_client."""
import html
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version
from PIL import Image

from helpers import config, demo, verdicts, web_app
from tests.conftest import environment_pins, free_port, outbound_connections, pyproject_requirements


@pytest.fixture(scope="module")
def examples(tmp_path_factory, dfdc) -> dict:
    """The app's examples with the dfdc-faces test faces, by name."""
    return {path.name: path for path in web_app.write_examples(tmp_path_factory.mktemp("examples"), data_roots=[dfdc])}


@pytest.fixture
def web(detector, tmp_path):
    return web_app.WebDemo(detector, tmp_path / "flags")


def test_a_photo_gets_its_faces_boxed_numbered_and_read(web, detector, examples):
    page = web.analyse(examples["two-people.png"])
    expected = detector.predict_photo(examples["two-people.png"])  # the same finding, cropping and scoring
    assert len(expected) == 2 and page.result.faces_mode == "on"
    assert page.faces == [{"face": number, "verdict": verdicts.Reading(row.p_fake, detector.threshold).verdict,
                           "p_fake": pytest.approx(row.p_fake, abs=1e-6), "threshold": detector.threshold,
                           "reading": verdicts.Reading(row.p_fake, detector.threshold).sentence, "box": row.box}
                          for number, row in enumerate(expected, 1)]
    verdict_words = ", ".join(f"face {face['face']} {face['verdict']}" for face in page.faces)
    assert page.message == f"two-people.png: 2 faces found: {verdict_words}."
    assert page.photo.shape == (320, 640, 3) and page.outputs()[-1] is page.result


def test_three_test_faces_side_by_side_are_three_faces(web, examples):
    page = web.analyse(examples["dfdc-faces-three-faces.png"])
    assert [face["face"] for face in page.faces] == [1, 2, 3]


def test_a_non_image_gets_a_plain_message(web, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list: milk, eggs\n")
    huge = tmp_path / "huge.png"
    with huge.open("wb") as file:  # sparse: 30 MB that take no time to write
        file.truncate(30 * 2**20)
    for path, words in ((notes, "this is not an image file"), (huge, "larger than 20 MB, the most this demo takes")):
        page = web.analyse(path)
        assert page.message.startswith(f"{path.name} was not analysed: ") and words in page.message
        assert page.photo is None and page.faces == [] and "PIL" not in page.message
    assert web.analyse(None).message == web_app.EMPTY_MESSAGE  # the upload was cleared
    assert "could not be read" in web.analyse(tmp_path / "gone.png").message


def test_no_face_says_so_and_the_whole_image_is_a_second_step(web, examples):
    page = web.analyse(examples["coffee-no-face.png"])
    assert page.message == f"coffee-no-face.png: no face found.<br><small>{html.escape(demo.NO_FACE_NOTE)}</small>"
    assert page.result.no_face and page.faces == [] and page.photo is not None  # the photo, so one sees why
    whole = web.analyse(examples["coffee-no-face.png"], "off")
    assert whole.message.startswith("coffee-no-face.png, the whole image: ")
    assert [face["face"] for face in whole.faces] == [None] and html.escape(demo.WHOLE_IMAGE_NOTE) in whole.message


def test_a_flag_goes_to_the_flag_folder(web, examples):
    assert web.flag(None, 1, "fake") == "Nothing to flag yet: upload an image first."
    result = web.analyse(examples["astronaut.png"]).result
    truth = "real" if result.faces[0].verdict == "fake" else "fake"
    assert web.flag(result, 1, truth).startswith(f"Flagged face 1 of astronaut.png as {truth}: saved as ")
    (record,) = [json.loads(path.read_text()) for path in web.flag_dir.glob(f"*/{demo.FLAG_RECORD}")]
    assert record["face"] == 1 and record["truth"] == truth and record["name"] == "astronaut.png"


def test_examples_need_no_data_and_add_test_faces_from_the_lesson_sets(dfdc, tmp_path, monkeypatch):
    names = [path.name for path in web_app.write_examples(tmp_path / "plain", data_roots=[])]
    assert names == ["astronaut.png", "two-people.png", "coffee-no-face.png"]
    names = [path.name for path in web_app.write_examples(tmp_path / "with-data", data_roots=[dfdc])]
    assert names[3:] == ["dfdc-faces-real.jpg", "dfdc-faces-fake.jpg", "dfdc-faces-three-faces.png"]
    real = (tmp_path / "with-data" / "dfdc-faces-real.jpg").read_bytes()
    assert real in [path.read_bytes() for path in (dfdc / "Test" / "Real").iterdir()]
    monkeypatch.delenv(config.DATA_ENV, raising=False)
    monkeypatch.setattr(config, "DATA_DIR", tmp_path / "data")
    (tmp_path / "data" / "ffhq-stylegan2").mkdir(parents=True)
    assert web_app.example_roots() == [tmp_path / "data" / "ffhq-stylegan2"]  # a lesson set, once downloaded
    monkeypatch.setenv(config.DATA_ENV, str(dfdc))
    assert web_app.example_roots() == [dfdc]


def test_a_group_photo_keeps_each_face_whole():
    faces = [np.full((100, 80, 3), value, dtype=np.uint8) for value in (10, 20, 30)]
    photo = web_app.group_photo(faces, side=200, gap=50)
    assert photo.shape == (300, 50 + 3 * (160 + 50), 3)
    assert [photo[150, 50 + i * 210 + 80, 0] for i in range(3)] == [10, 20, 30]


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
    gradio = pyproject_requirements()["gradio"]
    assert Version(front["sdk_version"]) in gradio.specifier
    assert front["sdk_version"].startswith(environment_pins()["gradio"] + ".")  # the version environment.yml pins


def test_the_spaces_requirements_use_pyprojects_ranges():
    lines = (config.REPO_ROOT / "space" / "requirements.txt").read_text().splitlines()
    requirements = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    ours = pyproject_requirements()
    assert "gradio" not in {requirement.name for requirement in requirements}  # sdk_version installs it
    for requirement in requirements:
        if requirement.name == "huggingface_hub":  # comes with gradio; app.py downloads models with it
            continue
        assert requirement.name.lower() in ours, f"{requirement.name} is not a dependency in pyproject.toml"
        assert requirement.specifier == ours[requirement.name.lower()].specifier, requirement.name


# ----------------------------------------------------------------------------- the running app


def test_serve_says_where_the_page_is_in_one_line_and_suggests_no_share_link(capsys):
    class Launched:
        is_running = False

        def launch(self, **options):
            self.options = options
            return None, "http://127.0.0.1:7860/", None

    app = Launched()
    assert web_app.serve(app, block=False) == "http://127.0.0.1:7860/"
    assert capsys.readouterr().out == "The demo is at http://127.0.0.1:7860/ (Ctrl-C stops it).\n"
    assert app.options["quiet"] and not app.options["share"]  # gradio's own lines suggest `share=True`
    assert app.options["max_file_size"] == demo.MAX_UPLOAD_BYTES and app.options["js"] == web_app.BROWSER_ERRORS_JS
    web_app.serve(app, block=False, quiet=True)
    assert capsys.readouterr().out == ""


def test_the_running_app_answers_gradio_client(detector, examples, tmp_path):
    from gradio_client import Client, handle_file

    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list: milk, eggs\n")
    with outbound_connections() as outbound:
        app = web_app.build_app(detector, examples=list(examples.values()), flag_dir=tmp_path / "flags")
        url = web_app.serve(app, host="127.0.0.1", port=free_port(), block=False, quiet=True)
        assert not Path(web_app.__file__).with_suffix(".pyi").exists()  # gradio writes one beside a new component class
        try:
            client = Client(url, verbose=False, analytics_enabled=False)
            message, photo, faces = client.predict(handle_file(str(examples["two-people.png"])), "on",
                                                   api_name="/analyse")
            direct = web_app.WebDemo(detector).analyse(examples["two-people.png"])
            assert message == direct.message and "2 faces found" in message
            assert Image.open(photo).size == (640, 320)
            assert [face["face"] for face in faces] == [1, 2]
            assert [face["p_fake"] for face in faces] == pytest.approx([face["p_fake"] for face in direct.faces], abs=1e-6)

            message, photo, faces = client.predict(handle_file(str(notes)), "on", api_name="/analyse")
            assert message == "notes.txt was not analysed: " + html.escape(demo.PLAIN_ERRORS["not an image file"])
            assert photo is None and faces == []

            message, photo, faces = client.predict(handle_file(str(examples["coffee-no-face.png"])), "on",
                                                   api_name="/analyse")
            assert message.startswith("coffee-no-face.png: no face found.") and photo is not None and faces == []
        finally:
            app.close()
    assert outbound == []  # no analytics, no version check, nothing else beyond this machine
    assert os.environ[config.GRADIO_ANALYTICS_ENV] == "False"
    assert os.environ[config.HF_TELEMETRY_ENV] in ("1", "True")  # gradio writes True when analytics are off
