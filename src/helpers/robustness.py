"""How a detector's ROC-AUC holds up when images are degraded the way the internet degrades them.

Every ROC-AUC and balanced accuracy comes with its 95% bootstrap interval (`metrics.bootstrap_interval`),
so a drop can be told from the noise of a small test set.

Each image is decoded once at its own resolution. Every perturbation is applied there, and only then
is the image resized to the model's input size: a re-uploaded photo is compressed, shrunk or blurred
at the size it was posted, and the detector sees the result. Perturbing the model-size copy instead
would blur 96 px thumbnails in the smoke profile, a different (and harsher) experiment.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from helpers import augment, images, metrics
from helpers.predict import Detector

COLUMNS = ["perturbation", "step", "level", "roc_auc", "roc_auc_low", "roc_auc_high",
           "balanced_accuracy", "balanced_accuracy_low", "balanced_accuracy_high"]


def _levels(perturbations, levels: dict | None) -> dict[str, list]:
    unknown = [name for name in perturbations if name not in augment.PERTURBATIONS]
    if unknown:
        raise ValueError(f"Unknown perturbation(s) {unknown}: choose from {list(augment.PERTURBATIONS)}.")
    levels = levels or {}
    return {name: list(levels.get(name, augment.PERTURBATIONS[name][1])) for name in perturbations}


def _at_model_size(originals: list[np.ndarray], size: int, change=None, workers: int = 4) -> np.ndarray:
    """Apply `change` (or nothing) to each original, then resize it to size x size, as one batch."""
    def prepare(image: np.ndarray) -> np.ndarray:
        return images.resize(change(image) if change else image, size)

    with ThreadPoolExecutor(max_workers=workers) as pool:  # PIL releases the GIL while it works
        return np.stack(list(pool.map(prepare, originals)))


def _row(name: str, step: int, level, labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    row = {"perturbation": name, "step": step, "level": level}
    balanced_accuracy = metrics.threshold_statistics(threshold)["balanced_accuracy"]
    for column, statistic in (("roc_auc", metrics.roc_auc), ("balanced_accuracy", balanced_accuracy)):
        row[column] = statistic(labels, scores)
        row[f"{column}_low"], row[f"{column}_high"] = metrics.bootstrap_interval(labels, scores, statistic)
    return row


def robustness_table(detector: Detector, frame: pd.DataFrame, perturbations=("jpeg", "downscale", "blur"),
                     levels: dict | None = None, workers: int = 4) -> pd.DataFrame:
    """ROC-AUC and balanced accuracy at the model's threshold, each with its 95% interval, per perturbation and level.

    `frame` holds path and label columns (both classes). `levels` maps a perturbation to its levels,
    mild to harsh; by default those of `augment.PERTURBATIONS`. One row per perturbation and step:
    step 0 is the clean image (level None), steps 1.. the levels in order.
    """
    chosen = _levels(perturbations, levels)
    labels = frame["label"].to_numpy(int)
    if len(np.unique(labels)) < 2:
        raise ValueError("ROC-AUC needs images of both classes in the frame.")
    originals = [images.load_image(path) for path in frame["path"]]
    size = detector.image_size
    clean = detector.p_fake(_at_model_size(originals, size, workers=workers))
    rows = []
    for name, name_levels in chosen.items():
        rows.append(_row(name, 0, None, labels, clean, detector.threshold))
        function = augment.PERTURBATIONS[name][0]
        for step, level in enumerate(name_levels, start=1):
            batch = _at_model_size(originals, size, lambda image, level=level: function(image, level),
                                   workers)
            rows.append(_row(name, step, level, labels, detector.p_fake(batch), detector.threshold))
    return pd.DataFrame(rows, columns=COLUMNS)
