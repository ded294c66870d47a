"""Reading a face's p(fake) against its model's threshold: the verdict both upload demos show.

A model calls a face fake from its threshold up (chosen on validation data, in model.json). A
score a hair's breadth either side of it is not a verdict, so the demos call it *uncertain*: a
face is uncertain when its log-odds, log(p / (1 - p)), lie within UNCERTAIN_LOG_ODDS of the
threshold's, i.e. its odds of being fake are within a factor e (2.7) of the threshold's odds.

Why one unit of log-odds: a model's sidecar keeps its validation metrics but no per-image
validation scores, so the band cannot be fitted per model. It is one fixed rule, in log-odds
because scores crowd near 0 and 1, checked on the only per-image scores the repository keeps,
lesson 04's ladder (`benchmarks/ladder/*.json`, the cpu recipe's test split): faces inside the
band are classified right about as often as by a coin toss, those outside it far more often
(`band_accuracy_table`, checked by tests/test_verdicts.py). A model whose validation ROC-AUC is
under LOW_ROC_AUC gets a warning instead of silence.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import config

UNCERTAIN_LOG_ODDS = 1.0  # the band's half-width around the threshold, in log-odds
LOW_ROC_AUC = 0.70  # below it, discrimination is "poor" (Hosmer & Lemeshow's rule of thumb): warn
_EDGE = 1e-6  # scores and thresholds are clipped to [_EDGE, 1 - _EDGE] before taking log-odds
LADDER_RESULTS = config.REPO_ROOT / "benchmarks" / "ladder"  # lesson 04's committed per-image test scores


def _log_odds(p: float) -> float:
    p = min(max(float(p), _EDGE), 1 - _EDGE)
    return math.log(p / (1 - p))


def _probability(log_odds: float) -> float:
    return 1 / (1 + math.exp(-log_odds))


def uncertain_band(threshold: float) -> tuple[float, float]:
    """The p(fake) range around `threshold` in which a verdict reads "uncertain" (both ends excluded)."""
    centre = _log_odds(threshold)
    return _probability(centre - UNCERTAIN_LOG_ODDS), _probability(centre + UNCERTAIN_LOG_ODDS)


def score_text(p: float) -> str:
    """A score with three decimals, and "< 0.001" or "> 0.999" where three decimals would round to 0 or 1."""
    text = f"{p:.3f}"
    return {"0.000": "< 0.001", "1.000": "> 0.999"}.get(text, text)


@dataclass(frozen=True)
class Reading:
    """One score read against its model's threshold."""

    p_fake: float
    threshold: float

    @property
    def band(self) -> tuple[float, float]:
        return uncertain_band(self.threshold)

    @property
    def label(self) -> str:
        """The side of the threshold: 'fake' at or above it, else 'real' (the rule `Detector.label` uses)."""
        return "fake" if self.p_fake >= self.threshold else "real"

    @property
    def verdict(self) -> str:
        """'fake', 'real', or 'uncertain' inside the band around the threshold."""
        low, high = self.band
        return "uncertain" if low < self.p_fake < high else self.label

    @property
    def sentence(self) -> str:
        """One line that reads the number, e.g. "fake from 0.906 up; 0.755 is below it"."""
        score, threshold = score_text(self.p_fake), score_text(self.threshold)
        if score == threshold:
            where = "at it"
        else:
            where = "above it" if self.p_fake >= self.threshold else "below it"
        line = f"fake from {threshold} up; {score} is {where}"
        if self.verdict == "uncertain":
            low, high = self.band
            line += f", too close to call (uncertain from {score_text(low)} to {score_text(high)})"
        return line


def model_warning(validation: dict) -> str | None:
    """A warning for a model whose validation ROC-AUC (model.json's `validation`) is low or unrecorded, else None."""
    roc_auc, images = validation.get("roc_auc"), validation.get("n")
    if roc_auc is None:
        return "This model records no validation ROC-AUC: nobody measured how well it tells fakes from real faces."
    if roc_auc >= LOW_ROC_AUC:
        return None
    on = f" on {images} images" if images else ""
    return (f"This model's validation ROC-AUC is {roc_auc:.2f}{on}, under {LOW_ROC_AUC:.2f}: it tells fakes from "
            "real faces little better than chance, so its verdicts mean little.")


def band_accuracy_table(folder: str | os.PathLike = LADDER_RESULTS) -> pd.DataFrame:
    """How often the threshold's verdict was right inside the uncertain band and outside it, per data set and
    for both together, on the per-image test scores lesson 04's ladder keeps for the cpu recipe (its last rung)."""
    rows, together = [], []
    for path in sorted(Path(folder).glob("*.json")):
        ladder = json.loads(path.read_text())
        rung = ladder["rungs"][-1]
        scores = np.asarray(rung["test_scores"])
        low, high = uncertain_band(rung["threshold"])
        inside = (scores > low) & (scores < high)
        right = (scores >= rung["threshold"]) == (np.asarray(ladder["test_labels"]) == 1)
        rows.append((ladder["data"], rung["threshold"], inside, right))
        together.append((inside, right))
    inside, right = (np.concatenate(parts) for parts in zip(*together))
    rows.append(("both", np.nan, inside, right))
    return pd.DataFrame([{"data": data, "threshold": threshold, "faces in the band": int(inside.sum()),
                          "right in the band": right[inside].mean(), "faces outside": int((~inside).sum()),
                          "right outside": right[~inside].mean()}
                         for data, threshold, inside, right in rows]).set_index("data").round(3)
