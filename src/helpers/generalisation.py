"""Cross-dataset checks: every model scored on every data root's test split, side by side.

A detector is only as good as its worst unseen dataset. The table puts in-domain numbers (the test
split of the data the model learnt from) next to cross-dataset ones, so nobody quotes the first
without the second.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from helpers import config
from helpers.evaluate import OverlapWarning, evaluate


def data_roots() -> dict[str, Path]:
    """The data root and, when $DEEPFAKE_CROSS_DATA is set, the second root, keyed by folder name."""
    roots = [config.data_root(), config.cross_data_root()]
    return {root.name: root for root in roots if root is not None}


def cross_dataset_table(models: dict, roots: dict[str, str | Path], profile: config.Profile | None = None) -> pd.DataFrame:
    """ROC-AUC and balanced accuracy of each model on each root's test split.

    `models` maps a row name to (training root name, mode, model folder or Detector); `roots` maps a
    data-set name to its folder. With `profile`, only the profile's subset of each test split is scored.
    """
    rows = []
    for name, (trained_on, mode, model) in models.items():
        for tested_on, root in roots.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OverlapWarning)  # test splits never overlap; the check is in evaluate
                result = evaluate(model, root, split="test", profile=profile, progress=False).metrics
            rows.append({"model": name, "trained on": trained_on, "mode": mode, "tested on": tested_on,
                         "in-domain": trained_on == tested_on, "ROC-AUC": result["roc_auc"],
                         "balanced accuracy": result["at_threshold"]["balanced_accuracy"],
                         "fake recall": result["at_threshold"]["recall"]["fake"], "images": result["n"]})
    return pd.DataFrame(rows)


def auc_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """ROC-AUC with one row per model and one column per test set."""
    return table.pivot_table(index=["trained on", "mode"], columns="tested on", values="ROC-AUC")


def describe(table: pd.DataFrame) -> str:
    """Plain sentences on what the table shows, written from its numbers."""
    lines = []
    for (trained_on, mode), group in table.groupby(["trained on", "mode"], sort=False):
        own = group.loc[group["in-domain"], "ROC-AUC"]
        other = group.loc[~group["in-domain"]]
        if own.empty or other.empty:
            continue
        # A model that learnt "fake" from pseudo-fakes alone never saw the fakes of its own data either.
        own_set = "its own test set" if "fake" in mode.split("+") else f"{trained_on}'s test set (fakes it never saw)"
        for row in other.to_dict("records"):
            auc = row["ROC-AUC"]
            lines.append(f"Trained on {trained_on} ({mode}): ROC-AUC {own.iloc[0]:.2f} on {own_set}, "
                         f"{auc:.2f} on {row['tested on']} — {_verdict(auc, own.iloc[0], own_set)}.")
    return "\n".join(lines) or "Give at least two data roots to compare in-domain and cross-dataset results."


def _verdict(auc: float, own_auc: float, own_set: str) -> str:
    """How a cross-dataset ROC-AUC reads next to the in-domain one."""
    if auc < 0.45:
        return "below chance: it finds these fakes more real than the real faces"
    if auc < 0.6:
        return "close to chance"
    return f"well below {own_set}" if own_auc - auc > 0.1 else f"about as good as on {own_set}"
