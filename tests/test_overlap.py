"""The content-hash overlap check: a training image under a new name in a new folder is still recognised."""
import json
import shutil
import warnings

import pytest

from helpers import config, data, evaluate, saving


def test_renamed_copy_of_a_training_image_is_reported(trained_model_dir, dfdc, tmp_path):
    seen = json.loads((trained_model_dir / saving.TRAINING_FILES).read_text())
    assert set(seen) == {"train", "validation"} and all(seen.values())

    frame, _ = data.load_split(dfdc, config.get_profile("smoke"), progress=False)
    unseen = frame[frame["split"] == "test"].groupby("label").head(3)
    training_image = frame[frame["split"] == "train"].iloc[0]
    folder = tmp_path / "uploads"
    for row in unseen.itertuples():
        (folder / row.class_name).mkdir(parents=True, exist_ok=True)
        shutil.copy(row.path, folder / row.class_name / f"upload_{row.Index}.jpg")

    with warnings.catch_warnings():
        warnings.simplefilter("error", evaluate.OverlapWarning)  # test images only: no warning yet
        assert evaluate.evaluate(trained_model_dir, folder, split="all", progress=False).overlap is None

    shutil.copy(training_image.path, folder / training_image.class_name / "holiday_photo.jpg")
    with pytest.warns(evaluate.OverlapWarning, match="1 of 7 images are byte-identical"):
        result = evaluate.evaluate(trained_model_dir, folder, split="all", progress=False)
    assert "same files" not in result.overlap and "training data root" not in result.overlap
