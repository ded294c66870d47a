"""Cross-dataset checks: every model scored on every data root's test split, side by side.

A detector is only as good as its worst unseen dataset. The table puts in-domain numbers (the test
split of the data the model learnt from) next to cross-dataset ones, so nobody quotes the first
without the second. `cross_dataset_table` scores models now; `results_table` reads the committed
per-image scores of `benchmarks/bench_generalisation.py` (the README's table). Both give every
ROC-AUC its 95% bootstrap interval, resampling whole groups of test images where the data names them;
`mode_differences` compares two ways of learning "fake" on the same test images by the paired difference.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import config, files, metrics
from helpers.evaluate import OverlapWarning, evaluate


RESULTS_DIR = config.REPO_ROOT / "benchmarks" / "generalisation"  # committed: one JSON per training set
# Shiohara & Yamasaki's released SBI model on DFDC, as their repository (mapooon/SelfBlendedImages) reports it:
# video-level ROC-AUC on DFDC's own test videos, with their protocol, not on our crops.
PAPER_SBI_DFDC_ROC_AUC = 0.7301


def data_roots(settings: config.Settings) -> dict[str, Path]:
    """The data root and, when there is one (`$DEEPFAKE_CROSS_DATA`), the second root, keyed by folder name."""
    roots = [settings.data_root, settings.cross_data_root]
    return {root.name: root for root in roots if root is not None}


def cross_dataset_table(models: dict, roots: dict[str, str | Path], profile: config.Profile | None = None) -> pd.DataFrame:
    """ROC-AUC (with its 95% bootstrap interval) and balanced accuracy of each model on each root's test split.

    `models` maps a row name to (training root name, mode, model folder or Detector); `roots` maps a
    data-set name to its folder. With `profile`, only the profile's subset of each test split is scored.
    """
    rows = []
    for name, (trained_on, mode, model) in models.items():
        for tested_on, root in roots.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OverlapWarning)  # test splits never overlap; the check is in evaluate
                result = evaluate(model, root, split="test", profile=profile, progress=False).metrics
            low, high = result["ci95"]["roc_auc"]
            rows.append({"model": name, "trained on": trained_on, "mode": mode, "tested on": tested_on,
                         "in-domain": trained_on == tested_on, "ROC-AUC": result["roc_auc"],
                         "ROC-AUC low": low, "ROC-AUC high": high,
                         "balanced accuracy": result["at_threshold"]["balanced_accuracy"],
                         "fake recall": result["at_threshold"]["recall"]["fake"], "images": result["n"]})
    return pd.DataFrame(rows)


def load_results(folder=RESULTS_DIR) -> list[dict]:
    """Every result of bench_generalisation in `folder` (benchmarks/generalisation by default), by training set."""
    return files.read_results(folder, "python benchmarks/bench_generalisation.py")


def with_groups(result: dict, test_set: str, groups: list) -> dict:
    """A stored result with the groups of one test set's images (in its stored order) added, for `results_table`."""
    images = result["test_sets"][test_set]
    if len(groups) != len(images["test_labels"]):
        raise ValueError(f"Need one group per test image of {test_set}: got {len(groups)} for "
                         f"{len(images['test_labels'])}.")
    return {**result, "test_sets": {**result["test_sets"], test_set: {**images, "test_groups": list(groups)}}}


def results_table(results: list[dict]) -> pd.DataFrame:
    """`cross_dataset_table`'s rows, from stored per-image test scores instead of models.

    Each result is one training set's JSON (`load_results`): its models, one per mode, and each
    model's p(fake) on every test set it was scored on, in the order of that set's stored labels,
    relpaths and, where known, groups (the intervals then resample whole groups).
    """
    rows = []
    for result in results:
        for model in result["models"]:
            for tested_on, tested in model["tested"].items():
                images = result["test_sets"][tested_on]
                labels, scores = np.asarray(images["test_labels"]), np.asarray(tested["test_scores"])
                groups = images.get("test_groups")
                low, high = metrics.bootstrap_interval(labels, scores, metrics.roc_auc, groups=groups)
                at = metrics.threshold_statistics(model["threshold"])
                rows.append({"model": f"{result['data']}, {model['mode']}", "trained on": result["data"],
                             "mode": model["mode"], "tested on": tested_on, "in-domain": tested_on == result["data"],
                             "ROC-AUC": metrics.roc_auc(labels, scores), "ROC-AUC low": low, "ROC-AUC high": high,
                             "balanced accuracy": at["balanced_accuracy"](labels, scores),
                             "fake recall": at["recall_fake"](labels, scores), "images": int(labels.size)})
    return pd.DataFrame(rows)


def mode_differences(results: list[dict], baseline: str = "real+fake") -> pd.DataFrame:
    """Each stored model against the `baseline` mode trained on the same data, on the same test images.

    One row per (training set, other mode, test set): the difference in ROC-AUC (the mode minus the
    baseline) with its paired 95% bootstrap interval (`metrics.paired_difference_interval`: both models
    scored on the same resamples, whole groups where the test set names them) and its reading.
    """
    rows = []
    for result in results:
        by_mode = {model["mode"]: model for model in result["models"]}
        if baseline not in by_mode:
            continue
        for mode, model in by_mode.items():
            if mode == baseline:
                continue
            for tested_on, tested in model["tested"].items():
                images = result["test_sets"][tested_on]
                labels, scores = np.asarray(images["test_labels"]), np.asarray(tested["test_scores"])
                base = np.asarray(by_mode[baseline]["tested"][tested_on]["test_scores"])
                low, high = metrics.paired_difference_interval(labels, scores, base, metrics.roc_auc,
                                                               groups=images.get("test_groups"))
                difference = metrics.roc_auc(labels, scores) - metrics.roc_auc(labels, base)
                rows.append({"trained on": result["data"], "mode": mode, "tested on": tested_on,
                             "in-domain": tested_on == result["data"], f"Δ ROC-AUC vs {baseline}": difference,
                             "low": low, "high": high,
                             "reading": ("better" if low > 0 else "worse" if high < 0 else "no clear difference")
                             + " on these test images"})
    return pd.DataFrame(rows)


def auc_matrix(table: pd.DataFrame, intervals: bool = False) -> pd.DataFrame:
    """ROC-AUC with one row per model and one column per test set; with `intervals`, as "0.84 [0.79, 0.88]"."""
    if not intervals:
        return table.pivot_table(index=["trained on", "mode"], columns="tested on", values="ROC-AUC")
    cells = table.assign(cell=[_with_interval(row) for row in table.to_dict("records")])
    return cells.pivot(index=["trained on", "mode"], columns="tested on", values="cell")


def _with_interval(row: dict) -> str:
    return f"{row['ROC-AUC']:.2f} [{row['ROC-AUC low']:.2f}, {row['ROC-AUC high']:.2f}]"


def describe(table: pd.DataFrame) -> str:
    """Plain sentences on what the table shows, written from its numbers and their 95% intervals."""
    lines = []
    for (trained_on, mode), group in table.groupby(["trained on", "mode"], sort=False):
        own = group[group["in-domain"]]
        other = group.loc[~group["in-domain"]]
        if own.empty or other.empty:
            continue
        own = own.iloc[0].to_dict()
        # A model that learnt "fake" from pseudo-fakes alone never saw the fakes of its own data either.
        own_set = "its own test set" if "fake" in mode.split("+") else f"{trained_on}'s test set (fakes it never saw)"
        for row in other.to_dict("records"):
            lines.append(f"Trained on {trained_on} ({mode}): ROC-AUC {_with_interval(own)} on {own_set}, "
                         f"{_with_interval(row)} on {row['tested on']} — {verdict(row, own, own_set)}.")
    return "\n".join(lines) or "Give at least two data roots to compare in-domain and cross-dataset results."


def verdict(row: dict, own: dict, own_set: str = "its own test set") -> str:
    """How a cross-dataset ROC-AUC reads next to the in-domain one, judged by their 95% intervals.

    An interval wholly below 0.5 means the model ranks these fakes as more real than the real faces;
    one that holds 0.5 cannot be told from chance; two intervals that do not overlap differ clearly.
    """
    low, high = row["ROC-AUC low"], row["ROC-AUC high"]
    if low <= 0.5:  # below chance, or indistinguishable from it
        return metrics.read_roc_auc(row["ROC-AUC"], low, high)
    if high < own["ROC-AUC low"]:
        return (f"{metrics.read_roc_auc(row['ROC-AUC'], low, high)}, and clearly below {own_set} "
                "(the intervals do not overlap)")
    if low > own["ROC-AUC high"]:
        return f"clearly better than on {own_set} (the intervals do not overlap)"
    return f"not clearly different from {own_set} (the intervals overlap)"
