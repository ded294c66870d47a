"""Finding the final model: load it, train it on the spot in the smoke profile, or ask for lesson 04."""
import shutil

import pytest

from helpers import config, files, lessons, model_folders, saving, train
from helpers.errors import FolderExistsError, MissingModelError
from helpers.detector import Detector


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")
    return tmp_path / "models"


def test_other_profiles_ask_for_the_lesson_that_trains_it(models_dir, dfdc):
    with pytest.raises(FileNotFoundError, match="run lesson 04 first .*--profile cpu"):
        lessons.load_final_model(dfdc, "cpu")
    with pytest.raises(FileNotFoundError, match="run lesson 08 first .*--mode real\\+sbi"):
        lessons.load_final_model(dfdc, "cpu", mode="real+sbi")
    with pytest.raises(FileNotFoundError, match="run lesson 03 first"):
        lessons.load_stage1(dfdc, "cpu")


def test_smoke_trains_a_missing_stage1_model(models_dir, dfdc):
    model, metadata, history = lessons.load_stage1(dfdc, "smoke", verbose=0)
    assert (models_dir / "smoke-dfdc-faces" / "stage1" / "model.keras").is_file()
    assert metadata["profile"] == "smoke" and list(history["stage"].unique()) == ["stage1"]
    assert model.get_layer("prediction").output.shape == (None, 2)


def test_smoke_trains_a_missing_model_then_loads_it(models_dir, dfdc, trained_model_dir, monkeypatch, capsys):
    calls = []

    def fake_train(root, profile, out_dir, verbose, mode, overwrite):  # stands in for the 20 s training run
        calls.append((root, profile.name, out_dir, mode))
        shutil.copytree(trained_model_dir, out_dir)

    monkeypatch.setattr(train, "train", fake_train)
    detector = lessons.load_final_model(dfdc, "smoke")
    expected = models_dir / "smoke-dfdc-faces"
    assert calls == [(dfdc, "smoke", expected, "real+fake")] and "training one now" in capsys.readouterr().out
    assert isinstance(detector, Detector) and detector.directory == expected

    again = lessons.load_final_model(dfdc, config.get_profile("smoke"))  # now it exists: no second run
    assert len(calls) == 1 and again.threshold == detector.threshold


def test_a_missing_model_stops_a_notebook_with_one_line(models_dir, tmp_path):
    with pytest.raises(MissingModelError) as caught:
        lessons.load_final_model(tmp_path / "my-faces", "cpu")
    lines = caught.value._render_traceback_()  # what IPython shows instead of the traceback
    assert len(lines) == 1 and "\n" not in lines[0]
    assert f"deepfake-lessons train --data {tmp_path / 'my-faces'} --profile cpu" in lines[0]
    assert "min on 2 CPU cores" in lines[0]


def write_sidecar(folder, data_root):
    folder.mkdir(parents=True)
    files.write_json(folder / saving.SIDECAR_FILE, {"backbone": "efficientnet_lite0", "image_size": 96,
                                                    "class_names": ["real", "fake"], "threshold": 0.5,
                                                    "files": {saving.MODEL_FILE: "0" * 64, saving.WEIGHTS_FILE: "1" * 64},
                                                    "data": {"root": str(data_root)}})


@pytest.mark.parametrize("saved", ["", "stage1"])
def test_two_data_roots_with_one_folder_name_never_share_a_model(models_dir, tmp_path, saved):
    first, second = tmp_path / "a" / "faces", tmp_path / "b" / "faces"
    first.mkdir(parents=True), second.mkdir(parents=True)
    folder = model_folders.model_dir(first, config.get_profile("smoke"))
    write_sidecar(folder / saved, first)
    assert model_folders.model_dir(first, config.get_profile("smoke")) == folder
    with pytest.raises(FolderExistsError, match=f"trained on {first}, another data root called 'faces'"):
        model_folders.model_dir(second, config.get_profile("smoke"))
    with pytest.raises(FolderExistsError, match="another data root"):
        lessons.load_final_model(second, "smoke")  # rather than serve the first root's model
    first.rename(tmp_path / "a" / "moved")  # the first root is gone: its model may be this data, moved
    assert model_folders.model_dir(second, config.get_profile("smoke")) == folder
