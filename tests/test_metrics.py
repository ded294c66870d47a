"""Scores from labels and p(fake)."""
import numpy as np
import pytest

from helpers import metrics


def test_perfect_and_chance_rankings():
    labels = np.array([0, 0, 1, 1])
    perfect = metrics.summary(labels, [0.1, 0.2, 0.8, 0.9], threshold=0.5)
    assert perfect["roc_auc"] == 1.0 and perfect["eer"] == 0.0
    assert perfect["at_threshold"]["confusion_matrix"] == [[2, 0], [0, 2]]
    flipped = metrics.summary(labels, [0.9, 0.8, 0.2, 0.1], threshold=0.5)
    assert flipped["roc_auc"] == 0.0 and flipped["at_threshold"]["recall"] == {"real": 0.0, "fake": 0.0}


def test_balanced_threshold_equalises_the_recalls():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(500, int), np.ones(500, int)]
    scores = np.r_[rng.uniform(0.0, 0.3, 500), rng.uniform(0.1, 0.4, 500)]  # every score far below 0.5
    at_half = metrics.at_threshold(labels, scores, 0.5)["recall"]
    assert at_half["fake"] == 0.0  # the original project's trouble: a fixed 0.5 misses the fakes
    recall = metrics.at_threshold(labels, scores, metrics.balanced_threshold(labels, scores))["recall"]
    assert abs(recall["real"] - recall["fake"]) < 0.03 and recall["fake"] > 0.6


def test_metrics_on_one_class_do_not_crash():
    result = metrics.summary([1, 1, 1], [0.2, 0.7, 0.9], threshold=0.5)
    assert result["roc_auc"] is None and result["at_threshold"]["recall"]["fake"] == pytest.approx(2 / 3)
    assert metrics.balanced_threshold([1, 1], [0.2, 0.4]) == 0.5


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="as many"):
        metrics.summary([0, 1], [0.5], threshold=0.5)
