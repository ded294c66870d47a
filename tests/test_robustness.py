"""ROC-AUC under perturbations: the table's shape, its intervals, the clean step, and repeatability."""
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from helpers import data, predict, robustness

LEVELS = {"jpeg": [60, 10], "downscale": [4], "blur": [2.0]}


@pytest.fixture(scope="module")
def detector(trained_model_dir):
    return predict.as_detector(trained_model_dir)


@pytest.fixture(scope="module")
def faces(dfdc) -> pd.DataFrame:
    """Six real and six fake test faces."""
    frame = data.index_dataset(dfdc)
    return frame[frame["split"] == "test"].groupby("label").head(6).reset_index(drop=True)


@pytest.fixture(scope="module")
def table(detector, faces) -> pd.DataFrame:
    return robustness.robustness_table(detector, faces, levels=LEVELS)


def test_one_row_per_perturbation_and_step(table):
    assert list(table.columns) == robustness.COLUMNS
    assert list(table["perturbation"]) == ["jpeg"] * 3 + ["downscale"] * 2 + ["blur"] * 2
    assert list(table["step"]) == [0, 1, 2, 0, 1, 0, 1]
    assert table.loc[table["step"] > 0, "level"].tolist() == [60, 10, 4, 2.0]
    assert table.loc[table["step"] == 0, "level"].isna().all()
    assert table["roc_auc"].between(0, 1).all() and table["balanced_accuracy"].between(0, 1).all()


def test_every_number_has_its_interval(table):
    for column in ("roc_auc", "balanced_accuracy"):
        assert (table[f"{column}_low"] <= table[column]).all() and (table[column] <= table[f"{column}_high"]).all()
    assert (table["roc_auc_high"] - table["roc_auc_low"] > 0.1).all(), "twelve images leave a wide interval"


def test_step_zero_is_the_clean_auc(table, detector, faces):
    clean = detector.p_fake(data.load_images(faces, detector.image_size))  # what evaluate and predict see
    expected = skm.roc_auc_score(faces["label"], clean)
    assert np.allclose(table.loc[table["step"] == 0, "roc_auc"], expected)


def test_repeatable(table, detector, faces):
    pd.testing.assert_frame_equal(robustness.robustness_table(detector, faces, levels=LEVELS), table)


def test_default_levels_and_noise(detector, faces):
    result = robustness.robustness_table(detector, faces.iloc[[0, 1, -2, -1]], perturbations=("noise",))
    assert result["level"].dropna().tolist() == [2, 4, 8, 16, 32]


def test_plain_errors(detector, faces):
    with pytest.raises(ValueError, match="Unknown perturbation"):
        robustness.robustness_table(detector, faces, perturbations=("sepia",))
    with pytest.raises(ValueError, match="both classes"):
        robustness.robustness_table(detector, faces[faces["label"] == 0], levels=LEVELS)
