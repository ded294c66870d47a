"""Scores for a detector: from labels and p(fake) to every number the lessons report.

Plain NumPy and scikit-learn, no TensorFlow: the same function scores a Keras model, an exported
model or a spreadsheet of predictions.
"""
from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from helpers.data import CLASS_NAMES


def _check(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = np.asarray(labels, dtype=int).ravel(), np.asarray(scores, dtype=float).ravel()
    if labels.shape != scores.shape or labels.size == 0:
        raise ValueError(f"Need as many labels as scores, and at least one: got {labels.size} and {scores.size}.")
    return labels, scores


def balanced_threshold(labels, scores) -> float:
    """The threshold on p(fake) at which the recall of real and of fake images are closest.

    Chosen on validation data, never on the test set. It is the equal-error-rate point of the ROC.
    """
    labels, scores = _check(labels, scores)
    if len(np.unique(labels)) < 2:
        return 0.5
    fpr, tpr, thresholds = skm.roc_curve(labels, scores)
    best = int(np.argmin(np.abs(tpr - (1 - fpr))[1:])) + 1  # index 0 is the +inf threshold
    return float(np.clip(thresholds[best], 0.0, 1.0))


def equal_error_rate(labels, scores) -> float:
    """Where the false-positive and false-negative rates meet (lower is better; 0.5 is chance)."""
    labels, scores = _check(labels, scores)
    fpr, tpr, _ = skm.roc_curve(labels, scores)
    index = int(np.argmin(np.abs(fpr - (1 - tpr))))
    return float((fpr[index] + 1 - tpr[index]) / 2)


def at_threshold(labels, scores, threshold: float) -> dict:
    """Threshold-dependent metrics: accuracy, balanced accuracy, per-class precision/recall, confusion."""
    labels, scores = _check(labels, scores)
    predicted = (scores >= threshold).astype(int)
    precision, recall, _, support = skm.precision_recall_fscore_support(
        labels, predicted, labels=[0, 1], zero_division=0)
    return {
        "threshold": float(threshold),
        "accuracy": float(skm.accuracy_score(labels, predicted)),
        "balanced_accuracy": float(np.mean(recall[support > 0])) if (support > 0).any() else 0.0,
        "precision": {name: float(p) for name, p in zip(CLASS_NAMES, precision)},
        "recall": {name: float(r) for name, r in zip(CLASS_NAMES, recall)},
        "confusion_matrix": skm.confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
    }


def summary(labels, scores, threshold: float) -> dict:
    """Everything: ranking metrics (ROC-AUC, AP, EER) and the metrics at `threshold` and at 0.5."""
    labels, scores = _check(labels, scores)
    both = len(np.unique(labels)) == 2
    return {
        "n": int(labels.size),
        "counts": {name: int((labels == i).sum()) for i, name in enumerate(CLASS_NAMES)},
        "roc_auc": float(skm.roc_auc_score(labels, scores)) if both else None,
        "average_precision": float(skm.average_precision_score(labels, scores)) if both else None,
        "eer": equal_error_rate(labels, scores) if both else None,
        "at_threshold": at_threshold(labels, scores, threshold),
        "at_0.5": at_threshold(labels, scores, 0.5),
    }
