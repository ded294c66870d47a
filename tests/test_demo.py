"""The upload demo: real face bytes, whole photos, bad bytes, and the app's callback on a simulated FileUpload value."""
import io
from datetime import datetime, timezone

import ipywidgets as widgets
import numpy as np
import pytest
import skimage.data
from PIL import Image

from helpers import demo
from helpers.detector import as_detector
from tests.test_predict import write_bad_files


@pytest.fixture(scope="module")
def detector(trained_model_dir):
    return as_detector(trained_model_dir)


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


def test_a_real_face_is_scored_and_explained(detector, face):
    result = demo.analyse_upload(detector, "face.jpg", memoryview(face))
    assert result.ok and result.threshold == detector.threshold and len(result.faces) == 1
    (found,) = result.faces
    assert found.number == 1 and found.box is not None
    assert 0.0 <= found.p_fake <= 1.0 and found.label == detector.label(found.p_fake)
    assert result.image.dtype == np.uint8 and result.image.shape == (224, 224, 3)
    assert found.crop.dtype == np.uint8 and found.overlay.shape == found.crop.shape
    assert not np.array_equal(found.overlay, found.crop)
    expected = detector.predict_photo(face)  # the same decoding, face finding and cropping as everywhere else
    assert found.p_fake == pytest.approx(expected[0].p_fake, abs=1e-6) and found.box == expected[0].box


def test_a_whole_photo_gets_its_face_boxed_and_cropped(detector):
    photo = skimage.data.astronaut()
    result = demo.analyse_upload(detector, "astronaut.png", png_bytes(photo))
    assert result.ok and result.note is None and len(result.faces) == 1
    (found,) = result.faces
    assert found.number == 1 and found.box == detector.predict_photo(photo)[0].box
    assert found.crop.shape[0] == found.crop.shape[1]  # a square face crop, not the photo
    plain = demo.analyse_upload(detector, "astronaut.png", png_bytes(photo), faces="off")
    assert plain.faces[0].box is None and not np.array_equal(plain.image, result.image)  # the box is drawn


def test_no_face_scores_the_whole_image_or_says_so(detector):
    scene = png_bytes(skimage.data.coffee())
    result = demo.analyse_upload(detector, "coffee.png", scene)
    assert result.ok and result.note == demo.NO_FACE_NOTE and len(result.faces) == 1
    assert result.faces[0].box is None and result.faces[0].crop.shape == result.image.shape
    refused = demo.analyse_upload(detector, "coffee.png", scene, faces="on")
    assert not refused.ok and refused.error == demo.NO_FACE_ERROR and refused.faces == []


def test_a_large_photo_is_shown_small(detector, face):
    big = io.BytesIO()
    Image.open(io.BytesIO(face)).resize((900, 600)).save(big, format="PNG")
    result = demo.analyse_upload(detector, "wide.png", big.getvalue())
    assert result.image.shape == (149, 224, 3)
    assert all(found.overlay.shape == found.crop.shape for found in result.faces)


def test_bad_files_give_plain_messages(detector, face, tmp_path):
    expected = write_bad_files(tmp_path, face)
    for name, words in expected.items():
        result = demo.analyse_upload(detector, name, (tmp_path / name).read_bytes())
        assert not result.ok and words in result.error and result.faces == [] and result.image is None
        assert not result.error.startswith(name)  # the card shows the name once, in bold


def test_oversized_uploads_are_refused(detector, face):
    huge = io.BytesIO()
    Image.new("1", (7000, 7000)).save(huge, format="PNG")  # 49 megapixels in a few kilobytes
    result = demo.analyse_upload(detector, "huge.png", huge.getvalue())
    assert "7000x7000 pixels is more than" in result.error
    result = demo.analyse_upload(detector, "face.jpg", face, max_bytes=1000)
    assert "larger than" in result.error and result.faces == []


def test_render_result_cards(detector, face):
    card = demo.render_result(demo.analyse_upload(detector, "<b>face</b>.jpg", face))
    title, (photo, rows) = card.children[0], card.children[1].children
    assert isinstance(card, widgets.VBox) and "&lt;b&gt;face&lt;/b&gt;.jpg" in title.value  # names are escaped
    (row,) = rows.children
    crop, overlay, verdict = row.children
    bar = next(child for child in verdict.children if isinstance(child, widgets.FloatProgress))
    assert 0.0 <= bar.value <= 1.0 and "face 1" in verdict.children[0].value
    assert all(isinstance(child, widgets.Image) and bytes(child.value).startswith(b"\x89PNG")
               for child in (photo, crop, overlay))
    error = demo.render_result(demo.analyse_upload(detector, "notes.txt", b"not an image"))
    assert isinstance(error, widgets.HTML) and "not an image file" in error.value


def test_upload_callback_adds_cards_and_clear_empties_them(detector, face):
    app = demo.build_app(detector)
    assert isinstance(app, widgets.VBox) and app.cards.children == ()
    app.upload.value = (as_upload("face.jpg", face), as_upload("empty.jpg", b""))
    assert len(app.cards.children) == 2 and app.upload.value == ()
    newest, oldest = app.cards.children
    assert isinstance(oldest, widgets.VBox) and "empty" in newest.value  # newest first
    app.upload.value = (as_upload("again.jpg", face[: len(face) // 2]),)  # the app still works after an error
    assert len(app.cards.children) == 3 and "truncated" in app.cards.children[0].value
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
    assert "unexpected RuntimeError: the model fell over" in app.cards.children[0].value
    monkeypatch.undo()
    app.upload.value = (as_upload("face.jpg", face),)
    assert len(app.cards.children) == 2 and isinstance(app.cards.children[0], widgets.VBox)


def test_upload_value_with_bytes(detector, face):
    files = demo.uploaded_files((as_upload("a.jpg", face), {"name": "b.jpg", "content": face}))
    assert files == [("a.jpg", face), ("b.jpg", face)]


def test_add_files_reads_from_disk(detector, dfdc, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 half a header")
    app = demo.build_app(detector)
    app.add_files([sorted((dfdc / "Test" / "Real").iterdir())[0], broken])
    assert len(app.cards.children) == 2 and "broken.jpg" in app.cards.children[0].value
