"""Linear probes: how much a frozen backbone's features already know, in one quick number.

A probe fits a logistic regression on the pooled features of the training images and reports its
ROC-AUC on the validation images. Lesson 03 uses it to show the original project's main bug: the
same backbone, fed images wrongly divided by 255 before its own rescaling, sees almost nothing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from helpers import config, pipeline
from helpers import classifier


def features(model, frame: pd.DataFrame, image_size: int, batch_size: int, input_scale: float = 1.0) -> np.ndarray:
    """Pooled backbone features, with the input pixels multiplied by `input_scale` first."""
    dataset = pipeline.make_dataset(frame, image_size, batch_size, cache=False)
    dataset = dataset.map(lambda images, labels: (images * input_scale, labels))
    return classifier.feature_extractor(model).predict(dataset, verbose=0)


def feature_spread(features: np.ndarray) -> float:
    """How much the features vary from image to image: each one's standard deviation across images, averaged."""
    return float(np.asarray(features, dtype=np.float64).std(axis=0).mean())


def probe_auc(train_features: np.ndarray, train_labels, val_features: np.ndarray, val_labels) -> float:
    """Validation ROC-AUC of a standardised, L2-regularised logistic regression."""
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=5000,
                                                                    class_weight="balanced"))
    classifier.fit(train_features, train_labels)
    return float(roc_auc_score(val_labels, classifier.predict_proba(val_features)[:, 1]))


def scaling_experiment(model, train: pd.DataFrame, val: pd.DataFrame, profile: config.Profile) -> pd.DataFrame:
    """The same probe on features of correctly scaled input (0-255) and of input divided by 255 first."""
    rows = []
    for label, scale in (("raw 0-255 pixels (correct)", 1.0), ("pixels / 255 first (the original bug)", 1 / 255)):
        f_train = features(model, train, profile.image_size, profile.batch_size, scale)
        f_val = features(model, val, profile.image_size, profile.batch_size, scale)
        rows.append({"input": label, "feature spread across images": feature_spread(f_train),
                     "validation ROC-AUC": probe_auc(f_train, train["label"], f_val, val["label"])})
    return pd.DataFrame(rows).set_index("input")
