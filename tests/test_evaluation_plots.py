"""Lesson 05's figures and tables: they draw, and the tables and the sentence say what the numbers say."""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from helpers import evaluation_plots as ep
from helpers import metrics, predict

LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1])
SCORES = np.array([0.1, 0.2, 0.7, 0.4, 0.9, 0.3, 0.8, 0.6])


@pytest.fixture
def scores(dfdc) -> pd.DataFrame:
    """A scores table like evaluate's, for four real test images with made-up p(fake)."""
    paths = [str(path) for path in sorted((dfdc / "Test" / "Real").iterdir())[:2]]
    paths += [str(path) for path in sorted((dfdc / "Test" / "Fake").iterdir())[:2]]
    p_fake = [0.9, 0.2, 0.3, 0.95]
    return pd.DataFrame({"path": paths, "label": [0, 0, 1, 1], "class_name": ["real", "real", "fake", "fake"],
                         "p_fake": p_fake, "predicted": ["fake" if p >= 0.5 else "real" for p in p_fake]})


def test_figures_draw():
    for fig in (ep.confusion_heatmaps(LABELS, SCORES, 0.5), ep.roc_and_pr(LABELS, SCORES, 0.65),
                ep.reliability(LABELS, SCORES, bins=4)):
        assert isinstance(fig, plt.Figure) and fig.axes
        plt.close(fig)


def test_threshold_table_and_side_by_side():
    result = metrics.summary(LABELS, SCORES, 0.65)
    table = ep.threshold_table(result)
    assert list(table.index) == ["validation-chosen (0.650)", "fixed 0.5 (0.500)"]
    assert table.loc["fixed 0.5 (0.500)", "recall fake"] == 0.75
    both = ep.side_by_side({"home": result, "away": metrics.summary(LABELS, 1 - SCORES, 0.5)})
    assert list(both.index) == ["home", "away"] and both.loc["home", "ROC-AUC"] == 0.812
    assert both["images"].tolist() == [8, 8] and both["images"].dtype == int


def test_transfer_sentence_follows_the_numbers():
    home = metrics.summary(LABELS, SCORES, 0.5)
    chance = metrics.summary(LABELS, np.full(8, 0.5), 0.5)
    sentence = ep.transfer_sentence("A", home, "B", chance)
    assert "falls from 0.812 on A to 0.500 on B" in sentence and "coin toss" in sentence
    assert "barely moves" in ep.transfer_sentence("A", home, "B", home)


def test_most_confident_picks_by_outcome(scores):
    errors = ep.most_confident(scores, per_outcome=1)
    assert list(errors["outcome"]) == ["false positive", "false negative"]
    assert list(errors["p_fake"]) == [0.9, 0.3]
    every = ep.most_confident(scores, outcomes=tuple(ep.OUTCOMES.values()), per_outcome=2)
    assert sorted(every["outcome"].value_counts().items()) == [
        ("false negative", 1), ("false positive", 1), ("true negative", 1), ("true positive", 1)]
    plt.close(ep.error_gallery(errors))
    plt.close(ep.error_gallery(errors.iloc[:0]))


def test_gradcam_grid_and_robustness_plot(trained_model_dir, scores):
    detector = predict.as_detector(trained_model_dir)
    fig = ep.gradcam_grid(detector, ep.most_confident(scores, per_outcome=1))
    assert len([ax for ax in fig.axes if ax.images]) == 4
    plt.close(fig)
    table = pd.DataFrame({"perturbation": ["jpeg"] * 3, "step": [0, 1, 2], "level": [np.nan, 50, 10],
                          "roc_auc": [0.9, 0.8, 0.6], "balanced_accuracy": [0.8, 0.7, 0.6]})
    fig = ep.robustness_plot(table)
    assert "jpeg (quality 50 \u2192 10)" in [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
