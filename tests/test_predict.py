"""Predicting with a saved model: every kind of input, bad files, batches, the CLI and damaged model folders."""
import json
import os
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import cli, files, images, predict, saving
from helpers.detector import Detector, NO_FACE, NoCropStyleError, as_detector
from helpers.faces import find_faces
from tests.conftest import byte_names, run_in_process, the_error_line, tree, undecodable, write_bad_files


@pytest.fixture(scope="module")
def faces(dfdc) -> list:
    """Four real and four fake test faces."""
    return [path for name in ("Real", "Fake") for path in sorted((dfdc / "Test" / name).iterdir())[:4]]


def test_every_kind_of_source_gives_the_same_score(detector, faces):
    path = faces[-1]
    sources = [path, str(path), path.read_bytes(), Image.open(path), images.load_image(path)]
    predictions = [detector.predict_image(source) for source in sources]
    first = predictions[0]
    assert 0.0 <= first.p_fake <= 1.0 and first.ok and first.source == str(path)
    assert first.label == ("fake" if first.p_fake >= detector.threshold else "real")
    assert first.threshold == detector.metadata["threshold"] and first.backbone == "efficientnet_lite0"
    for prediction in predictions[1:]:
        assert prediction.p_fake == pytest.approx(first.p_fake, abs=1e-6)
        assert prediction.label == first.label
    assert predictions[2].source == "image" and predictions[3].source == str(path)


def test_module_level_call_reuses_the_loaded_model(trained_model_dir, detector, faces):
    assert as_detector(trained_model_dir) is detector
    assert predict.predict_image(trained_model_dir, faces[0]) == detector.predict_image(faces[0])
    assert predict.predict_image(detector, faces[0], name="upload.jpg").source == "upload.jpg"


def test_threshold_decides_the_label(detector, faces):
    scores = [detector.predict_image(path).p_fake for path in faces]
    for score in scores:
        assert detector.label(score) == ("fake" if score >= detector.threshold else "real")
    assert detector.label(detector.threshold) == "fake"  # at the threshold counts as fake, as in metrics


def test_bad_input_raises_a_plain_value_error(detector, faces, tmp_path):
    expected = write_bad_files(tmp_path, faces[0].read_bytes())
    for name, message in expected.items():
        with pytest.raises(ValueError, match=message):
            detector.predict_image(tmp_path / name)
        with pytest.raises(ValueError, match=message):
            detector.predict_image((tmp_path / name).read_bytes())
    with pytest.raises(ValueError, match="no such file"):
        detector.predict_image(tmp_path / "missing.jpg")


def test_predict_files_reports_bad_files_and_keeps_going(detector, faces, tmp_path):
    expected = write_bad_files(tmp_path / "bad", faces[0].read_bytes())
    paths = [faces[0], tmp_path / "bad" / "empty.jpg", tmp_path / "missing.jpg", tmp_path / "bad", faces[1]]
    predictions = predict.predict_files(detector, paths, batch_size=2, progress=False)
    by_source = {p.source: p for p in predictions}
    assert [p.source for p in predictions] == [str(faces[0]), str(tmp_path / "bad" / "empty.jpg"),
                                               str(tmp_path / "missing.jpg"),
                                               *(str(tmp_path / "bad" / name) for name in sorted(expected)),
                                               str(faces[1])]
    assert by_source[str(faces[0])].ok and by_source[str(faces[1])].ok
    assert "no such file" in by_source[str(tmp_path / "missing.jpg")].error
    for name, message in expected.items():
        bad = by_source[str(tmp_path / "bad" / name)]
        assert message in bad.error and bad.p_fake is None and bad.label is None
        assert not bad.error.startswith(str(tmp_path))  # the reason alone; the file is in `source`


def test_batches_score_like_single_images(detector, faces):
    batched = predict.predict_files(detector, faces, batch_size=3, progress=False)
    single = [detector.predict_image(path).p_fake for path in faces]
    np.testing.assert_allclose([p.p_fake for p in batched], single, atol=1e-5)
    assert len({round(score, 6) for score in single}) > 1  # the model does not answer one constant


def test_finding_faces_holds_few_whole_photos_at_once(detector, tmp_path, monkeypatch):
    for i in range(3 * predict.PHOTOS_AT_ONCE):
        png(tmp_path, f"scene_{i:02d}.png", np.full((40, 60, 3), i, np.uint8))
    held, most, lock = [0], [0], threading.Lock()  # photos decoded and not yet scored; the most at once
    load, score = predict._load, detector.score

    def counted_load(path, mode, image_size):
        with lock:
            held[0] += 1
            most[0] = max(most[0], held[0])
        return load(path, mode, image_size)

    def counted_score(mode, names, loaded):
        with lock:
            held[0] -= len(loaded)
        return score(mode, names, loaded)

    monkeypatch.setattr(predict, "_load", counted_load)
    monkeypatch.setattr(detector, "score", counted_score)
    predictions = predict.predict_files(detector, [tmp_path], batch_size=32, progress=False, faces="auto")
    assert len(predictions) == 3 * predict.PHOTOS_AT_ONCE
    assert most[0] <= 2 * predict.PHOTOS_AT_ONCE  # this batch and the next one, however large batch_size is
    most[0] = 0
    predict.predict_files(detector, [tmp_path], batch_size=32, progress=False, faces="off")  # resized images are small
    assert most[0] == 3 * predict.PHOTOS_AT_ONCE


def test_folders_expand_to_their_images_recursively(tmp_path, faces):
    for relative in ("b.jpg", "a/c.PNG", "a/deeper/d.jpeg", "notes.txt", ".hidden/e.jpg", ".f.jpg"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"")
    expanded, skipped = predict.expand_paths([tmp_path, tmp_path / "notes.txt"])
    assert [p.relative_to(tmp_path).as_posix() for p in expanded] == [
        "a/c.PNG", "a/deeper/d.jpeg", "b.jpg", "notes.txt"]  # a file named explicitly is always tried
    assert skipped == {}


def test_folders_report_links_and_unreadable_folders(tmp_path, monkeypatch):
    (tmp_path / "in" / "locked").mkdir(parents=True)
    (tmp_path / "in" / "a.jpg").write_bytes(b"")
    (tmp_path / "in" / "link.jpg").symlink_to(tmp_path / "in" / "a.jpg")
    (tmp_path / "in" / "linked").symlink_to(tmp_path / "in" / "locked", target_is_directory=True)
    scandir = os.scandir

    def refuse_locked(path):  # chmod cannot lock a folder for root, so refuse it here
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse_locked)
    expanded, skipped = predict.expand_paths([tmp_path / "in", tmp_path / "in" / "link.jpg"])
    assert expanded == [tmp_path / "in" / "a.jpg", tmp_path / "in" / "link.jpg"]  # a link named explicitly is tried
    reasons = {path.name: reason for path, reason in skipped.items()}
    assert set(reasons) == {"link.jpg", "linked", "locked"}
    assert "symbolic link" in reasons["link.jpg"] and "symbolic link" in reasons["linked"]
    assert "cannot read the folder (Permission denied)" in reasons["locked"]


def test_arrays_of_the_wrong_size_are_refused(detector):
    with pytest.raises(ValueError, match="load_resized"):
        detector.p_fake(np.zeros((2, 10, 10, 3), np.uint8))


def test_command_line_prints_a_table_and_writes_csv(trained_model_dir, faces, tmp_path, capsys):
    write_bad_files(tmp_path / "in", faces[0].read_bytes())
    shutil.copy(faces[0], tmp_path / "in" / "face.jpg")
    out = tmp_path / "out" / "predictions.csv"
    assert cli.main(["predict", str(trained_model_dir), str(tmp_path / "in"), "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "face.jpg" in printed and "1 image scored (1 face), 3 left out." in printed
    assert "left out: " in printed and "empty" in printed
    table = pd.read_csv(out)
    assert list(table.columns) == ["source", "label", "p_fake", "threshold", "backbone", "error", "faces_found",
                                   "face", "face_confidence", "box_x", "box_y", "box_width", "box_height"]
    assert len(table) == 4 and table["error"].notna().sum() == 3
    scored = table[table["error"].isna()].iloc[0]
    assert scored["faces_found"] == 1 and scored["face"] == 1 and scored["box_width"] > 40  # a face, boxed


@byte_names
def test_a_file_name_that_is_not_utf8_is_scored_and_printed_escaped(trained_model_dir, detector, faces, tmp_path,
                                                                    capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(faces[0], undecodable(folder))
    shutil.copy(faces[0], folder / "face.jpg")
    undecodable(folder, b"notes\xfe.jpg").write_bytes(b"shopping list\n")
    by_source = {p.source: p for p in predict.predict_files(detector, [folder], progress=False)}
    assert by_source[str(undecodable(folder))].p_fake == pytest.approx(by_source[str(folder / "face.jpg")].p_fake)
    out = tmp_path / "out" / "predictions.csv"
    assert cli.main(["predict", str(trained_model_dir), str(folder), "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bad\\xff.jpg" in printed and f"left out: {folder}/notes\\xfe.jpg: not an image" in printed
    assert os.listdir(out.parent) == ["predictions.csv"]  # written whole, no temporary left behind
    table = pd.read_csv(out)
    assert table["source"].tolist() == [f"{folder}/bad\\xff.jpg", f"{folder}/face.jpg", f"{folder}/notes\\xfe.jpg"]
    assert table["p_fake"].iloc[0] == pytest.approx(table["p_fake"].iloc[1]) and table["error"].notna().sum() == 1


def test_command_line_exits_2_when_nothing_could_be_scored(trained_model_dir, faces, tmp_path, capsys):
    write_bad_files(tmp_path / "in", faces[0].read_bytes())
    (tmp_path / "in" / "link.jpg").symlink_to(faces[0])
    assert cli.main(["predict", str(trained_model_dir), str(tmp_path / "in")]) == 2
    printed = capsys.readouterr()
    assert f"left out: {tmp_path / 'in' / 'link.jpg'}: a symbolic link" in printed.out
    assert "nothing could be scored" in printed.err and "all 4 files were left out" in printed.err
    (tmp_path / "empty").mkdir()
    assert cli.main(["predict", str(trained_model_dir), str(tmp_path / "empty")]) == 2
    assert "no image files were found" in capsys.readouterr().err


def test_command_line_fails_plainly_without_a_model(tmp_path, capsys):
    assert cli.main(["predict", str(tmp_path), str(tmp_path)]) == 2
    assert "model.json" in capsys.readouterr().err


# ----------------------------------------------------------------------------- whole photos: faces found and cropped
def png(folder: Path, name: str, pixels: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(folder / name)
    return folder / name


def test_a_photo_gets_a_row_per_face_and_a_scene_the_whole_image(detector, tmp_path):
    import skimage.data

    photo = np.concatenate([skimage.data.astronaut(), skimage.data.astronaut()[:, ::-1]], axis=1)  # two faces
    paths = [png(tmp_path, "two.png", photo), png(tmp_path, "coffee.png", skimage.data.coffee())]
    rows = predict.predict_files(detector, paths, progress=False, faces="auto")
    two, coffee = [p for p in rows if p.source.endswith("two.png")], [p for p in rows if p.source.endswith("coffee.png")]
    assert [p.face for p in two] == [1, 2] and all(p.faces_found == 2 and p.ok for p in two)
    assert two[0].box[0] < 512 <= two[1].box[0]  # left to right
    assert two[0].p_fake == pytest.approx(detector.predict_photo(photo)[0].p_fake, abs=1e-6)
    (whole,) = coffee
    assert whole.ok and whole.faces_found == 0 and whole.face is None and whole.box is None
    assert whole.p_fake == pytest.approx(detector.predict_image(paths[1]).p_fake, abs=1e-6)
    (refused,) = predict.predict_files(detector, paths[1:], progress=False, faces="on")
    assert not refused.ok and refused.error == NO_FACE and refused.faces_found == 0
    (as_is,) = predict.predict_files(detector, paths[:1], progress=False, faces="off")
    assert as_is.faces_found is None and as_is.p_fake == pytest.approx(detector.predict_image(paths[0]).p_fake)


def test_a_face_crop_comes_back_as_nearly_itself(detector, faces):
    style = detector.crop_style
    assert style is not None and 0.8 < style.scale < 1.2  # dfdc's crops are tight
    sides, shifts = [], []
    for path in faces:
        (found,) = detector.predict_photo(path)
        if found.box is not None:
            x, y, width, height = found.box
            size = (width * height) ** 0.5
            sides.append(style.scale * size / 224)  # the crop's side, as a share of the image's own
            shifts.append(np.hypot(x + width / 2 + style.offset_x * size - 112, y + height / 2 + style.offset_y * size - 112))
    assert len(sides) >= 6
    assert abs(np.median(sides) - 1) < 0.1 and np.median(shifts) < 0.1 * 224


def test_a_model_without_a_crop_style_scores_whole_images(model_copy, faces, tmp_path):
    sidecar = json.loads((model_copy / saving.SIDECAR_FILE).read_text())
    del sidecar["face_crop"]
    files.write_json(model_copy / saving.SIDECAR_FILE, sidecar)
    detector = Detector.load(model_copy, verbose=False)
    assert detector.crop_style is None and detector.face_mode("auto") == "off"
    (whole,) = detector.predict_photo(faces[0])
    assert whole.faces_found is None and whole.p_fake == pytest.approx(detector.predict_image(faces[0]).p_fake)
    with pytest.raises(NoCropStyleError, match="records no face crop style"):
        detector.predict_photo(faces[0], faces="on")
    with pytest.raises(ValueError, match="Unknown faces mode"):
        detector.predict_photo(faces[0], faces="yes")


# ----------------------------------------------------------------------------- the saved model folder
@pytest.fixture
def model_copy(trained_model_dir, tmp_path):
    return shutil.copytree(trained_model_dir, tmp_path / "model", ignore=shutil.ignore_patterns("checkpoints"))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def test_rebuilding_from_weights_gives_identical_predictions(model_copy, faces, capsys):
    batch = np.stack([images.load_resized(path, 96) for path in faces])
    from_keras_file = Detector.load(model_copy).p_fake(batch)
    assert "rebuilding" not in capsys.readouterr().out
    _truncate(model_copy / saving.MODEL_FILE)
    rebuilt = Detector.load(model_copy)
    assert "rebuilding" in capsys.readouterr().out
    np.testing.assert_allclose(rebuilt.p_fake(batch), from_keras_file, atol=1e-6)


def test_damaged_weights_name_the_file(model_copy):
    _truncate(model_copy / saving.MODEL_FILE)
    _truncate(model_copy / saving.WEIGHTS_FILE)
    with pytest.raises(saving.ModelFileError, match="model.weights.h5"):
        Detector.load(model_copy, verbose=False)


def test_missing_sidecar_is_a_model_file_error(model_copy):
    (model_copy / saving.SIDECAR_FILE).unlink()
    with pytest.raises(saving.ModelFileError, match="model.json"):
        Detector.load(model_copy)


# ----------------------------------------------------------------------------- the command's main paths (issue 26, item 5)
@pytest.fixture(scope="module")
def photos(tmp_path_factory, dfdc) -> dict[str, Path]:
    """A face crop, a folder of two, a photo without a face, and one with two faces (scikit-image's astronaut)."""
    import skimage.data

    folder = tmp_path_factory.mktemp("photos")
    crops = [path for path in sorted((dfdc / "Test" / "Real").iterdir())[:12]
             if len(find_faces(np.asarray(Image.open(path).convert("RGB")))) == 1][:3]
    assert len(crops) == 3, "the face finder finds one face in too few dfdc-faces test crops"
    shutil.copy(crops[0], folder / "crop.jpg")
    (folder / "crops").mkdir()
    for crop in crops[1:]:
        shutil.copy(crop, folder / "crops" / crop.name)
    Image.fromarray(skimage.data.coffee()).save(folder / "coffee.png")
    two = np.concatenate([skimage.data.astronaut(), skimage.data.astronaut()[:, ::-1]], axis=1)
    Image.fromarray(two).save(folder / "two-faces.png")
    return {"a file": folder / "crop.jpg", "a folder": folder / "crops", "no face": folder / "coffee.png",
            "several faces": folder / "two-faces.png"}


# What each run counts (its summary line), its exit status, and its CSV's rows.
EXPECTED = {
    ("off", "a file"): ("1 image scored, 0 left out.", 0, 1),
    ("off", "a folder"): ("2 images scored, 0 left out.", 0, 2),
    ("off", "no face"): ("1 image scored, 0 left out.", 0, 1),
    ("off", "several faces"): ("1 image scored, 0 left out.", 0, 1),
    ("auto", "a file"): ("1 image scored (1 face), 0 left out.", 0, 1),
    ("auto", "a folder"): ("2 images scored (2 faces), 0 left out.", 0, 2),
    ("auto", "no face"): ("1 image scored (1 image with no face found, scored whole), 0 left out.", 0, 1),
    ("auto", "several faces"): ("1 image scored (2 faces), 0 left out.", 0, 2),
    ("on", "a file"): ("1 image scored (1 face), 0 left out.", 0, 1),
    ("on", "a folder"): ("2 images scored (2 faces), 0 left out.", 0, 2),
    ("on", "no face"): ("0 images scored, 1 left out.", 2, 1),
    ("on", "several faces"): ("1 image scored (2 faces), 0 left out.", 0, 2),
}


@pytest.mark.parametrize("csv", [False, True], ids=["printed", "with --csv"])
@pytest.mark.parametrize("what", ["a file", "a folder", "no face", "several faces"])
@pytest.mark.parametrize("mode", ["on", "off", "auto"])
def test_predicts_main_paths(mode, what, csv, trained_model_dir, photos, tmp_path, capsys):
    """Each face mode on each kind of input, printed and written as CSV, as the command runs (`cli.main`)."""
    count, status, rows = EXPECTED[mode, what]
    out = tmp_path / "scores.csv"
    before = tree(photos["a file"].parent) | tree(trained_model_dir)
    result = run_in_process(["predict", trained_model_dir, photos[what], "--faces", mode]
                            + (["--csv", out] if csv else []), capsys)
    assert result.returncode == status, result.stderr
    assert [line for line in result.stdout.splitlines() if re.match(r"\d+ images? scored", line)] == [count]
    if status:
        assert "nothing could be scored" in the_error_line(result.stderr)
    if csv:
        table = pd.read_csv(out)
        assert len(table) == rows and table["error"].isna().sum() == (rows if status == 0 else 0)
    else:
        assert not out.exists()
    assert tree(photos["a file"].parent) | tree(trained_model_dir) == before


def test_overwrite_replaces_an_earlier_csv_and_only_it(trained_model_dir, photos, tmp_path, capsys):
    scores = tmp_path / "scores.csv"
    scores.write_text("an earlier run's scores\n")
    refused = run_in_process(["predict", trained_model_dir, photos["a folder"], "--csv", scores], capsys)
    assert refused.returncode == 2 and "already exists" in the_error_line(refused.stderr)
    assert scores.read_text() == "an earlier run's scores\n"
    assert run_in_process(["predict", trained_model_dir, photos["a folder"], "--csv", scores, "--overwrite"],
                          capsys).returncode == 0
    assert len(pd.read_csv(scores)) == 2 and sorted(path.name for path in tmp_path.iterdir()) == ["scores.csv"]
