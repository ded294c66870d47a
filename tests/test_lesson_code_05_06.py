"""The code lessons 05 and 06 show in the open gives what the helpers give.

Lesson 05 fits a temperature by hand (`metrics.fit_temperature`); lesson 06 computes Grad-CAM by hand
with `tf.GradientTape` (`gradcam.gradcam`). Each cell tagged `lesson-code` is run here as it stands
in the notebook, on the inputs the notebook gives it.
"""
import keras
import numpy as np
import pandas as pd
import pytest
import skimage.data

from helpers import classifier, gradcam, images, metrics
from tests.conftest import lesson_code, run_lesson_code

SIZE = 96  # the smoke profile's size: a 3 x 3 top activation


def test_the_lessons_cells_are_tagged():
    assert len(lesson_code("05_evaluation.ipynb")) == 1  # temperature scaling
    assert len(lesson_code("06_explaining_and_robustness.ipynb")) == 1  # Grad-CAM


@pytest.mark.parametrize("made_with", [0.4, 3.0])
def test_lesson_05_fits_the_temperature_the_helper_fits(made_with):
    """Validation scores made over-confident (T 3) or timid (T 0.4) from calibrated ones."""
    rng = np.random.default_rng(1)
    true_logits = rng.normal(0, 2, 600)
    labels = (rng.random(600) < 1 / (1 + np.exp(-true_logits))).astype(int)
    validation = pd.DataFrame({"label": labels, "p_fake": 1 / (1 + np.exp(-made_with * true_logits))})
    namespace = run_lesson_code(lesson_code("05_evaluation.ipynb"),
                    {"np": np, "metrics": metrics, "validation": validation, "print": lambda *args: None})
    helper = metrics.fit_temperature(validation["label"], validation["p_fake"])
    assert namespace["temperature"] == pytest.approx(helper.temperature, rel=1e-6)
    assert namespace["temperature"] == pytest.approx(made_with, rel=0.25)
    assert namespace["found"].fun == pytest.approx(metrics.log_loss(labels, helper(validation["p_fake"])), rel=1e-6)


@pytest.fixture(scope="module")
def detector_model() -> keras.Model:
    """Our detector with ImageNet Lite0 weights and a seeded, untrained head."""
    keras.utils.set_random_seed(0)
    return classifier.build_classifier("efficientnet_lite0", SIZE)


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    """Five photos that ship with scikit-image, the same on every machine, with or without face data.

    The test compares code, not what the maps show; but with the stand-in set's faces this seeded head
    gives flat maps for all of them, and a comparison of flat maps would prove nothing.
    """
    photos = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee(),
              skimage.data.hubble_deep_field(), skimage.data.immunohistochemistry()]
    return np.stack([images.resize(photo[..., :3], SIZE) for photo in photos])


def test_lesson_06_computes_the_gradcam_maps_of_the_helper(detector_model, faces):
    namespace = run_lesson_code(lesson_code("06_explaining_and_robustness.ipynb"),
                    {"model": detector_model, "pictures": faces, "print": lambda *args: None})
    heatmaps = namespace["heatmaps"]
    packaged = gradcam.gradcam(detector_model, faces)
    assert heatmaps.shape == packaged.shape == (len(faces), SIZE, SIZE)
    np.testing.assert_allclose(heatmaps, packaged, atol=1e-5)
    assert (heatmaps.std(axis=(1, 2)) > 0.05).sum() >= 2, "too few maps with structure for the comparison to mean much"
    assert tuple(namespace["feature_maps"].shape[1:3]) == (SIZE // 32, SIZE // 32)


def test_lesson_06_reads_the_log_odds_not_p_fake(detector_model, faces):
    """The score the cell differentiates is the log-odds of the model's own p(fake)."""
    namespace = run_lesson_code(lesson_code("06_explaining_and_robustness.ipynb"),
                    {"model": detector_model, "pictures": faces, "print": lambda *args: None})
    p_fake = detector_model.predict(faces, verbose=0)[:, 1]
    np.testing.assert_allclose(namespace["score"].numpy(), np.log(p_fake / (1 - p_fake)), atol=1e-3)
