"""Face finding and cropping (helpers.faces): the detector on known photos, the crop geometry, and the
promise that matters: a training-style face crop comes back as nearly itself."""
import math

import numpy as np
import pytest
import skimage.data

from helpers import data, faces, images, metrics, predict
from helpers.detector import Detector
from tests.conftest import GREY_MISS, grey

TIGHT = faces.CropStyle(scale=1.0, offset_x=0.0, offset_y=0.0, level_eyes=False, tilt_p90=0.0,
                        faces_found=1, images_sampled=1)


def coordinates(height: int, width: int) -> np.ndarray:
    """An image whose red channel is x and green channel is y: a crop tells where it came from."""
    y, x = np.mgrid[:height, :width]
    return np.stack([x, y, np.zeros_like(x)], axis=-1).astype(np.uint8)


def face_at(x, y, width, height, left_eye=None, right_eye=None) -> faces.Face:
    left_eye = left_eye or (x + width * 0.3, y + height * 0.4)
    right_eye = right_eye or (x + width * 0.7, y + height * 0.4)
    return faces.Face(x, y, width, height, 0.99, {"left_eye": left_eye, "right_eye": right_eye})


def test_finds_the_one_face_in_a_photo_and_none_in_a_scene():
    found = faces.find_faces(skimage.data.astronaut())
    assert len(found) == 1
    x, y, width, height = found[0].box()
    assert 150 < x < 220 and 40 < y < 100 and 60 < width < 120 and 80 < height < 140  # her face, by eye
    assert found[0].confidence > 0.95 and abs(found[0].tilt) < 10
    assert faces.find_faces(skimage.data.coffee()) == []


def test_a_second_look_in_equalised_grey_finds_a_grey_face_and_no_face_in_scenes(dfdc):
    colour = images.load_image(dfdc / GREY_MISS)
    (in_colour,) = faces.find_faces(colour)
    assert not in_colour.second_look
    assert faces.find_faces_in_many([grey(colour)], second_look=False) == [[]], "the first look should miss it"
    (found,) = faces.find_faces(grey(colour))
    assert found.second_look and found.confidence >= faces.MIN_CONFIDENCE
    assert np.abs(np.array(found.box()) - np.array(in_colour.box())).max() <= 0.15 * in_colour.size
    scenes = [skimage.data.coffee(), skimage.data.chelsea(), skimage.data.stereo_motorcycle()[0]]
    assert faces.find_faces_in_many(scenes) == [[]] * len(scenes)


def test_a_huge_photo_is_searched_small_but_boxed_in_its_own_pixels():
    photo = skimage.data.astronaut()
    big = np.kron(photo, np.ones((4, 4, 1), dtype=np.uint8))  # 2048 px: shrunk to 1024 for finding
    small_box = np.array(faces.find_faces(photo)[0].box())
    big_box = np.array(faces.find_faces(big)[0].box())
    assert np.abs(big_box - 4 * small_box).max() <= 12


def test_many_photos_of_mixed_shapes_give_the_same_faces_as_one_by_one():
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.astronaut()[:400]]
    together = faces.find_faces_in_many(photos)
    alone = [faces.find_faces(photo) for photo in photos]
    assert [[f.box() for f in found] for found in together] == [[f.box() for f in found] for found in alone]


def test_crop_is_the_styled_square_around_the_face():
    photo = coordinates(200, 240)
    face = face_at(100, 50, 40, 60)  # size sqrt(40 * 60) = 49.0, centre (120, 80)
    style = faces.CropStyle(1.5, 0.2, -0.1, False, 0.0, 1, 1)
    crop = faces.crop_face(photo, face, style)
    side = round(1.5 * face.size)
    assert crop.shape == (side, side, 3)
    centre_x, centre_y = 120 + 0.2 * face.size, 80 - 0.1 * face.size
    assert crop[0, 0, 0] == round(centre_x - side / 2) and crop[0, 0, 1] == round(centre_y - side / 2)


def test_crop_beyond_the_edge_repeats_the_edge():
    photo = coordinates(100, 100)
    crop = faces.crop_face(photo, face_at(-20, 10, 40, 40), TIGHT)  # half of the face is off the photo
    assert crop.shape == (40, 40, 3)
    assert (crop[:, :20, 0] == 0).all() and (crop[:, 20:, 0] == np.arange(0, 20)).all()


def test_level_eyes_turns_a_tilted_face_level():
    photo = np.zeros((300, 300, 3), dtype=np.uint8)
    tilt = math.radians(20)
    centre, half = np.array([150.0, 140.0]), 40.0
    eyes = [centre - half * np.array([math.cos(tilt), math.sin(tilt)]),
            centre + half * np.array([math.cos(tilt), math.sin(tilt)])]
    for x, y in eyes:
        photo[round(y) - 3:round(y) + 4, round(x) - 3:round(x) + 4] = 255
    face = face_at(100, 100, 100, 120, tuple(eyes[0]), tuple(eyes[1]))
    assert face.tilt == pytest.approx(20)
    style = faces.CropStyle(1.2, 0.0, 0.0, True, 2.0, 1, 1)
    crop = faces.crop_face(photo, face, style)
    rows, columns = np.nonzero(crop[..., 0] > 128)
    left, right = columns < crop.shape[1] / 2, columns >= crop.shape[1] / 2
    assert left.any() and right.any()
    assert abs(rows[left].mean() - rows[right].mean()) < 1.5  # the two eyes on one row
    assert abs(columns[right].mean() - columns[left].mean() - 2 * half) < 2  # and as far apart as before


def test_too_few_faces_is_a_clear_error():
    scenes = [skimage.data.coffee(), skimage.data.rocket(), skimage.data.astronaut()]
    with pytest.raises(faces.TooFewFacesError, match="only 1 of 3 training images"):
        faces.measure_crop_style(scenes)


def test_style_round_trips_through_the_sidecar():
    assert faces.CropStyle.from_metadata({faces.STYLE_KEY: TIGHT.as_dict()}) == TIGHT
    assert faces.CropStyle.from_metadata({}) is None


# ----------------------------------------------------------------------------- on the shared face sets
def test_the_two_sets_are_cropped_differently(dfdc, ffhq):
    styles = {name: faces.crop_style_of(data.by_split(data.index_dataset(root))["train"]["path"], sample=60)
              for name, root in (("dfdc", dfdc), ("ffhq", ffhq))}
    assert 0.85 < styles["dfdc"].scale < 1.15 and not styles["dfdc"].level_eyes  # tight, video frames
    assert styles["ffhq"].scale > 1.25 and styles["ffhq"].level_eyes  # loose, aligned photos
    assert styles["dfdc"].faces_found >= 50 and styles["ffhq"].faces_found >= 55


@pytest.mark.parametrize("model_fixture, root_fixture", [("trained_model_dir", "dfdc"),
                                                         ("trained_ffhq_model_dir", "ffhq")])
def test_finding_faces_in_face_crops_keeps_the_roc_auc(model_fixture, root_fixture, request):
    """The training-style crops of a test split, found and cropped again, score as they did (within 0.02)."""
    detector = Detector.load(request.getfixturevalue(model_fixture), verbose=False)
    assert detector.crop_style is not None and detector.crop_style.faces_found > 0  # train measured it
    test = data.by_split(data.index_dataset(request.getfixturevalue(root_fixture)))["test"]
    paths, labels = test["path"].tolist(), test["label"].to_numpy()
    as_given = [p.p_fake for p in predict.predict_files(detector, paths, progress=False, faces="off")]
    found = {}
    for p in predict.predict_files(detector, paths, progress=False, faces="auto"):
        found.setdefault(p.source, p)  # the leftmost face: a crop shows one
    assert sum(p.faces_found == 1 for p in found.values()) > 0.8 * len(paths)
    with_faces = [found[path].p_fake for path in paths]
    assert abs(metrics.roc_auc(labels, with_faces) - metrics.roc_auc(labels, as_given)) <= 0.02
