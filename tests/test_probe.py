"""The linear probe of lesson 03: the spread of features across images, and the probe's ROC-AUC."""
import numpy as np
import pytest

from helpers import probe


def test_feature_spread_is_zero_when_every_image_has_the_same_features():
    same_for_all = np.tile([[0.0, 5.0, -3.0]], (10, 1))
    assert same_for_all.std() > 1  # the spread over the whole matrix is large: it compares features
    assert probe.feature_spread(same_for_all) == 0.0


def test_feature_spread_averages_each_feature_across_images():
    features = np.array([[0.0, 7.0], [2.0, 7.0]])  # feature 0: std 1 across images; feature 1: std 0
    assert probe.feature_spread(features) == pytest.approx(0.5)


def test_probe_auc_separates_features_that_carry_the_label():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 40)
    features = rng.normal(size=(80, 5))
    features[:, 0] += 4 * labels
    train, val = np.arange(0, 80, 2), np.arange(1, 80, 2)
    assert probe.probe_auc(features[train], labels[train], features[val], labels[val]) > 0.95
    assert probe.probe_auc(features[train, 1:], labels[train], features[val, 1:], labels[val]) < 0.8
