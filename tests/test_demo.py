"""The upload demo: real face bytes, whole photos, bad bytes, flags, and the app's callback on a simulated
FileUpload value; lesson 07's own FileUpload and callback draw the cards `build_app` draws."""
import copy
import io
import json
import re
from datetime import datetime, timezone

import ipywidgets as widgets
import numpy as np
import pytest
import skimage.data
from PIL import Image

from helpers import config, demo, verdicts
from tests.conftest import GREY_MISS, grey, lesson_code, run_lesson_code, write_bad_files

PLAIN_WORDS = {"empty.jpg": "the file is empty", "notes.jpg": "not an image file",
               "truncated.jpg": "damaged or cut short"}


@pytest.fixture(scope="module")
def face(dfdc) -> bytes:
    return sorted((dfdc / "Test" / "Real").iterdir())[0].read_bytes()  # one in which MTCNN finds the face


def as_upload(name: str, content: bytes) -> dict:
    """One entry of an ipywidgets 8 FileUpload value as Python holds it (content is a memoryview)."""
    return {"name": name, "type": "image/jpeg", "size": len(content),
            "last_modified": datetime(2024, 5, 1, tzinfo=timezone.utc), "content": memoryview(content)}


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def two_people() -> np.ndarray:
    """NASA's astronaut beside scikit-image's cameraman: two faces."""
    return np.concatenate([skimage.data.astronaut(), np.repeat(skimage.data.camera()[..., None], 3, axis=-1)], axis=1)


def with_roc_auc(detector, roc_auc: float):
    """A copy of the detector whose sidecar records another validation ROC-AUC."""
    changed = copy.copy(detector)
    changed.metadata = {**detector.metadata, "validation": {**detector.metadata["validation"], "roc_auc": roc_auc}}
    return changed


def test_a_real_face_is_scored_explained_and_read(detector, face):
    result = demo.analyse_upload(detector, "face.jpg", memoryview(face))
    assert result.ok and result.threshold == detector.threshold and len(result.faces) == 1
    (found,) = result.faces
    assert found.number == 1 and found.box is not None and found.confidence >= 0.9
    assert 0.0 <= found.p_fake <= 1.0 and found.label == detector.label(found.p_fake)
    assert found.verdict == verdicts.Reading(found.p_fake, detector.threshold).verdict
    assert result.image.dtype == np.uint8 and result.image.shape == (224, 224, 3)  # never enlarged
    assert found.crop.dtype == np.uint8 and found.overlay.shape == found.crop.shape
    assert not np.array_equal(found.overlay, found.crop)
    assert result.content == face and result.faces_mode == "on" and result.model == demo.model_record(detector)
    expected = detector.predict_photo(face)  # the same decoding, face finding and cropping as everywhere else
    assert found.p_fake == pytest.approx(expected[0].p_fake, abs=1e-6) and found.box == expected[0].box
    assert result.summary() == f"face.jpg: 1 face found: face 1 {found.verdict}."


def test_two_faces_get_a_number_each_left_to_right(detector):
    photo = two_people()
    result = demo.analyse_upload(detector, "two-people.png", png_bytes(photo))
    assert [found.number for found in result.faces] == [1, 2]
    assert [found.box for found in result.faces] == [prediction.box for prediction in detector.predict_photo(photo)]
    assert result.faces[0].box[0] < 512 <= result.faces[1].box[0]  # the astronaut, then the cameraman
    assert result.image.shape == (320, 640, 3)  # the photo's shape kept, 640 px wide: numbers readable
    plain = demo.analyse_upload(detector, "two-people.png", png_bytes(photo), faces="off")
    assert plain.faces[0].box is None and plain.note == demo.WHOLE_IMAGE_NOTE
    assert not np.array_equal(plain.image, result.image)  # the boxes are drawn


def test_no_face_says_so_and_the_whole_image_is_a_second_step(detector):
    scene = png_bytes(skimage.data.coffee())
    result = demo.analyse_upload(detector, "coffee.png", scene)
    assert result.ok and result.no_face and result.faces == [] and result.note == demo.NO_FACE_NOTE
    assert result.image.shape == (400, 600, 3) and result.summary() == "coffee.png: no face found."
    whole = demo.analyse_upload(detector, "coffee.png", scene, faces="off")
    assert not whole.no_face and len(whole.faces) == 1 and whole.faces[0].box is None
    assert whole.faces[0].crop.shape == (149, 224, 3)  # the whole photo, its shape kept
    assert whole.summary() == f"coffee.png, the whole image: {whole.faces[0].verdict}."


def test_a_grey_face_is_found_on_a_second_look(detector, dfdc):
    photo = grey(np.asarray(Image.open(dfdc / GREY_MISS).convert("RGB")))
    result = demo.analyse_upload(detector, "grey.png", png_bytes(photo))
    (found,) = result.faces
    assert found.second_look and "found in grey, on a second look" in demo.verdict_html(found)


def test_a_large_photo_keeps_its_shape(detector, face):
    big = io.BytesIO()
    Image.open(io.BytesIO(face)).resize((1200, 900)).save(big, format="PNG")
    result = demo.analyse_upload(detector, "wide.png", big.getvalue())
    assert result.image.shape == (480, 640, 3)
    assert all(found.overlay.shape == found.crop.shape for found in result.faces)


def test_bad_files_give_plain_messages(detector, face, tmp_path):
    write_bad_files(tmp_path, face)
    for name, words in PLAIN_WORDS.items():
        result = demo.analyse_upload(detector, name, (tmp_path / name).read_bytes())
        assert not result.ok and words in result.error and result.faces == [] and result.image is None
        assert "PIL" not in result.error and "bytes not processed" not in result.error
        assert not result.error.startswith(name)  # the card shows the name once, in bold
        assert result.summary() == f"{name} was not analysed: {result.error}"


def test_oversized_uploads_are_refused(detector, face):
    huge = io.BytesIO()
    Image.new("1", (7000, 7000)).save(huge, format="PNG")  # 49 megapixels in a few kilobytes
    result = demo.analyse_upload(detector, "huge.png", huge.getvalue())
    assert "7000x7000 pixels is more than" in result.error
    result = demo.analyse_upload(detector, "face.jpg", face, max_bytes=1000)
    assert result.error == ("the file is larger than 0.000953674 MB, the most this demo takes: upload a smaller "
                            "image.") and result.faces == []


def test_the_verdict_html_shows_the_badge_the_bar_and_the_reading(detector, face):
    (found,) = demo.analyse_upload(detector, "face.jpg", face).faces
    shown = demo.verdict_html(found)
    low, high = found.reading.band
    assert f"data-verdict='{found.verdict}'" in shown and f">{found.verdict.upper()}</span>" in shown
    assert f"left:{100 * detector.threshold:.2f}%" in shown  # the threshold's mark
    assert f"left:{100 * low:.2f}%;width:{100 * (high - low):.2f}%" in shown  # the band
    assert f"width:{100 * found.p_fake:.2f}%" in shown  # the bar's fill
    assert f"threshold {verdicts.score_text(detector.threshold)}" in shown
    assert found.reading.sentence.replace("'", "&#x27;") in shown


def test_the_model_is_described_in_sentences_with_a_warning_when_its_roc_auc_is_low(detector):
    text = demo.describe_model(detector)
    assert text.startswith(f"The model is {detector.backbone} at {detector.image_size} px, trained on dfdc-faces")
    assert f"fake from p(fake) {verdicts.score_text(detector.threshold)} up" in text and "Detector(" not in text
    low = with_roc_auc(detector, 0.58)
    assert "0.58 on 48 images, under 0.70" in demo.model_warning(low)
    assert "model-warning" in demo.header(low).value and "Detector(" not in demo.header(low).value
    good = with_roc_auc(detector, 0.9)
    assert demo.model_warning(good) is None and "model-warning" not in demo.header(good).value


def test_a_flag_per_face_is_saved_under_a_new_name_and_one_that_agrees_is_refused(detector, tmp_path, monkeypatch):
    content = png_bytes(two_people())
    result = demo.analyse_upload(detector, "two-people.png", content)
    first, second = result.faces
    flags = tmp_path / "flags"
    agrees = "real" if second.verdict == "uncertain" else second.verdict  # an uncertain face takes either flag
    disagrees = "fake" if agrees == "real" else "real"
    if second.verdict != "uncertain":
        assert demo.save_flag(result, 2, agrees, flags).startswith(f"Not flagged: face 2 already reads {agrees}")
        assert not flags.exists()
    assert demo.save_flag(result, 3, "fake", flags) == "Nothing to flag: this upload has no such face."

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2024, 5, 1, 12, 0, 0, tzinfo=tz)

    tokens = iter(["same", "same", "other"])  # the second flag, in the same second, draws the first one's name
    monkeypatch.setattr(demo, "datetime", Frozen)
    monkeypatch.setattr(demo.secrets, "token_hex", lambda _: next(tokens))
    first_truth = "fake" if first.verdict == "real" else "real"
    assert demo.save_flag(result, 1, first_truth, flags) == (
        f"Flagged face 1 of two-people.png as {first_truth}: saved as 20240501-120000-same. Thank you.")
    assert demo.save_flag(result, 2, disagrees, flags).endswith("saved as 20240501-120000-other. Thank you.")
    records = {folder.name: json.loads((folder / demo.FLAG_RECORD).read_text()) for folder in flags.iterdir()}
    assert {name: (record["face"], record["truth"]) for name, record in records.items()} == {
        "20240501-120000-same": (1, first_truth), "20240501-120000-other": (2, disagrees)}
    for name, record in records.items():
        folder, found = flags / name, result.faces[record["face"] - 1]
        assert sorted(path.name for path in folder.iterdir()) == [demo.FLAG_RECORD, "upload.png"]
        assert (folder / record["file"]).read_bytes() == content
        assert record["box"] == list(found.box) and record["p_fake"] == found.p_fake
        assert record["verdict"] == found.verdict and record["threshold"] == detector.threshold
        assert record["model"]["backbone"] == detector.backbone and record["faces_mode"] == "on"
        assert record["name"] == "two-people.png" and record["time"] == "2024-05-01T12:00:00+00:00"


def widget_tree(widget) -> list:
    """What a widget tree shows, in order: each widget's type and its text, picture or label."""
    shown = [type(widget).__name__, getattr(widget, "value", None) if isinstance(widget, widgets.HTML) else
             getattr(widget, "description", None)]
    return [shown, *(widget_tree(child) for child in getattr(widget, "children", ()))]


def buttons(widget) -> list[widgets.Button]:
    found = [widget] if isinstance(widget, widgets.Button) else []
    return found + [button for child in getattr(widget, "children", ()) for button in buttons(child)]


def test_render_result_draws_a_card_per_face_with_its_flag_buttons(detector, tmp_path):
    result = demo.analyse_upload(detector, "<b>two</b>.png", png_bytes(two_people()))
    card = demo.render_result(result, detector, tmp_path / "flags")
    title, photo, *faces = card.children
    assert "&lt;b&gt;two&lt;/b&gt;.png: 2 faces found" in title.value  # names are escaped
    assert re.search(r"width='640' height='320' style='display:block;width:640px;max-width:100%;height:auto'",
                     photo.value)  # shrinks with the window, keeps its shape
    assert len(faces) == 2 and all("face-card" in face._dom_classes for face in faces)
    for number, face_card in enumerate(faces, 1):
        assert f"<b>Face {number}</b>" in face_card.children[0].value
        assert [button.description for button in buttons(face_card)] == ["It is real", "It is fake"]
    said = faces[1].children[-1]
    verdict = result.faces[1].verdict
    button = buttons(faces[1])[0 if verdict == "real" else 1]  # the one that agrees, or "real" if uncertain
    button.click()
    assert ("Not flagged" if verdict != "uncertain" else "Flagged face 2") in said.value
    bare = demo.render_result(result)  # without a flag folder: no buttons
    assert buttons(bare) == []
    error = demo.render_result(demo.analyse_upload(detector, "notes.txt", b"not an image"))
    assert "not an image file" in error.children[0].value and len(error.children) == 1


def test_no_face_card_offers_the_whole_image(detector):
    card = demo.render_result(demo.analyse_upload(detector, "coffee.png", png_bytes(skimage.data.coffee())), detector)
    (whole,) = buttons(card)
    assert whole.description == "Score the whole image" and "no face found" in card.children[0].value
    whole.click()
    assert "coffee.png, the whole image:" in card.children[0].value and "The whole image" in card.children[2].children[0].value


def test_upload_callback_adds_cards_and_clear_empties_them(detector, face, tmp_path):
    app = demo.build_app(detector, flag_dir=tmp_path)
    assert isinstance(app, widgets.VBox) and app.cards.children == ()
    app.upload.value = (as_upload("face.jpg", face), as_upload("empty.jpg", b""))
    assert len(app.cards.children) == 2 and app.upload.value == ()
    newest, oldest = app.cards.children
    assert "face.jpg: 1 face found" in oldest.children[0].value and "empty" in newest.children[0].value
    app.upload.value = (as_upload("again.jpg", face[: len(face) // 2]),)  # the app still works after an error
    assert len(app.cards.children) == 3 and "damaged or cut short" in app.cards.children[0].children[0].value
    app.clear_button.click()
    assert app.cards.children == () and app.upload.value == ()


def test_a_browser_upload_of_the_same_file_twice_gives_two_cards(detector, face):
    app = demo.build_app(detector)
    sent = {"value": [{"name": "face.jpg", "type": "image/jpeg", "size": len(face), "last_modified": 1714521600000,
                       "content": memoryview(face)}]}  # the JSON state the browser sends
    app.upload.set_state(sent)
    app.upload.set_state(sent)
    assert len(app.cards.children) == 2 and app.upload.value == ()


def test_an_unexpected_failure_stays_on_its_card(detector, face, monkeypatch):
    app = demo.build_app(detector)

    def broken(*args, **kwargs):
        raise RuntimeError("the model fell over")

    monkeypatch.setattr(demo, "analyse_upload", broken)
    app.upload.value = (as_upload("face.jpg", face),)
    assert "unexpected RuntimeError: the model fell over" in app.cards.children[0].children[0].value
    monkeypatch.undo()
    app.upload.value = (as_upload("face.jpg", face),)
    assert len(app.cards.children) == 2 and "1 face found" in app.cards.children[0].children[0].value


def test_upload_value_with_bytes(face):
    files = demo.uploaded_files((as_upload("a.jpg", face), {"name": "b.jpg", "content": face}))
    assert files == [("a.jpg", face), ("b.jpg", face)]


def test_add_files_reads_from_disk(detector, dfdc, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 half a header")
    app = demo.build_app(detector)
    app.add_files([sorted((dfdc / "Test" / "Real").iterdir())[0], broken])
    assert len(app.cards.children) == 2 and "broken.jpg" in app.cards.children[0].children[0].value


def test_lesson_07_shows_the_upload_widget_and_callback_that_build_app_packages(detector, face, tmp_path,
                                                                                monkeypatch):
    monkeypatch.setenv(config.FLAG_DIR_ENV, str(tmp_path / "flags"))
    cells = lesson_code("07_upload_demo.ipynb")
    assert len(cells) == 2 and "widgets.FileUpload(" in cells[0] and ".observe(" in cells[1]
    lesson = run_lesson_code(cells, {"detector": detector, "demo": demo})
    app = demo.build_app(detector)
    assert app.flag_dir == lesson["flag_dir"] == tmp_path / "flags"
    value = (as_upload("two-people.png", png_bytes(two_people())), as_upload("notes.txt", b"milk, eggs"))
    lesson["upload"].value = value
    app.upload.value = value
    assert lesson["upload"].value == app.upload.value == ()
    assert len(lesson["cards"].children) == 2
    assert widget_tree(lesson["cards"]) == widget_tree(app.cards)  # the same cards, pictures and scores included


def test_a_flag_is_refused_only_when_it_agrees_with_a_definite_verdict(tmp_path):
    pixels = np.zeros((8, 8, 3), dtype=np.uint8)
    faces = [demo.FaceResult(pixels, pixels, verdicts.Reading(p_fake, 0.5), (0, 0, 8, 8), number, 0.99)
             for number, p_fake in ((1, 0.99), (2, 0.01), (3, 0.5))]
    result = demo.DemoResult("faces.png", 0.5, {}, pixels, faces, content=b"pixels")
    assert [face.verdict for face in faces] == ["fake", "real", "uncertain"]
    said = {(number, truth): demo.save_flag(result, number, truth, tmp_path)
            for number in (1, 2, 3) for truth in config.CLASS_NAMES}
    refused = sorted(key for key, text in said.items() if text.startswith("Not flagged"))
    assert refused == [(1, "fake"), (2, "real")]
    assert len(list(tmp_path.glob(f"*/{demo.FLAG_RECORD}"))) == 4  # each other flag saved in a folder of its own
