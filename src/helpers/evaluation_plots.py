"""Figures and tables for lessons 05 and 06: confusion matrices, curves, intervals, calibration (05);
errors, Grad-CAM, robustness (06).

The functions take labels and p(fake) scores, or what `evaluate` and `robustness` return, and give
back a matplotlib Figure, a DataFrame or a sentence; the notebook saves and shows them. Sentences
judge differences by the 95% bootstrap intervals, never by the point estimates alone.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from helpers import gradcam, images, metrics, plots
from helpers.config import CLASS_NAMES
from helpers.detector import Detector

# What the level of each perturbation in robustness.PERTURBATIONS measures.
LEVEL_NAMES = {"jpeg": "quality", "downscale": "factor", "blur": "sigma", "noise": "std"}
# (true label, predicted label) -> outcome; "positive" means "called fake".
OUTCOMES = {("fake", "fake"): "true positive", ("real", "fake"): "false positive",
            ("real", "real"): "true negative", ("fake", "real"): "false negative"}


# ----------------------------------------------------------------------------- threshold metrics


def confusion_heatmaps(labels, scores, threshold: float) -> plt.Figure:
    """The confusion matrix at `threshold`, as counts and as rates (each row sums to 1)."""
    counts = np.asarray(metrics.at_threshold(labels, scores, threshold)["confusion_matrix"])
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.6))
    for ax, values, title, fmt in ((axes[0], counts, "counts", "d"), (axes[1], rates, "rates (per true class)", ".2f")):
        sns.heatmap(values, annot=True, fmt=fmt, cmap="Blues", cbar=False, ax=ax, square=True,
                    xticklabels=CLASS_NAMES, yticklabels=CLASS_NAMES, vmin=0, vmax=values.max() or 1)
        ax.set(title=title, xlabel="predicted", ylabel="true")
    fig.suptitle(f"Confusion matrix at threshold {threshold:.3f}")
    fig.tight_layout()
    return fig


def threshold_table(result: dict) -> pd.DataFrame:
    """`evaluate`'s metrics at the model's threshold and at 0.5, side by side."""
    rows = {}
    for key, name in (("at_threshold", "validation-chosen"), ("at_0.5", "fixed 0.5")):
        part = result[key]
        rows[f"{name} ({part['threshold']:.3f})"] = {
            "accuracy": part["accuracy"], "balanced accuracy": part["balanced_accuracy"],
            "recall real": part["recall"]["real"], "recall fake": part["recall"]["fake"],
            "precision fake": part["precision"]["fake"]}
    return pd.DataFrame(rows).T.round(3)


def interval_table(result: dict) -> pd.DataFrame:
    """The headline numbers of an `evaluate` result with their 95% bootstrap intervals and widths."""
    part, ci = result["at_threshold"], result["ci95"]
    estimates = {"ROC-AUC": (result["roc_auc"], ci["roc_auc"]),
                 "accuracy": (part["accuracy"], ci["accuracy"]),
                 "balanced accuracy": (part["balanced_accuracy"], ci["balanced_accuracy"]),
                 "recall real": (part["recall"]["real"], ci["recall_real"]),
                 "recall fake": (part["recall"]["fake"], ci["recall_fake"])}
    rows = {name: {"estimate": value, "low": bounds[0], "high": bounds[1], "width": bounds[1] - bounds[0]}
            for name, (value, bounds) in estimates.items()}
    return pd.DataFrame.from_dict(rows, orient="index").round(3)


INTERVAL_NAMES = {"roc_auc": "ROC-AUC", "accuracy": "accuracy", "balanced_accuracy": "balanced accuracy",
                  "recall_real": "recall real", "recall_fake": "recall fake"}


def interval_comparison(named_intervals: dict[str, dict]) -> pd.DataFrame:
    """Intervals of the same numbers computed in several ways, side by side: low, high and width of each.

    `named_intervals` maps a name (e.g. "image by image", "by source video") to what
    `metrics.confidence_intervals` returns; one row per metric.
    """
    columns = {}
    for name, intervals in named_intervals.items():
        for key, label in INTERVAL_NAMES.items():
            low, high = intervals[key]
            columns.setdefault((name, "low"), {})[label] = low
            columns.setdefault((name, "high"), {})[label] = high
            columns.setdefault((name, "width"), {})[label] = high - low
    return pd.DataFrame(columns).round(3)


# ----------------------------------------------------------------------------- curves


def _mark(ax, x, y, label: str, marker: str, colour: str) -> None:
    ax.plot([x], [y], marker=marker, markersize=9, linestyle="none", color=colour, label=label)


def roc_and_pr(labels, scores, threshold: float) -> plt.Figure:
    """ROC curve (with the equal-error-rate point) and precision-recall curve, both thresholds marked."""
    labels, scores = np.asarray(labels, int), np.asarray(scores, float)
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4.2))
    fpr, tpr, _ = skm.roc_curve(labels, scores)
    roc_ax.plot(fpr, tpr, label=f"ROC-AUC {skm.roc_auc_score(labels, scores):.3f}")
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    eer = metrics.equal_error_rate(labels, scores)
    roc_ax.plot([0, 1], [1, 0], color="grey", linestyle="--", linewidth=0.8)
    _mark(roc_ax, eer, 1 - eer, f"equal error rate {eer:.3f}", "x", "C7")
    precision, recall, _ = skm.precision_recall_curve(labels, scores)
    pr_ax.plot(recall, precision, label=f"average precision {skm.average_precision_score(labels, scores):.3f}")
    pr_ax.axhline(labels.mean(), color="grey", linestyle=":", label=f"chance ({labels.mean():.2f} fake)")
    for value, name, marker, colour in ((threshold, f"threshold {threshold:.3f}", "o", "C3"),
                                        (0.5, "threshold 0.5", "s", "C1")):
        point = metrics.at_threshold(labels, scores, value)
        fake_recall, real_recall = point["recall"]["fake"], point["recall"]["real"]
        _mark(roc_ax, 1 - real_recall, fake_recall, name, marker, colour)
        _mark(pr_ax, fake_recall, point["precision"]["fake"], name, marker, colour)
    roc_ax.set(title="ROC", xlabel="false-positive rate (real called fake)",
               ylabel="true-positive rate (fake caught)")
    pr_ax.set(title="Precision-recall (fake is positive)", xlabel="recall", ylabel="precision", ylim=(0, 1.02))
    roc_ax.legend(loc="lower right", fontsize=8)
    pr_ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def reliability(labels, scores, bins: int = 10) -> plt.Figure:
    """Calibration: the share of fakes among images scored near p, against p; and how scores spread."""
    labels, scores = np.asarray(labels, int), np.asarray(scores, float)
    fraction_fake, mean_score = calibration_curve(labels, scores, n_bins=bins, strategy="uniform")
    fig, (curve_ax, hist_ax) = plt.subplots(2, 1, figsize=(5, 6), sharex=True, height_ratios=(3, 1.3))
    curve_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    curve_ax.plot(mean_score, fraction_fake, marker="o",
                  label=f"model (Brier score {skm.brier_score_loss(labels, scores):.3f})")
    curve_ax.set(title="Reliability curve", ylabel="share that is fake", ylim=(-0.02, 1.02))
    curve_ax.legend(loc="upper left", fontsize=8)
    edges = np.linspace(0, 1, bins + 1)
    for label, name in enumerate(CLASS_NAMES):
        hist_ax.hist(scores[labels == label], bins=edges, alpha=0.6, label=name)
    hist_ax.set(xlabel="p(fake)", ylabel="images", xlim=(0, 1))
    hist_ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def calibration_table(labels, named_scores: dict) -> pd.DataFrame:
    """For each named set of p(fake) scores on the same images: the mean p(fake), the log loss and the Brier score.

    The mean p(fake) of calibrated scores is close to the share of fakes (kept in `attrs["fake_share"]`);
    lower log loss and Brier score are better.
    """
    labels = np.asarray(labels, int)
    rows = {name: {"mean p(fake)": float(np.mean(scores)), "log loss": metrics.log_loss(labels, scores),
                   "Brier score": float(skm.brier_score_loss(labels, np.asarray(scores, float)))}
            for name, scores in named_scores.items()}
    table = pd.DataFrame.from_dict(rows, orient="index").round(3)
    table.attrs["fake_share"] = float(labels.mean())
    return table


def reliability_comparison(labels, named_scores: dict, bins: int = 10) -> plt.Figure:
    """One reliability curve per named set of scores on the same images, with its log loss and Brier score."""
    labels = np.asarray(labels, int)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    table = calibration_table(labels, named_scores)
    for name, scores in named_scores.items():
        fraction_fake, mean_score = calibration_curve(labels, np.asarray(scores, float), n_bins=bins,
                                                      strategy="uniform")
        ax.plot(mean_score, fraction_fake, marker="o", label=f"{name} (log loss {table.loc[name, 'log loss']:.3f}, "
                                                             f"Brier {table.loc[name, 'Brier score']:.3f})")
    ax.set(title="Reliability before and after calibration", xlabel="p(fake)", ylabel="share that is fake",
           xlim=(0, 1), ylim=(-0.02, 1.02))
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- single images


def most_confident(scores: pd.DataFrame, outcomes=("false positive", "false negative"),
                   per_outcome: int = 4) -> pd.DataFrame:
    """The `per_outcome` most confident images of each outcome, from `evaluate`'s scores table.

    Confident means far from the threshold on the side predicted: highest p(fake) among images called
    fake, lowest among images called real. Adds an `outcome` column; an outcome may have no images.
    """
    outcome = [OUTCOMES[pair] for pair in zip(scores["class_name"], scores["predicted"])]
    table = scores.assign(outcome=outcome)
    parts = []
    for name in outcomes:
        members = table[table["outcome"] == name]
        called_fake = name in ("true positive", "false positive")
        parts.append(members.sort_values("p_fake", ascending=not called_fake).head(per_outcome))
    return pd.concat(parts, ignore_index=True)


def _title(row) -> str:
    return f"{row.outcome}\n{row.class_name}, p(fake) {row.p_fake:.2f}"


def error_gallery(examples: pd.DataFrame, columns: int = 4) -> plt.Figure:
    """The images of `most_confident`, titled with their outcome, true class and p(fake)."""
    if examples.empty:
        fig, ax = plt.subplots(figsize=(6, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "No errors to show: every image is on the right side of the threshold.",
                ha="center", va="center")
        return fig
    pictures = [images.load_image(path) for path in examples["path"]]
    return plots.image_grid(pictures, [_title(row) for row in examples.itertuples()], columns=columns, size=2.4)


def gradcam_maps(detector: Detector, examples: pd.DataFrame) -> tuple[list[np.ndarray], np.ndarray]:
    """The examples' images as decoded, and their Grad-CAM maps for "fake" at the model's input size."""
    originals = [images.load_image(path) for path in examples["path"]]
    model_inputs = np.stack([images.resize(image, detector.image_size) for image in originals])
    return originals, gradcam.gradcam(detector.model, model_inputs, class_index=1)


def border_heat_share(heatmaps: np.ndarray, band: float = 0.15) -> tuple[np.ndarray, float]:
    """Per map, the share of its heat within `band` (a fraction of the side) of the edge; and that band's area share.

    A map with no heat at all (no region pushed towards "fake") gives NaN. A share well above the
    area share means the evidence for "fake" sits at the borders: hair, background, the crop's edge.
    """
    heatmaps = np.asarray(heatmaps, dtype=float)
    height, width = heatmaps.shape[1:3]
    rim_y, rim_x = max(1, round(band * height)), max(1, round(band * width))
    inner = np.zeros((height, width), bool)
    inner[rim_y:height - rim_y, rim_x:width - rim_x] = True
    totals = heatmaps.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(totals > 0, heatmaps[:, ~inner].sum(axis=1) / totals, np.nan)
    return shares, float((~inner).mean())


def gradcam_grid(detector: Detector, examples: pd.DataFrame, alpha: float = 0.4, heatmaps=None) -> plt.Figure:
    """For each example, the image and its Grad-CAM map for "fake" overlaid, side by side.

    The map is computed on what the model sees (the image at its input size) and drawn over the
    original, so the details stay visible. `heatmaps` (one per example, as `gradcam_maps` gives them)
    draws maps already computed instead.
    """
    if heatmaps is None:
        originals, heatmaps = gradcam_maps(detector, examples)
    else:
        originals = [images.load_image(path) for path in examples["path"]]
        if len(heatmaps) != len(originals):
            raise ValueError(f"Need one heatmap per example: got {len(heatmaps)} for {len(originals)}.")
    pictures, titles = [], []
    for original, heatmap, row in zip(originals, heatmaps, examples.itertuples()):
        pictures += [original, gradcam.overlay(original, heatmap, alpha=alpha)]
        titles += [_title(row), "Grad-CAM for 'fake'"]
    return plots.image_grid(pictures, titles, columns=4, size=2.4)


# ----------------------------------------------------------------------------- robustness


def robustness_plot(table: pd.DataFrame) -> plt.Figure:
    """ROC-AUC against severity (step 0 = clean), one line per perturbation, and its change from the clean images.

    Left, each step's ROC-AUC with its own 95% interval shaded; right, the change from step 0 with
    the paired 95% interval of that change (same images, so read changes here, not on the left).
    """
    fig, (ax, change_ax) = plt.subplots(1, 2, figsize=(12, 4))
    for name, rows in table.groupby("perturbation", sort=False):
        levels = rows.loc[rows["step"] > 0, "level"]
        label = f"{name} ({LEVEL_NAMES.get(name, 'level')} {levels.iloc[0]:g} \u2192 {levels.iloc[-1]:g})"
        line, = ax.plot(rows["step"], rows["roc_auc"], marker="o", label=label)
        ax.fill_between(rows["step"], rows["roc_auc_low"], rows["roc_auc_high"], color=line.get_color(), alpha=0.15)
        change_ax.plot(rows["step"], rows["roc_auc_change"], marker="o", color=line.get_color(), label=name)
        change_ax.fill_between(rows["step"], rows["roc_auc_change_low"], rows["roc_auc_change_high"],
                               color=line.get_color(), alpha=0.15)
    ax.axhline(0.5, color="grey", linestyle=":", label="chance")
    change_ax.axhline(0.0, color="grey", linestyle=":")
    steps = sorted(table["step"].unique())
    ax.set(title="ROC-AUC as the images degrade (shaded: its 95% interval)", ylabel="ROC-AUC",
           xlabel="severity step (0 = the clean image)", xticks=steps)
    change_ax.set(title="Change from the clean images (shaded: paired 95% interval)", ylabel="\u0394 ROC-AUC",
                  xlabel="severity step (0 = the clean image)", xticks=steps)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _overlap(low_a: float, high_a: float, low_b: float, high_b: float) -> bool:
    return low_a <= high_b and low_b <= high_a


def _change(row, measure: str, digits: int) -> str:
    return (f"{row[measure + '_change']:+.{digits}f} [{row[measure + '_change_low']:+.{digits}f}, "
            f"{row[measure + '_change_high']:+.{digits}f}]")


def robustness_reading(table: pd.DataFrame) -> str:
    """One sentence per perturbation: does the ranking (ROC-AUC) and do the verdicts (balanced accuracy) survive?

    Compares the clean step with the harshest one through the paired change (both are scored on the
    same images): a change whose 95% interval holds 0 is not one these images can show, one whose
    interval excludes 0 is; an interval of ROC-AUC that holds 0.5 is chance.
    """
    lines = []
    for name, rows in table.groupby("perturbation", sort=False):
        clean, harsh = rows.iloc[0], rows.iloc[-1]
        numbers = (f"{name} at {LEVEL_NAMES.get(name, 'level')} {harsh['level']:g}: ROC-AUC {clean['roc_auc']:.3f} "
                   f"\u2192 {harsh['roc_auc']:.3f}, change {_change(harsh, 'roc_auc', 3)}; balanced accuracy "
                   f"{clean['balanced_accuracy']:.2f} \u2192 {harsh['balanced_accuracy']:.2f}, change "
                   f"{_change(harsh, 'balanced_accuracy', 2)}")
        lines.append(f"{numbers}: {_robustness_verdict(clean, harsh)}.")
    return "\n".join(lines)


def _robustness_verdict(clean, harsh) -> str:
    if clean["roc_auc_low"] <= 0.5:
        return "the clean model itself cannot be told from chance here, so its decline says nothing"
    if harsh["roc_auc_change_high"] < 0:
        if harsh["roc_auc_low"] <= 0.5:
            return ("the ranking itself breaks, down to chance: the model relied on detail this perturbation "
                    "destroys")
        return ("the ranking weakens (the paired drop excludes 0) but stays above chance: the model relied in "
                "part on detail this perturbation destroys")
    if harsh["roc_auc_change_low"] > 0:
        return "the ranking improves (the paired change excludes 0), which is worth understanding before trusting"
    if harsh["balanced_accuracy_change_low"] > 0:
        return ("the ranking holds and the verdicts at the threshold improve (that paired change excludes 0): the "
                "scores moved across the threshold the lucky way, which is worth understanding before trusting")
    if harsh["balanced_accuracy_change_high"] >= 0 and harsh["balanced_accuracy_low"] > 0.5:
        return "both the ranking and the verdicts at the threshold hold: neither paired change excludes 0"
    return ("the ranking survives but the threshold does not: the scores keep their order but move past "
            "the threshold chosen on clean images")


# ----------------------------------------------------------------------------- two data sets


def side_by_side(results: dict[str, dict]) -> pd.DataFrame:
    """The headline metrics of several `evaluate` results, one row each (keyed by a display name)."""
    rows = {}
    for name, result in results.items():
        part = result["at_threshold"]
        low, high = result["ci95"]["roc_auc"]
        rows[name] = {"images": result["n"], "ROC-AUC": result["roc_auc"], "ROC-AUC low": low, "ROC-AUC high": high,
                      "average precision": result["average_precision"], "equal error rate": result["eer"],
                      "balanced accuracy": part["balanced_accuracy"],
                      "recall real": part["recall"]["real"], "recall fake": part["recall"]["fake"]}
    return pd.DataFrame.from_dict(rows, orient="index").round(3)  # the last three at the model's threshold


def _auc_with_interval(result: dict) -> str:
    low, high = result["ci95"]["roc_auc"]
    return f"{result['roc_auc']:.3f} [{low:.3f}, {high:.3f}]"


def transfer_sentence(home: str, home_result: dict, away: str, away_result: dict) -> str:
    """One honest sentence, generated from the numbers and their intervals, on how a model carries over."""
    (home_low, home_high), (away_low, away_high) = home_result["ci95"]["roc_auc"], away_result["ci95"]["roc_auc"]
    if _overlap(home_low, home_high, away_low, away_high):
        trend = (f"ROC-AUC is {_auc_with_interval(home_result)} on {home} and {_auc_with_interval(away_result)} "
                 f"on {away}; the intervals overlap, so these samples cannot tell the two apart")
    else:
        direction = "falls" if away_result["roc_auc"] < home_result["roc_auc"] else "rises"
        trend = (f"ROC-AUC {direction} from {_auc_with_interval(home_result)} on {home} to "
                 f"{_auc_with_interval(away_result)} on {away}, further than the noise of either sample")
    recall = away_result["at_threshold"]["recall"]
    return (f"{trend}. On {away} the ranking is {metrics.read_roc_auc(away_result['roc_auc'], away_low, away_high)}, and at "
            f"the model's threshold (chosen on validation images from its training source) it catches "
            f"{recall['fake']:.0%} of the fakes while clearing {recall['real']:.0%} of the real faces.")
