"""Scores for a detector: from labels and p(fake) to every number the lessons report.

Plain NumPy, SciPy and scikit-learn, no TensorFlow: the same function scores a Keras model, an
exported model or a spreadsheet of predictions. Every number comes with a bootstrap interval on
request, because a few hundred test images leave a lot of room for chance; where the images come in
groups (the real and the fake of one source video), the bootstrap resamples whole groups. Calibration
maps on the logit (temperature scaling, Platt scaling, the prior correction) turn scores into
probabilities that can be read literally, fitted on validation data only.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from sklearn import metrics as skm

from helpers import config
from helpers.config import CLASS_NAMES


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
    precision, recall, _, _ = skm.precision_recall_fscore_support(
        labels, predicted, labels=[0, 1], zero_division=0)
    return {
        "threshold": float(threshold),
        "accuracy": float(skm.accuracy_score(labels, predicted)),
        "balanced_accuracy": _balanced_accuracy(labels, predicted),
        "precision": {name: float(p) for name, p in zip(CLASS_NAMES, precision)},
        "recall": {name: float(r) for name, r in zip(CLASS_NAMES, recall)},
        "confusion_matrix": skm.confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
    }


def summary(labels, scores, threshold: float, intervals: bool = False, groups=None) -> dict:
    """Everything: ranking metrics (ROC-AUC, AP, EER) and the metrics at `threshold` and at 0.5.

    With `intervals`, also "ci95": the 95% bootstrap intervals of `confidence_intervals` (about a
    second for a few hundred images), and "ci95_groups": how many groups of images they resample
    (the number of images, unless `groups` joins some; see `bootstrap_interval`).
    """
    labels, scores = _check(labels, scores)
    both = len(np.unique(labels)) == 2
    extra = {"ci95": confidence_intervals(labels, scores, threshold, groups=groups),
             "ci95_groups": int(group_codes(labels, groups).max()) + 1} if intervals else {}
    return {
        "n": int(labels.size),
        "counts": {name: int((labels == i).sum()) for i, name in enumerate(CLASS_NAMES)},
        "roc_auc": float(skm.roc_auc_score(labels, scores)) if both else None,
        "average_precision": float(skm.average_precision_score(labels, scores)) if both else None,
        "eer": equal_error_rate(labels, scores) if both else None,
        "at_threshold": at_threshold(labels, scores, threshold),
        "at_0.5": at_threshold(labels, scores, 0.5),
        **extra,
    }


# ----------------------------------------------------------------------------- uncertainty


def roc_auc(labels, scores) -> float:
    """ROC-AUC as the share of (fake, real) pairs in which the fake scores higher (ties count one half).

    The same number as scikit-learn's `roc_auc_score`, but quick enough to compute thousands of
    times in a bootstrap.
    """
    labels, scores = _check(labels, scores)
    real, fake = np.sort(scores[labels == 0]), scores[labels == 1]
    if not real.size or not fake.size:
        raise ValueError("ROC-AUC needs both real (0) and fake (1) labels.")
    below = np.searchsorted(real, fake, side="left")  # real scores under each fake's
    not_above = np.searchsorted(real, fake, side="right")  # ... plus the ties
    return float((below.sum() + not_above.sum()) / (2 * real.size * fake.size))


def _balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """The mean recall of the classes present; one class alone is the evaluator's warning to give, not sklearn's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(skm.balanced_accuracy_score(labels, predicted))


def read_roc_auc(auc: float, low: float, high: float) -> str:
    """A ROC-AUC and its 95% interval in the words every lesson uses: the interval decides about chance.

    Wholly below 0.5: below chance (the model ranks fakes as more real); holding 0.5: indistinguishable
    from chance, whatever the point says; otherwise weak (under 0.7), useful (under 0.85) or strong.
    """
    if high < 0.5:
        return "below chance, even at the top of its interval: it ranks these fakes as more real than the real faces"
    if low <= 0.5:
        return "indistinguishable from chance: its interval holds 0.5"
    if auc < 0.7:
        return "better than chance but weak"
    if auc < 0.85:
        return "useful but far from reliable"
    return "strong"


def _recall(label: int, threshold: float):
    def recall(labels, scores) -> float:
        members = labels == label
        return float(np.mean((scores[members] >= threshold) == bool(label)))
    return recall


def threshold_statistics(threshold: float) -> dict:
    """Accuracy, balanced accuracy and both recalls at `threshold`, as quick functions of (labels, scores).

    For `bootstrap_interval`; `at_threshold` gives the same numbers (and more) for a single call.
    """
    recall_real, recall_fake = _recall(0, threshold), _recall(1, threshold)
    return {
        "accuracy": lambda labels, scores: float(np.mean((scores >= threshold) == (labels == 1))),
        "balanced_accuracy": lambda labels, scores: (recall_real(labels, scores) + recall_fake(labels, scores)) / 2,
        "recall_real": recall_real,
        "recall_fake": recall_fake,
    }


def bootstrap_interval(labels, scores, statistic, confidence: float = 0.95, n_resamples: int = 2000,
                       seed: int = config.SEED, groups=None) -> tuple[float, float]:
    """A bootstrap confidence interval (95% by default) for `statistic(labels, scores)`.

    Stratified: each resample draws, with replacement, as many real images from the real ones and as
    many fakes from the fakes as the data holds, so every resample has both classes in the original
    proportion and ROC-AUC is always defined. The interval is the percentile one: the middle
    `confidence` share of the statistic over `n_resamples` resamples (scipy.stats.bootstrap, seeded,
    so the same inputs and seed give the same interval). Needs at least two images of each class.

    `groups` (one label per image; None, or a missing label, makes an image its own group) resamples
    whole groups instead of single images: a cluster bootstrap. A group is a set of images that are
    not independent draws from the world, such as the real frame and the fake made from one source
    video (same person, scene and compression), or copies of one photo. Resampling such images one
    by one pretends the test set holds more independent evidence, or different evidence, than it
    does: copies make an interval too narrow, and matched pairs (a fake scored against its own real)
    make the per-class interval too wide. See `grouped_resampling` for how groups are drawn.
    """
    labels, scores = _check(labels, scores)
    return _stratified_bootstrap(labels, lambda picked: statistic(labels[picked], scores[picked]),
                                 confidence, n_resamples, seed, groups)


def paired_difference_interval(labels, scores_a, scores_b, statistic, statistic_b=None, confidence: float = 0.95,
                               n_resamples: int = 2000, seed: int = config.SEED, groups=None) -> tuple[float, float]:
    """A bootstrap interval for statistic(A) - statistic_b(B), two models scored on the same images.

    `statistic_b` defaults to `statistic`; give it when B is read another way (its own threshold).
    Each resample draws the same images for both models, so what the two share (the hard images, the
    easy ones) cancels out: the interval of a difference is narrower than the two intervals side by
    side suggest. An interval that excludes 0 says the change made a difference on this test set.
    `groups` resamples whole groups of images, as in `bootstrap_interval`.
    """
    labels, scores_a = _check(labels, scores_a)
    _, scores_b = _check(labels, scores_b)
    statistic_b = statistic_b or statistic
    return _stratified_bootstrap(
        labels, lambda picked: statistic(labels[picked], scores_a[picked]) - statistic_b(labels[picked], scores_b[picked]),
        confidence, n_resamples, seed, groups)


GROUP_COLUMN = config.GROUP_COLUMN  # a frame's column naming each image's group, where the data layer knows it


def groups_of(frame):
    """A frame's `group` column as an array (one label per image, a missing one its own group), or None."""
    return frame[GROUP_COLUMN].to_numpy() if GROUP_COLUMN in frame else None


def group_codes(labels, groups=None) -> np.ndarray:
    """One integer per image naming its group, numbered in the order the groups first appear.

    `groups` is one label per image (any hashable values); None, or a missing label (None, NaN),
    makes an image a group of its own.
    """
    labels = np.asarray(labels).ravel()
    if groups is None:
        return np.arange(labels.size)
    codes, _ = pd.factorize(pd.Series(np.asarray(groups, dtype=object).ravel()), use_na_sentinel=True)
    if codes.size != labels.size:
        raise ValueError(f"Need one group per image: got {codes.size} groups for {labels.size} images.")
    missing = codes < 0
    codes[missing] = codes.max(initial=-1) + 1 + np.arange(missing.sum())
    return pd.factorize(codes)[0]  # numbered again in order of first appearance


def grouped_resampling(labels, groups=None) -> tuple[list[np.ndarray], np.ndarray, object]:
    """How a stratified cluster bootstrap draws: (strata, fixed, images_of).

    Each group falls in a stratum by the classes it holds: real only, fake only, or both (a real and
    the fake made from it). A resample draws, in each stratum, as many groups as it holds, with
    replacement, and keeps every image of each group drawn, so the share of each kind of group stays
    as it was. `strata` lists the group numbers of each stratum with at least two groups (real only,
    fake only, both, in that order); a stratum of one group cannot vary and is kept whole in every
    resample (`fixed`, image indices). `images_of(group_numbers)` gives the images of those groups
    in order. With every image its own group this is exactly the per-class bootstrap, draw for draw.
    """
    labels = np.asarray(labels).ravel()
    codes = group_codes(labels, groups)
    n_groups = int(codes.max()) + 1
    kind = ((np.bincount(codes, weights=labels == 0, minlength=n_groups) > 0).astype(int)
            + 2 * (np.bincount(codes, weights=labels == 1, minlength=n_groups) > 0))
    order = np.argsort(codes, kind="stable")  # the images, group by group, each group's in index order
    sizes = np.bincount(codes, minlength=n_groups)
    starts = np.cumsum(sizes) - sizes

    def images_of(chosen: np.ndarray) -> np.ndarray:
        chosen_sizes = sizes[chosen]
        within = np.arange(chosen_sizes.sum()) - np.repeat(np.cumsum(chosen_sizes) - chosen_sizes, chosen_sizes)
        return order[np.repeat(starts[chosen], chosen_sizes) + within]

    by_kind = [np.flatnonzero(kind == k) for k in (1, 2, 3)]  # real only, fake only, both
    strata = [members for members in by_kind if members.size >= 2]
    fixed = images_of(np.concatenate([np.empty(0, int), *(members for members in by_kind if members.size == 1)]))
    return strata, fixed, images_of


def _stratified_bootstrap(labels: np.ndarray, on_images, confidence: float, n_resamples: int,
                          seed: int, groups=None) -> tuple[float, float]:
    """The percentile interval of `on_images(indices)` over resamples drawn within each class (by group)."""
    if not set(np.unique(labels)) <= {0, 1}:
        raise ValueError(f"Labels must be 0 (real) or 1 (fake): got {np.unique(labels).tolist()}.")
    real, fake = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    if min(real.size, fake.size) < 2:
        raise ValueError(f"A bootstrap interval needs at least two images of each class: got {real.size} real "
                         f"and {fake.size} fake.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1, got {confidence}.")
    strata, fixed, images_of = grouped_resampling(labels, groups)
    if not strata:
        raise ValueError("A grouped bootstrap needs at least two groups of one kind (real only, fake only or "
                         "both) to draw from: every kind here has one group or none.")
    result = stats.bootstrap(strata, lambda *drawn: on_images(np.concatenate([*map(images_of, drawn), fixed])),
                             n_resamples=n_resamples, vectorized=False, paired=False,
                             confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return float(low), float(high)


def confidence_intervals(labels, scores, threshold: float, confidence: float = 0.95, n_resamples: int = 2000,
                         seed: int = config.SEED, groups=None) -> dict:
    """Bootstrap intervals of ROC-AUC and of accuracy, balanced accuracy and both recalls at `threshold`.

    JSON-ready: each key maps to [low, high], or to None when there are fewer than two images of a
    class. All metrics see the same resamples (the same seed). `groups` resamples whole groups of
    images (`bootstrap_interval`).
    """
    labels, scores = _check(labels, scores)
    statistics = {"roc_auc": roc_auc, **threshold_statistics(threshold)}
    if min((labels == 0).sum(), (labels == 1).sum()) < 2:
        return dict.fromkeys(statistics)
    return {name: list(bootstrap_interval(labels, scores, statistic, confidence, n_resamples, seed, groups))
            for name, statistic in statistics.items()}


# ----------------------------------------------------------------------------- calibration

SCORE_CLIP = 1e-7  # p(fake) is kept this far from 0 and 1 before its logit is taken
TEMPERATURE_BOUNDS = (0.01, 100.0)  # the temperatures fit_temperature searches between


def logits(scores) -> np.ndarray:
    """The log-odds log(p / (1 - p)) of each p(fake), with p clipped to [SCORE_CLIP, 1 - SCORE_CLIP] first.

    A float32 p(fake) of exactly 0 or 1 has lost its logit (the softmax saturated); the clip caps such
    a score at about +-16 instead of infinity.
    """
    return special.logit(np.clip(np.asarray(scores, dtype=float).ravel(), SCORE_CLIP, 1 - SCORE_CLIP))


def log_loss(labels, scores) -> float:
    """The mean negative log-likelihood of the labels under p(fake) (lower is better), on clipped scores.

    Computed from the logits z as log(1 + exp(-z)) for a fake and log(1 + exp(z)) for a real image,
    which stays finite and exact where p is near 0 or 1.
    """
    labels, scores = _check(labels, scores)
    return _log_loss_of_logits(2 * labels - 1, logits(scores))


def _log_loss_of_logits(signs: np.ndarray, values: np.ndarray) -> float:
    return float(np.mean(np.logaddexp(0.0, -signs * values)))


@dataclass(frozen=True)
class Calibration:
    """A calibration map on the logit: p(fake) -> sigmoid(logit(p) / temperature + bias).

    The temperature scales every logit, so it makes scores less (T > 1) or more (T < 1) confident and
    leaves 0.5 where it is: it cannot move the prior. The bias shifts every logit by the same amount,
    which moves the prior (the log-odds of the base rate). Neither changes the order of the scores,
    so ROC-AUC stays the same.
    """

    temperature: float = 1.0
    bias: float = 0.0

    def __call__(self, scores) -> np.ndarray:
        return special.expit(logits(scores) / self.temperature + self.bias)


def fit_temperature(labels, scores, bias: bool = False) -> Calibration:
    """Temperature scaling (Guo et al., 2017): the T that minimises the log loss of sigmoid(logit(p) / T).

    Fit it on validation labels and scores, never on the test set. With `bias`, Platt scaling: a
    temperature and a bias fitted together (a logistic regression on the logit), which can also move
    the prior. T is searched between TEMPERATURE_BOUNDS, on a log scale.
    """
    labels, scores = _check(labels, scores)
    if len(np.unique(labels)) < 2:
        raise ValueError("Fitting a calibration needs images of both classes.")
    signs, values = 2 * labels - 1, logits(scores)
    low, high = np.log(TEMPERATURE_BOUNDS)
    if not bias:
        found = optimize.minimize_scalar(lambda log_t: _log_loss_of_logits(signs, values / np.exp(log_t)),
                                         bounds=(low, high), method="bounded")
        return Calibration(temperature=float(np.exp(found.x)))
    found = optimize.minimize(lambda p: _log_loss_of_logits(signs, values / np.exp(p[0]) + p[1]), x0=[0.0, 0.0],
                              method="L-BFGS-B", bounds=[(low, high), (None, None)])
    return Calibration(temperature=float(np.exp(found.x[0])), bias=float(found.x[1]))


def prior_correction(trained_fake_share: float, fake_share: float) -> Calibration:
    """The closed-form correction for a model trained as if `trained_fake_share` of the images were fake.

    Class weights that make both classes count equally train for a 50:50 prior (`trained_fake_share`
    0.5) on a set whose real share of fakes is `fake_share`: the model's log-odds come out too high
    by logit(0.5) - logit(fake_share), log 3 for three real images per fake. The correction shifts
    every logit back by that amount; nothing is fitted.
    """
    for name, share in (("trained_fake_share", trained_fake_share), ("fake_share", fake_share)):
        if not 0 < share < 1:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {share}.")
    return Calibration(bias=float(special.logit(fake_share) - special.logit(trained_fake_share)))
