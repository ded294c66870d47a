"""The data audit a careful practitioner runs before training: broken files, duplicates, shortcuts.

A *shortcut* is a property that differs between the classes without being what makes an image
real or fake: one class saved at another JPEG quality, a watermark stamped on every fake, a
different image size. A model learns such a property happily, scores well on a test set that
shares it, and fails on the first image that does not. The audit measures each property per
image and asks how well it alone tells the classes apart (ROC-AUC, 0.5 = not at all); then it
trains a tiny cross-validated classifier on all of them together.

What it measures per file is in `file_properties`, the duplicate search in `near_duplicates`.

Entry point: `audit_dataset(scan_report_or_frame, profile=None) -> AuditReport`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers import config, data
from helpers.file_properties import describe_files
from helpers.files import printable
from helpers.near_duplicates import NEAR_DUPLICATE_BITS, duplicate_groups, find_duplicates

# Thresholds: named here so a learner can see, and change, what counts as a problem.
SHORTCUT_WARNING_AUC = 0.70  # one property alone separating the classes this well deserves a look
SHORTCUT_CRITICAL_AUC = 0.90  # ... and this well means a model can cheat with it
CHANCE_Z = 3.5  # an AUC must also sit this many standard errors above 0.5, so small sets do not cry wolf
CV_FOLDS = 5
CLASSIFIER_MAX_PER_CLASS = 10_000  # images of each class the metadata classifier sees at most: the whole
# 190,000-image Kaggle set would take it many minutes, for an AUC already known to about +-0.01
FILE_PROPERTIES = "file properties"  # the two feature sets the metadata classifier is trained on
WITH_REGIONS = "file properties + corners and borders"

SEVERITIES = ("ok", "info", "warning", "critical")


def is_region_feature(name: str) -> bool:
    """Corner and border statistics measure pixels (content), the rest measure the file."""
    return name.startswith(("corner_", "border_"))


def metadata_features(images: pd.DataFrame) -> pd.DataFrame:
    """The numeric properties a shortcut could hide in: size, file, encoding, metadata, edges."""
    features = pd.DataFrame({
        "width": images["width"], "height": images["height"], "file_bytes": images["bytes"],
        "jpeg_quality": images["jpeg_quality"],
        "has_exif": images["has_exif"].astype(int), "has_icc_profile": images["has_icc_profile"].astype(int),
    })
    for column in ("format", "mode"):  # one indicator per value, when the set holds more than one
        values = sorted(images[column].unique())
        if len(values) > 1:
            for value in values:
                features[f"{column}_is_{value}"] = (images[column] == value).astype(int)
    regions = [c for c in images.columns if is_region_feature(c)]
    return pd.concat([features, images[regions]], axis=1).astype(float).reset_index(drop=True)


def chance_margin(labels) -> float:
    """How far from 0.5 an AUC must be (CHANCE_Z standard errors) before it is more than luck."""
    labels = np.asarray(labels)
    n_fake, n_real = int((labels == 1).sum()), int((labels == 0).sum())
    if min(n_fake, n_real) == 0:
        return 0.5
    return CHANCE_Z * float(np.sqrt((n_fake + n_real + 1) / (12 * n_fake * n_real)))


def severity_of(auc: float, margin: float) -> str:
    """ok (chance), info (real but weak), warning or critical, from an AUC and the chance margin."""
    if auc < 0.5 + margin:
        return "ok"
    if auc >= SHORTCUT_CRITICAL_AUC:
        return "critical"
    return "warning" if auc >= SHORTCUT_WARNING_AUC else "info"


def feature_aucs(features: pd.DataFrame, labels) -> pd.DataFrame:
    """How well each property alone separates the classes, strongest first.

    `auc` is the ROC-AUC in whichever direction is larger (0.5 = no signal, 1.0 = perfect);
    `higher_in` says which class has the larger values.
    """
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels)
    margin = chance_margin(labels)
    rows = []
    for name, values in features.items():
        raw = roc_auc_score(labels, values) if values.nunique() > 1 else 0.5
        auc = max(raw, 1 - raw)
        rows.append({"feature": name, "auc": auc,
                     "higher_in": "-" if auc == 0.5 else config.CLASS_NAMES[int(raw > 0.5)],
                     "real_median": values[labels == 0].median(), "fake_median": values[labels == 1].median(),
                     "severity": severity_of(auc, margin)})
    return pd.DataFrame(rows).sort_values("auc", ascending=False, kind="stable").reset_index(drop=True)


def metadata_classifier_auc(features: pd.DataFrame, labels, groups=None, seed: int = config.SEED) -> float | None:
    """Cross-validated ROC-AUC of a small random forest that sees only `features`; None if too few images.

    Images of one `group` (duplicates of each other) stay in the same fold. Otherwise a real frame
    and the fake made from it, nearly identical in every property, land on both sides of a split,
    and the held-out one is predicted as its twin's class: the score says more about the pairing
    than about the properties.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    labels = np.asarray(labels)
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    folds = min(CV_FOLDS, int(np.bincount(labels, minlength=2).min()), len(np.unique(groups)))
    if folds < 2:
        return None
    forest = RandomForestClassifier(n_estimators=50, max_depth=4, min_samples_leaf=2, random_state=seed, n_jobs=1)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(forest, features, labels, groups=groups, cv=splitter, method="predict_proba")[:, 1]
    return float(roc_auc_score(labels, scores))


def classifier_rows(labels, max_per_class: int = CLASSIFIER_MAX_PER_CLASS, seed: int = config.SEED) -> np.ndarray:
    """Positions of the rows the metadata classifier sees: all, or `max_per_class` of each class drawn with a seed."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = [np.zeros(0, np.int64)]
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        chosen.append(rng.choice(members, max_per_class, replace=False) if len(members) > max_per_class else members)
    return np.sort(np.concatenate(chosen))


def classifier_aucs(features: pd.DataFrame, labels, groups=None, seed: int = config.SEED) -> dict[str, float | None]:
    """The metadata classifier twice: on file properties alone, then with corners and borders added.

    Kept apart because they mean different things: a file property that separates the classes is
    almost always a shortcut; corners and borders also see the picture itself (a generator's
    smooth backgrounds, say), which may be a real trait of the fakes or a background shortcut.
    """
    file_only = features[[c for c in features.columns if not is_region_feature(c)]]
    return {FILE_PROPERTIES: metadata_classifier_auc(file_only, labels, groups, seed),
            WITH_REGIONS: metadata_classifier_auc(features, labels, groups, seed)}


# ----------------------------------------------------------------------------- findings
@dataclass(frozen=True)
class Finding:
    """One result of the audit, in plain English."""

    kind: str  # unreadable | exact_duplicate | near_duplicate | shortcut | metadata_classifier
    severity: str  # ok | info | warning | critical
    message: str
    features: tuple[str, ...] = ()  # for shortcuts: the leaking properties, strongest first


REGION_GROUP = "corners and borders (watermarks, logos)"
_PROPERTY_GROUPS = {  # feature-name prefix -> the property a learner would recognise
    "width": "image size", "height": "image size", "file_bytes": "file size",
    "jpeg_quality": "JPEG quality", "format_is_": "file format", "mode_is_": "colour mode",
    "has_exif": "metadata (EXIF, ICC profile)", "has_icc_profile": "metadata (EXIF, ICC profile)",
    "corner_": REGION_GROUP, "border_": REGION_GROUP,
}


def property_group(feature: str) -> str:
    return next(group for prefix, group in _PROPERTY_GROUPS.items() if feature.startswith(prefix))


def _example(pairs: pd.DataFrame) -> str:
    first = pairs.iloc[0]
    return f"e.g. {first['relpath_a']} and {first['relpath_b']}"


def unreadable_findings(unreadable: pd.DataFrame) -> list[Finding]:
    if unreadable.empty:
        return [Finding("unreadable", "ok", "Every file could be opened and decoded.")]
    names = ", ".join(unreadable["relpath"].head(3))
    return [Finding("unreadable", "warning",
                    f"{len(unreadable)} file(s) cannot be read ({names}{', ...' if len(unreadable) > 3 else ''}); "
                    "the lessons leave them out, but find out why: a broken download may have lost more.")]


def duplicate_findings(pairs: pd.DataFrame, n_images: int) -> list[Finding]:
    findings = []
    exact, near = pairs[pairs["kind"] == "exact"], pairs[pairs["kind"] == "near"]
    conflicts = exact[exact["across_classes"]]
    if len(conflicts):
        findings.append(Finding("exact_duplicate", "critical",
                                f"{len(conflicts)} identical file pair(s) carry both labels, real and fake "
                                f"({_example(conflicts)}): at least one label is wrong."))
    if exact["across_splits"].any():
        leaked = exact[exact["across_splits"]]
        findings.append(Finding("exact_duplicate", "critical",
                                f"{len(leaked)} identical file pair(s) sit in two splits ({_example(leaked)}): "
                                "the model is tested on images it trained on, which inflates every metric. "
                                "Keep each in one split only."))
    within = exact[~exact["across_splits"] & ~exact["across_classes"]]
    if len(within):
        findings.append(Finding("exact_duplicate", "warning",
                                f"{len(within)} identical file pair(s) within one split ({_example(within)}): "
                                "each counts twice in training and evaluation."))
    if exact.empty:
        findings.append(Finding("exact_duplicate", "ok", f"No two of the {n_images} files have identical bytes."))
    if near["across_splits"].any():
        leaked = near[near["across_splits"]]
        findings.append(Finding("near_duplicate", "warning",
                                f"{len(leaked)} near-identical pair(s) across splits ({_example(leaked)}; perceptual "
                                f"hashes within {NEAR_DUPLICATE_BITS} bits): look at them. The same picture, or the "
                                "same person in the same scene, in two splits lets a model recognise instead of "
                                "detect; keep such images in one split."))
    if (~near["across_splits"]).any():
        inside = near[~near["across_splits"]]
        paired = int(inside["across_classes"].sum())
        findings.append(Finding("near_duplicate", "info",
                                f"{len(inside)} near-identical pair(s) within a split ({paired} of them a real and a "
                                f"fake, e.g. a fake made from that real frame; {_example(inside)}): harmless for "
                                "evaluation as long as they stay in the same split."))
    if near.empty:
        findings.append(Finding("near_duplicate", "ok",
                                f"No near-duplicates (perceptual hashes within {NEAR_DUPLICATE_BITS} bits)."))
    return findings


_SAVING_ADVICE = "How a file was saved says nothing about how its face was made: prepare both classes the same way."
_ADVICE = {  # property group -> what to do about it; anything else is about how files were saved
    "file size": ("File size follows both how a file was saved and how much detail it holds (smoother faces "
                  "compress smaller): if size, format and JPEG quality match between the classes, it reflects content."),
    REGION_GROUP: (
        "Corners and borders also show the picture itself (a generator's smooth backgrounds, say): "
        "look at a few images to tell a stamped mark, which must go, from a trait of the fakes."),
}


def shortcut_findings(aucs: pd.DataFrame) -> list[Finding]:
    """One finding per property group that separates the classes beyond chance."""
    flagged = aucs[aucs["severity"] != "ok"].assign(group=lambda t: t["feature"].map(property_group))
    if flagged.empty:
        return [Finding("shortcut", "ok", "No single property (size, file size, JPEG quality, format, colour mode, "
                                          "metadata, corners, borders) separates the classes beyond chance.")]
    findings = []
    for group, rows in flagged.groupby("group", sort=False):
        top = rows.iloc[0]
        severity = max(rows["severity"], key=SEVERITIES.index)
        consequence = {"critical": "a model can tell the classes apart from this alone",
                       "warning": "a model could lean on it",
                       "info": "a weak but real difference"}[severity]
        advice = _ADVICE.get(group, _SAVING_ADVICE)
        findings.append(Finding(
            "shortcut", severity,
            f"{group}: {top['feature']} separates the classes with AUC {top['auc']:.2f} (higher in "
            f"{top['higher_in']}; median real {top['real_median']:.4g}, fake {top['fake_median']:.4g}): "
            f"{consequence}. {advice}", tuple(rows["feature"])))
    return findings


def classifier_finding(feature_set: str, auc: float | None, labels) -> Finding:
    if auc is None:
        return Finding("metadata_classifier", "info", "Too few images of one class to cross-validate a classifier.")
    severity = severity_of(auc, chance_margin(labels))  # below 0.5 is no shortcut: nothing to exploit
    verdict = {"ok": "no sign that a model could cheat with them",
               "info": "a weak signal; see which single properties carry it",
               "warning": "a model could learn part of the task from them alone",
               "critical": "a model could cheat: fix the data before trusting any score"}[severity]
    return Finding("metadata_classifier", severity,
                   f"A small classifier that sees only the {feature_set} (not the faces) reaches ROC-AUC "
                   f"{auc:.2f} ({CV_FOLDS}-fold cross-validated on {len(labels):,} images, 0.5 = chance): {verdict}.")


# ----------------------------------------------------------------------------- the report
@dataclass
class AuditReport:
    """What `audit_dataset` found. `findings` lists every check; `problems` only what needs attention."""

    images: pd.DataFrame  # one row per audited image with everything measured
    unreadable: pd.DataFrame
    duplicates: pd.DataFrame  # pairs: kind (exact | near), distance, both files (index_a/b: rows of images)
    feature_aucs: pd.DataFrame
    classifier_aucs: dict[str, float | None]  # feature set -> cross-validated ROC-AUC
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    scope: str = ""

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity in ("warning", "critical")]

    @property
    def metadata_auc(self) -> float | None:
        """The headline number: the classifier on file properties alone."""
        return self.classifier_aucs[FILE_PROPERTIES]

    @property
    def flagged_features(self) -> list[str]:
        return self.feature_aucs.loc[self.feature_aucs["severity"] != "ok", "feature"].tolist()

    def duplicate_counts(self) -> pd.DataFrame:
        """Pairs of exact and near duplicates, within one split and across splits."""
        table = pd.crosstab(self.duplicates["kind"], self.duplicates["across_splits"])
        table = table.reindex(index=["exact", "near"], columns=[False, True], fill_value=0)
        table.columns = ["within a split", "across splits"]
        return table

    def summary(self) -> pd.DataFrame:
        """The findings as a table, worst first."""
        table = pd.DataFrame([(f.severity, f.kind, f.message) for f in self.findings],
                             columns=["severity", "check", "finding"])
        order = table["severity"].map(SEVERITIES.index)
        return table.iloc[order.sort_values(ascending=False, kind="stable").index].reset_index(drop=True)

    def __str__(self) -> str:
        lines = [f"Audited {len(self.images)} images ({self.scope}) in {self.seconds:.1f} s: "
                 f"{len(self.problems)} problem(s)."]
        lines += [f"  [{row.severity:>8}] {row.check}: {row.finding}" for row in self.summary().itertuples()]
        return printable("\n".join(lines))


def _readable_files(source: data.ScanReport | pd.DataFrame, progress: bool, cache: bool) -> pd.DataFrame:
    """A scan's file table: from a ScanReport, a scanned frame, or an index frame (scanned here)."""
    if isinstance(source, data.ScanReport):
        return source.files
    return source if "ok" in source.columns else data.scan(source, progress=progress, cache=cache).files


def audit_dataset(source: data.ScanReport | pd.DataFrame, profile: config.Profile | None = None,
                  progress: bool = True, workers: int = 4, seed: int = config.SEED,
                  cache: bool = True) -> AuditReport:
    """Audit a dataset: unreadable files, exact and near duplicates, and shortcuts.

    `source` is a `data.scan` report, or a frame from `data.index_dataset` (scanned here). With a
    `profile`, only its subset of the readable images is audited (unreadable ones are all listed).
    With `cache`, each file's measurements are kept for the next audit (`describe_files`).
    """
    started = time.perf_counter()
    files = _readable_files(source, progress, cache)
    unreadable = files[~files["ok"]].reset_index(drop=True)
    readable = files[files["ok"]].reset_index(drop=True)
    readable.attrs.update(files.attrs)
    chosen = data.subset(readable, profile, seed=seed) if profile else readable
    scope = (f"{profile.name} profile: {len(chosen)} of {len(readable)} readable images"
             if profile else f"all {len(readable)} readable images")
    images = describe_files(chosen, progress=progress, workers=workers, cache=cache)
    duplicates = find_duplicates(images)
    features = metadata_features(images)
    aucs = feature_aucs(features, images["label"])
    groups = duplicate_groups(len(images), duplicates)
    rows = classifier_rows(images["label"], seed=seed)
    labels = images["label"].to_numpy()[rows]
    classifiers = classifier_aucs(features.iloc[rows].reset_index(drop=True), labels, groups[rows], seed)
    findings = (unreadable_findings(unreadable) + duplicate_findings(duplicates, len(images))
                + shortcut_findings(aucs)
                + [classifier_finding(name, auc, labels) for name, auc in classifiers.items()])
    return AuditReport(images, unreadable, duplicates, aucs, classifiers, findings,
                       time.perf_counter() - started, f"{scope} under {files.attrs.get('root', '?')}")


def plot_feature_aucs(aucs: pd.DataFrame, warning: float = SHORTCUT_WARNING_AUC, critical: float = SHORTCUT_CRITICAL_AUC,
                      top: int = 15) -> plt.Figure:
    """The audit's per-property AUCs as bars, strongest first, with the warning and critical lines."""
    shown = aucs.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(shown) + 1.2))
    ax.barh(shown["feature"], shown["auc"], color=["C3" if s != "ok" else "C0" for s in shown["severity"]])
    for value, label in ((0.5, "chance"), (warning, "warning"), (critical, "critical")):
        ax.axvline(value, color="grey", lw=0.8, ls=":")
        ax.text(value, len(shown) - 0.4, label, fontsize=8, ha="center")
    ax.set(xlim=(0.45, 1.0), xlabel="ROC-AUC of the property alone", title="Which properties tell the classes apart?")
    return fig
