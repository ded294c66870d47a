"""Lessons 05 and 06's figures and tables: they draw, and the tables and the sentences say what the numbers say."""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from helpers import evaluation_plots as ep
from helpers import gradcam, metrics
from helpers.detector import as_detector

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


def test_figures_show_the_numbers():
    heatmaps = ep.confusion_heatmaps(LABELS, SCORES, 0.5)
    counts = [text.get_text() for text in heatmaps.axes[0].texts]
    assert counts == ["3", "1", "1", "3"]  # real: 3 right, 1 called fake (0.7); fake: 1 called real (0.3), 3 right
    assert [text.get_text() for text in heatmaps.axes[1].texts] == ["0.75", "0.25", "0.25", "0.75"]
    assert heatmaps._suptitle.get_text() == "Confusion matrix at threshold 0.500"

    curves = ep.roc_and_pr(LABELS, SCORES, 0.65)
    roc_ax, pr_ax = curves.axes
    legend = [text.get_text() for text in roc_ax.get_legend().get_texts()]
    assert legend[0] == f"ROC-AUC {metrics.roc_auc(LABELS, SCORES):.3f}" and "threshold 0.650" in legend
    assert pr_ax.get_xlabel() == "recall" and pr_ax.get_ylabel() == "precision"

    calibration = ep.reliability(LABELS, SCORES, bins=4)
    curve_ax, hist_ax = calibration.axes
    model_line = curve_ax.get_lines()[1]
    assert len(model_line.get_xdata()) == 4, "one point per occupied bin"
    assert sum(bar.get_height() for bar in hist_ax.patches) == len(LABELS)
    plt.close("all")


def _sample(n_per_class: int, separation: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Real scores around 0.5 - separation / 2, fakes around 0.5 + separation / 2."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_per_class, int), np.ones(n_per_class, int)]
    centres = 0.5 + separation * (labels - 0.5)
    return labels, np.clip(centres + rng.normal(0, 0.15, labels.size), 0, 1)


def test_threshold_table_and_side_by_side():
    result = metrics.summary(LABELS, SCORES, 0.65, intervals=True)
    table = ep.threshold_table(result)
    assert list(table.index) == ["validation-chosen (0.650)", "fixed 0.5 (0.500)"]
    assert table.loc["fixed 0.5 (0.500)", "recall fake"] == 0.75
    both = ep.side_by_side({"home": result, "away": metrics.summary(LABELS, 1 - SCORES, 0.5, intervals=True)})
    assert list(both.index) == ["home", "away"] and both.loc["home", "ROC-AUC"] == 0.812
    assert both.loc["home", "ROC-AUC low"] <= 0.812 <= both.loc["home", "ROC-AUC high"]
    assert both["images"].tolist() == [8, 8] and both["images"].dtype == int


def test_interval_table_brackets_every_estimate():
    table = ep.interval_table(metrics.summary(*_sample(100, 0.3), 0.5, intervals=True))
    assert list(table.index) == ["ROC-AUC", "accuracy", "balanced accuracy", "recall real", "recall fake"]
    assert (table["low"] <= table["estimate"]).all() and (table["estimate"] <= table["high"]).all()
    assert np.allclose(table["width"], table["high"] - table["low"], atol=0.002)


def test_interval_comparison_sets_two_ways_side_by_side():
    labels, scores = _sample(60, 0.3)
    per_image = metrics.confidence_intervals(labels, scores, 0.5)
    pairs = np.r_[np.arange(60), np.arange(60)]  # the i-th real and the i-th fake form a group
    grouped = metrics.confidence_intervals(labels, scores, 0.5, groups=pairs)
    table = ep.interval_comparison({"image by image": per_image, "by pair": grouped})
    assert list(table.index) == ["ROC-AUC", "accuracy", "balanced accuracy", "recall real", "recall fake"]
    assert table.loc["ROC-AUC", ("by pair", "low")] == round(grouped["roc_auc"][0], 3)
    assert table.loc["recall fake", ("image by image", "width")] == round(np.diff(per_image["recall_fake"])[0], 3)


def test_calibration_table_and_reliability_comparison():
    labels = np.r_[np.zeros(300, int), np.ones(100, int)]
    lower = np.r_[np.full(300, 0.2), np.full(100, 0.6)]
    named = {"raw": lower ** 0.3, "lower": lower}  # the raw scores: too high everywhere
    table = ep.calibration_table(labels, named)
    assert table.attrs["fake_share"] == 0.25
    assert table.loc["lower", "mean p(fake)"] == 0.3 and table.loc["raw", "mean p(fake)"] > 0.6
    assert table.loc["lower", "log loss"] < table.loc["raw", "log loss"]
    assert table.loc["lower", "Brier score"] == round((300 * 0.2 ** 2 + 100 * 0.4 ** 2) / 400, 3)
    fig = ep.reliability_comparison(labels, named, bins=5)
    legend = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert legend[2] == f"lower (log loss {table.loc['lower', 'log loss']:.3f}, Brier 0.070)"
    assert fig.axes[0].get_lines()[2].get_ydata().tolist() == [0.0, 1.0]  # bins at 0.2 and 0.6: 0% and 100% fake
    plt.close(fig)


def test_transfer_sentence_follows_the_intervals():
    home = metrics.summary(*_sample(150, 0.4), 0.5, intervals=True)
    chance = metrics.summary(*_sample(150, 0.0, seed=1), 0.5, intervals=True)
    sentence = ep.transfer_sentence("A", home, "B", chance)
    assert f"falls from {home['roc_auc']:.3f}" in sentence and "indistinguishable from chance" in sentence
    nearby = metrics.summary(*_sample(150, 0.38, seed=2), 0.5, intervals=True)
    assert "cannot tell the two apart" in ep.transfer_sentence("A", home, "B", nearby)


def test_border_heat_share():
    centre, rim, empty = np.zeros((3, 20, 20))
    centre[8:12, 8:12] = 1
    rim[0, :] = 1
    shares, area = ep.border_heat_share(np.stack([centre, rim, empty, np.ones((20, 20))]), band=0.15)
    assert area == pytest.approx(1 - (14 / 20) ** 2)
    assert shares[0] == 0 and shares[1] == 1 and np.isnan(shares[2]) and shares[3] == pytest.approx(area)


def _robustness_rows(name: str, clean: tuple, harsh: tuple, change: tuple = (0, 0, 0, 0, 0, 0)) -> pd.DataFrame:
    """A clean and a harsh step: (ROC-AUC, low, high, balanced accuracy, low, high) each, and the harsh step's
    change from the clean one: (ROC-AUC change, low, high, balanced accuracy change, low, high)."""
    frame = pd.DataFrame([clean, harsh], columns=["roc_auc", "roc_auc_low", "roc_auc_high", "balanced_accuracy",
                                                  "balanced_accuracy_low", "balanced_accuracy_high"])
    changes = pd.DataFrame([(0,) * 6, change], columns=["roc_auc_change", "roc_auc_change_low", "roc_auc_change_high",
                                                        "balanced_accuracy_change", "balanced_accuracy_change_low",
                                                        "balanced_accuracy_change_high"])
    return pd.concat([frame, changes], axis=1).assign(perturbation=name, step=[0, 1], level=[np.nan, 3.0])


CLEAN = (0.97, 0.95, 0.99, 0.90, 0.86, 0.94)


def test_robustness_reading_reads_the_paired_change():
    table = pd.concat([
        _robustness_rows("blur", CLEAN, (0.96, 0.93, 0.98, 0.52, 0.49, 0.55), (-0.01, -0.03, 0.01, -0.38, -0.44, -0.32)),
        _robustness_rows("jpeg", CLEAN, (0.70, 0.62, 0.78, 0.65, 0.58, 0.72), (-0.27, -0.35, -0.19, -0.25, -0.33, -0.17)),
        _robustness_rows("noise", CLEAN, (0.96, 0.94, 0.98, 0.89, 0.85, 0.93), (-0.01, -0.02, 0.00, -0.01, -0.03, 0.01)),
        _robustness_rows("downscale", (0.55, 0.40, 0.70, 0.50, 0.40, 0.60), (0.50, 0.35, 0.65, 0.5, 0.4, 0.6),
                         (-0.05, -0.12, 0.02, 0, -0.05, 0.05)),
        # Overlapping intervals side by side, yet every resample of these images loses a little: a real drop.
        _robustness_rows("sharpen", CLEAN, (0.94, 0.91, 0.97, 0.88, 0.84, 0.92), (-0.03, -0.05, -0.01, -0.02, -0.04, 0.0)),
        _robustness_rows("crush", CLEAN, (0.55, 0.45, 0.65, 0.50, 0.45, 0.55), (-0.42, -0.52, -0.32, -0.40, -0.45, -0.35)),
        _robustness_rows("denoise", CLEAN, (0.99, 0.98, 1.00, 0.93, 0.90, 0.96), (0.02, 0.01, 0.03, 0.03, 0.0, 0.06)),
        # The ranking holds, but the verdicts at the threshold improve beyond the noise of these images.
        _robustness_rows("shrink", CLEAN, (0.97, 0.95, 0.99, 0.95, 0.92, 0.98), (0.0, -0.02, 0.02, 0.05, 0.02, 0.08)),
    ], ignore_index=True)
    blur, jpeg, noise, downscale, sharpen, crush, denoise, shrink = ep.robustness_reading(table).splitlines()
    assert blur.startswith("blur at sigma 3: ROC-AUC 0.970 \u2192 0.960, change -0.010 [-0.030, +0.010]; "
                           "balanced accuracy 0.90 \u2192 0.52, change -0.38 [-0.44, -0.32]")
    assert "the ranking survives but the threshold does not" in blur
    assert "the ranking weakens" in jpeg and "both the ranking and the verdicts" in noise
    assert "cannot be told from chance" in downscale
    assert "the ranking weakens (the paired drop excludes 0)" in sharpen
    assert "breaks, down to chance" in crush and "the ranking improves" in denoise
    assert "the verdicts at the threshold improve" in shrink and "neither paired change" not in shrink


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
    detector = as_detector(trained_model_dir)
    examples = ep.most_confident(scores, per_outcome=1)
    fig = ep.gradcam_grid(detector, examples)
    assert len([ax for ax in fig.axes if ax.images]) == 4
    plt.close(fig)
    originals, heatmaps = ep.gradcam_maps(detector, examples)
    assert len(originals) == 2 and heatmaps.shape == (2, detector.image_size, detector.image_size)
    given = ep.gradcam_grid(detector, examples, heatmaps=np.zeros_like(heatmaps))  # maps computed elsewhere
    drawn = [ax.images[0].get_array() for ax in given.axes if ax.images]
    assert np.array_equal(drawn[1], gradcam.overlay(originals[0], np.zeros_like(heatmaps[0])))
    plt.close(given)
    with pytest.raises(ValueError, match="one heatmap per example"):
        ep.gradcam_grid(detector, examples, heatmaps=heatmaps[:1])
    shares, _ = ep.border_heat_share(heatmaps)
    assert all(np.isnan(share) or 0 <= share <= 1 for share in shares)
    table = pd.DataFrame({"perturbation": ["jpeg"] * 3, "step": [0, 1, 2], "level": [np.nan, 50, 10],
                          "roc_auc": [0.9, 0.8, 0.6], "roc_auc_low": [0.85, 0.7, 0.5],
                          "roc_auc_high": [0.95, 0.9, 0.7], "roc_auc_change": [0.0, -0.1, -0.3],
                          "roc_auc_change_low": [0.0, -0.15, -0.38], "roc_auc_change_high": [0.0, -0.04, -0.22]})
    fig = ep.robustness_plot(table)
    assert "jpeg (quality 50 \u2192 10)" in [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert fig.axes[1].lines[0].get_ydata().tolist() == [0.0, -0.1, -0.3]  # the change, on the right
    plt.close(fig)
